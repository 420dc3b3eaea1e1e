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
pub mod config;
pub mod crons;
pub mod error;
pub mod python;
pub mod runs;
pub mod server;
pub mod storage;
pub mod timestamp;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::assistants::Assistant;
use crate::auth::AuthPolicy;
use crate::config::AppConfig;
use crate::python::{HostSetup, PythonHost, StartupReport};
use crate::runs::RunManager;
use crate::server::AppState;
use crate::storage::{Storage, StorageHandle};
use crate::storage::sqlite::SqliteStorage;

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
    /// The SQLite database file.
    pub database: PathBuf,
    /// How many runs may execute at once.
    pub max_runs: usize,
}

/// The default database of `dev`: `.graphward/state.db` next to `langgraph.json`.
pub fn default_database(config: &AppConfig) -> PathBuf {
    config.dir.join(".graphward").join("state.db")
}

/// Starts the interpreter, imports the graphs, loads `auth.path` and builds the server state.
/// A failure is one line for the user.
pub fn start(config: Arc<AppConfig>, options: StartOptions) -> Result<(AppState, StartupReport), String> {
    let storage = SqliteStorage::open(&options.database)?;
    let checkpoints = options.database.with_file_name(format!(
        "{}.checkpoints.db",
        options.database.file_stem().map_or_else(|| "state".into(), |stem| stem.to_string_lossy().into_owned())
    ));
    let setup = HostSetup {
        config: Arc::clone(&config),
        venv: options.venv,
        studio_allowed: options.mode == Mode::Dev,
        checkpoints,
        database: Some(options.database.clone()),
    };
    let (python, report) = PythonHost::start(setup)?;
    let policy = if report.auth.is_some() { AuthPolicy::python(python.clone(), options.auth_timeout) } else { AuthPolicy::open() };
    let now = timestamp::now_micros();
    for (spec, loaded) in config.graphs.iter().zip(&report.graphs) {
        let assistant = Assistant::system(&spec.graph_id, &loaded.name, spec.description.clone(), spec.config.clone(), now);
        storage.register_system_assistant(&assistant).map_err(|error| format!("cannot register the system assistant of `{}`: {error}", spec.graph_id))?;
    }
    let storage = StorageHandle::new(Arc::new(storage));
    let runs = RunManager::new(storage.clone(), python.clone(), options.max_runs);
    let state = AppState::new(config, python, policy, storage, runs, report.langgraph_version.clone());
    Ok((state, report))
}

/// Starts the run scheduler, then serves the API on `listener` until `shutdown` completes and
/// in-flight requests end.
pub async fn serve(listener: TcpListener, state: AppState, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
    let base_url = format!("http://{}", listener.local_addr()?);
    state.runs().start(base_url).await.map_err(std::io::Error::other)?;
    server::spawn_background(state.clone());
    let app = server::app(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}
