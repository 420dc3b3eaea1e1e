//! The v3 event-streaming protocol (`/threads/{id}/commands`, `/threads/{id}/stream/events`):
//! a thread-wide log of protocol events with a per-thread `seq`, fed from the runs that
//! `run.start` and `input.respond` create, and the filters subscribers read it through.
//!
//! A protocol run is an ordinary run (same queue, executor and [`RunChannel`]) asked for every
//! stream mode the protocol has a channel for, with subgraphs. [`follow`] reads its channel
//! from the first event and [`Translator`] turns each chunk into protocol events: `values`,
//! `updates`, `custom`, `tasks` and `checkpoints` carry the chunk unchanged; `messages`
//! tuples become `message-start` / `content-block-*` / `message-finish`; tool calls in AI
//! messages and the tool messages answering them become `tools` events; an `__interrupt__`
//! update becomes `input.requested`; `lifecycle` is synthesized per namespace (`running` at
//! the start, `started` for a subgraph's first event, then `completed`, `failed` or
//! `interrupted` when the run ends).
//!
//! The log keeps the last [`KEPT`] events of a thread so a subscriber opened after
//! `run.start`, or reconnecting with `since`, gets what it missed. It lives in this process:
//! with `serve --workers N`, subscribers must reach the process that took `run.start`
//! (README, differences).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use tokio::sync::Notify;
use uuid::Uuid;

use super::{RunChannel, RunEvent};
use crate::storage::{RunStatus, StorageHandle};

/// How many recent events a thread's protocol log keeps for late and reconnecting readers.
const KEPT: usize = 10_000;

/// A log nobody reads and no run feeds is dropped after this long without events.
const IDLE: Duration = Duration::from_secs(3_600);

/// One published protocol event.
#[derive(Debug)]
pub struct Published {
    pub seq: u64,
    pub method: String,
    pub namespace: Vec<String>,
    /// `custom` events: the payload's `name`, for `custom:<name>` channels.
    pub name: Option<String>,
    /// The whole event as JSON text (`type`, `event_id`, `seq`, `method`, `params`).
    pub json: String,
}

impl Published {
    /// The SSE frame: `event:`, `data:`, `id:` (the seq).
    pub fn frame(&self) -> String {
        format!("event: {}\ndata: {}\nid: {}\n\n", self.method, self.json, self.seq)
    }
}

/// Every thread's protocol log in this process.
#[derive(Debug, Default)]
pub struct ProtocolHub {
    logs: Mutex<HashMap<Uuid, Arc<ProtocolLog>>>,
}

impl ProtocolHub {
    /// The log of the thread created at `created_at` (a thread deleted and created again with
    /// the same id, perhaps by someone else, gets a log of its own: nothing of the old one is
    /// replayed to it).
    pub fn log(&self, thread_id: Uuid, created_at: i64) -> Arc<ProtocolLog> {
        let mut logs = self.logs.lock().unwrap_or_else(PoisonError::into_inner);
        logs.retain(|_, log| Arc::strong_count(log) > 1 || !log.idle());
        if let Some(log) = logs.get(&thread_id)
            && log.created_at == created_at
        {
            return Arc::clone(log);
        }
        let log = Arc::new(ProtocolLog::new(created_at));
        logs.insert(thread_id, Arc::clone(&log));
        log
    }
}

/// One thread's protocol events, in `seq` order.
#[derive(Debug)]
pub struct ProtocolLog {
    created_at: i64,
    state: Mutex<LogState>,
    changed: Notify,
}

#[derive(Debug)]
struct LogState {
    events: VecDeque<Arc<Published>>,
    last_seq: u64,
    touched: Instant,
    /// The protocol run in progress and the namespaces it has reached, for `agent.getTree`.
    active: Option<ActiveRun>,
}

/// What `agent.getTree` reports of the run in progress.
#[derive(Debug, Clone)]
pub struct ActiveRun {
    pub run_id: Uuid,
    pub graph_name: String,
    pub namespaces: Vec<Vec<String>>,
}

impl ProtocolLog {
    fn new(created_at: i64) -> Self {
        Self { created_at, state: Mutex::new(LogState { events: VecDeque::new(), last_seq: 0, touched: Instant::now(), active: None }), changed: Notify::new() }
    }

    fn idle(&self) -> bool {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.active.is_none() && state.touched.elapsed() > IDLE
    }

    /// The seq of the last event published (0: none yet).
    pub fn last_seq(&self) -> u64 {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).last_seq
    }

    pub fn active_run(&self) -> Option<ActiveRun> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).active.clone()
    }

    fn set_active(&self, active: Option<ActiveRun>) {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).active = active;
    }

    fn note_namespace(&self, namespace: &[String]) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(active) = state.active.as_mut() {
            active.namespaces.push(namespace.to_vec());
        }
    }

    /// Appends an event with the next seq and wakes the readers.
    pub fn publish(&self, method: &str, namespace: &[String], data: Value) {
        let name = (method == "custom").then(|| data.get("name").and_then(Value::as_str).map(str::to_string)).flatten();
        let timestamp = crate::timestamp::now_micros() / 1000;
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.last_seq += 1;
        let seq = state.last_seq;
        let event = json!({
            "type": "event",
            "event_id": seq.to_string(),
            "seq": seq,
            "method": method,
            "params": {"namespace": namespace, "timestamp": timestamp, "data": data},
        });
        if state.events.len() == KEPT {
            state.events.pop_front();
        }
        state.events.push_back(Arc::new(Published { seq, method: method.to_string(), namespace: namespace.to_vec(), name, json: event.to_string() }));
        state.touched = Instant::now();
        drop(state);
        self.changed.notify_waiters();
    }

    /// A reader of the events after `since` (`None`: every event still kept).
    pub fn reader(self: &Arc<Self>, since: Option<u64>) -> ProtocolReader {
        ProtocolReader { log: Arc::clone(self), cursor: since.unwrap_or(0) }
    }

    fn after(&self, cursor: u64) -> Vec<Arc<Published>> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let start = state.events.partition_point(|event| event.seq <= cursor);
        state.events.range(start..).cloned().collect()
    }
}

/// A reader's position in a thread's protocol log.
#[derive(Debug)]
pub struct ProtocolReader {
    log: Arc<ProtocolLog>,
    cursor: u64,
}

impl ProtocolReader {
    /// The events published since the last call, waiting for at least one.
    pub async fn next_batch(&mut self) -> Vec<Arc<Published>> {
        loop {
            let notified = self.log.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let batch = self.log.after(self.cursor);
            if let Some(last) = batch.last() {
                self.cursor = last.seq;
                return batch;
            }
            notified.await;
        }
    }
}

/// What a subscriber asked for (`SubscribeParams`): channels, namespace prefixes, depth.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub channels: Vec<String>,
    pub namespaces: Option<Vec<Vec<String>>>,
    pub depth: Option<usize>,
}

/// The channels a subscription may name (`custom:<name>` besides).
pub const CHANNELS: [&str; 9] = ["values", "updates", "messages", "tools", "lifecycle", "input", "checkpoints", "tasks", "custom"];

impl EventFilter {
    /// Checks the channel names: an unknown one is the client's mistake, said at once.
    pub fn check(&self) -> Result<(), String> {
        match self.channels.iter().find(|channel| !CHANNELS.contains(&channel.as_str()) && channel.strip_prefix("custom:").is_none_or(str::is_empty)) {
            Some(unknown) => Err(format!("channels: unknown channel `{unknown}` (expected one of {} or custom:<name>)", CHANNELS.join(", "))),
            None => Ok(()),
        }
    }

    pub fn matches(&self, event: &Published) -> bool {
        self.matches_channel(event) && self.matches_namespace(&event.namespace)
    }

    fn matches_channel(&self, event: &Published) -> bool {
        let channel = if event.method == "input.requested" { "input" } else { event.method.as_str() };
        self.channels.iter().any(|wanted| {
            wanted == channel || (channel == "custom" && wanted.strip_prefix("custom:").is_some_and(|name| event.name.as_deref() == Some(name)))
        })
    }

    fn matches_namespace(&self, namespace: &[String]) -> bool {
        let within = |prefix: &[String]| namespace.starts_with(prefix) && self.depth.is_none_or(|depth| namespace.len() - prefix.len() <= depth);
        match &self.namespaces {
            None => within(&[]),
            Some(prefixes) => prefixes.iter().any(|prefix| within(prefix)),
        }
    }
}

/// The stream modes a protocol run is created with.
pub const RUN_MODES: [&str; 6] = ["values", "updates", "messages-tuple", "custom", "tasks", "checkpoints"];

/// Follows a protocol run from its first event to its end, publishing on `log`.
pub fn follow(storage: StorageHandle, log: Arc<ProtocolLog>, thread_id: Uuid, run_id: Uuid, graph_name: String, channel: Arc<RunChannel>) {
    log.set_active(Some(ActiveRun { run_id, graph_name: graph_name.clone(), namespaces: Vec::new() }));
    tokio::spawn(async move {
        let mut translator = Translator::new(graph_name);
        translator.start(&log);
        let mut subscription = channel.subscribe_from_start();
        while let Some(event) = subscription.next().await {
            translator.translate(&log, &event);
        }
        let cancelled = storage.get_run(thread_id, run_id).await.is_ok_and(|run| run.status == RunStatus::Interrupted);
        translator.finish(&log, cancelled);
        log.set_active(None);
    });
}

/// A streamed AI message not finished yet.
#[derive(Debug, Default)]
struct OpenMessage {
    namespace: Vec<String>,
    text: String,
    /// Tool call chunks by their index: id, name, the args text so far.
    tool_calls: Vec<(Value, Value, String)>,
}

/// Turns one run's events into protocol events.
#[derive(Debug)]
pub struct Translator {
    graph_name: String,
    open: HashMap<String, OpenMessage>,
    /// Messages already published whole (a streamed message's final copy is not repeated).
    finished: HashSet<String>,
    subgraphs: Vec<Vec<String>>,
    interrupted: bool,
    error: Option<String>,
}

impl Translator {
    pub fn new(graph_name: String) -> Self {
        Self { graph_name, open: HashMap::new(), finished: HashSet::new(), subgraphs: Vec::new(), interrupted: false, error: None }
    }

    pub fn start(&self, log: &ProtocolLog) {
        log.publish("lifecycle", &[], json!({"event": "running", "graph_name": self.graph_name}));
    }

    pub fn translate(&mut self, log: &ProtocolLog, event: &RunEvent) {
        let mut parts = event.event.split('|');
        let mode = parts.next().unwrap_or_default();
        let namespace: Vec<String> = parts.map(str::to_string).collect();
        let Ok(data) = serde_json::from_str::<Value>(&event.data) else { return };
        if mode == "error" {
            self.error = Some(error_text(&data));
            return;
        }
        if !matches!(mode, "values" | "updates" | "messages" | "custom" | "tasks" | "checkpoints") {
            return;
        }
        if !namespace.is_empty() && !self.subgraphs.contains(&namespace) {
            self.subgraphs.push(namespace.clone());
            log.note_namespace(&namespace);
            log.publish("lifecycle", &namespace, json!({"event": "started", "graph_name": subgraph_name(&namespace)}));
        }
        match mode {
            "messages" => self.message(log, &namespace, data),
            "updates" => {
                self.finish_messages(log, Some(&namespace));
                match data.get("__interrupt__").and_then(Value::as_array) {
                    Some(interrupts) => {
                        self.interrupted = self.interrupted || namespace.is_empty();
                        for interrupt in interrupts {
                            let id = interrupt.get("id").cloned().unwrap_or(Value::Null);
                            let value = interrupt.get("value").cloned().unwrap_or(Value::Null);
                            // `payload` is the protocol's field; the Python client reads `value`.
                            log.publish("input.requested", &namespace, json!({"interrupt_id": id, "payload": value, "value": value}));
                        }
                    }
                    None => log.publish("updates", &namespace, data),
                }
            }
            "values" => log.publish("values", &namespace, without_interrupts(data)),
            "checkpoints" => log.publish("checkpoints", &namespace, checkpoint_of(&data)),
            other => log.publish(other, &namespace, data),
        }
    }

    /// The run ended: open messages finish, then every subgraph and the root get their end.
    pub fn finish(&mut self, log: &ProtocolLog, cancelled: bool) {
        self.finish_messages(log, None);
        let mut end = match (&self.error, self.interrupted) {
            (Some(error), _) => json!({"event": "failed", "error": error}),
            (None, true) => json!({"event": "interrupted"}),
            (None, false) if cancelled => json!({"event": "failed", "error": "Run was cancelled"}),
            (None, false) => json!({"event": "completed"}),
        };
        for namespace in std::mem::take(&mut self.subgraphs).iter().rev() {
            let mut data = end.clone();
            data["graph_name"] = json!(subgraph_name(namespace));
            log.publish("lifecycle", namespace, data);
        }
        end["graph_name"] = json!(self.graph_name);
        log.publish("lifecycle", &[], end);
    }

    /// One `messages` tuple: `[message, metadata]`.
    fn message(&mut self, log: &ProtocolLog, namespace: &[String], data: Value) {
        let Value::Array(mut pair) = data else { return };
        let metadata = if pair.len() > 1 { pair.remove(1) } else { Value::Null };
        let Some(Value::Object(message)) = pair.into_iter().next() else { return };
        let kind = message.get("type").and_then(Value::as_str).unwrap_or_default().to_string();
        let id = message.get("id").and_then(Value::as_str).map_or_else(|| Uuid::new_v4().to_string(), str::to_string);
        if kind == "tool" || kind == "ToolMessageChunk" {
            self.tool_result(log, namespace, &message);
            return;
        }
        if self.finished.contains(&id) {
            return;
        }
        let role = match kind.as_str() {
            "human" | "HumanMessageChunk" => "human",
            "system" | "SystemMessageChunk" => "system",
            _ => "ai",
        };
        if kind.ends_with("Chunk") {
            self.chunk(log, namespace, id, role, &message, &metadata);
            return;
        }
        if let Some(open) = self.open.remove(&id) {
            // The whole message after its chunks: they are finished with its final content.
            self.finish_message(log, &id, open, Some(&message));
            return;
        }
        log.publish("messages", namespace, start_event(role, &id, &metadata));
        let blocks = blocks_of(&message);
        for (index, block) in blocks.iter().enumerate() {
            log.publish("messages", namespace, json!({"event": "content-block-start", "index": index, "content": block}));
            log.publish("messages", namespace, json!({"event": "content-block-finish", "index": index, "content": block}));
        }
        log.publish("messages", namespace, finish_event(&message));
        self.finished.insert(id);
        self.tools_started(log, namespace, &message);
    }

    fn chunk(&mut self, log: &ProtocolLog, namespace: &[String], id: String, role: &str, message: &Map<String, Value>, metadata: &Value) {
        let open = self.open.entry(id.clone()).or_insert_with(|| {
            log.publish("messages", namespace, start_event(role, &id, metadata));
            log.publish("messages", namespace, json!({"event": "content-block-start", "index": 0, "content": {"type": "text", "text": ""}}));
            OpenMessage { namespace: namespace.to_vec(), ..OpenMessage::default() }
        });
        let text = text_of(message.get("content"));
        if !text.is_empty() {
            open.text.push_str(&text);
            log.publish("messages", namespace, json!({"event": "content-block-delta", "index": 0, "delta": {"type": "text-delta", "text": text}}));
        }
        for chunk in message.get("tool_call_chunks").and_then(Value::as_array).into_iter().flatten() {
            let index = chunk.get("index").and_then(Value::as_u64).unwrap_or(0) as usize;
            while open.tool_calls.len() <= index {
                open.tool_calls.push((Value::Null, Value::Null, String::new()));
            }
            let call = &mut open.tool_calls[index];
            if let Some(id) = chunk.get("id").filter(|id| !id.is_null()) {
                call.0 = id.clone();
            }
            if let Some(name) = chunk.get("name").filter(|name| !name.is_null()) {
                call.1 = name.clone();
            }
            if let Some(args) = chunk.get("args").and_then(Value::as_str) {
                call.2.push_str(args);
            }
        }
        if message.get("chunk_position").and_then(Value::as_str) == Some("last")
            && let Some(open) = self.open.remove(&id)
        {
            self.finish_message(log, &id, open, None);
        }
    }

    /// Finishes the streamed messages (of one namespace, or all).
    fn finish_messages(&mut self, log: &ProtocolLog, namespace: Option<&[String]>) {
        let ids: Vec<String> = self.open.iter().filter(|(_, open)| namespace.is_none_or(|namespace| open.namespace == namespace)).map(|(id, _)| id.clone()).collect();
        for id in ids {
            if let Some(open) = self.open.remove(&id) {
                self.finish_message(log, &id, open, None);
            }
        }
    }

    fn finish_message(&mut self, log: &ProtocolLog, id: &str, open: OpenMessage, whole: Option<&Map<String, Value>>) {
        let namespace = open.namespace.clone();
        let text = whole.map_or_else(|| open.text.clone(), |message| text_of(message.get("content")));
        log.publish("messages", &namespace, json!({"event": "content-block-finish", "index": 0, "content": {"type": "text", "text": text}}));
        let calls: Vec<Value> = match whole.and_then(|message| message.get("tool_calls")).and_then(Value::as_array) {
            Some(calls) => calls.clone(),
            None => open.tool_calls.into_iter().map(|(id, name, args)| json!({"id": id, "name": name, "args": serde_json::from_str::<Value>(&args).unwrap_or_else(|_| json!({}))})).collect(),
        };
        for (offset, call) in calls.iter().enumerate() {
            let block = tool_call_block(call);
            log.publish("messages", &namespace, json!({"event": "content-block-start", "index": offset + 1, "content": block}));
            log.publish("messages", &namespace, json!({"event": "content-block-finish", "index": offset + 1, "content": block}));
        }
        let mut message = whole.cloned().unwrap_or_default();
        message.insert("tool_calls".into(), Value::Array(calls));
        log.publish("messages", &namespace, finish_event(&message));
        self.finished.insert(id.to_string());
        self.tools_started(log, &namespace, &message);
    }

    /// An AI message's tool calls start tool executions.
    fn tools_started(&self, log: &ProtocolLog, namespace: &[String], message: &Map<String, Value>) {
        for call in message.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
            let Some(id) = call.get("id").and_then(Value::as_str) else { continue };
            log.publish("tools", namespace, json!({"event": "tool-started", "tool_call_id": id, "tool_name": call.get("name").cloned().unwrap_or(Value::Null), "input": call.get("args").cloned().unwrap_or(Value::Null)}));
        }
    }

    /// A tool message ends its tool call.
    fn tool_result(&self, log: &ProtocolLog, namespace: &[String], message: &Map<String, Value>) {
        let Some(id) = message.get("tool_call_id").and_then(Value::as_str) else { return };
        let output = message.get("content").cloned().unwrap_or(Value::Null);
        if message.get("status").and_then(Value::as_str) == Some("error") {
            log.publish("tools", namespace, json!({"event": "tool-error", "tool_call_id": id, "message": text_of(Some(&output))}));
        } else {
            log.publish("tools", namespace, json!({"event": "tool-finished", "tool_call_id": id, "output": output}));
        }
    }
}

/// A `values` chunk without the `__interrupt__` key (interrupts travel as `input.requested`).
fn without_interrupts(mut data: Value) -> Value {
    if let Value::Object(values) = &mut data {
        values.remove("__interrupt__");
    }
    data
}

/// A `checkpoints` chunk as the protocol's `Checkpoint`: id, parent id, step, source (the
/// config, values and tasks of the chunk stay on the thread's state and history routes).
fn checkpoint_of(chunk: &Value) -> Value {
    let id_of = |config: &Value| config.pointer("/configurable/checkpoint_id").cloned();
    let mut checkpoint = json!({
        "id": chunk.get("config").and_then(id_of).unwrap_or(Value::Null),
        "step": chunk.pointer("/metadata/step").cloned().unwrap_or(Value::Null),
        "source": chunk.pointer("/metadata/source").cloned().unwrap_or(Value::Null),
    });
    if let Some(parent) = chunk.get("parent_config").and_then(id_of) {
        checkpoint["parent_id"] = parent;
    }
    checkpoint
}

fn start_event(role: &str, id: &str, metadata: &Value) -> Value {
    let mut event = json!({"event": "message-start", "role": role, "id": id});
    if let Value::Object(metadata) = metadata {
        // Only scalars travel (MessageMetadata), the node name among them.
        let scalars: Map<String, Value> = metadata.iter().filter(|(_, value)| !value.is_object() && !value.is_array()).map(|(key, value)| (key.clone(), value.clone())).collect();
        event["metadata"] = Value::Object(scalars);
    }
    event
}

fn finish_event(message: &Map<String, Value>) -> Value {
    let mut event = json!({"event": "message-finish"});
    if let Some(usage) = message.get("usage_metadata").filter(|usage| usage.is_object()) {
        event["usage"] = usage.clone();
    }
    event
}

/// A whole message's content blocks: its text, then its tool calls.
fn blocks_of(message: &Map<String, Value>) -> Vec<Value> {
    let mut blocks = vec![json!({"type": "text", "text": text_of(message.get("content"))})];
    for call in message.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
        blocks.push(tool_call_block(call));
    }
    blocks
}

fn tool_call_block(call: &Value) -> Value {
    json!({"type": "tool_call", "id": call.get("id").cloned().unwrap_or(Value::Null), "name": call.get("name").cloned().unwrap_or(Value::Null), "args": call.get("args").cloned().unwrap_or_else(|| json!({}))})
}

/// A message's text: the string, or the text blocks of a list.
fn text_of(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter_map(|block| match block {
                Value::String(text) => Some(text.as_str()),
                block => block.get("text").and_then(Value::as_str),
            })
            .collect(),
        _ => String::new(),
    }
}

fn error_text(error: &Value) -> String {
    match (error.get("error").and_then(Value::as_str), error.get("message").and_then(Value::as_str)) {
        (Some(kind), Some(message)) => format!("{kind}: {message}"),
        (None, Some(message)) => message.to_string(),
        _ => error.to_string(),
    }
}

/// A subgraph's name from its namespace (`node:task_id` → `node`).
fn subgraph_name(namespace: &[String]) -> String {
    namespace.last().map(|segment| segment.split(':').next().unwrap_or(segment).to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str, data: Value) -> RunEvent {
        RunEvent { id: None, event: name.to_string(), data: Arc::from(data.to_string()) }
    }

    fn methods(log: &Arc<ProtocolLog>) -> Vec<(String, Value)> {
        log.after(0).iter().map(|event| {
            let parsed: Value = serde_json::from_str(&event.json).expect("json");
            (event.method.clone(), parsed["params"]["data"].clone())
        }).collect()
    }

    #[test]
    fn a_run_becomes_lifecycle_values_messages_and_tools() {
        let log = Arc::new(ProtocolLog::new(1));
        let mut translator = Translator::new("agent".into());
        translator.start(&log);
        translator.translate(&log, &event("metadata", json!({"run_id": "r"})));
        translator.translate(&log, &event("values", json!({"messages": []})));
        let ai = json!({"type": "ai", "id": "m1", "content": "hi", "tool_calls": [{"id": "c1", "name": "search", "args": {"q": "x"}}]});
        translator.translate(&log, &event("messages", json!([ai, {"langgraph_node": "model", "tags": []}])));
        translator.translate(&log, &event("messages", json!([{"type": "tool", "id": "t1", "tool_call_id": "c1", "content": "found"}, {}])));
        translator.translate(&log, &event("updates", json!({"model": {"x": 1}})));
        translator.finish(&log, false);
        let seen = methods(&log);
        let names: Vec<&str> = seen.iter().map(|(method, data)| data.get("event").and_then(Value::as_str).unwrap_or(method)).collect();
        assert_eq!(names, ["running", "values", "message-start", "content-block-start", "content-block-finish", "content-block-start", "content-block-finish", "message-finish", "tool-started", "tool-finished", "updates", "completed"]);
        assert_eq!(seen[2].1["metadata"], json!({"langgraph_node": "model"}));
        assert_eq!(seen[8].1, json!({"event": "tool-started", "tool_call_id": "c1", "tool_name": "search", "input": {"q": "x"}}));
        assert_eq!(seen[11].1, json!({"event": "completed", "graph_name": "agent"}));
        let seqs: Vec<u64> = log.after(0).iter().map(|event| event.seq).collect();
        assert_eq!(seqs, (1..=12).collect::<Vec<u64>>());
    }

    #[test]
    fn streamed_chunks_are_deltas_finished_once() {
        let log = Arc::new(ProtocolLog::new(1));
        let mut translator = Translator::new("agent".into());
        for text in ["he", "llo"] {
            translator.translate(&log, &event("messages", json!([{"type": "AIMessageChunk", "id": "m", "content": text}, {}])));
        }
        translator.translate(&log, &event("messages", json!([{"type": "ai", "id": "m", "content": "hello"}, {}])));
        translator.translate(&log, &event("messages", json!([{"type": "ai", "id": "m", "content": "hello"}, {}])));
        let seen = methods(&log);
        let names: Vec<&str> = seen.iter().map(|(_, data)| data["event"].as_str().unwrap_or_default()).collect();
        assert_eq!(names, ["message-start", "content-block-start", "content-block-delta", "content-block-delta", "content-block-finish", "message-finish"]);
        assert_eq!(seen[4].1["content"]["text"], "hello");
    }

    #[test]
    fn interrupts_and_failures_end_the_run_accordingly() {
        let log = Arc::new(ProtocolLog::new(1));
        let mut translator = Translator::new("approve".into());
        translator.translate(&log, &event("updates", json!({"__interrupt__": [{"id": "i1", "value": {"q": 1}}]})));
        translator.translate(&log, &event("values", json!({"x": 1, "__interrupt__": []})));
        translator.translate(&log, &event("checkpoints", json!({"config": {"configurable": {"checkpoint_id": "c2"}}, "parent_config": {"configurable": {"checkpoint_id": "c1"}}, "metadata": {"step": 1, "source": "loop"}, "values": {}})));
        translator.finish(&log, false);
        let seen = methods(&log);
        assert_eq!(seen[0], ("input.requested".to_string(), json!({"interrupt_id": "i1", "payload": {"q": 1}, "value": {"q": 1}})));
        assert_eq!(seen[1].1, json!({"x": 1}));
        assert_eq!(seen[2].1, json!({"id": "c2", "parent_id": "c1", "step": 1, "source": "loop"}));
        assert_eq!(seen[3].1["event"], "interrupted");
        let failed = Arc::new(ProtocolLog::new(1));
        let mut translator = Translator::new("g".into());
        translator.translate(&failed, &event("values|sub:1", json!({})));
        translator.translate(&failed, &event("error", json!({"error": "ValueError", "message": "boom"})));
        translator.finish(&failed, false);
        let seen = methods(&failed);
        assert_eq!(seen[0].1, json!({"event": "started", "graph_name": "sub"}));
        assert_eq!(seen[2].1, json!({"event": "failed", "error": "ValueError: boom", "graph_name": "sub"}));
        assert_eq!(seen[3].1, json!({"event": "failed", "error": "ValueError: boom", "graph_name": "g"}));
    }

    #[test]
    fn filters_match_channels_namespaces_and_depth() {
        let log = Arc::new(ProtocolLog::new(1));
        log.publish("values", &[], json!({}));
        log.publish("input.requested", &[], json!({}));
        log.publish("custom", &["a:1".into(), "b:2".into()], json!({"name": "progress"}));
        let events = log.after(0);
        let filter = |channels: &[&str], namespaces: Option<Vec<Vec<String>>>, depth| EventFilter { channels: channels.iter().map(|c| c.to_string()).collect(), namespaces, depth };
        assert!(filter(&["values"], None, None).matches(&events[0]));
        assert!(filter(&["input"], None, None).matches(&events[1]));
        assert!(filter(&["custom:progress"], None, None).matches(&events[2]));
        assert!(!filter(&["custom:other"], None, None).matches(&events[2]));
        assert!(!filter(&["custom"], Some(vec![vec![]]), Some(1)).matches(&events[2]));
        assert!(filter(&["custom"], Some(vec![vec!["a:1".into()]]), Some(1)).matches(&events[2]));
        assert!(!filter(&["custom"], Some(vec![vec!["b:2".into()]]), None).matches(&events[2]));
        assert!(filter(&["nope"], None, None).check().is_err());
        assert!(filter(&["custom:x", "values"], None, None).check().is_ok());
        assert_eq!(log.after(2).len(), 1);
    }

    #[tokio::test]
    async fn readers_wait_for_new_events() {
        let log = Arc::new(ProtocolLog::new(1));
        log.publish("values", &[], json!({"n": 1}));
        let mut reader = log.reader(None);
        assert_eq!(reader.next_batch().await.len(), 1);
        let writer = Arc::clone(&log);
        tokio::spawn(async move { writer.publish("values", &[], json!({"n": 2})) });
        let batch = reader.next_batch().await;
        assert_eq!(batch[0].seq, 2);
        let hub = ProtocolHub::default();
        let thread = Uuid::new_v4();
        hub.log(thread, 1).publish("values", &[], json!({}));
        assert_eq!(hub.log(thread, 1).last_seq(), 1);
        assert_eq!(hub.log(thread, 2).last_seq(), 0, "a thread created again has a log of its own");
    }
}
