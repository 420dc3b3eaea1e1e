//! Run creation: the policy of every run a client (or a cron) asks for, once its request is
//! parsed — assistant and thread resolution, authorization as the caller, the config the
//! graph receives (ids and identity only the server writes), the multitask strategy, and the
//! one storage call that inserts the run. Routes parse the body and answer with the result;
//! the cron loop (`service::crons`) calls it as the cron's creator.

use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::assistants::system_assistant_id;
use crate::auth::events::RunMode;
use crate::auth::{Action, AuthUser, Endpoint, Resource};
use crate::error::ApiError;
use crate::runs::{CancelAction, EXECUTION_KEY, RunChannel, Subscription, wait_result};
use crate::server::AppState;
use crate::server::auth::Auth;
use crate::server::routes::{checkpoint_position, strip_reserved_metadata};
use crate::storage::{IfExists, Run, RunStatus, StorageError, Thread, ThreadStatus};
use crate::timestamp::now_micros;

/// Stream modes. Serde names are the wire strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(in crate::server) enum StreamMode {
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
    pub(in crate::server) fn as_str(self) -> &'static str {
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

/// The stream modes a run may ask for, as the reference's run schema lists them (`tools` and
/// `lifecycle`, which the SDKs' type also names, are refused there too).
const STREAM_MODES: [&str; 9] = ["values", "messages", "messages-tuple", "tasks", "checkpoints", "updates", "events", "debug", "custom"];

/// `stream_mode`: a mode or a list of them (`null`: the default), a refusal naming the mode
/// that is not one.
fn stream_modes<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<OneOrMany<StreamMode>>, D::Error> {
    use serde::de::Error;
    let parse = |value: &Value| -> Result<StreamMode, D::Error> {
        let Value::String(name) = value else {
            return Err(D::Error::custom(format!("{value} is not a stream mode: expected one of {}", STREAM_MODES.join(", "))));
        };
        StreamMode::deserialize(Value::String(name.clone())).map_err(|_| D::Error::custom(format!("'{name}' is not a stream mode: expected one of {}", STREAM_MODES.join(", "))))
    };
    match Value::deserialize(deserializer)? {
        Value::Null => Ok(None),
        Value::Array(items) => items.iter().map(parse).collect::<Result<Vec<_>, _>>().map(|modes| Some(OneOrMany::Many(modes))),
        one => parse(&one).map(|mode| Some(OneOrMany::One(mode))),
    }
}

/// A body's `stream_mode` checked as a run's would be (a cron's payload, before it is kept).
pub(in crate::server) fn check_stream_mode(body: &Map<String, Value>) -> Result<(), ApiError> {
    match body.get("stream_mode") {
        None => Ok(()),
        Some(value) => stream_modes(value.clone()).map(|_| ()).map_err(|error| ApiError::validation(format!("stream_mode: {error}"))),
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(in crate::server) enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    pub(in crate::server) fn into_vec(self) -> Vec<T> {
        match self {
            Self::One(item) => vec![item],
            Self::Many(items) => items,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(in crate::server) enum MultitaskStrategy {
    Reject,
    Interrupt,
    Rollback,
    Enqueue,
}

impl MultitaskStrategy {
    pub(in crate::server) fn as_str(self) -> &'static str {
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
pub(in crate::server) enum IfNotExists {
    Create,
    Reject,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(in crate::server) enum OnDisconnect {
    Cancel,
    Continue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(in crate::server) enum OnCompletion {
    Delete,
    Keep,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(in crate::server) enum Durability {
    Sync,
    Async,
    Exit,
}

/// The run creation body (spec runs.md §3). Unknown fields are ignored.
#[derive(Debug, Clone, Default, Deserialize)]
pub(in crate::server) struct RunCreate {
    pub(in crate::server) assistant_id: String,
    pub(in crate::server) input: Option<Value>,
    pub(in crate::server) command: Option<Map<String, Value>>,
    pub(in crate::server) metadata: Option<Map<String, Value>>,
    pub(in crate::server) config: Option<Map<String, Value>>,
    pub(in crate::server) context: Option<Map<String, Value>>,
    #[serde(default, deserialize_with = "stream_modes")]
    pub(in crate::server) stream_mode: Option<OneOrMany<StreamMode>>,
    pub(in crate::server) stream_subgraphs: Option<bool>,
    pub(in crate::server) stream_resumable: Option<bool>,
    pub(in crate::server) interrupt_before: Option<Value>,
    pub(in crate::server) interrupt_after: Option<Value>,
    pub(in crate::server) checkpoint_id: Option<String>,
    pub(in crate::server) checkpoint: Option<Map<String, Value>>,
    pub(in crate::server) multitask_strategy: Option<MultitaskStrategy>,
    pub(in crate::server) if_not_exists: Option<IfNotExists>,
    pub(in crate::server) on_disconnect: Option<OnDisconnect>,
    pub(in crate::server) on_completion: Option<OnCompletion>,
    pub(in crate::server) after_seconds: Option<f64>,
    pub(in crate::server) webhook: Option<String>,
    pub(in crate::server) durability: Option<Durability>,
    pub(in crate::server) checkpoint_during: Option<bool>,
    pub(in crate::server) feedback_keys: Option<Vec<String>>,
}

impl RunCreate {
    /// A run of `assistant_id` with `input`, everything else as a client that sends only
    /// those two fields gets it.
    pub(in crate::server) fn for_assistant(assistant_id: Uuid, input: Value) -> Self {
        Self { assistant_id: assistant_id.to_string(), input: Some(input), ..Self::default() }
    }
}

/// How the created run is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::server) enum Answer {
    Background,
    Stream,
    Wait,
}

/// A created run and its channel.
#[derive(Debug)]
pub(in crate::server) struct Created {
    pub(in crate::server) run: Run,
    pub(in crate::server) channel: std::sync::Arc<RunChannel>,
    pub(in crate::server) stateless: bool,
    pub(in crate::server) on_disconnect: OnDisconnect,
    pub(in crate::server) modes: Vec<String>,
}

pub(in crate::server) fn thread_or_assistant_missing() -> ApiError {
    ApiError::not_found("Thread or assistant not found.")
}

/// `interrupt_before`/`after`: `"*"` or a list of node names.
pub(in crate::server) fn check_interrupt_nodes(value: Option<&Value>, field: &str) -> Result<(), ApiError> {
    match value {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(text)) if text == "*" => Ok(()),
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => Ok(()),
        Some(other) => Err(ApiError::validation(format!("{field}: expected \"*\" or a list of node names, got {other}"))),
    }
}

pub(in crate::server) fn merge_into(target: &mut Map<String, Value>, source: Option<&Map<String, Value>>) {
    if let Some(source) = source {
        for (key, value) in source {
            target.insert(key.clone(), value.clone());
        }
    }
}

pub(in crate::server) fn configurable_of(config: &Map<String, Value>) -> Option<&Map<String, Value>> {
    config.get("configurable").and_then(Value::as_object)
}

/// Validates, authorizes and stores a run (spec runs.md §3, validation order included).
/// The detail of the answer when a cron's firing was made by another process meanwhile.
pub(in crate::server) const FIRING_TAKEN: &str = "This cron firing was made by another process";

/// Creates a run as `auth`'s caller. With a cron `firing`, the run is stored in one transaction
/// with the cron's move to its next firing, and only if no other process made that firing
/// (else 409 [`FIRING_TAKEN`], nothing kept: a thread this created for it is removed).
pub(in crate::server) async fn create_run(
    state: &AppState,
    auth: &Auth,
    thread_id: Option<Uuid>,
    body: RunCreate,
    answer: Answer,
    firing: Option<crate::storage::CronFiring>,
) -> Result<Created, ApiError> {
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
        crate::runs::webhook::check(webhook, &state.config().webhooks.url).map_err(ApiError::validation)?;
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
    let assistant = state.storage().get_assistant(assistant_id, None).await.map_err(|error| match error {
        StorageError::NotFound => thread_or_assistant_missing(),
        other => other.into(),
    })?;
    let existing_thread = match thread_id {
        Some(id) => match state.storage().get_thread(id, None).await {
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
    configurable.extend(checkpoint_position(body.checkpoint.clone()));
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
    // `http.disable_webhooks`: like the reference, a run's webhook is accepted and not called.
    let webhook = body.webhook.clone().filter(|_| !state.config().http.disabled.webhooks);
    kwargs.insert("webhook".to_string(), webhook.map_or(Value::Null, Value::from));
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
            if let Some(rules) = &state.config().http.configurable_headers {
                copy_headers(configurable, rules, auth.headers());
            }
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
        super::threads::create_idle(state, thread_id, thread_metadata.clone(), None, IfExists::DoNothing, filter, thread_or_assistant_missing).await?;
    }

    // Multitask strategies against the thread's active runs.
    let active = state.storage().active_runs(thread_id).await?;
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
    let channel = match state.runs().enqueue(&run, thread_metadata, firing).await {
        Ok(channel) => channel,
        Err(StorageError::Conflict) if firing.is_some() => {
            if existing_thread.is_none() {
                let _ = state.storage().delete_thread(thread_id, None).await;
            }
            return Err(ApiError::new(StatusCode::CONFLICT, FIRING_TAKEN));
        }
        Err(error) => return Err(error.into()),
    };
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
pub(in crate::server) struct RunIds {
    pub(in crate::server) thread_id: Uuid,
    pub(in crate::server) run_id: Uuid,
    pub(in crate::server) assistant_id: Uuid,
    pub(in crate::server) graph_id: String,
}

impl RunIds {
    /// Drops what a client may not set (the identity keys and every `__`-prefixed internal
    /// key) and writes the run's ids: always into a `configurable` (`insert`), and over keys
    /// already present in a `context` (whose schema is the graph's).
    pub(in crate::server) fn stamp(&self, map: &mut Map<String, Value>, insert: bool) {
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

/// Keys of a run's `configurable` a header never sets, whatever `http.configurable_headers`
/// includes: the server's ids and identity.
const SERVER_KEYS: [&str; 8] = ["thread_id", "run_id", "graph_id", "assistant_id", "user_id", "checkpoint_id", "checkpoint_ns", "checkpoint_map"];

/// Credentials a `*` pattern of `http.configurable_headers` does not match: they reach a run's
/// config (stored with the run, returned by `GET` on it) only when named exactly.
const CREDENTIAL_HEADERS: [&str; 5] = ["authorization", "cookie", "proxy-authorization", "x-api-key", "x-auth-token"];

/// Copies the request headers `rules` allow into a run's `configurable` (as the reference's
/// `http.configurable_headers` does), never over a server key.
fn copy_headers(configurable: &mut Map<String, Value>, rules: &crate::config::HeaderRules, headers: &[(String, Vec<u8>)]) {
    for (name, value) in headers {
        let name = name.to_ascii_lowercase();
        if name.starts_with("__") || IDENTITY_KEYS.contains(&name.as_str()) || SERVER_KEYS.contains(&name.as_str()) {
            continue;
        }
        let named = rules.include.iter().any(|pattern| *pattern == name);
        if (CREDENTIAL_HEADERS.contains(&name.as_str()) && !named) || !rules.allows(&name) {
            continue;
        }
        if let Ok(text) = std::str::from_utf8(value) {
            configurable.insert(name, Value::from(text));
        }
    }
}

/// Identity keys of a run's config that only the server writes.
pub(in crate::server) const IDENTITY_KEYS: [&str; 4] = ["langgraph_auth_user", "langgraph_auth_user_id", "langgraph_auth_permissions", "langgraph_request_id"];

/// The caller's identity in a run's `configurable` (`insert`) or `context` (over keys already
/// there): `user_id`, `langgraph_auth_user_id`, `langgraph_auth_permissions` and the user
/// object `langgraph_auth_user`. With custom auth `user_id` is the authenticated identity, whatever the client
/// sent; without it, a client's `user_id` stays (there is no identity to protect).
pub(in crate::server) fn stamp_identity(map: &mut Map<String, Value>, user: Option<&AuthUser>, insert: bool) {
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
    // The user object as the run record shows it (the reference's `kwargs` carry it too,
    // with every field authenticate returned); `null` without a user.
    if insert || map.contains_key("langgraph_auth_user") {
        map.insert("langgraph_auth_user".to_string(), user.map_or(Value::Null, AuthUser::to_json));
    }
}

/// The thread's current values as a `/join` result (`__error__`, `__interrupt__` when so).
pub(in crate::server) async fn thread_result(state: &AppState, thread_id: Uuid) -> Value {
    let Ok(thread) = state.storage().get_thread(thread_id, None).await else {
        return json!({});
    };
    thread_answer(thread)
}

/// What a join answers for a thread whose run is over: its error, its interrupts, or its
/// values.
pub(in crate::server) fn thread_answer(thread: Thread) -> Value {
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

/// What `/wait` answers once a run has ended: the result its events carry, else (a run on a
/// thread) the thread's values. Waits for the run's end.
pub(in crate::server) async fn run_result(state: &AppState, subscription: Subscription, thread_id: Option<Uuid>) -> Value {
    let events = subscription.collect().await;
    match wait_result(&events) {
        Some(result) => result,
        None => match thread_id {
            Some(thread_id) => thread_result(state, thread_id).await,
            None => json!({}),
        },
    }
}

/// Creates a run as `POST /runs/wait` (`thread_id` `None`) or `/threads/{id}/runs/wait` does
/// — the same validation, auth events and config — and waits for its result. For callers
/// that answer once the run is over (MCP tools, A2A messages); a client that goes away does
/// not cancel the run, as with `/wait`'s default `on_disconnect`.
pub(in crate::server) async fn run_and_wait(state: &AppState, auth: &Auth, thread_id: Option<Uuid>, body: RunCreate) -> Result<(Run, Value), ApiError> {
    let created = create_run(state, auth, thread_id, body, Answer::Wait, None).await?;
    let on_thread = (!created.stateless).then_some(created.run.thread_id);
    let result = run_result(state, created.channel.subscribe_from_start(), on_thread).await;
    Ok((created.run, result))
}
