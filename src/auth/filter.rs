//! Auth filters: what an authorization handler returns to restrict a query (spec auth.md §5).
//!
//! A handler's dict is parsed once into a typed [`Filter`]; storage compiles it to SQL and
//! [`Filter::matches`] evaluates it in memory with the same semantics. Unlike the reference,
//! parsing is strict and eager: an unknown operator or a malformed filter is an error (the
//! request is refused with 500), never a silent match.

use serde_json::{Map, Value};

/// The deepest nesting of `$or`/`$and` the reference allows (the top level is depth 0).
const MAX_DEPTH: usize = 2;

/// A parsed filter: every clause must match.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub clauses: Vec<Clause>,
}

/// One condition of a filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Clause {
    /// `metadata[key]` exists and equals the value (Python equality).
    Eq { key: String, value: Value },
    /// `metadata[key]` exists, is a list, and contains every one of the values.
    Contains { key: String, values: Vec<Value> },
    /// At least one of the filters matches.
    Or(Vec<Filter>),
    /// Every one of the filters matches.
    And(Vec<Filter>),
}

/// Why a filter was refused. `Display` is the `detail` sent with the 500.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("Your auth handler returned a filter with an invalid {0} operator. The {0} operator must be a list of at least 2 filter objects. Check the filter returned by your auth handler.")]
    InvalidLogical(&'static str),
    #[error("Your auth handler returned a filter with too many nested operators. The maximum depth for nested operators is 2. Please simplify your filter.")]
    TooDeep,
    #[error("Your auth handler returned a filter with an unsupported operator `{operator}` on `{key}`; supported: a value, {{\"$eq\": v}}, {{\"$contains\": v}}, $or, $and")]
    UnknownOperator { key: String, operator: String },
    #[error("Your auth handler returned a filter with an empty condition on `{0}`")]
    EmptyCondition(String),
    #[error("Your auth handler returned a filter with several operators on `{0}`; use one operator per field, or $and")]
    SeveralOperators(String),
    #[error("Your auth handler returned a filter that is not an object: {0}")]
    NotAnObject(String),
}

impl Filter {
    /// The filter that matches everything (`{}`).
    pub fn is_empty(&self) -> bool {
        self.clauses.is_empty()
    }

    /// Parses a handler's filter dict.
    pub fn parse(value: &Value) -> Result<Self, FilterError> {
        match value {
            Value::Object(map) => Self::parse_map(map, 0),
            other => Err(FilterError::NotAnObject(other.to_string())),
        }
    }

    fn parse_map(map: &Map<String, Value>, depth: usize) -> Result<Self, FilterError> {
        let mut clauses = Vec::with_capacity(map.len());
        for (key, condition) in map {
            match key.as_str() {
                "$or" | "$and" => {
                    let name = if key == "$or" { "$or" } else { "$and" };
                    let groups = match condition {
                        Value::Array(groups) if groups.len() >= 2 => groups,
                        _ => return Err(FilterError::InvalidLogical(name)),
                    };
                    if depth + 1 > MAX_DEPTH {
                        return Err(FilterError::TooDeep);
                    }
                    let parsed = groups
                        .iter()
                        .map(|group| match group {
                            Value::Object(group) => Self::parse_map(group, depth + 1),
                            _ => Err(FilterError::InvalidLogical(name)),
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    clauses.push(if name == "$or" { Clause::Or(parsed) } else { Clause::And(parsed) });
                }
                _ => clauses.push(parse_condition(key, condition)?),
            }
        }
        Ok(Self { clauses })
    }

    /// The filter as JSON again (canonical form: operators spelled out), for logs.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        let mut logical = Vec::new();
        for clause in &self.clauses {
            match clause {
                Clause::Eq { key, value } => {
                    out.insert(key.clone(), value.clone());
                }
                Clause::Contains { key, values } => {
                    out.insert(key.clone(), serde_json::json!({"$contains": values}));
                }
                Clause::Or(groups) => logical.push(("$or", groups)),
                Clause::And(groups) => logical.push(("$and", groups)),
            }
        }
        for (name, groups) in logical {
            out.insert(name.to_string(), Value::Array(groups.iter().map(Self::to_json).collect()));
        }
        Value::Object(out)
    }

    /// Whether a record with this metadata passes the filter.
    pub fn matches(&self, metadata: &Map<String, Value>) -> bool {
        self.clauses.iter().all(|clause| match clause {
            Clause::Eq { key, value } => metadata.get(key).is_some_and(|have| python_eq(have, value)),
            Clause::Contains { key, values } => match metadata.get(key) {
                Some(Value::Array(items)) => values.iter().all(|wanted| items.iter().any(|item| python_eq(item, wanted))),
                _ => false,
            },
            Clause::Or(groups) => groups.iter().any(|group| group.matches(metadata)),
            Clause::And(groups) => groups.iter().all(|group| group.matches(metadata)),
        })
    }
}

fn parse_condition(key: &str, condition: &Value) -> Result<Clause, FilterError> {
    let Value::Object(operators) = condition else {
        return Ok(Clause::Eq { key: key.to_string(), value: condition.clone() });
    };
    let mut entries = operators.iter();
    let Some((operator, operand)) = entries.next() else {
        return Err(FilterError::EmptyCondition(key.to_string()));
    };
    if entries.next().is_some() {
        return Err(FilterError::SeveralOperators(key.to_string()));
    }
    match operator.as_str() {
        "$eq" => Ok(Clause::Eq { key: key.to_string(), value: operand.clone() }),
        "$contains" => Ok(Clause::Contains {
            key: key.to_string(),
            values: match operand {
                Value::Array(values) => values.clone(),
                single => vec![single.clone()],
            },
        }),
        other => Err(FilterError::UnknownOperator { key: key.to_string(), operator: other.to_string() }),
    }
}

/// Python `==` on JSON values: numbers compare by value (`5 == 5.0`), booleans are the
/// integers 0 and 1 (`True == 1`), lists and objects compare deeply, `None` only equals `None`.
pub fn python_eq(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Null, Value::Null) => true,
        (Value::String(a), Value::String(b)) => a == b,
        (Value::Array(a), Value::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| python_eq(x, y)),
        (Value::Object(a), Value::Object(b)) => a.len() == b.len() && a.iter().all(|(key, x)| b.get(key).is_some_and(|y| python_eq(x, y))),
        _ => match (as_number(left), as_number(right)) {
            (Some(a), Some(b)) => numbers_equal(a, b),
            _ => false,
        },
    }
}

/// Numeric view of numbers and booleans; integers stay exact.
#[derive(Debug, Clone, Copy)]
enum Number {
    Int(i128),
    Float(f64),
}

fn as_number(value: &Value) -> Option<Number> {
    match value {
        Value::Bool(flag) => Some(Number::Int(i128::from(*flag))),
        Value::Number(number) => number
            .as_i64()
            .map(i128::from)
            .or_else(|| number.as_u64().map(i128::from))
            .map(Number::Int)
            .or_else(|| number.as_f64().map(Number::Float)),
        _ => None,
    }
}

/// Compares an integer and a float the way Python does: equal only if the float is exactly
/// that integer.
fn numbers_equal(left: Number, right: Number) -> bool {
    match (left, right) {
        (Number::Int(a), Number::Int(b)) => a == b,
        (Number::Float(a), Number::Float(b)) => a == b,
        (Number::Int(int), Number::Float(float)) | (Number::Float(float), Number::Int(int)) => {
            #[expect(clippy::cast_precision_loss, clippy::cast_possible_truncation, reason = "checked both ways")]
            let same = float.is_finite() && float.fract() == 0.0 && (float as i128) == int && (int as f64) == float;
            same
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check(filter: Value, metadata: Value) -> bool {
        Filter::parse(&filter).expect("valid filter").matches(metadata.as_object().expect("object"))
    }

    #[test]
    fn equality_follows_python() {
        let rows = [
            // (filter, metadata, matches)
            (json!({"owner": "a"}), json!({"owner": "a"}), true),
            (json!({"owner": "a"}), json!({"owner": "b"}), false),
            (json!({"owner": "a"}), json!({}), false),
            (json!({"n": 5}), json!({"n": 5.0}), true),
            (json!({"n": 5}), json!({"n": "5"}), false),
            (json!({"n": true}), json!({"n": 1}), true),
            (json!({"n": 1.5}), json!({"n": 1}), false),
            (json!({"l": [1, 2]}), json!({"l": [1, 2]}), true),
            (json!({"l": [1, 2]}), json!({"l": [2, 1]}), false),
            (json!({"x": null}), json!({"x": null}), true),
            (json!({"x": null}), json!({}), false),
            (json!({"d": {"$eq": {"a": 1}}}), json!({"d": {"a": 1}}), true),
            (json!({"d": {"$eq": {"a": 1}}}), json!({"d": {"a": 1, "b": 2}}), false),
            (json!({"a": 1, "b": 2}), json!({"a": 1, "b": 2}), true),
            (json!({"a": 1, "b": 2}), json!({"a": 1, "b": 3}), false),
            (json!({}), json!({"anything": 1}), true),
        ];
        for (filter, metadata, expected) in rows {
            assert_eq!(check(filter.clone(), metadata.clone()), expected, "{filter} on {metadata}");
        }
    }

    #[test]
    fn contains_needs_a_list() {
        let rows = [
            (json!({"m": {"$contains": "u1"}}), json!({"m": ["u1", "u2"]}), true),
            (json!({"m": {"$contains": "u3"}}), json!({"m": ["u1", "u2"]}), false),
            (json!({"m": {"$contains": "u1"}}), json!({"m": "u1"}), false),
            (json!({"m": {"$contains": ["u2", "u1"]}}), json!({"m": ["u1", "u2", "u3"]}), true),
            (json!({"m": {"$contains": ["u1", "u4"]}}), json!({"m": ["u1", "u2"]}), false),
            (json!({"m": {"$contains": []}}), json!({"m": []}), true),
            (json!({"m": {"$contains": []}}), json!({"m": "x"}), false),
            (json!({"m": {"$contains": 1}}), json!({"m": [1.0]}), true),
            (json!({"m": {"$contains": "u1"}}), json!({}), false),
        ];
        for (filter, metadata, expected) in rows {
            assert_eq!(check(filter.clone(), metadata.clone()), expected, "{filter} on {metadata}");
        }
    }

    #[test]
    fn logical_operators() {
        let either = json!({"$or": [{"owner": "a"}, {"shared": true}]});
        assert!(check(either.clone(), json!({"owner": "a"})));
        assert!(check(either.clone(), json!({"owner": "b", "shared": true})));
        assert!(!check(either, json!({"owner": "b"})));
        let both = json!({"$and": [{"owner": "a"}, {"team": "x"}], "org": "o"});
        assert!(check(both.clone(), json!({"owner": "a", "team": "x", "org": "o"})));
        assert!(!check(both, json!({"owner": "a", "team": "x", "org": "p"})));
        let nested = json!({"$or": [{"$or": [{"a": 1}, {"b": 1}]}, {"c": 1}]});
        assert!(check(nested.clone(), json!({"b": 1})));
        assert!(!check(nested, json!({"d": 1})));
    }

    #[test]
    fn malformed_filters_are_refused() {
        let rows = [
            (json!({"owner": {"$in": ["a"]}}), FilterError::UnknownOperator { key: "owner".into(), operator: "$in".into() }),
            (json!({"owner": {"$ne": "a"}}), FilterError::UnknownOperator { key: "owner".into(), operator: "$ne".into() }),
            (json!({"owner": {"a": 1}}), FilterError::UnknownOperator { key: "owner".into(), operator: "a".into() }),
            (json!({"owner": {}}), FilterError::EmptyCondition("owner".into())),
            (json!({"owner": {"$eq": 6, "$contains": 5}}), FilterError::SeveralOperators("owner".into())),
            (json!({"$or": [{"a": 1}]}), FilterError::InvalidLogical("$or")),
            (json!({"$and": {"a": 1}}), FilterError::InvalidLogical("$and")),
            (json!({"$or": [{"a": 1}, 3]}), FilterError::InvalidLogical("$or")),
            (json!({"$or": [{"$or": [{"$or": [{"a": 1}, {"b": 1}]}, {"c": 1}]}, {"d": 1}]}), FilterError::TooDeep),
            (json!(["owner"]), FilterError::NotAnObject("[\"owner\"]".into())),
        ];
        for (filter, expected) in rows {
            assert_eq!(Filter::parse(&filter), Err(expected), "{filter}");
        }
        assert_eq!(
            FilterError::InvalidLogical("$or").to_string(),
            "Your auth handler returned a filter with an invalid $or operator. The $or operator must be a list of at least 2 filter objects. Check the filter returned by your auth handler."
        );
    }
}
