//! MCP tools: the assistants the caller may search, one tool each, and a tool call as a
//! stateless run of its assistant (what `POST /runs/wait` does, as the caller).

use serde_json::{Map, Value, json};

use crate::assistants::Assistant;
use crate::auth::{Action, AuthUser, Endpoint, Resource};
use crate::error::ApiError;
use crate::python::{GraphQuery, GraphUse};
use crate::server::AppState;
use crate::server::auth::Auth;
use crate::server::jsonrpc::{Failure, RpcError};
use crate::server::routes::assistants::effective_metadata;
use crate::server::service::runs::{RunCreate, run_and_wait};
use crate::storage::{AssistantQuery, AssistantSortBy, SortOrder};

/// At most this many assistants become tools (the largest page of `/assistants/search`).
const MAX_TOOLS: i64 = 1000;

/// The longest tool name MCP clients accept.
const MAX_NAME: usize = 128;

/// The tool name of an assistant's name: whitespace runs become `_`, letters, digits, `_`,
/// `-` and `.` stay, anything else is dropped (as the reference names them); an empty result
/// is the assistant's id.
pub(in crate::server) fn tool_name(assistant: &Assistant) -> String {
    let mut name = String::new();
    let mut in_space = false;
    for character in assistant.name.chars() {
        if character.is_whitespace() {
            if !in_space {
                name.push('_');
            }
            in_space = true;
            continue;
        }
        in_space = false;
        if character.is_ascii_alphanumeric() || "_-.".contains(character) {
            name.push(character);
        }
    }
    if name.is_empty() {
        name = assistant.assistant_id.to_string();
    }
    name.chars().take(MAX_NAME).collect()
}

/// The assistants the caller may search (`assistants.search`, its filter and its rewritten
/// metadata applied), newest first, and the caller.
async fn visible_assistants(state: &AppState, auth: &Auth) -> Result<(Vec<Assistant>, Option<AuthUser>), ApiError> {
    let endpoint = Endpoint::AssistantsSearch { graph_id: None, metadata: Map::new(), limit: MAX_TOOLS, offset: 0 };
    let authorization = auth.authorize(endpoint).await?;
    let metadata = effective_metadata(&authorization, Action::Search, Map::new());
    let query = AssistantQuery {
        graph_id: None,
        name: None,
        metadata: Some(metadata).filter(|map| !map.is_empty()),
        auth: authorization.filter(Resource::Assistants, Action::Search).cloned(),
    };
    let assistants = state.storage().search_assistants(query, AssistantSortBy::CreatedAt, SortOrder::Desc, MAX_TOOLS, 0).await?;
    Ok((assistants, authorization.user))
}

/// `tools/list`: one tool per visible assistant, the first of each name (newest first), its
/// input schema the graph's; an assistant whose graph fails to load is left out (and logged).
pub(in crate::server) async fn list_tools(state: &AppState, auth: &Auth) -> Result<Value, Failure> {
    let (assistants, user) = visible_assistants(state, auth).await?;
    let mut seen = std::collections::HashSet::new();
    let mut tools = Vec::new();
    for assistant in assistants {
        let name = tool_name(&assistant);
        if !seen.insert(name.clone()) {
            continue;
        }
        let graph_use = GraphUse { config: assistant.config.clone(), user: user.clone() };
        let schemas = match state.python().graph_info(GraphQuery::Schemas { graph_id: assistant.graph_id.clone() }, &graph_use).await {
            Ok(Some(schemas)) => schemas,
            Ok(None) => Value::Null,
            Err(error) => {
                tracing::warn!(assistant_id = %assistant.assistant_id, %error, "the assistant's input schema failed; left out of the MCP tools");
                continue;
            }
        };
        // A graph whose input class pydantic cannot describe (a `typing.TypedDict` on Python
        // < 3.12) still has its state schema, which is its input unless it declares another.
        let input_schema = ["input_schema", "state_schema"]
            .iter()
            .find_map(|key| schemas.get(*key).filter(|schema| schema.is_object()))
            .cloned()
            .unwrap_or_else(|| json!({"type": "object"}));
        let description = assistant.description.clone().filter(|text| !text.is_empty()).unwrap_or_else(|| format!("Tool based on the {} assistant", assistant.name));
        tools.push(json!({
            "name": name,
            "title": assistant.name,
            "description": description,
            "inputSchema": input_schema,
            "annotations": {"readOnlyHint": false, "destructiveHint": false, "idempotentHint": false, "openWorldHint": true},
        }));
    }
    Ok(json!({"tools": tools}))
}

/// `tools/call`: runs the named tool's assistant statelessly with `arguments` as its input and
/// answers with the run's output as JSON text (`isError` when the run failed).
pub(in crate::server) async fn call_tool(state: &AppState, auth: &Auth, params: &Map<String, Value>) -> Result<Value, Failure> {
    let Some(name) = params.get("name").and_then(Value::as_str) else {
        return Err(RpcError::invalid_params("tools/call needs `name`: the name of a tool from tools/list").into());
    };
    let arguments = match params.get("arguments") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(arguments)) => arguments.clone(),
        Some(_) => return Err(RpcError::invalid_params("`arguments` must be an object: the tool's input").into()),
    };
    let (assistants, _) = visible_assistants(state, auth).await?;
    let matching: Vec<&Assistant> = assistants.iter().filter(|assistant| tool_name(assistant) == name).collect();
    let assistant = match matching.as_slice() {
        [] => return Err(RpcError::invalid_params(format!("Unknown tool: {name}")).into()),
        [assistant] => *assistant,
        _ => return Err(RpcError::invalid_params(format!("Multiple tools found with the same name: {name}; rename an assistant")).into()),
    };
    let body = RunCreate::for_assistant(assistant.assistant_id, Value::Object(arguments));
    let (_, result) = run_and_wait(state, auth, None, body).await?;
    if let Some(error) = result.get("__error__") {
        let message = error.get("message").and_then(Value::as_str).map_or_else(|| error.to_string(), str::to_string);
        return Ok(json!({"isError": true, "content": [{"type": "text", "text": message}]}));
    }
    Ok(json!({"content": [{"type": "text", "text": result.to_string()}], "structuredContent": structured(&result)}))
}

/// MCP's `structuredContent` is an object: the output itself, or `{"result": output}`.
fn structured(result: &Value) -> Value {
    if result.is_object() { result.clone() } else { json!({"result": result}) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str) -> Assistant {
        Assistant {
            assistant_id: uuid::Uuid::nil(),
            graph_id: "agent".into(),
            name: name.into(),
            description: None,
            config: Map::new(),
            context: Map::new(),
            metadata: Map::new(),
            version: 1,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn tool_names_are_sanitized_assistant_names() {
        assert_eq!(tool_name(&named("my agent")), "my_agent");
        assert_eq!(tool_name(&named("Wéird-name!! x.y/z")), "Wird-name_x.yz");
        assert_eq!(tool_name(&named("a \t b")), "a_b");
        assert_eq!(tool_name(&named("!!!")), uuid::Uuid::nil().to_string());
        assert_eq!(tool_name(&named(&"x".repeat(300))).len(), MAX_NAME);
    }
}
