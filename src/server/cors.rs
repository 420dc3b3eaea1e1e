//! CORS as the reference answers it (spec http-api.md §1.7): preflights are answered here,
//! before routing and auth; responses to requests with `Origin` expose the paging and
//! `content-location` headers; every response varies on `Origin`. With `http.cors` in
//! `langgraph.json`, its policy instead, with the semantics of Starlette's `CORSMiddleware`
//! (which the reference uses for it): origins, methods and headers outside it are refused at
//! preflight (400) and get no CORS headers otherwise.

use axum::extract::{Request, State};
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::config::CorsSpec;
use crate::server::AppState;

pub(super) async fn cors(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match state.cors_policy() {
        Some(policy) => configured(policy, request, next).await,
        None => open(request, next).await,
    }
}

async fn open(request: Request, next: Next) -> Response {
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

/// `http.cors`, compiled once.
#[derive(Debug)]
pub(super) struct CorsPolicy {
    spec: CorsSpec,
    any_origin: bool,
    origin_regex: Option<regex::Regex>,
    any_header: bool,
    methods: String,
}

/// Request headers a preflight never needs to be allowed (Starlette's "safelisted" set).
const SAFELISTED: [&str; 4] = ["accept", "accept-language", "content-language", "content-type"];

impl CorsPolicy {
    pub(super) fn new(spec: &CorsSpec) -> Self {
        let any_method = spec.allow_methods.iter().any(|method| method == "*");
        let methods = if any_method { "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT".to_string() } else { spec.allow_methods.join(", ") };
        Self {
            any_origin: spec.allow_origins.iter().any(|origin| origin == "*"),
            // Checked when the config was read.
            origin_regex: spec.allow_origin_regex.as_deref().and_then(|pattern| regex::Regex::new(&format!("^(?:{pattern})$")).ok()),
            any_header: spec.allow_headers.iter().any(|header| header == "*"),
            methods,
            spec: spec.clone(),
        }
    }

    fn allows_origin(&self, origin: &str) -> bool {
        self.any_origin || self.spec.allow_origins.iter().any(|allowed| allowed == origin) || self.origin_regex.as_ref().is_some_and(|pattern| pattern.is_match(origin))
    }

    fn allows_method(&self, method: &str) -> bool {
        self.spec.allow_methods.iter().any(|allowed| allowed == "*" || allowed.eq_ignore_ascii_case(method))
    }

    fn allows_headers(&self, requested: &str) -> bool {
        self.any_header
            || requested.split(',').map(|header| header.trim().to_ascii_lowercase()).filter(|header| !header.is_empty()).all(|header| {
                SAFELISTED.contains(&header.as_str()) || self.spec.allow_headers.iter().any(|allowed| allowed.eq_ignore_ascii_case(&header))
            })
    }

    /// The `Access-Control-Allow-Origin` value for an allowed `origin`: `*` only when every
    /// origin is allowed and no credentials are.
    fn allow_origin(&self, origin: &HeaderValue) -> HeaderValue {
        if self.any_origin && !self.spec.allow_credentials { HeaderValue::from_static("*") } else { origin.clone() }
    }
}

async fn configured(policy: &CorsPolicy, request: Request, next: Next) -> Response {
    let origin = request.headers().get(ORIGIN).cloned();
    let Some(origin) = origin else { return next.run(request).await };
    let origin_text = origin.to_str().unwrap_or_default().to_string();
    if request.method() == Method::OPTIONS && request.headers().contains_key(ACCESS_CONTROL_REQUEST_METHOD) {
        let method = request.headers().get(ACCESS_CONTROL_REQUEST_METHOD).and_then(|value| value.to_str().ok()).unwrap_or_default();
        let requested_headers = request.headers().get(ACCESS_CONTROL_REQUEST_HEADERS).and_then(|value| value.to_str().ok()).unwrap_or_default().to_string();
        let mut refusals = Vec::new();
        if !policy.allows_origin(&origin_text) {
            refusals.push("origin");
        }
        if !policy.allows_method(method) {
            refusals.push("method");
        }
        if !policy.allows_headers(&requested_headers) {
            refusals.push("headers");
        }
        let mut response = if refusals.is_empty() {
            (StatusCode::OK, "OK").into_response()
        } else {
            (StatusCode::BAD_REQUEST, format!("Disallowed CORS {}", refusals.join(", "))).into_response()
        };
        let headers = response.headers_mut();
        if policy.allows_origin(&origin_text) {
            headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, policy.allow_origin(&origin));
        }
        if let Ok(methods) = HeaderValue::from_str(&policy.methods) {
            headers.insert(ACCESS_CONTROL_ALLOW_METHODS, methods);
        }
        let allowed_headers = if policy.any_header { requested_headers } else { policy.spec.allow_headers.join(", ") };
        if let Ok(allowed) = HeaderValue::from_str(&allowed_headers)
            && !allowed_headers.is_empty()
        {
            headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, allowed);
        }
        if policy.spec.allow_credentials {
            headers.insert(ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
        }
        headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from(policy.spec.max_age));
        headers.insert(VARY, HeaderValue::from_static("Origin"));
        return response;
    }
    let mut response = next.run(request).await;
    if policy.allows_origin(&origin_text) {
        let headers = response.headers_mut();
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, policy.allow_origin(&origin));
        if policy.spec.allow_credentials {
            headers.insert(ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
        }
        if let Ok(expose) = HeaderValue::from_str(&policy.spec.expose_headers.join(", "))
            && !policy.spec.expose_headers.is_empty()
        {
            headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, expose);
        }
        headers.append(VARY, HeaderValue::from_static("Origin"));
    }
    response
}
