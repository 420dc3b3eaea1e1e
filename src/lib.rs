//! graphward: a LangGraph API server that runs a user's `langgraph.json`, `auth.py` and graphs
//! unchanged, through an embedded CPython.
//!
//! Codemap (see ARCHITECTURE.md):
//! - [`config`]: `langgraph.json` → [`config::AppConfig`].
//! - [`python`]: the interpreter thread, its asyncio loop and the async bridge (only pyo3 user).
//! - [`server`]: the HTTP API (axum); [`error`]: the `{"detail": …}` error answer.
//! - [`assistants`]: assistant records and the system-assistant id rule.

// The OpenAPI document is one large `json!` literal.
#![recursion_limit = "256"]

pub mod assistants;
pub mod auth;
pub mod cli;
pub mod config;
pub mod crons;
pub mod error;
pub mod failpoint;
pub mod metrics;
pub mod python;
pub mod reload;
pub mod runs;
pub mod server;
pub mod storage;
pub mod store;
pub mod timestamp;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::assistants::Assistant;
use crate::auth::AuthPolicy;
use crate::config::AppConfig;
use crate::python::{HostSetup, PythonHost, StartupReport, StoreBackend};
use crate::runs::RunManager;
use crate::server::AppState;
use crate::storage::StorageConfig;

/// The user's virtual environment: `VIRTUAL_ENV` if set, else a `.venv` next to
/// `langgraph.json`, else none (only the embedded interpreter's own packages).
pub fn find_venv(config: &AppConfig, virtual_env: Option<PathBuf>) -> Option<PathBuf> {
    virtual_env.filter(|path| !path.as_os_str().is_empty()).or_else(|| {
        let local = config.dir.join(".venv");
        local.join("pyvenv.cfg").is_file().then_some(local)
    })
}

/// How the server runs; decides the Studio bypass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `graphward dev`: the Studio bypass is allowed unless `disable_studio_auth`.
    Dev,
    /// `graphward serve` and `check`: never a Studio bypass.
    Serve,
}

/// Start-up options that do not come from `langgraph.json`.
#[derive(Debug, Clone)]
pub struct StartOptions {
    pub mode: Mode,
    /// The user's environment (see [`find_venv`]).
    pub venv: Option<PathBuf>,
    /// How long one request's authentication and authorization may take (then 503).
    pub auth_timeout: Duration,
    /// Where the records and checkpoints are kept.
    pub storage: StorageConfig,
    /// How many runs may execute at once.
    pub max_runs: usize,
    /// Connection and pre-authentication limits.
    pub limits: server::listener::Limits,
}

/// The default storage of `dev` and `serve`: SQLite in `.graphward/state.db` next to
/// `langgraph.json`.
pub fn default_storage(config: &AppConfig) -> StorageConfig {
    StorageConfig::Sqlite { path: config.dir.join(".graphward").join("state.db") }
}

/// Opens the storage, starts the interpreter (on the blocking pool: it imports the graphs
/// and loads `auth.path`), registers the graphs' assistants and builds the server state. A
/// failure is one line for the user.
pub async fn start(config: Arc<AppConfig>, options: StartOptions) -> Result<(AppState, StartupReport), String> {
    let storage = options.storage.open().await?;
    let setup = HostSetup {
        config: Arc::clone(&config),
        venv: options.venv,
        studio_allowed: options.mode == Mode::Dev,
        checkpoints: options.storage.checkpoints(),
        store: Some(StoreBackend { storage: storage.clone(), runtime: tokio::runtime::Handle::current(), spec: Arc::new(config.store.clone()) }),
    };
    let (python, report) = tokio::task::spawn_blocking(move || PythonHost::start(setup)).await.map_err(|error| format!("the interpreter did not start: {error}"))??;
    let policy = if report.auth.is_some() { AuthPolicy::with_host(std::sync::Arc::new(python.clone()), options.auth_timeout) } else { AuthPolicy::open() };
    let now = timestamp::now_micros();
    for (spec, loaded) in config.graphs.iter().zip(&report.graphs) {
        let assistant = Assistant::system(&spec.graph_id, &loaded.name, spec.description.clone(), spec.config.clone(), now);
        storage.register_system_assistant(assistant).await.map_err(|error| format!("cannot register the system assistant of `{}`: {error}", spec.graph_id))?;
    }
    let runs = RunManager::new(storage.clone(), python.clone(), options.max_runs, config.webhooks.clone());
    let state = AppState::new(config, python, policy, storage, runs, report.langgraph_version.clone(), options.limits, report.custom_routes.as_deref(), report.custom_openapi.as_ref());
    Ok((state, report))
}

/// Starts the run scheduler and the cron loop, then serves the API on `listener` until
/// `shutdown` completes. Then, at once: HTTP stops accepting and drains, the cron loop stops,
/// and executing runs get `shutdown_grace` to finish before the rest are handed back to the
/// queue for the next start ([`runs::RunManager::shutdown`]).
pub async fn serve(listener: TcpListener, state: AppState, shutdown_grace: Duration, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
    let base_url = format!("http://{}", listener.local_addr()?);
    state.runs().start(base_url).await.map_err(std::io::Error::other)?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let background = server::spawn_background(state.clone(), stopped.clone());
    let sweep_every = Duration::from_secs(state.config().store.ttl.sweep_interval_minutes.saturating_mul(60));
    let sweeper = store::spawn_sweeper(state.storage().clone(), sweep_every, stopped.clone());
    let runs = state.runs().clone();
    let mut signal = stopped;
    let drain_runs = tokio::spawn(async move {
        let _ = signal.wait_for(|stopping| *stopping).await;
        let (finished, handed_back) = runs.shutdown(shutdown_grace).await;
        if finished + handed_back > 0 {
            tracing::info!(finished, handed_back, "runs stopped for shutdown");
        }
    });
    let limits = state.limits();
    let (python, state_has_app) = (state.python().clone(), state.config().http.app.is_some());
    let served = server::listener::serve(listener, server::app(state), limits, async move {
        shutdown.await;
        let _ = stop.send(true);
    })
    .await;
    let _ = drain_runs.await;
    let _ = background.await;
    let _ = sweeper.await;
    if state_has_app {
        python.stop_http_app().await;
    }
    served
}

/// The auth round trip in isolation: `calls` sequential authorizations of a `threads.read`
/// event (µs per call, i.e. latency), then the same number spread over 64 concurrent tasks
/// (calls per second). For `graphward bench-auth`.
pub async fn bench_auth(config: Arc<AppConfig>, options: StartOptions, calls: usize, authorization: String) -> Result<String, String> {
    use crate::auth::{Endpoint, RequestInfo};

    let (state, report) = start(config, options).await?;
    if report.auth.is_none() {
        return Err("the app has no `auth.path`: nothing to measure".to_string());
    }
    let policy = state.auth_policy().clone();
    let request = RequestInfo {
        method: "GET".into(),
        path: "/threads/x".into(),
        raw_path: "/threads/x".into(),
        headers: vec![("authorization".into(), authorization.into_bytes())],
        ..RequestInfo::default()
    };
    let endpoint = Endpoint::ThreadsRead { thread_id: uuid::Uuid::nil() };
    for _ in 0..1000 {
        policy.authorize(&request, endpoint.clone()).await.map_err(|error| error.to_string())?;
    }
    let started = std::time::Instant::now();
    for _ in 0..calls {
        policy.authorize(&request, endpoint.clone()).await.map_err(|error| error.to_string())?;
    }
    let sequential = started.elapsed().as_secs_f64() * 1e6 / calls as f64;
    let started = std::time::Instant::now();
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (policy, request, endpoint) = (policy.clone(), request.clone(), endpoint.clone());
            tokio::spawn(async move {
                for _ in 0..calls / 64 {
                    let _ = policy.authorize(&request, endpoint.clone()).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.map_err(|error| error.to_string())?;
    }
    let rate = (calls / 64 * 64) as f64 / started.elapsed().as_secs_f64();
    Ok(format!("auth round trip: {sequential:.1} µs per call sequential; {rate:.0} calls/s with 64 concurrent tasks ({:.1} µs/call amortised)", 1e6 / rate))
}
