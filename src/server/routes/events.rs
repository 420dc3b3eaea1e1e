//! The v3 event-streaming protocol of a thread: `POST /threads/{id}/commands` (a JSON command
//! in, its JSON response out), `POST /threads/{id}/stream/events` (an SSE stream of protocol
//! events, filtered by `SubscribeParams`) and the WebSocket on the same path (commands and
//! events over one socket). The events come from the thread's protocol log
//! ([`crate::runs::protocol`]); runs are created through [`create_run`] as the caller, so a
//! `run.start` or `input.respond` is authorized, filtered and stamped exactly like
//! `POST /threads/{id}/runs`, and reading events needs `threads.read` on the thread.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::path_uuid;
use crate::auth::{Action, Endpoint, Resource};
use crate::error::ApiError;
use crate::runs::protocol::{EventFilter, ProtocolLog, RUN_MODES};
use crate::runs::EXECUTION_KEY;
use crate::server::AppState;
use crate::server::auth::Auth;
use crate::server::extract::{ApiJson, ApiPath};
use crate::server::respond::{HEARTBEAT, KEEPALIVE, event_stream};
use crate::server::service::runs::{Answer, RunCreate, create_run};
use crate::storage::{StorageError, Thread, ThreadStatus};

pub(in crate::server) fn router() -> super::Routes {
    super::Routes::new()
        .route("/threads/{thread_id}/commands", post(commands))
        .route("/threads/{thread_id}/stream/events", post(stream_events).get(websocket))
}

/// A parsed protocol command.
#[derive(Debug)]
struct Command {
    id: u64,
    method: String,
    params: Map<String, Value>,
}

impl Command {
    /// `None`: not a command (no integer `id` or no string `method`).
    fn parse(value: &Value) -> Option<Self> {
        let id = value.get("id")?.as_u64()?;
        let method = value.get("method")?.as_str()?.to_string();
        let params = match value.get("params") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(params)) => params.clone(),
            Some(_) => return None,
        };
        Some(Self { id, method, params })
    }
}

fn success(id: u64, result: Value, log: &ProtocolLog) -> Value {
    json!({"type": "success", "id": id, "result": result, "meta": {"applied_through_seq": log.last_seq()}})
}

fn failure(id: Option<u64>, code: &str, message: impl Into<String>) -> Value {
    json!({"type": "error", "id": id, "error": code, "message": message.into()})
}

fn not_a_command() -> Value {
    failure(None, "invalid_argument", "Protocol commands must include an integer id and string method.")
}

/// The thread as the caller may read it (`threads.read` with its filter), else 404.
async fn readable_thread(state: &AppState, auth: &Auth, thread_id: Uuid) -> Result<Thread, ApiError> {
    let authorization = auth.authorize(Endpoint::ThreadsStream { thread_id: thread_id.to_string() }).await?;
    match state.storage().get_thread(thread_id, authorization.filter(Resource::Threads, Action::Read).cloned()).await {
        Ok(thread) => Ok(thread),
        Err(StorageError::NotFound) => Err(ApiError::not_found(format!("Thread with ID {thread_id} not found"))),
        Err(other) => Err(other.into()),
    }
}

/// The subscriptions of one WebSocket (HTTP commands have none).
#[derive(Debug, Default)]
struct Subscriptions {
    filters: HashMap<String, EventFilter>,
}

/// `SubscribeParams` (plus `since`, the seq to replay after).
#[derive(Debug, Deserialize)]
struct SubscribeBody {
    channels: Vec<String>,
    namespaces: Option<Vec<Vec<String>>>,
    depth: Option<usize>,
    since: Option<u64>,
}

impl SubscribeBody {
    fn filter(&self) -> Result<EventFilter, String> {
        let filter = EventFilter { channels: self.channels.clone(), namespaces: self.namespaces.clone(), depth: self.depth };
        filter.check()?;
        Ok(filter)
    }
}

/// Runs one command. `Err`: the request is refused as HTTP would refuse it (no credentials,
/// a thread the caller may not see, a run `create_run` refuses); `Ok`: the protocol answer.
async fn dispatch(state: &AppState, auth: &Auth, thread_id: Uuid, command: Command, socket: Option<&mut Subscriptions>) -> Result<Value, ApiError> {
    match command.method.as_str() {
        "run.start" => run_start(state, auth, thread_id, command).await,
        "input.respond" => input_respond(state, auth, thread_id, command).await,
        "subscription.subscribe" => {
            let thread = readable_thread(state, auth, thread_id).await?;
            let log = state.runs().protocol().log(thread_id, thread.created_at);
            Ok(subscribe(command, socket, log.last_seq()))
        }
        "subscription.unsubscribe" => {
            let thread = readable_thread(state, auth, thread_id).await?;
            let log = state.runs().protocol().log(thread_id, thread.created_at);
            let id = command.params.get("subscription_id").and_then(Value::as_str).unwrap_or_default();
            let known = socket.is_none_or(|socket| socket.filters.remove(id).is_some());
            if !known {
                return Ok(failure(Some(command.id), "no_such_subscription", format!("Unknown subscription: {id}")));
            }
            Ok(success(command.id, json!({}), &log))
        }
        "agent.getTree" => {
            let thread = readable_thread(state, auth, thread_id).await?;
            let log = state.runs().protocol().log(thread_id, thread.created_at);
            let Some(active) = log.active_run() else {
                return Ok(failure(Some(command.id), "no_such_run", "No active run is bound to this thread."));
            };
            let children: Vec<Value> = active.namespaces.iter().map(|namespace| json!({"namespace": namespace, "status": "running", "graph_name": namespace.last().map(|segment| segment.split(':').next().unwrap_or(segment)).unwrap_or_default()})).collect();
            Ok(success(command.id, json!({"tree": {"namespace": [], "status": "running", "graph_name": active.graph_name, "children": children}}), &log))
        }
        other => Ok(failure(Some(command.id), "unknown_command", format!("Unknown protocol command: {other}"))),
    }
}

/// `subscription.subscribe`: the filter kept for the socket, answered as applied through `seq`.
fn subscribe(command: Command, socket: Option<&mut Subscriptions>, seq: u64) -> Value {
    let filter = match serde_json::from_value::<SubscribeBody>(Value::Object(command.params)).map_err(|error| error.to_string()).and_then(|body| body.filter()) {
        Ok(filter) => filter,
        Err(message) => return failure(Some(command.id), "invalid_argument", message),
    };
    let subscription_id = Uuid::new_v4().to_string();
    if let Some(socket) = socket {
        socket.filters.insert(subscription_id.clone(), filter);
    }
    json!({"type": "success", "id": command.id, "result": {"subscription_id": subscription_id, "replayed_events": 0}, "meta": {"applied_through_seq": seq}})
}

/// `run.start`: a run on the thread (created if missing). On a thread waiting at an interrupt
/// the input is the resume value (what the clients expect: they send `Command(resume=…)`'s
/// value as `input`). A thread that is only `interrupted` because a state update left it a
/// next task holds no interrupt to resume: there the input is the run's input.
async fn run_start(state: &AppState, auth: &Auth, thread_id: Uuid, command: Command) -> Result<Value, ApiError> {
    let Some(assistant_id) = command.params.get("assistant_id").and_then(Value::as_str) else {
        return Ok(failure(Some(command.id), "invalid_argument", "run.start requires an assistant_id."));
    };
    // Only shapes the request: `create_run` authorizes it (a thread the caller may not see is 404).
    let waiting = state.storage().get_thread(thread_id, None).await.is_ok_and(|thread| thread.status == ThreadStatus::Interrupted && thread.interrupts.values().any(|pending| pending.as_array().is_some_and(|list| !list.is_empty())));
    let input = command.params.get("input").cloned().unwrap_or(Value::Null);
    let mut body = json!({"assistant_id": assistant_id, "if_not_exists": "create"});
    if waiting {
        body["command"] = json!({"resume": input});
    } else {
        body["input"] = input;
    }
    for key in ["config", "metadata"] {
        if let Some(value) = command.params.get(key) {
            body[key] = value.clone();
        }
    }
    start(state, auth, thread_id, command.id, body).await
}

/// `input.respond`: resumes the interrupted thread with the responses, by interrupt id.
async fn input_respond(state: &AppState, auth: &Auth, thread_id: Uuid, command: Command) -> Result<Value, ApiError> {
    let thread = readable_thread(state, auth, thread_id).await?;
    let params = &command.params;
    let responses: Vec<(String, Value)> = match params.get("responses").and_then(Value::as_array) {
        Some(entries) => entries.iter().filter_map(|entry| Some((entry.get("interrupt_id")?.as_str()?.to_string(), entry.get("response").cloned().unwrap_or(Value::Null)))).collect(),
        None => params.get("interrupt_id").and_then(Value::as_str).map(|id| (id.to_string(), params.get("response").cloned().unwrap_or(Value::Null))).into_iter().collect(),
    };
    if responses.is_empty() {
        return Ok(failure(Some(command.id), "invalid_argument", "input.respond requires an interrupt_id and a response."));
    }
    let pending: Vec<&str> = thread.interrupts.values().filter_map(Value::as_array).flatten().filter_map(|interrupt| interrupt.get("id").and_then(Value::as_str)).collect();
    if let Some((unknown, _)) = responses.iter().find(|(id, _)| !pending.contains(&id.as_str())) {
        return Ok(failure(Some(command.id), "no_such_interrupt", format!("Unknown or already-consumed interrupt: {unknown}")));
    }
    if thread.status != ThreadStatus::Interrupted {
        return Ok(failure(Some(command.id), "no_such_run", "No interrupted run is bound to this thread."));
    }
    let Some(assistant_id) = thread.metadata.get("assistant_id").and_then(Value::as_str) else {
        return Ok(failure(Some(command.id), "no_such_run", "No interrupted run is bound to this thread."));
    };
    let mut resume = json!({"resume": Value::Object(responses.into_iter().collect())});
    for key in ["update", "goto"] {
        if let Some(value) = params.get(key) {
            resume[key] = value.clone();
        }
    }
    let mut body = json!({"assistant_id": assistant_id, "command": resume});
    for key in ["config", "metadata"] {
        if let Some(value) = params.get(key) {
            body[key] = value.clone();
        }
    }
    let mut answer = start(state, auth, thread_id, command.id, body).await?;
    if answer["type"] == "success" {
        answer["result"] = json!({});
    }
    Ok(answer)
}

/// Creates a protocol run (as the caller) and starts publishing its events.
async fn start(state: &AppState, auth: &Auth, thread_id: Uuid, id: u64, mut body: Value) -> Result<Value, ApiError> {
    body["stream_mode"] = json!(RUN_MODES);
    body["stream_subgraphs"] = json!(true);
    let request: RunCreate = match serde_json::from_value(body) {
        Ok(request) => request,
        Err(error) => return Ok(failure(Some(id), "invalid_argument", error.to_string())),
    };
    let created = create_run(state, auth, Some(thread_id), request, Answer::Background, None).await?;
    let thread = state.storage().get_thread(thread_id, None).await?;
    let log = state.runs().protocol().log(thread_id, thread.created_at);
    let graph_name = created.run.kwargs.get(EXECUTION_KEY).and_then(|execution| execution.get("graph_id")).and_then(Value::as_str).unwrap_or_default().to_string();
    let answer = success(id, json!({"run_id": created.run.run_id}), &log);
    state.runs().follow_protocol(log, &created.run, graph_name, created.channel);
    Ok(answer)
}

/// `POST /threads/{id}/commands`.
async fn commands(State(state): State<AppState>, auth: Auth, ApiPath(raw): ApiPath<String>, ApiJson(body): ApiJson<Value>) -> Result<Response, ApiError> {
    let thread_id = path_uuid(&raw, "thread")?;
    let Some(command) = Command::parse(&body) else {
        return Ok((StatusCode::BAD_REQUEST, axum::Json(not_a_command())).into_response());
    };
    let answer = dispatch(&state, &auth, thread_id, command, None).await?;
    Ok(axum::Json(answer).into_response())
}

/// `POST /threads/{id}/stream/events`: the thread's protocol events matching the body's
/// filter, from after `since` (or `Last-Event-ID`; neither: every event kept), then live,
/// with heartbeats, until the client goes away.
async fn stream_events(State(state): State<AppState>, auth: Auth, ApiPath(raw): ApiPath<String>, headers: HeaderMap, ApiJson(body): ApiJson<SubscribeBody>) -> Result<Response, ApiError> {
    let thread_id = path_uuid(&raw, "thread")?;
    let filter = body.filter().map_err(ApiError::validation)?;
    let last_event_id = crate::server::respond::last_event_id(&headers);
    let since = match (body.since, last_event_id) {
        (Some(since), _) => Some(since),
        (None, Some(id)) => Some(id.parse::<u64>().map_err(|_| ApiError::validation("Last-Event-ID: expected the seq of an event"))?),
        (None, None) => None,
    };
    let thread = readable_thread(&state, &auth, thread_id).await?;
    let reader = state.runs().protocol().log(thread_id, thread.created_at).reader(since);
    let stream = futures_util::stream::unfold((reader, filter), |(mut reader, filter)| async move {
        loop {
            match tokio::time::timeout(KEEPALIVE, reader.next_batch()).await {
                Err(_) => return Some((Ok(axum::body::Bytes::from_static(HEARTBEAT)), (reader, filter))),
                Ok(batch) => {
                    let frames: String = batch.iter().filter(|event| filter.matches(event)).map(|event| event.frame()).collect();
                    if !frames.is_empty() {
                        return Some((Ok(axum::body::Bytes::from(frames)), (reader, filter)));
                    }
                }
            }
        }
    });
    Ok(event_stream(stream, HeaderMap::new()))
}

/// `GET /threads/{id}/stream/events` with a WebSocket upgrade: authorized (`threads.read`) at
/// the handshake; then every frame in is a command and its answer goes back on the socket,
/// with the events of the socket's subscriptions.
async fn websocket(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(raw): ApiPath<String>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let thread_id = path_uuid(&raw, "thread")?;
    // A thread nobody has yet is the socket's to create (the JS client opens its socket on a
    // new thread's id before `run.start`): its events are bound once the thread exists and is
    // the caller's. A thread that exists and the caller may not read is a 404.
    let log = match readable_thread(&state, &auth, thread_id).await {
        Ok(thread) => Some(state.runs().protocol().log(thread_id, thread.created_at)),
        Err(error) if error.status == StatusCode::NOT_FOUND && !thread_exists(&state, thread_id).await? => None,
        Err(error) => return Err(error),
    };
    let upgrade = upgrade.map_err(|_| ApiError::new(StatusCode::UPGRADE_REQUIRED, "GET opens the event stream as a WebSocket; POST opens it as SSE"))?;
    Ok(upgrade.on_upgrade(move |socket| session(state, auth, thread_id, log, socket)))
}

/// Whether a thread of that id exists, whoever's it is.
async fn thread_exists(state: &AppState, thread_id: Uuid) -> Result<bool, ApiError> {
    match state.storage().get_thread(thread_id, None).await {
        Ok(_) => Ok(true),
        Err(StorageError::NotFound) => Ok(false),
        Err(other) => Err(other.into()),
    }
}

/// The log of the socket's thread once it exists and the caller may read it.
async fn bound_log(state: &AppState, auth: &Auth, thread_id: Uuid) -> Option<Arc<ProtocolLog>> {
    let thread = readable_thread(state, auth, thread_id).await.ok()?;
    Some(state.runs().protocol().log(thread_id, thread.created_at))
}

/// `subscription.subscribe` on a socket whose thread did not exist: answered as usual if the
/// thread is now the caller's (binding its log), kept as applied through seq 0 while nobody
/// has it, a 404 once it is someone else's.
async fn pending_subscribe(state: &AppState, auth: &Auth, thread_id: Uuid, command: Command, subscriptions: &mut Subscriptions, log: &mut Option<Arc<ProtocolLog>>) -> Result<Value, ApiError> {
    match readable_thread(state, auth, thread_id).await {
        Ok(thread) => {
            let bound = state.runs().protocol().log(thread_id, thread.created_at);
            let seq = bound.last_seq();
            *log = Some(bound);
            Ok(subscribe(command, Some(subscriptions), seq))
        }
        Err(error) if error.status == StatusCode::NOT_FOUND && !thread_exists(state, thread_id).await? => Ok(subscribe(command, Some(subscriptions), 0)),
        Err(error) => Err(error),
    }
}

/// What an HTTP refusal becomes on a socket: an error answer to that command.
fn refused(id: u64, error: &ApiError) -> Value {
    failure(Some(id), "unknown_error", format!("{}: {}", error.status.as_u16(), error.detail))
}

/// One WebSocket: commands in, answers and matching events out.
/// `log` is none while the socket's thread does not exist: a subscription is then kept (as
/// applied through seq 0), and after each command the thread is looked up again (as the
/// caller, with `threads.read`) until it exists and its log is bound.
async fn session(state: AppState, auth: Auth, thread_id: Uuid, mut log: Option<Arc<ProtocolLog>>, mut socket: WebSocket) {
    let mut subscriptions = Subscriptions::default();
    // Events are read from the first subscription's `since` on (later subscriptions widen the
    // filter from where the socket is); until then nothing is sent.
    let mut reader: Option<crate::runs::protocol::ProtocolReader> = None;
    let mut first_since: Option<Option<u64>> = None;
    loop {
        let batch = async {
            match reader.as_mut() {
                Some(reader) => reader.next_batch().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            incoming = socket.recv() => {
                let text = match incoming {
                    Some(Ok(Message::Text(text))) => text.to_string(),
                    Some(Ok(Message::Binary(bytes))) => String::from_utf8_lossy(&bytes).into_owned(),
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                    Some(Ok(_)) => continue,
                };
                let parsed = serde_json::from_str::<Value>(&text).ok();
                let Some(command) = parsed.as_ref().and_then(Command::parse) else {
                    if socket.send(Message::Text(not_a_command().to_string().into())).await.is_err() { return }
                    continue;
                };
                let id = command.id;
                let since = (command.method == "subscription.subscribe").then(|| command.params.get("since").and_then(Value::as_u64)).flatten();
                let subscribing = command.method == "subscription.subscribe";
                let answer = if subscribing && log.is_none() {
                    pending_subscribe(&state, &auth, thread_id, command, &mut subscriptions, &mut log).await
                } else {
                    dispatch(&state, &auth, thread_id, command, Some(&mut subscriptions)).await
                };
                let answer = answer.unwrap_or_else(|error| refused(id, &error));
                if subscribing && answer["type"] == "success" && first_since.is_none() {
                    first_since = Some(since);
                }
                if log.is_none() && !subscriptions.filters.is_empty() {
                    log = bound_log(&state, &auth, thread_id).await;
                }
                if let (None, Some(log), Some(since)) = (&reader, &log, first_since) {
                    reader = Some(log.reader(since));
                }
                if socket.send(Message::Text(answer.to_string().into())).await.is_err() { return }
            }
            events = batch => {
                for event in events.iter().filter(|event| subscriptions.filters.values().any(|filter| filter.matches(event))) {
                    if socket.send(Message::Text(event.json.clone().into())).await.is_err() { return }
                }
            }
        }
    }
}
