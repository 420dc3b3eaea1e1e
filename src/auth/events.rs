//! Which auth events each endpoint fires, with which `value` (spec auth.md §4.5), as typed
//! Rust: a route builds its [`Endpoint`] from the validated request and never names a
//! resource or action itself.

use serde_json::{Map, Value};
use uuid::Uuid;

use super::{Action, AuthEvent, Resource};

/// A value handed to a handler: JSON plus the two Python types the reference uses
/// (`uuid.UUID` and `tuple`).
#[derive(Debug, Clone, PartialEq)]
pub enum EventValue {
    /// Any JSON (`null`, numbers, strings, lists, dicts).
    Json(Value),
    /// A `uuid.UUID`.
    Uuid(Uuid),
    /// A `tuple[str, ...]` (store namespaces).
    Tuple(Vec<String>),
    /// A list of values.
    List(Vec<EventValue>),
    /// A dict with keys in this order.
    Map(Vec<(String, EventValue)>),
    /// The authenticated user's identity, filled in after authentication (e.g. a cron's
    /// `user_id`); `""` without auth.
    Identity,
}

impl EventValue {
    /// JSON form: UUIDs become strings, tuples lists.
    pub fn to_json(&self) -> Value {
        match self {
            Self::Json(value) => value.clone(),
            Self::Uuid(id) => Value::String(id.to_string()),
            Self::Tuple(items) => Value::Array(items.iter().cloned().map(Value::String).collect()),
            Self::List(items) => Value::Array(items.iter().map(Self::to_json).collect()),
            Self::Map(entries) => Value::Object(entries.iter().map(|(key, value)| (key.clone(), value.to_json())).collect()),
            Self::Identity => Value::String(String::new()),
        }
    }
}

fn map(entries: Vec<(&str, EventValue)>) -> EventValue {
    EventValue::Map(entries.into_iter().map(|(key, value)| (key.to_string(), value)).collect())
}
fn json(value: impl Into<Value>) -> EventValue {
    EventValue::Json(value.into())
}
fn object(value: &Map<String, Value>) -> EventValue {
    EventValue::Json(Value::Object(value.clone()))
}
fn optional<T: Into<Value>>(value: Option<T>) -> EventValue {
    EventValue::Json(value.map_or(Value::Null, Into::into))
}
fn uuid(id: Uuid) -> EventValue {
    EventValue::Uuid(id)
}
fn event(resource: Resource, action: Action, value: EventValue) -> AuthEvent {
    AuthEvent { resource, action, value }
}

/// How a run is created: which events follow `threads.create_run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    /// `POST …/runs` (background).
    Background,
    /// `…/runs/wait` and `…/runs/stream`: three `threads.read` while waiting.
    Wait,
}

/// Every endpoint that fires auth events, with the request data its events carry.
#[derive(Debug, Clone, PartialEq)]
pub enum Endpoint {
    /// Authentication only (unknown routes, routes without events).
    None,
    AssistantsCreate { assistant_id: Uuid, graph_id: String, config: Map<String, Value>, context: Option<Map<String, Value>>, metadata: Map<String, Value>, name: String },
    /// `POST /assistants/search`; `/count` passes `limit = offset = 0`.
    AssistantsSearch { graph_id: Option<String>, metadata: Map<String, Value>, limit: i64, offset: i64 },
    /// `GET /assistants/{id}` and `/graph`, `/schemas`, `/subgraphs`, `/versions`.
    AssistantsRead { assistant_id: Uuid },
    AssistantsUpdate { assistant_id: Uuid, graph_id: Option<String>, config: Map<String, Value>, context: Option<Map<String, Value>>, metadata: Map<String, Value>, name: Option<String> },
    AssistantsSetLatest { assistant_id: Uuid, version: i64 },
    AssistantsDelete { assistant_id: Uuid },
    /// `ttl`: the thread's TTL as `{"ttl": minutes, "strategy": …}`, when the request names one.
    ThreadsCreate { thread_id: Uuid, metadata: Map<String, Value>, if_exists: String, ttl: Option<Value> },
    /// `POST /threads/search`; `/count` passes `limit = offset = 0`.
    ThreadsSearch { metadata: Map<String, Value>, values: Map<String, Value>, status: Option<String>, limit: i64, offset: i64 },
    /// `GET /threads/{id}`, `/state`, `/state/{checkpoint}`, `/state/checkpoint`, `/storage`.
    ThreadsRead { thread_id: Uuid },
    /// `GET|POST /threads/{id}/history`: two reads, like the reference.
    ThreadsHistory { thread_id: Uuid },
    ThreadsUpdate { thread_id: Uuid, metadata: Map<String, Value> },
    ThreadsDelete { thread_id: Uuid },
    /// `DELETE /assistants/{id}?delete_threads=true`: one `threads.delete` per thread of the
    /// assistant (a second round trip, after the assistant's own events).
    ThreadsDeleteEach { thread_ids: Vec<Uuid> },
    /// `DELETE /assistants/{id}`: one `crons.delete` per cron of the assistant (its crons go
    /// with it).
    CronsDeleteEach { cron_ids: Vec<Uuid> },
    /// `POST /threads/prune`: one batch event, then one per thread.
    ThreadsPrune { thread_ids: Vec<String> },
    /// `POST /threads/{id}/state`.
    ThreadsUpdateState { thread_id: Uuid },
    /// `POST /threads/{id}/copy`.
    ThreadsCopy { thread_id: Uuid, new_thread_id: Uuid },
    /// `GET /threads/{id}/stream`: the id as a string.
    ThreadsStream { thread_id: String },
    /// Run creation; `assistant_read` is false for system assistants.
    RunsCreate { thread_id: Option<Uuid>, read_thread_id: Option<Uuid>, assistant_id: Uuid, assistant_read: bool, mode: RunMode, value: Map<String, Value> },
    /// `GET /threads/{id}/runs`.
    RunsList { thread_id: Uuid },
    /// `GET /threads/{id}/runs/{run_id}`.
    RunsGet { thread_id: Uuid },
    /// `GET /threads/{id}/runs/{run_id}/join`.
    RunsJoin { thread_id: Uuid },
    /// `POST /threads/{id}/runs/{run_id}/cancel` and `POST /runs/cancel` by ids.
    RunsCancel { thread_id: Option<Uuid>, run_ids: Option<Vec<Uuid>>, status: Option<String>, action: String },
    RunsDelete { thread_id: Uuid, run_id: Uuid },
    /// `user_id` is the caller's identity, filled in after authentication.
    CronsCreate { payload: Map<String, Value>, schedule: String, cron_id: Uuid, thread_id: Option<Uuid>, end_time: Option<Value>, metadata: Map<String, Value>, assistant_id: String, assistant_read: bool },
    CronsSearch { assistant_id: Option<String>, thread_id: Option<String>, limit: i64, offset: i64, metadata: Map<String, Value> },
    CronsRead { cron_id: Uuid },
    CronsUpdate { cron_id: Uuid, fields: Map<String, Value> },
    CronsDelete { cron_id: Uuid },
    StorePut { namespace: Vec<String>, key: String, value: Map<String, Value>, index: Value, ttl: Option<Value> },
    StoreGet { namespace: Vec<String>, key: String, refresh_ttl: Option<bool> },
    StoreDelete { namespace: Vec<String>, key: String },
    StoreSearch { namespace: Vec<String>, filter: Option<Map<String, Value>>, limit: i64, offset: i64, query: Option<String>, refresh_ttl: Option<bool> },
    StoreListNamespaces { namespace: Option<Vec<String>>, suffix: Option<Vec<String>>, max_depth: Option<i64>, limit: i64, offset: i64 },
}

impl Endpoint {
    /// The events this endpoint fires, in the reference's order.
    pub fn events(&self) -> Vec<AuthEvent> {
        use Action::{Create, CreateRun, Delete, Get, ListNamespaces, Put, Read, Search, Update};
        use Resource::{Assistants, Crons, Store, Threads};
        let read_thread = |thread_id: Uuid| event(Threads, Read, map(vec![("thread_id", uuid(thread_id))]));
        match self {
            Self::None => Vec::new(),
            Self::AssistantsCreate { assistant_id, graph_id, config, context, metadata, name } => vec![event(
                Assistants,
                Create,
                map(vec![
                    ("assistant_id", uuid(*assistant_id)),
                    ("graph_id", json(graph_id.clone())),
                    ("config", object(config)),
                    ("context", context.as_ref().map_or(json(Value::Null), object)),
                    ("metadata", object(metadata)),
                    ("name", json(name.clone())),
                ]),
            )],
            Self::AssistantsSearch { graph_id, metadata, limit, offset } => vec![event(
                Assistants,
                Search,
                map(vec![("graph_id", optional(graph_id.clone())), ("metadata", object(metadata)), ("limit", json(*limit)), ("offset", json(*offset))]),
            )],
            Self::AssistantsRead { assistant_id } => vec![event(Assistants, Read, map(vec![("assistant_id", uuid(*assistant_id))]))],
            Self::AssistantsUpdate { assistant_id, graph_id, config, context, metadata, name } => vec![event(
                Assistants,
                Update,
                map(vec![
                    ("assistant_id", uuid(*assistant_id)),
                    ("graph_id", optional(graph_id.clone())),
                    ("config", object(config)),
                    ("context", context.as_ref().map_or(json(Value::Null), object)),
                    ("metadata", object(metadata)),
                    ("name", optional(name.clone())),
                ]),
            )],
            Self::AssistantsSetLatest { assistant_id, version } => {
                vec![event(Assistants, Update, map(vec![("assistant_id", uuid(*assistant_id)), ("version", json(*version))]))]
            }
            Self::AssistantsDelete { assistant_id } => vec![
                event(Assistants, Delete, map(vec![("assistant_id", uuid(*assistant_id))])),
                event(Threads, Update, cancel_value(None, None, None, "interrupt")),
            ],
            Self::ThreadsCreate { thread_id, metadata, if_exists, ttl } => {
                let mut entries = vec![("thread_id", uuid(*thread_id)), ("metadata", object(metadata)), ("if_exists", json(if_exists.clone()))];
                if let Some(ttl) = ttl {
                    entries.push(("ttl", json(ttl.clone())));
                }
                vec![event(Threads, Create, map(entries))]
            }
            Self::ThreadsSearch { metadata, values, status, limit, offset } => vec![event(
                Threads,
                Search,
                map(vec![
                    ("metadata", object(metadata)),
                    ("values", object(values)),
                    ("status", optional(status.clone())),
                    ("limit", json(*limit)),
                    ("offset", json(*offset)),
                ]),
            )],
            Self::ThreadsRead { thread_id } => vec![read_thread(*thread_id)],
            Self::ThreadsHistory { thread_id } | Self::RunsGet { thread_id } => vec![read_thread(*thread_id), read_thread(*thread_id)],
            Self::ThreadsUpdate { thread_id, metadata } => {
                vec![event(Threads, Update, map(vec![("thread_id", uuid(*thread_id)), ("metadata", object(metadata))]))]
            }
            Self::ThreadsDelete { thread_id } => vec![event(Threads, Delete, map(vec![("thread_id", uuid(*thread_id))]))],
            Self::CronsDeleteEach { cron_ids } => cron_ids.iter().map(|id| event(Crons, Delete, map(vec![("cron_id", uuid(*id))]))).collect(),
            Self::ThreadsDeleteEach { thread_ids } => thread_ids.iter().map(|id| event(Threads, Delete, map(vec![("thread_id", uuid(*id))]))).collect(),
            Self::ThreadsPrune { thread_ids } => {
                let mut events = vec![event(Threads, Delete, map(vec![("thread_ids", json(thread_ids.clone()))]))];
                for id in thread_ids {
                    if let Ok(id) = Uuid::parse_str(id) {
                        events.push(event(Threads, Delete, map(vec![("thread_id", uuid(id))])));
                    }
                }
                events
            }
            Self::ThreadsUpdateState { thread_id } => {
                vec![event(Threads, Update, map(vec![("thread_id", uuid(*thread_id))])), read_thread(*thread_id)]
            }
            Self::ThreadsCopy { thread_id, new_thread_id } => {
                vec![read_thread(*thread_id), event(Threads, Create, map(vec![("thread_id", uuid(*new_thread_id))]))]
            }
            Self::ThreadsStream { thread_id } => vec![event(Threads, Read, map(vec![("thread_id", json(thread_id.clone()))]))],
            Self::RunsCreate { thread_id, read_thread_id, assistant_id, assistant_read, mode, value } => {
                let mut entries: Vec<(String, EventValue)> = vec![
                    ("thread_id".into(), thread_id.map_or(json(Value::Null), uuid)),
                    ("assistant_id".into(), uuid(*assistant_id)),
                ];
                entries.extend(value.iter().map(|(key, value)| (key.clone(), run_field(key, value))));
                let mut events = vec![event(Threads, CreateRun, EventValue::Map(entries))];
                if *assistant_read {
                    events.push(event(Assistants, Read, map(vec![("assistant_id", uuid(*assistant_id))])));
                }
                if *mode == RunMode::Wait
                    && let Some(read_id) = read_thread_id.or(*thread_id)
                {
                    events.extend([read_thread(read_id), read_thread(read_id), read_thread(read_id)]);
                }
                events
            }
            Self::RunsList { thread_id } => {
                vec![read_thread(*thread_id), event(Threads, Search, map(vec![("thread_id", uuid(*thread_id)), ("metadata", json(Map::new()))]))]
            }
            Self::RunsJoin { thread_id } => {
                let as_string = || event(Threads, Read, map(vec![("thread_id", json(thread_id.to_string()))]));
                vec![as_string(), as_string(), read_thread(*thread_id)]
            }
            Self::RunsCancel { thread_id, run_ids, status, action } => {
                vec![event(Threads, Update, cancel_value(*thread_id, run_ids.as_deref(), status.as_deref(), action))]
            }
            Self::RunsDelete { thread_id, run_id } => {
                vec![event(Threads, Delete, map(vec![("run_id", uuid(*run_id)), ("thread_id", uuid(*thread_id))]))]
            }
            Self::CronsCreate { payload, schedule, cron_id, thread_id, end_time, metadata, assistant_id, assistant_read } => {
                let mut events = vec![event(
                    Crons,
                    Create,
                    map(vec![
                        ("payload", object(payload)),
                        ("schedule", json(schedule.clone())),
                        ("cron_id", uuid(*cron_id)),
                        ("thread_id", thread_id.map_or(json(Value::Null), uuid)),
                        ("user_id", EventValue::Identity),
                        ("end_time", json(end_time.clone().unwrap_or(Value::Null))),
                        ("metadata", object(metadata)),
                    ]),
                )];
                if *assistant_read {
                    events.push(event(Assistants, Read, map(vec![("assistant_id", json(assistant_id.clone()))])));
                }
                if let Some(thread_id) = thread_id {
                    events.push(event(Threads, Read, map(vec![("thread_id", uuid(*thread_id)), ("metadata", object(metadata))])));
                }
                events
            }
            Self::CronsSearch { assistant_id, thread_id, limit, offset, metadata } => {
                let mut events = vec![event(
                    Crons,
                    Search,
                    map(vec![
                        ("assistant_id", optional(assistant_id.clone())),
                        ("thread_id", optional(thread_id.clone())),
                        ("limit", json(*limit)),
                        ("offset", json(*offset)),
                        ("metadata", object(metadata)),
                    ]),
                )];
                events.push(match thread_id {
                    Some(thread_id) => event(Threads, Read, map(vec![("thread_id", json(thread_id.clone()))])),
                    None => event(Threads, Search, map(Vec::new())),
                });
                events
            }
            Self::CronsRead { cron_id } => vec![event(Crons, Read, map(vec![("cron_id", uuid(*cron_id))]))],
            Self::CronsUpdate { cron_id, fields } => {
                let mut entries = vec![("cron_id".to_string(), json(cron_id.to_string()))];
                for key in ["schedule", "end_time", "enabled", "on_run_completed"] {
                    entries.push((key.to_string(), json(fields.get(key).cloned().unwrap_or(Value::Null))));
                }
                entries.push(("payload".to_string(), object(fields)));
                if let Some(metadata) = fields.get("metadata") {
                    entries.push(("metadata".to_string(), json(metadata.clone())));
                }
                vec![event(Crons, Update, EventValue::Map(entries))]
            }
            Self::CronsDelete { cron_id } => vec![event(Crons, Delete, map(vec![("cron_id", json(cron_id.to_string()))]))],
            Self::StorePut { namespace, key, value, index, ttl } => vec![event(
                Store,
                Put,
                map(vec![
                    ("namespace", EventValue::Tuple(namespace.clone())),
                    ("key", json(key.clone())),
                    ("value", object(value)),
                    ("index", json(index.clone())),
                    ("ttl", json(ttl.clone().unwrap_or(Value::Null))),
                ]),
            )],
            Self::StoreGet { namespace, key, refresh_ttl } => vec![event(
                Store,
                Get,
                map(vec![("namespace", EventValue::Tuple(namespace.clone())), ("key", json(key.clone())), ("refresh_ttl", optional(*refresh_ttl))]),
            )],
            Self::StoreDelete { namespace, key } => {
                vec![event(Store, Delete, map(vec![("namespace", EventValue::Tuple(namespace.clone())), ("key", json(key.clone()))]))]
            }
            Self::StoreSearch { namespace, filter, limit, offset, query, refresh_ttl } => vec![event(
                Store,
                Search,
                map(vec![
                    ("namespace", EventValue::Tuple(namespace.clone())),
                    ("filter", filter.as_ref().map_or(json(Value::Null), object)),
                    ("limit", json(*limit)),
                    ("offset", json(*offset)),
                    ("query", optional(query.clone())),
                    ("refresh_ttl", optional(*refresh_ttl)),
                ]),
            )],
            Self::StoreListNamespaces { namespace, suffix, max_depth, limit, offset } => vec![event(
                Store,
                ListNamespaces,
                map(vec![
                    ("namespace", namespace.clone().map_or(json(Value::Null), EventValue::Tuple)),
                    ("suffix", suffix.clone().map_or(json(Value::Null), EventValue::Tuple)),
                    ("max_depth", optional(*max_depth)),
                    ("limit", json(*limit)),
                    ("offset", json(*offset)),
                ]),
            )],
        }
    }
}

/// The `threads.update` value of a run cancellation.
fn cancel_value(thread_id: Option<Uuid>, run_ids: Option<&[Uuid]>, status: Option<&str>, action: &str) -> EventValue {
    map(vec![
        ("thread_id", thread_id.map_or(json(Value::Null), uuid)),
        ("action", json(action)),
        (
            "metadata",
            map(vec![
                ("run_ids", run_ids.map_or(json(Value::Null), |ids| EventValue::List(ids.iter().copied().map(uuid).collect()))),
                ("status", optional(status)),
            ]),
        ),
    ])
}

/// Run-create fields that are UUIDs in the reference's value.
fn run_field(key: &str, value: &Value) -> EventValue {
    match (key, value.as_str().map(Uuid::parse_str)) {
        ("run_id", Some(Ok(id))) => uuid(id),
        _ => json(value.clone()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pairs(endpoint: &Endpoint) -> Vec<String> {
        endpoint.events().iter().map(|event| format!("{}.{}", event.resource.as_str(), event.action.as_str())).collect()
    }

    #[test]
    fn dispatch_sequences_match_the_reference() {
        let id = Uuid::nil();
        let rows: Vec<(Endpoint, Vec<&str>)> = vec![
            (Endpoint::None, vec![]),
            (Endpoint::AssistantsRead { assistant_id: id }, vec!["assistants.read"]),
            (Endpoint::AssistantsDelete { assistant_id: id }, vec!["assistants.delete", "threads.update"]),
            (Endpoint::ThreadsHistory { thread_id: id }, vec!["threads.read", "threads.read"]),
            (Endpoint::ThreadsUpdateState { thread_id: id }, vec!["threads.update", "threads.read"]),
            (Endpoint::ThreadsCopy { thread_id: id, new_thread_id: id }, vec!["threads.read", "threads.create"]),
            (Endpoint::ThreadsPrune { thread_ids: vec![id.to_string(), id.to_string()] }, vec!["threads.delete", "threads.delete", "threads.delete"]),
            (
                Endpoint::RunsCreate { thread_id: Some(id), read_thread_id: None, assistant_id: id, assistant_read: true, mode: RunMode::Wait, value: Map::new() },
                vec!["threads.create_run", "assistants.read", "threads.read", "threads.read", "threads.read"],
            ),
            (
                Endpoint::RunsCreate { thread_id: None, read_thread_id: None, assistant_id: id, assistant_read: false, mode: RunMode::Background, value: Map::new() },
                vec!["threads.create_run"],
            ),
            (Endpoint::RunsList { thread_id: id }, vec!["threads.read", "threads.search"]),
            (Endpoint::RunsJoin { thread_id: id }, vec!["threads.read", "threads.read", "threads.read"]),
            (
                Endpoint::CronsSearch { assistant_id: None, thread_id: None, limit: 10, offset: 0, metadata: Map::new() },
                vec!["crons.search", "threads.search"],
            ),
            (
                Endpoint::StoreGet { namespace: vec!["a".into()], key: "k".into(), refresh_ttl: None },
                vec!["store.get"],
            ),
        ];
        for (endpoint, expected) in rows {
            assert_eq!(pairs(&endpoint), expected, "{endpoint:?}");
        }
    }

    #[test]
    fn values_carry_the_reference_keys() {
        let id = Uuid::nil();
        let events = Endpoint::RunsCancel { thread_id: Some(id), run_ids: Some(vec![id]), status: None, action: "interrupt".into() }.events();
        assert_eq!(
            events[0].value.to_json(),
            json!({"thread_id": id.to_string(), "action": "interrupt", "metadata": {"run_ids": [id.to_string()], "status": null}})
        );
        assert!(matches!(&events[0].value, EventValue::Map(entries) if entries[0].1 == EventValue::Uuid(id)));
        let put = Endpoint::StorePut { namespace: vec!["u".into()], key: "k".into(), value: Map::new(), index: Value::Null, ttl: None }.events();
        assert!(matches!(&put[0].value, EventValue::Map(entries) if entries[0].1 == EventValue::Tuple(vec!["u".into()])));
        // `threads.create` carries `ttl` only when the request names one (SDK `ThreadsCreate`).
        let create = |ttl| Endpoint::ThreadsCreate { thread_id: id, metadata: Map::new(), if_exists: "raise".into(), ttl }.events()[0].value.to_json();
        assert_eq!(create(None), json!({"thread_id": id.to_string(), "metadata": {}, "if_exists": "raise"}));
        assert_eq!(create(Some(json!({"ttl": 5.0, "strategy": "delete"})))["ttl"], json!({"ttl": 5.0, "strategy": "delete"}));
    }
}
