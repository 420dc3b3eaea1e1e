//! HTTP: router assembly, shared state, the fallbacks. Only this module and `error.rs` know
//! HTTP types.

pub mod extract;
mod access;
mod auth;
mod cors;
mod custom;
mod gate;
mod jsonrpc;
mod respond;
pub mod listener;
pub mod openapi;
mod routes;
mod service;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;

use crate::auth::AuthPolicy;
use crate::config::AppConfig;
use crate::error::ApiError;
use crate::python::PythonHost;
use crate::runs::RunManager;
use crate::storage::{StorageError, StorageHandle};

/// Request bodies above this size get 413, like the reference's default.
pub const MAX_BODY_BYTES: usize = 300 * 1024 * 1024;

/// Everything handlers share. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<SharedState>,
}

#[derive(Debug)]
struct SharedState {
    config: Arc<AppConfig>,
    /// The interpreter: graphs and auth.
    python: PythonHost,
    /// The user's auth (or none).
    auth: AuthPolicy,
    /// Threads, store items, … .
    storage: StorageHandle,
    /// The run queue and executor.
    runs: RunManager,
    /// The installed `langgraph` version, for `/info`.
    langgraph_version: Option<String>,
    /// Connection and pre-authentication limits.
    limits: listener::Limits,
    /// Routing changed by `http` (`http.app`, `http.disable_*`); `None` when nothing is.
    /// Replaced when a reload brings an app with other routes.
    exposure: std::sync::RwLock<Option<Arc<custom::Exposure>>>,
    /// `http.cors`, compiled; `None`: the reference dev server's open CORS.
    cors: Option<cors::CorsPolicy>,
}

impl AppState {
    pub fn new(
        config: Arc<AppConfig>,
        python: PythonHost,
        auth: AuthPolicy,
        storage: StorageHandle,
        runs: RunManager,
        langgraph_version: Option<String>,
        limits: listener::Limits,
        custom_routes: Option<&[crate::python::CustomRoute]>,
        custom_openapi: Option<&serde_json::Value>,
    ) -> Self {
        let exposure = std::sync::RwLock::new(custom::Exposure::new(&config.http, &route_paths(), custom_routes, custom_openapi, config.http.app.is_some()));
        let cors = config.http.cors.as_ref().map(cors::CorsPolicy::new);
        Self { inner: Arc::new(SharedState { config, python, auth, storage, runs, langgraph_version, limits, exposure, cors }) }
    }

    fn cors_policy(&self) -> Option<&cors::CorsPolicy> {
        self.inner.cors.as_ref()
    }

    fn exposure(&self) -> Option<Arc<custom::Exposure>> {
        self.inner.exposure.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// The paths `http.app`'s OpenAPI document lists, if any.
    fn custom_openapi_paths(&self) -> Option<serde_json::Map<String, serde_json::Value>> {
        self.exposure().and_then(|exposure| exposure.openapi_paths().cloned())
    }

    /// Routes requests by the routes of a reloaded `http.app` (and documents its paths).
    pub fn replace_custom_routes(&self, routes: Option<&[crate::python::CustomRoute]>, openapi: Option<&serde_json::Value>) {
        let config = &self.inner.config;
        let exposure = custom::Exposure::new(&config.http, &route_paths(), routes, openapi, config.http.app.is_some());
        *self.inner.exposure.write().unwrap_or_else(std::sync::PoisonError::into_inner) = exposure;
    }

    pub fn limits(&self) -> listener::Limits {
        self.inner.limits
    }

    pub fn python(&self) -> &PythonHost {
        &self.inner.python
    }

    pub fn runs(&self) -> &RunManager {
        &self.inner.runs
    }

    pub fn storage(&self) -> &StorageHandle {
        &self.inner.storage
    }

    /// The auth policy (also used by `graphward bench-auth`).
    pub fn auth_policy(&self) -> &AuthPolicy {
        &self.inner.auth
    }

    pub fn config(&self) -> &AppConfig {
        &self.inner.config
    }

    pub fn langgraph_version(&self) -> Option<&str> {
        self.inner.langgraph_version.as_deref()
    }

    /// The configured graph ids, in `langgraph.json` order.
    pub fn graph_ids(&self) -> impl Iterator<Item = &str> {
        self.inner.config.graphs.iter().map(|graph| graph.graph_id.as_str())
    }
}

/// The whole API as a router (under `http.mount_prefix` when set).
pub fn app(state: AppState) -> Router {
    let prefix = state.config().http.mount_prefix.clone();
    let api = api(state);
    match prefix {
        Some(prefix) => Router::new().nest(&prefix, api),
        None => api,
    }
}

fn api(state: AppState) -> Router {
    routes::all()
        .into_iter()
        .fold(Router::new(), |router, routes| router.merge(routes.router))
        // Like the reference, unknown routes are authenticated first: 401 before 404/405.
        .fallback(|auth: auth::Auth| async move { auth.authenticate().await.and(Err::<(), _>(ApiError::reason(StatusCode::NOT_FOUND))) })
        .method_not_allowed_fallback(|auth: auth::Auth| async move {
            auth.authenticate().await.and(Err::<(), _>(ApiError::reason(StatusCode::METHOD_NOT_ALLOWED)))
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(state.clone(), gate::gate))
        .layer(axum::middleware::from_fn_with_state(state.clone(), custom::expose))
        .layer(axum::middleware::from_fn_with_state(state.clone(), cors::cors))
        .layer(axum::middleware::from_fn_with_state(state.clone(), access::access_log))
        .with_state(state)
}

/// Every path the router serves (for the route-coverage test).
pub fn route_paths() -> Vec<&'static str> {
    routes::all().into_iter().flat_map(|routes| routes.paths).collect()
}

impl From<StorageError> for ApiError {
    /// Routes map `NotFound`/`Conflict` to their own bodies first; this is the fallback.
    fn from(error: StorageError) -> Self {
        match error {
            StorageError::NotFound => ApiError::reason(StatusCode::NOT_FOUND),
            StorageError::Conflict => ApiError::reason(StatusCode::CONFLICT),
            StorageError::Internal(message) => ApiError::internal(message),
            StorageError::Unavailable(message) => {
                tracing::error!(%message, "database unavailable");
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "The database is unavailable; try again")
            }
        }
    }
}

/// Background work of a serving process until `stop` turns true: crons fire on their schedule
/// (checked every second), and expired threads are swept every
/// `checkpointer.ttl.sweep_interval_minutes`. The task is the caller's to await.
pub fn spawn_background(state: AppState, stop: tokio::sync::watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let crons = every(std::time::Duration::from_secs(1), stop.clone(), || service::crons::fire_due_crons(&state));
        let sweep = every(state.config().checkpointer.sweep_interval(), stop, || service::ttl::sweep_expired_threads(&state));
        tokio::join!(crons, sweep);
    })
}

/// Runs `work` now and then `interval` after each run ends, until `stop` turns true.
async fn every<F: std::future::Future<Output = ()>>(interval: std::time::Duration, mut stop: tokio::sync::watch::Receiver<bool>, mut work: impl FnMut() -> F) {
    while !*stop.borrow() {
        work().await;
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = stop.changed() => {}
        }
    }
}
