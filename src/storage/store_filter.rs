//! The store's item-value filter (spec http-api.md §6.2, auth.md §5.3): plain values must be
//! equal (objects recursively), operator objects use `$eq $ne $gt $gte $lt $lte`, and a
//! missing field never matches.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use crate::auth::filter::python_eq;

/// Whether `value` passes `filter`. An unsupported operator is an error naming it.
pub fn matches(value: &Map<String, Value>, filter: &Map<String, Value>) -> Result<bool, String> {
    for (key, condition) in filter {
        let Some(actual) = value.get(key) else { return Ok(false) };
        let passed = match condition {
            Value::Object(operators) if !operators.is_empty() && operators.keys().all(|name| name.starts_with('$')) => {
                let mut all = true;
                for (operator, operand) in operators {
                    let holds = match operator.as_str() {
                        "$eq" => python_eq(actual, operand),
                        "$ne" => !python_eq(actual, operand),
                        "$gt" => compare(actual, operand) == Some(Ordering::Greater),
                        "$gte" => matches!(compare(actual, operand), Some(Ordering::Greater | Ordering::Equal)),
                        "$lt" => compare(actual, operand) == Some(Ordering::Less),
                        "$lte" => matches!(compare(actual, operand), Some(Ordering::Less | Ordering::Equal)),
                        other => return Err(format!("Unsupported operator: {other}")),
                    };
                    all &= holds;
                }
                all
            }
            Value::Object(nested) => match actual {
                Value::Object(inner) => matches(inner, nested)?,
                _ => false,
            },
            plain => python_eq(actual, plain),
        };
        if !passed {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Refuses a filter with an unsupported operator anywhere in it, whatever the items hold.
pub fn check(filter: &Map<String, Value>) -> Result<(), String> {
    for condition in filter.values() {
        if let Value::Object(inner) = condition {
            if !inner.is_empty() && inner.keys().all(|name| name.starts_with('$')) {
                if let Some(other) = inner.keys().find(|name| !OPERATORS.contains(&name.as_str())) {
                    return Err(format!("Unsupported operator: {other}"));
                }
            } else {
                check(inner)?;
            }
        }
    }
    Ok(())
}

const OPERATORS: [&str; 6] = ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte"];

fn compare(left: &Value, right: &Value) -> Option<Ordering> {
    match (left, right) {
        (Value::Number(a), Value::Number(b)) => a.as_f64()?.partial_cmp(&b.as_f64()?),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn store_filter_rows() {
        let item = json!({"a": 1, "s": "m", "o": {"x": 1, "y": 2}, "l": [1, 2]});
        let item = item.as_object().expect("object");
        let rows = [
            (json!({"a": 1}), Ok(true)),
            (json!({"a": 2}), Ok(false)),
            (json!({"z": 1}), Ok(false)),
            (json!({"o": {"x": 1}}), Ok(true)),
            (json!({"l": [1, 2]}), Ok(true)),
            (json!({"a": {"$gt": 0, "$lte": 1}}), Ok(true)),
            (json!({"a": {"$ne": 1}}), Ok(false)),
            (json!({"s": {"$gte": "a"}}), Ok(true)),
            (json!({"a": {"$contains": 1}}), Err("Unsupported operator: $contains".to_string())),
        ];
        for (filter, expected) in rows {
            assert_eq!(matches(item, filter.as_object().expect("object")), expected, "{filter}");
        }
    }
}
