//! `/assistants…`: the system assistants registered for the graphs of `langgraph.json`.

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::assistants::{Assistant, metadata_contains};
use crate::auth::{Action, Endpoint, Filter, Resource};
use crate::error::ApiError;
use crate::server::AppState;
use crate::server::auth::Auth;
use crate::server::extract::ApiJson;
use crate::timestamp::format_micros;

pub(in crate::server) fn router() -> Router<AppState> {
    Router::new()
        .route("/assistants/search", post(search))
        .route("/assistants/count", post(count))
        .route("/assistants/{assistant_id}", get(get_one))
}

/// The fields of an assistant, as `select` and `sort_by` name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum AssistantField {
    AssistantId,
    GraphId,
    Name,
    Description,
    Config,
    Context,
    CreatedAt,
    UpdatedAt,
    Metadata,
    Version,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum AssistantSortBy {
    AssistantId,
    CreatedAt,
    UpdatedAt,
    Name,
    GraphId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum SortOrder {
    Asc,
    Desc,
}

/// Filters shared by search and count.
#[derive(Debug, Default, Deserialize)]
struct AssistantFilters {
    metadata: Option<Map<String, Value>>,
    graph_id: Option<String>,
    name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct AssistantSearchRequest {
    #[serde(flatten)]
    filters: AssistantFilters,
    limit: Option<i64>,
    offset: Option<i64>,
    sort_by: Option<AssistantSortBy>,
    sort_order: Option<SortOrder>,
    select: Option<Vec<AssistantField>>,
}

/// The wire form of an assistant, restricted to `select` when given.
fn view(assistant: &Assistant, select: Option<&[AssistantField]>) -> Value {
    const ALL: [AssistantField; 10] = [
        AssistantField::AssistantId,
        AssistantField::GraphId,
        AssistantField::Config,
        AssistantField::Context,
        AssistantField::CreatedAt,
        AssistantField::UpdatedAt,
        AssistantField::Metadata,
        AssistantField::Version,
        AssistantField::Name,
        AssistantField::Description,
    ];
    let mut out = Map::new();
    for field in select.unwrap_or(&ALL) {
        let (key, value) = match field {
            AssistantField::AssistantId => ("assistant_id", Value::from(assistant.assistant_id.to_string())),
            AssistantField::GraphId => ("graph_id", Value::from(assistant.graph_id.clone())),
            AssistantField::Config => ("config", Value::Object(assistant.config.clone())),
            AssistantField::Context => ("context", Value::Object(assistant.context.clone())),
            AssistantField::CreatedAt => ("created_at", Value::from(format_micros(assistant.created_at))),
            AssistantField::UpdatedAt => ("updated_at", Value::from(format_micros(assistant.updated_at))),
            AssistantField::Metadata => ("metadata", Value::Object(assistant.metadata.clone())),
            AssistantField::Version => ("version", Value::from(assistant.version)),
            AssistantField::Name => ("name", Value::from(assistant.name.clone())),
            AssistantField::Description => ("description", assistant.description.clone().map_or(Value::Null, Value::from)),
        };
        out.insert(key.to_string(), value);
    }
    Value::Object(out)
}

/// A path id: a UUID, or (accepted everywhere, unlike the reference) a graph id.
fn resolve_id(state: &AppState, raw: &str) -> Result<Uuid, ApiError> {
    match Uuid::parse_str(raw) {
        Ok(id) => Ok(id),
        Err(_) if state.graph_ids().any(|graph_id| graph_id == raw) => Ok(crate::assistants::system_assistant_id(raw)),
        Err(_) => Err(ApiError::validation("Invalid assistant ID: must be a UUID")),
    }
}

async fn get_one(State(state): State<AppState>, auth: Auth, Path(assistant_id): Path<String>) -> Result<axum::Json<Value>, ApiError> {
    let id = resolve_id(&state, &assistant_id)?;
    let authorization = auth.authorize(Endpoint::AssistantsRead { assistant_id: id }).await?;
    let filter = authorization.filter(Resource::Assistants, Action::Read);
    let assistant = state
        .assistants()
        .iter()
        .find(|assistant| assistant.assistant_id == id)
        .filter(|assistant| filter.is_none_or(|filter| filter.matches(&assistant.metadata)))
        .ok_or_else(|| ApiError::not_found("Not Found"))?;
    Ok(axum::Json(view(assistant, None)))
}

/// Authorizes a search (or a count: `limit = offset = 0`) and returns the effective metadata
/// filter (the handler may narrow it in place) and the auth filter.
async fn authorize_search(auth: &Auth, filters: &AssistantFilters, limit: i64, offset: i64) -> Result<(Option<Map<String, Value>>, Option<Filter>), ApiError> {
    let endpoint = Endpoint::AssistantsSearch { graph_id: filters.graph_id.clone(), metadata: filters.metadata.clone().unwrap_or_default(), limit, offset };
    let authorization = auth.authorize(endpoint).await?;
    let event = authorization.event(Resource::Assistants, Action::Search);
    let metadata = event.and_then(|event| event.value.get("metadata")).and_then(Value::as_object).cloned().filter(|metadata| !metadata.is_empty());
    Ok((metadata, event.and_then(|event| event.filter.clone())))
}

fn matching<'a>(state: &'a AppState, filters: &AssistantFilters, auth_filter: Option<&Filter>) -> Result<Vec<&'a Assistant>, ApiError> {
    if let Some(graph_id) = &filters.graph_id
        && !state.graph_ids().any(|known| known == graph_id)
    {
        let known: Vec<String> = state.graph_ids().map(|id| format!("'{id}'")).collect();
        return Err(ApiError::not_found(format!("Graph '{graph_id}' not found. Expected one of: [{}]", known.join(", "))));
    }
    let name = filters.name.as_ref().map(|name| name.to_lowercase());
    Ok(state
        .assistants()
        .iter()
        .filter(|assistant| filters.graph_id.as_ref().is_none_or(|graph_id| &assistant.graph_id == graph_id))
        .filter(|assistant| name.as_ref().is_none_or(|name| assistant.name.to_lowercase().contains(name)))
        .filter(|assistant| filters.metadata.as_ref().is_none_or(|wanted| metadata_contains(&assistant.metadata, wanted)))
        .filter(|assistant| auth_filter.is_none_or(|filter| filter.matches(&assistant.metadata)))
        .collect())
}

async fn search(State(state): State<AppState>, auth: Auth, ApiJson(mut request): ApiJson<AssistantSearchRequest>) -> Result<Response, ApiError> {
    let (limit, offset) = super::page_bounds(request.limit, request.offset)?;
    let (metadata, auth_filter) = authorize_search(&auth, &request.filters, limit, offset).await?;
    request.filters.metadata = metadata;
    let mut rows = matching(&state, &request.filters, auth_filter.as_ref())?;
    let sort_by = request.sort_by.unwrap_or(AssistantSortBy::CreatedAt);
    rows.sort_by(|a, b| {
        let ordering = match sort_by {
            AssistantSortBy::AssistantId => a.assistant_id.cmp(&b.assistant_id),
            AssistantSortBy::CreatedAt => a.created_at.cmp(&b.created_at),
            AssistantSortBy::UpdatedAt => a.updated_at.cmp(&b.updated_at),
            AssistantSortBy::Name => a.name.to_lowercase().cmp(&b.name.to_lowercase()),
            AssistantSortBy::GraphId => a.graph_id.to_lowercase().cmp(&b.graph_id.to_lowercase()),
        };
        // Ties keep a stable, deterministic order.
        ordering.then_with(|| a.assistant_id.cmp(&b.assistant_id))
    });
    // `sort_by` without `sort_order` is descending, like the reference.
    if request.sort_order.unwrap_or(SortOrder::Desc) == SortOrder::Desc {
        rows.reverse();
    }
    let total = rows.len();
    let (offset, limit) = (usize::try_from(offset).unwrap_or(usize::MAX), usize::try_from(limit).unwrap_or(10));
    let page: Vec<Value> = rows.iter().skip(offset).take(limit).map(|assistant| view(assistant, request.select.as_deref())).collect();
    let headers = super::pagination_headers(offset, limit, page.len(), total > offset.saturating_add(limit));
    Ok((headers, axum::Json(Value::Array(page))).into_response())
}

async fn count(State(state): State<AppState>, auth: Auth, ApiJson(mut filters): ApiJson<AssistantFilters>) -> Result<axum::Json<Value>, ApiError> {
    let (metadata, auth_filter) = authorize_search(&auth, &filters, 0, 0).await?;
    filters.metadata = metadata;
    Ok(axum::Json(Value::from(matching(&state, &filters, auth_filter.as_ref())?.len())))
}
