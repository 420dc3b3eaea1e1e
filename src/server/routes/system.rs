//! `/ok`, `/`, `/info`, `/openapi.json`, `/docs`: public, never authenticated. `/metrics`:
//! authenticated like any route (it names handlers and routes), no handler event.

use axum::extract::State;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::server::auth::Auth;
use crate::server::{AppState, openapi};
use crate::storage::RunStatus;

pub(in crate::server) fn router() -> super::Routes {
    super::Routes::new()
        .route("/ok", get(ok))
        .route("/", get(ok))
        .route("/info", get(info))
        .route("/openapi.json", get(openapi_json))
        .route("/docs", get(docs))
        .route("/metrics", get(metrics))
}

/// Prometheus text format (`crate::metrics`), with the run queue depth and the `auth.cache`
/// figures read now.
async fn metrics(State(state): State<AppState>, auth: Auth) -> Result<impl IntoResponse, ApiError> {
    auth.authenticate().await?;
    let pending = state.storage().all_active_runs(Some(RunStatus::Pending)).await.ok().map(|runs| runs.len());
    let auth_cache = if state.auth_policy().is_enabled() { state.python().auth_cache_stats().await } else { None };
    let text = crate::metrics::global().render(&crate::metrics::Scraped { pending_runs: pending, auth_cache });
    Ok(([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text))
}

async fn ok() -> axum::Json<Value> {
    axum::Json(json!({"ok": true, "services": {}}))
}

async fn info(State(state): State<AppState>) -> axum::Json<Value> {
    axum::Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "server": "graphward",
        "langgraph_py_version": state.langgraph_version(),
        "flags": {
            "assistants": true,
            "crons": true,
            "langsmith": false,
            "langsmith_tracing_replicas": false,
            "langsmith_tracing_session_on_runs": false,
        },
        "host": {
            "kind": "self-hosted",
            "project_id": null,
            "host_revision_id": null,
            "revision_id": null,
            "tenant_id": null,
        },
    }))
}

async fn openapi_json(State(state): State<AppState>) -> impl IntoResponse {
    axum::Json(document(&state))
}

async fn docs(State(state): State<AppState>) -> Html<String> {
    Html(openapi::docs_page(&document(&state)))
}

/// The API's document, with `auth.openapi` of langgraph.json merged in and the paths `http.app`
/// documents (the API's own win).
fn document(state: &AppState) -> serde_json::Value {
    let security = state.config().auth.as_ref().and_then(|auth| auth.openapi.as_ref());
    let mut document = openapi::with_security(openapi::document(&state.graph_ids().collect::<Vec<_>>()), security);
    if let Some(paths) = state.custom_openapi_paths()
        && let Some(Value::Object(documented)) = document.get_mut("paths")
    {
        for (path, item) in paths {
            documented.entry(path.clone()).or_insert_with(|| item.clone());
        }
    }
    document
}
