//! CORS as the reference answers it (spec http-api.md §1.7): preflights are answered here,
//! before routing and auth; responses to requests with `Origin` expose the paging and
//! `content-location` headers; every response varies on `Origin`.

use axum::extract::Request;
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

pub(super) async fn cors(request: Request, next: Next) -> Response {
    let has_origin = request.headers().contains_key(ORIGIN);
    if request.method() == Method::OPTIONS && has_origin && request.headers().contains_key(ACCESS_CONTROL_REQUEST_METHOD) {
        let requested_headers = request.headers().get(ACCESS_CONTROL_REQUEST_HEADERS).cloned();
        let mut response = (StatusCode::OK, "OK").into_response();
        let headers = response.headers_mut();
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        headers.insert(ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT, QUERY"));
        if let Some(requested) = requested_headers {
            headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, requested);
        }
        headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        headers.insert("access-control-allow-private-network", HeaderValue::from_static("true"));
        headers.insert(VARY, HeaderValue::from_static("Origin"));
        return response;
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if has_origin {
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("x-pagination-total, x-pagination-next, content-location"));
    }
    headers.append(VARY, HeaderValue::from_static("Origin"));
    response
}
