//! The auth gate: no request learns anything, and no large body is read, before the request is
//! authenticated.
//!
//! Routes authenticate and authorize in one Python round trip, after they have parsed their
//! path and body (the handlers' events carry the body's values). The gate, a middleware around
//! every route, makes that order safe:
//!
//! - A body bigger than the pre-authentication limit (by `Content-Length`, or once that many
//!   bytes arrived) is not read until the gate has authenticated the request (one extra round
//!   trip, for large bodies only); a refused request gets its 401 with the body unread.
//! - A small body is read (within the header timeout) and handed on.
//! - If the route answered without having authenticated — a malformed id or body (422), a
//!   record it could not find (404), an unknown route — the gate authenticates now and, if that
//!   fails, sends the refusal instead: without credentials every protected route answers 401,
//!   whatever the ids, the body or the data. Routes never write before they authorize, so a
//!   refused request has changed nothing.
//!
//! Public routes (`/ok`, `/`, `/info`, `/docs`, `/openapi.json`) and servers without custom
//! auth pass straight through.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;

use crate::auth::Endpoint;
use crate::error::ApiError;
use crate::server::AppState;
use crate::server::auth::request_info;

/// Paths served to anyone.
pub(in crate::server) const PUBLIC_PATHS: [&str; 5] = ["/ok", "/", "/info", "/docs", "/openapi.json"];

/// Set by the `Auth` extractor once the request is authenticated (request extension).
#[derive(Debug, Clone, Default)]
pub(in crate::server) struct Authenticated(Arc<AtomicBool>);

impl Authenticated {
    pub(in crate::server) fn mark(&self) {
        self.0.store(true, Ordering::Release);
    }

    fn is_set(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// A response sent with the request's body not read to its end: the connection cannot carry
/// another request (hyper closes it), so the client is told so (`Connection: close`) and does
/// not send its next request on it.
fn closing(mut response: Response) -> Response {
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// The body with a flag that is set once it has been read to its end.
fn tracked(body: Body) -> (Body, Arc<AtomicBool>) {
    let finished = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&finished);
    let end = futures_util::stream::once(async move { flag.store(true, Ordering::Release) }).filter_map(|()| async { None::<Result<Bytes, axum::Error>> });
    (Body::from_stream(body.into_data_stream().chain(end)), finished)
}

/// The response, closing the connection if the body was left unread.
fn close_unless_read(response: Response, finished: Option<&AtomicBool>) -> Response {
    match finished {
        Some(finished) if !finished.load(Ordering::Acquire) => closing(response),
        _ => response,
    }
}

pub(in crate::server) async fn gate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let policy = state.auth_policy();
    if !policy.is_enabled() || PUBLIC_PATHS.contains(&request.uri().path()) {
        if request.body().size_hint().exact() == Some(0) {
            return next.run(request).await;
        }
        let (parts, body) = request.into_parts();
        let (body, finished) = tracked(body);
        let response = next.run(Request::from_parts(parts, body)).await;
        return close_unless_read(response, Some(&finished));
    }
    let limits = state.limits();
    let (mut parts, body) = request.into_parts();
    let authenticated = Authenticated::default();
    parts.extensions.insert(authenticated.clone());
    let info = Arc::new(request_info(&parts));
    parts.extensions.insert(Arc::clone(&info));
    let mut finished = None;
    let body = match tokio::time::timeout(limits.header_timeout, read_prefix(body, limits.preauth_body_limit)).await {
        Err(_) => return closing(ApiError::new(StatusCode::REQUEST_TIMEOUT, "Request body not received in time").into_response()),
        Ok(Err(error)) => return closing(ApiError::new(StatusCode::BAD_REQUEST, format!("Cannot read the request body: {error}")).into_response()),
        Ok(Ok(Prefix::Whole(bytes))) => Body::from(bytes),
        Ok(Ok(Prefix::Partial(prefix, rest))) => {
            if let Err(error) = policy.authorize(&info, Endpoint::None).await {
                return closing(ApiError::from(error).into_response());
            }
            authenticated.mark();
            let head = futures_util::stream::iter(prefix.into_iter().map(Ok::<Bytes, axum::Error>));
            let (rest, rest_finished) = tracked(rest);
            finished = Some(rest_finished);
            Body::from_stream(head.chain(rest.into_data_stream()))
        }
    };
    let response = close_unless_read(next.run(Request::from_parts(parts, body)).await, finished.as_deref());
    if authenticated.is_set() {
        return response;
    }
    match policy.authorize(&info, Endpoint::None).await {
        Ok(_) => response,
        Err(error) => ApiError::from(error).into_response(),
    }
}

/// A body read up to the limit.
pub(in crate::server) enum Prefix {
    /// All of it.
    Whole(Bytes),
    /// The chunks read so far (none when `Content-Length` was over the limit) and the rest.
    Partial(Vec<Bytes>, Body),
}

pub(in crate::server) async fn read_prefix(body: Body, limit: usize) -> Result<Prefix, axum::Error> {
    let hint = body.size_hint();
    if hint.exact() == Some(0) {
        return Ok(Prefix::Whole(Bytes::new()));
    }
    let limit_u64 = u64::try_from(limit).unwrap_or(u64::MAX);
    if hint.lower() > limit_u64 {
        return Ok(Prefix::Partial(Vec::new(), body));
    }
    let mut body = body;
    let mut chunks = Vec::new();
    let mut read = 0usize;
    loop {
        let Some(frame) = std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await else {
            return Ok(Prefix::Whole(concat(chunks, read)));
        };
        // Trailers carry nothing a route reads.
        let Ok(data) = frame?.into_data() else { continue };
        read += data.len();
        chunks.push(data);
        if read > limit {
            return Ok(Prefix::Partial(chunks, body));
        }
    }
}

fn concat(chunks: Vec<Bytes>, length: usize) -> Bytes {
    match chunks.len() {
        0 => Bytes::new(),
        1 => chunks.into_iter().next().unwrap_or_default(),
        _ => {
            let mut whole = Vec::with_capacity(length);
            for chunk in chunks {
                whole.extend_from_slice(&chunk);
            }
            Bytes::from(whole)
        }
    }
}
