//! Runs: create (background, stream, wait; on a thread or stateless), list, get, join, join
//! stream, cancel, delete.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{is_true, last, path_uuid, query_pairs};
use crate::auth::{Action, Endpoint, Filter, Resource};
use crate::error::ApiError;
use crate::runs::{CancelAction, RunChannel, RunEvent, wait_result};
use crate::server::AppState;
use crate::server::respond::{self, CancelOnDrop, location_headers, sse_error, sse_response, wait_response};
use crate::server::service::ending::{self, thread_visible};
use crate::server::service::runs::{Answer, Created, OnDisconnect, RunCreate, create_run, thread_answer, thread_result};
use crate::server::auth::Auth;
use crate::server::extract::{ApiJson, ApiJsonList, ApiPath};
use crate::storage::{Run, RunStatus, StorageError};

pub(in crate::server) fn router() -> super::Routes {
    super::Routes::new()
        .route("/threads/{thread_id}/runs", post(create_background).get(list))
        .route("/threads/{thread_id}/runs/stream", post(create_stream))
        .route("/threads/{thread_id}/runs/wait", post(create_wait))
        .route("/threads/{thread_id}/runs/{run_id}", get(get_one).delete(delete))
        .route("/threads/{thread_id}/runs/{run_id}/join", get(join))
        .route("/threads/{thread_id}/runs/{run_id}/stream", get(join_stream))
        .route("/threads/{thread_id}/runs/{run_id}/cancel", post(cancel))
        .route("/threads/{thread_id}/stream", get(thread_stream))
        .route("/runs", post(create_stateless_background))
        .route("/runs/stream", post(create_stateless_stream))
        .route("/runs/wait", post(create_stateless_wait))
        .route("/runs/batch", post(batch))
        .route("/runs/cancel", post(cancel_many))
}

/// The wire form of a run.
fn view(run: &Run) -> Value {
    crate::runs::run_json(run)
}

fn run_paths(created: &Created) -> (String, String) {
    let base = if created.stateless {
        format!("/runs/{}", created.run.run_id)
    } else {
        format!("/threads/{}/runs/{}", created.run.thread_id, created.run.run_id)
    };
    (base.clone(), base)
}

async fn answer(state: AppState, auth: Auth, thread_id: Option<Uuid>, body: RunCreate, answer: Answer) -> Result<Response, ApiError> {
    let created = create_run(&state, &auth, thread_id, body, answer, None).await?;
    let (base, _) = run_paths(&created);
    let thread_base = format!("/threads/{}/runs/{}", created.run.thread_id, created.run.run_id);
    match answer {
        Answer::Background => {
            let headers = location_headers(&base, &base);
            let mut response = (headers, axum::Json(view(&created.run))).into_response();
            response.headers_mut().remove(header::LOCATION);
            Ok(response)
        }
        Answer::Stream => {
            let headers = location_headers(&format!("{base}/stream"), &base);
            let guard = CancelOnDrop::new(&state, &created.run, created.on_disconnect == OnDisconnect::Cancel);
            Ok(sse_response(created.channel.subscribe_from_start(), created.modes, headers, guard))
        }
        Answer::Wait => {
            let headers = location_headers(&format!("{thread_base}/join"), &thread_base);
            let guard = CancelOnDrop::new(&state, &created.run, created.on_disconnect == OnDisconnect::Cancel);
            let thread_id = (!created.stateless).then_some(created.run.thread_id);
            Ok(wait_response(state, created.channel.subscribe_from_start(), thread_id, headers, guard))
        }
    }
}

async fn create_background(State(state): State<AppState>, auth: Auth, ApiPath(raw): ApiPath<String>, ApiJson(body): ApiJson<RunCreate>) -> Result<Response, ApiError> {
    let thread_id = path_uuid(&raw, "thread")?;
    answer(state, auth, Some(thread_id), body, Answer::Background).await
}

async fn create_stream(State(state): State<AppState>, auth: Auth, ApiPath(raw): ApiPath<String>, ApiJson(body): ApiJson<RunCreate>) -> Result<Response, ApiError> {
    let thread_id = path_uuid(&raw, "thread")?;
    answer(state, auth, Some(thread_id), body, Answer::Stream).await
}

async fn create_wait(State(state): State<AppState>, auth: Auth, ApiPath(raw): ApiPath<String>, ApiJson(body): ApiJson<RunCreate>) -> Result<Response, ApiError> {
    let thread_id = path_uuid(&raw, "thread")?;
    answer(state, auth, Some(thread_id), body, Answer::Wait).await
}

async fn create_stateless_background(State(state): State<AppState>, auth: Auth, ApiJson(body): ApiJson<RunCreate>) -> Result<Response, ApiError> {
    answer(state, auth, None, body, Answer::Background).await
}

async fn create_stateless_stream(State(state): State<AppState>, auth: Auth, ApiJson(body): ApiJson<RunCreate>) -> Result<Response, ApiError> {
    answer(state, auth, None, body, Answer::Stream).await
}

async fn create_stateless_wait(State(state): State<AppState>, auth: Auth, ApiJson(body): ApiJson<RunCreate>) -> Result<Response, ApiError> {
    answer(state, auth, None, body, Answer::Wait).await
}

async fn batch(State(state): State<AppState>, auth: Auth, ApiJsonList(bodies): ApiJsonList<RunCreate>) -> Result<axum::Json<Value>, ApiError> {
    if bodies.is_empty() {
        return Err(ApiError::validation("the batch must hold at least one run"));
    }
    let mut runs = Vec::with_capacity(bodies.len());
    for body in bodies {
        let created = create_run(&state, &auth, None, body, Answer::Background, None).await?;
        runs.push(view(&created.run));
    }
    Ok(axum::Json(Value::Array(runs)))
}


async fn list(State(state): State<AppState>, auth: Auth, ApiPath(raw): ApiPath<String>, RawQuery(query): RawQuery) -> Result<axum::Json<Value>, ApiError> {
    let thread_id = path_uuid(&raw, "thread")?;
    let pairs = query_pairs(query.as_deref())?;
    let limit: i64 = last(&pairs, "limit").map_or(Ok(10), str::parse).map_err(|_| ApiError::validation("limit: must be an integer"))?;
    let offset: i64 = last(&pairs, "offset").map_or(Ok(0), str::parse).map_err(|_| ApiError::validation("offset: must be an integer"))?;
    let status = match last(&pairs, "status") {
        Some(text) => Some(RunStatus::parse(text).ok_or_else(|| ApiError::validation(format!("status: unknown run status `{text}`")))?),
        None => None,
    };
    let select: Vec<String> = pairs.iter().filter(|(key, value)| key == "select" && !value.is_empty()).map(|(_, value)| value.clone()).collect();
    let authorization = auth.authorize(Endpoint::RunsList { thread_id }).await?;
    if !thread_visible(&state, thread_id, authorization.filter(Resource::Threads, Action::Read).cloned()).await?
        || !thread_visible(&state, thread_id, authorization.filter(Resource::Threads, Action::Search).cloned()).await?
    {
        return Err(ApiError::not_found(format!("Thread with ID {thread_id} not found")));
    }
    let runs = state.storage().list_runs(thread_id, status, limit.clamp(0, 10_000), offset.max(0)).await?;
    let views = runs
        .iter()
        .map(|run| {
            let full = view(run);
            if select.is_empty() {
                return full;
            }
            Value::Object(select.iter().filter_map(|field| full.get(field).map(|value| (field.clone(), value.clone()))).collect())
        })
        .collect();
    Ok(axum::Json(Value::Array(views)))
}

async fn get_one(State(state): State<AppState>, auth: Auth, ApiPath((raw_thread, raw_run)): ApiPath<(String, String)>) -> Result<axum::Json<Value>, ApiError> {
    let thread_id = path_uuid(&raw_thread, "thread")?;
    let run_id = path_uuid(&raw_run, "run")?;
    let authorization = auth.authorize(Endpoint::RunsGet { thread_id }).await?;
    if !thread_visible(&state, thread_id, authorization.filter(Resource::Threads, Action::Read).cloned()).await? {
        return Err(ApiError::not_found(format!("Thread with ID {thread_id} not found")));
    }
    let run = state.storage().get_run(thread_id, run_id).await.map_err(|error| match error {
        StorageError::NotFound => ApiError::not_found("Not Found"),
        other => other.into(),
    })?;
    Ok(axum::Json(view(&run)))
}

async fn delete(State(state): State<AppState>, auth: Auth, ApiPath((raw_thread, raw_run)): ApiPath<(String, String)>) -> Result<StatusCode, ApiError> {
    let thread_id = path_uuid(&raw_thread, "thread")?;
    let run_id = path_uuid(&raw_run, "run")?;
    let authorization = auth.authorize(Endpoint::RunsDelete { thread_id, run_id }).await?;
    if !thread_visible(&state, thread_id, authorization.filter(Resource::Threads, Action::Delete).cloned()).await? {
        return Err(ApiError::not_found("Not Found"));
    }
    let run = state.storage().get_run(thread_id, run_id).await.map_err(|error| match error {
        StorageError::NotFound => ApiError::not_found("Run not found"),
        other => other.into(),
    })?;
    ending::delete(&state, &run).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn join(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((raw_thread, raw_run)): ApiPath<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let thread_id = path_uuid(&raw_thread, "thread")?;
    let run_id = path_uuid(&raw_run, "run")?;
    let pairs = query_pairs(query.as_deref())?;
    let authorization = auth.authorize(Endpoint::RunsJoin { thread_id }).await?;
    let filter = authorization.filter(Resource::Threads, Action::Read).cloned();
    let base = format!("/threads/{thread_id}/runs/{run_id}");
    let headers = location_headers(&format!("{base}/join"), &base);
    // A stateless run that ended (its temporary thread deleted) before the join came.
    let ended = || ended_temporary_answer(&state, thread_id, run_id, filter.as_ref());
    if !thread_visible(&state, thread_id, filter.clone()).await? {
        return match ended() {
            Some(answer) => Ok((headers, axum::Json(answer)).into_response()),
            None => Err(ApiError::not_found("Thread not found")),
        };
    }
    let run = match state.storage().get_run(thread_id, run_id).await {
        Ok(run) => run,
        Err(StorageError::NotFound) => {
            let answer = ended().unwrap_or_else(|| json!({"__error__": {"error": "HTTPException", "message": "404: Run not found"}}));
            return Ok((headers, axum::Json(answer)).into_response());
        }
        Err(other) => return Err(other.into()),
    };
    let channel = state.runs().reading_channel(&run).await;
    match channel {
        Some(channel) if run.status.is_active() || !channel.is_finished() => {
            let guard = CancelOnDrop::new(&state, &run, is_true(last(&pairs, "cancel_on_disconnect")));
            Ok(wait_response(state, channel.subscribe_from_start(), Some(thread_id), headers, guard))
        }
        _ if run.status.is_active() => {
            let channel = state.runs().open_channel(&run, false).await;
            if channel.is_finished() && channel.len() == 0 {
                // It ended since it was read (and a stateless run's thread may be gone).
                return Ok((headers, axum::Json(finished_answer(&state, thread_id, ended()).await)).into_response());
            }
            Ok(wait_response(state, channel.subscribe_from_start(), Some(thread_id), headers, CancelOnDrop::none()))
        }
        _ => Ok((headers, axum::Json(finished_answer(&state, thread_id, ended()).await)).into_response()),
    }
}

/// A join's answer for a run that is over: its deleted temporary thread's (`ended`), else
/// the thread's.
async fn finished_answer(state: &AppState, thread_id: Uuid, ended: Option<Value>) -> Value {
    match ended {
        Some(answer) => answer,
        None => thread_result(state, thread_id).await,
    }
}

/// The final answer of the stateless run `run_id` whose temporary thread `thread_id` was
/// deleted lately, if the caller may read that thread as it was (its `threads.read` filter
/// is tested on the thread's last metadata, so the answer is never another user's).
fn ended_temporary_answer(state: &AppState, thread_id: Uuid, run_id: Uuid, filter: Option<&Filter>) -> Option<Value> {
    let thread = state.runs().ended_temporary_thread(thread_id, run_id)?;
    filter.is_none_or(|filter| filter.matches(&thread.metadata)).then(|| thread_answer(thread))
}

async fn join_stream(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((raw_thread, raw_run)): ApiPath<(String, String)>,
    RawQuery(query): RawQuery,
    request_headers: HeaderMap,
) -> Result<Response, ApiError> {
    let thread_id = path_uuid(&raw_thread, "thread")?;
    let run_id = path_uuid(&raw_run, "run")?;
    let pairs = query_pairs(query.as_deref())?;
    let modes = respond::join_stream_modes(&pairs);
    let authorization = auth.authorize(Endpoint::ThreadsStream { thread_id: thread_id.to_string() }).await?;
    if !thread_visible(&state, thread_id, authorization.filter(Resource::Threads, Action::Read).cloned()).await? {
        return Ok(sse_error("404: Thread not found"));
    }
    let run = match state.storage().get_run(thread_id, run_id).await {
        Ok(run) => run,
        Err(StorageError::NotFound) => return Ok(sse_error("404: Run not found")),
        Err(other) => return Err(other.into()),
    };
    let base = format!("/threads/{thread_id}/runs/{run_id}");
    let headers = location_headers(&format!("{base}/stream"), &base);
    let last_event_id = respond::last_event_id(&request_headers);
    let channel = match state.runs().reading_channel(&run).await {
        Some(channel) => channel,
        None if run.status.is_active() => state.runs().open_channel(&run, run.kwargs.get("resumable").and_then(Value::as_bool).unwrap_or(false)).await,
        None => {
            let finished = std::sync::Arc::new(RunChannel::new(false));
            finished.finish();
            finished
        }
    };
    let subscription = match &last_event_id {
        Some(id) => channel.subscribe_after(id),
        None => channel.subscribe_joining(),
    };
    let guard = CancelOnDrop::new(&state, &run, is_true(last(&pairs, "cancel_on_disconnect")));
    Ok(respond::join_sse(subscription, modes, headers, guard))
}

/// The answer when the run named is over (as the reference words it).
const NO_RUN_TO_CANCEL: &str =
    "No matching runs to cancel. Please verify the thread ID and run IDs are correct, and the runs haven't been deleted or completed.";

fn cancel_action(pairs: &[(String, String)]) -> CancelAction {
    if last(pairs, "action") == Some("rollback") { CancelAction::Rollback } else { CancelAction::Interrupt }
}

async fn cancel(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((raw_thread, raw_run)): ApiPath<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let thread_id = path_uuid(&raw_thread, "thread")?;
    let run_id = path_uuid(&raw_run, "run")?;
    let pairs = query_pairs(query.as_deref())?;
    let action = cancel_action(&pairs);
    let action_name = if action == CancelAction::Rollback { "rollback" } else { "interrupt" };
    let authorization = auth
        .authorize(Endpoint::RunsCancel { thread_id: Some(thread_id), run_ids: Some(vec![run_id]), status: None, action: action_name.into() })
        .await?;
    if !thread_visible(&state, thread_id, authorization.filter(Resource::Threads, Action::Update).cloned()).await? {
        return Err(ApiError::not_found("No runs found to cancel."));
    }
    let run = state.storage().get_run(thread_id, run_id).await.map_err(|error| match error {
        StorageError::NotFound => ApiError::not_found("No runs found to cancel."),
        other => other.into(),
    })?;
    if !run.status.is_active() {
        return Err(ApiError::not_found(NO_RUN_TO_CANCEL));
    }
    let channel = state.runs().reading_channel(&run).await;
    if !state.runs().cancel(&run, action).await.map_err(ApiError::internal)? {
        return Err(ApiError::not_found(NO_RUN_TO_CANCEL));
    }
    if !is_true(last(&pairs, "wait")) {
        return Ok(StatusCode::ACCEPTED.into_response());
    }
    let base = format!("/threads/{thread_id}/runs/{run_id}");
    let headers = location_headers(&format!("{base}/join"), &base);
    let result = match channel {
        Some(channel) => wait_result(&channel.subscribe_from_start().collect().await).unwrap_or_else(|| json!({})),
        None => json!({}),
    };
    Ok((headers, axum::Json(result)).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum CancelStatus {
    Pending,
    Running,
    All,
}

#[derive(Debug, Deserialize)]
struct CancelMany {
    thread_id: Option<Uuid>,
    run_ids: Option<Vec<Uuid>>,
    status: Option<CancelStatus>,
}

async fn cancel_many(State(state): State<AppState>, auth: Auth, RawQuery(query): RawQuery, ApiJson(body): ApiJson<CancelMany>) -> Result<StatusCode, ApiError> {
    let pairs = query_pairs(query.as_deref())?;
    let action = cancel_action(&pairs);
    let action_name = if action == CancelAction::Rollback { "rollback" } else { "interrupt" };
    let by_ids = body.thread_id.is_some() || body.run_ids.is_some();
    let runs = match (&body.status, by_ids) {
        (Some(_), true) => {
            return Err(ApiError::validation(
                "When providing a 'status', 'thread_id' and 'run_ids' must be omitted. Provide either a status or a thread_id with run_ids.",
            ));
        }
        (None, false) => return Err(ApiError::validation("Provide either `status` or `thread_id` with `run_ids`")),
        (Some(status), false) => {
            let (filter_status, name) = match status {
                CancelStatus::Pending => (Some(RunStatus::Pending), "pending"),
                CancelStatus::Running => (Some(RunStatus::Running), "running"),
                CancelStatus::All => (None, "all"),
            };
            let authorization = auth.authorize(Endpoint::RunsCancel { thread_id: None, run_ids: None, status: Some(name.into()), action: action_name.into() }).await?;
            ending::active_on_visible_threads(&state, filter_status, authorization.filter(Resource::Threads, Action::Update).cloned()).await?
        }
        (None, true) => {
            let (Some(thread_id), Some(run_ids)) = (body.thread_id, body.run_ids.clone()) else {
                return Err(ApiError::validation("`thread_id` and `run_ids` go together"));
            };
            let authorization = auth
                .authorize(Endpoint::RunsCancel { thread_id: Some(thread_id), run_ids: Some(run_ids.clone()), status: None, action: action_name.into() })
                .await?;
            if !thread_visible(&state, thread_id, authorization.filter(Resource::Threads, Action::Update).cloned()).await? {
                return Err(ApiError::not_found("No runs found to cancel."));
            }
            ending::active_among(&state, thread_id, &run_ids).await?
        }
    };
    if runs.is_empty() {
        return Err(ApiError::not_found("No runs found to cancel."));
    }
    for run in &runs {
        state.runs().cancel(run, action).await.map_err(ApiError::internal)?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /threads/{id}/stream`: every run of the thread, current and future, until the client
/// goes away (spec runs.md §4.14). Modes: `run_modes` (default), `lifecycle`, `state_update`,
/// given as `stream_modes` or (what the SDKs send) `stream_mode`.
async fn thread_stream(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(raw): ApiPath<String>,
    RawQuery(query): RawQuery,
    request_headers: HeaderMap,
) -> Result<Response, ApiError> {
    let thread_id = path_uuid(&raw, "thread")?;
    let pairs = query_pairs(query.as_deref())?;
    let modes = respond::thread_stream_modes(&pairs)?;
    let last_event_id = respond::last_event_id(&request_headers);
    if let Some(id) = &last_event_id
        && !crate::runs::valid_last_event_id(id)
    {
        return Err(ApiError::validation("Invalid last-event-id: must be a valid Redis stream ID"));
    }
    let authorization = auth.authorize(Endpoint::ThreadsStream { thread_id: thread_id.to_string() }).await?;
    // The thread as the caller may see it: its stream is this thread's (a thread deleted and
    // created again with the same id has a stream of its own).
    let thread = match state.storage().get_thread(thread_id, authorization.filter(Resource::Threads, Action::Read).cloned()).await {
        Ok(thread) => thread,
        Err(StorageError::NotFound) => return Ok(sse_error("404: Thread not found")),
        Err(other) => return Err(other.into()),
    };
    let channel = state.runs().thread_channel(thread_id, thread.created_at);
    let (replay, receiver) = channel.subscribe(last_event_id.as_deref());
    let wanted = move |event: &RunEvent| {
        let lifecycle = event.event == "metadata";
        let state_update = event.event == "state_update";
        (modes.iter().any(|mode| mode == "run_modes") && !state_update)
            || (modes.iter().any(|mode| mode == "lifecycle") && lifecycle)
            || (modes.iter().any(|mode| mode == "state_update") && state_update)
    };
    Ok(respond::thread_sse(channel, replay, receiver, wanted))
}
