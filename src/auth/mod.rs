//! Authorization policy: which auth events a request fires, and what the user's handlers
//! decided (spec auth.md §3–§5).
//!
//! Routes describe their request as an [`Endpoint`] and call [`AuthPolicy::authorize`] once:
//! one Python round trip authenticates and runs the handler of every event. With no `auth`
//! configured nothing enters Python. This module knows neither HTTP nor pyo3.

pub mod events;
pub mod filter;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use events::{Endpoint, EventValue};
pub use filter::{Filter, FilterError};


/// The auth host's answer for one request.
#[derive(Debug, Clone, PartialEq)]
pub enum DispatchReply {
    /// Authenticated, and every event allowed.
    Allowed { user: AuthUser, events: Vec<DispatchedEvent>, authenticate: Option<HandlerTime> },
    /// Refused (or failed: status 500). `took`: the refusing handler's time, when it ran.
    Refused { stage: String, status: u16, detail: String, headers: Vec<(String, String)>, handler: Option<String>, log: String, took: Option<f64> },
}

/// How long a handler ran, in seconds (the per-handler latency histograms).
#[derive(Debug, Clone, PartialEq)]
pub struct HandlerTime {
    pub handler: Option<String>,
    pub seconds: f64,
}

/// One event's outcome from the auth host.
#[derive(Debug, Clone, PartialEq)]
pub struct DispatchedEvent {
    pub handler: Option<String>,
    /// The raw filter dict the handler returned, if any.
    pub filter: Option<serde_json::Value>,
    /// The effective value after the handler; `None`: unchanged (the host does not send back
    /// values a handler cannot change).
    pub value: Option<serde_json::Value>,
    /// Seconds the handler ran; `None` when no handler covers the event.
    pub seconds: Option<f64>,
}

/// Why a dispatch gave no answer. Either way the request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DispatchFailure {
    /// The handlers did not answer within the timeout.
    TimedOut,
    /// The host could not run them (the cause, for the log).
    Failed(String),
}

/// A dispatch under way.
pub type DispatchFuture = Pin<Box<dyn Future<Output = Result<DispatchReply, DispatchFailure>> + Send>>;

/// What runs authenticate and the handlers of a request's events in one round trip: the
/// user's `Auth` object in the interpreter (`python::PythonHost`), or a double in tests.
pub trait AuthHost: Send + Sync + std::fmt::Debug {
    fn dispatch(&self, request: RequestInfo, events: Vec<AuthEvent>, timeout: Duration) -> DispatchFuture;
}

/// The resources of the auth API. Serde names are the SDK's strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resource {
    Assistants,
    Threads,
    Crons,
    Store,
}

/// The actions of the auth API. Serde names are the SDK's strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Read,
    Update,
    Delete,
    Search,
    CreateRun,
    Put,
    Get,
    ListNamespaces,
}

impl Resource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Assistants => "assistants",
            Self::Threads => "threads",
            Self::Crons => "crons",
            Self::Store => "store",
        }
    }
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Read => "read",
            Self::Update => "update",
            Self::Delete => "delete",
            Self::Search => "search",
            Self::CreateRun => "create_run",
            Self::Put => "put",
            Self::Get => "get",
            Self::ListNamespaces => "list_namespaces",
        }
    }
}

/// One call into the authorization layer.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthEvent {
    pub resource: Resource,
    pub action: Action,
    pub value: EventValue,
}

/// What authenticate needs to know about the HTTP request (no HTTP types).
#[derive(Debug, Clone, Default)]
pub struct RequestInfo {
    /// Upper-case method.
    pub method: String,
    /// Decoded path, without the query.
    pub path: String,
    /// The path as sent (percent-encoded).
    pub raw_path: String,
    /// The raw query string (no `?`).
    pub query: String,
    /// Header (lower-case name, value) pairs in order, duplicates kept.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The peer address.
    pub client: Option<std::net::SocketAddr>,
    /// The local address.
    pub server: Option<std::net::SocketAddr>,
    /// Work the server does for a user without a request of theirs (a cron firing): this user
    /// is re-established instead of running authenticate; the handlers run as usual.
    pub acting_as: Option<AuthUser>,
}

/// The authenticated user, as the server keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUser {
    pub identity: String,
    pub display_name: String,
    pub is_authenticated: bool,
    pub permissions: Vec<String>,
    /// The Studio user of the dev-server bypass.
    pub studio: bool,
    /// Every other field `authenticate` returned (an org, a token for a tool, …): graphs,
    /// factories and `http.app` see the user object with them, as in the reference.
    pub extra: serde_json::Map<String, Value>,
}

/// The fields of [`AuthUser`] itself; any other field of a user is in `extra`.
const USER_FIELDS: [&str; 5] = ["identity", "display_name", "is_authenticated", "permissions", "kind"];

impl AuthUser {
    /// The user as runs and crons keep it (`langgraph_auth_user`'s fields).
    pub fn to_json(&self) -> Value {
        let mut user = self.extra.clone();
        user.insert("identity".into(), Value::from(self.identity.clone()));
        user.insert("display_name".into(), Value::from(self.display_name.clone()));
        user.insert("is_authenticated".into(), Value::from(self.is_authenticated));
        user.insert("permissions".into(), Value::from(self.permissions.clone()));
        Value::Object(user)
    }

    /// The fields of `user` (a JSON object) beyond the standard ones.
    pub fn extra_fields(user: &Value) -> serde_json::Map<String, Value> {
        user.as_object().map(|fields| fields.iter().filter(|(key, _)| !USER_FIELDS.contains(&key.as_str())).map(|(key, value)| (key.clone(), value.clone())).collect()).unwrap_or_default()
    }

    /// The user [`AuthUser::to_json`] kept; `None` without an identity.
    pub fn from_json(value: &Value) -> Option<Self> {
        let identity = value.get("identity")?.as_str().filter(|identity| !identity.is_empty())?.to_string();
        let permissions = value.get("permissions").and_then(Value::as_array).map(|items| items.iter().filter_map(Value::as_str).map(str::to_string).collect()).unwrap_or_default();
        Some(Self {
            display_name: value.get("display_name").and_then(Value::as_str).map_or_else(|| identity.clone(), str::to_string),
            is_authenticated: value.get("is_authenticated").and_then(Value::as_bool).unwrap_or(true),
            identity,
            permissions,
            studio: false,
            extra: Self::extra_fields(value),
        })
    }

    /// A user known only by identity (a cron stored before its creator was kept).
    pub fn plain(identity: &str) -> Self {
        Self { identity: identity.to_string(), display_name: identity.to_string(), is_authenticated: true, permissions: Vec::new(), studio: false, extra: serde_json::Map::new() }
    }
}

/// What one event's handler decided (it allowed: denials are an [`AuthError`]).
#[derive(Debug, Clone, PartialEq)]
pub struct EventDecision {
    pub resource: Resource,
    pub action: Action,
    /// The handler that ran (`None`: no handler, allowed).
    pub handler: Option<String>,
    /// The filter to apply (`None`: no filter).
    pub filter: Option<Filter>,
    /// The event's value after the handler, with the reference's mutation rules applied.
    pub value: Value,
}

/// The result of authorizing a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Authorization {
    /// `None` when no custom auth is configured.
    pub user: Option<AuthUser>,
    /// One decision per event, in order.
    pub events: Vec<EventDecision>,
}

impl Authorization {
    /// The filter of the first event for `resource`/`action`, if any.
    pub fn filter(&self, resource: Resource, action: Action) -> Option<&Filter> {
        self.event(resource, action).and_then(|event| event.filter.as_ref())
    }

    /// The first event for `resource`/`action`.
    pub fn event(&self, resource: Resource, action: Action) -> Option<&EventDecision> {
        self.events.iter().find(|event| event.resource == resource && event.action == action)
    }
}

/// A request the policy refused, or could not decide (fail closed).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AuthError {
    /// Authenticate or a handler refused: status, detail and headers as the handler said.
    #[error("{status}: {detail}")]
    Refused { status: u16, detail: String, headers: Vec<(String, String)> },
    /// A handler failed unexpectedly (the cause is logged, not sent).
    #[error("auth handler failed")]
    Failed,
    /// A handler returned a filter graphward will not guess about.
    #[error(transparent)]
    InvalidFilter(#[from] FilterError),
    /// A handler did not answer in time.
    #[error("auth handler timed out")]
    TimedOut,
}

/// The auth of this server: none, or the user's `Auth` object behind an [`AuthHost`].
#[derive(Debug, Clone)]
pub struct AuthPolicy {
    host: Option<Arc<dyn AuthHost>>,
    timeout: Duration,
}

impl AuthPolicy {
    /// No custom auth: everything is allowed, nothing enters Python.
    pub fn open() -> Self {
        Self { host: None, timeout: Duration::ZERO }
    }

    /// The `Auth` object `host` runs; a dispatch longer than `timeout` is refused.
    pub fn with_host(host: Arc<dyn AuthHost>, timeout: Duration) -> Self {
        Self { host: Some(host), timeout }
    }

    pub fn is_enabled(&self) -> bool {
        self.host.is_some()
    }

    /// Authenticates the request and authorizes every event of `endpoint`, in one round trip.
    pub async fn authorize(&self, request: &RequestInfo, endpoint: Endpoint) -> Result<Authorization, AuthError> {
        let events = endpoint.events();
        let Some(host) = &self.host else {
            let events = events
                .into_iter()
                .map(|event| EventDecision { resource: event.resource, action: event.action, handler: None, filter: None, value: event.value.to_json() })
                .collect();
            return Ok(Authorization { user: None, events });
        };
        let pairs: Vec<(Resource, Action)> = events.iter().map(|event| (event.resource, event.action)).collect();
        let originals: Vec<Value> = events.iter().map(|event| event.value.to_json()).collect();
        let started = std::time::Instant::now();
        let reply = host.dispatch(request.clone(), events, self.timeout).await;
        let (resource, action) = pairs.first().map_or(("authenticate", ""), |(resource, action)| (resource.as_str(), action.as_str()));
        crate::metrics::global().auth_round_trip(resource, action, started.elapsed());
        count_decisions(&reply, &pairs);
        let outcome = decide(reply, &pairs, originals);
        log_decision(request, &outcome);
        outcome
    }
}

/// The decisions of a dispatch, for `/metrics`: each event's when allowed; the refusing
/// stage's (authenticate, or the request's first event) when not.
fn count_decisions(reply: &Result<DispatchReply, DispatchFailure>, pairs: &[(Resource, Action)]) {
    use crate::metrics::Decision;
    let metrics = crate::metrics::global();
    let first = pairs.first().map_or(("authenticate", ""), |(resource, action)| (resource.as_str(), action.as_str()));
    match reply {
        Ok(DispatchReply::Allowed { events, authenticate, .. }) => {
            if let Some(time) = authenticate {
                metrics.handler_time("authenticate", "", time.handler.as_deref(), time.seconds);
            }
            for (event, (resource, action)) in events.iter().zip(pairs) {
                let filtered = event.filter.as_ref().is_some_and(|filter| filter.as_object().is_none_or(|map| !map.is_empty()));
                metrics.decision(resource.as_str(), action.as_str(), event.handler.as_deref(), if filtered { Decision::Filter } else { Decision::Allow });
                if let Some(seconds) = event.seconds {
                    metrics.handler_time(resource.as_str(), action.as_str(), event.handler.as_deref(), seconds);
                }
            }
        }
        Ok(DispatchReply::Refused { status, handler, stage, took, .. }) => {
            let decision = if *status >= 500 { Decision::Error } else { Decision::Deny };
            let (resource, action) = if stage == "authenticate" { ("authenticate", "") } else { first };
            metrics.decision(resource, action, handler.as_deref(), decision);
            if let Some(seconds) = took {
                metrics.handler_time(resource, action, handler.as_deref(), *seconds);
            }
        }
        Err(DispatchFailure::TimedOut) => metrics.decision(first.0, first.1, None, Decision::Timeout),
        Err(DispatchFailure::Failed(_)) => metrics.decision(first.0, first.1, None, Decision::Error),
    }
}

fn decide(reply: Result<DispatchReply, DispatchFailure>, pairs: &[(Resource, Action)], originals: Vec<Value>) -> Result<Authorization, AuthError> {
    let reply = match reply {
        Ok(reply) => reply,
        Err(DispatchFailure::TimedOut) => return Err(AuthError::TimedOut),
        Err(DispatchFailure::Failed(error)) => {
            tracing::error!(%error, "auth dispatch failed");
            return Err(AuthError::Failed);
        }
    };
    match reply {
        DispatchReply::Refused { status, detail, headers, log, handler, stage, .. } => {
            // The auth host already replaced the detail of unexpected exceptions with a generic
            // one; the cause goes to the log only.
            if status >= 500 {
                tracing::error!(stage, handler = handler.as_deref().unwrap_or("-"), cause = %log, "auth handler error");
            }
            Err(AuthError::Refused { status, detail, headers })
        }
        DispatchReply::Allowed { user, events, .. } => {
            if events.len() != pairs.len() {
                tracing::error!(expected = pairs.len(), got = events.len(), "auth dispatch answered the wrong number of events");
                return Err(AuthError::Failed);
            }
            let events = events
                .into_iter()
                .zip(pairs)
                .zip(originals)
                .map(|((event, &(resource, action)), original)| {
                    let filter = match event.filter {
                        Some(raw) => Some(Filter::parse(&raw)?).filter(|filter| !filter.is_empty()),
                        None => None,
                    };
                    Ok(EventDecision { resource, action, handler: event.handler, filter, value: event.value.unwrap_or(original) })
                })
                .collect::<Result<Vec<_>, FilterError>>()?;
            Ok(Authorization { user: Some(user), events })
        }
    }
}

/// At debug level (`GRAPHWARD_LOG=debug`), one line per authorized request: who, and for
/// each event the handler, the decision and the filter (e.g.
/// `assistants.read:add_owner=filter{owner: "user1"}`). Off by default: formatting it cost a
/// visible share of a request at tens of thousands of requests per second.
fn log_decision(request: &RequestInfo, outcome: &Result<Authorization, AuthError>) {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    match outcome {
        Ok(authorization) => {
            let identity = authorization.user.as_ref().map_or("-", |user| user.identity.as_str());
            let events: Vec<String> = authorization
                .events
                .iter()
                .map(|event| {
                    let decision = match &event.filter {
                        Some(filter) => format!("filter{}", serde_json::to_string(&filter.to_json()).unwrap_or_default()),
                        None => "allow".to_string(),
                    };
                    format!("{}.{}:{}={decision}", event.resource.as_str(), event.action.as_str(), event.handler.as_deref().unwrap_or("-"))
                })
                .collect();
            tracing::debug!(method = %request.method, path = %request.path, identity, events = %events.join(" "), "auth allowed");
        }
        Err(error) => tracing::debug!(method = %request.method, path = %request.path, decision = "refused", reason = %error, "auth refused"),
    }
}

#[cfg(test)]
mod tests {
    //! The policy's decisions from the host's answers, with a scripted host instead of an
    //! interpreter: whatever cannot be decided is refused.

    use std::sync::Mutex;

    use serde_json::json;
    use uuid::Uuid;

    use super::*;

    /// Answers every dispatch with the next scripted reply, and remembers what it was asked.
    #[derive(Debug)]
    struct Scripted {
        replies: Mutex<Vec<Result<DispatchReply, DispatchFailure>>>,
        asked: Mutex<Vec<Vec<(Resource, Action)>>>,
    }

    impl AuthHost for Scripted {
        fn dispatch(&self, _request: RequestInfo, events: Vec<AuthEvent>, _timeout: Duration) -> DispatchFuture {
            self.asked.lock().unwrap().push(events.iter().map(|event| (event.resource, event.action)).collect());
            let reply = self.replies.lock().unwrap().remove(0);
            Box::pin(async move { reply })
        }
    }

    fn user() -> AuthUser {
        AuthUser { identity: "alice".into(), display_name: "alice".into(), is_authenticated: true, permissions: Vec::new(), studio: false, extra: serde_json::Map::new() }
    }

    fn allowed(filter: Option<Value>) -> DispatchReply {
        DispatchReply::Allowed { user: user(), events: vec![DispatchedEvent { handler: Some("owner".into()), filter, value: None, seconds: Some(0.001) }], authenticate: None }
    }

    async fn decide_with(reply: Result<DispatchReply, DispatchFailure>) -> Result<Authorization, AuthError> {
        let host = Arc::new(Scripted { replies: Mutex::new(vec![reply]), asked: Mutex::new(Vec::new()) });
        let policy = AuthPolicy::with_host(host.clone(), Duration::from_secs(1));
        let outcome = policy.authorize(&RequestInfo::default(), Endpoint::ThreadsRead { thread_id: Uuid::nil() }).await;
        assert_eq!(host.asked.lock().unwrap().as_slice(), [vec![(Resource::Threads, Action::Read)]], "one round trip with the endpoint's events");
        outcome
    }

    #[tokio::test]
    async fn an_allowed_event_carries_its_parsed_filter() {
        let authorization = decide_with(Ok(allowed(Some(json!({"owner": "alice"}))))).await.unwrap();
        assert_eq!(authorization.user.as_ref().map(|user| user.identity.as_str()), Some("alice"));
        let filter = authorization.filter(Resource::Threads, Action::Read).expect("a filter");
        assert_eq!(filter.to_json(), json!({"owner": "alice"}));
        assert_eq!(authorization.events[0].handler.as_deref(), Some("owner"));
    }

    #[tokio::test]
    async fn an_empty_filter_is_no_filter() {
        let authorization = decide_with(Ok(allowed(Some(json!({}))))).await.unwrap();
        assert!(authorization.filter(Resource::Threads, Action::Read).is_none());
    }

    #[tokio::test]
    async fn an_unknown_filter_operator_is_refused() {
        let outcome = decide_with(Ok(allowed(Some(json!({"owner": {"$regex": ".*"}}))))).await;
        assert!(matches!(outcome, Err(AuthError::InvalidFilter(_))), "{outcome:?}");
    }

    #[tokio::test]
    async fn a_timeout_is_refused() {
        assert!(matches!(decide_with(Err(DispatchFailure::TimedOut)).await, Err(AuthError::TimedOut)));
    }

    #[tokio::test]
    async fn a_host_failure_is_refused() {
        assert!(matches!(decide_with(Err(DispatchFailure::Failed("interpreter stopped".into()))).await, Err(AuthError::Failed)));
    }

    #[tokio::test]
    async fn an_answer_for_the_wrong_number_of_events_is_refused() {
        let reply = DispatchReply::Allowed { user: user(), events: Vec::new(), authenticate: None };
        assert!(matches!(decide_with(Ok(reply)).await, Err(AuthError::Failed)));
    }

    #[tokio::test]
    async fn a_refusal_keeps_the_handlers_status_detail_and_headers() {
        let reply = DispatchReply::Refused {
            stage: "authenticate".into(),
            status: 401,
            detail: "no token".into(),
            headers: vec![("www-authenticate".into(), "Bearer".into())],
            handler: None,
            log: String::new(),
            took: None,
        };
        match decide_with(Ok(reply)).await {
            Err(AuthError::Refused { status, detail, headers }) => {
                assert_eq!((status, detail.as_str()), (401, "no token"));
                assert_eq!(headers, [("www-authenticate".to_string(), "Bearer".to_string())]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn without_a_host_everything_is_allowed_unfiltered() {
        let authorization = AuthPolicy::open().authorize(&RequestInfo::default(), Endpoint::ThreadsRead { thread_id: Uuid::nil() }).await.unwrap();
        assert!(authorization.user.is_none());
        assert!(authorization.filter(Resource::Threads, Action::Read).is_none());
    }
}
