//! The `Auth` extractor: what a protected handler needs to authorize its request once.

use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, StatusCode};

use crate::auth::{AuthError, AuthPolicy, AuthUser, Authorization, Endpoint, RequestInfo};
use crate::error::ApiError;
use crate::server::AppState;
use crate::server::gate::Authenticated;

/// The policy plus the request's auth-relevant parts. Taking it costs no Python call; the
/// handler calls [`Auth::authorize`] once with its [`Endpoint`].
#[derive(Debug, Clone)]
pub(in crate::server) struct Auth {
    policy: AuthPolicy,
    request: Arc<RequestInfo>,
    /// The gate's flag for this request (see `gate.rs`), set once authenticated.
    authenticated: Option<Authenticated>,
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let policy = state.auth_policy().clone();
        let request = match parts.extensions.get::<Arc<RequestInfo>>() {
            Some(info) => Arc::clone(info),
            // The handlers' request, or the headers `http.configurable_headers` copies into runs.
            None if policy.is_enabled() || state.config().http.configurable_headers.is_some() => Arc::new(request_info(parts)),
            None => Arc::default(),
        };
        Ok(Self { policy, request, authenticated: parts.extensions.get::<Authenticated>().cloned() })
    }
}

/// What authenticate sees of a request (built once per request, by the gate).
pub(in crate::server) fn request_info(parts: &Parts) -> RequestInfo {
    let path = percent_decoded(parts.uri.path());
    let mut headers: Vec<(String, Vec<u8>)> = parts.headers.iter().map(|(name, value)| (name.as_str().to_string(), value.as_bytes().to_vec())).collect();
    // Like the reference, thread and run requests carry an `x-request-id` (generated if absent).
    if (path.starts_with("/threads") || path.starts_with("/runs")) && !parts.headers.contains_key("x-request-id") {
        headers.push(("x-request-id".to_string(), uuid::Uuid::new_v4().to_string().into_bytes()));
    }
    RequestInfo {
        method: parts.method.as_str().to_string(),
        raw_path: parts.uri.path().to_string(),
        path,
        query: parts.uri.query().unwrap_or_default().to_string(),
        headers,
        client: parts.extensions.get::<ConnectInfo<std::net::SocketAddr>>().map(|info| info.0),
        server: None,
        acting_as: None,
    }
}

/// `%XX` → byte, for the decoded `path` authenticate sees.
pub(in crate::server) fn percent_decoded(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%'
            && index + 2 < bytes.len()
            && let (Some(high), Some(low)) = (hex(bytes[index + 1]), hex(bytes[index + 2]))
        {
            out.push(high * 16 + low);
            index += 3;
            continue;
        }
        out.push(bytes[index]);
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(byte: u8) -> Option<u8> {
    char::from(byte).to_digit(16).and_then(|digit| u8::try_from(digit).ok())
}

impl Auth {
    /// Work the server does for `user` without a request of theirs (a cron firing, as its
    /// creator: spec auth.md §3.7): authenticate is not run, the handlers are, with this user.
    /// `method` and `path` are what the handlers' request would have been.
    pub(in crate::server) fn acting_as(policy: AuthPolicy, user: Option<AuthUser>, method: &str, path: String) -> Self {
        let request = RequestInfo { method: method.to_string(), raw_path: path.clone(), path, acting_as: user, ..RequestInfo::default() };
        Self { policy, request: Arc::new(request), authenticated: None }
    }

    /// Authenticates and authorizes the events of `endpoint` (one Python round trip).
    pub(in crate::server) async fn authorize(&self, endpoint: Endpoint) -> Result<Authorization, ApiError> {
        let mut authorization = self.policy.authorize(&self.request, endpoint).await.map_err(ApiError::from)?;
        if let Some(authenticated) = &self.authenticated {
            authenticated.mark();
        }
        // Without custom auth nothing enters Python; the user acted for is still the run's.
        if authorization.user.is_none() {
            authorization.user.clone_from(&self.request.acting_as);
        }
        Ok(authorization)
    }

    /// The request's headers (none for work done as a user without a request).
    pub(in crate::server) fn headers(&self) -> &[(String, Vec<u8>)] {
        &self.request.headers
    }

    /// Authentication only.
    pub(in crate::server) async fn authenticate(&self) -> Result<Authorization, ApiError> {
        self.authorize(Endpoint::None).await
    }
}

/// The detail of a 503 for handlers that did not answer in time (a cron firing tells it from
/// an unreachable database by it).
pub(in crate::server) const AUTH_TIMED_OUT: &str = "Authentication timed out";

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Refused { status, detail, headers } => {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let mut api = ApiError::new(status, detail);
                for (name, value) in headers {
                    if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
                        api.headers.append(name, value);
                    }
                }
                api
            }
            AuthError::Failed => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
            AuthError::InvalidFilter(error) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
            AuthError::TimedOut => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, AUTH_TIMED_OUT),
        }
    }
}
