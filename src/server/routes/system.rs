//! `/ok`, `/`, `/info`, `/openapi.json`, `/docs`: public, never authenticated. `/metrics`:
//! authenticated like any route (it names handlers and routes), no handler event.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
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

/// `GET /ok` (and `/`): `check_db` is an integer, as in the reference (anything else is a
/// 400 in the reference's words); non-zero probes the database, which answers within
/// [`HEALTH_TIMEOUT`] or the check fails with a 500.
async fn ok(State(state): State<AppState>, RawQuery(query): RawQuery) -> Result<axum::response::Response, ApiError> {
    let pairs = super::query_pairs(query.as_deref())?;
    let check_db = match pairs.iter().rev().find(|(key, _)| key == "check_db") {
        None => 0,
        Some((_, raw)) => python_int(raw).ok_or_else(|| ApiError::new(StatusCode::BAD_REQUEST, format!("invalid literal for int() with base 10: {}", python_repr(raw))))?,
    };
    if check_db != 0 {
        let probe = async {
            crate::failpoint::pause("health-check").await;
            state.storage().ping().await
        };
        let reachable = matches!(tokio::time::timeout(HEALTH_TIMEOUT, probe).await, Ok(Ok(())));
        if !reachable {
            tracing::warn!("health check: the database did not answer");
            return Ok((StatusCode::INTERNAL_SERVER_ERROR, axum::Json(json!({"ok": false, "services": {"database": "unhealthy"}}))).into_response());
        }
    }
    Ok(axum::Json(json!({"ok": true, "services": {}})).into_response())
}

/// How long `/ok?check_db=1` waits for the database.
const HEALTH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Python's `int(text)` for base 10: surrounding whitespace, a sign, digits with single
/// underscores between them. Only whether it is zero matters, so a long one is not kept.
fn python_int(text: &str) -> Option<u8> {
    let trimmed = text.trim();
    let digits = trimmed.strip_prefix(['+', '-']).unwrap_or(trimmed);
    let well_formed = !digits.is_empty()
        && !digits.starts_with('_')
        && !digits.ends_with('_')
        && !digits.contains("__")
        && digits.chars().all(|character| character.is_ascii_digit() || character == '_');
    well_formed.then(|| u8::from(digits.chars().any(|character| character.is_ascii_digit() && character != '0')))
}

/// `repr()` of a Python string, for the reference's error text.
fn python_repr(text: &str) -> String {
    let quote = if text.contains('\'') && !text.contains('"') { '"' } else { '\'' };
    let mut out = String::from(quote);
    for character in text.chars() {
        match character {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            character if character == quote => {
                out.push('\\');
                out.push(character);
            }
            character if character.is_control() => out.push_str(&format!("\\x{:02x}", u32::from(character))),
            character => out.push(character),
        }
    }
    out.push(quote);
    out
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

#[cfg(test)]
mod tests {
    use super::{python_int, python_repr};

    #[test]
    fn check_db_is_read_as_python_reads_an_int() {
        for (text, value) in [("1", Some(1)), ("0", Some(0)), (" 2 ", Some(1)), ("-0", Some(0)), ("+1", Some(1)), ("1_0", Some(1)), ("000", Some(0))] {
            assert_eq!(python_int(text), value, "{text:?}");
        }
        for text in ["", "abc", "true", "1.0", "_1", "1_", "1__0", "+", "0x1"] {
            assert_eq!(python_int(text), None, "{text:?}");
        }
    }

    #[test]
    fn the_refusal_quotes_the_value_as_python_does() {
        assert_eq!(python_repr("abc"), "'abc'");
        assert_eq!(python_repr(""), "''");
        assert_eq!(python_repr("it's"), "\"it's\"");
        assert_eq!(python_repr("a'\"b"), "'a\\'\"b'");
        assert_eq!(python_repr("a\\b\n"), "'a\\\\b\\n'");
    }
}
