//! Which requests the API serves and which go to the user's `http.app` (an ASGI app run in the
//! interpreter): `http.disable_*` route groups, and the app's own routes, which win over the
//! API's like in the reference. Installed only when `langgraph.json` asks for one of them.
//!
//! A request goes to the app when one of its routes matches the path and method; otherwise
//! the API serves it if one of the (enabled) API routes matches the path; anything else is the
//! app's too (its mounts, its middleware, its 404). With `http.enable_custom_route_auth` the
//! app's requests are authenticated first, exactly like the API's (the user reaches the app
//! as `request.user`); without it they are not (the reference's default).

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;

use crate::auth::Endpoint;
use crate::config::{DisabledRoutes, HttpSpec};
use crate::error::ApiError;
use crate::python::{AsgiMessage, AsgiRequest, CustomRoute};
use crate::server::AppState;
use crate::server::auth::request_info;

/// One path of a route table, in the `{param}` syntax axum and Starlette share
/// (`{name:path}` matches the rest of the path).
#[derive(Debug, Clone)]
struct PathPattern {
    segments: Vec<Segment>,
    /// A mount: matches the path and everything under it.
    prefix: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param,
    Rest,
}

impl PathPattern {
    fn parse(path: &str, prefix: bool) -> Self {
        let segments = path
            .trim_matches('/')
            .split('/')
            .filter(|segment| !segment.is_empty())
            .map(|segment| {
                if segment.starts_with('{') && segment.ends_with('}') && (segment.ends_with(":path}") || segment.starts_with("{*")) {
                    Segment::Rest
                } else if segment.contains('{') {
                    Segment::Param
                } else {
                    Segment::Literal(segment.to_string())
                }
            })
            .collect();
        Self { segments, prefix }
    }

    /// Whether `path` matches, segment by segment as axum and Starlette split it (an empty
    /// segment is a segment: `/threads//runs` has three); a `{name:path}` segment takes one or
    /// more segments, as many as leave the rest of the pattern to match the rest.
    fn matches(&self, path: &str) -> bool {
        let path = path.strip_prefix('/').unwrap_or(path);
        let parts: Vec<&str> = if path.is_empty() { Vec::new() } else { path.split('/').collect() };
        Self::match_from(&self.segments, &parts, self.prefix)
    }

    fn match_from(segments: &[Segment], parts: &[&str], prefix: bool) -> bool {
        let Some((segment, rest)) = segments.split_first() else { return prefix || parts.is_empty() };
        match segment {
            Segment::Rest => (1..=parts.len()).any(|taken| Self::match_from(rest, &parts[taken..], prefix)),
            Segment::Param => parts.first().is_some_and(|part| !part.is_empty()) && Self::match_from(rest, &parts[1..], prefix),
            Segment::Literal(literal) => parts.first() == Some(&literal.as_str()) && Self::match_from(rest, &parts[1..], prefix),
        }
    }
}

/// The route groups of `http.disable_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Group {
    Health,
    Meta,
    Assistants,
    Threads,
    Runs,
    Store,
    Mcp,
    A2a,
}

fn group_of(path: &str) -> Group {
    if path == "/ok" || path == "/" {
        Group::Health
    } else if path.starts_with("/assistants") {
        Group::Assistants
    } else if path.starts_with("/runs") || path.starts_with("/threads/{thread_id}/runs") || path == "/threads/{thread_id}/stream" {
        Group::Runs
    } else if path.starts_with("/threads") {
        Group::Threads
    } else if path.starts_with("/store") {
        Group::Store
    } else if path == "/mcp" {
        Group::Mcp
    } else if path.starts_with("/a2a/") || path == "/.well-known/agent-card.json" {
        Group::A2a
    } else {
        Group::Meta
    }
}

fn is_disabled(group: Group, disabled: DisabledRoutes) -> bool {
    match group {
        Group::Health => false,
        Group::Meta => disabled.meta,
        Group::Assistants => disabled.assistants,
        Group::Threads => disabled.threads,
        Group::Runs => disabled.runs,
        Group::Store => disabled.store,
        Group::Mcp => disabled.mcp,
        Group::A2a => disabled.a2a,
    }
}

/// A route of the user's app, as its router declares it.
#[derive(Debug, Clone)]
struct AppRoute {
    pattern: PathPattern,
    /// `None`: any method (mounts, routes without a method list).
    methods: Option<Vec<String>>,
}

/// The routing of a server with `http` settings: the enabled API paths and the user app.
#[derive(Debug)]
pub(in crate::server) struct Exposure {
    api: Vec<PathPattern>,
    app: Option<UserApp>,
    /// The `paths` of the app's OpenAPI document, merged into `/openapi.json`.
    openapi_paths: Option<serde_json::Map<String, serde_json::Value>>,
}

/// API paths the app's routes never shadow: the API's own documentation (the app's routes are
/// merged into it instead, like the reference does).
const API_FIRST: [&str; 2] = ["/openapi.json", "/docs"];

#[derive(Debug)]
struct UserApp {
    routes: Vec<AppRoute>,
    authenticated: bool,
    root_path: String,
}

impl Exposure {
    /// `None` when nothing in `http` changes the API's routing.
    pub(in crate::server) fn new(
        http: &HttpSpec,
        api_paths: &[&str],
        app_routes: Option<&[CustomRoute]>,
        openapi: Option<&serde_json::Value>,
        has_app: bool,
    ) -> Option<Arc<Self>> {
        if !has_app && http.disabled == DisabledRoutes::default() {
            return None;
        }
        let api = api_paths.iter().filter(|path| !is_disabled(group_of(path), http.disabled)).map(|path| PathPattern::parse(path, false)).collect();
        let app = has_app.then(|| UserApp {
            routes: app_routes
                .unwrap_or_default()
                .iter()
                .filter(|route| route.prefix || !API_FIRST.contains(&route.path.as_str()))
                .map(|route| AppRoute { pattern: PathPattern::parse(&route.path, route.prefix), methods: route.methods.clone() })
                .collect(),
            authenticated: http.enable_custom_route_auth,
            root_path: http.mount_prefix.clone().unwrap_or_default(),
        });
        let openapi_paths = openapi.and_then(serde_json::Value::as_object).cloned();
        Some(Arc::new(Self { api, app, openapi_paths }))
    }

    /// The app's documented paths (for `/openapi.json`).
    pub(in crate::server) fn openapi_paths(&self) -> Option<&serde_json::Map<String, serde_json::Value>> {
        self.openapi_paths.as_ref()
    }

    fn route(&self, method: &str, path: &str) -> Destination {
        if let Some(app) = &self.app
            && app.routes.iter().any(|route| route.pattern.matches(path) && route.methods.as_ref().is_none_or(|methods| methods.iter().any(|m| m == method)))
        {
            return Destination::App;
        }
        if self.api.iter().any(|pattern| pattern.matches(path)) {
            return Destination::Api;
        }
        if self.app.is_some() { Destination::App } else { Destination::Unknown }
    }
}

enum Destination {
    Api,
    App,
    Unknown,
}

/// The middleware (outside the auth gate: the app's routes are authenticated here, or not).
pub(in crate::server) async fn expose(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(exposure) = state.exposure() else { return next.run(request).await };
    let path = request.uri().path().to_string();
    match exposure.route(request.method().as_str(), &path) {
        Destination::Api => next.run(request).await,
        // A disabled group's route: as if it did not exist (authenticated first, like every
        // unknown route).
        Destination::Unknown => {
            let policy = state.auth_policy();
            if policy.is_enabled() {
                let (parts, _) = request.into_parts();
                if let Err(error) = policy.authorize(&request_info(&parts), Endpoint::None).await {
                    return ApiError::from(error).into_response();
                }
            }
            ApiError::reason(StatusCode::NOT_FOUND).into_response()
        }
        Destination::App => match &exposure.app {
            Some(app) => forward(&state, app, request).await.unwrap_or_else(IntoResponse::into_response),
            None => ApiError::reason(StatusCode::NOT_FOUND).into_response(),
        },
    }
}

/// Body bytes sent with the request itself; the rest is fed in parts.
const FIRST_PART: usize = 256 * 1024;

/// Feeds the rest of a request body to the app, chunk by chunk, until it ends, fails (the
/// client left: the app then waits for a body that never comes, until its call is dropped)
/// or the app no longer reads it.
async fn feed_body(python: crate::python::PythonHost, body_id: u64, body: Body) {
    let mut frames = body.into_data_stream();
    while let Some(frame) = frames.next().await {
        let Ok(chunk) = frame else { return };
        if !python.feed_http_body(body_id, chunk, true).await {
            return;
        }
    }
    python.feed_http_body(body_id, Bytes::new(), false).await;
}

/// Runs `request` through the user's app and streams its response back.
async fn forward(state: &AppState, app: &UserApp, request: Request) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let user = if app.authenticated && state.auth_policy().is_enabled() {
        let authorization = state.auth_policy().authorize(&request_info(&parts), Endpoint::None).await.map_err(ApiError::from)?;
        authorization.user
    } else {
        None
    };
    // The first part of the body goes with the request; the rest is fed as the app reads it
    // (never more than a few chunks held here), so a large upload is never buffered whole.
    // The first part must arrive within the header timeout, like an API request's body before
    // authentication: a stalled client does not hold a connection for longer.
    let first = tokio::time::timeout(state.limits().header_timeout, super::gate::read_prefix(body, FIRST_PART)).await;
    let (body, rest) = match first {
        Err(_) => return Err(ApiError::new(StatusCode::REQUEST_TIMEOUT, "Request body not received in time")),
        Ok(Ok(super::gate::Prefix::Whole(bytes))) => (bytes, None),
        Ok(Ok(super::gate::Prefix::Partial(chunks, rest))) => (Bytes::from(chunks.concat()), Some(rest)),
        Ok(Err(error)) => return Err(ApiError::new(StatusCode::BAD_REQUEST, format!("Cannot read the request body: {error}"))),
    };
    let body_id = rest.as_ref().map(|_| state.python().next_body_id());
    let client = parts.extensions.get::<ConnectInfo<std::net::SocketAddr>>().map(|info| (info.0.ip().to_string(), info.0.port()));
    let asgi = AsgiRequest {
        method: parts.method.as_str().to_string(),
        path: format!("{}{}", app.root_path, crate::server::auth::percent_decoded(parts.uri.path())),
        raw_path: format!("{}{}", app.root_path, parts.uri.path()).into_bytes(),
        query: parts.uri.query().unwrap_or_default().as_bytes().to_vec(),
        headers: parts.headers.iter().map(|(name, value)| (name.as_str().as_bytes().to_vec(), value.as_bytes().to_vec())).collect(),
        root_path: app.root_path.clone(),
        client,
        user: user.map(|user| user.to_json()),
        body_id,
    };
    let mut call = state.python().serve_http(asgi, body);
    if let (Some(body_id), Some(rest)) = (body_id, rest) {
        tokio::spawn(feed_body(state.python().clone(), body_id, rest));
    }
    let Some(AsgiMessage::Start { status, headers }) = call.next_message().await else {
        let detail = call.failure().await;
        tracing::warn!(error = %detail, "http.app failed before sending a response");
        return Err(ApiError::internal(detail));
    };
    let mut response = Response::new(Body::from_stream(call.into_body()));
    response.extensions_mut().insert(super::access::AnsweredByApp);
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(&name), HeaderValue::from_bytes(&value)) {
            response.headers_mut().append(name, value);
        }
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_like_the_routers() {
        let route = PathPattern::parse("/items/{item_id}", false);
        assert!(route.matches("/items/3"));
        assert!(!route.matches("/items"));
        assert!(!route.matches("/items/3/more"));
        let mount = PathPattern::parse("/static", true);
        assert!(mount.matches("/static/a/b.css"));
        assert!(mount.matches("/static"));
        assert!(!mount.matches("/statics"));
        let rest = PathPattern::parse("/files/{path:path}", false);
        assert!(rest.matches("/files/a/b"));
        assert!(PathPattern::parse("/", false).matches("/"));
        let middle = PathPattern::parse("/threads/{rest:path}/export", false);
        assert!(middle.matches("/threads/a/b/export"));
        assert!(!middle.matches("/threads/a"));
        assert!(!middle.matches("/threads/a/state"));
        // Empty segments count, as in the routers.
        assert!(!PathPattern::parse("/threads/{thread_id}", false).matches("/threads//runs"));
        assert!(!route.matches("/items/"));
    }

    #[test]
    fn app_routes_win_and_disabled_groups_fall_through() {
        let http = HttpSpec { disabled: DisabledRoutes { store: true, ..DisabledRoutes::default() }, ..HttpSpec::default() };
        let app = [
            CustomRoute { path: "/hello".into(), methods: Some(vec!["GET".into()]), prefix: false },
            CustomRoute { path: "/threads/{thread_id}".into(), methods: Some(vec!["PUT".into()]), prefix: false },
        ];
        let exposure = Exposure::new(&http, &["/ok", "/threads/{thread_id}", "/store/items"], Some(&app), None, true).expect("routing");
        assert!(matches!(exposure.route("GET", "/hello"), Destination::App));
        assert!(matches!(exposure.route("PUT", "/threads/x"), Destination::App));
        assert!(matches!(exposure.route("GET", "/threads/x"), Destination::Api));
        assert!(matches!(exposure.route("PUT", "/store/items"), Destination::App));
        let without_app = Exposure::new(&http, &["/ok", "/store/items"], None, None, false).expect("routing");
        assert!(matches!(without_app.route("PUT", "/store/items"), Destination::Unknown));
        assert!(matches!(without_app.route("GET", "/ok"), Destination::Api));
        assert!(Exposure::new(&HttpSpec::default(), &["/ok"], None, None, false).is_none());
    }
}
