//! The `http` block of `langgraph.json`: the user's own ASGI app served beside the API, and
//! how the API itself is exposed (CORS, a mount prefix, disabled route groups, which request
//! headers reach a run's config and the request log).

use std::path::Path;

use serde_json::{Map, Value};

use super::{Checker, ConfigError, ObjectLocation, json_type};

/// `http`, resolved.
#[derive(Debug, Clone, Default)]
pub struct HttpSpec {
    /// `http.app`: an ASGI app (Starlette, FastAPI, …) whose routes are served beside the API.
    pub app: Option<ObjectLocation>,
    /// `http.enable_custom_route_auth`: the app's routes are authenticated like the API's.
    pub enable_custom_route_auth: bool,
    /// `http.middleware_order`, as written (`auth_first` or `middleware_first`).
    pub middleware_order: MiddlewareOrder,
    /// `http.cors`; `None` keeps the reference dev server's open CORS.
    pub cors: Option<CorsSpec>,
    /// `http.mount_prefix`: every route (the API's and the app's) is served under it.
    pub mount_prefix: Option<String>,
    /// `http.disable_*`: route groups not served.
    pub disabled: DisabledRoutes,
    /// `http.configurable_headers`: request headers copied into a run's `configurable`.
    pub configurable_headers: Option<HeaderRules>,
    /// `http.logging_headers`: request headers written to the request log.
    pub logging_headers: Option<HeaderRules>,
}

/// Whether the user app's middleware runs before graphward authenticates its routes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MiddlewareOrder {
    #[default]
    MiddlewareFirst,
    AuthFirst,
}

/// Route groups `http.disable_*` turns off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DisabledRoutes {
    pub assistants: bool,
    pub threads: bool,
    pub runs: bool,
    pub store: bool,
    /// `/info`, `/openapi.json`, `/docs` (`/ok` stays: it is the health check).
    pub meta: bool,
    /// A run's `webhook` is refused (422).
    pub webhooks: bool,
    /// `/mcp`.
    pub mcp: bool,
    /// `/a2a/…` and `/.well-known/agent-card.json`.
    pub a2a: bool,
}

/// `http.cors`, as Starlette's `CORSMiddleware` takes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorsSpec {
    pub allow_origins: Vec<String>,
    pub allow_origin_regex: Option<String>,
    pub allow_methods: Vec<String>,
    pub allow_headers: Vec<String>,
    pub allow_credentials: bool,
    pub expose_headers: Vec<String>,
    pub max_age: u64,
}

/// `include` / `exclude` lists of header names, `*` matching any run of characters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderRules {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

impl HeaderRules {
    /// Whether header `name` (lower case) passes: not excluded, and included (when an
    /// `include` list is given).
    pub fn allows(&self, name: &str) -> bool {
        if self.exclude.iter().any(|pattern| glob_matches(pattern, name)) {
            return false;
        }
        self.include.is_empty() || self.include.iter().any(|pattern| glob_matches(pattern, name))
    }
}

/// `*` matches any run of characters; everything else literally (patterns are lower-cased).
fn glob_matches(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else { return false };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else { return rest.is_empty() };
    for part in middle {
        match rest.find(part) {
            Some(index) => rest = &rest[index + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

const KEYS: &[&str] = &[
    "app",
    "enable_custom_route_auth",
    "middleware_order",
    "cors",
    "mount_prefix",
    "disable_assistants",
    "disable_threads",
    "disable_runs",
    "disable_store",
    "disable_meta",
    "disable_webhooks",
    "disable_mcp",
    "disable_a2a",
    "disable_ui",
    "configurable_headers",
    "logging_headers",
];

impl Checker<'_> {
    /// Parses `http`; sub-keys graphward does not know are added to `ignored` as `http.<key>`.
    pub(super) fn http(&self, dir: &Path, value: Option<&Value>, ignored: &mut Vec<String>) -> Result<HttpSpec, ConfigError> {
        let object = match value {
            None | Some(Value::Null) => return Ok(HttpSpec::default()),
            Some(Value::Object(object)) => object,
            Some(other) => return Err(self.invalid("http", format!("must be an object like {{\"app\": \"./webapp.py:app\"}}, not {}", json_type(other)))),
        };
        for key in object.keys() {
            if !KEYS.contains(&key.as_str()) {
                ignored.push(format!("http.{key}"));
            }
        }
        let flag = |name: &str| -> Result<bool, ConfigError> {
            match object.get(name) {
                None | Some(Value::Null) => Ok(false),
                Some(Value::Bool(flag)) => Ok(*flag),
                Some(other) => Err(self.invalid(&format!("http.{name}"), format!("must be true or false, not {}", json_type(other)))),
            }
        };
        let app = self.optional_location(dir, "http.app", object.get("app"), "./webapp.py:app")?;
        let middleware_order = match object.get("middleware_order") {
            None | Some(Value::Null) => MiddlewareOrder::MiddlewareFirst,
            Some(Value::String(text)) if text == "middleware_first" => MiddlewareOrder::MiddlewareFirst,
            Some(Value::String(text)) if text == "auth_first" => MiddlewareOrder::AuthFirst,
            Some(other) => return Err(self.invalid("http.middleware_order", format!("must be \"auth_first\" or \"middleware_first\", not {other}"))),
        };
        let mount_prefix = match object.get("mount_prefix") {
            None | Some(Value::Null) => None,
            Some(Value::String(prefix)) => Some(self.mount_prefix(prefix)?),
            Some(other) => return Err(self.invalid("http.mount_prefix", format!("must be a string like \"/api\", not {}", json_type(other)))),
        };
        Ok(HttpSpec {
            app,
            enable_custom_route_auth: flag("enable_custom_route_auth")?,
            middleware_order,
            cors: object.get("cors").filter(|value| !value.is_null()).map(|value| self.cors(value)).transpose()?,
            mount_prefix,
            disabled: DisabledRoutes {
                assistants: flag("disable_assistants")?,
                threads: flag("disable_threads")?,
                runs: flag("disable_runs")?,
                store: flag("disable_store")?,
                meta: flag("disable_meta")?,
                webhooks: flag("disable_webhooks")?,
                mcp: flag("disable_mcp")?,
                a2a: flag("disable_a2a")?,
            },
            configurable_headers: self.header_rules(object, "configurable_headers")?,
            logging_headers: self.header_rules(object, "logging_headers")?,
        })
    }

    fn mount_prefix(&self, prefix: &str) -> Result<String, ConfigError> {
        let trimmed = prefix.trim_end_matches('/');
        let valid = trimmed.starts_with('/')
            && trimmed.len() > 1
            && trimmed.split('/').skip(1).all(|segment| !segment.is_empty() && segment.chars().all(|c| c.is_ascii_alphanumeric() || "-_.~".contains(c)));
        if valid { Ok(trimmed.to_string()) } else { Err(self.invalid("http.mount_prefix", format!("`{prefix}` must be a path like \"/my-api\" (letters, digits, `-_.~` segments)"))) }
    }

    fn cors(&self, value: &Value) -> Result<CorsSpec, ConfigError> {
        let Value::Object(object) = value else {
            return Err(self.invalid("http.cors", format!("must be an object like {{\"allow_origins\": [\"https://example.com\"]}}, not {}", json_type(value))));
        };
        let list = |name: &str, default: &[&str]| -> Result<Vec<String>, ConfigError> {
            match object.get(name) {
                None | Some(Value::Null) => Ok(default.iter().map(|item| (*item).to_string()).collect()),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|item| item.as_str().map(str::to_string).ok_or_else(|| self.invalid(&format!("http.cors.{name}"), "must be a list of strings")))
                    .collect(),
                Some(other) => Err(self.invalid(&format!("http.cors.{name}"), format!("must be a list of strings, not {}", json_type(other)))),
            }
        };
        let allow_origin_regex = match object.get("allow_origin_regex") {
            None | Some(Value::Null) => None,
            Some(Value::String(pattern)) => {
                regex::Regex::new(pattern).map_err(|error| {
                    let reason = error.to_string().lines().last().unwrap_or_default().trim().to_string();
                    self.invalid("http.cors.allow_origin_regex", format!("is not a valid regular expression ({reason})"))
                })?;
                Some(pattern.clone())
            }
            Some(other) => return Err(self.invalid("http.cors.allow_origin_regex", format!("must be a string, not {}", json_type(other)))),
        };
        let allow_credentials = match object.get("allow_credentials") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(flag)) => *flag,
            Some(other) => return Err(self.invalid("http.cors.allow_credentials", format!("must be true or false, not {}", json_type(other)))),
        };
        let max_age = match object.get("max_age") {
            None | Some(Value::Null) => 600,
            Some(value) => value.as_u64().ok_or_else(|| self.invalid("http.cors.max_age", "must be a whole number of seconds"))?,
        };
        Ok(CorsSpec {
            allow_origins: list("allow_origins", &[])?,
            allow_origin_regex,
            allow_methods: list("allow_methods", &["GET"])?,
            allow_headers: list("allow_headers", &[])?,
            allow_credentials,
            expose_headers: list("expose_headers", &[])?,
            max_age,
        })
    }

    fn header_rules(&self, object: &Map<String, Value>, name: &str) -> Result<Option<HeaderRules>, ConfigError> {
        let rules = match object.get(name) {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Object(rules)) => rules,
            Some(other) => return Err(self.invalid(&format!("http.{name}"), format!("must be an object like {{\"include\": [\"x-*\"]}}, not {}", json_type(other)))),
        };
        // The reference's docs spell the lists both `include` and `includes`.
        let list = |key: &str| -> Result<Vec<String>, ConfigError> {
            match rules.get(key).or_else(|| rules.get(&format!("{key}s"))) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|item| item.as_str().map(str::to_ascii_lowercase).ok_or_else(|| self.invalid(&format!("http.{name}.{key}"), "must be a list of header names")))
                    .collect(),
                Some(other) => Err(self.invalid(&format!("http.{name}.{key}"), format!("must be a list of header names, not {}", json_type(other)))),
            }
        };
        Ok(Some(HeaderRules { include: list("include")?, exclude: list("exclude")? }))
    }
}

#[cfg(test)]
mod tests {
    use super::glob_matches;

    #[test]
    fn globs_match_like_the_reference_patterns() {
        assert!(glob_matches("x-*", "x-user"));
        assert!(glob_matches("*", "anything"));
        assert!(glob_matches("x-*-id", "x-tenant-id"));
        assert!(!glob_matches("x-*-id", "x-tenant"));
        assert!(glob_matches("authorization", "authorization"));
        assert!(!glob_matches("authorization", "authorization2"));
    }
}
