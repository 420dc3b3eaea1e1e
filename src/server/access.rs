//! The access log: one `debug` line per request on target `graphward::access` (method, path,
//! status, milliseconds), with the request headers `http.logging_headers` allows (none unless
//! configured; credentials only when named exactly). Off unless that target is enabled, e.g.
//! `GRAPHWARD_LOG=info,graphward::access=debug`; then the check costs one level test.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::server::AppState;

/// Headers a `*` pattern never logs.
const CREDENTIALS: [&str; 5] = ["authorization", "cookie", "proxy-authorization", "x-api-key", "x-auth-token"];

pub(super) async fn access_log(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if !tracing::enabled!(target: "graphward::access", tracing::Level::DEBUG) {
        return next.run(request).await;
    }
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let headers = match &state.config().http.logging_headers {
        Some(rules) => request
            .headers()
            .iter()
            .filter(|(name, _)| {
                let name = name.as_str();
                rules.allows(name) && (!CREDENTIALS.contains(&name) || rules.include.iter().any(|pattern| pattern == name))
            })
            .map(|(name, value)| format!("{}={}", name, String::from_utf8_lossy(value.as_bytes())))
            .collect::<Vec<_>>()
            .join(" "),
        None => String::new(),
    };
    let response = next.run(request).await;
    let millis = started.elapsed().as_secs_f64() * 1000.0;
    tracing::debug!(target: "graphward::access", %method, %path, status = response.status().as_u16(), millis = format!("{millis:.1}"), headers, "request");
    response
}
