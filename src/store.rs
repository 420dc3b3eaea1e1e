//! The store's rules, shared by every path into it: the HTTP `/store` routes and the graphs'
//! LangGraph `BaseStore` ([`batch`], called from the interpreter thread).
//!
//! Namespaces are stored as their labels joined with `.`, so a label must be a non-empty
//! string without `.` everywhere — otherwise `("alice.smith",)` would read back as
//! `("alice", "smith")` and fall under user `alice`'s prefix.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::storage::{Items, StorageError, StoreItem, store_filter};

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
pub fn matching_page<'a>(items: &'a [StoreItem], filters: &[&Map<String, Value>], limit: usize, offset: usize) -> Result<Vec<&'a StoreItem>, StoreError> {
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
    Get { namespace: Vec<Value>, key: String },
    /// `value: null` deletes.
    Put { namespace: Vec<Value>, key: String, value: Option<Value> },
    Search { namespace_prefix: Vec<Value>, filter: Option<Map<String, Value>>, limit: usize, offset: usize },
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
    Get(Vec<String>, String),
    Put(Vec<String>, String, Option<Map<String, Value>>),
    Search(Vec<String>, Option<Map<String, Value>>, usize, usize),
    ListNamespaces(Vec<Condition>, Option<usize>, usize, usize),
}

fn check(operation: Operation) -> Result<Checked, StoreError> {
    Ok(match operation {
        Operation::Get { namespace, key } => {
            let namespace = labels(&namespace)?;
            check_item_namespace(&namespace)?;
            Checked::Get(namespace, key)
        }
        Operation::Put { namespace, key, value } => {
            let namespace = labels(&namespace)?;
            check_item_namespace(&namespace)?;
            let value = match value {
                None | Some(Value::Null) => None,
                Some(Value::Object(value)) => Some(value),
                Some(other) => return Err(StoreError::Invalid(format!("a store value must be a dict, not {other}"))),
            };
            Checked::Put(namespace, key, value)
        }
        Operation::Search { namespace_prefix, filter, limit, offset } => {
            let prefix = labels(&namespace_prefix)?;
            check_labels(&prefix)?;
            if let Some(filter) = &filter {
                check_filter(filter)?;
            }
            Checked::Search(prefix, filter, limit, offset)
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

/// A graph's `store.batch`: every operation is checked before any runs, then each runs in
/// order against `storage`, the same storage and rules as `/store`. One result per operation:
/// an item or `null` (get), `null` (put), a list of items (search), a list of namespaces.
pub async fn batch(storage: &dyn Items, operations: Vec<Operation>, now: i64) -> Result<Vec<Value>, StoreError> {
    let checked = operations.into_iter().map(check).collect::<Result<Vec<_>, _>>()?;
    let mut results = Vec::with_capacity(checked.len());
    for operation in checked {
        results.push(match operation {
            Checked::Get(namespace, key) => storage.get_item(namespace, key).await?.as_ref().map_or(Value::Null, item_json),
            Checked::Put(namespace, key, Some(value)) => {
                storage.put_item(namespace, key, value, None, now).await?;
                Value::Null
            }
            Checked::Put(namespace, key, None) => {
                storage.delete_item(namespace, key, None).await?;
                Value::Null
            }
            Checked::Search(prefix, filter, limit, offset) => {
                let items = storage.items_under(prefix).await?;
                let filters: Vec<&Map<String, Value>> = filter.iter().collect();
                Value::Array(matching_page(&items, &filters, limit, offset)?.into_iter().map(item_json).collect())
            }
            Checked::ListNamespaces(conditions, max_depth, limit, offset) => json!(namespace_page(storage.namespaces().await?, &conditions, max_depth, limit, offset)),
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
        assert!(matches!(check(serde_json::from_value(bad_filter).expect("op")), Err(StoreError::Filter(_))));
        assert!(matches!(check(serde_json::from_value(json!({"op": "get", "namespace": [1], "key": "k"})).expect("op")), Err(StoreError::Namespace(_))));
        assert!(matches!(check(serde_json::from_value(json!({"op": "put", "namespace": ["a"], "key": "k", "value": 3})).expect("op")), Err(StoreError::Invalid(_))));
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
