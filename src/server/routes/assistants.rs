//! `/assistants…`: the system assistants of `langgraph.json` and user-created ones, with
//! versions.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{Page, strip_reserved_metadata};
use crate::assistants::{Assistant, system_assistant_id};
use crate::auth::{Action, Authorization, Endpoint, Resource};
use crate::error::ApiError;
use crate::server::{AppState, service};
use crate::server::auth::Auth;
use crate::server::extract::{ApiJson, ApiPath, ApiQuery};
use crate::storage::{AssistantPatch, AssistantQuery, AssistantSortBy, IfExists, SortOrder, StorageError};
use crate::timestamp::{format_micros, now_micros};

pub(in crate::server) fn router() -> super::Routes {
    super::Routes::new()
        .route("/assistants", post(create))
        .route("/assistants/search", post(search))
        .route("/assistants/count", post(count))
        .route("/assistants/{assistant_id}", get(get_one).patch(patch).delete(delete))
        .route("/assistants/{assistant_id}/versions", post(versions))
        .route("/assistants/{assistant_id}/latest", post(set_latest))
}

/// The fields of an assistant, as `select` names them.
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

const ALL_FIELDS: [AssistantField; 10] = [
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

/// The wire form of an assistant, restricted to `select` when given.
fn view(assistant: &Assistant, select: Option<&[AssistantField]>) -> Value {
    let mut out = Map::new();
    for field in select.unwrap_or(&ALL_FIELDS) {
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

/// A version: an assistant without `updated_at`.
fn version_view(version: &Assistant) -> Value {
    let mut out = view(version, None);
    if let Value::Object(map) = &mut out {
        map.remove("updated_at");
    }
    out
}

/// A path id: a UUID, or (accepted everywhere, unlike the reference) a graph id.
pub(in crate::server) fn resolve_id(state: &AppState, raw: &str) -> Result<Uuid, ApiError> {
    match Uuid::parse_str(raw) {
        Ok(id) => Ok(id),
        Err(_) if state.graph_ids().any(|graph_id| graph_id == raw) => Ok(system_assistant_id(raw)),
        Err(_) => Err(ApiError::validation("Invalid assistant ID: must be a UUID")),
    }
}

fn check_graph(state: &AppState, graph_id: &str) -> Result<(), ApiError> {
    if state.graph_ids().any(|known| known == graph_id) {
        return Ok(());
    }
    let known: Vec<String> = state.graph_ids().map(|id| format!("'{id}'")).collect();
    Err(ApiError::not_found(format!("Graph '{graph_id}' not found. Expected one of: [{}]", known.join(", "))))
}

/// `config.configurable` and `context` are kept in sync; giving both is an error.
fn sync_context(config: &mut Map<String, Value>, context: &mut Option<Map<String, Value>>) -> Result<(), ApiError> {
    let configurable = config.get("configurable").and_then(Value::as_object).filter(|map| !map.is_empty()).cloned();
    match (configurable, context.as_ref()) {
        (Some(_), Some(given)) if !given.is_empty() => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "Cannot specify both configurable and context. Prefer setting context alone. Context was introduced in LangGraph 0.6.0 and is the long term planned replacement for configurable.",
        )),
        (Some(configurable), _) => {
            *context = Some(configurable);
            Ok(())
        }
        (None, Some(given)) => {
            config.insert("configurable".to_string(), Value::Object(given.clone()));
            Ok(())
        }
        (None, None) => Ok(()),
    }
}

/// The effective `metadata` of the first event for `resource`/`action`.
pub(in crate::server) fn effective_metadata(authorization: &Authorization, action: Action, fallback: Map<String, Value>) -> Map<String, Value> {
    authorization
        .event(Resource::Assistants, action)
        .and_then(|event| event.value.get("metadata"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or(fallback)
}

#[derive(Debug, Deserialize)]
struct AssistantCreate {
    graph_id: String,
    assistant_id: Option<Uuid>,
    config: Option<Map<String, Value>>,
    context: Option<Map<String, Value>>,
    metadata: Option<Map<String, Value>>,
    if_exists: Option<IfExists>,
    name: Option<String>,
    description: Option<String>,
}

async fn create(State(state): State<AppState>, auth: Auth, ApiJson(request): ApiJson<AssistantCreate>) -> Result<axum::Json<Value>, ApiError> {
    check_graph(&state, &request.graph_id)?;
    let assistant_id = request.assistant_id.unwrap_or_else(Uuid::new_v4);
    let mut config = request.config.unwrap_or_default();
    let mut context = request.context;
    sync_context(&mut config, &mut context)?;
    let mut metadata = request.metadata.unwrap_or_default();
    strip_reserved_metadata(&mut metadata);
    let name = request.name.unwrap_or_else(|| "Untitled".to_string());
    let endpoint = Endpoint::AssistantsCreate {
        assistant_id,
        graph_id: request.graph_id.clone(),
        config: config.clone(),
        context: context.clone(),
        metadata: metadata.clone(),
        name: name.clone(),
    };
    let authorization = auth.authorize(endpoint).await?;
    let metadata = effective_metadata(&authorization, Action::Create, metadata);
    let filter = authorization.filter(Resource::Assistants, Action::Create).cloned();
    let now = now_micros();
    let assistant = Assistant {
        assistant_id,
        graph_id: request.graph_id,
        name,
        description: request.description,
        config,
        context: context.unwrap_or_default(),
        metadata,
        version: 1,
        created_at: now,
        updated_at: now,
    };
    let if_exists = request.if_exists.unwrap_or(IfExists::Raise);
    let created = state.storage().create_assistant(assistant, if_exists, filter).await.map_err(|error| match error {
        StorageError::Conflict => ApiError::new(StatusCode::CONFLICT, format!("Assistant {assistant_id} already exists")),
        other => other.into(),
    })?;
    Ok(axum::Json(view(&created, None)))
}

async fn get_one(State(state): State<AppState>, auth: Auth, ApiPath(raw): ApiPath<String>) -> Result<axum::Json<Value>, ApiError> {
    let assistant_id = resolve_id(&state, &raw)?;
    let authorization = auth.authorize(Endpoint::AssistantsRead { assistant_id }).await?;
    let filter = authorization.filter(Resource::Assistants, Action::Read).cloned();
    let assistant = state.storage().get_assistant(assistant_id, filter).await.map_err(|error| match error {
        StorageError::NotFound => ApiError::not_found("Not Found"),
        other => other.into(),
    })?;
    Ok(axum::Json(view(&assistant, None)))
}

#[derive(Debug, Default, Deserialize)]
struct AssistantPatchRequest {
    graph_id: Option<String>,
    config: Option<Map<String, Value>>,
    context: Option<Map<String, Value>>,
    metadata: Option<Map<String, Value>>,
    name: Option<String>,
    description: Option<String>,
}

async fn patch(State(state): State<AppState>, auth: Auth, ApiPath(raw): ApiPath<String>, ApiJson(request): ApiJson<AssistantPatchRequest>) -> Result<axum::Json<Value>, ApiError> {
    let assistant_id = resolve_id(&state, &raw)?;
    if let Some(graph_id) = &request.graph_id {
        check_graph(&state, graph_id)?;
    }
    let mut config = request.config.clone().unwrap_or_default();
    let mut context = request.context;
    sync_context(&mut config, &mut context)?;
    let mut metadata = request.metadata.unwrap_or_default();
    strip_reserved_metadata(&mut metadata);
    let endpoint = Endpoint::AssistantsUpdate {
        assistant_id,
        graph_id: request.graph_id.clone(),
        config: config.clone(),
        context: context.clone(),
        metadata: metadata.clone(),
        name: request.name.clone(),
    };
    let authorization = auth.authorize(endpoint).await?;
    let metadata = effective_metadata(&authorization, Action::Update, metadata);
    let filter = authorization.filter(Resource::Assistants, Action::Update).cloned();
    let patch = AssistantPatch {
        graph_id: request.graph_id,
        config: request.config.is_some().then_some(config),
        context,
        metadata,
        name: request.name,
        description: request.description,
    };
    let updated = state.storage().patch_assistant(assistant_id, patch, filter, now_micros()).await.map_err(|error| match error {
        StorageError::NotFound => ApiError::not_found(format!("Assistant {assistant_id} not found")),
        other => other.into(),
    })?;
    Ok(axum::Json(view(&updated, None)))
}

#[derive(Debug, Default, Deserialize)]
struct DeleteQuery {
    delete_threads: Option<String>,
}

async fn delete(State(state): State<AppState>, auth: Auth, ApiPath(raw): ApiPath<String>, ApiQuery(query): ApiQuery<DeleteQuery>) -> Result<StatusCode, ApiError> {
    let assistant_id = resolve_id(&state, &raw)?;
    let delete_threads = super::is_true(query.delete_threads.as_deref());
    service::assistants::delete(&state, &auth, assistant_id, delete_threads).await?;
    Ok(StatusCode::NO_CONTENT)
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

/// Authorizes a search (or a count: `limit = offset = 0`) and builds the query: the handler
/// may narrow `metadata` in place; its filter is compiled into the SQL.
async fn authorized_query(state: &AppState, auth: &Auth, filters: AssistantFilters, limit: i64, offset: i64) -> Result<AssistantQuery, ApiError> {
    if let Some(graph_id) = &filters.graph_id {
        check_graph(state, graph_id)?;
    }
    let metadata = filters.metadata.unwrap_or_default();
    let endpoint = Endpoint::AssistantsSearch { graph_id: filters.graph_id.clone(), metadata: metadata.clone(), limit, offset };
    let authorization = auth.authorize(endpoint).await?;
    let metadata = effective_metadata(&authorization, Action::Search, metadata);
    Ok(AssistantQuery {
        graph_id: filters.graph_id,
        name: filters.name,
        metadata: Some(metadata).filter(|map| !map.is_empty()),
        auth: authorization.filter(Resource::Assistants, Action::Search).cloned(),
    })
}

async fn search(State(state): State<AppState>, auth: Auth, ApiJson(request): ApiJson<AssistantSearchRequest>) -> Result<Response, ApiError> {
    let page = Page::new(request.limit, request.offset)?;
    let query = authorized_query(&state, &auth, request.filters, page.limit, page.offset).await?;
    let sort_by = request.sort_by.unwrap_or(AssistantSortBy::CreatedAt);
    // `sort_by` without `sort_order` is descending, like the reference.
    let sort_order = request.sort_order.unwrap_or(SortOrder::Desc);
    let rows = state.storage().search_assistants(query, sort_by, sort_order, page.rows(), page.offset).await?;
    Ok(page.answer(rows, |assistant| view(assistant, request.select.as_deref())))
}

async fn count(State(state): State<AppState>, auth: Auth, ApiJson(filters): ApiJson<AssistantFilters>) -> Result<axum::Json<Value>, ApiError> {
    let query = authorized_query(&state, &auth, filters, 0, 0).await?;
    let count = state.storage().count_assistants(query).await?;
    Ok(axum::Json(Value::from(count)))
}

#[derive(Debug, Default, Deserialize)]
struct VersionsRequest {
    metadata: Option<Map<String, Value>>,
    limit: Option<i64>,
    offset: Option<i64>,
}

async fn versions(State(state): State<AppState>, auth: Auth, ApiPath(raw): ApiPath<String>, ApiJson(request): ApiJson<VersionsRequest>) -> Result<axum::Json<Value>, ApiError> {
    let assistant_id = resolve_id(&state, &raw)?;
    let Page { limit, offset } = Page::new(request.limit, request.offset)?;
    let authorization = auth.authorize(Endpoint::AssistantsRead { assistant_id }).await?;
    let filter = authorization.filter(Resource::Assistants, Action::Read).cloned();
    let metadata = request.metadata.filter(|map| !map.is_empty());
    let versions = state.storage().assistant_versions(assistant_id, metadata, filter, limit, offset).await?;
    if versions.is_empty() {
        return Err(ApiError::not_found(format!("Assistant {assistant_id} not found")));
    }
    Ok(axum::Json(Value::Array(versions.iter().map(version_view).collect())))
}

#[derive(Debug, Deserialize)]
struct SetLatestRequest {
    version: i64,
}

async fn set_latest(State(state): State<AppState>, auth: Auth, ApiPath(raw): ApiPath<String>, ApiJson(request): ApiJson<SetLatestRequest>) -> Result<axum::Json<Value>, ApiError> {
    let assistant_id = resolve_id(&state, &raw)?;
    let version = request.version;
    let authorization = auth.authorize(Endpoint::AssistantsSetLatest { assistant_id, version }).await?;
    let filter = authorization.filter(Resource::Assistants, Action::Update).cloned();
    let updated = state
        .storage()
        .set_latest_assistant_version(assistant_id, version, filter, now_micros())
        .await
        .map_err(|error| match error {
            StorageError::NotFound => ApiError::not_found(format!("Assistant {assistant_id} not found")),
            other => other.into(),
        })?
        .ok_or_else(|| ApiError::not_found(format!("Version {version} not found for assistant {assistant_id}")))?;
    Ok(axum::Json(view(&updated, None)))
}
