//! One file per resource: its router, handlers and wire shapes.

pub(super) mod a2a;
pub(super) mod assistants;
pub(super) mod crons;
pub(super) mod events;
pub(super) mod graphs;
pub(super) mod mcp;
pub(super) mod runs;
pub(super) mod state;
pub(super) mod store;
pub(super) mod system;
pub(super) mod threads;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use uuid::Uuid;

use crate::error::ApiError;
use crate::server::AppState;

/// A resource's routes: the router, and the paths it registered (the route-coverage test
/// checks every one against its auth events; see `tests/integration/routes.rs`).
pub(super) struct Routes {
    pub(super) router: Router<AppState>,
    pub(super) paths: Vec<&'static str>,
}

impl Routes {
    pub(super) fn new() -> Self {
        Self { router: Router::new(), paths: Vec::new() }
    }

    pub(super) fn route(mut self, path: &'static str, methods: MethodRouter<AppState>) -> Self {
        self.paths.push(path);
        self.router = self.router.route(path, methods);
        self
    }
}

/// Every resource's routes.
pub(super) fn all() -> [Routes; 11] {
    [
        system::router(),
        assistants::router(),
        graphs::router(),
        crons::router(),
        runs::router(),
        events::router(),
        state::router(),
        threads::router(),
        store::router(),
        mcp::router(),
        a2a::router(),
    ]
}

/// A search's page: `limit` (1..=1000, default 10) and `offset` (≥ 0, default 0). Storage is
/// asked for one row more than the page, which tells whether a next page exists.
#[derive(Debug, Clone, Copy)]
pub(super) struct Page {
    pub(super) limit: i64,
    pub(super) offset: i64,
}

impl Page {
    pub(super) fn new(limit: Option<i64>, offset: Option<i64>) -> Result<Self, ApiError> {
        let limit = limit.unwrap_or(10);
        let offset = offset.unwrap_or(0);
        if !(1..=1000).contains(&limit) {
            return Err(ApiError::validation(format!("limit: {limit} is not between 1 and 1000")));
        }
        if offset < 0 {
            return Err(ApiError::validation(format!("offset: {offset} is less than the minimum of 0")));
        }
        Ok(Self { limit, offset })
    }

    /// How many rows to read.
    pub(super) fn rows(self) -> i64 {
        self.limit + 1
    }

    /// The answer: the page's rows as `view` shows them, with `X-Pagination-Total` as the
    /// reference computes it (a lower bound `offset+limit+1` when there is a next page) and
    /// `X-Pagination-Next` when more rows follow.
    pub(super) fn answer<T>(self, mut rows: Vec<T>, view: impl Fn(&T) -> serde_json::Value) -> Response {
        let (limit, offset) = (usize::try_from(self.limit).unwrap_or(10), usize::try_from(self.offset).unwrap_or(0));
        let has_more = rows.len() > limit;
        rows.truncate(limit);
        let mut headers = HeaderMap::new();
        let next = offset.saturating_add(limit);
        if has_more {
            headers.insert("x-pagination-next", HeaderValue::from(next));
            headers.insert("x-pagination-total", HeaderValue::from(next + 1));
        } else {
            headers.insert("x-pagination-total", HeaderValue::from(offset + rows.len()));
        }
        (headers, axum::Json(serde_json::Value::Array(rows.iter().map(view).collect()))).into_response()
    }
}

/// A path id that must be a UUID; `what` names it in the 422 (`thread`, `run`, `cron`).
pub(super) fn path_uuid(raw: &str, what: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::validation(format!("Invalid {what} ID: must be a UUID")))
}

/// The keys of a client's `checkpoint` object that name a position in a thread: everything
/// else (`thread_id` above all, and LangGraph's internal `__pregel_*` keys) is dropped, so a
/// checkpoint can only ever point into the thread of the route.
pub(super) fn checkpoint_position(checkpoint: Option<serde_json::Map<String, serde_json::Value>>) -> impl Iterator<Item = (String, serde_json::Value)> {
    const KEYS: [&str; 3] = ["checkpoint_id", "checkpoint_ns", "checkpoint_map"];
    checkpoint.into_iter().flatten().filter(|(key, value)| KEYS.contains(&key.as_str()) && !value.is_null())
}

/// Metadata keys the server owns, silently dropped from write requests (spec §1.5).
pub(super) fn strip_reserved_metadata(metadata: &mut serde_json::Map<String, serde_json::Value>) {
    for key in ["thread_id", "assistant_id", "run_id", "cron_id", "counters_since_delta_snapshot"] {
        metadata.remove(key);
    }
}

/// A query string as (key, value) pairs, decoded, repeated keys kept.
pub(super) fn query_pairs(query: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    serde_urlencoded::from_str(query.unwrap_or_default()).map_err(|error| ApiError::validation(format!("invalid query string: {error}")))
}

/// The last non-empty value of `name` (an empty value counts as absent).
pub(super) fn last<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().rev().find(|(key, value)| key == name && !value.is_empty()).map(|(_, value)| value.as_str())
}

/// Query booleans: `true`, `1`, `yes` (any case) are true, anything else false.
pub(super) fn is_true(value: Option<&str>) -> bool {
    value.is_some_and(|value| ["true", "1", "yes"].contains(&value.to_ascii_lowercase().as_str()))
}
