//! How run results travel back: SSE over a run's events (filtered by mode, with heartbeats),
//! the thread stream, and `/wait`'s JSON written when the run ends with a `\n` kept-alive
//! meanwhile — and the guard that cancels a run whose client went away (`on_disconnect`).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use serde_json::json;
use tokio::sync::broadcast::{self, error::RecvError};
use uuid::Uuid;

use crate::error::ApiError;
use crate::runs::{CancelAction, RunChannel, RunEvent, Subscription, THREAD_STREAM_CLOSED, ThreadChannel};
use crate::server::AppState;
use crate::server::service::runs::run_result;
use crate::storage::Run;

/// Keep-alive cadence of streams and waits.
pub(in crate::server) const KEEPALIVE: Duration = Duration::from_secs(5);

pub(in crate::server) const HEARTBEAT: &[u8] = b": heartbeat\r\n\r\n";

/// `Location` and `Content-Location` (a value that is not a header value is left out).
pub(in crate::server) fn location_headers(location: &str, content_location: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(location) {
        headers.insert(header::LOCATION, value);
    }
    if let Ok(value) = HeaderValue::from_str(content_location) {
        headers.insert(header::CONTENT_LOCATION, value);
    }
    headers
}

/// Cancels the run if the response body is dropped before the run ends (`on_disconnect`).
#[derive(Debug)]
pub(in crate::server) struct CancelOnDrop {
    state: Option<(AppState, Run)>,
}

impl CancelOnDrop {
    /// Armed when `cancel` is true; a guard that does nothing otherwise.
    pub(in crate::server) fn new(state: &AppState, run: &Run, cancel: bool) -> Self {
        Self { state: cancel.then(|| (state.clone(), run.clone())) }
    }

    pub(in crate::server) fn none() -> Self {
        Self { state: None }
    }

    fn disarm(&mut self) {
        self.state = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some((state, run)) = self.state.take() {
            tokio::spawn(async move {
                let still_active = state.runs().reading_channel(&run).await.is_some_and(|channel| !channel.is_finished());
                if still_active {
                    let _ = state.runs().cancel(&run, CancelAction::Interrupt).await;
                }
            });
        }
    }
}

/// A response whose body is `stream`, with the headers an event stream needs (no caching, no
/// proxy buffering).
pub(in crate::server) fn event_stream(stream: impl futures_util::Stream<Item = Result<Bytes, Infallible>> + Send + 'static, headers: HeaderMap) -> Response {
    let mut response = Response::new(Body::from_stream(stream));
    let response_headers = response.headers_mut();
    response_headers.extend(headers);
    response_headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream; charset=utf-8"));
    response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response_headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response_headers.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
    response
}

/// An SSE response over a subscription, filtered to `modes` (empty: all), with heartbeats.
/// `metadata` and `error` events always pass.
pub(in crate::server) fn sse_response(subscription: Subscription, modes: Vec<String>, headers: HeaderMap, guard: CancelOnDrop) -> Response {
    filtered_sse(subscription, modes, true, headers, guard)
}

/// A join's stream filtered to the `stream_mode`s it asked for (empty: all): as in the
/// reference, a filter that does not name `metadata` leaves the `metadata` events out
/// (`error` events always pass).
pub(in crate::server) fn join_sse(subscription: Subscription, modes: Vec<String>, headers: HeaderMap, guard: CancelOnDrop) -> Response {
    filtered_sse(subscription, modes, false, headers, guard)
}

fn filtered_sse(subscription: Subscription, modes: Vec<String>, metadata_always: bool, headers: HeaderMap, guard: CancelOnDrop) -> Response {
    let wanted = move |event: &RunEvent| {
        if event.event == "error" || (metadata_always && event.event == "metadata") || modes.is_empty() {
            return true;
        }
        let mode = event.mode();
        modes.iter().any(|wanted| wanted == mode || (mode == "messages" && wanted.starts_with("messages")))
    };
    let stream = futures_util::stream::unfold((subscription, guard), move |(mut subscription, mut guard)| {
        let wanted = wanted.clone();
        async move {
            loop {
                match tokio::time::timeout(KEEPALIVE, subscription.next()).await {
                    Err(_) => return Some((Ok(Bytes::from_static(HEARTBEAT)), (subscription, guard))),
                    Ok(Some(event)) if wanted(&event) => return Some((Ok(Bytes::from(event.frame())), (subscription, guard))),
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        guard.disarm();
                        return None;
                    }
                }
            }
        }
    });
    event_stream(stream, headers)
}

/// A one-event SSE answer: `event: error` with the given message.
pub(in crate::server) fn sse_error(message: &str) -> Response {
    let channel = Arc::new(RunChannel::new(false));
    channel.push("error", json!({"error": "HTTPException", "message": message}).to_string());
    channel.finish();
    sse_response(channel.subscribe_from_start(), Vec::new(), HeaderMap::new(), CancelOnDrop::none())
}

/// The thread stream: the `replay` first, then live events, those `wanted`, with heartbeats,
/// until the thread's channel closes. Holding `channel` keeps it alive as long as the client.
pub(in crate::server) fn thread_sse(
    channel: Arc<ThreadChannel>,
    replay: Vec<RunEvent>,
    receiver: broadcast::Receiver<RunEvent>,
    wanted: impl Fn(&RunEvent) -> bool + Clone + Send + Sync + 'static,
) -> Response {
    let replay: VecDeque<RunEvent> = replay.into_iter().collect();
    let stream = futures_util::stream::unfold((replay, receiver, channel), move |(mut replay, mut receiver, channel)| {
        let wanted = wanted.clone();
        async move {
            loop {
                if let Some(event) = replay.pop_front() {
                    if wanted(&event) {
                        return Some((Ok(Bytes::from(event.frame())), (replay, receiver, channel)));
                    }
                    continue;
                }
                match tokio::time::timeout(KEEPALIVE, receiver.recv()).await {
                    Err(_) => return Some((Ok(Bytes::from_static(HEARTBEAT)), (replay, receiver, channel))),
                    Ok(Ok(event)) if event.event == THREAD_STREAM_CLOSED => return None,
                    Ok(Ok(event)) if wanted(&event) => return Some((Ok(Bytes::from(event.frame())), (replay, receiver, channel))),
                    Ok(Ok(_) | Err(RecvError::Lagged(_))) => {}
                    Ok(Err(RecvError::Closed)) => return None,
                }
            }
        }
    });
    event_stream(stream, HeaderMap::new())
}

/// A JSON response written when the run ends (its result, else the thread's values), with a
/// `\n` every 5 s meanwhile.
pub(in crate::server) fn wait_response(state: AppState, subscription: Subscription, thread_id: Option<Uuid>, headers: HeaderMap, guard: CancelOnDrop) -> Response {
    let result = async move {
        let result = run_result(&state, subscription, thread_id).await;
        let mut guard = guard;
        guard.disarm();
        result
    };
    let result = Box::pin(result);
    let stream = futures_util::stream::unfold(Some(result), |pending| async move {
        let mut pending = pending?;
        match tokio::time::timeout(KEEPALIVE, &mut pending).await {
            Err(_) => Some((Ok::<Bytes, Infallible>(Bytes::from_static(b"\n")), Some(pending))),
            Ok(value) => Some((Ok(Bytes::from(value.to_string())), None)),
        }
    });
    let mut response = Response::new(Body::from_stream(stream));
    response.headers_mut().extend(headers);
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The modes a join of a run's stream asks for: every `stream_mode` pair, each a mode or a
/// JSON list of modes.
pub(in crate::server) fn join_stream_modes(pairs: &[(String, String)]) -> Vec<String> {
    let mut modes = Vec::new();
    for (_, value) in pairs.iter().filter(|(key, value)| key == "stream_mode" && !value.is_empty()) {
        match serde_json::from_str::<Vec<String>>(value) {
            Ok(list) => modes.extend(list),
            Err(_) => modes.push(value.clone()),
        }
    }
    modes
}

/// The modes of a thread stream (`stream_modes`, or `stream_mode` as the SDKs send it; comma
/// separated): `run_modes` (the default), `lifecycle`, `state_update`.
pub(in crate::server) fn thread_stream_modes(pairs: &[(String, String)]) -> Result<Vec<String>, ApiError> {
    let mut modes = Vec::new();
    for (_, value) in pairs.iter().filter(|(key, value)| (key == "stream_modes" || key == "stream_mode") && !value.is_empty()) {
        for mode in value.split(',').map(str::trim) {
            if !["run_modes", "lifecycle", "state_update"].contains(&mode) {
                return Err(ApiError::validation(format!("Invalid stream mode: {mode}")));
            }
            modes.push(mode.to_string());
        }
    }
    if modes.is_empty() {
        modes.push("run_modes".to_string());
    }
    Ok(modes)
}

/// The `Last-Event-ID` a reconnecting client sends.
pub(in crate::server) fn last_event_id(headers: &HeaderMap) -> Option<String> {
    headers.get("last-event-id").and_then(|value| value.to_str().ok()).map(str::to_string)
}
