//! `/threads…` resource endpoints (state, history and runs come with runs).

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::{Page, path_uuid, query_pairs, strip_reserved_metadata};
use crate::auth::{Action, Authorization, Endpoint, Filter, Resource};
use crate::error::ApiError;
use crate::python::CheckpointOp;
use crate::server::{AppState, service};
use crate::server::auth::Auth;
use crate::server::extract::{ApiJson, ApiPath};
use crate::storage::{Hidden, IfExists, SortOrder, StorageError, Thread, ThreadQuery, ThreadSortBy, ThreadStatus, ThreadTtl, TtlStrategy};
use crate::timestamp::{format_micros, now_micros};

pub(in crate::server) fn router() -> super::Routes {
    super::Routes::new()
        .route("/threads", post(create))
        .route("/threads/search", post(search))
        .route("/threads/count", post(count))
        .route("/threads/prune", post(prune))
        .route("/threads/{thread_id}", get(get_one).patch(patch).delete(delete))
        .route("/threads/{thread_id}/copy", post(copy))
}

/// Thread fields, as `select` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ThreadField {
    ThreadId,
    CreatedAt,
    UpdatedAt,
    StateUpdatedAt,
    Metadata,
    Config,
    Status,
    Values,
    Interrupts,
    Error,
}

const ALL_FIELDS: [ThreadField; 10] = [
    ThreadField::ThreadId,
    ThreadField::CreatedAt,
    ThreadField::UpdatedAt,
    ThreadField::StateUpdatedAt,
    ThreadField::Metadata,
    ThreadField::Status,
    ThreadField::Config,
    ThreadField::Values,
    ThreadField::Interrupts,
    ThreadField::Error,
];

/// The wire form of a thread, restricted to `select` when given.
fn view(thread: &Thread, select: Option<&[ThreadField]>) -> Value {
    let mut out = Map::new();
    for field in select.unwrap_or(&ALL_FIELDS) {
        let (key, value) = match field {
            ThreadField::ThreadId => ("thread_id", Value::from(thread.thread_id.to_string())),
            ThreadField::CreatedAt => ("created_at", Value::from(format_micros(thread.created_at))),
            ThreadField::UpdatedAt => ("updated_at", Value::from(format_micros(thread.updated_at))),
            ThreadField::StateUpdatedAt => ("state_updated_at", Value::from(format_micros(thread.state_updated_at))),
            ThreadField::Metadata => ("metadata", Value::Object(thread.metadata.clone())),
            ThreadField::Config => ("config", Value::Object(thread.config.clone())),
            ThreadField::Status => ("status", Value::from(thread.status.as_str())),
            ThreadField::Values => ("values", thread.values.clone().unwrap_or(Value::Null)),
            ThreadField::Interrupts => ("interrupts", Value::Object(thread.interrupts.clone())),
            ThreadField::Error => ("error", thread.error.clone().unwrap_or(Value::Null)),
        };
        out.insert(key.to_string(), value);
    }
    Value::Object(out)
}

/// The `ttl` field of `?include=ttl`: `null` for a thread without one.
fn ttl_view(thread: &Thread) -> Value {
    thread.ttl.map_or(Value::Null, |ttl| {
        json!({"strategy": ttl.strategy.as_str(), "ttl_minutes": ttl.minutes, "expires_at": format_micros(ttl.expires_at(thread.updated_at))})
    })
}

/// The largest TTL accepted, in minutes (about 190 000 years): its microseconds fit the
/// storage's 64-bit columns.
const MAX_TTL_MINUTES: f64 = 1e11;

/// A create or patch body's `ttl`: `{"ttl": minutes, "strategy": …}` (what the SDKs send), or
/// a bare number of minutes. A missing strategy is the configured one (`delete` if none).
fn parse_ttl(state: &AppState, value: Option<&Value>) -> Result<Option<ThreadTtl>, ApiError> {
    let (minutes, strategy) = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(minutes)) => (Some(minutes), None),
        Some(Value::Object(object)) => {
            let minutes = match object.get("ttl") {
                None | Some(Value::Null) => return Ok(None),
                Some(Value::Number(minutes)) => Some(minutes),
                Some(_) => None,
            };
            (minutes, object.get("strategy").filter(|strategy| !strategy.is_null()))
        }
        Some(_) => return Err(ApiError::validation("ttl: must be an object like {\"ttl\": 60, \"strategy\": \"delete\"}")),
    };
    let minutes = minutes
        .and_then(serde_json::Number::as_f64)
        .filter(|minutes| *minutes > 0.0 && *minutes <= MAX_TTL_MINUTES)
        .ok_or_else(|| ApiError::validation("ttl.ttl: must be a number of minutes above 0"))?;
    let strategy = match strategy {
        None => state.config().checkpointer.ttl.as_ref().map_or(TtlStrategy::Delete, |ttl| ttl.strategy),
        Some(value) => value
            .as_str()
            .and_then(TtlStrategy::parse)
            .ok_or_else(|| ApiError::validation("ttl.strategy: must be \"delete\" or \"keep_latest\""))?,
    };
    Ok(Some(ThreadTtl { strategy, minutes }))
}

fn not_found(thread_id: Uuid) -> ApiError {
    ApiError::not_found(format!("Thread with ID {thread_id} not found"))
}

/// The effective `metadata` of an event's value after its handler (in-place edits stick).
fn effective_metadata(authorization: &Authorization, resource: Resource, action: Action, fallback: Map<String, Value>) -> Map<String, Value> {
    authorization
        .event(resource, action)
        .and_then(|event| event.value.get("metadata"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or(fallback)
}

#[derive(Debug, Default, Deserialize)]
struct ThreadCreate {
    thread_id: Option<String>,
    metadata: Option<Map<String, Value>>,
    if_exists: Option<IfExists>,
    ttl: Option<Value>,
    /// Present (`null` too, which the reference refuses) or absent.
    #[serde(default, deserialize_with = "present")]
    supersteps: Option<Value>,
}

/// A field given, whatever its value (`null` included): `Some`.
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// `supersteps` of a thread creation, as the reference's schema has them: a list of
/// `{"updates": [...]}`, each update an object with `as_node` (a string), `values` and
/// `command` (objects or null, optional); other keys are ignored. A superstep without updates
/// is refused as the reference does (400 "No updates provided"), before anything is created.
/// The updates as the runner takes them.
fn parse_supersteps(raw: &Value) -> Result<Vec<Value>, ApiError> {
    let Value::Array(supersteps) = raw else {
        return Err(ApiError::validation("supersteps: must be an array"));
    };
    let mut parsed = Vec::with_capacity(supersteps.len());
    for (step, superstep) in supersteps.iter().enumerate() {
        let Some(Value::Array(updates)) = superstep.as_object().and_then(|superstep| superstep.get("updates")) else {
            return Err(ApiError::validation(format!("supersteps[{step}].updates: required, an array")));
        };
        let mut step_updates = Vec::with_capacity(updates.len());
        for (index, update) in updates.iter().enumerate() {
            let at = format!("supersteps[{step}].updates[{index}]");
            let Value::Object(update) = update else {
                return Err(ApiError::validation(format!("{at}: must be an object")));
            };
            let Some(Value::String(as_node)) = update.get("as_node") else {
                return Err(ApiError::validation(format!("{at}.as_node: required, a string")));
            };
            for key in ["values", "command"] {
                if !matches!(update.get(key), None | Some(Value::Null | Value::Object(_))) {
                    return Err(ApiError::validation(format!("{at}.{key}: must be an object or null")));
                }
            }
            step_updates.push(json!({
                "values": update.get("values").cloned().unwrap_or(Value::Null),
                "command": update.get("command").cloned().unwrap_or(Value::Null),
                "as_node": as_node,
            }));
        }
        parsed.push(Value::Array(step_updates));
    }
    if parsed.iter().any(|updates| updates.as_array().is_some_and(Vec::is_empty)) {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "No updates provided"));
    }
    Ok(parsed)
}

async fn create(State(state): State<AppState>, auth: Auth, ApiJson(request): ApiJson<ThreadCreate>) -> Result<Response, ApiError> {
    let thread_id = match &request.thread_id {
        Some(raw) => Uuid::parse_str(raw).map_err(|_| ApiError::validation("thread_id: must be a UUID"))?,
        None => Uuid::now_v7(),
    };
    let supersteps = request.supersteps.as_ref().map(parse_supersteps).transpose()?.filter(|supersteps| !supersteps.is_empty());
    let ttl = parse_ttl(&state, request.ttl.as_ref())?;
    let ttl_value = ttl.map(|ttl| json!({"ttl": ttl.minutes, "strategy": ttl.strategy.as_str()}));
    let mut metadata = request.metadata.unwrap_or_default();
    strip_reserved_metadata(&mut metadata);
    let if_exists = request.if_exists.unwrap_or(IfExists::Raise);
    let if_exists_name = if if_exists == IfExists::Raise { "raise" } else { "do_nothing" };
    let authorization = auth.authorize(Endpoint::ThreadsCreate { thread_id, metadata: metadata.clone(), if_exists: if_exists_name.into(), ttl: ttl_value }).await?;
    let metadata = effective_metadata(&authorization, Resource::Threads, Action::Create, metadata);
    // A handler may edit the TTL in place (e.g. cap it); what it leaves is checked again.
    let ttl = match authorization.event(Resource::Threads, Action::Create).map(|event| event.value.get("ttl")) {
        Some(edited) => parse_ttl(&state, edited)?,
        None => ttl,
    };
    let filter = authorization.filter(Resource::Threads, Action::Create).cloned();
    let taken = move || ApiError::new(StatusCode::CONFLICT, format!("Thread with ID {thread_id} already exists"));
    let Some(supersteps) = supersteps else {
        let created = service::threads::create_idle(&state, thread_id, metadata, ttl, if_exists, filter, taken).await?;
        return Ok(axum::Json(view(&created, None)).into_response());
    };
    // The graph the supersteps are applied with is the one the thread's metadata names. None
    // or an unknown one: the thread is created and a 201 says the state was not, as in the
    // reference.
    let graph_id = metadata.get("graph_id").and_then(Value::as_str).map(str::to_string);
    let problem = match &graph_id {
        None => Some(format!(
            "Thread '{thread_id}' has no assigned graph ID. Create the thread with `metadata.graph_id` (the SDKs' `graph_id=`) to apply supersteps."
        )),
        Some(graph_id) => super::state::unknown_graph(&state, graph_id),
    };
    let user = authorization.user.clone();
    // A task of its own, so a client that goes away mid-way does not leave a thread with half
    // its supersteps: the thread is either there with all of them or not created.
    let outcome = tokio::spawn(async move {
        let (created, fresh) = service::threads::create_idle_fresh(&state, thread_id, metadata, ttl, if_exists, filter, taken).await?;
        if !fresh {
            // `do_nothing` on a thread the caller may have: left as it is (a deliberate
            // difference: the reference applies the supersteps to it).
            return Ok(axum::Json(view(&created, None)).into_response());
        }
        if let Some(problem) = problem {
            let detail = format!("Thread {thread_id} was created, but there were problems updating the state: {problem}");
            return Ok((StatusCode::CREATED, axum::Json(json!({"detail": detail}))).into_response());
        }
        let graph_id = graph_id.unwrap_or_default();
        if let Err(error) = super::state::apply_supersteps(&state, &created, user, graph_id, Value::Array(supersteps)).await {
            // Undone only if the row is still the one created here (not one created again
            // with the id after a deletion meanwhile).
            let ours = matches!(state.storage().get_thread(thread_id, None).await, Ok(thread) if thread.created_at == created.created_at);
            if ours && let Err(undo) = state.runs().delete_threads(&[thread_id], state.storage().delete_threads(vec![(thread_id, None)], Hidden::Skip)).await {
                tracing::error!(%thread_id, error = %undo, "cannot remove a thread whose supersteps failed");
            }
            return Err(error);
        }
        let thread = state.storage().get_thread(thread_id, None).await?;
        Ok(axum::Json(view(&thread, None)).into_response())
    });
    outcome.await.map_err(|error| ApiError::internal(format!("thread creation failed: {error}")))?
}

#[derive(Debug, Default, Deserialize)]
struct ThreadFilters {
    metadata: Option<Map<String, Value>>,
    values: Option<Map<String, Value>>,
    status: Option<ThreadStatus>,
}

#[derive(Debug, Default, Deserialize)]
struct ThreadSearch {
    #[serde(flatten)]
    filters: ThreadFilters,
    ids: Option<Vec<Uuid>>,
    limit: Option<i64>,
    offset: Option<i64>,
    sort_by: Option<ThreadSortBy>,
    sort_order: Option<SortOrder>,
    select: Option<Vec<ThreadField>>,
    extract: Option<Map<String, Value>>,
}

/// Authorizes a search or count and builds the query: the handler's in-place edits of
/// `metadata` and `values` narrow the search; its filter is compiled into the SQL.
async fn authorized_query(auth: &Auth, filters: ThreadFilters, limit: i64, offset: i64) -> Result<ThreadQuery, ApiError> {
    let metadata = filters.metadata.unwrap_or_default();
    let values = filters.values.unwrap_or_default();
    let endpoint = Endpoint::ThreadsSearch {
        metadata: metadata.clone(),
        values: values.clone(),
        status: filters.status.map(|status| status.as_str().to_string()),
        limit,
        offset,
    };
    let authorization = auth.authorize(endpoint).await?;
    let event = authorization.event(Resource::Threads, Action::Search);
    let live = |key: &str, fallback: Map<String, Value>| event.and_then(|event| event.value.get(key)).and_then(Value::as_object).cloned().unwrap_or(fallback);
    let metadata = live("metadata", metadata);
    let values = live("values", values);
    Ok(ThreadQuery {
        ids: None,
        metadata: Some(metadata).filter(|map| !map.is_empty()),
        values: Some(values).filter(|map| !map.is_empty()),
        status: filters.status,
        auth: authorization.filter(Resource::Threads, Action::Search).cloned(),
    })
}

async fn search(State(state): State<AppState>, auth: Auth, ApiJson(request): ApiJson<ThreadSearch>) -> Result<Response, ApiError> {
    let page = Page::new(request.limit, request.offset)?;
    let extract = request.extract.map(parse_extract).transpose()?;
    let mut query = authorized_query(&auth, request.filters, page.limit, page.offset).await?;
    query.ids = request.ids;
    let sort_by = request.sort_by.unwrap_or(ThreadSortBy::UpdatedAt);
    let sort_order = request.sort_order.unwrap_or(SortOrder::Desc);
    let rows = state.storage().search_threads(query, sort_by, sort_order, page.rows(), page.offset).await?;
    Ok(page.answer(rows, |thread| {
        let mut out = view(thread, request.select.as_deref());
        if let Some(extract) = &extract {
            let full = view(thread, None);
            out["extracted"] = Value::Object(extract.iter().map(|(alias, path)| (alias.clone(), lookup(&full, path))).collect());
        }
        out
    }))
}

/// A parsed `extract` path: `values.messages[-1].content` → keys and indexes.
#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(i64),
}

fn parse_extract(extract: Map<String, Value>) -> Result<Vec<(String, Vec<Step>)>, ApiError> {
    if extract.len() > 10 {
        return Err(ApiError::validation("extract: at most 10 paths"));
    }
    extract
        .into_iter()
        .map(|(alias, path)| {
            let Some(text) = path.as_str() else {
                return Err(ApiError::validation(format!("extract.{alias}: must be a string path")));
            };
            let mut steps = Vec::new();
            for part in text.split('.') {
                let (key, mut rest) = part.split_once('[').map_or((part, ""), |(key, rest)| (key, rest));
                if !key.is_empty() {
                    steps.push(Step::Key(key.to_string()));
                }
                while !rest.is_empty() {
                    let (index, after) = rest.split_once(']').ok_or_else(|| ApiError::validation(format!("extract.{alias}: malformed path `{text}`")))?;
                    let index: i64 = index.parse().map_err(|_| ApiError::validation(format!("extract.{alias}: malformed index in `{text}`")))?;
                    steps.push(Step::Index(index));
                    rest = after.strip_prefix('[').unwrap_or(after);
                }
            }
            match steps.first() {
                Some(Step::Key(root)) if ["values", "metadata", "config", "interrupts"].contains(&root.as_str()) => Ok((alias, steps)),
                _ => Err(ApiError::validation(format!("extract.{alias}: path must start with values, metadata, config or interrupts"))),
            }
        })
        .collect()
}

fn lookup(value: &Value, steps: &[Step]) -> Value {
    let mut current = value;
    for step in steps {
        let next = match (step, current) {
            (Step::Key(key), Value::Object(map)) => map.get(key),
            (Step::Index(index), Value::Array(items)) => {
                let length = i64::try_from(items.len()).unwrap_or(i64::MAX);
                let position = if *index < 0 { length + index } else { *index };
                usize::try_from(position).ok().and_then(|position| items.get(position))
            }
            _ => None,
        };
        match next {
            Some(next) => current = next,
            None => return Value::Null,
        }
    }
    current.clone()
}

async fn count(State(state): State<AppState>, auth: Auth, ApiJson(filters): ApiJson<ThreadFilters>) -> Result<axum::Json<Value>, ApiError> {
    let query = authorized_query(&auth, filters, 0, 0).await?;
    let count = state.storage().count_threads(query).await?;
    Ok(axum::Json(Value::from(count)))
}

async fn get_one(State(state): State<AppState>, auth: Auth, ApiPath(raw): ApiPath<String>, RawQuery(query): RawQuery) -> Result<axum::Json<Value>, ApiError> {
    let thread_id = path_uuid(&raw, "thread")?;
    // `include` is comma-separated and may repeat; `ttl` is the one extra field there is.
    let include_ttl = query_pairs(query.as_deref())?
        .iter()
        .any(|(key, value)| key == "include" && value.split(',').any(|field| field.trim() == "ttl"));
    let authorization = auth.authorize(Endpoint::ThreadsRead { thread_id }).await?;
    let filter = authorization.filter(Resource::Threads, Action::Read).cloned();
    let thread = state.storage().get_thread(thread_id, filter).await.map_err(|error| match error {
        StorageError::NotFound => not_found(thread_id),
        other => other.into(),
    })?;
    let mut out = view(&thread, None);
    if include_ttl {
        out["ttl"] = ttl_view(&thread);
    }
    Ok(axum::Json(out))
}

#[derive(Debug, Default, Deserialize)]
struct ThreadPatch {
    metadata: Option<Map<String, Value>>,
    ttl: Option<Value>,
}

async fn patch(State(state): State<AppState>, auth: Auth, ApiPath(raw): ApiPath<String>, headers: HeaderMap, ApiJson(request): ApiJson<ThreadPatch>) -> Result<Response, ApiError> {
    let thread_id = path_uuid(&raw, "thread")?;
    let ttl = parse_ttl(&state, request.ttl.as_ref())?;
    let mut metadata = request.metadata.unwrap_or_default();
    strip_reserved_metadata(&mut metadata);
    let authorization = auth.authorize(Endpoint::ThreadsUpdate { thread_id, metadata: metadata.clone() }).await?;
    let metadata = effective_metadata(&authorization, Resource::Threads, Action::Update, metadata);
    let filter = authorization.filter(Resource::Threads, Action::Update).cloned();
    let thread = state.storage().patch_thread(thread_id, metadata, ttl, filter, now_micros()).await?;
    let minimal = headers.get_all("prefer").iter().any(|value| value.to_str().is_ok_and(|text| text.contains("return=minimal")));
    if minimal {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    Ok(axum::Json(view(&thread, None)).into_response())
}

async fn delete(State(state): State<AppState>, auth: Auth, ApiPath(raw): ApiPath<String>) -> Result<StatusCode, ApiError> {
    let thread_id = path_uuid(&raw, "thread")?;
    let authorization = auth.authorize(Endpoint::ThreadsDelete { thread_id }).await?;
    let targets = vec![(thread_id, authorization.filter(Resource::Threads, Action::Delete).cloned())];
    let deleted = state
        .runs()
        .delete_threads(&[thread_id], state.storage().delete_threads(targets, Hidden::Skip))
        .await?;
    if deleted.thread_ids.is_empty() {
        return Err(not_found(thread_id));
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn copy(State(state): State<AppState>, auth: Auth, ApiPath(raw): ApiPath<String>) -> Result<axum::Json<Value>, ApiError> {
    let thread_id = Uuid::parse_str(&raw).map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "badly formed hexadecimal UUID string"))?;
    let new_thread_id = Uuid::now_v7();
    let authorization = auth.authorize(Endpoint::ThreadsCopy { thread_id, new_thread_id }).await?;
    let filter = authorization.filter(Resource::Threads, Action::Read).cloned();
    let copied = service::threads::copy(&state, thread_id, new_thread_id, filter).await?;
    Ok(axum::Json(view(&copied, None)))
}

/// `prune` with `keep_latest`: every listed thread keeps only its latest checkpoints (the
/// TTL sweep's `keep_latest`). Missing threads are skipped; one the caller may not see refuses
/// the whole request before anything is pruned, as `delete` does.
async fn keep_latest(state: &AppState, targets: Vec<(Uuid, Option<Filter>)>) -> Result<axum::Json<Value>, ApiError> {
    let mut visible = Vec::with_capacity(targets.len());
    for (thread_id, filter) in targets {
        match state.storage().get_thread(thread_id, filter.clone()).await {
            Ok(_) => visible.push(thread_id),
            Err(StorageError::NotFound) if filter.is_some() && state.storage().get_thread(thread_id, None).await.is_ok() => {
                return Err(ApiError::not_found("At least one thread not found or not authorized"));
            }
            Err(StorageError::NotFound) => {}
            Err(other) => return Err(other.into()),
        }
    }
    visible.sort_unstable();
    visible.dedup();
    if !visible.is_empty() {
        state.python().checkpoints(CheckpointOp::KeepLatest(visible.clone())).await.map_err(ApiError::internal)?;
    }
    Ok(axum::Json(json!({"pruned_count": visible.len()})))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum PruneStrategy {
    Delete,
    KeepLatest,
}

#[derive(Debug, Deserialize)]
struct ThreadPrune {
    thread_ids: Vec<Uuid>,
    strategy: Option<PruneStrategy>,
}

async fn prune(State(state): State<AppState>, auth: Auth, ApiJson(request): ApiJson<ThreadPrune>) -> Result<axum::Json<Value>, ApiError> {
    let ids = request.thread_ids;
    let authorization = auth.authorize(Endpoint::ThreadsPrune { thread_ids: ids.iter().map(Uuid::to_string).collect() }).await?;
    // Event 0 is the batch; events 1.. are one per thread, in order.
    // Every thread is checked as the caller before anything is deleted (spec: all or nothing).
    let targets: Vec<(Uuid, Option<Filter>)> = ids.iter().copied().zip(authorization.events.iter().skip(1).map(|event| event.filter.clone())).collect();
    if matches!(request.strategy, Some(PruneStrategy::KeepLatest)) {
        return keep_latest(&state, targets).await;
    }
    let pruned = state
        .runs()
        .delete_threads(&ids, state.storage().delete_threads(targets, Hidden::Refuse))
        .await
        .map(|deleted| deleted.thread_ids.len())
        .map_err(|error| match error {
            StorageError::NotFound => ApiError::not_found("At least one thread not found or not authorized"),
            other => other.into(),
        })?;
    Ok(axum::Json(json!({"pruned_count": pruned})))
}
