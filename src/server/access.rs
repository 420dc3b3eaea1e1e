//! Every request's outcome: the HTTP metrics (`crate::metrics`, by the matched route's template)
//! and the access log — one `debug` line per request on target `graphward::access` (method,
//! path, status, milliseconds), with the request headers `http.logging_headers` allows (none
//! unless configured; credentials only when named exactly). The log is off unless that target
//! is enabled, e.g. `GRAPHWARD_LOG=info,graphward::access=debug`.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::server::AppState;

/// Headers a `*` pattern never logs.
const CREDENTIALS: [&str; 5] = ["authorization", "cookie", "proxy-authorization", "x-api-key", "x-auth-token"];

/// Marks a response the user's `http.app` gave (its route label in the metrics).
#[derive(Debug, Clone, Copy)]
pub(super) struct AnsweredByApp;

pub(super) async fn access_log(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().map(|matched| matched.as_str().to_string());
    if !tracing::enabled!(target: "graphward::access", tracing::Level::DEBUG) {
        let response = next.run(request).await;
        record(&method, route.as_deref(), &response, started);
        return response;
    }
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
    record(&method, route.as_deref(), &response, started);
    let millis = started.elapsed().as_secs_f64() * 1000.0;
    tracing::debug!(target: "graphward::access", %method, %path, status = response.status().as_u16(), millis = format!("{millis:.1}"), headers, "request");
    response
}

fn record(method: &axum::http::Method, route: Option<&str>, response: &Response, started: Instant) {
    let route = match route {
        Some(route) => route,
        None if response.extensions().get::<AnsweredByApp>().is_some() => "http.app",
        None => "unmatched",
    };
    crate::metrics::global().request(method.as_str(), route, response.status().as_u16(), started.elapsed());
}
