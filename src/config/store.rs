//! `langgraph.json` → `store`: the semantic index (`store.index`) and item expiry
//! (`store.ttl`), as `langgraph dev` reads them. `store.path` (a user's own `BaseStore`) is
//! accepted and not acted on: graphward's store is its own storage.

use std::path::Path;

use serde_json::Value;

use super::{Checker, ConfigError, ObjectLocation, json_type};

/// The `store` block.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoreSpec {
    /// `store.index`: items are embedded and `query` ranks them.
    pub index: Option<IndexSpec>,
    /// `store.ttl`: the defaults of item expiry (per-request `ttl`s apply without it too).
    pub ttl: TtlSpec,
    /// Sub-keys accepted and not acted on (`store.path`, unknown ones), as `store.<key>`.
    pub ignored_keys: Vec<String>,
}

/// `store.index`.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexSpec {
    /// Where the embeddings come from.
    pub embed: EmbedSource,
    /// The length of every vector the embeddings return.
    pub dims: usize,
    /// The value paths embedded when a put names none (`["$"]`: the whole value).
    pub fields: Vec<String>,
}

/// `store.index.embed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmbedSource {
    /// `./file.py:fn` or `module:fn`: a callable `texts -> vectors` or a LangChain
    /// `Embeddings` object.
    Object(ObjectLocation),
    /// `provider:model`, built by LangChain's `init_embeddings`.
    Provider(String),
}

/// `store.ttl` (all defaults when absent).
#[derive(Debug, Clone, PartialEq)]
pub struct TtlSpec {
    /// Whether reads refresh an item's expiry unless a request says otherwise.
    pub refresh_on_read: bool,
    /// Minutes an item lives when a put names no `ttl` (none: forever).
    pub default_ttl: Option<f64>,
    /// Minutes between sweeps of expired items.
    pub sweep_interval_minutes: u64,
}

/// How often expired items are deleted when `store.ttl` does not say (as LangGraph's stores).
const DEFAULT_SWEEP_MINUTES: u64 = 5;

impl Default for TtlSpec {
    fn default() -> Self {
        Self { refresh_on_read: true, default_ttl: None, sweep_interval_minutes: DEFAULT_SWEEP_MINUTES }
    }
}

/// The providers LangChain's `init_embeddings` knows: `provider:model` with one of these is a
/// provider, anything else a module (`module:fn`).
const PROVIDERS: &[&str] = &[
    "azure_openai",
    "bedrock",
    "cohere",
    "google_genai",
    "google_vertexai",
    "huggingface",
    "mistralai",
    "ollama",
    "openai",
];

const INDEX_KEYS: &[&str] = &["embed", "dims", "fields"];
const TTL_KEYS: &[&str] = &["refresh_on_read", "default_ttl", "sweep_interval_minutes", "omit_expired"];

impl Checker<'_> {
    /// Parses `store`; every bad value is one [`ConfigError`] naming its key.
    pub(super) fn store(&self, dir: &Path, value: Option<&Value>) -> Result<StoreSpec, ConfigError> {
        let object = match value {
            None | Some(Value::Null) => return Ok(StoreSpec::default()),
            Some(Value::Object(object)) => object,
            Some(other) => return Err(self.invalid("store", format!("must be an object like {{\"index\": {{…}}, \"ttl\": {{…}}}}, not {}", json_type(other)))),
        };
        let mut spec = StoreSpec::default();
        for (key, value) in object {
            match key.as_str() {
                "index" => spec.index = self.index(dir, value, &mut spec.ignored_keys)?,
                "ttl" => spec.ttl = self.ttl(value, &mut spec.ignored_keys)?,
                _ => spec.ignored_keys.push(format!("store.{key}")),
            }
        }
        Ok(spec)
    }

    fn index(&self, dir: &Path, value: &Value, ignored: &mut Vec<String>) -> Result<Option<IndexSpec>, ConfigError> {
        let object = match value {
            Value::Null => return Ok(None),
            Value::Object(object) => object,
            other => return Err(self.invalid("store.index", format!("must be an object like {{\"embed\": \"./embed.py:embed\", \"dims\": 64}}, not {}", json_type(other)))),
        };
        ignored.extend(object.keys().filter(|key| !INDEX_KEYS.contains(&key.as_str())).map(|key| format!("store.index.{key}")));
        let embed = match object.get("embed") {
            Some(Value::String(raw)) => self.embed_source(dir, raw)?,
            None | Some(Value::Null) => return Err(self.invalid("store.index.embed", "is missing; name an embedding function (\"./embed.py:embed\") or a model (\"openai:text-embedding-3-small\")")),
            Some(other) => return Err(self.invalid("store.index.embed", format!("must be a string like \"./embed.py:embed\" or \"openai:text-embedding-3-small\", not {}", json_type(other)))),
        };
        let dims = match object.get("dims") {
            Some(Value::Number(number)) => number.as_u64().filter(|dims| *dims > 0).and_then(|dims| usize::try_from(dims).ok()),
            _ => None,
        };
        let Some(dims) = dims else {
            return Err(self.invalid("store.index.dims", "must be a positive whole number: the length of the vectors your embeddings return (e.g. 1536)"));
        };
        let fields = match object.get("fields") {
            None | Some(Value::Null) => vec!["$".to_string()],
            Some(Value::Array(items)) if !items.is_empty() => items
                .iter()
                .map(|item| match item {
                    Value::String(path) if crate::store::index::check_path(path).is_ok() => Ok(path.clone()),
                    Value::String(path) => Err(self.invalid("store.index.fields", format!("`{path}`: {}", crate::store::index::check_path(path).err().unwrap_or_default()))),
                    other => Err(self.invalid("store.index.fields", format!("must be a list of paths like [\"$\"] or [\"text\", \"meta.title\"], not a list holding {}", json_type(other)))),
                })
                .collect::<Result<_, _>>()?,
            Some(other) => return Err(self.invalid("store.index.fields", format!("must be a non-empty list of paths like [\"$\"] or [\"text\", \"meta.title\"], not {}", json_type(other)))),
        };
        Ok(Some(IndexSpec { embed, dims, fields }))
    }

    /// `./file.py:fn` (a file), `provider:model` (a known provider) or `module:fn`.
    fn embed_source(&self, dir: &Path, raw: &str) -> Result<EmbedSource, ConfigError> {
        let key = "store.index.embed";
        let Some((module, rest)) = raw.split_once(':') else {
            return Err(self.invalid(key, format!("`{raw}` is neither `./file.py:function` nor `provider:model` (e.g. \"openai:text-embedding-3-small\")")));
        };
        if PROVIDERS.contains(&module) {
            if rest.is_empty() {
                return Err(self.invalid(key, format!("`{raw}` names no model; write it as `{module}:<model name>`")));
            }
            return Ok(EmbedSource::Provider(raw.to_string()));
        }
        let location = self.location(dir, key, raw, "./embed.py:embed").map_err(|_| {
            self.invalid(key, format!("`{raw}` is neither `./file.py:function`, `module:function` nor `provider:model` with a provider of {}", PROVIDERS.join(", ")))
        })?;
        if let super::ModuleSource::File(file) = &location.source
            && !file.is_file()
        {
            return Err(self.invalid(key, format!("file `{}` not found ({})", super::module_part(raw), file.display())));
        }
        Ok(EmbedSource::Object(location))
    }

    fn ttl(&self, value: &Value, ignored: &mut Vec<String>) -> Result<TtlSpec, ConfigError> {
        let object = match value {
            Value::Null => return Ok(TtlSpec::default()),
            Value::Object(object) => object,
            other => return Err(self.invalid("store.ttl", format!("must be an object like {{\"default_ttl\": 60}}, not {}", json_type(other)))),
        };
        ignored.extend(object.keys().filter(|key| !TTL_KEYS.contains(&key.as_str())).map(|key| format!("store.ttl.{key}")));
        let flag = |name: &str, default: bool| match object.get(name) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(flag)) => Ok(*flag),
            Some(other) => Err(self.invalid(&format!("store.ttl.{name}"), format!("must be true or false, not {}", json_type(other)))),
        };
        let refresh_on_read = flag("refresh_on_read", true)?;
        // Expired items are never returned, whatever `omit_expired` says; it is checked only.
        flag("omit_expired", true)?;
        let default_ttl = match object.get("default_ttl") {
            None | Some(Value::Null) => None,
            Some(Value::Number(number)) => match number.as_f64() {
                Some(minutes) if minutes > 0.0 && minutes.is_finite() => Some(minutes),
                _ => return Err(self.invalid("store.ttl.default_ttl", "must be a positive number of minutes, or null for items that never expire")),
            },
            Some(other) => return Err(self.invalid("store.ttl.default_ttl", format!("must be a positive number of minutes or null, not {}", json_type(other)))),
        };
        let sweep_interval_minutes = match object.get("sweep_interval_minutes") {
            None | Some(Value::Null) => DEFAULT_SWEEP_MINUTES,
            Some(Value::Number(number)) => match number.as_u64() {
                Some(minutes) if minutes > 0 => minutes,
                _ => return Err(self.invalid("store.ttl.sweep_interval_minutes", "must be a positive whole number of minutes")),
            },
            Some(other) => return Err(self.invalid("store.ttl.sweep_interval_minutes", format!("must be a positive whole number of minutes, not {}", json_type(other)))),
        };
        Ok(TtlSpec { refresh_on_read, default_ttl, sweep_interval_minutes })
    }
}

#[cfg(test)]
mod tests {
    use super::super::AppConfig;
    use super::*;

    fn parse(text: &str) -> Result<AppConfig, ConfigError> {
        let dir = std::env::temp_dir().join(format!("graphward-store-config-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(dir.join("agent.py"), "graph = None\n").expect("write");
        AppConfig::parse(&dir.join("langgraph.json"), text)
    }

    fn error_line(text: &str) -> String {
        let message = parse(text).expect_err("should fail").to_string();
        assert!(!message.contains('\n') && message.contains("langgraph.json"), "one line naming the file: {message}");
        message
    }

    const GRAPHS: &str = r#""graphs": {"a": "./agent.py:graph"}"#;

    #[test]
    fn store_blocks_resolve() {
        let config = parse(&format!(r#"{{{GRAPHS}, "store": {{"index": {{"embed": "./agent.py:embed", "dims": 64, "fields": ["text", "meta.title", "items[*].x"]}}, "ttl": {{"default_ttl": 0.5, "refresh_on_read": false, "sweep_interval_minutes": 2}}, "path": "./s.py:store"}}}}"#)).expect("valid");
        let index = config.store.index.expect("an index");
        assert!(matches!(&index.embed, EmbedSource::Object(location) if location.attribute == "embed"));
        assert_eq!((index.dims, index.fields.len()), (64, 3));
        assert_eq!(config.store.ttl, TtlSpec { refresh_on_read: false, default_ttl: Some(0.5), sweep_interval_minutes: 2 });
        assert_eq!(config.ignored_keys, vec!["store.path".to_string()]);
        let provider = parse(&format!(r#"{{{GRAPHS}, "store": {{"index": {{"embed": "openai:text-embedding-3-small", "dims": 1536, "distance_type": "cosine"}}}}}}"#)).expect("valid");
        assert_eq!(provider.store.index.as_ref().map(|index| (&index.embed, index.fields.clone())), Some((&EmbedSource::Provider("openai:text-embedding-3-small".into()), vec!["$".to_string()])));
        assert_eq!(provider.ignored_keys, vec!["store.index.distance_type".to_string()]);
        assert_eq!(provider.store.ttl, TtlSpec::default());
        let module = parse(&format!(r#"{{{GRAPHS}, "store": {{"index": {{"embed": "my_pkg.embed:fn", "dims": 8}}}}}}"#)).expect("valid");
        assert!(matches!(module.store.index.map(|index| index.embed), Some(EmbedSource::Object(location)) if location.source == super::super::ModuleSource::Module("my_pkg.embed".into())));
    }

    #[test]
    fn bad_store_values_are_one_line() {
        let cases = [
            (r#""store": 3"#, "`store`: must be an object"),
            (r#""store": {"index": {"embed": "./agent.py:embed", "dims": 0}}"#, "`store.index.dims`: must be a positive whole number"),
            (r#""store": {"index": {"embed": "./agent.py:embed", "dims": 1.5}}"#, "`store.index.dims`"),
            (r#""store": {"index": {"embed": "./agent.py:embed", "dims": "64"}}"#, "`store.index.dims`"),
            (r#""store": {"index": {"dims": 64}}"#, "`store.index.embed`: is missing"),
            (r#""store": {"index": {"embed": "nonsense", "dims": 64}}"#, "`store.index.embed`: `nonsense` is neither"),
            (r#""store": {"index": {"embed": "openai:", "dims": 64}}"#, "names no model"),
            (r#""store": {"index": {"embed": "acme:text-embed-2", "dims": 64}}"#, "`store.index.embed`: `acme:text-embed-2` is neither"),
            (r#""store": {"index": {"embed": "./missing.py:embed", "dims": 64}}"#, "file `./missing.py` not found"),
            (r#""store": {"index": {"embed": "./agent.py:embed", "dims": 64, "fields": "text"}}"#, "`store.index.fields`: must be a non-empty list"),
            (r#""store": {"index": {"embed": "./agent.py:embed", "dims": 64, "fields": [1]}}"#, "`store.index.fields`"),
            (r#""store": {"index": {"embed": "./agent.py:embed", "dims": 64, "fields": ["a[x"]}}"#, "`store.index.fields`: `a[x`"),
            (r#""store": {"ttl": {"default_ttl": -1}}"#, "`store.ttl.default_ttl`: must be a positive number"),
            (r#""store": {"ttl": {"sweep_interval_minutes": 0}}"#, "`store.ttl.sweep_interval_minutes`"),
            (r#""store": {"ttl": {"refresh_on_read": "yes"}}"#, "`store.ttl.refresh_on_read`: must be true or false"),
            (r#""store": {"ttl": 5}"#, "`store.ttl`: must be an object"),
        ];
        for (store, expected) in cases {
            let message = error_line(&format!("{{{GRAPHS}, {store}}}"));
            assert!(message.contains(expected), "{store}: {message}");
        }
    }
}
