//! The `checkpointer` block of `langgraph.json`: thread TTL (`ttl`), the serializer's options
//! (`serde`) and the user's own saver (`path`).

use std::path::Path;
use std::time::Duration;

use serde_json::{Map, Value};

use super::{Checker, ConfigError, ModuleSource, ObjectLocation, json_type, module_part};

/// What happens to a thread whose TTL ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TtlStrategy {
    /// The thread goes, as with `DELETE /threads/{id}`.
    Delete,
    /// Every checkpoint but the latest (per namespace) goes; the thread stays.
    KeepLatest,
}

impl TtlStrategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delete => "delete",
            Self::KeepLatest => "keep_latest",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "delete" => Some(Self::Delete),
            "keep_latest" => Some(Self::KeepLatest),
            _ => None,
        }
    }
}

/// A thread's TTL: `minutes` after its last activity, `strategy` applies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThreadTtl {
    pub strategy: TtlStrategy,
    pub minutes: f64,
}

impl ThreadTtl {
    /// When a thread last active at `updated_at` (µs since the epoch) expires.
    pub fn expires_at(&self, updated_at: i64) -> i64 {
        // f64 → i64 saturates; a TTL of centuries is simply "never" in practice.
        updated_at.saturating_add((self.minutes * 60_000_000.0) as i64)
    }
}

/// `checkpointer.ttl`.
#[derive(Debug, Clone, PartialEq)]
pub struct TtlConfig {
    /// The strategy of threads given a TTL without one, and of `default_ttl`.
    pub strategy: TtlStrategy,
    /// The TTL (minutes) of threads created without one; `None`: such threads never expire.
    pub default_ttl: Option<f64>,
    /// How often expired threads are swept.
    pub sweep_interval: Duration,
    /// How many expired threads one sweep handles at most (the rest wait for the next).
    pub sweep_limit: usize,
}

impl TtlConfig {
    /// The TTL a new thread gets when its creation names none.
    pub fn default_for_new_thread(&self) -> Option<ThreadTtl> {
        self.default_ttl.map(|minutes| ThreadTtl { strategy: self.strategy, minutes })
    }
}

/// The sweep interval when `sweep_interval_minutes` is absent (the reference's default).
const DEFAULT_SWEEP_MINUTES: f64 = 5.0;
/// Threads one sweep handles when `sweep_limit` is absent (the reference's default).
const DEFAULT_SWEEP_LIMIT: usize = 1000;

/// Which modules the serializer may revive from JSON (`serde.allowed_json_modules`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedModules {
    /// `true`: any module.
    All,
    /// Module paths, each a list of names (`["my_agent", "models", "Order"]`).
    Listed(Vec<Vec<String>>),
}

/// `checkpointer.serde`: the options of LangGraph's `JsonPlusSerializer`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SerdeConfig {
    pub allowed_json_modules: Option<AllowedModules>,
    pub pickle_fallback: bool,
}

/// The `checkpointer` block.
#[derive(Debug, Clone, Default)]
pub struct CheckpointerConfig {
    pub ttl: Option<TtlConfig>,
    pub serde: Option<SerdeConfig>,
    /// `path`: the user's own `BaseCheckpointSaver` (an instance, a factory, or an async
    /// context manager yielding one), used instead of graphward's.
    pub path: Option<ObjectLocation>,
}

impl CheckpointerConfig {
    /// How often expired threads are swept. Threads may be given a TTL at creation whether or
    /// not `checkpointer.ttl` is configured, so the sweep always runs.
    pub fn sweep_interval(&self) -> Duration {
        self.ttl.as_ref().map_or(Duration::from_secs_f64(DEFAULT_SWEEP_MINUTES * 60.0), |ttl| ttl.sweep_interval)
    }

    /// How many expired threads one sweep handles at most.
    pub fn sweep_limit(&self) -> usize {
        self.ttl.as_ref().map_or(DEFAULT_SWEEP_LIMIT, |ttl| ttl.sweep_limit)
    }
}

const KNOWN_SUB_KEYS: &[&str] = &["ttl", "serde", "path"];

impl Checker<'_> {
    /// Parses `checkpointer`; sub-keys graphward does not act on are appended to `ignored`.
    pub(super) fn checkpointer(&self, dir: &Path, value: Option<&Value>, ignored: &mut Vec<String>) -> Result<CheckpointerConfig, ConfigError> {
        let object = match value {
            None | Some(Value::Null) => return Ok(CheckpointerConfig::default()),
            Some(Value::Object(object)) => object,
            Some(other) => {
                return Err(self.invalid("checkpointer", format!("must be an object like {{\"ttl\": {{\"default_ttl\": 43200}}}}, not {}", json_type(other))));
            }
        };
        ignored.extend(object.keys().filter(|key| !KNOWN_SUB_KEYS.contains(&key.as_str())).map(|key| format!("checkpointer.{key}")));
        Ok(CheckpointerConfig {
            ttl: self.thread_ttl(object.get("ttl"), ignored)?,
            serde: self.serde(object.get("serde"), ignored)?,
            path: self.saver_path(dir, object.get("path"))?,
        })
    }

    fn saver_path(&self, dir: &Path, value: Option<&Value>) -> Result<Option<ObjectLocation>, ConfigError> {
        let key = "checkpointer.path";
        let raw = match value {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::String(raw)) => raw,
            Some(other) => return Err(self.invalid(key, format!("must be a string like \"./checkpointer.py:saver\", not {}", json_type(other)))),
        };
        let location = self.location(dir, key, raw, "./checkpointer.py:saver")?;
        if let ModuleSource::File(file) = &location.source
            && !file.is_file()
        {
            return Err(self.invalid(key, format!("file `{}` not found ({}); fix the path before the `:`", module_part(raw), file.display())));
        }
        Ok(Some(location))
    }

    fn thread_ttl(&self, value: Option<&Value>, ignored: &mut Vec<String>) -> Result<Option<TtlConfig>, ConfigError> {
        let object = match value {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Object(object)) => object,
            Some(other) => {
                return Err(self.invalid("checkpointer.ttl", format!("must be an object like {{\"strategy\": \"delete\", \"default_ttl\": 43200}}, not {}", json_type(other))));
            }
        };
        let known = ["strategy", "default_ttl", "sweep_interval_minutes", "sweep_limit"];
        ignored.extend(object.keys().filter(|key| !known.contains(&key.as_str())).map(|key| format!("checkpointer.ttl.{key}")));
        let strategy = match object.get("strategy") {
            None | Some(Value::Null) => TtlStrategy::Delete,
            Some(Value::String(text)) => TtlStrategy::parse(text).ok_or_else(|| {
                self.invalid("checkpointer.ttl.strategy", format!("`{text}` is not a strategy; use \"delete\" or \"keep_latest\""))
            })?,
            Some(other) => return Err(self.invalid("checkpointer.ttl.strategy", format!("must be \"delete\" or \"keep_latest\", not {}", json_type(other)))),
        };
        let default_ttl = self.positive_minutes(object, "default_ttl")?;
        let sweep_minutes = self.positive_minutes(object, "sweep_interval_minutes")?.unwrap_or(DEFAULT_SWEEP_MINUTES);
        let sweep_limit = match object.get("sweep_limit") {
            None | Some(Value::Null) => DEFAULT_SWEEP_LIMIT,
            Some(value) => value.as_u64().and_then(|limit| usize::try_from(limit).ok()).filter(|limit| *limit > 0).ok_or_else(|| {
                self.invalid("checkpointer.ttl.sweep_limit", format!("must be a whole number of threads above 0, not {value}"))
            })?,
        };
        Ok(Some(TtlConfig { strategy, default_ttl, sweep_interval: Duration::from_secs_f64(sweep_minutes * 60.0), sweep_limit }))
    }

    /// A number of minutes above 0 (fractions allowed), or `None` when absent.
    fn positive_minutes(&self, object: &Map<String, Value>, name: &str) -> Result<Option<f64>, ConfigError> {
        match object.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => match value.as_f64() {
                Some(minutes) if minutes > 0.0 && minutes.is_finite() && minutes < 1e12 => Ok(Some(minutes)),
                _ => Err(self.invalid(&format!("checkpointer.ttl.{name}"), format!("must be a number of minutes above 0, not {value}"))),
            },
        }
    }

    fn serde(&self, value: Option<&Value>, ignored: &mut Vec<String>) -> Result<Option<SerdeConfig>, ConfigError> {
        let object = match value {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Object(object)) => object,
            Some(other) => {
                return Err(self.invalid("checkpointer.serde", format!("must be an object like {{\"pickle_fallback\": true}}, not {}", json_type(other))));
            }
        };
        let known = ["allowed_json_modules", "pickle_fallback"];
        ignored.extend(object.keys().filter(|key| !known.contains(&key.as_str())).map(|key| format!("checkpointer.serde.{key}")));
        let key = "checkpointer.serde.allowed_json_modules";
        let example = "a list of module paths like [[\"my_agent\", \"models\", \"Order\"]], or true";
        let allowed_json_modules = match object.get("allowed_json_modules") {
            None | Some(Value::Null) | Some(Value::Bool(false)) => None,
            Some(Value::Bool(true)) => Some(AllowedModules::All),
            Some(Value::Array(items)) => {
                let mut paths = Vec::with_capacity(items.len());
                for (index, item) in items.iter().enumerate() {
                    let parts: Option<Vec<String>> = match item {
                        Value::Array(parts) if !parts.is_empty() => parts.iter().map(|part| part.as_str().filter(|part| !part.is_empty()).map(str::to_string)).collect(),
                        // `"pkg.module.Class"` is the same path written with dots.
                        Value::String(dotted) if !dotted.is_empty() && dotted.split('.').all(|part| !part.is_empty()) => {
                            Some(dotted.split('.').map(str::to_string).collect())
                        }
                        _ => None,
                    };
                    paths.push(parts.ok_or_else(|| self.invalid(&format!("{key}[{index}]"), format!("must be {example}")))?);
                }
                Some(AllowedModules::Listed(paths))
            }
            Some(other) => return Err(self.invalid(key, format!("must be {example}, not {}", json_type(other)))),
        };
        let pickle_fallback = match object.get("pickle_fallback") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(flag)) => *flag,
            Some(other) => return Err(self.invalid("checkpointer.serde.pickle_fallback", format!("must be true or false, not {}", json_type(other)))),
        };
        Ok(Some(SerdeConfig { allowed_json_modules, pickle_fallback }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::AppConfig;
    use super::*;

    fn parse(text: &str) -> Result<AppConfig, ConfigError> {
        let dir = std::env::temp_dir().join(format!("graphward-checkpointer-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(dir.join("agent.py"), "graph = None\n").expect("write");
        AppConfig::parse(&dir.join("langgraph.json"), text)
    }

    fn checkpointer(block: &str) -> Result<(CheckpointerConfig, Vec<String>), String> {
        parse(&format!(r#"{{"graphs": {{"a": "./agent.py:graph"}}, "checkpointer": {block}}}"#))
            .map(|config| (config.checkpointer, config.ignored_keys))
            .map_err(|error| error.to_string())
    }

    #[test]
    fn ttl_parses_with_defaults_and_fractions() {
        let (config, ignored) = checkpointer(r#"{"ttl": {"default_ttl": 0.05, "sweep_interval_minutes": 0.01}, "index": {}}"#).expect("valid");
        let ttl = config.ttl.expect("ttl");
        assert_eq!(ttl.strategy, TtlStrategy::Delete);
        assert_eq!(ttl.default_for_new_thread(), Some(ThreadTtl { strategy: TtlStrategy::Delete, minutes: 0.05 }));
        assert_eq!(ttl.sweep_interval, Duration::from_millis(600));
        assert_eq!(ttl.sweep_limit, 1000);
        assert_eq!(ignored, vec!["checkpointer.index".to_string()]);
        let (config, _) = checkpointer(r#"{"ttl": {"strategy": "keep_latest"}}"#).expect("valid");
        let ttl = config.ttl.expect("ttl");
        assert_eq!((ttl.strategy, ttl.default_ttl, ttl.sweep_interval), (TtlStrategy::KeepLatest, None, Duration::from_secs(300)));
    }

    #[test]
    fn path_resolves_like_graphs() {
        let (config, _) = checkpointer(r#"{"path": "./agent.py:saver"}"#).expect("valid");
        let path = config.path.expect("path");
        assert!(matches!(&path.source, ModuleSource::File(file) if file.ends_with("agent.py")));
        assert_eq!(path.attribute, "saver");
        let (config, _) = checkpointer(r#"{"path": "my_pkg.savers:make"}"#).expect("valid");
        assert_eq!(config.path.expect("path").source, ModuleSource::Module("my_pkg.savers".into()));
    }

    #[test]
    fn serde_parses_lists_and_true() {
        let (config, _) = checkpointer(r#"{"serde": {"allowed_json_modules": [["a", "b"], "c.d.E"], "pickle_fallback": true}}"#).expect("valid");
        let serde = config.serde.expect("serde");
        assert!(serde.pickle_fallback);
        assert_eq!(serde.allowed_json_modules, Some(AllowedModules::Listed(vec![vec!["a".into(), "b".into()], vec!["c".into(), "d".into(), "E".into()]])));
        let (config, _) = checkpointer(r#"{"serde": {"allowed_json_modules": true}}"#).expect("valid");
        assert_eq!(config.serde.expect("serde").allowed_json_modules, Some(AllowedModules::All));
    }

    #[test]
    fn bad_values_are_one_line_naming_the_key() {
        let cases = [
            ("3", "`checkpointer`: must be an object"),
            (r#"{"ttl": []}"#, "`checkpointer.ttl`: must be an object"),
            (r#"{"ttl": {"strategy": "archive"}}"#, "`checkpointer.ttl.strategy`: `archive` is not a strategy"),
            (r#"{"ttl": {"default_ttl": 0}}"#, "`checkpointer.ttl.default_ttl`: must be a number of minutes above 0"),
            (r#"{"ttl": {"default_ttl": "1h"}}"#, "`checkpointer.ttl.default_ttl`: must be a number"),
            (r#"{"ttl": {"sweep_interval_minutes": -1}}"#, "`checkpointer.ttl.sweep_interval_minutes`: must be a number"),
            (r#"{"ttl": {"sweep_limit": 1.5}}"#, "`checkpointer.ttl.sweep_limit`: must be a whole number"),
            (r#"{"serde": {"pickle_fallback": "yes"}}"#, "`checkpointer.serde.pickle_fallback`: must be true or false"),
            (r#"{"serde": {"allowed_json_modules": [[]]}}"#, "`checkpointer.serde.allowed_json_modules[0]`: must be a list"),
            (r#"{"serde": {"allowed_json_modules": "x"}}"#, "`checkpointer.serde.allowed_json_modules`: must be a list"),
            (r#"{"path": 1}"#, "`checkpointer.path`: must be a string"),
            (r#"{"path": "./agent.py"}"#, "`checkpointer.path`: `./agent.py` has no `:attribute`"),
            (r#"{"path": "./nope.py:saver"}"#, "`checkpointer.path`: file `./nope.py` not found"),
        ];
        for (block, expected) in cases {
            let message = checkpointer(block).expect_err(block);
            assert!(message.contains(expected) && message.contains("langgraph.json") && !message.contains('\n'), "{block}: {message}");
        }
    }
}
