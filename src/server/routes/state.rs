//! Thread state and history (spec runs.md §7), through the graph's own `aget_state`,
//! `aget_state_history` and `aupdate_state` with the server's checkpointer.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::{is_true, last, path_uuid, query_pairs};
use crate::auth::{Action, Endpoint, Resource};
use crate::error::ApiError;
use crate::auth::AuthUser;
use crate::python::{GraphUse, StateOp};
use crate::server::AppState;
use crate::server::auth::Auth;
use crate::server::extract::{ApiJson, ApiPath};
use crate::storage::{StorageError, Thread, ThreadOutcome, ThreadStatus};
use crate::timestamp::now_micros;

pub(in crate::server) fn router() -> super::Routes {
    super::Routes::new()
        .route("/threads/{thread_id}/state", get(get_state).post(update_state))
        .route("/threads/{thread_id}/state/checkpoint", post(get_state_at_checkpoint))
        .route("/threads/{thread_id}/state/{checkpoint_id}", get(get_state_at))
        .route("/threads/{thread_id}/history", get(history_get).post(history_post))
}

fn not_found(thread_id: Uuid) -> ApiError {
    ApiError::not_found(format!("Thread with ID {thread_id} not found"))
}

/// Authorizes `endpoint` and loads the thread through the read filter; with what a graph
/// factory is built for.
async fn visible_thread(state: &AppState, auth: &Auth, thread_id: Uuid, endpoint: Endpoint) -> Result<(Thread, GraphUse), ApiError> {
    let authorization = auth.authorize(endpoint).await?;
    let filter = authorization.filter(Resource::Threads, Action::Read).cloned();
    let thread = state.storage().get_thread(thread_id, filter).await.map_err(|error| match error {
        StorageError::NotFound => not_found(thread_id),
        other => other.into(),
    })?;
    let graph_use = thread_use(state, &thread, authorization.user).await;
    Ok((thread, graph_use))
}

/// A state read or update of `thread` by `user`: a graph factory is built with the config of
/// the assistant the thread's runs use (its metadata names it), under the thread's own config,
/// so the state is read with the graph its runs had.
async fn thread_use(state: &AppState, thread: &Thread, user: Option<AuthUser>) -> GraphUse {
    let mut config = Map::new();
    let assistant_id = thread.metadata.get("assistant_id").and_then(Value::as_str).and_then(|id| Uuid::parse_str(id).ok());
    if let Some(assistant_id) = assistant_id
        && let Ok(assistant) = state.storage().get_assistant(assistant_id, None).await
    {
        config = assistant.config;
    }
    super::super::service::runs::merge_into(&mut config, Some(&thread.config));
    GraphUse { config, user }
}

fn graph_of(thread: &Thread) -> Option<String> {
    thread.metadata.get("graph_id").and_then(Value::as_str).map(str::to_string)
}

/// Why `graph_id` cannot be used, when this server has no such graph (a thread's metadata may
/// name any): the reference's words.
pub(in crate::server) fn unknown_graph(state: &AppState, graph_id: &str) -> Option<String> {
    if state.graph_ids().any(|known| known == graph_id) {
        return None;
    }
    let known: Vec<String> = state.graph_ids().map(|id| format!("'{id}'")).collect();
    Some(format!("Graph '{graph_id}' not found. Expected one of: [{}]", known.join(", ")))
}

/// The thread's graph, if it names one; one this server does not have is a 404.
fn known_graph_of(state: &AppState, thread: &Thread) -> Result<Option<String>, ApiError> {
    match graph_of(thread) {
        Some(graph_id) => match unknown_graph(state, &graph_id) {
            Some(problem) => Err(ApiError::not_found(problem)),
            None => Ok(Some(graph_id)),
        },
        None => Ok(None),
    }
}

fn query_flag(query: Option<&str>, name: &str) -> bool {
    query_pairs(query).is_ok_and(|pairs| is_true(last(&pairs, name)))
}

async fn state_json(state: &AppState, (thread, graph_use): &(Thread, GraphUse), configurable: Map<String, Value>, subgraphs: bool) -> Result<Value, ApiError> {
    let Some(graph_id) = known_graph_of(state, thread)? else {
        return state.python().state(StateOp::Empty, graph_use).await.map_err(ApiError::internal);
    };
    state.python().state(StateOp::Get { graph_id, configurable, subgraphs }, graph_use).await.map_err(ApiError::internal)
}

fn root_configurable(thread_id: Uuid) -> Map<String, Value> {
    let mut configurable = Map::new();
    configurable.insert("thread_id".to_string(), json!(thread_id.to_string()));
    configurable.insert("checkpoint_ns".to_string(), json!(""));
    configurable
}

async fn get_state(State(state): State<AppState>, auth: Auth, ApiPath(raw): ApiPath<String>, RawQuery(query): RawQuery) -> Result<axum::Json<Value>, ApiError> {
    let thread_id = path_uuid(&raw, "thread")?;
    let thread = visible_thread(&state, &auth, thread_id, Endpoint::ThreadsRead { thread_id }).await?;
    Ok(axum::Json(state_json(&state, &thread, root_configurable(thread_id), query_flag(query.as_deref(), "subgraphs")).await?))
}

async fn get_state_at(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((raw, checkpoint_id)): ApiPath<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<axum::Json<Value>, ApiError> {
    let thread_id = path_uuid(&raw, "thread")?;
    let thread = visible_thread(&state, &auth, thread_id, Endpoint::ThreadsRead { thread_id }).await?;
    let mut configurable = root_configurable(thread_id);
    configurable.insert("checkpoint_id".to_string(), json!(checkpoint_id));
    Ok(axum::Json(state_json(&state, &thread, configurable, query_flag(query.as_deref(), "subgraphs")).await?))
}

#[derive(Debug, Deserialize)]
struct CheckpointRequest {
    checkpoint: Map<String, Value>,
    subgraphs: Option<bool>,
}

async fn get_state_at_checkpoint(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(raw): ApiPath<String>,
    ApiJson(request): ApiJson<CheckpointRequest>,
) -> Result<axum::Json<Value>, ApiError> {
    let thread_id = path_uuid(&raw, "thread")?;
    let thread = visible_thread(&state, &auth, thread_id, Endpoint::ThreadsRead { thread_id }).await?;
    let mut configurable = root_configurable(thread_id);
    configurable.extend(super::checkpoint_position(Some(request.checkpoint)));
    Ok(axum::Json(state_json(&state, &thread, configurable, request.subgraphs.unwrap_or(false)).await?))
}

#[derive(Debug, Default, Deserialize)]
struct UpdateRequest {
    values: Option<Value>,
    as_node: Option<String>,
    checkpoint: Option<Map<String, Value>>,
    checkpoint_id: Option<String>,
}

async fn update_state(State(state): State<AppState>, auth: Auth, ApiPath(raw): ApiPath<String>, ApiJson(request): ApiJson<UpdateRequest>) -> Result<axum::Json<Value>, ApiError> {
    let thread_id = path_uuid(&raw, "thread")?;
    let authorization = auth.authorize(Endpoint::ThreadsUpdateState { thread_id }).await?;
    let read = authorization.filter(Resource::Threads, Action::Read).cloned();
    let thread = state.storage().get_thread(thread_id, read).await.map_err(|error| match error {
        StorageError::NotFound => not_found(thread_id),
        other => other.into(),
    })?;
    if let Some(filter) = authorization.filter(Resource::Threads, Action::Update)
        && !filter.matches(&thread.metadata)
    {
        return Err(ApiError::reason(StatusCode::FORBIDDEN));
    }
    let Some(graph_id) = known_graph_of(&state, &thread)? else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("Thread '{thread_id}' has no assigned graph ID. Create the thread with `metadata.graph_id` (the SDKs' `graph_id=`) or run it once first."),
        ));
    };
    let active = state.storage().active_runs(thread_id).await?;
    if !active.is_empty() {
        let ids: Vec<String> = active.iter().map(|run| run.run_id.to_string()).collect();
        return Err(ApiError::new(StatusCode::CONFLICT, format!("Thread {thread_id} has in-flight runs: {}", ids.join(", "))));
    }
    let mut configurable = root_configurable(thread_id);
    configurable.extend(super::checkpoint_position(request.checkpoint));
    if let Some(checkpoint_id) = request.checkpoint_id {
        configurable.insert("checkpoint_id".to_string(), json!(checkpoint_id));
    }
    let update = StateOp::Update { graph_id, configurable, values: request.values.unwrap_or(Value::Null), as_node: request.as_node };
    let graph_use = thread_use(&state, &thread, authorization.user.clone()).await;
    let updated = state.python().state(update, &graph_use).await.map_err(|error| match error.kind() {
        Some("NodeNotFound") => ApiError::new(StatusCode::BAD_REQUEST, error.message()),
        _ => ApiError::internal(error),
    })?;
    state.storage().finish_thread(thread_id, outcome_of(&updated), now_micros()).await?;
    publish_state_update(&state, &thread, graph_use).await;
    let checkpoint = updated.get("checkpoint").cloned().unwrap_or(Value::Null);
    Ok(axum::Json(json!({
        "checkpoint": checkpoint,
        "configurable": checkpoint,
        "checkpoint_id": checkpoint.get("checkpoint_id").cloned().unwrap_or(Value::Null),
    })))
}

/// The thread row's outcome after a state update answered `updated` (its summary): interrupted
/// when nodes are left to run.
fn outcome_of(updated: &Value) -> ThreadOutcome {
    let summary = updated.get("summary").cloned().unwrap_or(Value::Null);
    let has_next = summary.get("has_next").and_then(Value::as_bool).unwrap_or(false);
    ThreadOutcome {
        values: crate::runs::summary_values(&summary),
        interrupts: summary.get("interrupts").and_then(Value::as_object).cloned().unwrap_or_default(),
        status: if has_next { ThreadStatus::Interrupted } else { ThreadStatus::Idle },
        error: None,
    }
}

/// Applies `supersteps` (validated: each a non-empty list of `{values, command, as_node}`) to
/// the state of `thread`, a thread just created, with graph `graph_id`, as `user`: through
/// `abulk_update_state`, each superstep a checkpoint; then the row gets the state's values
/// and status. An update langgraph refuses (an unknown node, several updates as input) is a
/// 400 in its words; the caller undoes the creation on any failure.
pub(in crate::server) async fn apply_supersteps(state: &AppState, thread: &Thread, user: Option<AuthUser>, graph_id: String, supersteps: Value) -> Result<(), ApiError> {
    let thread_id = thread.thread_id;
    let graph_use = thread_use(state, thread, user).await;
    let update = StateOp::BulkUpdate { graph_id, configurable: root_configurable(thread_id), supersteps };
    let updated = state.python().state(update, &graph_use).await.map_err(|error| match error.kind() {
        Some("InvalidUpdate") => ApiError::new(StatusCode::BAD_REQUEST, error.message()),
        _ => ApiError::internal(error),
    })?;
    state.storage().finish_thread(thread_id, outcome_of(&updated), now_micros()).await?;
    Ok(())
}

/// A `state_update` event on the thread's stream, as the reference sends one after a state
/// update: the thread's state now and its id. Only this process's subscribers of this thread
/// (the one created at `thread.created_at`; each passed `threads.read` on it) receive it; none,
/// and the state is not read. A state that cannot be read is logged and not sent.
pub(in crate::server) async fn publish_state_update(state: &AppState, thread: &Thread, graph_use: GraphUse) {
    let Some(channel) = state.runs().thread_listeners(thread.thread_id, thread.created_at) else { return };
    let thread_id = thread.thread_id;
    match state_json(state, &(thread.clone(), graph_use), root_configurable(thread_id), false).await {
        Ok(now) => channel.publish("state_update", json!({"state": now, "thread_id": thread_id.to_string()}).to_string().into()),
        Err(error) => tracing::warn!(%thread_id, error = %error.detail, "cannot read the state for the thread stream's state_update"),
    }
}

/// `before` as a checkpoint id: a string, a Checkpoint object or `{"configurable": {...}}`.
fn before_id(before: Option<&Value>) -> Option<String> {
    let before = before?;
    match before {
        Value::String(id) => Some(id.clone()),
        Value::Object(map) => map
            .get("checkpoint_id")
            .or_else(|| map.get("configurable").and_then(|configurable| configurable.get("checkpoint_id")))
            .and_then(Value::as_str)
            .map(str::to_string),
        _ => None,
    }
}

async fn history(state: &AppState, auth: &Auth, thread_id: Uuid, limit: i64, before: Option<String>, metadata: Option<Map<String, Value>>, checkpoint: Option<Map<String, Value>>) -> Result<Value, ApiError> {
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::validation(format!("limit: {limit} is not between 1 and 1000")));
    }
    let (thread, graph_use) = visible_thread(state, auth, thread_id, Endpoint::ThreadsHistory { thread_id }).await?;
    let Some(graph_id) = known_graph_of(state, &thread)? else { return Ok(json!([])) };
    let mut configurable = root_configurable(thread_id);
    configurable.extend(super::checkpoint_position(checkpoint));
    state.python().state(StateOp::History { graph_id, configurable, limit, before, metadata }, &graph_use).await.map_err(ApiError::internal)
}

#[derive(Debug, Default, Deserialize)]
struct HistoryRequest {
    limit: Option<i64>,
    before: Option<Value>,
    metadata: Option<Map<String, Value>>,
    checkpoint: Option<Map<String, Value>>,
}

async fn history_post(State(state): State<AppState>, auth: Auth, ApiPath(raw): ApiPath<String>, ApiJson(request): ApiJson<HistoryRequest>) -> Result<axum::Json<Value>, ApiError> {
    let thread_id = path_uuid(&raw, "thread")?;
    let before = before_id(request.before.as_ref());
    Ok(axum::Json(history(&state, &auth, thread_id, request.limit.unwrap_or(1), before, request.metadata, request.checkpoint).await?))
}

async fn history_get(State(state): State<AppState>, auth: Auth, ApiPath(raw): ApiPath<String>, RawQuery(query): RawQuery) -> Result<axum::Json<Value>, ApiError> {
    let thread_id = path_uuid(&raw, "thread")?;
    let pairs = query_pairs(query.as_deref())?;
    let limit = last(&pairs, "limit").map_or(Ok(1), str::parse::<i64>).map_err(|_| ApiError::validation("limit: must be an integer"))?;
    Ok(axum::Json(history(&state, &auth, thread_id, limit, last(&pairs, "before").map(str::to_string), None, None).await?))
}
