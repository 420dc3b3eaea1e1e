//! The API error type and its single `IntoResponse`: `{"detail": "…"}` with the status.
//!
//! Handlers return `Result<_, ApiError>`. 5xx answers say nothing about the cause; the cause
//! is logged once, here, where the response is built.

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An HTTP error answer.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The response status.
    pub status: StatusCode,
    /// The `detail` text sent to the client.
    pub detail: String,
    /// Extra response headers (e.g. `WWW-Authenticate` from an auth handler).
    pub headers: HeaderMap,
}

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self { status, detail: detail.into(), headers: HeaderMap::new() }
    }

    /// `404 {"detail": "Not Found"}` and friends: the reason phrase as detail.
    pub fn reason(status: StatusCode) -> Self {
        Self::new(status, status.canonical_reason().unwrap_or("Error"))
    }

    /// 422 for a request that fails validation.
    pub fn validation(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }

    /// A server-side failure: the client sees a generic 500, the cause goes to the log.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
    }
}

/// Details quote client input (a graph id, a schedule); past this length they are cut, so an
/// answer never echoes a megabyte back.
const MAX_DETAIL: usize = 1024;

impl IntoResponse for ApiError {
    fn into_response(mut self) -> Response {
        if self.detail.len() > MAX_DETAIL {
            let mut end = MAX_DETAIL;
            while !self.detail.is_char_boundary(end) {
                end -= 1;
            }
            self.detail.truncate(end);
            self.detail.push('…');
        }
        let mut response = (self.status, axum::Json(json!({ "detail": self.detail }))).into_response();
        response.headers_mut().extend(self.headers);
        response
    }
}
