//! `/assistants/{id}/graph`, `/schemas`, `/subgraphs`: the assistant's graph, introspected in
//! the interpreter.

use axum::extract::{RawQuery, State};
use axum::routing::get;
use serde_json::Value;

use super::assistants::resolve_id;
use super::{is_true, last, query_pairs};
use crate::auth::{Action, Endpoint, Resource};
use crate::error::ApiError;
use crate::python::{GraphQuery, GraphUse};
use crate::server::AppState;
use crate::server::auth::Auth;
use crate::server::extract::ApiPath;
use crate::storage::StorageError;

pub(in crate::server) fn router() -> super::Routes {
    super::Routes::new()
        .route("/assistants/{assistant_id}/graph", get(graph))
        .route("/assistants/{assistant_id}/schemas", get(schemas))
        .route("/assistants/{assistant_id}/subgraphs", get(subgraphs))
        .route("/assistants/{assistant_id}/subgraphs/{namespace}", get(subgraphs_in))
}

/// Authorizes `assistants.read` and returns the assistant's graph id and what a graph factory
/// is built for: the assistant's config, the caller (404 `Not Found` when missing or filtered).
async fn graph_id_of(state: &AppState, auth: &Auth, raw: &str) -> Result<(String, GraphUse), ApiError> {
    let assistant_id = resolve_id(state, raw)?;
    let authorization = auth.authorize(Endpoint::AssistantsRead { assistant_id }).await?;
    let filter = authorization.filter(Resource::Assistants, Action::Read).cloned();
    let assistant = state.storage().get_assistant(assistant_id, filter).await.map_err(|error| match error {
        StorageError::NotFound => ApiError::not_found("Not Found"),
        other => other.into(),
    })?;
    Ok((assistant.graph_id, GraphUse { config: assistant.config, user: authorization.user }))
}

/// `xray`: `true`/`false` (any case) or a positive depth.
fn parse_xray(value: Option<&str>) -> Result<Value, ApiError> {
    match value {
        None => Ok(Value::Bool(false)),
        Some(text) if text.eq_ignore_ascii_case("true") => Ok(Value::Bool(true)),
        Some(text) if text.eq_ignore_ascii_case("false") => Ok(Value::Bool(false)),
        Some(text) => match text.parse::<i64>() {
            Ok(depth) if depth > 0 => Ok(Value::from(depth)),
            _ => Err(ApiError::validation("Invalid xray value")),
        },
    }
}

async fn graph(State(state): State<AppState>, auth: Auth, ApiPath(raw): ApiPath<String>, RawQuery(query): RawQuery) -> Result<axum::Json<Value>, ApiError> {
    let pairs = query_pairs(query.as_deref())?;
    let xray = parse_xray(last(&pairs, "xray"))?;
    let (graph_id, graph_use) = graph_id_of(&state, &auth, &raw).await?;
    introspect(&state, GraphQuery::Drawable { graph_id, xray }, &graph_use).await
}

async fn schemas(State(state): State<AppState>, auth: Auth, ApiPath(raw): ApiPath<String>) -> Result<axum::Json<Value>, ApiError> {
    let (graph_id, graph_use) = graph_id_of(&state, &auth, &raw).await?;
    introspect(&state, GraphQuery::Schemas { graph_id }, &graph_use).await
}

async fn subgraphs(State(state): State<AppState>, auth: Auth, ApiPath(raw): ApiPath<String>, RawQuery(query): RawQuery) -> Result<axum::Json<Value>, ApiError> {
    let pairs = query_pairs(query.as_deref())?;
    let (graph_id, graph_use) = graph_id_of(&state, &auth, &raw).await?;
    introspect(&state, GraphQuery::Subgraphs { graph_id, namespace: None, recurse: is_true(last(&pairs, "recurse")) }, &graph_use).await
}

async fn subgraphs_in(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((raw, namespace)): ApiPath<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<axum::Json<Value>, ApiError> {
    let pairs = query_pairs(query.as_deref())?;
    let (graph_id, graph_use) = graph_id_of(&state, &auth, &raw).await?;
    introspect(&state, GraphQuery::Subgraphs { graph_id, namespace: Some(namespace), recurse: is_true(last(&pairs, "recurse")) }, &graph_use).await
}

async fn introspect(state: &AppState, query: GraphQuery, graph_use: &GraphUse) -> Result<axum::Json<Value>, ApiError> {
    match state.python().graph_info(query, graph_use).await {
        Ok(Some(value)) => Ok(axum::Json(value)),
        Ok(None) => Err(ApiError::validation("The graph does not support visualization")),
        Err(error) => Err(ApiError::internal(error)),
    }
}
