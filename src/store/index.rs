//! The semantic index's rules: which texts of an item are embedded (LangGraph's field paths:
//! `$`, `a.b`, `a[0]`, `a[-1]`, `a[*]`, `*`, `{a,b.c}`, with the texts LangGraph's stores
//! would embed for them). How a query ranks items is storage's (`storage/vectors.rs`).

use serde_json::{Map, Value};

/// Why a field path is malformed (`None` when it is fine).
pub fn check_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("a field path must not be empty; use \"$\" for the whole value".to_string());
    }
    let tokens = tokenize(path)?;
    for token in &tokens {
        if let Some(index) = token.strip_prefix('[').and_then(|rest| rest.strip_suffix(']'))
            && index != "*"
            && index.parse::<i64>().is_err()
        {
            return Err(format!("`{token}` is not a list index like [0], [-1] or [*]"));
        }
    }
    Ok(())
}

/// Splits a path into fields, `[index]` and `{a,b}` tokens; an unclosed bracket is an error.
fn tokenize(path: &str) -> Result<Vec<String>, String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut chars = path.chars().peekable();
    while let Some(char) = chars.next() {
        match char {
            '[' | '{' => {
                if !current.is_empty() {
                    tokens.push(std::mem::take(&mut current));
                }
                let (open, close) = if char == '[' { ('[', ']') } else { ('{', '}') };
                let mut group = String::from(open);
                let mut depth = 1;
                for inner in chars.by_ref() {
                    group.push(inner);
                    depth += i32::from(inner == open) - i32::from(inner == close);
                    if depth == 0 {
                        break;
                    }
                }
                if depth != 0 {
                    return Err(format!("`{open}` is not closed"));
                }
                tokens.push(group);
            }
            '.' => {
                if !current.is_empty() {
                    tokens.push(std::mem::take(&mut current));
                }
            }
            other => current.push(other),
        }
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    Ok(tokens)
}

/// The texts of `value` at `path`, as LangGraph embeds them: strings as they are, numbers and
/// booleans as Python prints them, lists and objects as sorted-key JSON, nulls and missing
/// fields nothing. `$` is the whole value.
pub fn texts_at(value: &Map<String, Value>, path: &str) -> Vec<String> {
    let whole = Value::Object(value.clone());
    if path.is_empty() || path == "$" {
        return vec![python_json(&whole)];
    }
    let Ok(tokens) = tokenize(path) else { return Vec::new() };
    let mut texts = Vec::new();
    extract(&whole, &tokens, &mut texts);
    texts
}

fn extract(value: &Value, tokens: &[String], texts: &mut Vec<String>) {
    let Some((token, rest)) = tokens.split_first() else {
        texts.extend(leaf_text(value));
        return;
    };
    if let Some(index) = token.strip_prefix('[').and_then(|inner| inner.strip_suffix(']')) {
        let Value::Array(items) = value else { return };
        if index == "*" {
            items.iter().for_each(|item| extract(item, rest, texts));
        } else if let Ok(index) = index.parse::<i64>() {
            let position = if index < 0 { i64::try_from(items.len()).unwrap_or(i64::MAX) + index } else { index };
            if let Some(item) = usize::try_from(position).ok().and_then(|position| items.get(position)) {
                extract(item, rest, texts);
            }
        }
    } else if let Some(fields) = token.strip_prefix('{').and_then(|inner| inner.strip_suffix('}')) {
        // As LangGraph: each field is a plain dotted path, and the group ends the path.
        let Value::Object(_) = value else { return };
        for field in fields.split(',').map(str::trim) {
            let mut current = Some(value);
            for name in tokenize(field).unwrap_or_default() {
                current = current.and_then(|inner| inner.as_object()).and_then(|object| object.get(&name));
            }
            if let Some(found) = current.filter(|found| !tokenize(field).unwrap_or_default().is_empty() && !found.is_null()) {
                texts.extend(leaf_text(found));
            }
        }
    } else if token == "*" {
        match value {
            Value::Object(object) => object.values().for_each(|inner| extract(inner, rest, texts)),
            Value::Array(items) => items.iter().for_each(|item| extract(item, rest, texts)),
            _ => {}
        }
    } else if let Some(inner) = value.as_object().and_then(|object| object.get(token.as_str())) {
        extract(inner, rest, texts);
    }
}

fn leaf_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(text) => Some(text.clone()),
        Value::Bool(flag) => Some(if *flag { "True" } else { "False" }.to_string()),
        Value::Number(number) => Some(python_number(number)),
        Value::Array(_) | Value::Object(_) => Some(python_json(value)),
    }
}

/// A number as Python's `str` prints it (`1.0`, not `1`, for a float).
fn python_number(number: &serde_json::Number) -> String {
    if number.is_f64() {
        let float = number.as_f64().unwrap_or_default();
        if float.fract() == 0.0 && float.abs() < 1e16 { format!("{float:.1}") } else { float.to_string() }
    } else {
        number.to_string()
    }
}

/// `json.dumps(value, sort_keys=True, ensure_ascii=False)`: `", "` and `": "` separators,
/// keys sorted.
fn python_json(value: &Value) -> String {
    let mut out = String::new();
    write_python_json(value, &mut out);
    out
}

fn write_python_json(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(flag) => out.push_str(if *flag { "true" } else { "false" }),
        Value::Number(number) => out.push_str(&python_number(number)),
        Value::String(text) => out.push_str(&Value::String(text.clone()).to_string()),
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push_str(", ");
                }
                write_python_json(item, out);
            }
            out.push(']');
        }
        Value::Object(object) => {
            let mut keys: Vec<&String> = object.keys().collect();
            keys.sort();
            out.push('{');
            for (index, key) in keys.into_iter().enumerate() {
                if index > 0 {
                    out.push_str(", ");
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push_str(": ");
                write_python_json(&object[key], out);
            }
            out.push('}');
        }
    }
}

/// The texts a put embeds: at `paths` (the put's own `index` list, or the configured fields),
/// in order, each path's texts after the previous one's.
pub fn item_texts(value: &Map<String, Value>, paths: &[String]) -> Vec<String> {
    paths.iter().flat_map(|path| texts_at(value, path)).collect()
}

/// How a put asks to be indexed (`index` of the request or of LangGraph's `PutOp`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexFields {
    /// `null`/absent: the configured fields.
    Default,
    /// `false`: not embedded.
    Skip,
    /// A list of paths.
    Paths(Vec<String>),
}

impl IndexFields {
    /// Reads a request's `index` value; a malformed one is an error naming the fix.
    pub fn from_json(value: Option<&Value>) -> Result<Self, String> {
        match value {
            None | Some(Value::Null) => Ok(Self::Default),
            Some(Value::Bool(false)) => Ok(Self::Skip),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    let path = item.as_str().ok_or_else(|| format!("index: {item} is not a field path; give a list of strings like [\"text\"]"))?;
                    check_path(path).map_err(|error| format!("index: `{path}`: {error}"))?;
                    Ok(path.to_string())
                })
                .collect::<Result<_, String>>()
                .map(Self::Paths),
            Some(other) => Err(format!("index must be false, null or a list of field paths, not {other}")),
        }
    }

    /// The paths to embed, given the configured ones (none: nothing to embed).
    pub fn paths<'a>(&'a self, configured: &'a [String]) -> &'a [String] {
        match self {
            Self::Default => configured,
            Self::Skip => &[],
            Self::Paths(paths) => paths,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn texts(value: Value, path: &str) -> Vec<String> {
        texts_at(value.as_object().expect("object"), path)
    }

    #[test]
    fn paths_pick_the_texts_langgraph_embeds() {
        let value = json!({"text": "hi", "n": 2, "f": 1.0, "ok": true, "none": null, "meta": {"title": "T", "tags": ["a", "b"]}, "items": [{"x": "1"}, {"x": "2"}, {"y": 3}]});
        assert_eq!(texts(value.clone(), "text"), ["hi"]);
        assert_eq!(texts(value.clone(), "meta.title"), ["T"]);
        assert_eq!(texts(value.clone(), "meta.tags"), [r#"["a", "b"]"#]);
        assert_eq!(texts(value.clone(), "meta.tags[*]"), ["a", "b"]);
        assert_eq!(texts(value.clone(), "meta.tags[-1]"), ["b"]);
        assert_eq!(texts(value.clone(), "meta.tags[5]"), Vec::<String>::new());
        assert_eq!(texts(value.clone(), "items[*].x"), ["1", "2"]);
        assert_eq!(texts(value.clone(), "{text,meta.title,missing}"), ["hi", "T"]);
        assert_eq!(texts(value.clone(), "meta.*"), ["T", r#"["a", "b"]"#]);
        assert_eq!(texts(value.clone(), "n"), ["2"]);
        assert_eq!(texts(value.clone(), "f"), ["1.0"]);
        assert_eq!(texts(value.clone(), "ok"), ["True"]);
        assert_eq!(texts(value.clone(), "none"), Vec::<String>::new());
        assert_eq!(texts(value, "missing.deeper"), Vec::<String>::new());
        assert_eq!(texts(json!({"b": "é", "a": [1, {"d": null, "c": 2}]}), "$"), [r#"{"a": [1, {"c": 2, "d": null}], "b": "é"}"#]);
    }

    #[test]
    fn malformed_paths_and_index_values_are_refused() {
        assert!(check_path("a.b[0].c").is_ok() && check_path("{a,b}").is_ok() && check_path("$").is_ok());
        assert!(check_path("").is_err() && check_path("a[x]").is_err() && check_path("a[0").is_err() && check_path("{a").is_err());
        assert_eq!(IndexFields::from_json(Some(&json!(false))), Ok(IndexFields::Skip));
        assert_eq!(IndexFields::from_json(None), Ok(IndexFields::Default));
        assert_eq!(IndexFields::from_json(Some(&json!(["a"]))), Ok(IndexFields::Paths(vec!["a".into()])));
        assert!(IndexFields::from_json(Some(&json!(true))).is_err());
        assert!(IndexFields::from_json(Some(&json!([3]))).is_err());
        let configured = vec!["$".to_string()];
        assert_eq!(IndexFields::Skip.paths(&configured), &[] as &[String]);
        assert_eq!(IndexFields::Default.paths(&configured), &configured[..]);
    }
}
