//! Our extractors: malformed input becomes our `{"detail": …}` error, never axum's text.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::server::MAX_BODY_BYTES;

/// A JSON body. An empty body reads as `{}`; invalid JSON is 422 `Invalid JSON in request
/// body`; a body of the wrong shape is 422 naming the field; an oversized body is 413.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(request, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("Request body too large (limit: {MAX_BODY_BYTES} bytes)"))
            } else {
                ApiError::new(rejection.status(), rejection.body_text())
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Path parameters; a segment axum cannot decode (invalid UTF-8 after percent-decoding) is our
/// 400 `{"detail": …}`, not axum's plain text.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError::new(rejection.status(), rejection.body_text())),
        }
    }
}

/// A typed query string, with our `{"detail": …}` 422 when it does not parse.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        serde_urlencoded::from_str(parts.uri.query().unwrap_or_default())
            .map(Self)
            .map_err(|error| ApiError::validation(format!("invalid query string: {error}")))
    }
}

/// Parses a request body (empty = `{}`) into `T` with the errors described on [`ApiJson`].
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}" } else { bytes };
    // First as a value: a syntax error is "invalid JSON", anything after is a shape error.
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|_| ApiError::validation("Invalid JSON in request body"))?;
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner().to_string();
        if path == "." { ApiError::validation(inner) } else { ApiError::validation(format!("{path}: {inner}")) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[expect(dead_code, reason = "fields are only deserialized")]
    struct Body {
        limit: Option<u32>,
        tags: Option<Vec<String>>,
    }

    #[test]
    fn errors_name_the_problem() {
        assert!(parse_json::<Body>(b"").is_ok());
        assert_eq!(parse_json::<Body>(b"{").expect_err("bad").detail, "Invalid JSON in request body");
        let wrong = parse_json::<Body>(br#"{"limit": "x"}"#).expect_err("bad");
        assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(wrong.detail.starts_with("limit: invalid type"), "{}", wrong.detail);
        let nested = parse_json::<Body>(br#"{"tags": ["a", 1]}"#).expect_err("bad");
        assert!(nested.detail.starts_with("tags[1]: invalid type"), "{}", nested.detail);
    }
}
