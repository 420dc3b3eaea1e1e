//! The embedded CPython: the only module that imports pyo3.
//!
//! One OS thread owns the interpreter and runs one asyncio loop forever; every Python call —
//! auth handlers, graphs — runs on that loop. The rest of the server holds a cheap-clone
//! [`PythonHost`] and awaits [`PythonHost::call`], which goes through the queue of
//! [`bridge`] and never takes the GIL on a tokio thread.

mod asgi;
mod bridge;
mod convert;
mod store;

pub use asgi::{AsgiCall, AsgiMessage, AsgiRequest, CustomRoute};
pub use store::StoreBackend;

use std::ffi::CString;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{IntoPyDict, PyDict, PyList, PyString};
use tokio::sync::oneshot;

use crate::auth::{AuthEvent, AuthHost, AuthUser, DispatchFailure, DispatchReply, DispatchedEvent, HandlerTime, RequestInfo};
use crate::config::{AppConfig, ModuleSource, ObjectLocation};

/// The Python side of graphward (python/graphward/host.py).
const HOST_SOURCE: &str = include_str!("../../python/graphward/host.py");

/// Graph execution and thread state (python/graphward/runner.py).
const RUNNER_SOURCE: &str = include_str!("../../python/graphward/runner.py");

/// The auth host: loads `auth.path`, authenticates and authorizes (python/graphward/auth_host.py).
const AUTH_SOURCE: &str = include_str!("../../python/graphward/auth_host.py");

/// graphward's LangGraph checkpointer, compiled by `graphward_runner.setup`.
const SAVER_SOURCE: &str = include_str!("../../python/graphward/saver.py");

/// The user's `http.app`, served as ASGI (python/graphward/asgi.py).
const ASGI_SOURCE: &str = include_str!("../../python/graphward/asgi.py");

/// The checkpointer on Postgres (langgraph-checkpoint-postgres's tables), for `DATABASE_URI`.
const POSTGRES_SAVER_SOURCE: &str = include_str!("../../python/graphward/postgres_saver.py");

/// Our `langgraph_sdk` shim: (module name, is package, source). Registered only when the
/// real package is not importable.
const SHIM_SOURCES: &[(&str, bool, &str)] = &[
    ("langgraph_sdk", true, include_str!("../../python/langgraph_sdk/__init__.py")),
    ("langgraph_sdk.auth", true, include_str!("../../python/langgraph_sdk/auth/__init__.py")),
    ("langgraph_sdk.auth.types", false, include_str!("../../python/langgraph_sdk/auth/types.py")),
    ("langgraph_sdk.auth.exceptions", false, include_str!("../../python/langgraph_sdk/auth/exceptions.py")),
    ("langgraph_sdk.runtime", false, include_str!("../../python/langgraph_sdk/runtime.py")),
];

/// Handle to the interpreter thread. Cloning is cheap.
#[derive(Debug, Clone)]
pub struct PythonHost {
    bridge: Arc<bridge::Bridge>,
    /// Whether the Studio user is let through (`dev`), for auth loaded again by a reload.
    studio_allowed: bool,
    /// Source of call tokens (see [`PythonHost::call_with_timeout`]).
    next_token: Arc<AtomicU64>,
    /// The interpreter thread, stopped and joined when the last handle goes.
    _thread: Arc<InterpreterThread>,
}

/// The interpreter thread's handle. Hosted by the user's own Python (the wheel), the process's
/// interpreter finalizes once the command returns, which it cannot do while this thread still
/// runs the loop; so when the last `PythonHost` goes (on every path out of a command, errors
/// included), the loop is stopped and the thread joined, at most [`STOP_WAIT`].
#[derive(Debug)]
struct InterpreterThread {
    bridge: Arc<bridge::Bridge>,
    handle: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// How long stopping waits for the interpreter thread.
const STOP_WAIT: Duration = Duration::from_secs(5);

impl InterpreterThread {
    /// Stops the loop and waits (at most `limit`) for the thread to end; whether it did.
    fn stop(&self, limit: Duration) -> bool {
        stop_loop(&self.bridge);
        let Some(thread) = self.handle.lock().unwrap_or_else(PoisonError::into_inner).take() else {
            return true;
        };
        if thread.thread().id() == std::thread::current().id() {
            // The thread itself let go of the last handle: the loop ends after this callback.
            return true;
        }
        let deadline = std::time::Instant::now() + limit;
        while !thread.is_finished() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let finished = thread.is_finished();
        if finished {
            let _ = thread.join();
        }
        finished
    }
}

impl Drop for InterpreterThread {
    fn drop(&mut self) {
        if !self.stop(STOP_WAIT) {
            tracing::warn!("the Python loop did not stop within {STOP_WAIT:?}");
        }
    }
}

/// Asks the loop to stop; queued and later calls fail with [`PythonError::Stopped`]. Once the
/// runner is loaded, its `stop` stops the loop, after leaving the context of a
/// `checkpointer.path` saver (so its connections close).
fn stop_loop(bridge: &bridge::Bridge) {
    bridge.push(Box::new(|host| {
        if let Ok(event_loop) = host.getattr("LOOP") {
            let runner_stop = host.py().import("sys").and_then(|sys| sys.getattr("modules")).and_then(|modules| modules.get_item("graphward_runner")).and_then(|runner| runner.getattr("stop"));
            let stopped = match runner_stop {
                Ok(stop) => stop.call1((&event_loop,)).map(drop),
                Err(_) => Err(pyo3::exceptions::PyLookupError::new_err("no runner")),
            };
            if stopped.is_err() {
                let _ = event_loop.call_method0("stop");
            }
        }
    }));
}

/// What the interpreter needs before any user code is imported.
#[derive(Debug, Clone)]
pub struct HostSetup {
    /// The resolved config (app folder, dependencies, env, graphs).
    pub config: Arc<AppConfig>,
    /// The user's virtual environment (from `VIRTUAL_ENV` or `.venv` next to the config).
    pub venv: Option<PathBuf>,
    /// Whether the Studio bypass (`x-auth-scheme: langsmith`) is allowed: `dev` without
    /// `disable_studio_auth`.
    pub studio_allowed: bool,
    /// Where LangGraph's checkpointer keeps the checkpoints.
    pub checkpoints: crate::storage::CheckpointTarget,
    /// The API's storage: its store items are the graphs' `store` (none: graphs get no store).
    pub store: Option<store::StoreBackend>,
}

/// What start-up found, for logs and `/info`.
#[derive(Debug, Clone)]
pub struct StartupReport {
    /// e.g. `Python 3.11.7 (/root/.pyenv/versions/3.11.7)`.
    pub python: String,
    /// Whether `langgraph_sdk` is the real package or our shim.
    pub sdk: SdkKind,
    /// The graphs, in `langgraph.json` order.
    pub graphs: Vec<LoadedGraph>,
    /// The installed `langgraph` version, if any.
    pub langgraph_version: Option<String>,
    /// The loaded `auth.path`, if configured.
    pub auth: Option<AuthReport>,
    /// The checkpointer in use: `sqlite` (graphward's saver), `memory` or `none`.
    pub checkpointer: String,
    /// The routes of `http.app` when it declares them (Starlette, FastAPI); `None` without an
    /// app or when it is another kind of ASGI app.
    pub custom_routes: Option<Vec<CustomRoute>>,
    /// The `paths` of `http.app`'s own OpenAPI document (FastAPI), for `/openapi.json`.
    pub custom_openapi: Option<serde_json::Value>,
}

/// What the auth host found at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthReport {
    /// One row per (resource, action) pair of the dispatch matrix.
    pub coverage: Vec<CoverageRow>,
    /// `resource.action` pairs without a handler, when the reference would warn (§1.3).
    pub missing_paths: Vec<String>,
}

/// Which handler serves one (resource, action) pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoverageRow {
    pub resource: String,
    pub action: String,
    /// The handler's qualified name; `None`: allowed, no handler.
    pub handler: Option<String>,
    /// How it was matched: `exact`, `resource`, `action`, `star` or `global`.
    pub via: Option<String>,
}

/// Which `langgraph_sdk` the user's code imports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdkKind {
    /// The installed `langgraph-sdk` package.
    Real,
    /// graphward's embedded shim.
    Shim,
}

/// A graph imported at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedGraph {
    /// The id from `langgraph.json`.
    pub graph_id: String,
    /// The compiled graph's `name` (`LangGraph` when the user did not set one).
    pub name: String,
}

/// A question about a loaded graph.
#[derive(Debug, Clone)]
pub enum GraphQuery {
    /// The drawable graph (`xray`: `false`, `true` or a depth).
    Drawable { graph_id: String, xray: serde_json::Value },
    /// The five JSON schemas (and `graph_id`).
    Schemas { graph_id: String },
    /// Schemas of the subgraphs (under `namespace`, recursively if `recurse`).
    Subgraphs { graph_id: String, namespace: Option<String>, recurse: bool },
}

/// Who uses a graph, and with which config: what a graph factory is built for (its `config`
/// argument, and `ServerRuntime.user`). A compiled graph ignores it.
#[derive(Debug, Clone, Default)]
pub struct GraphUse {
    /// The config of the use: the assistant's for introspection, the thread's for state.
    pub config: serde_json::Map<String, serde_json::Value>,
    /// The authenticated caller (`None` without custom auth).
    pub user: Option<AuthUser>,
}

impl GraphUse {
    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({"config": self.config, "user": self.user.as_ref().map(AuthUser::to_json)})
    }
}

/// A change to the checkpoints the graphs' checkpointer holds, keyed by thread.
#[derive(Debug, Clone)]
pub enum CheckpointOp {
    /// Remove every checkpoint and pending write of these threads.
    DeleteThreads(Vec<uuid::Uuid>),
    /// Copy every checkpoint and pending write of `from` to the thread id `to`.
    CopyThread { from: uuid::Uuid, to: uuid::Uuid },
    /// Remove the checkpoints these runs wrote on their thread (a rollback, a hand-back).
    DeleteForRuns { thread_id: uuid::Uuid, run_ids: Vec<uuid::Uuid> },
    /// Remove every checkpoint of these threads but the latest of each namespace.
    KeepLatest(Vec<uuid::Uuid>),
}

/// A read or write of a thread's graph state, through the graph's own methods.
#[derive(Debug, Clone)]
pub enum StateOp {
    /// The state of a thread no graph has run on yet.
    Empty,
    /// `aget_state` at `configurable` (the thread, and a checkpoint position if any).
    Get { graph_id: String, configurable: serde_json::Map<String, serde_json::Value>, subgraphs: bool },
    /// `aupdate_state` with `values`, as `as_node` if given.
    Update { graph_id: String, configurable: serde_json::Map<String, serde_json::Value>, values: serde_json::Value, as_node: Option<String> },
    /// `abulk_update_state`: supersteps (each a list of `{values, command, as_node}`), in order.
    BulkUpdate { graph_id: String, configurable: serde_json::Map<String, serde_json::Value>, supersteps: serde_json::Value },
    /// `aget_state_history`: up to `limit` checkpoints, before one, with metadata containing.
    History {
        graph_id: String,
        configurable: serde_json::Map<String, serde_json::Value>,
        limit: i64,
        before: Option<String>,
        metadata: Option<serde_json::Map<String, serde_json::Value>>,
    },
    /// The thread outcome (values, interrupts, status) a run's checkpoints now leave, from the
    /// run's execution `spec`.
    Settle { spec: serde_json::Value },
}

/// A failure of a Python call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PythonError {
    /// The interpreter thread has stopped.
    #[error("the Python interpreter has stopped")]
    Stopped,
    /// The call did not finish in time (and was cancelled if it was suspended).
    #[error("the Python call timed out")]
    TimedOut,
    /// Python raised. `kind` is the exception's class name (`ValueError`; empty for graphward's
    /// own start-up errors, whole sentences), `message` one line of its text, `traceback` the
    /// full text. Displayed as `Kind: message`.
    #[error("{}", describe(kind, message))]
    Raised { kind: String, message: String, traceback: String },
}

fn describe(kind: &str, message: &str) -> String {
    match (kind.is_empty(), message.is_empty()) {
        (true, _) => message.to_string(),
        (false, true) => kind.to_string(),
        (false, false) => format!("{kind}: {message}"),
    }
}

impl PythonError {
    fn from_py(py: Python<'_>, error: &PyErr) -> Self {
        let value = error.value(py);
        let call = |name: &str| -> Option<String> {
            let host = py.import("graphward_host").ok()?;
            host.getattr(name).ok()?.call1((value,)).ok()?.extract().ok()
        };
        let kind = value.get_type().name().map_or_else(|_| "Exception".to_string(), |name| name.to_string());
        // graphward's own start-up errors are whole sentences, shown without a class name.
        let described = call("describe_error").unwrap_or_else(|| error.to_string());
        let (kind, message) = match described.strip_prefix(&format!("{kind}: ")) {
            Some(message) => (kind, message.to_string()),
            None if described == kind => (kind, String::new()),
            None => (String::new(), described),
        };
        let traceback = call("format_traceback").unwrap_or_default();
        Self::Raised { kind, message, traceback }
    }

    /// The class name of the exception Python raised, if it raised.
    pub fn kind(&self) -> Option<&str> {
        match self {
            Self::Raised { kind, .. } if !kind.is_empty() => Some(kind),
            _ => None,
        }
    }

    /// The exception's text without its class name (for a client-facing detail).
    pub fn message(&self) -> String {
        match self {
            Self::Raised { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }
}

impl PythonHost {
    /// Starts the interpreter thread, prepares the user's environment and imports every graph.
    /// Returns once the graphs are loaded; a failure is one line for the user.
    pub fn start(setup: HostSetup) -> Result<(Self, StartupReport), String> {
        let bridge = Arc::new(bridge::Bridge::new().map_err(|error| format!("cannot create the Python wake-up eventfd: {error}"))?);
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread_bridge = Arc::clone(&bridge);
        let studio_allowed = setup.studio_allowed;
        let thread = std::thread::Builder::new()
            .name("graphward-python".into())
            .spawn(move || interpreter_thread(&setup, &thread_bridge, &ready_tx))
            .map_err(|error| format!("cannot start the Python thread: {error}"))?;
        let report = ready_rx.recv().map_err(|_| "the Python thread stopped during start-up".to_string())??;
        let thread = Arc::new(InterpreterThread { bridge: Arc::clone(&bridge), handle: Mutex::new(Some(thread)) });
        Ok((Self { bridge, studio_allowed, next_token: Arc::new(AtomicU64::new(1)), _thread: thread }, report))
    }

    /// Runs `make` on the interpreter thread and awaits the object it returns (a coroutine is
    /// driven on the loop, its first step at once: see [`bridge::eager_job`]; anything else is
    /// the result), then converts the result with `convert`, still on the interpreter thread.
    /// `make` may run twice (a coroutine that needs a current Task is started again as one).
    pub async fn call<T, M, C>(&self, make: M, convert: C) -> Result<T, PythonError>
    where
        T: Send + 'static,
        M: for<'py> Fn(&Bound<'py, PyModule>) -> PyResult<Bound<'py, PyAny>> + Send + 'static,
        C: for<'py> FnOnce(&Bound<'py, PyAny>) -> PyResult<T> + Send + 'static,
    {
        self.call_with_timeout(None, make, convert).await
    }

    /// [`PythonHost::call`] with a deadline: past it the caller gets
    /// [`PythonError::TimedOut`] and a suspended coroutine is cancelled. (A coroutine that
    /// blocks the loop without suspending cannot be interrupted.)
    pub async fn call_with_timeout<T, M, C>(&self, timeout: Option<Duration>, make: M, convert: C) -> Result<T, PythonError>
    where
        T: Send + 'static,
        M: for<'py> Fn(&Bound<'py, PyModule>) -> PyResult<Bound<'py, PyAny>> + Send + 'static,
        C: for<'py> FnOnce(&Bound<'py, PyAny>) -> PyResult<T> + Send + 'static,
    {
        if self.bridge.is_stopped() {
            return Err(PythonError::Stopped);
        }
        let token = if timeout.is_some() { self.next_token.fetch_add(1, Ordering::Relaxed) } else { 0 };
        let (tx, rx) = oneshot::channel();
        self.bridge.push(bridge::eager_job(token, make, move |result| {
            let converted = result.and_then(|value| convert(&value));
            let converted = converted.map_err(|error| Python::attach(|py| PythonError::from_py(py, &error)));
            // The caller may have gone away (client disconnect, timeout); nothing to do then.
            let _ = tx.send(converted);
        }));
        match timeout {
            None => rx.await.map_err(|_| PythonError::Stopped)?,
            Some(limit) => match tokio::time::timeout(limit, rx).await {
                Ok(result) => result.map_err(|_| PythonError::Stopped)?,
                Err(_) => {
                    self.bridge.push(bridge::cancel_job(token));
                    Err(PythonError::TimedOut)
                }
            },
        }
    }

    /// Starts a call that can be cancelled: returns its token (for [`PythonHost::cancel`]) and
    /// the future of its result.
    pub fn call_cancellable<T, M, C>(&self, make: M, convert: C) -> (u64, impl std::future::Future<Output = Result<T, PythonError>> + Send + 'static)
    where
        T: Send + 'static,
        M: for<'py> FnOnce(&Bound<'py, PyModule>) -> PyResult<Bound<'py, PyAny>> + Send + 'static,
        C: for<'py> FnOnce(&Bound<'py, PyAny>) -> PyResult<T> + Send + 'static,
    {
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        if self.bridge.is_stopped() {
            let _ = tx.send(Err(PythonError::Stopped));
        } else {
            // Long calls (runs) are Tasks from the start: graph code may need a current task.
            self.bridge.push(bridge::submit_job(token, make, move |result| {
                let converted = result.and_then(|value| convert(&value));
                let converted = converted.map_err(|error| Python::attach(|py| PythonError::from_py(py, &error)));
                let _ = tx.send(converted);
            }));
        }
        (token, async move { rx.await.map_err(|_| PythonError::Stopped)? })
    }

    /// Cancels a call started by [`PythonHost::call_cancellable`] (its coroutine gets
    /// `CancelledError` at its next suspension).
    pub fn cancel(&self, token: u64) {
        self.bridge.push(bridge::cancel_job(token));
    }

    /// Starts a graph run (`graphward_runner.run`); `emit(event, json)` receives every chunk
    /// on the interpreter thread. Returns the cancel token and the run's summary.
    pub fn start_run(
        &self,
        spec: serde_json::Value,
        emit: Arc<dyn Fn(String, String) + Send + Sync>,
    ) -> (u64, impl std::future::Future<Output = Result<serde_json::Value, PythonError>> + Send + 'static) {
        self.call_cancellable(
            move |host| {
                let py = host.py();
                let runner = py.import(pyo3::intern!(py, "graphward_runner"))?;
                let emitter = Bound::new(py, Emitter { sink: emit })?;
                runner.getattr(pyo3::intern!(py, "run"))?.call1((convert::json_to_py(py, &spec)?, emitter))
            },
            convert::py_to_json,
        )
    }

    /// Applies a [`StateOp`] for `graph_use`; the state (or the update's answer) as JSON.
    pub async fn state(&self, op: StateOp, graph_use: &GraphUse) -> Result<serde_json::Value, PythonError> {
        use serde_json::{Value, json};
        let optional = |text: Option<String>| text.map_or(Value::Null, Value::String);
        let used = graph_use.to_json();
        let (function, args) = match op {
            StateOp::Empty => ("empty_state", vec![]),
            StateOp::Get { graph_id, configurable, subgraphs } => ("get_state", vec![json!(graph_id), Value::Object(configurable), json!(subgraphs), used]),
            StateOp::Update { graph_id, configurable, values, as_node } => ("update_state", vec![json!(graph_id), Value::Object(configurable), values, optional(as_node), used]),
            StateOp::BulkUpdate { graph_id, configurable, supersteps } => ("bulk_update_state", vec![json!(graph_id), Value::Object(configurable), supersteps, used]),
            StateOp::History { graph_id, configurable, limit, before, metadata } => {
                ("get_history", vec![json!(graph_id), Value::Object(configurable), json!(limit), optional(before), metadata.map_or(Value::Null, Value::Object), used])
            }
            StateOp::Settle { spec } => ("settle", vec![spec]),
        };
        self.runner(function, args).await
    }

    /// POSTs a run's webhook `payload` to `url` (with `httpx`, on the loop); the outcome line.
    pub async fn send_webhook(
        &self,
        url: String,
        payload: serde_json::Value,
        headers: serde_json::Map<String, serde_json::Value>,
        allow_private: bool,
    ) -> Result<serde_json::Value, PythonError> {
        self.runner("send_webhook", vec![serde_json::Value::String(url), payload, serde_json::Value::Bool(allow_private), serde_json::Value::Object(headers)]).await
    }

    /// The vectors of a put's `texts`, from `store.index.embed` (one call for them all). A
    /// Task from the start: model clients use httpx, which needs one.
    pub async fn embed_documents(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, PythonError> {
        let (_, result) = self.call_cancellable(move |host| host.getattr(pyo3::intern!(host.py(), "embed_documents"))?.call1((texts,)), |value| value.extract());
        result.await
    }

    /// The vector of a search's `query`, from `store.index.embed`.
    pub async fn embed_query(&self, query: String) -> Result<Vec<f32>, PythonError> {
        let (_, result) = self.call_cancellable(move |host| host.getattr(pyo3::intern!(host.py(), "embed_query"))?.call1((query,)), |value| value.extract());
        result.await
    }

    /// Calls `graphward_runner.<function>(*args)` (awaiting it if it is a coroutine) and
    /// returns the result as JSON. Private: callers name a typed operation.
    async fn runner(&self, function: &'static str, args: Vec<serde_json::Value>) -> Result<serde_json::Value, PythonError> {
        // A Task from the start: these may call libraries (httpx, anyio) that need one.
        let (_, result) = self.call_cancellable(
            move |host| {
                let py = host.py();
                let runner = py.import(pyo3::intern!(py, "graphward_runner"))?;
                let args = args.iter().map(|arg| convert::json_to_py(py, arg)).collect::<PyResult<Vec<_>>>()?;
                runner.getattr(function)?.call1(pyo3::types::PyTuple::new(py, args)?)
            },
            convert::py_to_json,
        );
        result.await
    }

    /// Applies a [`CheckpointOp`] through the checkpointer's own methods.
    pub async fn checkpoints(&self, op: CheckpointOp) -> Result<(), PythonError> {
        use serde_json::json;
        let ids = |ids: &[uuid::Uuid]| json!(ids.iter().map(uuid::Uuid::to_string).collect::<Vec<_>>());
        let (function, args) = match &op {
            CheckpointOp::DeleteThreads(thread_ids) => ("delete_threads", vec![ids(thread_ids)]),
            CheckpointOp::CopyThread { from, to } => ("copy_thread", vec![json!(from.to_string()), json!(to.to_string())]),
            CheckpointOp::DeleteForRuns { thread_id, run_ids } => ("delete_for_runs", vec![json!(thread_id.to_string()), ids(run_ids)]),
            CheckpointOp::KeepLatest(thread_ids) => ("keep_latest", vec![ids(thread_ids)]),
        };
        self.runner(function, args).await.map(drop)
    }

    /// Authenticates `request` and authorizes `events` with the loaded `Auth` object, in one
    /// round trip (`graphward_auth.HOST.dispatch`).
    async fn auth_dispatch(&self, request: RequestInfo, events: Vec<AuthEvent>, timeout: Duration) -> Result<DispatchReply, PythonError> {
        self.call_with_timeout(
            Some(timeout),
            move |host| {
                let py = host.py();
                let request = convert::request_to_py(py, &request)?;
                let list = PyList::empty(py);
                for event in &events {
                    list.append((event.resource.as_str(), event.action.as_str(), convert::event_value_to_py(py, &event.value)?))?;
                }
                host.getattr(pyo3::intern!(py, "AUTH_DISPATCH"))?.call1((request, list))
            },
            parse_dispatch_reply,
        )
        .await
    }

    /// Answers a [`GraphQuery`] for `graph_use` as JSON. `Ok(None)`: the graph cannot be drawn.
    pub async fn graph_info(&self, query: GraphQuery, graph_use: &GraphUse) -> Result<Option<serde_json::Value>, PythonError> {
        let used = graph_use.to_json();
        self.call(
            move |host| {
                let py = host.py();
                let used = convert::json_to_py(py, &used)?;
                match &query {
                    GraphQuery::Drawable { graph_id, xray } => host.getattr("graph_json")?.call1((graph_id, convert::json_to_py(py, xray)?, used)),
                    GraphQuery::Schemas { graph_id } => host.getattr("graph_schemas")?.call1((graph_id, used)),
                    GraphQuery::Subgraphs { graph_id, namespace, recurse } => host.getattr("graph_subgraphs")?.call1((graph_id, namespace, *recurse, used)),
                }
            },
            |value| if value.is_none() { Ok(None) } else { convert::py_to_json(value).map(Some) },
        )
        .await
    }
}

fn interpreter_thread(setup: &HostSetup, bridge: &Arc<bridge::Bridge>, ready: &mpsc::Sender<Result<StartupReport, String>>) {
    Python::initialize();
    let outcome = Python::attach(|py| -> Result<(), String> {
        let prepared = prepare(py, setup, bridge);
        let (host, event_loop, report) = match prepared {
            Ok(prepared) => prepared,
            Err(message) => {
                let _ = ready.send(Err(message));
                return Ok(());
            }
        };
        let _ = ready.send(Ok(report));
        let result = event_loop.call_method0("run_forever");
        bridge.mark_stopped();
        drop(host);
        result.map(|_| ()).map_err(|error| format!("the asyncio loop failed: {}", PythonError::from_py(py, &error)))
    });
    if let Err(message) = outcome {
        tracing::error!("{message}");
    }
}

type Prepared<'py> = (Bound<'py, PyModule>, Bound<'py, PyAny>, StartupReport);

/// Imports the host module, prepares `sys.path`, registers the shim, creates the loop, loads
/// the graphs and registers the bridge's reader.
fn prepare<'py>(py: Python<'py>, setup: &HostSetup, bridge: &Arc<bridge::Bridge>) -> Result<Prepared<'py>, String> {
    let describe = |error: PyErr| PythonError::from_py(py, &error).to_string();
    let host = load_host_module(py).map_err(|error| format!("cannot load graphward's Python host: {error}"))?;
    let config = &setup.config;

    let local: Vec<String> = config.local_dependencies.iter().map(|path| path.display().to_string()).collect();
    let venv = setup.venv.as_ref().map(|path| path.display().to_string());
    let python: String = host
        .getattr("setup")
        .and_then(|setup_fn| setup_fn.call1((config.dir.display().to_string(), local, venv, config.env.clone())))
        .and_then(|line| line.extract())
        .map_err(describe)?;

    let shim = PyDict::new(py);
    for (name, is_package, source) in SHIM_SOURCES {
        shim.set_item(name, (is_package, source)).map_err(describe)?;
    }
    let sdk: String = host.getattr("install_shim").and_then(|install| install.call1((shim,))).and_then(|kind| kind.extract()).map_err(describe)?;

    let asyncio = py.import("asyncio").map_err(describe)?;
    let event_loop = asyncio.call_method0("new_event_loop").map_err(describe)?;
    asyncio.call_method1("set_event_loop", (&event_loop,)).map_err(describe)?;
    host.setattr("LOOP", &event_loop).map_err(describe)?;

    let specs = PyList::empty(py);
    for graph in &config.graphs {
        let (file, module) = match &graph.location.source {
            ModuleSource::File(path) => (Some(path.display().to_string()), None),
            ModuleSource::Module(name) => (None, Some(name.clone())),
        };
        specs
            .append((&graph.graph_id, &graph.location.raw, file, module, &graph.location.attribute))
            .map_err(describe)?;
    }
    let coroutine = host.getattr("load_graphs").and_then(|load| load.call1((specs,))).map_err(describe)?;
    let loaded = event_loop
        .call_method1("run_until_complete", (coroutine,))
        .map_err(|error| format!("{}: {}", config.path.display(), describe(error)))?;
    let mut graphs = Vec::new();
    for item in loaded.try_iter().map_err(describe)? {
        let item = item.map_err(describe)?;
        graphs.push(LoadedGraph {
            graph_id: item.get_item("graph_id").and_then(|v| v.extract()).map_err(describe)?,
            name: item.get_item("name").and_then(|v| v.extract()).map_err(describe)?,
        });
    }
    if let Some(index) = &config.store.index {
        let (raw, file, module, attribute, provider) = match &index.embed {
            crate::config::EmbedSource::Object(location) => match &location.source {
                ModuleSource::File(path) => (&location.raw, Some(path.display().to_string()), None, location.attribute.as_str(), false),
                ModuleSource::Module(name) => (&location.raw, None, Some(name.clone()), location.attribute.as_str(), false),
            },
            crate::config::EmbedSource::Provider(raw) => (raw, None, None, "", true),
        };
        host.getattr("load_embeddings")
            .and_then(|load| load.call1((raw, file, module, attribute, provider)))
            .map_err(|error| format!("{}: {}", config.path.display(), describe(error)))?;
    }
    let langgraph_version: Option<String> = host
        .getattr("versions")
        .and_then(|versions| versions.call0())
        .and_then(|found| found.get_item("langgraph"))
        .and_then(|version| version.extract())
        .map_err(describe)?;

    let auth = match config.auth.as_ref().and_then(|auth| auth.path.as_ref().map(|path| (auth, path))) {
        Some((auth, path)) => Some(load_auth(py, &event_loop, setup, auth, path).map_err(|message| format!("{}: {message}", config.path.display()))?),
        None => None,
    };

    let runner = load_module(py, RUNNER_SOURCE, c"<graphward>/graphward/runner.py", "graphward_runner").map_err(describe)?;
    let (custom_routes, custom_openapi) = match &config.http.app {
        Some(app) => load_app(py, &event_loop, app).map_err(|message| format!("{}: {message}", config.path.display()))?,
        None => (None, None),
    };
    let store = setup.store.clone().map(|backend| Py::new(py, store::NativeStore::new(backend))).transpose().map_err(describe)?;
    let (target, saver_source, place) = match &setup.checkpoints {
        crate::storage::CheckpointTarget::SqliteFile(file) => (("sqlite", file.display().to_string()), SAVER_SOURCE, file.display().to_string()),
        crate::storage::CheckpointTarget::Postgres(uri) => (("postgres", uri.clone()), POSTGRES_SAVER_SOURCE, crate::storage::redact_uri(uri)),
    };
    let target = [target].into_py_dict(py).map_err(describe)?;
    let serde = config.checkpointer.serde.as_ref().map(serde_options).map(|options| convert::json_to_py(py, &options)).transpose().map_err(describe)?;
    let custom = config.checkpointer.path.as_ref().map(|location| {
        let (file, module) = match &location.source {
            ModuleSource::File(path) => (Some(path.display().to_string()), None),
            ModuleSource::Module(name) => (None, Some(name.clone())),
        };
        (location.raw.clone(), file, module, location.attribute.clone())
    });
    let place = match &config.checkpointer.path {
        Some(location) => format!("checkpointer.path `{}`", location.raw),
        None => place,
    };
    let setup_coroutine = runner.getattr("setup").and_then(|setup_fn| setup_fn.call1((target, store, saver_source, serde, custom))).map_err(describe)?;
    let checkpointer: String = event_loop
        .call_method1("run_until_complete", (setup_coroutine,))
        .and_then(|kind| kind.extract())
        .map_err(|error| format!("cannot open the checkpointer at {place}: {}", describe(error)))?;

    let drain = bridge.drain_callback(&host).map_err(describe)?;
    event_loop.call_method1("add_reader", (bridge.raw_fd(), drain)).map_err(describe)?;

    let sdk = if sdk == "real" { SdkKind::Real } else { SdkKind::Shim };
    Ok((host, event_loop, StartupReport { python, sdk, graphs, langgraph_version, auth, checkpointer, custom_routes, custom_openapi }))
}

/// The options `graphward_auth.load_auth` takes for the `auth` block.
fn auth_options<'py>(py: Python<'py>, studio_allowed: bool, auth: &crate::config::AuthSpec) -> PyResult<Bound<'py, PyDict>> {
    let options = PyDict::new(py);
    let cache = auth.cache.as_ref().map(|cache| convert::json_to_py(py, &serde_json::Value::Object(cache.clone()))).transpose()?;
    options.set_item("studio_allowed", studio_allowed && !auth.disable_studio_auth)?;
    options.set_item("allow_langsmith_api_keys", auth.allow_langsmith_api_keys && studio_allowed)?;
    options.set_item("cache", cache)?;
    Ok(options)
}

/// `(raw, file, module, attribute)` of a location, as the Python loaders take it.
fn location_args(location: &ObjectLocation) -> (String, Option<String>, Option<String>, String) {
    let (file, module) = match &location.source {
        ModuleSource::File(path) => (Some(path.display().to_string()), None),
        ModuleSource::Module(name) => (None, Some(name.clone())),
    };
    (location.raw.clone(), file, module, location.attribute.clone())
}

impl PythonHost {
    /// `auth.cache`'s (hits, misses, entries), when the served auth has a cache.
    pub async fn auth_cache_stats(&self) -> Option<(u64, u64, u64)> {
        self.call(
            |host| {
                let py = host.py();
                match py.import(pyo3::intern!(py, "graphward_auth")) {
                    Ok(auth) => auth.getattr(pyo3::intern!(py, "cache_stats"))?.call0(),
                    Err(_) => Ok(py.None().into_bound(py)),
                }
            },
            |stats| stats.extract::<Option<(u64, u64, u64)>>(),
        )
        .await
        .ok()
        .flatten()
    }
}

/// What a reload loaded.
#[derive(Debug, Clone)]
pub struct ReloadReport {
    /// The graphs' names, in `langgraph.json` order.
    pub graph_names: Vec<String>,
    /// With an `http.app`: its routes (`None` inside when it declares none).
    pub custom_routes: Option<Option<Vec<CustomRoute>>>,
    /// With an `http.app`: the `paths` of its OpenAPI document, if it has one.
    pub custom_openapi: Option<serde_json::Value>,
}

impl PythonHost {
    /// Imports the app's code again (`dev` hot reload) with `config` (see `graphward_host.reload`):
    /// all or nothing; on an error the old code keeps serving.
    pub async fn reload(&self, config: Arc<AppConfig>) -> Result<ReloadReport, PythonError> {
        let studio_allowed = self.studio_allowed;
        self.call(
            move |host| {
                let py = host.py();
                let mut roots = vec![config.dir.display().to_string()];
                roots.extend(config.local_dependencies.iter().map(|path| path.display().to_string()));
                let graphs = PyList::empty(py);
                for graph in &config.graphs {
                    let (raw, file, module, attribute) = location_args(&graph.location);
                    graphs.append((&graph.graph_id, raw, file, module, attribute))?;
                }
                let auth = match config.auth.as_ref().and_then(|auth| auth.path.as_ref().map(|path| (auth, path))) {
                    Some((auth, path)) => {
                        let (raw, file, module, attribute) = location_args(path);
                        Some((raw, file, module, attribute, auth_options(py, studio_allowed, auth)?))
                    }
                    None => None,
                };
                let app = config.http.app.as_ref().map(|app| {
                    let (raw, file, module, attribute) = location_args(app);
                    ("http.app", raw, file, module, attribute)
                });
                host.getattr("reload")?.call1((roots, graphs, auth, app))
            },
            |loaded| {
                let graph_names = loaded.get_item("graphs")?.extract()?;
                let app = loaded.get_item("app")?;
                let (custom_routes, custom_openapi) = if app.is_none() { (None, None) } else { (Some(custom_routes(&app.get_item("routes")?)?), openapi_paths(&app)?) };
                Ok(ReloadReport { graph_names, custom_routes, custom_openapi })
            },
        )
        .await
    }
}

/// The `openapi_paths` of `graphward_asgi.install`'s answer.
fn openapi_paths(installed: &Bound<'_, PyAny>) -> PyResult<Option<serde_json::Value>> {
    let paths = installed.get_item("openapi_paths")?;
    if paths.is_none() { Ok(None) } else { convert::py_to_json(&paths).map(Some) }
}

/// The `routes` of `graphward_asgi.install`'s answer.
fn custom_routes(routes: &Bound<'_, PyAny>) -> PyResult<Option<Vec<CustomRoute>>> {
    if routes.is_none() {
        return Ok(None);
    }
    let mut found = Vec::new();
    for route in routes.try_iter()? {
        let route = route?;
        found.push(CustomRoute { path: route.get_item("path")?.extract()?, methods: route.get_item("methods")?.extract()?, prefix: route.get_item("prefix")?.extract()? });
    }
    Ok(Some(found))
}

/// Imports `http.app` (and runs its lifespan start-up); its routes, when it declares them.
fn load_app(py: Python<'_>, event_loop: &Bound<'_, PyAny>, app: &ObjectLocation) -> Result<(Option<Vec<CustomRoute>>, Option<serde_json::Value>), String> {
    let describe = |error: PyErr| PythonError::from_py(py, &error).to_string();
    let module = load_module(py, ASGI_SOURCE, c"<graphward>/graphward/asgi.py", "graphward_asgi").map_err(describe)?;
    let (raw, file, module_name, attribute) = location_args(app);
    let coroutine = module.getattr("load_app").and_then(|load| load.call1(("http.app", raw, file, module_name, attribute))).map_err(describe)?;
    let loaded = event_loop.call_method1("run_until_complete", (coroutine,)).map_err(describe)?;
    let middleware: Vec<String> = loaded.get_item("middleware").and_then(|v| v.extract()).map_err(describe)?;
    if !middleware.is_empty() {
        tracing::info!("http.app: its middleware ({}) wraps its own routes, not the API's", middleware.join(", "));
    }
    let routes = custom_routes(&loaded.get_item("routes").map_err(describe)?).map_err(describe)?;
    Ok((routes, openapi_paths(&loaded).map_err(describe)?))
}

/// `checkpointer.serde` as the keyword options of `runner.setup`'s serializer.
fn serde_options(serde: &crate::config::SerdeConfig) -> serde_json::Value {
    let allowed = match &serde.allowed_json_modules {
        None => serde_json::Value::Null,
        Some(crate::config::AllowedModules::All) => serde_json::Value::Bool(true),
        Some(crate::config::AllowedModules::Listed(paths)) => serde_json::json!(paths),
    };
    serde_json::json!({"pickle_fallback": serde.pickle_fallback, "allowed_json_modules": allowed})
}

/// Loads `auth.path` into `graphward_auth.HOST` and reads its coverage.
fn load_auth(
    py: Python<'_>,
    event_loop: &Bound<'_, PyAny>,
    setup: &HostSetup,
    auth: &crate::config::AuthSpec,
    path: &ObjectLocation,
) -> Result<AuthReport, String> {
    let describe = |error: PyErr| PythonError::from_py(py, &error).to_string();
    let module = load_module(py, AUTH_SOURCE, c"<graphward>/graphward/auth_host.py", "graphward_auth").map_err(describe)?;
    let (file, module_name) = match &path.source {
        ModuleSource::File(file) => (Some(file.display().to_string()), None),
        ModuleSource::Module(name) => (None, Some(name.clone())),
    };
    let options = auth_options(py, setup.studio_allowed, auth).map_err(describe)?;
    let loaded = module
        .getattr("load_auth")
        .and_then(|load| load.call1((&path.raw, file, module_name, &path.attribute, options)))
        .map_err(describe)?;
    // `load_auth` may return a coroutine in future versions; accept both.
    let loaded = if loaded.hasattr("__await__").unwrap_or(false) {
        event_loop.call_method1("run_until_complete", (loaded,)).map_err(describe)?
    } else {
        loaded
    };
    // `HOST`, and `graphward_host.AUTH_DISPATCH`, where the bridge's hot path finds it.
    module.getattr("install").and_then(|install| install.call1((&loaded,))).map_err(describe)?;
    let mut coverage = Vec::new();
    for row in loaded.call_method0("coverage").and_then(|rows| rows.try_iter()).map_err(describe)? {
        let row = row.map_err(describe)?;
        let field = |name: &str| -> Result<Option<String>, String> { row.get_item(name).and_then(|v| v.extract()).map_err(describe) };
        coverage.push(CoverageRow {
            resource: field("resource")?.unwrap_or_default(),
            action: field("action")?.unwrap_or_default(),
            handler: field("handler")?,
            via: field("via")?,
        });
    }
    let missing_paths: Vec<String> = loaded.call_method0("missing_paths").and_then(|paths| paths.extract()).map_err(describe)?;
    Ok(AuthReport { coverage, missing_paths })
}

/// The callable a run emits its chunks through: `emit(event_name, json_text)`.
#[pyclass(frozen)]
struct Emitter {
    sink: Arc<dyn Fn(String, String) + Send + Sync>,
}

#[pymethods]
impl Emitter {
    fn __call__(&self, event: String, data: String) {
        (self.sink)(event, data);
    }
}

impl AuthHost for PythonHost {
    fn dispatch(&self, request: RequestInfo, events: Vec<AuthEvent>, timeout: Duration) -> crate::auth::DispatchFuture {
        let host = self.clone();
        Box::pin(async move {
            host.auth_dispatch(request, events, timeout).await.map_err(|error| match error {
                PythonError::TimedOut => DispatchFailure::TimedOut,
                other => DispatchFailure::Failed(other.to_string()),
            })
        })
    }
}

/// The fields of a user mapping beyond the standard ones, as JSON (a field whose value is not
/// JSON data is left out: the user object graphs see cannot carry it across processes).
fn user_extra(user: &Bound<'_, PyAny>) -> PyResult<serde_json::Map<String, serde_json::Value>> {
    const STANDARD: [&str; 5] = ["identity", "display_name", "is_authenticated", "permissions", "kind"];
    let mut extra = serde_json::Map::new();
    let Ok(fields) = user.cast::<PyDict>() else { return Ok(extra) };
    for (key, value) in fields.iter() {
        let Ok(key) = key.extract::<String>() else { continue };
        if STANDARD.contains(&key.as_str()) {
            continue;
        }
        if let Ok(value) = convert::py_to_json(&value) {
            extra.insert(key, value);
        }
    }
    Ok(extra)
}

/// Reads the dict `AuthHost.dispatch` returns.
fn parse_dispatch_reply<'py>(reply: &Bound<'py, PyAny>) -> PyResult<DispatchReply> {
    let py = reply.py();
    let get = |name: &Bound<'py, PyString>| reply.get_item(name);
    if get(pyo3::intern!(py, "ok"))?.is_truthy()? {
        let user = get(pyo3::intern!(py, "user"))?;
        let studio: bool = get(pyo3::intern!(py, "studio"))?.extract()?;
        let user = AuthUser {
            identity: user.get_item(pyo3::intern!(py, "identity"))?.str()?.to_string(),
            display_name: user.get_item(pyo3::intern!(py, "display_name"))?.str()?.to_string(),
            is_authenticated: user.get_item(pyo3::intern!(py, "is_authenticated"))?.is_truthy()?,
            permissions: user.get_item(pyo3::intern!(py, "permissions"))?.try_iter()?.map(|item| Ok(item?.str()?.to_string())).collect::<PyResult<_>>()?,
            studio,
            extra: user_extra(&user)?,
        };
        let mut events = Vec::new();
        for event in get(pyo3::intern!(py, "events"))?.try_iter()? {
            let event = event?;
            let filter = event.get_item(pyo3::intern!(py, "filter"))?;
            events.push(DispatchedEvent {
                handler: event.get_item(pyo3::intern!(py, "handler"))?.extract()?,
                filter: if filter.is_none() { None } else { Some(convert::py_to_json(&filter)?) },
                value: {
                    let value = event.get_item(pyo3::intern!(py, "value"))?;
                    if value.is_none() { None } else { Some(convert::py_to_json(&value)?) }
                },
                seconds: event.get_item(pyo3::intern!(py, "seconds"))?.extract()?,
            });
        }
        let authenticate = get(pyo3::intern!(py, "authenticate_seconds"))?
            .extract::<Option<f64>>()?
            .map(|seconds| Ok::<_, PyErr>(HandlerTime { handler: get(pyo3::intern!(py, "authenticate"))?.extract()?, seconds }))
            .transpose()?;
        Ok(DispatchReply::Allowed { user, events, authenticate })
    } else {
        let headers = get(pyo3::intern!(py, "headers"))?;
        let headers = if headers.is_none() {
            Vec::new()
        } else {
            headers.call_method0("items")?.try_iter()?.map(|item| item?.extract::<(String, String)>()).collect::<PyResult<_>>()?
        };
        Ok(DispatchReply::Refused {
            stage: get(pyo3::intern!(py, "stage"))?.extract()?,
            status: get(pyo3::intern!(py, "status"))?.extract()?,
            detail: get(pyo3::intern!(py, "detail"))?.str()?.to_string(),
            headers,
            handler: get(pyo3::intern!(py, "handler"))?.extract()?,
            log: get(pyo3::intern!(py, "log"))?.str()?.to_string(),
            took: get(pyo3::intern!(py, "seconds"))?.extract()?,
        })
    }
}

fn load_host_module(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    load_module(py, HOST_SOURCE, c"<graphward>/graphward/host.py", "graphward_host")
}

/// Compiles an embedded module and registers it in `sys.modules` (so tracebacks and the other
/// embedded modules can import it).
fn load_module<'py>(py: Python<'py>, source: &str, file_name: &std::ffi::CStr, name: &str) -> PyResult<Bound<'py, PyModule>> {
    let source = CString::new(source).map_err(|error| pyo3::exceptions::PyValueError::new_err(error.to_string()))?;
    let module_name = CString::new(name).map_err(|error| pyo3::exceptions::PyValueError::new_err(error.to_string()))?;
    let module = PyModule::from_code(py, &source, file_name, &module_name)?;
    py.import("sys")?.getattr("modules")?.set_item(name, &module)?;
    Ok(module)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELPERS: &std::ffi::CStr = c"
import asyncio, contextvars
seen = contextvars.ContextVar('seen', default=None)

async def immediate(x):
    return x * 2

async def suspends(x):
    await asyncio.sleep(0.001)
    assert asyncio.current_task() is not None
    return x + 1

async def raises():
    raise ValueError('bad input')

async def raises_after_suspend():
    await asyncio.sleep(0)
    raise KeyError('late')

async def isolated(tag):
    before = seen.get()
    seen.set(tag)
    await asyncio.sleep(0)
    return (before, seen.get())

async def uses_loop():
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    loop.call_soon(fut.set_result, 'from loop')
    return await fut
";

    /// One interpreter for the process, started on a duck-typed graph.
    fn host() -> PythonHost {
        static HOST: std::sync::OnceLock<PythonHost> = std::sync::OnceLock::new();
        HOST.get_or_init(|| {
            let dir = std::env::temp_dir().join(format!("graphward-bridge-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&dir).expect("dir");
            std::fs::write(dir.join("g.py"), "class G:\n    name = 'G'\n    astream = get_graph = aget_state = None\ngraph = G()\n").expect("write");
            let config = AppConfig::parse(&dir.join("langgraph.json"), r#"{"graphs": {"g": "./g.py:graph"}}"#).expect("config");
            let checkpoints = crate::storage::CheckpointTarget::SqliteFile(dir.join("checkpoints.db"));
            let (host, report) = PythonHost::start(HostSetup { config: Arc::new(config), venv: None, studio_allowed: false, checkpoints, store: None }).expect("start");
            assert_eq!(report.graphs, vec![LoadedGraph { graph_id: "g".into(), name: "G".into() }]);
            host
        })
        .clone()
    }

    async fn run(host: &PythonHost, function: &'static str, args: Vec<i64>) -> Result<String, PythonError> {
        host.call(
            move |module| {
                let py = module.py();
                let helpers = match py.import("bridge_helpers") {
                    Ok(helpers) => helpers,
                    Err(_) => {
                        let helpers = PyModule::from_code(py, HELPERS, c"bridge_helpers.py", c"bridge_helpers")?;
                        py.import("sys")?.getattr("modules")?.set_item("bridge_helpers", &helpers)?;
                        helpers
                    }
                };
                helpers.getattr(function)?.call1(pyo3::types::PyTuple::new(py, &args)?)
            },
            |value| Ok(value.repr()?.to_string()),
        )
        .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn coroutines_complete_fail_and_stay_isolated() {
        let host = host();
        assert_eq!(run(&host, "immediate", vec![21]).await.expect("immediate"), "42");
        assert_eq!(run(&host, "suspends", vec![1]).await.expect("suspends"), "2");
        assert_eq!(run(&host, "uses_loop", vec![]).await.expect("loop"), "'from loop'");
        let error = run(&host, "raises", vec![]).await.expect_err("raises");
        assert!(matches!(&error, PythonError::Raised { kind, message, traceback } if kind == "ValueError" && message == "bad input" && traceback.contains("raises")), "{error:?}");
        let error = run(&host, "raises_after_suspend", vec![]).await.expect_err("raises late");
        assert_eq!(error.to_string(), "KeyError: 'late'");
        // Each call gets a fresh context: a value set by one call is never seen by another.
        let calls: Vec<_> = (0..200)
            .map(|tag| {
                let host = host.clone();
                async move { run(&host, "isolated", vec![tag]).await }
            })
            .collect();
        for (tag, result) in futures_join(calls).await.into_iter().enumerate() {
            assert_eq!(result.expect("isolated"), format!("(None, {tag})"));
        }
    }

    async fn futures_join<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output>
    where
        F: Send + 'static,
        F::Output: Send + 'static,
    {
        let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
        let mut out = Vec::new();
        for handle in handles {
            out.push(handle.await.expect("join"));
        }
        out
    }
}
