//! `/a2a/{assistant_id}`: each assistant as an A2A agent (JSON-RPC: `message/send` and
//! `tasks/get` of protocol 0.3, `SendMessage` and `GetTask` of 1.0), and its agent card at `GET /a2a/{assistant_id}`,
//! `/a2a/{assistant_id}/.well-known/agent-card.json` and
//! `/.well-known/agent-card.json?assistant_id=…`.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;
use uuid::Uuid;

use super::assistants::resolve_id;
use super::{last, query_pairs};
use crate::error::ApiError;
use crate::server::AppState;
use crate::server::auth::Auth;
use crate::server::extract::ApiPath;
use crate::server::jsonrpc::{self, Failure, Message, RpcError};
use crate::server::service::a2a::{self, Version};

pub(in crate::server) fn router() -> super::Routes {
    super::Routes::new()
        .route("/a2a/{assistant_id}", get(card_of_path).post(message))
        .route("/a2a/{assistant_id}/.well-known/agent-card.json", get(card_of_path))
        .route("/.well-known/agent-card.json", get(card_of_query))
}

/// Where the caller reaches this server: the scheme and host it used (`X-Forwarded-Proto` /
/// `X-Forwarded-Host` behind a proxy), and `http.mount_prefix`.
fn public_base(state: &AppState, headers: &HeaderMap) -> String {
    let first = |name: &str| headers.get(name).and_then(|value| value.to_str().ok()).and_then(|value| value.split(',').next()).map(str::trim).filter(|value| !value.is_empty());
    let scheme = first("x-forwarded-proto").filter(|scheme| *scheme == "https" || *scheme == "http").unwrap_or("http");
    let host = first("x-forwarded-host").or_else(|| first(header::HOST.as_str())).unwrap_or("localhost");
    format!("{scheme}://{host}{}", state.config().http.mount_prefix.as_deref().unwrap_or(""))
}

async fn card(state: &AppState, auth: &Auth, headers: &HeaderMap, assistant_id: Uuid) -> Result<Response, ApiError> {
    let url = format!("{}/a2a/{assistant_id}", public_base(state, headers));
    Ok(axum::Json(a2a::agent_card(state, auth, assistant_id, &url).await?).into_response())
}

async fn card_of_path(State(state): State<AppState>, auth: Auth, headers: HeaderMap, ApiPath(raw): ApiPath<String>) -> Result<Response, ApiError> {
    let assistant_id = resolve_id(&state, &raw)?;
    card(&state, &auth, &headers, assistant_id).await
}

async fn card_of_query(State(state): State<AppState>, auth: Auth, headers: HeaderMap, RawQuery(query): RawQuery) -> Result<Response, ApiError> {
    let pairs = query_pairs(query.as_deref())?;
    let Some(raw) = last(&pairs, "assistant_id") else {
        return Err(ApiError::validation("Missing required query parameter: assistant_id"));
    };
    let assistant_id = resolve_id(&state, raw)?;
    card(&state, &auth, &headers, assistant_id).await
}

/// One JSON-RPC request. Like the reference, every answer (malformed ones included) is a
/// JSON-RPC response in a 200, except the API's own 401/403/503.
async fn message(State(state): State<AppState>, auth: Auth, ApiPath(raw): ApiPath<String>, body: Bytes) -> Response {
    let (id, method, params) = match jsonrpc::parse(&body) {
        Ok(Message::Request { id, method, params }) => (id, method, params),
        Ok(Message::Notification) => return jsonrpc::answer(Value::Null, Err(RpcError::invalid_request("A2A requests need an `id`").into())),
        Err(error) => return jsonrpc::answer(Value::Null, Err(error.into())),
    };
    let outcome = call(&state, &auth, &raw, &method, params).await;
    jsonrpc::answer(id, outcome)
}

async fn call(state: &AppState, auth: &Auth, raw: &str, method: &str, params: Value) -> Result<Value, Failure> {
    let params = jsonrpc::params_object(params)?;
    let assistant_id = resolve_id(state, raw).map_err(|_| RpcError::invalid_params(format!("Assistant '{raw}' not found")))?;
    match method {
        "message/send" => a2a::send_message(state, auth, assistant_id, &params, Version::V0_3).await,
        "SendMessage" => a2a::send_message(state, auth, assistant_id, &params, Version::V1_0).await,
        "tasks/get" => a2a::get_task(state, auth, assistant_id, &params, Version::V0_3).await,
        "GetTask" => a2a::get_task(state, auth, assistant_id, &params, Version::V1_0).await,
        "message/stream" | "tasks/cancel" | "tasks/resubscribe" | "SendStreamingMessage" | "CancelTask" | "SubscribeToTask" | "ListTasks" => {
            auth.authenticate().await?;
            Err(a2a::unsupported(method))
        }
        other => {
            auth.authenticate().await?;
            Err(RpcError::method_not_found(other).into())
        }
    }
}
