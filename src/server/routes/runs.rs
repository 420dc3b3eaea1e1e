//! Runs: create (background, stream, wait; on a thread or stateless), list, get, join, join
//! stream, cancel, delete.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::{is_true, last, path_uuid, query_pairs, strip_reserved_metadata};
use crate::assistants::system_assistant_id;
use crate::auth::events::RunMode;
use crate::auth::{Action, AuthUser, Endpoint, Resource};
use crate::error::ApiError;
use crate::runs::{CancelAction, EXECUTION_KEY, RunChannel, RunEvent, Subscription, wait_result};
use crate::server::AppState;
use crate::server::auth::Auth;
use crate::server::extract::{ApiJson, ApiPath};
use crate::storage::{IfExists, Run, RunStatus, StorageError, Thread, ThreadStatus};
use crate::timestamp::now_micros;

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

/// Keep-alive cadence of streams and waits.
const KEEPALIVE: Duration = Duration::from_secs(5);

/// Stream modes. Serde names are the wire strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum StreamMode {
    Values,
    Messages,
    MessagesTuple,
    Tasks,
    Checkpoints,
    Updates,
    Debug,
    Custom,
    Events,
}

impl StreamMode {
    fn as_str(self) -> &'static str {
        match self {
            Self::Values => "values",
            Self::Messages => "messages",
            Self::MessagesTuple => "messages-tuple",
            Self::Tasks => "tasks",
            Self::Checkpoints => "checkpoints",
            Self::Updates => "updates",
            Self::Debug => "debug",
            Self::Custom => "custom",
            Self::Events => "events",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    fn into_vec(self) -> Vec<T> {
        match self {
            Self::One(item) => vec![item],
            Self::Many(items) => items,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum MultitaskStrategy {
    Reject,
    Interrupt,
    Rollback,
    Enqueue,
}

impl MultitaskStrategy {
    fn as_str(self) -> &'static str {
        match self {
            Self::Reject => "reject",
            Self::Interrupt => "interrupt",
            Self::Rollback => "rollback",
            Self::Enqueue => "enqueue",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum IfNotExists {
    Create,
    Reject,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum OnDisconnect {
    Cancel,
    Continue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum OnCompletion {
    Delete,
    Keep,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Durability {
    Sync,
    Async,
    Exit,
}

/// The run creation body (spec runs.md §3). Unknown fields are ignored.
#[derive(Debug, Clone, Deserialize)]
struct RunCreate {
    assistant_id: String,
    input: Option<Value>,
    command: Option<Map<String, Value>>,
    metadata: Option<Map<String, Value>>,
    config: Option<Map<String, Value>>,
    context: Option<Map<String, Value>>,
    stream_mode: Option<OneOrMany<StreamMode>>,
    stream_subgraphs: Option<bool>,
    stream_resumable: Option<bool>,
    interrupt_before: Option<Value>,
    interrupt_after: Option<Value>,
    checkpoint_id: Option<String>,
    checkpoint: Option<Map<String, Value>>,
    multitask_strategy: Option<MultitaskStrategy>,
    if_not_exists: Option<IfNotExists>,
    on_disconnect: Option<OnDisconnect>,
    on_completion: Option<OnCompletion>,
    after_seconds: Option<f64>,
    webhook: Option<String>,
    durability: Option<Durability>,
    checkpoint_during: Option<bool>,
    feedback_keys: Option<Vec<String>>,
}

/// How the created run is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Background,
    Stream,
    Wait,
}

/// A created run and its channel.
#[derive(Debug)]
struct Created {
    run: Run,
    channel: std::sync::Arc<RunChannel>,
    stateless: bool,
    on_disconnect: OnDisconnect,
    modes: Vec<String>,
}

fn thread_or_assistant_missing() -> ApiError {
    ApiError::not_found("Thread or assistant not found.")
}

/// `interrupt_before`/`after`: `"*"` or a list of node names.
fn check_interrupt_nodes(value: Option<&Value>, field: &str) -> Result<(), ApiError> {
    match value {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(text)) if text == "*" => Ok(()),
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => Ok(()),
        Some(other) => Err(ApiError::validation(format!("{field}: expected \"*\" or a list of node names, got {other}"))),
    }
}

fn merge_into(target: &mut Map<String, Value>, source: Option<&Map<String, Value>>) {
    if let Some(source) = source {
        for (key, value) in source {
            target.insert(key.clone(), value.clone());
        }
    }
}

fn configurable_of(config: &Map<String, Value>) -> Option<&Map<String, Value>> {
    config.get("configurable").and_then(Value::as_object)
}

/// Validates, authorizes and stores a run (spec runs.md §3, validation order included).
async fn create_run(state: &AppState, auth: &Auth, thread_id: Option<Uuid>, body: RunCreate, answer: Answer) -> Result<Created, ApiError> {
    let stateless = thread_id.is_none();
    let modes: Vec<StreamMode> = body.stream_mode.clone().map_or_else(|| vec![StreamMode::Values], OneOrMany::into_vec);
    check_interrupt_nodes(body.interrupt_before.as_ref(), "interrupt_before")?;
    check_interrupt_nodes(body.interrupt_after.as_ref(), "interrupt_after")?;
    if let Some(checkpoint_id) = &body.checkpoint_id
        && Uuid::parse_str(checkpoint_id).is_err()
    {
        return Err(ApiError::validation("Invalid checkpoint ID"));
    }
    if stateless && body.command.as_ref().is_some_and(|command| command.contains_key("resume")) {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "You must provide a thread_id when resuming."));
    }
    let mut config = body.config.clone().unwrap_or_default();
    let request_configurable = configurable_of(&config).filter(|map| !map.is_empty()).cloned();
    if request_configurable.is_some() && body.context.as_ref().is_some_and(|context| !context.is_empty()) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "Cannot specify both configurable and context. Prefer setting context alone. Context was introduced in LangGraph 0.6.0 and is the long term planned replacement for configurable.",
        ));
    }
    if let Some(webhook) = &body.webhook {
        crate::runs::webhook::check_target(webhook, crate::runs::webhook::private_targets_allowed()).map_err(ApiError::validation)?;
    }
    let assistant_id = match Uuid::parse_str(&body.assistant_id) {
        Ok(id) => id,
        Err(_) if state.graph_ids().any(|graph_id| graph_id == body.assistant_id) => system_assistant_id(&body.assistant_id),
        Err(_) => {
            let graphs: Vec<&str> = state.graph_ids().collect();
            return Err(ApiError::validation(format!(
                "Invalid assistant: '{}'. Must be either:\n- A valid assistant UUID, or\n- One of the registered graphs: {}",
                body.assistant_id,
                graphs.join(", ")
            )));
        }
    };
    let assistant = state.storage().run(move |storage| storage.get_assistant(assistant_id, None)).await.map_err(|error| match error {
        StorageError::NotFound => thread_or_assistant_missing(),
        other => other.into(),
    })?;
    let existing_thread = match thread_id {
        Some(id) => match state.storage().run(move |storage| storage.get_thread(id, None)).await {
            Ok(thread) => Some(thread),
            Err(StorageError::NotFound) => None,
            Err(other) => return Err(other.into()),
        },
        None => None,
    };
    let if_not_exists = if stateless { IfNotExists::Create } else { body.if_not_exists.unwrap_or(IfNotExists::Reject) };
    if !stateless && existing_thread.is_none() && if_not_exists == IfNotExists::Reject {
        return Err(thread_or_assistant_missing());
    }
    let thread_id = thread_id.unwrap_or_else(Uuid::now_v7);
    let run_id = Uuid::now_v7();
    let multitask = body.multitask_strategy.unwrap_or(MultitaskStrategy::Enqueue);
    let system = assistant.metadata.get("created_by").and_then(Value::as_str) == Some("system");

    // Run metadata: assistant ← thread ← config.metadata ← request metadata; assistant forced.
    let mut request_metadata = body.metadata.clone().unwrap_or_default();
    strip_reserved_metadata(&mut request_metadata);
    let config_metadata = config.get("metadata").and_then(Value::as_object).cloned();
    let mut metadata = assistant.metadata.clone();
    merge_into(&mut metadata, existing_thread.as_ref().map(|thread| &thread.metadata));
    merge_into(&mut metadata, config_metadata.as_ref());
    merge_into(&mut metadata, Some(&request_metadata));
    metadata.insert("assistant_id".to_string(), Value::from(assistant_id.to_string()));

    // Configurable: assistant ← thread ← request (or context) ← server keys.
    let mut configurable = configurable_of(&assistant.config).cloned().unwrap_or_default();
    merge_into(&mut configurable, existing_thread.as_ref().and_then(|thread| configurable_of(&thread.config)));
    match (&request_configurable, &body.context) {
        (Some(request), _) => merge_into(&mut configurable, Some(request)),
        (None, Some(context)) => merge_into(&mut configurable, Some(context)),
        (None, None) => {}
    }
    if let Some(checkpoint_id) = &body.checkpoint_id {
        configurable.insert("checkpoint_id".to_string(), Value::from(checkpoint_id.clone()));
    }
    // A checkpoint names a position in the run's own thread, never another thread.
    configurable.extend(super::checkpoint_position(body.checkpoint.clone()));
    let ids = RunIds { thread_id, run_id, assistant_id, graph_id: assistant.graph_id.clone() };
    ids.stamp(&mut configurable, true);
    config.insert("configurable".to_string(), Value::Object(configurable));
    config.insert("metadata".to_string(), Value::Object(metadata.clone()));
    if !config.contains_key("run_id") {
        config.insert("run_id".to_string(), Value::from(run_id.to_string()));
    }
    let mut context = assistant.context.clone();
    merge_into(&mut context, body.context.as_ref());
    ids.stamp(&mut context, false);
    let durability = body.durability.map(|durability| match durability {
        Durability::Sync => "sync",
        Durability::Async => "async",
        Durability::Exit => "exit",
    });
    let durability = durability.or(match body.checkpoint_during {
        Some(false) => Some("exit"),
        Some(true) => Some("async"),
        None => None,
    });
    let keep_thread = !stateless || body.on_completion == Some(OnCompletion::Keep);
    let mut kwargs = Map::new();
    kwargs.insert("input".to_string(), body.input.clone().unwrap_or(Value::Null));
    kwargs.insert("command".to_string(), body.command.clone().map_or(Value::Null, Value::Object));
    kwargs.insert("config".to_string(), Value::Object(config));
    kwargs.insert("context".to_string(), Value::Object(context));
    kwargs.insert("stream_mode".to_string(), Value::from(modes.iter().map(|mode| mode.as_str()).collect::<Vec<_>>()));
    kwargs.insert("interrupt_before".to_string(), body.interrupt_before.clone().unwrap_or(Value::Null));
    kwargs.insert("interrupt_after".to_string(), body.interrupt_after.clone().unwrap_or(Value::Null));
    kwargs.insert("webhook".to_string(), body.webhook.clone().map_or(Value::Null, Value::from));
    kwargs.insert("feedback_keys".to_string(), body.feedback_keys.clone().map_or(Value::Null, Value::from));
    kwargs.insert("temporary".to_string(), Value::Bool(!keep_thread));
    kwargs.insert("subgraphs".to_string(), Value::Bool(body.stream_subgraphs.unwrap_or(false)));
    kwargs.insert("resumable".to_string(), Value::Bool(body.stream_resumable.unwrap_or(false)));
    kwargs.insert("checkpoint_during".to_string(), body.checkpoint_during.map_or(Value::Null, Value::Bool));
    kwargs.insert("durability".to_string(), durability.map_or(Value::Null, Value::from));
    let after_seconds = body.after_seconds.unwrap_or(0.0).max(0.0);

    let mut value = Map::new();
    value.insert("run_id".to_string(), Value::from(run_id.to_string()));
    value.insert("status".to_string(), Value::from("pending"));
    value.insert("metadata".to_string(), Value::Object(metadata.clone()));
    value.insert("prevent_insert_if_inflight".to_string(), Value::Bool(multitask == MultitaskStrategy::Reject));
    value.insert("multitask_strategy".to_string(), Value::from(multitask.as_str()));
    value.insert("if_not_exists".to_string(), Value::from(if if_not_exists == IfNotExists::Create { "create" } else { "reject" }));
    #[expect(clippy::cast_possible_truncation, reason = "seconds of delay")]
    value.insert("after_seconds".to_string(), Value::from(after_seconds as i64));
    value.insert("kwargs".to_string(), Value::Object(kwargs.clone()));
    let endpoint = Endpoint::RunsCreate {
        thread_id: (!stateless).then_some(thread_id),
        read_thread_id: Some(thread_id),
        assistant_id,
        assistant_read: !system,
        mode: if answer == Answer::Background { RunMode::Background } else { RunMode::Wait },
        value,
    };
    let authorization = auth.authorize(endpoint).await?;
    let event = authorization.event(Resource::Threads, Action::CreateRun);
    let metadata = event.and_then(|event| event.value.get("metadata")).and_then(Value::as_object).cloned().unwrap_or(metadata);
    if let Some(filter) = authorization.filter(Resource::Assistants, Action::Read)
        && !filter.matches(&assistant.metadata)
    {
        return Err(thread_or_assistant_missing());
    }
    if let (Some(thread), Some(filter)) = (&existing_thread, authorization.filter(Resource::Threads, Action::CreateRun))
        && !filter.matches(&thread.metadata)
    {
        return Err(thread_or_assistant_missing());
    }

    // The identity the graph sees (spec runs.md §6): with custom auth, the server's only.
    let user = authorization.user.clone();
    if let Some(Value::Object(config)) = kwargs.get_mut("config") {
        if let Some(Value::Object(configurable)) = config.get_mut("configurable") {
            stamp_identity(configurable, user.as_ref(), true);
            configurable.insert("langgraph_request_id".to_string(), Value::from(Uuid::new_v4().to_string()));
        }
        config.insert("metadata".to_string(), Value::Object(metadata.clone()));
    }
    if let Some(Value::Object(context)) = kwargs.get_mut("context") {
        stamp_identity(context, user.as_ref(), false);
    }
    kwargs.insert(
        EXECUTION_KEY.to_string(),
        json!({
            "graph_id": assistant.graph_id,
            "checkpointer": keep_thread,
            "delete_thread": !keep_thread,
            "auth_user": user.as_ref().map(AuthUser::to_json),
        }),
    );

    // The thread: created if needed, with the run's metadata.
    let mut thread_metadata = match &existing_thread {
        Some(thread) => thread.metadata.clone(),
        None => {
            let mut created = Map::new();
            merge_into(&mut created, config_metadata.as_ref());
            merge_into(&mut created, Some(&metadata));
            created.remove("created_by");
            created
        }
    };
    thread_metadata.insert("graph_id".to_string(), Value::from(assistant.graph_id.clone()));
    thread_metadata.insert("assistant_id".to_string(), Value::from(assistant_id.to_string()));
    let now = now_micros();
    if existing_thread.is_none() {
        // Created as the caller: an id someone else took meanwhile is a conflict, not theirs.
        let filter = authorization.filter(Resource::Threads, Action::CreateRun).cloned();
        let thread = Thread {
            thread_id,
            created_at: now,
            updated_at: now,
            state_updated_at: now,
            metadata: thread_metadata.clone(),
            config: Map::new(),
            status: ThreadStatus::Idle,
            values: None,
            interrupts: Map::new(),
            error: None,
        };
        let runs = state.runs().clone();
        let created = state
            .storage()
            .run(move |storage| runs.create_unless_deleting(thread_id, || storage.create_thread(&thread, IfExists::DoNothing, filter.as_ref())))
            .await
            .map_err(|error| match error {
                StorageError::Conflict => thread_or_assistant_missing(),
                other => other.into(),
            })?;
        if created.is_none() {
            return Err(super::threads::being_deleted(thread_id));
        }
    }

    // Multitask strategies against the thread's active runs.
    let active = state.storage().run(move |storage| storage.active_runs(thread_id)).await?;
    if !active.is_empty() {
        match multitask {
            MultitaskStrategy::Reject => {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "Thread is already running a task. Wait for it to finish or choose a different multitask strategy.",
                ));
            }
            MultitaskStrategy::Interrupt | MultitaskStrategy::Rollback => {
                let action = if multitask == MultitaskStrategy::Rollback { CancelAction::Rollback } else { CancelAction::Interrupt };
                for run in &active {
                    state.runs().cancel(run, action).await.map_err(ApiError::internal)?;
                }
            }
            MultitaskStrategy::Enqueue => {}
        }
    }

    #[expect(clippy::cast_possible_truncation, reason = "microseconds of delay")]
    let delay = (after_seconds * 1_000_000.0) as i64;
    let run = Run {
        run_id,
        thread_id,
        assistant_id,
        created_at: now + delay,
        updated_at: now,
        status: RunStatus::Pending,
        metadata,
        multitask_strategy: multitask.as_str().to_string(),
        kwargs,
    };
    let stored = run.clone();
    state.storage().run(move |storage| storage.insert_run(&stored, &thread_metadata)).await?;
    let channel = state.runs().enqueued(&run);
    Ok(Created {
        run,
        channel,
        stateless,
        on_disconnect: body.on_disconnect.unwrap_or(OnDisconnect::Continue),
        modes: modes.iter().map(|mode| mode.as_str().to_string()).collect(),
    })
}

/// The ids of a run, which only the server sets in its `configurable` and `context`.
#[derive(Debug)]
struct RunIds {
    thread_id: Uuid,
    run_id: Uuid,
    assistant_id: Uuid,
    graph_id: String,
}

impl RunIds {
    /// Drops what a client may not set (the identity keys and every `__`-prefixed internal
    /// key) and writes the run's ids: always into a `configurable` (`insert`), and over keys
    /// already present in a `context` (whose schema is the graph's).
    fn stamp(&self, map: &mut Map<String, Value>, insert: bool) {
        map.retain(|key, _| !key.starts_with("__") && !IDENTITY_KEYS.contains(&key.as_str()));
        for (key, value) in [
            ("thread_id", self.thread_id.to_string()),
            ("run_id", self.run_id.to_string()),
            ("graph_id", self.graph_id.clone()),
            ("assistant_id", self.assistant_id.to_string()),
        ] {
            if insert || map.contains_key(key) {
                map.insert(key.to_string(), Value::from(value));
            }
        }
    }
}

/// Identity keys of a run's config that only the server writes.
const IDENTITY_KEYS: [&str; 4] = ["langgraph_auth_user", "langgraph_auth_user_id", "langgraph_auth_permissions", "langgraph_request_id"];

/// The caller's identity in a run's `configurable` (`insert`) or `context` (over keys already
/// there). With custom auth `user_id` is the authenticated identity, whatever the client
/// sent; without it, a client's `user_id` stays (there is no identity to protect).
fn stamp_identity(map: &mut Map<String, Value>, user: Option<&AuthUser>, insert: bool) {
    let identity = user.map_or_else(String::new, |user| user.identity.clone());
    if user.is_some() && (insert || map.contains_key("user_id")) {
        map.insert("user_id".to_string(), Value::from(identity.clone()));
    } else if insert {
        map.entry("user_id").or_insert_with(|| Value::from(identity.clone()));
    }
    if insert || map.contains_key("langgraph_auth_user_id") {
        map.insert("langgraph_auth_user_id".to_string(), Value::from(identity));
    }
    if insert || map.contains_key("langgraph_auth_permissions") {
        map.insert("langgraph_auth_permissions".to_string(), Value::from(user.map(|user| user.permissions.clone()).unwrap_or_default()));
    }
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

fn location_headers(location: &str, content_location: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(location) {
        headers.insert(header::LOCATION, value);
    }
    if let Ok(value) = HeaderValue::from_str(content_location) {
        headers.insert(header::CONTENT_LOCATION, value);
    }
    headers
}

/// Cancels the run if the response body is dropped before the run ends (`on_disconnect`).
#[derive(Debug)]
struct CancelOnDrop {
    state: Option<(AppState, Run)>,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some((state, run)) = self.state.take() {
            tokio::spawn(async move {
                let still_active = state.runs().existing_channel(run.run_id).is_some_and(|channel| !channel.is_finished());
                if still_active {
                    let _ = state.runs().cancel(&run, CancelAction::Interrupt).await;
                }
            });
        }
    }
}

impl CancelOnDrop {
    fn disarm(&mut self) {
        self.state = None;
    }
}

/// An SSE response over a subscription, filtered to `modes` (empty: all), with heartbeats.
fn sse_response(subscription: Subscription, modes: Vec<String>, headers: HeaderMap, guard: CancelOnDrop) -> Response {
    let wanted = move |event: &RunEvent| {
        if matches!(event.event.as_str(), "metadata" | "error") || modes.is_empty() {
            return true;
        }
        let mode = event.mode();
        modes.iter().any(|wanted| wanted == mode || (mode == "messages" && wanted.starts_with("messages")))
    };
    let stream = futures_util::stream::unfold((subscription, guard), move |(mut subscription, mut guard)| {
        let wanted = wanted.clone();
        async move {
            loop {
                match tokio::time::timeout(KEEPALIVE, subscription.next()).await {
                    Err(_) => return Some((Ok::<Bytes, Infallible>(Bytes::from_static(b": heartbeat\r\n\r\n")), (subscription, guard))),
                    Ok(Some(event)) if wanted(&event) => return Some((Ok(Bytes::from(event.frame())), (subscription, guard))),
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        guard.disarm();
                        return None;
                    }
                }
            }
        }
    });
    let mut response = Response::new(Body::from_stream(stream));
    let response_headers = response.headers_mut();
    response_headers.extend(headers);
    response_headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream; charset=utf-8"));
    response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response_headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response_headers.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
    response
}

/// The thread's current values as a `/join` result (`__error__`, `__interrupt__` when so).
async fn thread_result(state: &AppState, thread_id: Uuid) -> Value {
    let Ok(thread) = state.storage().run(move |storage| storage.get_thread(thread_id, None)).await else {
        return json!({});
    };
    if thread.status == ThreadStatus::Error
        && let Some(error) = thread.error
    {
        return json!({"__error__": error});
    }
    if thread.status == ThreadStatus::Interrupted && !thread.interrupts.is_empty() {
        let all: Vec<Value> = thread.interrupts.values().filter_map(Value::as_array).flatten().cloned().collect();
        return json!({"__interrupt__": all});
    }
    thread.values.unwrap_or_else(|| json!({}))
}

/// A JSON response written when the run ends, with a `\n` every 5 s meanwhile.
fn wait_response(state: AppState, subscription: Subscription, thread_id: Option<Uuid>, headers: HeaderMap, guard: CancelOnDrop) -> Response {
    let result = async move {
        let events = subscription.collect().await;
        let mut guard = guard;
        guard.disarm();
        match wait_result(&events) {
            Some(result) => result,
            None => match thread_id {
                Some(thread_id) => thread_result(&state, thread_id).await,
                None => json!({}),
            },
        }
    };
    let result = Box::pin(result);
    let stream = futures_util::stream::unfold(Some(result), |pending| async move {
        let mut pending = pending?;
        match tokio::time::timeout(KEEPALIVE, &mut pending).await {
            Err(_) => Some((Ok::<Bytes, Infallible>(Bytes::from_static(b"\n")), Some(pending))),
            Ok(value) => Some((Ok(Bytes::from(value.to_string())), None)),
        }
    });
    let mut response = Response::new(Body::from_stream(stream));
    response.headers_mut().extend(headers);
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

async fn answer(state: AppState, auth: Auth, thread_id: Option<Uuid>, body: RunCreate, answer: Answer) -> Result<Response, ApiError> {
    let created = create_run(&state, &auth, thread_id, body, answer).await?;
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
            let guard = CancelOnDrop { state: (created.on_disconnect == OnDisconnect::Cancel).then(|| (state.clone(), created.run.clone())) };
            Ok(sse_response(created.channel.subscribe_from_start(), created.modes, headers, guard))
        }
        Answer::Wait => {
            let headers = location_headers(&format!("{thread_base}/join"), &thread_base);
            let guard = CancelOnDrop { state: (created.on_disconnect == OnDisconnect::Cancel).then(|| (state.clone(), created.run.clone())) };
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

async fn batch(State(state): State<AppState>, auth: Auth, ApiJson(bodies): ApiJson<Vec<RunCreate>>) -> Result<axum::Json<Value>, ApiError> {
    if bodies.is_empty() {
        return Err(ApiError::validation("the batch must hold at least one run"));
    }
    let mut runs = Vec::with_capacity(bodies.len());
    for body in bodies {
        let created = create_run(&state, &auth, None, body, Answer::Background).await?;
        runs.push(view(&created.run));
    }
    Ok(axum::Json(Value::Array(runs)))
}




/// Checks the parent thread against the event's filter: `Ok(false)` when hidden or missing.
async fn thread_visible(state: &AppState, thread_id: Uuid, filter: Option<crate::auth::Filter>) -> Result<bool, ApiError> {
    match state.storage().run(move |storage| storage.get_thread(thread_id, filter.as_ref())).await {
        Ok(_) => Ok(true),
        Err(StorageError::NotFound) => Ok(false),
        Err(other) => Err(other.into()),
    }
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
    let runs = state.storage().run(move |storage| storage.list_runs(thread_id, status, limit.clamp(0, 10_000), offset.max(0))).await?;
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
    let run = state.storage().run(move |storage| storage.get_run(thread_id, run_id)).await.map_err(|error| match error {
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
    let run = state.storage().run(move |storage| storage.get_run(thread_id, run_id)).await.map_err(|error| match error {
        StorageError::NotFound => ApiError::not_found("Run not found"),
        other => other.into(),
    })?;
    if run.status.is_active() {
        state.runs().cancel(&run, CancelAction::Rollback).await.map_err(ApiError::internal)?;
    } else {
        let _ = state.python().runner("delete_for_runs", vec![json!(thread_id.to_string()), json!([run_id.to_string()])]).await;
        state.storage().run(move |storage| storage.delete_run(run_id)).await?;
    }
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
    if !thread_visible(&state, thread_id, authorization.filter(Resource::Threads, Action::Read).cloned()).await? {
        return Err(ApiError::not_found("Thread not found"));
    }
    let base = format!("/threads/{thread_id}/runs/{run_id}");
    let headers = location_headers(&format!("{base}/join"), &base);
    let run = match state.storage().run(move |storage| storage.get_run(thread_id, run_id)).await {
        Ok(run) => run,
        Err(StorageError::NotFound) => {
            return Ok((headers, axum::Json(json!({"__error__": {"error": "HTTPException", "message": "404: Run not found"}}))).into_response());
        }
        Err(other) => return Err(other.into()),
    };
    let channel = state.runs().existing_channel(run_id);
    match channel {
        Some(channel) if run.status.is_active() || !channel.is_finished() => {
            let guard = CancelOnDrop { state: is_true(last(&pairs, "cancel_on_disconnect")).then(|| (state.clone(), run.clone())) };
            Ok(wait_response(state, channel.subscribe_from_start(), Some(thread_id), headers, guard))
        }
        _ if run.status.is_active() => {
            // Pending runs of a previous process have no channel yet: open it.
            let channel = state.runs().channel(run_id, false);
            Ok(wait_response(state, channel.subscribe_from_start(), Some(thread_id), headers, CancelOnDrop { state: None }))
        }
        _ => Ok((headers, axum::Json(thread_result(&state, thread_id).await)).into_response()),
    }
}

/// A one-event SSE answer: `event: error` with the given message.
fn sse_error(message: &str) -> Response {
    let channel = std::sync::Arc::new(RunChannel::new(false));
    channel.push("error", json!({"error": "HTTPException", "message": message}).to_string());
    channel.finish();
    sse_response(channel.subscribe_from_start(), Vec::new(), HeaderMap::new(), CancelOnDrop { state: None })
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
    let mut modes: Vec<String> = Vec::new();
    for (key, value) in &pairs {
        if key != "stream_mode" || value.is_empty() {
            continue;
        }
        match serde_json::from_str::<Vec<String>>(value) {
            Ok(list) => modes.extend(list),
            Err(_) => modes.push(value.clone()),
        }
    }
    let authorization = auth.authorize(Endpoint::ThreadsStream { thread_id: thread_id.to_string() }).await?;
    if !thread_visible(&state, thread_id, authorization.filter(Resource::Threads, Action::Read).cloned()).await? {
        return Ok(sse_error("404: Thread not found"));
    }
    let run = match state.storage().run(move |storage| storage.get_run(thread_id, run_id)).await {
        Ok(run) => run,
        Err(StorageError::NotFound) => return Ok(sse_error("404: Run not found")),
        Err(other) => return Err(other.into()),
    };
    let base = format!("/threads/{thread_id}/runs/{run_id}");
    let headers = location_headers(&format!("{base}/stream"), &base);
    let last_event_id = request_headers.get("last-event-id").and_then(|value| value.to_str().ok()).map(str::to_string);
    let channel = match state.runs().existing_channel(run_id) {
        Some(channel) => channel,
        None if run.status.is_active() => state.runs().channel(run_id, run.kwargs.get("resumable").and_then(Value::as_bool).unwrap_or(false)),
        None => {
            let finished = std::sync::Arc::new(RunChannel::new(false));
            finished.finish();
            finished
        }
    };
    let subscription = match &last_event_id {
        Some(id) => channel.subscribe_after(id),
        None => channel.subscribe_from_now(),
    };
    let guard = CancelOnDrop { state: is_true(last(&pairs, "cancel_on_disconnect")).then(|| (state.clone(), run)) };
    Ok(sse_response(subscription, modes, headers, guard))
}

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
    let run = state.storage().run(move |storage| storage.get_run(thread_id, run_id)).await.map_err(|error| match error {
        StorageError::NotFound => ApiError::not_found("No runs found to cancel."),
        other => other.into(),
    })?;
    if !run.status.is_active() {
        return Err(ApiError::not_found(
            "No matching runs to cancel. Please verify the thread ID and run IDs are correct, and the runs haven't been deleted or completed.",
        ));
    }
    let channel = state.runs().existing_channel(run_id);
    state.runs().cancel(&run, action).await.map_err(ApiError::internal)?;
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
            let filter = authorization.filter(Resource::Threads, Action::Update).cloned();
            let runs = state.storage().run(move |storage| storage.all_active_runs(filter_status)).await?;
            let mut visible = Vec::new();
            for run in runs {
                if thread_visible(&state, run.thread_id, filter.clone()).await? {
                    visible.push(run);
                }
            }
            visible
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
            let active = state.storage().run(move |storage| storage.active_runs(thread_id)).await?;
            active.into_iter().filter(|run| run_ids.contains(&run.run_id)).collect()
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

/// Starts a run for every cron whose time has come, as the cron's creator: the run's
/// `threads.create_run` (and `assistants.read`) events go through the handlers with that user. The next firing is stored first,
/// so a run that fails to start does not make the cron fire on every tick.
pub(in crate::server) async fn fire_due_crons(state: &AppState) {
    use crate::crons::{Schedule, next_run, time_zone};

    let now = now_micros();
    let due = match state.storage().run(move |storage| storage.due_crons(now)).await {
        Ok(due) => due,
        Err(error) => {
            tracing::error!(%error, "cannot read due crons");
            return;
        }
    };
    for cron in due {
        let next = Schedule::parse(&cron.schedule)
            .ok()
            .zip(time_zone(cron.timezone.as_deref()).ok())
            .and_then(|(schedule, zone)| next_run(&schedule, &zone, now))
            .filter(|next| cron.end_time_micros.is_none_or(|end| *next <= end));
        let cron_id = cron.cron_id;
        if let Err(error) = state.storage().run(move |storage| storage.set_cron_next_run(cron_id, next, now)).await {
            tracing::error!(%cron_id, %error, "cannot move a cron to its next firing");
            continue;
        }
        if cron.end_time_micros.is_some_and(|end| now > end) {
            continue;
        }
        // The cron's metadata (what its handlers approved) wins over anything in the payload.
        let mut payload = cron.payload.clone();
        let mut metadata = payload.get("metadata").and_then(Value::as_object).cloned().unwrap_or_default();
        merge_into(&mut metadata, Some(&cron.metadata));
        payload.insert("metadata".to_string(), Value::Object(metadata));
        if cron.thread_id.is_none() {
            payload.insert("on_completion".to_string(), Value::from(cron.on_run_completed.clone().unwrap_or_else(|| "delete".to_string())));
        }
        let body: RunCreate = match serde_json::from_value(Value::Object(payload)) {
            Ok(body) => body,
            Err(error) => {
                tracing::error!(%cron_id, %error, "a cron's payload is not a run body");
                continue;
            }
        };
        // As its creator, through the handlers again: a permission revoked since stops it.
        let creator = cron.creator.clone().or_else(|| cron.user_id.as_deref().filter(|identity| !identity.is_empty()).map(AuthUser::plain));
        // (None with auth configured: authenticate runs without credentials and refuses.)
        let path = cron.thread_id.map_or_else(|| "/runs".to_string(), |thread_id| format!("/threads/{thread_id}/runs"));
        let auth = Auth::acting_as(state.auth_policy().clone(), creator, "POST", path);
        match create_run(state, &auth, cron.thread_id, body, Answer::Background).await {
            Ok(created) => tracing::info!(%cron_id, run_id = %created.run.run_id, "cron fired"),
            Err(error) => tracing::warn!(%cron_id, status = %error.status, detail = %error.detail, "cron could not start its run"),
        }
    }
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
    let mut modes = Vec::new();
    for (key, value) in &pairs {
        if (key == "stream_modes" || key == "stream_mode") && !value.is_empty() {
            for mode in value.split(',').map(str::trim) {
                if !["run_modes", "lifecycle", "state_update"].contains(&mode) {
                    return Err(ApiError::validation(format!("Invalid stream mode: {mode}")));
                }
                modes.push(mode.to_string());
            }
        }
    }
    if modes.is_empty() {
        modes.push("run_modes".to_string());
    }
    let last_event_id = request_headers.get("last-event-id").and_then(|value| value.to_str().ok()).map(str::to_string);
    if let Some(id) = &last_event_id
        && !crate::runs::valid_last_event_id(id)
    {
        return Err(ApiError::validation("Invalid last-event-id: must be a valid Redis stream ID"));
    }
    let authorization = auth.authorize(Endpoint::ThreadsStream { thread_id: thread_id.to_string() }).await?;
    if !thread_visible(&state, thread_id, authorization.filter(Resource::Threads, Action::Read).cloned()).await? {
        return Ok(sse_error("404: Thread not found"));
    }
    let channel = state.runs().thread_channel(thread_id);
    let (replay, receiver) = channel.subscribe(last_event_id.as_deref());
    let wanted = move |event: &RunEvent| {
        let lifecycle = event.event == "metadata";
        let state_update = event.event == "state_update";
        (modes.iter().any(|mode| mode == "run_modes") && !state_update)
            || (modes.iter().any(|mode| mode == "lifecycle") && lifecycle)
            || (modes.iter().any(|mode| mode == "state_update") && state_update)
    };
    let replay: std::collections::VecDeque<RunEvent> = replay.into_iter().collect();
    let stream = futures_util::stream::unfold((replay, receiver, channel), move |(mut replay, mut receiver, channel)| {
        let wanted = wanted.clone();
        async move {
            loop {
                if let Some(event) = replay.pop_front() {
                    if wanted(&event) {
                        return Some((Ok::<Bytes, Infallible>(Bytes::from(event.frame())), (replay, receiver, channel)));
                    }
                    continue;
                }
                match tokio::time::timeout(KEEPALIVE, receiver.recv()).await {
                    Err(_) => return Some((Ok(Bytes::from_static(b": heartbeat\r\n\r\n")), (replay, receiver, channel))),
                    Ok(Ok(event)) if event.event == crate::runs::THREAD_STREAM_CLOSED => return None,
                    Ok(Ok(event)) if wanted(&event) => return Some((Ok(Bytes::from(event.frame())), (replay, receiver, channel))),
                    Ok(Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
                    Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => return None,
                }
            }
        }
    });
    let mut response = Response::new(Body::from_stream(stream));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}
