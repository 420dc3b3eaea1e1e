//! `auth.openapi` of `langgraph.json`: the OpenAPI security the API documents
//! (`securitySchemes`, the global `security`, per-path `paths` overrides). Only checked here;
//! `server/openapi.rs` merges it into `GET /openapi.json`.

use serde_json::{Map, Value};

use super::{Checker, ConfigError, json_type};

/// HTTP methods an OpenAPI path item may hold.
const METHODS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch", "trace"];

impl Checker<'_> {
    /// Checks the block's shape, and that every requirement names a scheme it defines. Keys
    /// other than `securitySchemes`, `security` and `paths` are appended to `ignored`.
    pub(super) fn openapi_security(&self, block: &Map<String, Value>, ignored: &mut Vec<String>) -> Result<(), ConfigError> {
        let known = ["securitySchemes", "security", "paths"];
        ignored.extend(block.keys().filter(|key| !known.contains(&key.as_str())).map(|key| format!("auth.openapi.{key}")));
        let schemes = match block.get("securitySchemes") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(schemes)) => schemes.clone(),
            Some(other) => {
                return Err(self.invalid("auth.openapi.securitySchemes", format!("must be an object like {{\"bearer\": {{\"type\": \"http\", \"scheme\": \"bearer\"}}}}, not {}", json_type(other))));
            }
        };
        for (name, scheme) in &schemes {
            let key = format!("auth.openapi.securitySchemes.{name}");
            match scheme.get("type").and_then(Value::as_str) {
                Some("apiKey" | "http" | "mutualTLS" | "oauth2" | "openIdConnect") => {}
                _ => return Err(self.invalid(&key, "must be an object whose `type` is apiKey, http, mutualTLS, oauth2 or openIdConnect")),
            }
        }
        if let Some(security) = block.get("security").filter(|value| !value.is_null()) {
            self.requirements("auth.openapi.security", security, &schemes)?;
        }
        match block.get("paths") {
            None | Some(Value::Null) => {}
            Some(Value::Object(paths)) => {
                for (path, methods) in paths {
                    let key = format!("auth.openapi.paths.{path}");
                    if !path.starts_with('/') {
                        return Err(self.invalid(&key, "must be a path starting with `/`, like \"/threads/{thread_id}\""));
                    }
                    let Some(methods) = methods.as_object() else {
                        return Err(self.invalid(&key, format!("must be an object of method → requirements, not {}", json_type(methods))));
                    };
                    for (method, requirements) in methods {
                        if !METHODS.contains(&method.to_ascii_lowercase().as_str()) {
                            return Err(self.invalid(&format!("{key}.{method}"), "is not an HTTP method (GET, POST, PUT, PATCH, DELETE, …)"));
                        }
                        self.requirements(&format!("{key}.{method}"), requirements, &schemes)?;
                    }
                }
            }
            Some(other) => return Err(self.invalid("auth.openapi.paths", format!("must be an object of path → method → requirements, not {}", json_type(other)))),
        }
        Ok(())
    }

    /// A list of security requirements: `[{"scheme": ["scope", …]}, …]`.
    fn requirements(&self, key: &str, value: &Value, schemes: &Map<String, Value>) -> Result<(), ConfigError> {
        let example = "a list like [{\"bearer\": []}]";
        let Some(items) = value.as_array() else {
            return Err(self.invalid(key, format!("must be {example}, not {}", json_type(value))));
        };
        for (index, item) in items.iter().enumerate() {
            let Some(requirement) = item.as_object() else {
                return Err(self.invalid(&format!("{key}[{index}]"), format!("must be an object of scheme → scopes, as in {example}")));
            };
            for (name, scopes) in requirement {
                if !schemes.contains_key(name) {
                    return Err(self.invalid(&format!("{key}[{index}]"), format!("names scheme `{name}`, which auth.openapi.securitySchemes does not define")));
                }
                if !scopes.as_array().is_some_and(|scopes| scopes.iter().all(Value::is_string)) {
                    return Err(self.invalid(&format!("{key}[{index}].{name}"), "must be a list of scope names (`[]` for none)"));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::AppConfig;
    use super::*;

    /// The parsed `auth.openapi` and the ignored keys, or the error line.
    type Parsed = Result<(Option<Map<String, Value>>, Vec<String>), String>;

    fn auth(openapi: &str) -> Parsed {
        let dir = std::env::temp_dir().join(format!("graphward-openapi-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(dir.join("agent.py"), "graph = None\n").expect("write");
        let text = format!(r#"{{"graphs": {{"a": "./agent.py:graph"}}, "auth": {{"openapi": {openapi}}}}}"#);
        AppConfig::parse(&dir.join("langgraph.json"), &text)
            .map(|config| (config.auth.and_then(|auth| auth.openapi), config.ignored_keys))
            .map_err(|error| error.to_string())
    }

    #[test]
    fn a_valid_block_is_kept_as_written() {
        let block = r#"{"securitySchemes": {"OAuth2": {"type": "oauth2", "flows": {}}, "key": {"type": "apiKey", "in": "header", "name": "x-api-key"}},
            "security": [{"OAuth2": ["read"]}, {"key": []}], "paths": {"/threads": {"POST": [{"OAuth2": ["write"]}]}}, "tags": []}"#;
        let (openapi, ignored) = auth(block).expect("valid");
        assert_eq!(openapi.expect("kept")["security"][0]["OAuth2"][0], "read");
        assert_eq!(ignored, vec!["auth.openapi.tags".to_string()]);
    }

    #[test]
    fn bad_blocks_are_one_line_naming_the_key() {
        let cases = [
            (r#"{"securitySchemes": []}"#, "`auth.openapi.securitySchemes`: must be an object"),
            (r#"{"securitySchemes": {"x": {"type": "magic"}}}"#, "`auth.openapi.securitySchemes.x`: must be an object whose `type`"),
            (r#"{"security": {"x": []}}"#, "`auth.openapi.security`: must be a list"),
            (r#"{"security": [{"x": []}]}"#, "`auth.openapi.security[0]`: names scheme `x`"),
            (r#"{"securitySchemes": {"x": {"type": "http"}}, "security": [{"x": "read"}]}"#, "`auth.openapi.security[0].x`: must be a list of scope names"),
            (r#"{"paths": {"threads": {}}}"#, "`auth.openapi.paths.threads`: must be a path starting with `/`"),
            (r#"{"paths": {"/threads": {"FETCH": []}}}"#, "`auth.openapi.paths./threads.FETCH`: is not an HTTP method"),
        ];
        for (block, expected) in cases {
            let message = auth(block).expect_err(block);
            assert!(message.contains(expected) && message.contains("langgraph.json") && !message.contains('\n'), "{block}: {message}");
        }
    }
}
