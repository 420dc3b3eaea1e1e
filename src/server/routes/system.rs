//! `/ok`, `/`, `/info`, `/openapi.json`, `/docs`: public, never authenticated.

use axum::extract::State;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use serde_json::{Value, json};

use crate::server::{AppState, openapi};

pub(in crate::server) fn router() -> super::Routes {
    super::Routes::new()
        .route("/ok", get(ok))
        .route("/", get(ok))
        .route("/info", get(info))
        .route("/openapi.json", get(openapi_json))
        .route("/docs", get(docs))
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
    axum::Json(openapi_document(&state))
}

async fn docs(State(state): State<AppState>) -> Html<String> {
    Html(openapi::docs_page(&openapi_document(&state)))
}

/// The API's OpenAPI document, with `auth.openapi` of langgraph.json merged in.
fn openapi_document(state: &AppState) -> serde_json::Value {
    let security = state.config().auth.as_ref().and_then(|auth| auth.openapi.as_ref());
    openapi::with_security(openapi::document(&state.graph_ids().collect::<Vec<_>>()), security)
}
