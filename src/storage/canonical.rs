//! Canonical text of JSON values under Python equality, so SQL can compare with `=`:
//! `5`, `5.0` and `true`-as-`1` share one text; object keys are sorted; strings are JSON.

use serde_json::Value;

/// The canonical text of `value`: equal texts ⇔ equal under Python `==`.
pub fn canonical(value: &Value) -> String {
    let mut out = String::new();
    write(value, &mut out);
    out
}

fn write(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(flag) => out.push_str(if *flag { "1" } else { "0" }),
        Value::Number(number) => {
            if let Some(int) = number.as_i64() {
                out.push_str(&int.to_string());
            } else if let Some(int) = number.as_u64() {
                out.push_str(&int.to_string());
            } else {
                let float = number.as_f64().unwrap_or(f64::NAN);
                #[expect(clippy::cast_possible_truncation, reason = "only when the float is integral and in range")]
                if float.is_finite() && float.fract() == 0.0 && float.abs() < 9.0e15 {
                    out.push_str(&(float as i64).to_string());
                } else {
                    out.push_str(&format!("{float:?}"));
                }
            }
        }
        Value::String(text) => out.push_str(&Value::String(text.clone()).to_string()),
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write(item, out);
            }
            out.push(']');
        }
        Value::Object(entries) => {
            let mut keys: Vec<&String> = entries.keys().collect();
            keys.sort();
            out.push('{');
            for (index, key) in keys.into_iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write(&entries[key], out);
            }
            out.push('}');
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn python_equal_values_share_a_text() {
        assert_eq!(canonical(&json!(5)), canonical(&json!(5.0)));
        assert_eq!(canonical(&json!(true)), canonical(&json!(1)));
        assert_eq!(canonical(&json!({"b": 1, "a": [true]})), canonical(&json!({"a": [1.0], "b": true})));
        assert_ne!(canonical(&json!("5")), canonical(&json!(5)));
        assert_ne!(canonical(&json!(1.5)), canonical(&json!(1)));
        assert_ne!(canonical(&json!(null)), canonical(&json!("null")));
    }
}

/// Longest text a Postgres side table keeps as is (bytes); longer keys and values are kept as
/// [`indexed`] digests, since a btree entry holds at most ~2,700 bytes.
const INDEXED_MAX: usize = 512;

/// `text` as a Postgres side table indexes it: itself, or when longer than [`INDEXED_MAX`],
/// its first character (the JSON kind, which list filters read) and `#sha256:` with its
/// SHA-256 in hex. Equal texts give equal digests, and no two texts one (SHA-256: an attacker
/// cannot make their value match another's).
pub fn indexed(text: String) -> String {
    use sha2::Digest;
    if text.len() <= INDEXED_MAX {
        return text;
    }
    let first = text.chars().next().unwrap_or_default();
    let digest = sha2::Sha256::digest(text.as_bytes());
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("{first}#sha256:{hex}")
}
