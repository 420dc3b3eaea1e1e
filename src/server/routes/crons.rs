//! `/runs/crons…` and `/threads/{id}/runs/crons`: scheduled runs. (Firing them belongs with
//! runs.)

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{Page, path_uuid, strip_reserved_metadata};
use crate::assistants::system_assistant_id;
use crate::auth::{Action, Endpoint, Resource};
use crate::crons::{Cron, Schedule, next_run, parse_timestamp, time_zone};
use crate::error::ApiError;
use crate::server::AppState;
use crate::server::service::crons::CronPatch;
use crate::server::auth::Auth;
use crate::server::extract::{ApiJson, ApiPath};
use crate::storage::{CronQuery, CronSortBy, SortOrder, StorageError};
use crate::timestamp::{format_micros, now_micros};

pub(in crate::server) fn router() -> super::Routes {
    super::Routes::new()
        .route("/runs/crons", post(create_stateless))
        .route("/threads/{thread_id}/runs/crons", post(create_for_thread))
        .route("/runs/crons/search", post(search))
        .route("/runs/crons/count", post(count))
        .route("/runs/crons/{cron_id}", get(get_one).patch(patch).delete(delete))
}

/// Cron fields, as `select` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum CronField {
    CronId,
    AssistantId,
    ThreadId,
    OnRunCompleted,
    EndTime,
    Schedule,
    Timezone,
    CreatedAt,
    UpdatedAt,
    UserId,
    Payload,
    NextRunDate,
    Metadata,
    Enabled,
}

const ALL_FIELDS: [CronField; 14] = [
    CronField::CronId,
    CronField::AssistantId,
    CronField::ThreadId,
    CronField::OnRunCompleted,
    CronField::EndTime,
    CronField::Schedule,
    CronField::Timezone,
    CronField::CreatedAt,
    CronField::UpdatedAt,
    CronField::Payload,
    CronField::UserId,
    CronField::NextRunDate,
    CronField::Metadata,
    CronField::Enabled,
];

/// A whole-second time without a fraction, like the reference's `next_run_date`.
fn format_whole(micros: i64) -> String {
    let text = format_micros(micros);
    if micros % 1_000_000 == 0 { text.replacen(".000000", "", 1) } else { text }
}

fn view(cron: &Cron, select: Option<&[CronField]>) -> Value {
    let optional = |value: Option<String>| value.map_or(Value::Null, Value::from);
    let mut out = Map::new();
    for field in select.unwrap_or(&ALL_FIELDS) {
        let (key, value) = match field {
            CronField::CronId => ("cron_id", Value::from(cron.cron_id.to_string())),
            CronField::AssistantId => ("assistant_id", Value::from(cron.assistant_id.to_string())),
            CronField::ThreadId => ("thread_id", optional(cron.thread_id.map(|id| id.to_string()))),
            CronField::OnRunCompleted => ("on_run_completed", optional(cron.on_run_completed.clone())),
            CronField::EndTime => ("end_time", optional(cron.end_time.clone())),
            CronField::Schedule => ("schedule", Value::from(cron.schedule.clone())),
            CronField::Timezone => ("timezone", optional(cron.timezone.clone())),
            CronField::CreatedAt => ("created_at", Value::from(format_micros(cron.created_at))),
            CronField::UpdatedAt => ("updated_at", Value::from(format_micros(cron.updated_at))),
            CronField::Payload => ("payload", Value::Object(cron.payload.clone())),
            CronField::UserId => ("user_id", optional(cron.user_id.clone())),
            CronField::NextRunDate => ("next_run_date", optional(cron.next_run_date.map(format_whole))),
            CronField::Metadata => ("metadata", Value::Object(cron.metadata.clone())),
            CronField::Enabled => ("enabled", Value::Bool(cron.enabled)),
        };
        out.insert(key.to_string(), value);
    }
    Value::Object(out)
}

fn invalid_schedule(schedule: &str, reason: &str) -> ApiError {
    ApiError::validation(crate::server::service::crons::invalid_schedule(schedule, reason))
}

/// Reads an optional string field of the raw body (422 naming it when it is not a string).
fn string_field(body: &Map<String, Value>, key: &str) -> Result<Option<String>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(other) => Err(ApiError::validation(format!("{key}: expected a string, got {other}"))),
    }
}

fn object_field(body: &Map<String, Value>, key: &str) -> Result<Option<Map<String, Value>>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map.clone())),
        Some(other) => Err(ApiError::validation(format!("{key}: expected an object, got {other}"))),
    }
}

fn bool_field(body: &Map<String, Value>, key: &str) -> Result<Option<bool>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(flag)) => Ok(Some(*flag)),
        Some(other) => Err(ApiError::validation(format!("{key}: expected true or false, got {other}"))),
    }
}

/// A cron's `webhook`, checked like a run's when the cron is written (not only when it fires).
fn check_webhook(state: &AppState, body: &Map<String, Value>) -> Result<(), ApiError> {
    match string_field(body, "webhook")? {
        Some(url) => crate::runs::webhook::check(&url, &state.config().webhooks.url).map_err(ApiError::validation),
        None => Ok(()),
    }
}

fn on_run_completed(body: &Map<String, Value>) -> Result<Option<String>, ApiError> {
    match string_field(body, "on_run_completed")? {
        None => Ok(None),
        Some(value) if value == "delete" || value == "keep" => Ok(Some(value)),
        Some(value) => Err(ApiError::validation(format!("on_run_completed: unknown variant `{value}`, expected `delete` or `keep`"))),
    }
}

async fn create_stateless(State(state): State<AppState>, auth: Auth, ApiJson(body): ApiJson<Map<String, Value>>) -> Result<axum::Json<Value>, ApiError> {
    create(state, auth, None, body).await
}

async fn create_for_thread(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(raw): ApiPath<String>,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> Result<axum::Json<Value>, ApiError> {
    let thread_id = path_uuid(&raw, "thread")?;
    create(state, auth, Some(thread_id), body).await
}

async fn create(state: AppState, auth: Auth, thread_id: Option<Uuid>, mut body: Map<String, Value>) -> Result<axum::Json<Value>, ApiError> {
    let Some(schedule_text) = string_field(&body, "schedule")? else {
        return Err(ApiError::validation("schedule: is a required property"));
    };
    let schedule = Schedule::parse(&schedule_text).map_err(|reason| invalid_schedule(&schedule_text, &reason))?;
    let Some(raw_assistant) = string_field(&body, "assistant_id")? else {
        return Err(ApiError::validation("assistant_id: is a required property"));
    };
    let timezone = string_field(&body, "timezone")?;
    let zone = time_zone(timezone.as_deref()).map_err(ApiError::validation)?;
    let end_time = string_field(&body, "end_time")?;
    let end_time_micros = match &end_time {
        Some(text) => Some(parse_timestamp(text).ok_or_else(|| ApiError::validation(format!("end_time: `{text}` is not a date-time")))?),
        None => None,
    };
    let on_run_completed = if thread_id.is_some() { None } else { Some(on_run_completed(&body)?.unwrap_or_else(|| "delete".to_string())) };
    let enabled = bool_field(&body, "enabled")?.unwrap_or(true);
    check_webhook(&state, &body)?;
    crate::server::service::runs::check_stream_mode(&body)?;
    let mut metadata = object_field(&body, "metadata")?.unwrap_or_default();
    strip_reserved_metadata(&mut metadata);

    let not_found_assistant = || ApiError::not_found(format!("Assistant '{raw_assistant}' not found"));
    let assistant_id = match Uuid::parse_str(&raw_assistant) {
        Ok(id) => id,
        Err(_) if state.graph_ids().any(|graph_id| graph_id == raw_assistant) => system_assistant_id(&raw_assistant),
        Err(_) => return Err(not_found_assistant()),
    };
    let assistant = state.storage().get_assistant(assistant_id, None).await.map_err(|error| match error {
        StorageError::NotFound => not_found_assistant(),
        other => other.into(),
    })?;
    let is_system = assistant.metadata.get("created_by").and_then(Value::as_str) == Some("system");

    let cron_id = Uuid::now_v7();
    body.insert("assistant_id".to_string(), Value::from(assistant_id.to_string()));
    let config = body.entry("config").or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(config) = config {
        let configurable = config.entry("configurable").or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(configurable) = configurable {
            configurable.insert("cron_id".to_string(), Value::from(cron_id.to_string()));
        }
    }
    let endpoint = Endpoint::CronsCreate {
        payload: body.clone(),
        schedule: schedule_text.clone(),
        cron_id,
        thread_id,
        end_time: end_time.clone().map(Value::from),
        metadata: metadata.clone(),
        assistant_id: assistant_id.to_string(),
        assistant_read: !is_system,
    };
    let authorization = auth.authorize(endpoint).await?;
    let event = authorization.event(Resource::Crons, Action::Create);
    // What the handler made of the value is what is kept: its `payload` (if it edited one)
    // and its `metadata`, which the payload carries too (the runs the cron starts get it).
    if let Some(payload) = event.and_then(|event| event.value.get("payload")).and_then(Value::as_object) {
        body.clone_from(payload);
        body.insert("assistant_id".to_string(), Value::from(assistant_id.to_string()));
    }
    let metadata = event.and_then(|event| event.value.get("metadata")).and_then(Value::as_object).cloned().unwrap_or(metadata);
    body.insert("metadata".to_string(), Value::Object(metadata.clone()));
    if let Some(filter) = authorization.filter(Resource::Assistants, Action::Read)
        && !filter.matches(&assistant.metadata)
    {
        return Err(not_found_assistant());
    }
    if let Some(thread_id) = thread_id {
        let filter = authorization.filter(Resource::Threads, Action::Read).cloned();
        state.storage().get_thread(thread_id, filter).await.map_err(|error| match error {
            StorageError::NotFound => ApiError::not_found(format!(
                "Thread with ID '{thread_id}' not found. Please verify the ID is correct and the thread hasn't been deleted or expired."
            )),
            other => other.into(),
        })?;
    }
    let user_id = authorization.user.as_ref().map_or_else(String::new, |user| user.identity.clone());
    let now = now_micros();
    let cron = Cron {
        cron_id,
        assistant_id,
        thread_id,
        on_run_completed,
        end_time,
        end_time_micros,
        schedule: schedule_text,
        timezone,
        created_at: now,
        updated_at: now,
        payload: body,
        user_id: Some(user_id),
        next_run_date: next_run(&schedule, &zone, now),
        metadata,
        enabled,
        creator: authorization.user.clone(),
    };
    let stored = cron.clone();
    state.storage().create_cron(stored).await?;
    Ok(axum::Json(view(&cron, None)))
}

async fn get_one(State(state): State<AppState>, auth: Auth, ApiPath(raw): ApiPath<String>) -> Result<axum::Json<Value>, ApiError> {
    let cron_id = path_uuid(&raw, "cron")?;
    let authorization = auth.authorize(Endpoint::CronsRead { cron_id }).await?;
    let filter = authorization.filter(Resource::Crons, Action::Read).cloned();
    let cron = state.storage().get_cron(cron_id, filter).await.map_err(|error| match error {
        StorageError::NotFound => ApiError::not_found("Not Found"),
        other => other.into(),
    })?;
    Ok(axum::Json(view(&cron, None)))
}

async fn patch(State(state): State<AppState>, auth: Auth, ApiPath(raw): ApiPath<String>, ApiJson(body): ApiJson<Map<String, Value>>) -> Result<axum::Json<Value>, ApiError> {
    let cron_id = path_uuid(&raw, "cron")?;
    if body.is_empty() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "Request body cannot be empty"));
    }
    let schedule = string_field(&body, "schedule")?;
    let parsed_schedule = schedule.as_deref().map(|text| Schedule::parse(text).map_err(|reason| invalid_schedule(text, &reason))).transpose()?;
    let timezone = string_field(&body, "timezone")?;
    if let Some(name) = &timezone {
        time_zone(Some(name)).map_err(ApiError::validation)?;
    }
    let end_time = match body.get("end_time") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(text)) => Some(Some((text.clone(), parse_timestamp(text).ok_or_else(|| ApiError::validation(format!("end_time: `{text}` is not a date-time")))?))),
        Some(other) => return Err(ApiError::validation(format!("end_time: expected a date-time, got {other}"))),
    };
    let enabled = bool_field(&body, "enabled")?;
    check_webhook(&state, &body)?;
    crate::server::service::runs::check_stream_mode(&body)?;
    let completed = on_run_completed(&body)?;
    let mut new_metadata = object_field(&body, "metadata")?;
    if let Some(metadata) = &mut new_metadata {
        strip_reserved_metadata(metadata);
    }

    // `null` means absent (spec): a handler never receives `metadata: None` to stamp.
    let mut fields = body.clone();
    fields.retain(|_, value| !value.is_null());
    let authorization = auth.authorize(Endpoint::CronsUpdate { cron_id, fields }).await?;
    let new_metadata = authorization
        .event(Resource::Crons, Action::Update)
        .and_then(|event| event.value.get("metadata"))
        .and_then(Value::as_object)
        .cloned()
        .or(new_metadata);
    let filter = authorization.filter(Resource::Crons, Action::Update).cloned();
    let not_found = || ApiError::not_found(format!("Cron '{cron_id}' not found"));
    let mut cron = state.storage().get_cron(cron_id, filter).await.map_err(|error| match error {
        StorageError::NotFound => not_found(),
        other => other.into(),
    })?;

    let changes = CronPatch { body, metadata: new_metadata, enabled, on_run_completed: completed, end_time, schedule: schedule.zip(parsed_schedule), timezone };
    let now = now_micros();
    changes.apply(&mut cron, now).map_err(ApiError::validation)?;
    let stored = cron.clone();
    state.storage().update_cron(stored).await.map_err(|error| match error {
        StorageError::NotFound => not_found(),
        other => other.into(),
    })?;
    Ok(axum::Json(view(&cron, None)))
}

async fn delete(State(state): State<AppState>, auth: Auth, ApiPath(raw): ApiPath<String>) -> Result<StatusCode, ApiError> {
    let cron_id = path_uuid(&raw, "cron")?;
    let authorization = auth.authorize(Endpoint::CronsDelete { cron_id }).await?;
    let filter = authorization.filter(Resource::Crons, Action::Delete).cloned();
    state.storage().delete_cron(cron_id, filter).await.map_err(|error| match error {
        StorageError::NotFound => ApiError::not_found("Not Found"),
        other => other.into(),
    })?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Default, Deserialize)]
struct CronFilters {
    assistant_id: Option<String>,
    thread_id: Option<Uuid>,
    enabled: Option<bool>,
    metadata: Option<Map<String, Value>>,
}

#[derive(Debug, Default, Deserialize)]
struct CronSearch {
    #[serde(flatten)]
    filters: CronFilters,
    limit: Option<i64>,
    offset: Option<i64>,
    sort_by: Option<CronSortBy>,
    sort_order: Option<SortOrder>,
    select: Option<Vec<CronField>>,
}

async fn authorized_query(state: &AppState, auth: &Auth, filters: CronFilters, limit: i64, offset: i64) -> Result<CronQuery, ApiError> {
    let assistant_id = match &filters.assistant_id {
        None => None,
        Some(raw) => Some(match Uuid::parse_str(raw) {
            Ok(id) => id,
            Err(_) if state.graph_ids().any(|graph_id| graph_id == raw) => system_assistant_id(raw),
            Err(_) => return Err(ApiError::validation("assistant_id: must be a UUID")),
        }),
    };
    let metadata = filters.metadata.unwrap_or_default();
    let endpoint = Endpoint::CronsSearch {
        assistant_id: assistant_id.map(|id| id.to_string()),
        thread_id: filters.thread_id.map(|id| id.to_string()),
        limit,
        offset,
        metadata: metadata.clone(),
    };
    let authorization = auth.authorize(endpoint).await?;
    let metadata = authorization
        .event(Resource::Crons, Action::Search)
        .and_then(|event| event.value.get("metadata"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or(metadata);
    let thread_action = if filters.thread_id.is_some() { Action::Read } else { Action::Search };
    Ok(CronQuery {
        assistant_id,
        thread_id: filters.thread_id,
        enabled: filters.enabled,
        metadata: Some(metadata).filter(|map| !map.is_empty()),
        auth: authorization.filter(Resource::Crons, Action::Search).cloned(),
        thread_auth: authorization.filter(Resource::Threads, thread_action).cloned(),
    })
}

async fn search(State(state): State<AppState>, auth: Auth, ApiJson(request): ApiJson<CronSearch>) -> Result<Response, ApiError> {
    let page = Page::new(request.limit, request.offset)?;
    let query = authorized_query(&state, &auth, request.filters, page.limit, page.offset).await?;
    let sort_by = request.sort_by.unwrap_or(CronSortBy::CreatedAt);
    let sort_order = request.sort_order.unwrap_or(SortOrder::Desc);
    let rows = state.storage().search_crons(query, sort_by, sort_order, page.rows(), page.offset).await?;
    Ok(page.answer(rows, |cron| view(cron, request.select.as_deref())))
}

async fn count(State(state): State<AppState>, auth: Auth, ApiJson(filters): ApiJson<CronFilters>) -> Result<axum::Json<Value>, ApiError> {
    let query = authorized_query(&state, &auth, filters, 0, 0).await?;
    let count = state.storage().count_crons(query).await?;
    Ok(axum::Json(Value::from(count)))
}
