//! The store's rules, shared by every path into it: the HTTP `/store` routes and the graphs'
//! LangGraph `BaseStore` ([`batch`], called from the interpreter thread).
//!
//! Namespaces are stored as their labels joined with `.`, so a label must be a non-empty
//! string without `.` everywhere — otherwise `("alice.smith",)` would read back as
//! `("alice", "smith")` and fall under user `alice`'s prefix.

pub mod index;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::config::StoreSpec;
use crate::storage::{ItemWrite, Items, StorageError, StoreItem, Vectors, store_filter};

use self::index::IndexFields;

/// Why a store request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A namespace label is not a non-empty string without `.` (or the namespace is empty
    /// where an item needs one).
    #[error("{0}")]
    Namespace(String),
    /// A value filter uses an unsupported operator.
    #[error("{0}")]
    Filter(String),
    /// A malformed operation (from a graph's store).
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl StoreError {
    /// A short name for the Python side, which raises the matching exception.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Namespace(_) => "namespace",
            Self::Filter(_) => "filter",
            Self::Invalid(_) => "invalid",
            Self::Storage(_) => "storage",
        }
    }
}

/// Checks every label: non-empty, without `.` or NUL (SQLite's text functions stop at a NUL,
/// so such a label would not match itself). `*` is a valid label; in a namespace listing's
/// condition it matches any one label.
pub fn check_labels(labels: &[String]) -> Result<(), StoreError> {
    match labels.iter().find(|label| label.is_empty() || label.contains(['.', '\0'])) {
        Some(label) => Err(StoreError::Namespace(format!("Namespace label '{}' must be a non-empty string without periods", label.escape_debug()))),
        None => Ok(()),
    }
}

/// Checks a value filter's operators before anything runs (`matches` would refuse them only
/// when an item has the field).
pub fn check_filter(filter: &Map<String, Value>) -> Result<(), StoreError> {
    store_filter::check(filter).map_err(StoreError::Filter)
}

/// The namespace of an item: at least one label, each valid.
pub fn check_item_namespace(labels: &[String]) -> Result<(), StoreError> {
    if labels.is_empty() {
        return Err(StoreError::Namespace("Namespace cannot be empty.".into()));
    }
    check_labels(labels)
}

/// The page of `items` (newest first, as storage returns them) that passes every filter.
pub fn matching_page(items: Vec<StoreItem>, filters: &[&Map<String, Value>], limit: usize, offset: usize) -> Result<Vec<StoreItem>, StoreError> {
    let mut page = Vec::new();
    let mut skipped = 0;
    for item in items {
        let mut passes = true;
        for filter in filters {
            passes &= store_filter::matches(&item.value, filter).map_err(StoreError::Filter)?;
        }
        if !passes {
            continue;
        }
        if skipped < offset {
            skipped += 1;
        } else if page.len() == limit {
            break;
        } else {
            page.push(item);
        }
    }
    Ok(page)
}

/// A search of the store: the items under `prefix` passing every filter, each with its score:
/// with a `query` vector ranked by it in storage ([`Items::rank_items`]: the items it cannot
/// score — no vectors, `index: false`, another length — last, newest first), else newest
/// first without scores; `offset` and `limit` apply after ranking. With `refresh`, the ttls
/// of the page restart.
pub async fn search(storage: &dyn Items, prefix: Vec<String>, filters: &[&Map<String, Value>], query: Option<&[f32]>, page: (usize, usize), refresh: bool, now: i64) -> Result<Vec<(StoreItem, Option<f64>)>, StoreError> {
    let (limit, offset) = page;
    let found = match query {
        Some(query) => storage.rank_items(prefix, query.to_vec(), filters.iter().map(|filter| (*filter).clone()).collect(), page, now).await?,
        None => matching_page(storage.items_under(prefix, now).await?, filters, limit, offset)?.into_iter().map(|item| (item, None)).collect(),
    };
    if refresh {
        refresh_ttls(storage, found.iter().map(|(item, _)| item), now).await?;
    }
    Ok(found)
}

/// Restarts the ttl of those of `items` that have one.
pub async fn refresh_ttls<'a>(storage: &dyn Items, items: impl Iterator<Item = &'a StoreItem>, now: i64) -> Result<(), StoreError> {
    let expiring: Vec<(Vec<String>, String)> = items.filter(|item| item.expires_at.is_some()).map(|item| (item.namespace.clone(), item.key.clone())).collect();
    if !expiring.is_empty() {
        storage.refresh_items(expiring, now).await?;
    }
    Ok(())
}

/// The texts a put embeds under `spec` (none without an index or with `index: false`).
pub fn texts_to_embed(spec: &StoreSpec, value: &Map<String, Value>, fields: &IndexFields) -> Vec<String> {
    spec.index.as_ref().map(|index| index::item_texts(value, fields.paths(&index.fields))).unwrap_or_default()
}

/// The vectors the embeddings returned for a put's texts, checked against `store.index.dims`.
pub fn vectors_of(spec: &StoreSpec, texts: usize, embedded: &[Vec<f32>]) -> Result<Option<Vectors>, StoreError> {
    let Some(index) = &spec.index else { return Ok(None) };
    if texts == 0 {
        return Ok(None);
    }
    if embedded.len() != texts {
        return Err(StoreError::Invalid(format!("the embeddings returned {} vectors for {texts} texts", embedded.len())));
    }
    Vectors::new(index.dims, embedded).map(Some).map_err(StoreError::Invalid)
}

/// A put's `ttl` (minutes): a positive number, or none for the configured default.
pub fn ttl_minutes(spec: &StoreSpec, ttl: Option<f64>) -> Result<Option<f64>, StoreError> {
    match ttl {
        None => Ok(spec.ttl.default_ttl),
        Some(minutes) if minutes > 0.0 && minutes.is_finite() => Ok(Some(minutes)),
        Some(minutes) => Err(StoreError::Invalid(format!("ttl must be a positive number of minutes, not {minutes}"))),
    }
}

/// Deletes expired items every `interval` until `stop` turns true (their rows only: they were
/// invisible from the moment they expired). Every process may run one; sweeps are idempotent.
pub fn spawn_sweeper(storage: crate::storage::StorageHandle, interval: std::time::Duration, mut stop: tokio::sync::watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while !*stop.borrow() {
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                _ = stop.changed() => continue,
            }
            match storage.sweep_items(crate::timestamp::now_micros()).await {
                Ok(0) => {}
                Ok(swept) => tracing::debug!(swept, "expired store items deleted"),
                Err(error) => tracing::warn!(%error, "the store's ttl sweep failed; it is tried again next interval"),
            }
        }
    })
}

/// A namespace listing's condition: the namespace starts (or ends) with `path`, whole labels,
/// `*` matching any one label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    Prefix(Vec<String>),
    Suffix(Vec<String>),
}

fn labels_match<'a>(labels: impl Iterator<Item = &'a String>, pattern: impl ExactSizeIterator<Item = &'a String>, count: usize) -> bool {
    count >= pattern.len() && labels.zip(pattern).all(|(label, wanted)| wanted == "*" || label == wanted)
}

impl Condition {
    fn holds(&self, labels: &[String]) -> bool {
        match self {
            Self::Prefix(path) => labels_match(labels.iter(), path.iter(), labels.len()),
            Self::Suffix(path) => labels_match(labels.iter().rev(), path.iter().rev(), labels.len()),
        }
    }
}

/// The page of `namespaces` that meet every condition, each cut to `max_depth` labels,
/// sorted and without duplicates.
pub fn namespace_page(namespaces: Vec<Vec<String>>, conditions: &[Condition], max_depth: Option<usize>, limit: usize, offset: usize) -> Vec<Vec<String>> {
    let mut found: Vec<Vec<String>> = namespaces
        .into_iter()
        .filter(|labels| conditions.iter().all(|condition| condition.holds(labels)))
        .map(|mut labels| {
            if let Some(depth) = max_depth {
                labels.truncate(depth);
            }
            labels
        })
        .collect();
    found.sort();
    found.dedup();
    found.into_iter().skip(offset).take(limit).collect()
}

/// One operation of a graph's `store.batch` (the JSON `runner.py` sends).
#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Operation {
    Get {
        namespace: Vec<Value>,
        key: String,
        #[serde(default)]
        refresh_ttl: bool,
    },
    /// `value: null` deletes. `vectors`: the embeddings of [`plan`]'s texts for this put;
    /// `ttl` as LangGraph resolved it (minutes, none: forever).
    Put {
        namespace: Vec<Value>,
        key: String,
        value: Option<Value>,
        #[serde(default)]
        index: Option<Value>,
        #[serde(default)]
        ttl: Option<f64>,
        #[serde(default)]
        vectors: Option<Vec<Vec<f32>>>,
    },
    /// `query_vector`: the embedding of `query`, when the store has an index.
    Search {
        namespace_prefix: Vec<Value>,
        filter: Option<Map<String, Value>>,
        limit: usize,
        offset: usize,
        #[serde(default)]
        query: Option<String>,
        #[serde(default)]
        query_vector: Option<Vec<f32>>,
        #[serde(default)]
        refresh_ttl: bool,
    },
    ListNamespaces { conditions: Vec<MatchCondition>, max_depth: Option<usize>, limit: usize, offset: usize },
}

/// LangGraph's `MatchCondition`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchCondition {
    match_type: String,
    path: Vec<Value>,
}

/// Labels sent by a graph: each must be a string (then [`check_labels`] applies).
fn labels(values: &[Value]) -> Result<Vec<String>, StoreError> {
    values
        .iter()
        .map(|value| value.as_str().map(str::to_string).ok_or_else(|| StoreError::Namespace(format!("Namespace label {value} must be a non-empty string without periods"))))
        .collect()
}

/// An operation whose namespaces passed the checks.
enum Checked {
    Get(Vec<String>, String, bool),
    Put(Vec<String>, String, Option<ItemWrite>),
    Search(Vec<String>, Option<Map<String, Value>>, Option<Vec<f32>>, (usize, usize), bool),
    ListNamespaces(Vec<Condition>, Option<usize>, usize, usize),
}

fn check(spec: &StoreSpec, operation: Operation) -> Result<Checked, StoreError> {
    Ok(match operation {
        Operation::Get { namespace, key, refresh_ttl } => {
            let namespace = labels(&namespace)?;
            check_item_namespace(&namespace)?;
            Checked::Get(namespace, key, refresh_ttl)
        }
        Operation::Put { namespace, key, value, index: _, ttl, vectors } => {
            let namespace = labels(&namespace)?;
            check_item_namespace(&namespace)?;
            let value = match value {
                None | Some(Value::Null) => None,
                Some(Value::Object(value)) => Some(value),
                Some(other) => return Err(StoreError::Invalid(format!("a store value must be a dict, not {other}"))),
            };
            let write = match value {
                None => None,
                Some(value) => {
                    let vectors = match &vectors {
                        Some(embedded) => vectors_of(spec, embedded.len(), embedded)?,
                        None => None,
                    };
                    // LangGraph resolved the default already: none here means none.
                    let ttl_minutes = match ttl {
                        None => None,
                        some => ttl_minutes(spec, some)?,
                    };
                    Some(ItemWrite { value, vectors, ttl_minutes })
                }
            };
            Checked::Put(namespace, key, write)
        }
        Operation::Search { namespace_prefix, filter, limit, offset, query: _, query_vector, refresh_ttl } => {
            let prefix = labels(&namespace_prefix)?;
            check_labels(&prefix)?;
            if let Some(filter) = &filter {
                check_filter(filter)?;
            }
            let query_vector = query_vector.filter(|_| spec.index.is_some());
            Checked::Search(prefix, filter, query_vector, (limit, offset), refresh_ttl)
        }
        Operation::ListNamespaces { conditions, max_depth, limit, offset } => {
            let conditions = conditions
                .into_iter()
                .map(|condition| {
                    let path = labels(&condition.path)?;
                    check_labels(&path)?;
                    match condition.match_type.as_str() {
                        "prefix" => Ok(Condition::Prefix(path)),
                        "suffix" => Ok(Condition::Suffix(path)),
                        other => Err(StoreError::Invalid(format!("unknown match type {other:?}"))),
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            Checked::ListNamespaces(conditions, max_depth.filter(|depth| *depth > 0), limit, offset)
        }
    })
}

/// An item as the graphs' store receives it (timestamps in microseconds).
fn item_json(item: &StoreItem) -> Value {
    json!({"namespace": item.namespace, "key": item.key, "value": item.value, "created_at": item.created_at, "updated_at": item.updated_at})
}

/// What a graph's `store.batch` must embed before [`batch`] runs: for each operation, the
/// texts of a put (its `index` paths or the configured fields) or the `query` of a search,
/// else `null`. Without `store.index`, all `null`.
pub fn plan(spec: &StoreSpec, operations: &[Operation]) -> Result<Vec<Value>, StoreError> {
    operations
        .iter()
        .map(|operation| {
            if spec.index.is_none() {
                return Ok(Value::Null);
            }
            Ok(match operation {
                Operation::Put { value: Some(Value::Object(value)), index, .. } => {
                    let fields = IndexFields::from_json(index.as_ref()).map_err(StoreError::Invalid)?;
                    let texts = texts_to_embed(spec, value, &fields);
                    if texts.is_empty() { Value::Null } else { json!(texts) }
                }
                Operation::Search { query: Some(query), .. } => json!([query]),
                _ => Value::Null,
            })
        })
        .collect()
}

/// A graph's `store.batch`: every operation is checked before any runs, then each runs in
/// order against `storage`, the same storage and rules as `/store`. One result per operation:
/// an item or `null` (get), `null` (put), a list of items (search), a list of namespaces.
pub async fn batch(storage: &dyn Items, spec: &StoreSpec, operations: Vec<Operation>, now: i64) -> Result<Vec<Value>, StoreError> {
    let checked = operations.into_iter().map(|operation| check(spec, operation)).collect::<Result<Vec<_>, _>>()?;
    let mut results = Vec::with_capacity(checked.len());
    for operation in checked {
        results.push(match operation {
            Checked::Get(namespace, key, refresh) => {
                let item = storage.get_item(namespace, key, now).await?;
                if refresh {
                    refresh_ttls(storage, item.iter(), now).await?;
                }
                item.as_ref().map_or(Value::Null, item_json)
            }
            Checked::Put(namespace, key, Some(write)) => {
                storage.put_item(namespace, key, write, None, now).await?;
                Value::Null
            }
            Checked::Put(namespace, key, None) => {
                storage.delete_item(namespace, key, None).await?;
                Value::Null
            }
            Checked::Search(prefix, filter, query, page, refresh) => {
                let filters: Vec<&Map<String, Value>> = filter.iter().collect();
                let found = search(storage, prefix, &filters, query.as_deref(), page, refresh, now).await?;
                Value::Array(
                    found
                        .iter()
                        .map(|(item, score)| {
                            let mut out = item_json(item);
                            out["score"] = json!(score);
                            out
                        })
                        .collect(),
                )
            }
            Checked::ListNamespaces(conditions, max_depth, limit, offset) => json!(namespace_page(storage.namespaces(now).await?, &conditions, max_depth, limit, offset)),
        });
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(labels: &[&str]) -> Vec<String> {
        labels.iter().map(|label| (*label).to_string()).collect()
    }

    #[test]
    fn labels_are_checked_alike() {
        assert!(check_item_namespace(&strings(&["alice", "mem"])).is_ok());
        assert!(matches!(check_item_namespace(&[]), Err(StoreError::Namespace(_))));
        assert!(matches!(check_item_namespace(&strings(&["alice.smith"])), Err(StoreError::Namespace(_))));
        assert!(matches!(check_item_namespace(&strings(&["a", ""])), Err(StoreError::Namespace(_))));
        assert!(check_labels(&strings(&["*", "mem"])).is_ok());
        assert!(matches!(check_labels(&strings(&["a\0b"])), Err(StoreError::Namespace(_))));
        let bad_filter = json!({"op": "search", "namespace_prefix": ["a"], "filter": {"n": {"$regex": 1}}, "limit": 1, "offset": 0});
        let spec = StoreSpec::default();
        assert!(matches!(check(&spec, serde_json::from_value(bad_filter).expect("op")), Err(StoreError::Filter(_))));
        assert!(matches!(check(&spec, serde_json::from_value(json!({"op": "get", "namespace": [1], "key": "k"})).expect("op")), Err(StoreError::Namespace(_))));
        assert!(matches!(check(&spec, serde_json::from_value(json!({"op": "put", "namespace": ["a"], "key": "k", "value": 3})).expect("op")), Err(StoreError::Invalid(_))));
        assert!(matches!(check(&spec, serde_json::from_value(json!({"op": "put", "namespace": ["a"], "key": "k", "value": {}, "ttl": -1.0})).expect("op")), Err(StoreError::Invalid(_))));
    }

    #[test]
    fn namespace_conditions_match_whole_labels() {
        let all = vec![strings(&["a", "b", "c"]), strings(&["a", "x"]), strings(&["ab", "c"])];
        let prefix = [Condition::Prefix(strings(&["a"]))];
        assert_eq!(namespace_page(all.clone(), &prefix, None, 10, 0), vec![strings(&["a", "b", "c"]), strings(&["a", "x"])]);
        let suffix = [Condition::Suffix(strings(&["*", "c"]))];
        assert_eq!(namespace_page(all.clone(), &suffix, Some(1), 10, 0), vec![strings(&["a"]), strings(&["ab"])]);
        assert_eq!(namespace_page(all, &[], None, 1, 1), vec![strings(&["a", "x"])]);
    }
}
