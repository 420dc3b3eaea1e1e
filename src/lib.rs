//! graphward: a LangGraph API server that runs a user's `langgraph.json`, `auth.py` and graphs
//! unchanged, through an embedded CPython.
//!
//! Codemap (see ARCHITECTURE.md):
//! - [`config`]: `langgraph.json` → [`config::AppConfig`].
//! - [`python`]: the interpreter thread, its asyncio loop and the async bridge (only pyo3 user).
//! - [`server`]: the HTTP API (axum); [`error`]: the `{"detail": …}` error answer.
//! - [`assistants`]: assistant records and the system-assistant id rule.

pub mod assistants;
pub mod config;
pub mod error;
pub mod python;
pub mod server;
pub mod timestamp;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::assistants::Assistant;
use crate::config::AppConfig;
use crate::python::{HostSetup, PythonHost, StartupReport};
use crate::server::AppState;

/// The user's virtual environment: `VIRTUAL_ENV` if set, else a `.venv` next to
/// `langgraph.json`, else none (only the embedded interpreter's own packages).
pub fn find_venv(config: &AppConfig, virtual_env: Option<PathBuf>) -> Option<PathBuf> {
    virtual_env.filter(|path| !path.as_os_str().is_empty()).or_else(|| {
        let local = config.dir.join(".venv");
        local.join("pyvenv.cfg").is_file().then_some(local)
    })
}

/// Starts the interpreter, imports the graphs and builds the server state.
/// A failure is one line for the user.
pub fn start(config: Arc<AppConfig>, venv: Option<PathBuf>) -> Result<(AppState, StartupReport), String> {
    if let Some(auth) = &config.auth
        && auth.path.is_some()
    {
        return Err(format!(
            "{}: `auth.path`: custom auth is not implemented in this build yet; remove the `auth` block to serve without auth",
            config.path.display()
        ));
    }
    let (python, report) = PythonHost::start(HostSetup { config: Arc::clone(&config), venv })?;
    let now = timestamp::now_micros();
    let assistants = config
        .graphs
        .iter()
        .zip(&report.graphs)
        .map(|(spec, loaded)| Assistant::system(&spec.graph_id, &loaded.name, spec.description.clone(), spec.config.clone(), now))
        .collect();
    let state = AppState::new(config, python, assistants, report.langgraph_version.clone());
    Ok((state, report))
}

/// Serves the API on `listener` until `shutdown` completes, then lets in-flight requests end.
pub async fn serve(listener: TcpListener, state: AppState, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
    axum::serve(listener, server::app(state)).with_graceful_shutdown(shutdown).await
}
