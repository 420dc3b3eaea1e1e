//! `/mcp`: a Model Context Protocol server over the streamable HTTP transport, stateless (no
//! session ids, no server-initiated stream), whose tools are the caller's assistants.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::server::AppState;
use crate::server::auth::Auth;
use crate::server::jsonrpc::{self, Failure, Message, RpcError};
use crate::server::service::mcp;

pub(in crate::server) fn router() -> super::Routes {
    super::Routes::new().route("/mcp", post(message).get(listen).delete(end_session))
}

/// Protocol revisions this server speaks; `initialize` echoes the client's when it is one of
/// them, else offers the newest.
const PROTOCOL_VERSIONS: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

/// The transport requires clients to accept JSON (or SSE) answers.
fn accepts_json(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT).iter().filter_map(|value| value.to_str().ok()).any(|value| value.contains("application/json") || value.contains("text/event-stream"))
}

async fn message(State(state): State<AppState>, auth: Auth, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    if !accepts_json(&headers) {
        return Ok(jsonrpc::malformed(RpcError::invalid_request("Not Acceptable: the Accept header must include application/json or text/event-stream")));
    }
    let message = match jsonrpc::parse(&body) {
        Ok(message) => message,
        Err(error) => return Ok(jsonrpc::malformed(error)),
    };
    let Message::Request { id, method, params } = message else {
        auth.authenticate().await?;
        return Ok(StatusCode::ACCEPTED.into_response());
    };
    let outcome = call(&state, &auth, &method, params).await;
    Ok(jsonrpc::answer(id, outcome))
}

async fn call(state: &AppState, auth: &Auth, method: &str, params: Value) -> Result<Value, Failure> {
    let params = jsonrpc::params_object(params)?;
    match method {
        "initialize" => {
            auth.authenticate().await?;
            let asked = params.get("protocolVersion").and_then(Value::as_str);
            let version = asked.filter(|asked| PROTOCOL_VERSIONS.contains(asked)).unwrap_or(PROTOCOL_VERSIONS[PROTOCOL_VERSIONS.len() - 1]);
            Ok(json!({
                "protocolVersion": version,
                "capabilities": {"tools": {"listChanged": false}},
                "serverInfo": {"name": "LangGraph", "version": env!("CARGO_PKG_VERSION")},
            }))
        }
        "ping" => {
            auth.authenticate().await?;
            Ok(json!({}))
        }
        "tools/list" => mcp::list_tools(state, auth).await,
        "tools/call" => mcp::call_tool(state, auth, &params).await,
        other => {
            auth.authenticate().await?;
            Err(RpcError::method_not_found(other).into())
        }
    }
}

/// No server-initiated stream: the server never sends requests or notifications of its own.
async fn listen(auth: Auth) -> Result<Response, ApiError> {
    auth.authenticate().await?;
    Err(ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "This MCP server is stateless: it offers no stream to listen to (use POST)"))
}

/// Stateless: there is no session to end.
async fn end_session(auth: Auth) -> Result<Response, ApiError> {
    auth.authenticate().await?;
    Err(ApiError::not_found("Session not found: this MCP server is stateless and issues no sessions"))
}
