//! The layering of ARCHITECTURE.md ("Invariants"), checked over the source text: which
//! modules may name which crates and modules. Comments are not code and are skipped.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `src/`, as (path relative to `src/`, code lines without comments).
fn sources() -> Vec<(String, Vec<String>)> {
    fn walk(directory: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(directory).expect("src/ is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|extension| extension == "rs") {
                found.push(path);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&root, &mut files);
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("a source file is readable");
            let code = text.lines().map(str::trim).filter(|line| !line.starts_with("//")).map(str::to_string).collect();
            (path.strip_prefix(&root).expect("under src/").to_string_lossy().replace('\\', "/"), code)
        })
        .collect()
}

/// The files outside `allowed` (path prefixes) whose code names `needle`, with the line.
fn offenders(needle: &str, allowed: &[&str], only_under: &[&str]) -> Vec<String> {
    sources()
        .into_iter()
        .filter(|(path, _)| !allowed.iter().any(|prefix| path.starts_with(prefix)))
        .filter(|(path, _)| only_under.is_empty() || only_under.iter().any(|prefix| path.starts_with(prefix)))
        .flat_map(|(path, code)| code.into_iter().filter(|line| line.contains(needle)).map(move |line| format!("{path}: {line}")))
        .collect()
}

#[test]
fn only_python_imports_pyo3() {
    let found = offenders("pyo3", &["python/"], &[]);
    assert!(found.is_empty(), "pyo3 outside src/python/: {found:#?}");
}

#[test]
fn only_the_server_knows_http() {
    for needle in ["axum", "hyper"] {
        // `lib.rs` hands the listener to `server::serve`; `error.rs` is the wire error.
        let found = offenders(needle, &["server/", "error.rs", "lib.rs", "main.rs"], &[]);
        assert!(found.is_empty(), "{needle} outside src/server/: {found:#?}");
    }
}

#[test]
fn the_auth_policy_knows_neither_the_interpreter_nor_storage() {
    for needle in ["crate::python", "crate::storage", "crate::server"] {
        let found = offenders(needle, &[], &["auth/"]);
        assert!(found.is_empty(), "src/auth/ names {needle}: {found:#?}");
    }
}

#[test]
fn storage_knows_neither_the_server_nor_the_interpreter() {
    for needle in ["crate::server", "crate::python", "crate::runs"] {
        let found = offenders(needle, &[], &["storage/"]);
        assert!(found.is_empty(), "src/storage/ names {needle}: {found:#?}");
    }
}

#[test]
fn services_know_no_request_types() {
    // Response types, not the word (an A2A artifact is named "Assistant Response" on the wire).
    for needle in ["extract::", "HeaderMap", "axum::Json", "IntoResponse", "response::", "-> Response", "Response<", "Response {", "Response::"] {
        let found = offenders(needle, &[], &["server/service/"]);
        assert!(found.is_empty(), "a service names {needle}: {found:#?}");
    }
}

#[test]
fn only_storage_knows_the_database() {
    // The rest of the server holds a `StorageHandle` from a `StorageConfig`: which backend
    // runs, and how it runs its I/O, is storage's own affair.
    for needle in ["rusqlite", "SqliteStorage", "sqlite::", "inline::"] {
        let found = offenders(needle, &["storage/"], &[]);
        assert!(found.is_empty(), "{needle} outside src/storage/: {found:#?}");
    }
}
