//! JSON-RPC 2.0, as `/mcp` (MCP's streamable HTTP transport) and `/a2a/{assistant_id}` (A2A)
//! carry it: one message per POST body, answered with one response object.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::error::ApiError;

/// A JSON-RPC error object (`code`, `message`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::server) struct RpcError {
    pub(in crate::server) code: i64,
    pub(in crate::server) message: String,
}

impl RpcError {
    pub(in crate::server) fn new(code: i64, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    pub(in crate::server) fn parse_error(message: impl Into<String>) -> Self {
        Self::new(-32700, message)
    }

    pub(in crate::server) fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(-32600, message)
    }

    pub(in crate::server) fn method_not_found(method: &str) -> Self {
        Self::new(-32601, format!("Method not found: {method}"))
    }

    pub(in crate::server) fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(-32602, message)
    }
}

/// Why a method failed: a JSON-RPC error in a 200 answer, or an HTTP error (`{"detail": …}`)
/// for what the API answers with a status whatever the protocol — the caller is not
/// authenticated (401), not allowed (403), or the server cannot serve now (503).
#[derive(Debug)]
pub(in crate::server) enum Failure {
    Rpc(RpcError),
    Http(ApiError),
}

impl From<RpcError> for Failure {
    fn from(error: RpcError) -> Self {
        Self::Rpc(error)
    }
}

impl From<ApiError> for Failure {
    /// 401, 403 and 503 stay HTTP answers; other client errors become invalid-params errors
    /// carrying the API's detail, server errors an internal error (the detail is generic).
    fn from(error: ApiError) -> Self {
        match error.status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::SERVICE_UNAVAILABLE => Self::Http(error),
            status if status.is_server_error() => Self::Rpc(RpcError::new(-32603, error.detail)),
            _ => Self::Rpc(RpcError::invalid_params(error.detail)),
        }
    }
}

/// One message of a POST body.
#[derive(Debug)]
pub(in crate::server) enum Message {
    /// A request: answered with a response of the same `id`.
    Request { id: Value, method: String, params: Value },
    /// A notification (no `id`), or a client's response to a server request: accepted, no answer.
    Notification,
}

/// Parses one JSON-RPC message. Batches (arrays) are refused, as the 2025-06-18 MCP revision
/// and A2A do.
pub(in crate::server) fn parse(body: &[u8]) -> Result<Message, RpcError> {
    let value: Value = serde_json::from_slice(body).map_err(|error| RpcError::parse_error(format!("Invalid JSON: {error}")))?;
    let Value::Object(object) = value else {
        let what = if value.is_array() { "batches are not supported: send one message per request" } else { "the body must be a JSON object" };
        return Err(RpcError::invalid_request(format!("Invalid JSON-RPC message: {what}")));
    };
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(RpcError::invalid_request("Invalid JSON-RPC message: `jsonrpc` must be \"2.0\""));
    }
    let id = object.get("id").cloned();
    if let Some(id) = &id
        && !(id.is_string() || id.is_number() || id.is_null())
    {
        return Err(RpcError::invalid_request("Invalid JSON-RPC message: `id` must be a string or a number"));
    }
    let method = match object.get("method") {
        Some(Value::String(method)) => method.clone(),
        Some(_) => return Err(RpcError::invalid_request("Invalid JSON-RPC message: `method` must be a string")),
        None if id.is_some() && (object.contains_key("result") || object.contains_key("error")) => return Ok(Message::Notification),
        None => return Err(RpcError::invalid_request("Invalid JSON-RPC message: `method` is required")),
    };
    let params = object.get("params").cloned().unwrap_or(Value::Null);
    if !(params.is_object() || params.is_array() || params.is_null()) {
        return Err(RpcError::invalid_request("Invalid JSON-RPC message: `params` must be an object"));
    }
    match id {
        None => Ok(Message::Notification),
        Some(id) => Ok(Message::Request { id, method, params }),
    }
}

/// `params` as an object (absent or `null`: empty).
pub(in crate::server) fn params_object(params: Value) -> Result<Map<String, Value>, RpcError> {
    match params {
        Value::Object(object) => Ok(object),
        Value::Null => Ok(Map::new()),
        _ => Err(RpcError::invalid_params("`params` must be an object")),
    }
}

/// The response to request `id`.
pub(in crate::server) fn response(id: Value, outcome: Result<Value, RpcError>) -> Value {
    match outcome {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err(error) => json!({"jsonrpc": "2.0", "id": id, "error": {"code": error.code, "message": error.message}}),
    }
}

/// The answer to request `id`: the response in a 200, or the HTTP error.
pub(in crate::server) fn answer(id: Value, outcome: Result<Value, Failure>) -> Response {
    match outcome {
        Ok(result) => axum::Json(response(id, Ok(result))).into_response(),
        Err(Failure::Rpc(error)) => axum::Json(response(id, Err(error))).into_response(),
        Err(Failure::Http(error)) => error.into_response(),
    }
}

/// A message that could not be read: 400 with the error response (`id` null).
pub(in crate::server) fn malformed(error: RpcError) -> Response {
    (StatusCode::BAD_REQUEST, axum::Json(response(Value::Null, Err(error)))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_requests_notifications_or_errors() {
        let request = parse(br#"{"jsonrpc": "2.0", "id": 1, "method": "ping"}"#).expect("request");
        assert!(matches!(request, Message::Request { ref method, .. } if method == "ping"));
        assert!(matches!(parse(br#"{"jsonrpc": "2.0", "method": "notifications/initialized"}"#), Ok(Message::Notification)));
        assert!(matches!(parse(br#"{"jsonrpc": "2.0", "id": 3, "result": {}}"#), Ok(Message::Notification)));
        assert_eq!(parse(b"{").map(|_| ()).expect_err("malformed").code, -32700);
        for bad in [&br#"[{"jsonrpc": "2.0", "id": 1, "method": "ping"}]"#[..], br#"{"id": 1, "method": "ping"}"#, br#"{"jsonrpc": "2.0", "id": {}, "method": "ping"}"#, br#"{"jsonrpc": "2.0", "id": 1}"#, br#"{"jsonrpc": "2.0", "id": 1, "method": "x", "params": 5}"#] {
            assert_eq!(parse(bad).map(|_| ()).expect_err("refused").code, -32600, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn api_errors_keep_their_status_only_for_auth_and_availability() {
        assert!(matches!(Failure::from(ApiError::new(StatusCode::FORBIDDEN, "no")), Failure::Http(_)));
        assert!(matches!(Failure::from(ApiError::not_found("Thread or assistant not found.")), Failure::Rpc(RpcError { code: -32602, .. })));
        assert!(matches!(Failure::from(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "x")), Failure::Rpc(RpcError { code: -32603, .. })));
    }
}
