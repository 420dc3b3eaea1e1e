//! `/store…`: cross-thread memory items.
//!
//! Store events differ from the others: after the handler runs, the route re-reads the
//! event value's top-level keys (a handler may rewrite the namespace) and validates them again.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{post, put};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::auth::{Action, Authorization, Endpoint, Resource};
use crate::error::ApiError;
use crate::server::AppState;
use crate::server::auth::Auth;
use crate::server::extract::ApiJson;
use crate::storage::{ItemWrite, StoreItem, store_filter};
use crate::store::index::IndexFields;
use crate::store::{self, Condition, StoreError};
use crate::timestamp::{format_micros, now_micros};

pub(in crate::server) fn router() -> super::Routes {
    super::Routes::new()
        .route("/store/items", put(put_item).get(get_item).delete(delete_item))
        .route("/store/items/search", post(search))
        .route("/store/namespaces", post(namespaces))
}

fn view(item: &StoreItem) -> Value {
    json!({
        "namespace": item.namespace,
        "key": item.key,
        "value": item.value,
        "created_at": format_micros(item.created_at),
        "updated_at": format_micros(item.updated_at),
    })
}

/// A store rule's refusal as an answer: bad input is 422, a storage failure its own status.
fn store_error(error: StoreError) -> ApiError {
    match error {
        StoreError::Storage(error) => error.into(),
        StoreError::Filter(message) => ApiError::new(StatusCode::BAD_REQUEST, message),
        other => ApiError::validation(other.to_string()),
    }
}

fn validate_labels(namespace: &[String]) -> Result<(), ApiError> {
    store::check_labels(namespace).map_err(|error| ApiError::validation(error.to_string()))
}

/// The filter a store handler returned for `action`, as a store value filter. It applies to
/// items' values everywhere there is an item (README: "Store filters"); `list_namespaces` has
/// none to apply it to and refuses the request (fail closed).
fn value_guard(authorization: &Authorization, action: Action) -> Option<Map<String, Value>> {
    authorization.filter(Resource::Store, action).and_then(|filter| filter.to_json().as_object().cloned())
}

/// The store event's value after its handler: the route uses these keys, not the request's.
fn event_value(authorization: &Authorization, action: Action) -> Map<String, Value> {
    authorization.event(Resource::Store, action).and_then(|event| event.value.as_object().cloned()).unwrap_or_default()
}

/// A namespace re-read from the event value (a list of strings), validated again.
fn namespace_from(value: &Map<String, Value>, key: &str) -> Result<Option<Vec<String>>, ApiError> {
    match value.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => {
            let labels = items
                .iter()
                .map(|item| item.as_str().map(str::to_string).ok_or_else(|| ApiError::validation(format!("Namespace label {item} must be a non-empty string without periods"))))
                .collect::<Result<Vec<_>, _>>()?;
            validate_labels(&labels)?;
            Ok(Some(labels))
        }
        Some(other) => Err(ApiError::internal(format!("store handler set `{key}` to {other}"))),
    }
}

fn string_from(value: &Map<String, Value>, key: &str, fallback: String) -> String {
    value.get(key).and_then(Value::as_str).map_or(fallback, str::to_string)
}

fn int_from(value: &Map<String, Value>, key: &str, fallback: i64) -> i64 {
    value.get(key).and_then(Value::as_i64).unwrap_or(fallback)
}

#[derive(Debug, Deserialize)]
struct PutRequest {
    namespace: Vec<String>,
    key: String,
    value: Map<String, Value>,
    index: Option<Value>,
    ttl: Option<Value>,
}

async fn put_item(State(state): State<AppState>, auth: Auth, ApiJson(request): ApiJson<PutRequest>) -> Result<StatusCode, ApiError> {
    validate_labels(&request.namespace)?;
    let endpoint = Endpoint::StorePut {
        namespace: request.namespace.clone(),
        key: request.key.clone(),
        value: request.value.clone(),
        index: request.index.clone().unwrap_or(Value::Null),
        ttl: request.ttl.clone(),
    };
    let authorization = auth.authorize(endpoint).await?;
    let effective = event_value(&authorization, Action::Put);
    let namespace = namespace_from(&effective, "namespace")?.unwrap_or(request.namespace);
    if namespace.is_empty() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "Namespace cannot be empty."));
    }
    let key = string_from(&effective, "key", request.key);
    let value = effective.get("value").and_then(Value::as_object).cloned().unwrap_or(request.value);
    let index = effective.get("index").or(request.index.as_ref());
    let fields = IndexFields::from_json(index).map_err(ApiError::validation)?;
    let ttl = match effective.get("ttl").or(request.ttl.as_ref()) {
        None | Some(Value::Null) => None,
        Some(Value::Number(minutes)) => minutes.as_f64(),
        Some(other) => return Err(ApiError::validation(format!("ttl must be a number of minutes or null, not {other}"))),
    };
    let ttl_minutes = store::ttl_minutes(&state.config().store, ttl).map_err(store_error)?;
    let vectors = embed_value(&state, &value, &fields).await?;
    let guard = value_guard(&authorization, Action::Put);
    let write = ItemWrite { value, vectors, ttl_minutes };
    if !state.storage().put_item(namespace, key, write, guard, now_micros()).await? {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "Forbidden: the item does not pass the store filter of your auth handler"));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The vectors of a put's value under `store.index` (none without an index, or when the
/// fields hold no text). The embeddings' failures are 500s, their cause logged.
async fn embed_value(state: &AppState, value: &Map<String, Value>, fields: &IndexFields) -> Result<Option<crate::storage::Vectors>, ApiError> {
    let spec = &state.config().store;
    let texts = store::texts_to_embed(spec, value, fields);
    if texts.is_empty() {
        return Ok(None);
    }
    let count = texts.len();
    let embedded = state.python().embed_documents(texts).await.map_err(|error| ApiError::internal(format!("store.index.embed failed: {error}")))?;
    store::vectors_of(spec, count, &embedded).map_err(ApiError::internal)
}

async fn get_item(State(state): State<AppState>, auth: Auth, RawQuery(query): RawQuery) -> Result<axum::Json<Value>, ApiError> {
    let pairs = super::query_pairs(query.as_deref())?;
    let last = |name: &str| super::last(&pairs, name).map(str::to_string);
    let Some(namespace) = last("namespace") else {
        return Err(ApiError::validation("namespace: is required"));
    };
    let Some(key) = last("key") else {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "Key is required"));
    };
    let namespace: Vec<String> = namespace.split('.').map(str::to_string).collect();
    validate_labels(&namespace)?;
    let refresh_ttl = last("refresh_ttl").map(|value| super::is_true(Some(&value)));
    let authorization = auth.authorize(Endpoint::StoreGet { namespace: namespace.clone(), key: key.clone(), refresh_ttl }).await?;
    let effective = event_value(&authorization, Action::Get);
    let namespace = namespace_from(&effective, "namespace")?.unwrap_or(namespace);
    let key = string_from(&effective, "key", key);
    let now = now_micros();
    let item = state.storage().get_item(namespace, key, now).await?;
    let item = match (item, value_guard(&authorization, Action::Get)) {
        (Some(item), Some(guard)) => store_filter::matches(&item.value, &guard).map_err(ApiError::internal)?.then_some(item),
        (item, _) => item,
    };
    if refresh_ttl.unwrap_or(state.config().store.ttl.refresh_on_read) {
        store::refresh_ttls(&**state.storage(), item.iter(), now).await.map_err(store_error)?;
    }
    Ok(axum::Json(item.as_ref().map_or(Value::Null, view)))
}

#[derive(Debug, Deserialize)]
struct DeleteRequest {
    namespace: Vec<String>,
    key: String,
}

async fn delete_item(State(state): State<AppState>, auth: Auth, ApiJson(request): ApiJson<DeleteRequest>) -> Result<StatusCode, ApiError> {
    validate_labels(&request.namespace)?;
    let authorization = auth.authorize(Endpoint::StoreDelete { namespace: request.namespace.clone(), key: request.key.clone() }).await?;
    let effective = event_value(&authorization, Action::Delete);
    let namespace = namespace_from(&effective, "namespace")?.unwrap_or(request.namespace);
    let key = string_from(&effective, "key", request.key);
    let guard = value_guard(&authorization, Action::Delete);
    state.storage().delete_item(namespace, key, guard).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(deserializer)?.unwrap_or_default())
}

#[derive(Debug, Deserialize)]
struct SearchRequest {
    /// `null` or absent: every namespace.
    #[serde(default, deserialize_with = "null_as_empty")]
    namespace_prefix: Vec<String>,
    filter: Option<Map<String, Value>>,
    limit: Option<i64>,
    offset: Option<i64>,
    query: Option<String>,
    refresh_ttl: Option<bool>,
}

async fn search(State(state): State<AppState>, auth: Auth, ApiJson(request): ApiJson<SearchRequest>) -> Result<axum::Json<Value>, ApiError> {
    validate_labels(&request.namespace_prefix)?;
    if let Some(filter) = &request.filter {
        store::check_filter(filter).map_err(|error| ApiError::new(StatusCode::BAD_REQUEST, error.to_string()))?;
    }
    let limit = request.limit.unwrap_or(10);
    let offset = request.offset.unwrap_or(0);
    if limit < 0 || offset < 0 {
        return Err(ApiError::validation("limit and offset must not be negative"));
    }
    let endpoint = Endpoint::StoreSearch {
        namespace: request.namespace_prefix.clone(),
        filter: request.filter.clone(),
        limit,
        offset,
        query: request.query.clone(),
        refresh_ttl: request.refresh_ttl,
    };
    let authorization = auth.authorize(endpoint).await?;
    let effective = event_value(&authorization, Action::Search);
    let prefix = namespace_from(&effective, "namespace")?.unwrap_or(request.namespace_prefix);
    let request_filter = effective.get("filter").and_then(Value::as_object).cloned().or(request.filter);
    // The handler's filter is a value filter too; both must hold (the reference combines them
    // in a way its store does not understand and returns nothing).
    let auth_filter = value_guard(&authorization, Action::Search);
    let limit = usize::try_from(int_from(&effective, "limit", limit)).unwrap_or(0);
    let offset = usize::try_from(int_from(&effective, "offset", offset)).unwrap_or(0);
    let query = effective.get("query").and_then(Value::as_str).map(str::to_string).or(request.query);
    let spec = &state.config().store;
    // Without `store.index`, `query` is ignored (as the reference does).
    let query_vector = match query.filter(|_| spec.index.is_some()) {
        Some(query) => Some(state.python().embed_query(query).await.map_err(|error| ApiError::internal(format!("store.index.embed failed: {error}")))?),
        None => None,
    };
    let filters: Vec<&Map<String, Value>> = [request_filter.as_ref(), auth_filter.as_ref()].into_iter().flatten().collect();
    let refresh = request.refresh_ttl.unwrap_or(spec.ttl.refresh_on_read);
    let found = store::search(&**state.storage(), prefix, &filters, query_vector.as_deref(), (limit, offset), refresh, now_micros()).await.map_err(store_error)?;
    let page: Vec<Value> = found
        .iter()
        .map(|(item, score)| {
            let mut out = view(item);
            out["score"] = json!(score);
            out
        })
        .collect();
    Ok(axum::Json(json!({"items": page})))
}

#[derive(Debug, Default, Deserialize)]
struct NamespacesRequest {
    prefix: Option<Vec<String>>,
    suffix: Option<Vec<String>>,
    max_depth: Option<i64>,
    limit: Option<i64>,
    offset: Option<i64>,
}

async fn namespaces(State(state): State<AppState>, auth: Auth, ApiJson(request): ApiJson<NamespacesRequest>) -> Result<axum::Json<Value>, ApiError> {
    let limit = request.limit.unwrap_or(100);
    let offset = request.offset.unwrap_or(0);
    if limit < 0 || offset < 0 || request.max_depth.is_some_and(|depth| depth < 1) {
        return Err(ApiError::validation("limit and offset must not be negative; max_depth must be positive"));
    }
    for pattern in [&request.prefix, &request.suffix].into_iter().flatten() {
        validate_labels(pattern)?;
    }
    let endpoint = Endpoint::StoreListNamespaces { namespace: request.prefix.clone(), suffix: request.suffix.clone(), max_depth: request.max_depth, limit, offset };
    let authorization = auth.authorize(endpoint).await?;
    if authorization.filter(Resource::Store, Action::ListNamespaces).is_some() {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The store handler returned a filter for list_namespaces; store filters apply to item values and a namespace listing has none, so the request is refused",
        ));
    }
    let effective = event_value(&authorization, Action::ListNamespaces);
    let prefix = namespace_from(&effective, "namespace")?.or(request.prefix).unwrap_or_default();
    let suffix = namespace_from(&effective, "suffix")?.or(request.suffix).unwrap_or_default();
    validate_labels(&prefix)?;
    validate_labels(&suffix)?;
    let max_depth = effective.get("max_depth").and_then(Value::as_i64).or(request.max_depth);
    let limit = usize::try_from(int_from(&effective, "limit", limit)).unwrap_or(0);
    let offset = usize::try_from(int_from(&effective, "offset", offset)).unwrap_or(0);
    let all = state.storage().namespaces(now_micros()).await?;
    let conditions = [Condition::Prefix(prefix), Condition::Suffix(suffix)];
    let page = store::namespace_page(all, &conditions, max_depth.and_then(|depth| usize::try_from(depth).ok()), limit, offset);
    Ok(axum::Json(json!({"namespaces": page})))
}
