//! `langgraph.json` → one resolved [`AppConfig`].
//!
//! Every key a Python app's `langgraph.json` may hold is parsed and type-checked here, once, at
//! startup. Keys graphward does not act on yet are collected in [`AppConfig::ignored_keys`] so
//! the caller can report them once; they are never a failure. Every invalid config is a
//! [`ConfigError`] whose `Display` is one line naming the file, the key and the fix.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

mod checkpointer;
mod http;
mod openapi;
mod store;
mod webhooks;

pub use checkpointer::{AllowedModules, CheckpointerConfig, SerdeConfig, ThreadTtl, TtlConfig, TtlStrategy};
pub use http::{CorsSpec, DisabledRoutes, HeaderRules, HttpSpec, MiddlewareOrder};
pub use store::{EmbedSource, IndexSpec, StoreSpec, TtlSpec};
pub use webhooks::{HeaderValue, UrlPolicy, WebhooksConfig};


/// Environment variables graphward reads. Each is named once, here.
pub mod env_vars {
    /// The user's virtual environment, as set by `source .venv/bin/activate`.
    pub const VIRTUAL_ENV: &str = "VIRTUAL_ENV";
    /// Log filter in `tracing_subscriber::EnvFilter` syntax (default `info`).
    pub const GRAPHWARD_LOG: &str = "GRAPHWARD_LOG";
    /// Seconds one request's authentication and authorization may take (`--auth-timeout`).
    pub const GRAPHWARD_AUTH_TIMEOUT: &str = "GRAPHWARD_AUTH_TIMEOUT";
    /// The SQLite database file (`--database`).
    pub const GRAPHWARD_DATABASE: &str = "GRAPHWARD_DATABASE";
    /// How many worker processes `serve` starts (`--workers`).
    pub const GRAPHWARD_WORKERS: &str = "GRAPHWARD_WORKERS";
    /// Set by `serve --workers` in each worker: the listening socket it inherits.
    pub const GRAPHWARD_LISTEN_FD: &str = "GRAPHWARD_LISTEN_FD";
    /// Set by `serve --workers` in each worker: its index, for logs.
    pub const GRAPHWARD_WORKER: &str = "GRAPHWARD_WORKER";
    /// Seconds a process's claim on a run lasts unless renewed (default 30); with Postgres, how
    /// soon the runs of a process that died are failed.
    pub const GRAPHWARD_RUN_LEASE: &str = "GRAPHWARD_RUN_LEASE";
    /// A Postgres database shared by every graphward process (`--database-uri`), as the
    /// reference names it.
    pub const DATABASE_URI: &str = "DATABASE_URI";
    /// How many runs may execute at once (`--max-runs`).
    pub const GRAPHWARD_MAX_RUNS: &str = "GRAPHWARD_MAX_RUNS";
    /// Seconds shutdown lets executing runs finish before handing them back (`--shutdown-grace`).
    pub const GRAPHWARD_SHUTDOWN_GRACE: &str = "GRAPHWARD_SHUTDOWN_GRACE";
    /// Connections served at once (`--max-connections`).
    pub const GRAPHWARD_MAX_CONNECTIONS: &str = "GRAPHWARD_MAX_CONNECTIONS";
    /// Seconds for a request's headers to arrive (`--header-timeout`).
    pub const GRAPHWARD_HEADER_TIMEOUT: &str = "GRAPHWARD_HEADER_TIMEOUT";
    /// Seconds a connection may stay silent (`--idle-timeout`).
    pub const GRAPHWARD_IDLE_TIMEOUT: &str = "GRAPHWARD_IDLE_TIMEOUT";
    /// `1` lets webhooks reach loopback and private addresses (local development).
    pub const GRAPHWARD_WEBHOOK_ALLOW_PRIVATE: &str = "GRAPHWARD_WEBHOOK_ALLOW_PRIVATE";
    /// Body bytes accepted before authentication (`--preauth-body-limit`).
    pub const GRAPHWARD_PREAUTH_BODY_LIMIT: &str = "GRAPHWARD_PREAUTH_BODY_LIMIT";
}

/// Keys of a Python app's `langgraph.json` that graphward accepts but does not act on (yet).
const IGNORED_KEYS: &[&str] = &[
    "python_version",
    "pip_config_file",
    "pip_installer",
    "dockerfile_lines",
    "docker_compose_file",
    "base_image",
    "image_distro",
    "api_version",
    "node_version",
    "keep_pkg_tools",
    "ui",
    "ui_config",
    "encryption",
    "middleware_order",
    "disable_persistence",
    "$schema",
];

/// The keys of `langgraph.json` graphward acts on.
const KNOWN_KEYS: &[&str] = &["dependencies", "graphs", "env", "auth", "http", "store", "checkpointer", "webhooks"];

/// A resolved `langgraph.json`.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// Absolute path of the `langgraph.json` file.
    pub path: PathBuf,
    /// The folder holding `langgraph.json`; relative paths in the file are resolved against it.
    pub dir: PathBuf,
    /// Local folders of `dependencies` (entries starting with `.` or `/`), absolute. Package
    /// names in `dependencies` are expected to be installed in the user's environment already.
    pub local_dependencies: Vec<PathBuf>,
    /// Graphs in the order of the file.
    pub graphs: Vec<GraphSpec>,
    /// Environment variables to apply before any user code is imported.
    pub env: Vec<(String, String)>,
    /// The `auth` block, if present.
    pub auth: Option<AuthSpec>,
    /// The `http` block (defaults when absent).
    pub http: HttpSpec,
    /// The `store` block (semantic index, item expiry).
    pub store: StoreSpec,
    /// The `checkpointer` block (thread TTL, serializer options).
    pub checkpointer: CheckpointerConfig,
    /// The `webhooks` block (URL policy, headers).
    pub webhooks: WebhooksConfig,
    /// Keys present in the file that are accepted but not acted on, in file order.
    pub ignored_keys: Vec<String>,
}

/// One entry of `graphs`.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphSpec {
    /// The graph id (the key in `graphs`).
    pub graph_id: String,
    /// Where the graph object lives.
    pub location: ObjectLocation,
    /// `description` of the object form, if any.
    pub description: Option<String>,
    /// `config` of the object form, used as the system assistant's config (`{}` if none).
    pub config: Map<String, Value>,
}

/// `"./file.py:attr"` or `"package.module:attr"`, as written for `graphs` and `auth.path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectLocation {
    /// The text as written in `langgraph.json`.
    pub raw: String,
    /// Whether the module part is loaded from a file or imported as a dotted module.
    pub source: ModuleSource,
    /// The attribute name after the last `:`.
    pub attribute: String,
}

/// How the module part of an [`ObjectLocation`] is found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModuleSource {
    /// A Python file, absolute (resolved against the config folder).
    File(PathBuf),
    /// A dotted module name imported from `sys.path`.
    Module(String),
}

/// The `auth` block.
#[derive(Debug, Clone)]
pub struct AuthSpec {
    /// `auth.path`, if present (an `auth` block without `path` configures no custom auth).
    pub path: Option<ObjectLocation>,
    /// `auth.disable_studio_auth`.
    pub disable_studio_auth: bool,
    /// `auth.allow_langsmith_api_keys`.
    pub allow_langsmith_api_keys: bool,
    /// `auth.openapi`, kept as written (checked: `config/openapi.rs`).
    pub openapi: Option<Map<String, Value>>,
    /// `auth.cache`, kept as written (validated when auth is loaded).
    pub cache: Option<Map<String, Value>>,
}

/// An invalid or unreadable `langgraph.json`. `Display` is one line: file, key, fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: config file not found; pass `--config path/to/langgraph.json` or run from the folder that holds it", .0.display())]
    NotFound(PathBuf),
    #[error("{}: cannot read the config file: {source}", .path.display())]
    Unreadable { path: PathBuf, source: std::io::Error },
    #[error("{}: invalid JSON at line {line}, column {column}: {message}", .path.display())]
    InvalidJson { path: PathBuf, line: usize, column: usize, message: String },
    #[error("{}: `{key}`: {message}", .path.display())]
    Invalid { path: PathBuf, key: String, message: String },
}

impl AppConfig {
    /// Reads and resolves the `langgraph.json` at `path` (relative to the current folder).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let text = match std::fs::read_to_string(&absolute) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(ConfigError::NotFound(absolute));
            }
            Err(source) => return Err(ConfigError::Unreadable { path: absolute, source }),
        };
        Self::parse(&absolute, &text)
    }

    /// Resolves the text of a `langgraph.json` that lives at `path` (an absolute path).
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let root: Value = serde_json::from_str(text).map_err(|error| ConfigError::InvalidJson {
            path: path.to_path_buf(),
            line: error.line(),
            column: error.column(),
            message: strip_position(&error.to_string()),
        })?;
        let dir = path.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let checker = Checker { path };
        let Value::Object(root) = root else {
            return Err(checker.invalid("(top level)", "must be a JSON object like {\"graphs\": {\"agent\": \"./agent.py:graph\"}}"));
        };

        let mut ignored_keys = Vec::new();
        for key in root.keys() {
            if KNOWN_KEYS.contains(&key.as_str()) {
                continue;
            }
            ignored_keys.push(key.clone());
        }
        for key in IGNORED_KEYS {
            if let Some(value) = root.get(*key) {
                checker.check_ignored_type(key, value)?;
            }
        }

        let local_dependencies = checker.dependencies(&dir, root.get("dependencies"))?;
        let graphs = checker.graphs(&dir, root.get("graphs"))?;
        let env = checker.env(&dir, root.get("env"))?;
        let auth = checker.auth(&dir, root.get("auth"))?;
        if let Some(openapi) = auth.as_ref().and_then(|auth| auth.openapi.as_ref()) {
            checker.openapi_security(openapi, &mut ignored_keys)?;
        }
        let checkpointer = checker.checkpointer(&dir, root.get("checkpointer"), &mut ignored_keys)?;
        let webhooks = checker.webhooks(root.get("webhooks"), &env, &mut ignored_keys)?;
        let http = checker.http(&dir, root.get("http"), &mut ignored_keys)?;
        let webhooks = WebhooksConfig { disabled: http.disabled.webhooks, ..webhooks };
        let store = checker.store(&dir, root.get("store"))?;
        ignored_keys.extend(store.ignored_keys.iter().cloned());
        Ok(Self { path: path.to_path_buf(), dir, local_dependencies, graphs, env, auth, http, store, checkpointer, webhooks, ignored_keys })
    }
}

/// serde_json appends " at line L column C"; the line and column are reported separately.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(index) => message[..index].to_string(),
        None => message.to_string(),
    }
}

/// Validation helpers that know which file they report on.
struct Checker<'a> {
    path: &'a Path,
}

impl Checker<'_> {
    fn invalid(&self, key: &str, message: impl fmt::Display) -> ConfigError {
        ConfigError::Invalid { path: self.path.to_path_buf(), key: key.to_string(), message: message.to_string() }
    }

    /// Ignored keys are still type-checked, so a typo'd value is caught before it matters.
    fn check_ignored_type(&self, key: &str, value: &Value) -> Result<(), ConfigError> {
        let ok = match key {
            "python_version" | "pip_config_file" | "pip_installer" | "base_image" | "image_distro"
            | "api_version" | "node_version" | "docker_compose_file" | "$schema" => {
                value.is_string() || value.is_number()
            }
            "dockerfile_lines" => value.as_array().is_some_and(|lines| lines.iter().all(Value::is_string)),
            "keep_pkg_tools" => value.is_boolean() || value.is_array(),
            "disable_persistence" => value.is_boolean(),
            "ui" | "ui_config" | "encryption" => {
                value.is_object() || value.is_null()
            }
            _ => true,
        };
        if ok { Ok(()) } else { Err(self.invalid(key, format!("has the wrong type ({})", json_type(value)))) }
    }

    fn dependencies(&self, dir: &Path, value: Option<&Value>) -> Result<Vec<PathBuf>, ConfigError> {
        let Some(value) = value else { return Ok(Vec::new()) };
        let Some(items) = value.as_array() else {
            return Err(self.invalid("dependencies", format!("must be a list of strings like [\".\"], not {}", json_type(value))));
        };
        let mut local = Vec::new();
        for (index, item) in items.iter().enumerate() {
            let key = format!("dependencies[{index}]");
            let Some(text) = item.as_str() else {
                return Err(self.invalid(&key, format!("must be a string, not {}", json_type(item))));
            };
            if text.starts_with('.') || text.starts_with('/') {
                let folder = normalize(&dir.join(text));
                if !folder.is_dir() {
                    return Err(self.invalid(&key, format!("local dependency `{text}` is not a folder ({})", folder.display())));
                }
                local.push(folder);
            }
        }
        Ok(local)
    }

    fn graphs(&self, dir: &Path, value: Option<&Value>) -> Result<Vec<GraphSpec>, ConfigError> {
        let Some(value) = value else {
            return Err(self.invalid("graphs", "is missing; add e.g. \"graphs\": {\"agent\": \"./agent.py:graph\"}"));
        };
        let Some(entries) = value.as_object() else {
            return Err(self.invalid("graphs", format!("must be an object of graph id → \"./file.py:attr\", not {}", json_type(value))));
        };
        if entries.is_empty() {
            return Err(self.invalid("graphs", "is empty; add e.g. \"agent\": \"./agent.py:graph\""));
        }
        let mut graphs = Vec::with_capacity(entries.len());
        for (graph_id, entry) in entries {
            let key = format!("graphs.{graph_id}");
            if graph_id.is_empty() {
                return Err(self.invalid("graphs", "has an empty graph id"));
            }
            let (raw, description, config) = match entry {
                Value::String(raw) => (raw.as_str(), None, Map::new()),
                Value::Object(object) => {
                    let raw = match object.get("path") {
                        Some(Value::String(raw)) => raw.as_str(),
                        _ => return Err(self.invalid(&format!("{key}.path"), "must be a string like \"./agent.py:graph\"")),
                    };
                    let description = match object.get("description") {
                        None | Some(Value::Null) => None,
                        Some(Value::String(text)) => Some(text.clone()),
                        Some(other) => {
                            return Err(self.invalid(&format!("{key}.description"), format!("must be a string, not {}", json_type(other))));
                        }
                    };
                    let config = match object.get("config") {
                        None | Some(Value::Null) => Map::new(),
                        Some(Value::Object(config)) => config.clone(),
                        Some(other) => {
                            return Err(self.invalid(&format!("{key}.config"), format!("must be an object, not {}", json_type(other))));
                        }
                    };
                    (raw, description, config)
                }
                other => {
                    return Err(self.invalid(&key, format!("must be a string like \"./agent.py:graph\", not {}", json_type(other))));
                }
            };
            let location = self.location(dir, &key, raw, "./agent.py:graph")?;
            if let ModuleSource::File(file) = &location.source
                && !file.is_file()
            {
                return Err(self.invalid(&key, format!("file `{}` not found ({}); fix the path before the `:`", module_part(raw), file.display())));
            }
            graphs.push(GraphSpec { graph_id: graph_id.clone(), location, description, config });
        }
        Ok(graphs)
    }

    /// An optional `"./file.py:attr"` key (`null` or absent: `None`) whose file must exist.
    fn optional_location(&self, dir: &Path, key: &str, value: Option<&Value>, example: &str) -> Result<Option<ObjectLocation>, ConfigError> {
        let raw = match value {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::String(raw)) => raw,
            Some(other) => return Err(self.invalid(key, format!("must be a string like \"{example}\", not {}", json_type(other)))),
        };
        let location = self.location(dir, key, raw, example)?;
        if let ModuleSource::File(file) = &location.source
            && !file.is_file()
        {
            return Err(self.invalid(key, format!("file `{}` not found ({})", module_part(raw), file.display())));
        }
        Ok(Some(location))
    }

    /// Parses `"<file-or-module>:<attr>"`: split on the last `:`; a module part with `/` or
    /// `.py` is a file relative to the config folder, anything else a dotted module.
    fn location(&self, dir: &Path, key: &str, raw: &str, example: &str) -> Result<ObjectLocation, ConfigError> {
        let Some((module, attribute)) = raw.rsplit_once(':') else {
            return Err(self.invalid(key, format!("`{raw}` has no `:attribute`; write it as `{raw}:{}`", example.rsplit_once(':').map_or("graph", |(_, attribute)| attribute))));
        };
        if module.is_empty() || attribute.is_empty() || !is_identifier(attribute) {
            return Err(self.invalid(key, format!("`{raw}` is not of the form `{example}`")));
        }
        let source = if module.contains('/') || module.contains('\\') || module.ends_with(".py") {
            if module.ends_with(".js") || module.ends_with(".ts") || module.ends_with(".mjs") || module.ends_with(".mts") {
                return Err(self.invalid(key, format!("`{module}` is JavaScript; graphward runs Python apps only")));
            }
            ModuleSource::File(normalize(&dir.join(module)))
        } else {
            if !module.split('.').all(is_identifier) {
                return Err(self.invalid(key, format!("`{module}` is neither a file path nor a dotted module name")));
            }
            ModuleSource::Module(module.to_string())
        };
        Ok(ObjectLocation { raw: raw.to_string(), source, attribute: attribute.to_string() })
    }

    fn env(&self, dir: &Path, value: Option<&Value>) -> Result<Vec<(String, String)>, ConfigError> {
        match value {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Object(vars)) => vars
                .iter()
                .map(|(name, value)| match value {
                    Value::String(text) => Ok((name.clone(), text.clone())),
                    Value::Number(number) => Ok((name.clone(), number.to_string())),
                    Value::Bool(flag) => Ok((name.clone(), if *flag { "true" } else { "false" }.to_string())),
                    other => Err(self.invalid(&format!("env.{name}"), format!("must be a string, not {}", json_type(other)))),
                })
                .collect(),
            Some(Value::String(file)) => {
                let env_path = normalize(&dir.join(file));
                let text = std::fs::read_to_string(&env_path).map_err(|error| {
                    self.invalid("env", format!("cannot read env file `{file}` ({}): {error}", env_path.display()))
                })?;
                parse_env_file(&text).map_err(|(line, message)| self.invalid("env", format!("{}:{line}: {message}", env_path.display())))
            }
            Some(other) => Err(self.invalid("env", format!("must be a path to a .env file or an object, not {}", json_type(other)))),
        }
    }

    fn auth(&self, dir: &Path, value: Option<&Value>) -> Result<Option<AuthSpec>, ConfigError> {
        let object = match value {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Object(object)) => object,
            Some(other) => return Err(self.invalid("auth", format!("must be an object like {{\"path\": \"./auth.py:auth\"}}, not {}", json_type(other)))),
        };
        let path = self.optional_location(dir, "auth.path", object.get("path"), "./auth.py:auth")?;
        let flag = |name: &str| -> Result<bool, ConfigError> {
            match object.get(name) {
                None | Some(Value::Null) => Ok(false),
                Some(Value::Bool(flag)) => Ok(*flag),
                Some(other) => Err(self.invalid(&format!("auth.{name}"), format!("must be true or false, not {}", json_type(other)))),
            }
        };
        let section = |name: &str| -> Result<Option<Map<String, Value>>, ConfigError> {
            match object.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Object(section)) => Ok(Some(section.clone())),
                Some(other) => Err(self.invalid(&format!("auth.{name}"), format!("must be an object, not {}", json_type(other)))),
            }
        };
        Ok(Some(AuthSpec {
            path,
            disable_studio_auth: flag("disable_studio_auth")?,
            allow_langsmith_api_keys: flag("allow_langsmith_api_keys")?,
            openapi: section("openapi")?,
            cache: section("cache")?,
        }))
    }
}

fn module_part(raw: &str) -> &str {
    raw.rsplit_once(':').map_or(raw, |(module, _)| module)
}

fn is_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|first| first == '_' || first.is_alphabetic())
        && chars.all(|rest| rest == '_' || rest.is_alphanumeric())
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Removes `.` and `..` components without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Parses a `.env` file: `KEY=VALUE` lines, optional `export `, `#` comments, single or double
/// quotes (double quotes understand `\n`, `\"` and `\\`). Errors carry the 1-based line.
pub fn parse_env_file(text: &str) -> Result<Vec<(String, String)>, (usize, String)> {
    let mut vars = BTreeMap::new();
    let mut order = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line_number = index + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map_or(line, str::trim_start);
        let Some((name, value)) = line.split_once('=') else {
            return Err((line_number, format!("expected `NAME=value`, got `{line}`")));
        };
        let name = name.trim();
        if !is_identifier(name) {
            return Err((line_number, format!("`{name}` is not a valid variable name")));
        }
        let value = value.trim();
        let value = if let Some(inner) = value.strip_prefix('"') {
            let Some(inner) = inner.strip_suffix('"') else {
                return Err((line_number, "unterminated double quote".to_string()));
            };
            unescape_double_quoted(inner)
        } else if let Some(inner) = value.strip_prefix('\'') {
            let Some(inner) = inner.strip_suffix('\'') else {
                return Err((line_number, "unterminated single quote".to_string()));
            };
            inner.to_string()
        } else {
            // An unquoted value ends at ` #`.
            value.split(" #").next().unwrap_or_default().trim_end().to_string()
        };
        if vars.insert(name.to_string(), value).is_none() {
            order.push(name.to_string());
        }
    }
    Ok(order.into_iter().filter_map(|name| vars.remove(&name).map(|value| (name, value))).collect())
}

fn unescape_double_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(current) = chars.next() {
        if current != '\\' {
            out.push(current);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AppConfig, ConfigError> {
        let dir = std::env::temp_dir().join(format!("graphward-config-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(dir.join("agent.py"), "graph = None\n").expect("write");
        AppConfig::parse(&dir.join("langgraph.json"), text)
    }

    fn error_line(text: &str) -> String {
        let message = parse(text).expect_err("should fail").to_string();
        assert!(!message.contains('\n'), "one line: {message}");
        message
    }

    #[test]
    fn file_and_module_graphs_resolve() {
        let config = parse(r#"{"graphs": {"a": "./agent.py:graph", "b": "pkg.mod:make", "c": {"path": "./agent.py:graph", "description": "d"}}, "dependencies": ["."], "http": {"x": 1}}"#)
            .expect("valid");
        assert_eq!(config.graphs.len(), 3);
        assert!(matches!(&config.graphs[0].location.source, ModuleSource::File(path) if path.ends_with("agent.py")));
        assert_eq!(config.graphs[1].location.source, ModuleSource::Module("pkg.mod".into()));
        assert_eq!(config.graphs[1].location.attribute, "make");
        assert_eq!(config.graphs[2].description.as_deref(), Some("d"));
        assert_eq!(config.local_dependencies.len(), 1);
        assert_eq!(config.ignored_keys, vec!["http.x".to_string()]);
    }

    #[test]
    fn invalid_configs_are_one_clear_line() {
        let cases = [
            ("{", "invalid JSON at line 1, column 1"),
            ("{\n  \"graphs\": {,}\n}", "invalid JSON at line 2, column 14"),
            ("[]", "must be a JSON object"),
            ("{}", "`graphs`: is missing"),
            (r#"{"graphs": []}"#, "`graphs`: must be an object"),
            (r#"{"graphs": {"a": "./agent.py"}}"#, "`graphs.a`: `./agent.py` has no `:attribute`"),
            (r#"{"graphs": {"a": "./missing.py:graph"}}"#, "`graphs.a`: file `./missing.py` not found"),
            (r#"{"graphs": {"a": 3}}"#, "`graphs.a`: must be a string"),
            (r#"{"graphs": {"a": "./agent.py:graph"}, "env": 3}"#, "`env`: must be a path"),
            (r#"{"graphs": {"a": "./agent.py:graph"}, "env": "./nope.env"}"#, "`env`: cannot read env file"),
            (r#"{"graphs": {"a": "./agent.py:graph"}, "dependencies": "."}"#, "`dependencies`: must be a list"),
            (r#"{"graphs": {"a": "./agent.py:graph"}, "auth": {"path": "./agent.py"}}"#, "`auth.path`: `./agent.py` has no `:attribute`"),
            (r#"{"graphs": {"a": "./agent.py:graph"}, "auth": {"disable_studio_auth": "yes"}}"#, "`auth.disable_studio_auth`: must be true or false"),
            (r#"{"graphs": {"a": "./agent.py:graph"}, "http": 1}"#, "`http`: must be an object"),
            (r#"{"graphs": {"a": "./agent.py:graph"}, "http": {"app": "./nope.py:app"}}"#, "`http.app`: file `./nope.py` not found"),
            (r#"{"graphs": {"a": "./agent.py:graph"}, "http": {"mount_prefix": "api"}}"#, "`http.mount_prefix`: `api` must be a path"),
            (r#"{"graphs": {"a": "./agent.py:graph"}, "http": {"middleware_order": "last"}}"#, "`http.middleware_order`: must be"),
            (r#"{"graphs": {"a": "./agent.py:graph"}, "http": {"cors": {"allow_origin_regex": "("}}}"#, "`http.cors.allow_origin_regex`: is not a valid"),
            (r#"{"graphs": {"a": "./agent.py:graph"}, "http": {"configurable_headers": {"include": [1]}}}"#, "`http.configurable_headers.include`: must be a list"),
        ];
        for (text, expected) in cases {
            let message = error_line(text);
            assert!(message.contains(expected), "{text}: {message}");
            assert!(message.contains("langgraph.json"), "{message}");
        }
    }

    #[test]
    fn env_files_parse() {
        let vars = parse_env_file("# c\nA=1\nexport B = \"x\\ny\"\nC='q # r'\nD=plain # comment\nA=2\n").expect("valid");
        assert_eq!(
            vars,
            vec![("A".into(), "2".into()), ("B".into(), "x\ny".into()), ("C".into(), "q # r".into()), ("D".into(), "plain".into())]
        );
        assert_eq!(parse_env_file("A=1\nnope\n").expect_err("invalid").0, 2);
    }
}
