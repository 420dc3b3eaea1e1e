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
        parse_json(&body(request, state).await?).map(ApiJson)
    }
}

/// The body's bytes, with our 413.
async fn body<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(request, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("Request body too large (limit: {MAX_BODY_BYTES} bytes)"))
        } else {
            ApiError::new(rejection.status(), rejection.body_text())
        }
    })
}

/// A JSON array body of objects (`POST /runs/batch`), with the errors of [`ApiJson`].
#[derive(Debug, Clone, Default)]
pub struct ApiJsonList<T>(pub Vec<T>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJsonList<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let serde_json::Value::Array(items) = parse_value(&body(request, state).await?)? else {
            return Err(ApiError::validation("Request body must be a JSON array"));
        };
        let mut parsed = Vec::with_capacity(items.len());
        for (index, item) in items.into_iter().enumerate() {
            if !item.is_object() {
                return Err(ApiError::validation(format!("[{index}]: must be a JSON object")));
            }
            parsed.push(from_value(item).map_err(|error| ApiError::validation(format!("[{index}].{}", error.detail.trim_start_matches('.'))))?);
        }
        Ok(Self(parsed))
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
    let value = parse_value(bytes)?;
    // serde would read a struct from an array, field by field in order; the API's bodies are
    // objects (`ApiJsonList` takes the one array body).
    if value.is_array() {
        return Err(ApiError::validation("Request body must be a JSON object"));
    }
    from_value(value)
}

/// First as a value: a syntax error is "invalid JSON", anything after is a shape error.
fn parse_value(bytes: &[u8]) -> Result<serde_json::Value, ApiError> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}" } else { bytes };
    serde_json::from_slice(bytes).map_err(|_| ApiError::validation("Invalid JSON in request body"))
}

/// `T` from a parsed body; the error names the field path, and never a Rust type.
fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let inner = without_type_names(&error.into_inner().to_string());
        if path == "." { ApiError::validation(inner) } else { ApiError::validation(format!("{path}: {inner}")) }
    })
}

/// serde's "expected struct ThreadCreate (with 5 elements)" → "expected an object".
fn without_type_names(message: &str) -> String {
    let Some(start) = message.find("expected struct ") else {
        return message.to_string();
    };
    let rest = &message[start + "expected struct ".len()..];
    let name_end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(rest.len());
    let mut tail = &rest[name_end..];
    if let Some(after) = tail.strip_prefix(" with ") {
        tail = after.find(" elements").map_or(tail, |end| &after[end + " elements".len()..]);
    }
    format!("{}expected an object{tail}", &message[..start])
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

    /// An array is not read as a struct's fields in order, and no message names a Rust type.
    #[test]
    fn bodies_are_objects() {
        assert_eq!(parse_json::<Body>(br#"[5, ["a"]]"#).expect_err("an array").detail, "Request body must be a JSON object");
        assert_eq!(without_type_names("invalid length 0, expected struct ThreadCreate with 5 elements"), "invalid length 0, expected an object");
        assert_eq!(without_type_names("invalid type: sequence, expected struct ThreadSearch"), "invalid type: sequence, expected an object");
        assert_eq!(without_type_names("missing field `x`"), "missing field `x`");
    }
}
