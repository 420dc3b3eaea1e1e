//! A2A (agent-to-agent, JSON-RPC binding of protocols 0.3 and 1.0): an assistant's agent
//! card, a message as a run of the assistant on the thread its `contextId` names (a new one
//! without it), and a task — `"{thread_id}:{run_id}"` — read back as its run and thread.
//!
//! The two versions differ on the wire only in names: 0.3's `message/send` / `tasks/get`,
//! `"kind"`-tagged parts, `"user"` / `"completed"`; 1.0's `SendMessage` / `GetTask`, parts
//! tagged by their field, `"ROLE_USER"` / `"TASK_STATE_COMPLETED"`, and a send answered
//! `{"task": …}`. The card advertises both at the same URL; a request is answered in the
//! version its method names (`Version`).
//!
//! Everything goes through the API's own paths as the caller: a message is `POST
//! /threads/{contextId}/runs/wait` (`threads.create_run`, the thread's filter, the identity the
//! server stamps), a task read is `GET /threads/{id}/runs/{run_id}` (`threads.read`). A context
//! or task naming someone else's thread is answered exactly like one that does not exist.

use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::auth::{Action, Endpoint, Resource};
use crate::error::ApiError;
use crate::server::AppState;
use crate::server::auth::Auth;
use crate::server::jsonrpc::{Failure, RpcError};
use crate::server::service::runs::{IfNotExists, RunCreate, run_and_wait};
use crate::storage::{Run, RunStatus, StorageError};
use crate::timestamp::{format_micros, now_micros};

/// A2A's error for a task that does not exist (or is not the caller's).
const TASK_NOT_FOUND: i64 = -32001;
/// A2A's error for an operation this agent does not offer.
const UNSUPPORTED: i64 = -32004;

const MODES: [&str; 2] = ["application/json", "text/plain"];

/// The protocol version a request speaks, told by its method's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(in crate::server) enum Version {
    V0_3,
    V1_0,
}

/// The agent card of an assistant the caller may read (`assistants.read`); `url` is where its
/// JSON-RPC endpoint is reached from the caller's side.
pub(in crate::server) async fn agent_card(state: &AppState, auth: &Auth, assistant_id: Uuid, url: &str) -> Result<Value, ApiError> {
    let authorization = auth.authorize(Endpoint::AssistantsRead { assistant_id }).await?;
    let filter = authorization.filter(Resource::Assistants, Action::Read).cloned();
    let assistant = state.storage().get_assistant(assistant_id, filter).await.map_err(|error| match error {
        StorageError::NotFound => ApiError::not_found(format!("Assistant {assistant_id} not found")),
        other => other.into(),
    })?;
    let description = assistant.description.clone().filter(|text| !text.is_empty()).unwrap_or_else(|| format!("The {} assistant (graph {})", assistant.name, assistant.graph_id));
    Ok(json!({
        "protocolVersion": "0.3.0",
        "name": assistant.name,
        "description": description,
        "url": url,
        "preferredTransport": "JSONRPC",
        "supportedInterfaces": [
            {"url": url, "protocolBinding": "JSONRPC", "protocolVersion": "1.0"},
            {"url": url, "protocolBinding": "JSONRPC", "protocolVersion": "0.3"},
        ],
        "capabilities": {"streaming": false, "pushNotifications": false, "stateTransitionHistory": false},
        "defaultInputModes": MODES,
        "defaultOutputModes": MODES,
        "skills": [{
            "id": format!("{assistant_id}-main"),
            "name": format!("{} Capabilities", assistant.name),
            "description": description,
            "tags": ["assistant", "langgraph"],
            "examples": [],
            "inputModes": MODES,
            "outputModes": MODES,
        }],
        "version": env!("CARGO_PKG_VERSION"),
    }))
}

/// A message's parts as the run's input: `data` parts merged into it, the `text` parts (one
/// newline between them) a message appended to its `messages`.
fn message_input(message: &Map<String, Value>) -> Result<(Value, Option<Uuid>), RpcError> {
    let role = match message.get("role").and_then(Value::as_str) {
        Some("user" | "ROLE_USER") => "user",
        Some("agent" | "ROLE_AGENT") => "assistant",
        _ => return Err(RpcError::invalid_params("message.role must be \"user\" or \"agent\" (1.0: \"ROLE_USER\" or \"ROLE_AGENT\")")),
    };
    let parts = match message.get("parts") {
        Some(Value::Array(parts)) if !parts.is_empty() => parts,
        Some(Value::Array(_)) => return Err(RpcError::invalid_params("Message must contain at least one part")),
        _ => return Err(RpcError::invalid_params("message.parts must be a list of parts")),
    };
    let context_id = match message.get("contextId") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(Uuid::parse_str(text).map_err(|_| RpcError::invalid_params(format!("Invalid contextId `{text}`: a context id is a thread id (a UUID)")))?),
        Some(_) => return Err(RpcError::invalid_params("message.contextId must be a string")),
    };
    let mut input = Map::new();
    let mut texts = Vec::new();
    for part in parts {
        match part_kind(part) {
            Some("text") => match part.get("text") {
                Some(Value::String(text)) => texts.push(text.as_str()),
                _ => return Err(RpcError::invalid_params("a text part needs `text`, a string")),
            },
            Some("data") => match part.get("data") {
                Some(Value::Object(data)) => input.extend(data.clone()),
                _ => return Err(RpcError::invalid_params("a data part needs `data`, an object")),
            },
            Some("file") => return Err(RpcError::invalid_params("file parts are not supported: send text or data parts")),
            _ => return Err(RpcError::invalid_params("each part needs `kind`: \"text\" or \"data\" (1.0: a `text` or `data` field)")),
        }
    }
    if !texts.is_empty() {
        let mut chat = json!({"role": role, "content": texts.join("\n")});
        if let Some(id) = message.get("messageId").and_then(Value::as_str) {
            chat["id"] = Value::from(id);
        }
        match input.get_mut("messages") {
            Some(Value::Array(messages)) => messages.push(chat),
            _ => {
                input.insert("messages".to_string(), json!([chat]));
            }
        }
    }
    Ok((Value::Object(input), context_id))
}

/// A part's kind: 0.3 names it in `kind`; a 1.0 part is the one of `text`, `data`, `raw` and
/// `url` it has.
fn part_kind(part: &Value) -> Option<&str> {
    if let Some(kind) = part.get("kind") {
        return kind.as_str();
    }
    let object = part.as_object()?;
    if object.contains_key("text") {
        Some("text")
    } else if object.contains_key("data") {
        Some("data")
    } else if object.contains_key("raw") || object.contains_key("url") {
        Some("file")
    } else {
        None
    }
}

/// `message/send` (1.0: `SendMessage`): runs the assistant on the message's context (a new thread without one,
/// created as the caller) and answers with the finished task.
pub(in crate::server) async fn send_message(state: &AppState, auth: &Auth, assistant_id: Uuid, params: &Map<String, Value>, version: Version) -> Result<Value, Failure> {
    let Some(Value::Object(message)) = params.get("message") else {
        return Err(RpcError::invalid_params("Missing or invalid 'message' in params").into());
    };
    let (input, context_id) = message_input(message)?;
    let thread_id = context_id.unwrap_or_else(Uuid::now_v7);
    let body = RunCreate { if_not_exists: Some(IfNotExists::Create), ..RunCreate::for_assistant(assistant_id, input) };
    let (run, result) = run_and_wait(state, auth, Some(thread_id), body).await?;
    let values = thread_values(state, auth, thread_id).await?;
    let status = if result.get("__error__").is_some() {
        RunStatus::Error
    } else if result.get("__interrupt__").is_some_and(|interrupts| interrupts.as_array().is_some_and(|list| !list.is_empty())) {
        RunStatus::Interrupted
    } else {
        RunStatus::Success
    };
    let task = task(&run, status, &values, Some(&result), None);
    Ok(match version {
        Version::V0_3 => task,
        Version::V1_0 => json!({"task": task_v1(task)}),
    })
}

/// `tasks/get` (1.0: `GetTask`): a task of this assistant on a thread the caller may read.
pub(in crate::server) async fn get_task(state: &AppState, auth: &Auth, assistant_id: Uuid, params: &Map<String, Value>, version: Version) -> Result<Value, Failure> {
    let Some(task_id) = params.get("id").and_then(Value::as_str) else {
        return Err(RpcError::invalid_params("Missing required parameter: id (task_id)").into());
    };
    let not_found = || Failure::Rpc(RpcError::new(TASK_NOT_FOUND, format!("Task not found: {task_id}")));
    let history_length = match params.get("historyLength") {
        None | Some(Value::Null) => None,
        Some(value) => Some(value.as_u64().and_then(|length| usize::try_from(length).ok()).ok_or_else(|| RpcError::invalid_params("historyLength must be a whole number ≥ 0"))?),
    };
    let (thread_id, run_id) = match task_id.split_once(':') {
        Some((thread, run)) => (Uuid::parse_str(thread), Uuid::parse_str(run)),
        None => (params.get("contextId").and_then(Value::as_str).map_or(Ok(Uuid::nil()), Uuid::parse_str), Uuid::parse_str(task_id)),
    };
    let (Ok(thread_id), Ok(run_id)) = (thread_id, run_id) else { return Err(not_found()) };
    let authorization = auth.authorize(Endpoint::RunsGet { thread_id }).await?;
    let filter = authorization.filter(Resource::Threads, Action::Read).cloned();
    let thread = match state.storage().get_thread(thread_id, filter).await {
        Ok(thread) => thread,
        Err(StorageError::NotFound) => return Err(not_found()),
        Err(other) => return Err(ApiError::from(other).into()),
    };
    let run = match state.storage().get_run(thread_id, run_id).await {
        Ok(run) if run.assistant_id == assistant_id => run,
        Ok(_) | Err(StorageError::NotFound) => return Err(not_found()),
        Err(other) => return Err(ApiError::from(other).into()),
    };
    let values = thread.values.unwrap_or(Value::Null);
    let task = task(&run, run.status, &values, None, history_length);
    Ok(match version {
        Version::V0_3 => task,
        Version::V1_0 => task_v1(task),
    })
}

/// Streaming, cancelling and listing tasks: not offered (the card says `streaming: false`).
pub(in crate::server) fn unsupported(method: &str) -> Failure {
    RpcError::new(UNSUPPORTED, format!("{method} is not supported by this agent: use message/send and tasks/get (1.0: SendMessage and GetTask)")).into()
}

/// The thread's values after the run, read as the caller (`threads.read` and its filter), so
/// a thread that changed hands since is never shown; gone or not readable: none.
async fn thread_values(state: &AppState, auth: &Auth, thread_id: Uuid) -> Result<Value, ApiError> {
    let authorization = auth.authorize(Endpoint::ThreadsRead { thread_id }).await?;
    let filter = authorization.filter(Resource::Threads, Action::Read).cloned();
    match state.storage().get_thread(thread_id, filter).await {
        Ok(thread) => Ok(thread.values.unwrap_or(Value::Null)),
        Err(StorageError::NotFound) => Ok(Value::Null),
        Err(other) => Err(other.into()),
    }
}

fn task_state(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Pending => "submitted",
        RunStatus::Running => "working",
        RunStatus::Success => "completed",
        RunStatus::Error | RunStatus::Timeout => "failed",
        RunStatus::Interrupted => "input-required",
    }
}

/// The A2A task of `run`: its state, the thread's messages as history (the last
/// `history_length`), and the last agent message as its artifact once completed. `result` is
/// the run's `/wait` result when it was just run (the error or interrupt it ended with).
fn task(run: &Run, status: RunStatus, values: &Value, result: Option<&Value>, history_length: Option<usize>) -> Value {
    let context_id = run.thread_id.to_string();
    let task_id = format!("{}:{}", run.thread_id, run.run_id);
    let mut history: Vec<Value> = values.get("messages").and_then(Value::as_array).into_iter().flatten().filter_map(|message| a2a_message(message, &context_id)).collect();
    if let Some(length) = history_length {
        history.drain(..history.len().saturating_sub(length));
    }
    let mut task_status = json!({"state": task_state(status), "timestamp": format_micros(now_micros())});
    let status_text = match (status, result) {
        (RunStatus::Error, Some(result)) => result["__error__"].get("message").and_then(Value::as_str).map(str::to_string),
        (RunStatus::Error | RunStatus::Timeout, _) => Some("The run failed".to_string()),
        _ => None,
    };
    if let Some(text) = status_text {
        task_status["message"] = agent_text(&text, &context_id, &task_id);
    }
    if let (RunStatus::Interrupted, Some(result)) = (status, result) {
        task_status["message"] = json!({
            "kind": "message", "role": "agent", "messageId": Uuid::new_v4().to_string(), "contextId": context_id, "taskId": task_id,
            "parts": [{"kind": "data", "data": {"__interrupt__": result["__interrupt__"]}}],
        });
    }
    let mut task = json!({"kind": "task", "id": task_id, "contextId": context_id, "status": task_status, "history": history});
    if status == RunStatus::Success {
        let parts = history.last().filter(|message| message["role"] == "agent").map_or_else(|| json!([{"kind": "data", "data": values}]), |message| message["parts"].clone());
        task["artifacts"] = json!([{
            "artifactId": Uuid::new_v4().to_string(),
            "name": "Assistant Response",
            "description": format!("Response from assistant {}", run.assistant_id),
            "parts": parts,
        }]);
    }
    task
}

/// A 0.3 task (as `task` builds it) in 1.0's names: no `kind` tags, enum-style roles and
/// states. Only the protocol's own fields are renamed, never what a data part carries.
fn task_v1(mut task: Value) -> Value {
    fn message_v1(message: &mut Value) {
        let Some(object) = message.as_object_mut() else { return };
        object.remove("kind");
        let role = match object.get("role").and_then(Value::as_str) {
            Some("user") => "ROLE_USER",
            Some("agent") => "ROLE_AGENT",
            _ => "ROLE_UNSPECIFIED",
        };
        object.insert("role".to_string(), Value::from(role));
        parts_v1(object.get_mut("parts"));
    }
    fn parts_v1(parts: Option<&mut Value>) {
        for part in parts.and_then(Value::as_array_mut).into_iter().flatten() {
            if let Some(part) = part.as_object_mut() {
                part.remove("kind");
            }
        }
    }
    let Some(object) = task.as_object_mut() else { return task };
    object.remove("kind");
    if let Some(status) = object.get_mut("status").and_then(Value::as_object_mut) {
        let state = match status.get("state").and_then(Value::as_str) {
            Some("submitted") => "TASK_STATE_SUBMITTED",
            Some("working") => "TASK_STATE_WORKING",
            Some("completed") => "TASK_STATE_COMPLETED",
            Some("failed") => "TASK_STATE_FAILED",
            Some("input-required") => "TASK_STATE_INPUT_REQUIRED",
            _ => "TASK_STATE_UNSPECIFIED",
        };
        status.insert("state".to_string(), Value::from(state));
        if let Some(message) = status.get_mut("message") {
            message_v1(message);
        }
    }
    for message in object.get_mut("history").and_then(Value::as_array_mut).into_iter().flatten() {
        message_v1(message);
    }
    for artifact in object.get_mut("artifacts").and_then(Value::as_array_mut).into_iter().flatten() {
        parts_v1(artifact.get_mut("parts"));
    }
    task
}

fn agent_text(text: &str, context_id: &str, task_id: &str) -> Value {
    json!({"kind": "message", "role": "agent", "messageId": Uuid::new_v4().to_string(), "contextId": context_id, "taskId": task_id, "parts": [{"kind": "text", "text": text}]})
}

/// A LangChain message of the thread as an A2A message (human → `user`, ai → `agent`; other
/// kinds — system, tool — are not part of the conversation A2A shows).
fn a2a_message(message: &Value, context_id: &str) -> Option<Value> {
    let role = match message.get("type").or_else(|| message.get("role")).and_then(Value::as_str)? {
        "human" | "user" => "user",
        "ai" | "assistant" => "agent",
        _ => return None,
    };
    let parts = match message.get("content") {
        Some(Value::String(text)) => vec![json!({"kind": "text", "text": text})],
        Some(Value::Array(blocks)) => blocks
            .iter()
            .map(|block| match block {
                Value::String(text) => json!({"kind": "text", "text": text}),
                _ => match block.get("text").and_then(Value::as_str) {
                    Some(text) if block.get("type").and_then(Value::as_str) == Some("text") => json!({"kind": "text", "text": text}),
                    _ => json!({"kind": "data", "data": block}),
                },
            })
            .collect(),
        _ => Vec::new(),
    };
    let id = message.get("id").and_then(Value::as_str).map_or_else(|| Uuid::new_v4().to_string(), str::to_string);
    Some(json!({"kind": "message", "role": role, "parts": parts, "messageId": id, "contextId": context_id}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().cloned().expect("object")
    }

    #[test]
    fn parts_become_the_input() {
        let message = object(json!({"role": "user", "messageId": "m1", "parts": [{"kind": "text", "text": "a"}, {"kind": "data", "data": {"locale": "en"}}, {"kind": "text", "text": "b"}]}));
        let (input, context) = message_input(&message).expect("input");
        assert_eq!(input, json!({"locale": "en", "messages": [{"role": "user", "content": "a\nb", "id": "m1"}]}));
        assert_eq!(context, None);
    }

    #[test]
    fn bad_messages_are_invalid_params() {
        for message in [
            json!({"role": "robot", "parts": [{"kind": "text", "text": "a"}]}),
            json!({"role": "user", "parts": []}),
            json!({"role": "user"}),
            json!({"role": "user", "parts": [{"kind": "file", "file": {"uri": "x"}}]}),
            json!({"role": "user", "parts": [{"kind": "text", "text": 5}]}),
            json!({"role": "user", "parts": [{"kind": "data", "data": [1]}]}),
            json!({"role": "user", "parts": [{"note": "neither a kind nor a part field"}]}),
            json!({"role": "user", "contextId": "thread-123", "parts": [{"kind": "text", "text": "a"}]}),
        ] {
            let error = message_input(&object(message.clone())).expect_err("refused");
            assert_eq!(error.code, -32602, "{message}");
        }
    }

    #[test]
    fn version_1_0_parts_and_roles_are_read() {
        let message = object(json!({"role": "ROLE_USER", "messageId": "m1", "parts": [{"text": "a"}, {"data": {"kind": "mine"}}]}));
        let (input, _) = message_input(&message).expect("input");
        assert_eq!(input, json!({"kind": "mine", "messages": [{"role": "user", "content": "a", "id": "m1"}]}));
        let error = message_input(&object(json!({"role": "ROLE_USER", "parts": [{"url": "https://x"}]}))).expect_err("file");
        assert!(error.message.contains("file parts"), "{}", error.message);
    }

    #[test]
    fn a_task_in_1_0_names_keeps_data_parts_as_they_are() {
        let task = json!({
            "kind": "task", "id": "t", "contextId": "c",
            "status": {"state": "input-required", "message": {"kind": "message", "role": "agent", "parts": [{"kind": "data", "data": {"kind": "x", "role": "user"}}]}},
            "history": [{"kind": "message", "role": "user", "parts": [{"kind": "text", "text": "hi"}]}],
            "artifacts": [{"artifactId": "a", "parts": [{"kind": "text", "text": "echo"}]}],
        });
        assert_eq!(task_v1(task), json!({
            "id": "t", "contextId": "c",
            "status": {"state": "TASK_STATE_INPUT_REQUIRED", "message": {"role": "ROLE_AGENT", "parts": [{"data": {"kind": "x", "role": "user"}}]}},
            "history": [{"role": "ROLE_USER", "parts": [{"text": "hi"}]}],
            "artifacts": [{"artifactId": "a", "parts": [{"text": "echo"}]}],
        }));
    }

    #[test]
    fn thread_messages_become_history() {
        let values = json!({"messages": [
            {"type": "system", "content": "be nice", "id": "s"},
            {"type": "human", "content": "hi", "id": "h"},
            {"type": "ai", "content": [{"type": "text", "text": "echo: hi"}], "id": "a"},
        ]});
        let run = Run {
            run_id: Uuid::nil(),
            thread_id: Uuid::nil(),
            assistant_id: Uuid::nil(),
            created_at: 0,
            updated_at: 0,
            status: RunStatus::Success,
            metadata: Map::new(),
            multitask_strategy: "enqueue".into(),
            kwargs: Map::new(),
        };
        let task = task(&run, RunStatus::Success, &values, None, Some(1));
        assert_eq!(task["status"]["state"], "completed");
        assert_eq!(task["history"].as_array().map(Vec::len), Some(1));
        assert_eq!(task["history"][0]["role"], "agent");
        assert_eq!(task["artifacts"][0]["parts"], json!([{"kind": "text", "text": "echo: hi"}]));
    }
}
