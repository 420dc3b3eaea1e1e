//! `graphward dev`'s hot reload: the app's files are polled (every [`POLL`]) and, when one
//! changed, its code — graphs, `auth.path`, `http.app` — is imported again in the running
//! interpreter, checked, and swapped in as a whole (see `graphward_host.reload`). On an error
//! the old code keeps serving and the error is one line in the log. Runs already executing
//! finish on the graph they started with.
//!
//! `langgraph.json` edits that only move where code lives (a graph's, `auth.path`'s or
//! `http.app`'s path) are applied the same way. Any other change to it (a graph added,
//! `env`, `http` settings, …) needs a new process: the server then asks to be restarted
//! ([`Reloader::restart`]), which `cli` does by stopping like on Ctrl-C and starting the same
//! command again — what the reference's reloader does on every change.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::config::{AppConfig, ModuleSource};
use crate::server::AppState;

/// How often the files are looked at.
const POLL: Duration = Duration::from_millis(400);

/// Folders never watched (besides hidden ones): environments, caches, build output.
const SKIPPED_DIRS: [&str; 8] = ["venv", "__pycache__", "node_modules", "site-packages", "target", "build", "dist", "htmlcov"];

/// At most this many directory entries are looked at per scan (a huge tree is watched only
/// up to there, and at its named files).
const MAX_ENTRIES: usize = 20_000;

type Snapshot = BTreeMap<PathBuf, (Option<SystemTime>, u64)>;

/// Checks the app a restart would start (see [`watch`]); the error is one line.
pub type Validator = Arc<dyn Fn(&Path) -> Result<(), String> + Send + Sync>;

/// What the watcher asks of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Keep serving (reloaded, or the change could not be applied and was logged).
    Serving,
    /// `langgraph.json` changed in a way only a new process applies: stop and start again.
    Restart,
}

/// Watches the files of the app `state` serves until `stop`, reloading its code on changes.
/// Completes with [`Outcome::Restart`] when the server must be started again.
/// `validate` checks a `langgraph.json` a restart would start with (imports its code in a
/// separate process); the restart happens only if it passes.
pub async fn watch(state: AppState, mut stop: tokio::sync::watch::Receiver<bool>, validate: Validator) -> Outcome {
    let mut config = Arc::new(state.config().clone());
    let mut raw = read_raw(&config.path);
    let mut env_file = config_env_file(&config);
    let mut snapshot = scan(&config, env_file.as_deref());
    loop {
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            _ = stop.changed() => return Outcome::Serving,
        }
        let now = scan(&config, env_file.as_deref());
        if now == snapshot {
            continue;
        }
        // Let an editor finish writing (several files, or a file in steps).
        tokio::time::sleep(POLL).await;
        let previous = std::mem::replace(&mut snapshot, scan(&config, env_file.as_deref()));
        let loaded = match AppConfig::load(&config.path) {
            Ok(loaded) => loaded,
            Err(error) => {
                tracing::error!("reload failed, the previous code keeps serving: {error}");
                continue;
            }
        };
        let new_raw = read_raw(&config.path);
        let mut changed = structural_changes(raw.as_ref(), new_raw.as_ref());
        // A `.env` file's new contents (the key names the same file) need a new process too.
        if loaded.env != config.env && !changed.iter().any(|key| key == "`env`") {
            changed.push("`env`".to_string());
        }
        // The store's embedding function is loaded once, with the storage: new code there too.
        if let Some(file) = embed_file(&config)
            && previous.get(&file) != snapshot.get(&file)
        {
            changed.push(format!("`{}` (`store.index.embed`)", file.display()));
        }
        if !changed.is_empty() {
            let (path, validate) = (config.path.clone(), Arc::clone(&validate));
            let checked = tokio::task::spawn_blocking(move || validate(&path)).await.unwrap_or_else(|error| Err(error.to_string()));
            match checked {
                Ok(()) => {
                    tracing::warn!("{}: {} changed; restarting to apply it", config.path.display(), changed.join(", "));
                    return Outcome::Restart;
                }
                // The running app stays what it was: the next change is checked against it again.
                Err(error) => {
                    tracing::error!("reload failed, the previous code keeps serving: {error}");
                    continue;
                }
            }
        }
        let candidate = Arc::new(loaded);
        let started = std::time::Instant::now();
        match state.python().reload(Arc::clone(&candidate)).await {
            Ok(report) => {
                if let Some(routes) = &report.custom_routes {
                    state.replace_custom_routes(routes.as_deref(), report.custom_openapi.as_ref());
                }
                tracing::info!(graphs = report.graph_names.len(), millis = started.elapsed().as_millis() as u64, "reloaded the app's code");
                config = candidate;
                raw = new_raw;
                env_file = config_env_file(&config);
                snapshot = scan(&config, env_file.as_deref());
            }
            Err(error) => tracing::error!("reload failed, the previous code keeps serving: {error}"),
        }
    }
}

fn read_raw(path: &Path) -> Option<Value> {
    std::fs::read_to_string(path).ok().and_then(|text| serde_json::from_str(&text).ok())
}

/// The top-level keys of `langgraph.json` whose change a reload cannot apply: everything but
/// the locations of code (graph paths, `auth.path`, `http.app`).
fn structural_changes(old: Option<&Value>, new: Option<&Value>) -> Vec<String> {
    let (Some(Value::Object(old)), Some(Value::Object(new))) = (old.map(masked), new.map(masked)) else { return Vec::new() };
    let mut keys: Vec<String> = Vec::new();
    for key in old.keys().chain(new.keys()) {
        let key = format!("`{key}`");
        if old.get(&key[1..key.len() - 1]) != new.get(&key[1..key.len() - 1]) && !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys
}

/// `langgraph.json` with the locations of code blanked out.
fn masked(value: &Value) -> Value {
    let mut value = value.clone();
    if let Some(graphs) = value.get_mut("graphs").and_then(Value::as_object_mut) {
        for entry in graphs.values_mut() {
            match entry {
                Value::String(_) => *entry = Value::Null,
                Value::Object(object) => {
                    object.remove("path");
                }
                _ => {}
            }
        }
    }
    // Whether there is an `auth.path` or an `http.app` stays part of the structure (the auth
    // policy and the routing are chosen at start-up); only where it lives may move.
    for (block, key) in [("auth", "path"), ("http", "app")] {
        if let Some(object) = value.get_mut(block).and_then(Value::as_object_mut)
            && let Some(location) = object.get_mut(key)
        {
            *location = Value::Bool(!location.is_null());
        }
    }
    value
}

/// Modification time and size of every watched file (`env_file`: the `.env` file `env` names,
/// read from `langgraph.json` once per loaded config, not at every scan).
fn scan(config: &AppConfig, env_file: Option<&Path>) -> Snapshot {
    let mut files = Snapshot::new();
    let mut named: Vec<PathBuf> = vec![config.path.clone()];
    named.extend(config.graphs.iter().filter_map(|graph| file_of(&graph.location.source)));
    named.extend(config.auth.as_ref().and_then(|auth| auth.path.as_ref()).and_then(|path| file_of(&path.source)));
    named.extend(config.http.app.as_ref().and_then(|app| file_of(&app.source)));
    named.extend(env_file.map(Path::to_path_buf));
    named.extend(embed_file(config));
    for file in named {
        record(&mut files, &file);
    }
    let mut folders: Vec<PathBuf> = vec![config.dir.clone()];
    folders.extend(config.local_dependencies.iter().cloned());
    let mut budget = MAX_ENTRIES;
    for folder in folders {
        walk(&folder, &mut files, &mut budget, 0);
    }
    files
}

/// The file of `store.index.embed`, when it names one.
fn embed_file(config: &AppConfig) -> Option<PathBuf> {
    match &config.store.index.as_ref()?.embed {
        crate::config::EmbedSource::Object(location) => file_of(&location.source),
        crate::config::EmbedSource::Provider(_) => None,
    }
}

fn file_of(source: &ModuleSource) -> Option<PathBuf> {
    match source {
        ModuleSource::File(path) => Some(path.clone()),
        ModuleSource::Module(_) => None,
    }
}

/// The `.env` file `env` names, if it names one.
fn config_env_file(config: &AppConfig) -> Option<PathBuf> {
    let raw = read_raw(&config.path)?;
    raw.get("env").and_then(Value::as_str).map(|file| config.dir.join(file))
}

fn record(files: &mut Snapshot, path: &Path) {
    let metadata = std::fs::metadata(path).ok();
    files.insert(path.to_path_buf(), (metadata.as_ref().and_then(|m| m.modified().ok()), metadata.map_or(0, |m| m.len())));
}

fn walk(folder: &Path, files: &mut Snapshot, budget: &mut usize, depth: usize) {
    if depth > 12 || *budget == 0 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(folder) else { return };
    for entry in entries.flatten() {
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_dir() {
            if !SKIPPED_DIRS.contains(&name.as_ref()) && !name.starts_with('.') {
                walk(&path, files, budget, depth + 1);
            }
        } else if name.ends_with(".py") || name == ".env" || name.ends_with(".json") {
            record(files, &path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_code_locations_change_without_a_restart() {
        let old = serde_json::json!({"graphs": {"a": "./a.py:g", "b": {"path": "./b.py:g", "config": {}}}, "auth": {"path": "./auth.py:auth"}, "http": {"app": "./w.py:app"}});
        let moved = serde_json::json!({"graphs": {"a": "./other.py:g", "b": {"path": "./c.py:g", "config": {}}}, "auth": {"path": "./auth2.py:auth"}, "http": {"app": "./w2.py:app"}});
        assert!(structural_changes(Some(&old), Some(&moved)).is_empty());
        let added = serde_json::json!({"graphs": {"a": "./a.py:g", "b": {"path": "./b.py:g", "config": {}}, "c": "./c.py:g"}, "auth": {"path": "./auth.py:auth"}, "http": {"app": "./w.py:app"}});
        assert_eq!(structural_changes(Some(&old), Some(&added)), vec!["`graphs`".to_string()]);
        let mut env = old.clone();
        env["env"] = serde_json::json!({"A": "1"});
        env["http"]["cors"] = serde_json::json!({});
        assert_eq!(structural_changes(Some(&old), Some(&env)), vec!["`http`".to_string(), "`env`".to_string()]);
        let no_auth = serde_json::json!({"graphs": {"a": "./a.py:g", "b": {"path": "./b.py:g", "config": {}}}, "auth": {}, "http": {"app": "./w.py:app"}});
        assert_eq!(structural_changes(Some(&no_auth), Some(&old)), vec!["`auth`".to_string()]);
    }
}
