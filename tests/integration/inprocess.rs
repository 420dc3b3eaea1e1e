//! The API in process: the real `AppState` (interpreter, graphs, `auth.py`, SQLite) built once
//! by [`graphward::start`], and `graphward::server::app` driven with `tower::ServiceExt::oneshot`
//! — no socket, no child process. Two users (`alice`, `bob`) of an owner-metadata policy use
//! every resource family as a client would, and each test that creates something checks that
//! the other user can neither read, change nor delete it, nor find it in a search.
//!
//! Snapshot tests compare the *shape* of a representative response of each family (ids and
//! timestamps replaced by `"<uuid>"` / `"<timestamp>"`, other volatile values by a type
//! placeholder, key order kept) with `tests/integration/snapshots/<name>.json`. After a
//! deliberate change of a response, rewrite the files and review the diff:
//!
//! ```sh
//! UPDATE_SNAPSHOTS=1 cargo test --test integration inprocess
//! ```
//!
//! CPython starts once per process and all tests of the binary are threads of one process, so
//! the state lives in one `static` ([`harness`]) with the multi-thread runtime that serves it;
//! tests share it and keep to records they created (searches filter on a per-test marker).

use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::common::{ECHO_GRAPH, app, repo, scratch, venv};

const LANGGRAPH_JSON: &str = r#"{"graphs": {"agent": "./agent.py:graph"}, "auth": {"path": "./auth.py:auth"}}"#;

/// Owner metadata on threads, assistants and crons (stamped on create, a filter on every other
/// action); a store namespace must start with the caller's identity.
const AUTH: &str = r#"
from langgraph_sdk import Auth

TOKENS = {"alice-token": "alice", "bob-token": "bob"}

auth = Auth()


@auth.authenticate
async def authenticate(authorization: str | None) -> Auth.types.MinimalUserDict:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or token not in TOKENS:
        raise Auth.exceptions.HTTPException(status_code=401, detail="Invalid token")
    return {"identity": TOKENS[token]}


@auth.on
async def owner_only(ctx: Auth.types.AuthContext, value: dict):
    filters = {"owner": ctx.user.identity}
    metadata = value.setdefault("metadata", {})
    metadata.update(filters)
    return filters


@auth.on.store()
async def own_namespace(ctx: Auth.types.AuthContext, value: dict):
    namespace = tuple(value.get("namespace") or ())
    if not namespace or namespace[0] != ctx.user.identity:
        raise Auth.exceptions.HTTPException(status_code=403, detail="Not your namespace")
"#;

const ALICE: Option<&str> = Some("alice-token");
const BOB: Option<&str> = Some("bob-token");
const ANONYMOUS: Option<&str> = None;

/// The shared server: its runtime outlives every test (a `static` is never dropped).
struct Harness {
    runtime: tokio::runtime::Runtime,
    router: Router,
}

/// The one place the state is built: a scratch app folder, the database in another one,
/// the test venv, and the run scheduler started as `graphward::serve` starts it. (The cron
/// loop is not started: no test waits for a firing, and the crons here are far in the future.)
fn build() -> Harness {
    let dir = app(&[("langgraph.json", LANGGRAPH_JSON), ("agent.py", ECHO_GRAPH), ("auth.py", AUTH)]);
    let config = Arc::new(graphward::config::AppConfig::load(&dir.join("langgraph.json")).expect("langgraph.json loads"));
    let options = graphward::StartOptions {
        mode: graphward::Mode::Serve,
        venv: Some(venv()),
        auth_timeout: Duration::from_secs(10),
        storage: graphward::storage::StorageConfig::Sqlite { path: scratch().join("state.db") },
        max_runs: 4,
        limits: graphward::server::listener::Limits::default(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let state = runtime.block_on(async {
        let (state, report) = graphward::start(config, options).await.unwrap_or_else(|error| panic!("start: {error}"));
        assert!(report.auth.is_some(), "auth.py was not loaded");
        // Webhooks given as a path would resolve against this; no test sends one.
        state.runs().start("http://in-process.invalid".to_string()).await.expect("run scheduler");
        state
    });
    Harness { runtime, router: graphward::server::app(state) }
}

fn harness() -> &'static Harness {
    static HARNESS: LazyLock<Harness> = LazyLock::new(build);
    &HARNESS
}

/// A response as a client sees it; `body` is the parsed JSON (`Null` for an empty body).
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Reply {
    /// The body's `key` as a string (panics with the body otherwise).
    fn id(&self, key: &str) -> String {
        self.body[key].as_str().unwrap_or_else(|| panic!("no `{key}` in {}", self.body)).to_string()
    }

    /// Panics unless the status is `expected`, showing the body.
    #[track_caller]
    fn expect(self, expected: u16) -> Self {
        assert_eq!(self.status.as_u16(), expected, "body: {}", self.body);
        self
    }
}

/// Sends one request to the in-process router as `token`'s user (none: no `Authorization`).
fn call(token: Option<&str>, method: &str, path: &str, body: Option<Value>) -> Reply {
    call_raw(token, method, path, body.map(|body| body.to_string()))
}

/// [`call`] with the body as raw text (for malformed JSON).
fn call_raw(token: Option<&str>, method: &str, path: &str, body: Option<String>) -> Reply {
    let harness = harness();
    let mut request = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    let request = request.body(body.map_or_else(Body::empty, Body::from)).expect("request");
    harness.runtime.block_on(async {
        let response = harness.router.clone().oneshot(request).await.expect("the router is infallible");
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.expect("body");
        let text = String::from_utf8_lossy(&bytes);
        let body = if text.trim().is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.into_owned())) };
        Reply { status: parts.status, headers: parts.headers, body }
    })
}

/// Checks that `token`'s user gets exactly what a record that does not exist gets: `method`
/// on `path` (with `{id}` standing for the id) answers 404 for `id`, and the same body as for
/// a fresh id once the ids are blanked — neither the status nor the message tells the record
/// exists.
#[track_caller]
fn assert_hidden(token: Option<&str>, method: &str, path: &str, id: &str, body: Option<Value>) {
    let fresh = uuid::Uuid::new_v4().to_string();
    let hidden = call(token, method, &path.replace("{id}", id), body.clone());
    let missing = call(token, method, &path.replace("{id}", &fresh), body);
    assert_eq!(hidden.status, StatusCode::NOT_FOUND, "{method} {path}: {}", hidden.body);
    let blank = |reply: &Reply, id: &str| reply.body.to_string().replace(id, "{id}");
    assert_eq!(blank(&hidden, id), blank(&missing, &fresh), "{method} {path}: another user's record and a missing one differ");
}

/// A value unique to the calling test, to tag and find its own records.
fn marker() -> String {
    uuid::Uuid::new_v4().to_string()
}

// ---------------------------------------------------------------------------------------------
// Shapes and snapshots

/// A UUID in its hyphenated form.
fn is_uuid(text: &str) -> bool {
    text.len() == 36 && uuid::Uuid::parse_str(text).is_ok()
}

/// An ISO 8601 date-time (`2026-01-02T03:04:05…`).
fn is_timestamp(text: &str) -> bool {
    let bytes = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| range.into_iter().all(|index| bytes.get(index).is_some_and(u8::is_ascii_digit));
    bytes.len() >= 19
        && digits(0..4)
        && bytes[4] == b'-'
        && digits(5..7)
        && bytes[7] == b'-'
        && digits(8..10)
        && bytes[10] == b'T'
        && digits(11..13)
        && bytes[13] == b':'
        && digits(14..16)
        && bytes[16] == b':'
        && digits(17..19)
}

/// `text` with every hyphenated UUID in it replaced by `<uuid>`.
fn without_uuids(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(candidate) = rest.get(..36)
            && is_uuid(candidate)
        {
            out.push_str("<uuid>");
            rest = &rest[36..];
        } else {
            let next = rest.chars().next().expect("not empty");
            out.push(next);
            rest = &rest[next.len_utf8()..];
        }
    }
    out
}

/// The type placeholder of a value: `"<string>"`, `"<number>"`, `"<bool>"`, … .
fn placeholder(value: &Value) -> Value {
    let name = match value {
        Value::Null => return Value::Null,
        Value::Bool(_) => "<bool>",
        Value::Number(_) => "<number>",
        Value::String(_) => "<string>",
        Value::Array(_) => "<array>",
        Value::Object(_) => "<object>",
    };
    Value::from(name)
}

/// The shape of a response: timestamps become `"<timestamp>"` and UUIDs (also inside a
/// string, as in an error message) `<uuid>`, the values of `volatile` keys (at any depth) their
/// type placeholder; the rest, and the order of keys, is kept.
fn shape(value: &Value, volatile: &[&str]) -> Value {
    match value {
        Value::String(text) if is_timestamp(text) => Value::from("<timestamp>"),
        Value::String(text) => Value::from(without_uuids(text)),
        Value::Array(items) => Value::Array(items.iter().map(|item| shape(item, volatile)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, value)| {
                    let shaped = if volatile.contains(&key.as_str()) { placeholder(value) } else { shape(value, volatile) };
                    (key.clone(), shaped)
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A line diff of `expected` → `actual` (longest common subsequence; snapshots are small).
fn line_diff(expected: &str, actual: &str) -> String {
    let (old, new): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let mut common = vec![vec![0usize; new.len() + 1]; old.len() + 1];
    for i in (0..old.len()).rev() {
        for j in (0..new.len()).rev() {
            common[i][j] = if old[i] == new[j] { common[i + 1][j + 1] + 1 } else { common[i + 1][j].max(common[i][j + 1]) };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < old.len() || j < new.len() {
        if i < old.len() && j < new.len() && old[i] == new[j] {
            out.push_str(&format!("  {}\n", old[i]));
            (i, j) = (i + 1, j + 1);
        } else if i < old.len() && (j == new.len() || common[i + 1][j] >= common[i][j + 1]) {
            out.push_str(&format!("- {}\n", old[i]));
            i += 1;
        } else {
            out.push_str(&format!("+ {}\n", new[j]));
            j += 1;
        }
    }
    out
}

fn snapshot_path(name: &str) -> PathBuf {
    repo().join("tests/integration/snapshots").join(format!("{name}.json"))
}

/// Compares `shape` with the checked-in `snapshots/<name>.json`; with `UPDATE_SNAPSHOTS=1`
/// rewrites the file instead.
#[track_caller]
fn assert_snapshot(name: &str, shape: &Value) {
    let path = snapshot_path(name);
    let actual = format!("{}\n", serde_json::to_string_pretty(shape).expect("a shape serializes"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|value| value == "1") {
        write_snapshot(&path, &actual);
        return;
    }
    let Ok(expected) = std::fs::read_to_string(&path) else {
        panic!("no snapshot {}; run with UPDATE_SNAPSHOTS=1 to write it:\n{actual}", path.display());
    };
    if expected != actual {
        panic!("the shape of `{name}` changed ({}; `-` checked in, `+` now; UPDATE_SNAPSHOTS=1 rewrites it):\n{}", path.display(), line_diff(&expected, &actual));
    }
}

fn write_snapshot(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("snapshots folder")).expect("create the snapshots folder");
    std::fs::write(path, text).expect("write the snapshot");
}

// ---------------------------------------------------------------------------------------------
// Tests

/// `/ok` and `/info` answer without credentials (they are public), with their documented bodies.
#[test]
fn system_routes_are_public() {
    let ok = call(ANONYMOUS, "GET", "/ok", None).expect(200);
    assert_eq!(ok.body, json!({"ok": true, "services": {}}));
    let info = call(ANONYMOUS, "GET", "/info", None).expect(200);
    assert_eq!(info.body["flags"]["assistants"], true, "{}", info.body);
    assert!(info.body["langgraph_py_version"].is_string(), "{}", info.body);
    assert_snapshot("info", &shape(&info.body, &["version", "langgraph_py_version", "langgraph_js_version"]));
}

/// Threads through their whole life as the owner (create, get, patch, search, count, delete),
/// and nothing of it for the other user: search and count do not see it, and get, patch,
/// delete, state, the run list and a run answer exactly as for a thread that does not exist.
#[test]
fn threads_belong_to_their_creator() {
    let tag = marker();
    let created = call(ALICE, "POST", "/threads", Some(json!({"metadata": {"tag": tag, "n": 1}}))).expect(200);
    let thread_id = created.id("thread_id");
    assert_eq!(created.body["metadata"], json!({"tag": tag, "n": 1, "owner": "alice"}), "the policy stamps the owner");
    assert_eq!(created.body["status"], "idle");
    assert_snapshot("thread", &shape(&created.body, &[]));

    let read = call(ALICE, "GET", &format!("/threads/{thread_id}"), None).expect(200);
    assert_eq!(read.body, created.body);
    let patched = call(ALICE, "PATCH", &format!("/threads/{thread_id}"), Some(json!({"metadata": {"n": 2}}))).expect(200);
    assert_eq!(patched.body["metadata"], json!({"tag": tag, "n": 2, "owner": "alice"}), "a patch merges metadata");
    let second = call(ALICE, "POST", "/threads", Some(json!({"metadata": {"tag": tag, "n": 3}}))).expect(200).id("thread_id");

    let page = call(ALICE, "POST", "/threads/search", Some(json!({"metadata": {"tag": tag}, "sort_by": "created_at", "sort_order": "asc"}))).expect(200);
    let ids: Vec<&str> = page.body.as_array().expect("a page is a list").iter().filter_map(|thread| thread["thread_id"].as_str()).collect();
    assert_eq!(ids, [thread_id.as_str(), second.as_str()]);
    assert_snapshot("thread_search_page", &shape(&page.body, &[]));
    assert_eq!(call(ALICE, "POST", "/threads/count", Some(json!({"metadata": {"tag": tag}}))).expect(200).body, 2);

    // Bob sees none of it and changes none of it.
    assert_eq!(call(BOB, "POST", "/threads/search", Some(json!({"metadata": {"tag": tag}}))).expect(200).body, json!([]));
    assert_eq!(call(BOB, "POST", "/threads/search", Some(json!({"ids": [thread_id]}))).expect(200).body, json!([]));
    assert_eq!(call(BOB, "POST", "/threads/count", Some(json!({"metadata": {"tag": tag}}))).expect(200).body, 0);
    assert_hidden(BOB, "GET", "/threads/{id}", &thread_id, None);
    assert_hidden(BOB, "PATCH", "/threads/{id}", &thread_id, Some(json!({"metadata": {"n": 99}})));
    assert_hidden(BOB, "DELETE", "/threads/{id}", &thread_id, None);
    assert_hidden(BOB, "GET", "/threads/{id}/state", &thread_id, None);
    assert_hidden(BOB, "GET", "/threads/{id}/runs", &thread_id, None);
    assert_hidden(BOB, "POST", "/threads/{id}/runs/wait", &thread_id, Some(json!({"assistant_id": "agent", "input": {"text": "x"}})));
    assert_eq!(call(ALICE, "GET", &format!("/threads/{thread_id}"), None).expect(200).body["metadata"]["n"], 2, "bob's patch changed nothing");

    call(ALICE, "DELETE", &format!("/threads/{thread_id}"), None).expect(204);
    call(ALICE, "GET", &format!("/threads/{thread_id}"), None).expect(404);
    assert_eq!(call(ALICE, "POST", "/threads/count", Some(json!({"metadata": {"tag": tag}}))).expect(200).body, 1);
}

/// Assistants: create, get, search, versions (a patch makes version 2); the other user finds
/// nothing, gets what a missing assistant gets from get, versions, patch and delete, and cannot
/// run it on a thread of his own.
#[test]
fn assistants_belong_to_their_creator() {
    let tag = marker();
    let created = call(ALICE, "POST", "/assistants", Some(json!({"graph_id": "agent", "name": "helper", "metadata": {"tag": tag}, "config": {"tags": ["a"]}}))).expect(200);
    let assistant_id = created.id("assistant_id");
    assert_eq!(created.body["version"], 1);
    assert_eq!(created.body["metadata"], json!({"tag": tag, "owner": "alice"}));
    assert_snapshot("assistant", &shape(&created.body, &[]));

    let read = call(ALICE, "GET", &format!("/assistants/{assistant_id}"), None).expect(200);
    assert_eq!(read.body, created.body);
    let patched = call(ALICE, "PATCH", &format!("/assistants/{assistant_id}"), Some(json!({"name": "helper v2"}))).expect(200);
    assert_eq!((patched.body["version"].clone(), patched.body["name"].clone()), (json!(2), json!("helper v2")));

    let found = call(ALICE, "POST", "/assistants/search", Some(json!({"metadata": {"tag": tag}}))).expect(200);
    let ids: Vec<&str> = found.body.as_array().expect("a list").iter().filter_map(|assistant| assistant["assistant_id"].as_str()).collect();
    assert_eq!(ids, [assistant_id.as_str()]);
    let versions = call(ALICE, "POST", &format!("/assistants/{assistant_id}/versions"), Some(json!({}))).expect(200);
    let numbers: Vec<&Value> = versions.body.as_array().expect("a list").iter().map(|version| &version["version"]).collect();
    assert_eq!(numbers, [&json!(2), &json!(1)], "newest first: {}", versions.body);
    assert_snapshot("assistant_versions", &shape(&versions.body, &[]));

    assert_eq!(call(BOB, "POST", "/assistants/search", Some(json!({"metadata": {"tag": tag}}))).expect(200).body, json!([]));
    assert_eq!(call(BOB, "POST", "/assistants/count", Some(json!({"metadata": {"tag": tag}}))).expect(200).body, 0);
    assert_hidden(BOB, "GET", "/assistants/{id}", &assistant_id, None);
    assert_hidden(BOB, "POST", "/assistants/{id}/versions", &assistant_id, Some(json!({})));
    assert_hidden(BOB, "PATCH", "/assistants/{id}", &assistant_id, Some(json!({"name": "bob's now"})));
    assert_hidden(BOB, "DELETE", "/assistants/{id}", &assistant_id, None);
    // Nor can he run it on a thread of his own.
    let bobs_thread = call(BOB, "POST", "/threads", Some(json!({}))).expect(200).id("thread_id");
    let run = call(BOB, "POST", &format!("/threads/{bobs_thread}/runs/wait"), Some(json!({"assistant_id": assistant_id, "input": {"text": "x"}}))).expect(404);
    let missing = call(BOB, "POST", &format!("/threads/{bobs_thread}/runs/wait"), Some(json!({"assistant_id": uuid::Uuid::new_v4(), "input": {"text": "x"}}))).expect(404);
    assert_eq!(run.body, missing.body);
    assert_eq!(call(BOB, "GET", &format!("/threads/{bobs_thread}/runs"), None).expect(200).body, json!([]), "no run was created");
    assert_eq!(call(ALICE, "GET", &format!("/assistants/{assistant_id}"), None).expect(200).body["name"], "helper v2");

    call(ALICE, "DELETE", &format!("/assistants/{assistant_id}"), None).expect(204);
    call(ALICE, "GET", &format!("/assistants/{assistant_id}"), None).expect(404);
}

/// A run waited on through `/threads/{id}/runs/wait` returns the echo graph's output, then
/// shows in the thread's run list and by id as a success, with the thread's values updated;
/// to the other user the run (get, join, delete, cancel) and the list look missing.
#[test]
fn runs_wait_list_and_get() {
    let thread_id = call(ALICE, "POST", "/threads", Some(json!({}))).expect(200).id("thread_id");
    let output = call(ALICE, "POST", &format!("/threads/{thread_id}/runs/wait"), Some(json!({"assistant_id": "agent", "input": {"text": "hello"}}))).expect(200);
    assert_eq!(output.body, json!({"text": "hello"}));
    let location = output.headers.get("content-location").and_then(|value| value.to_str().ok()).unwrap_or_default().to_string();
    assert!(location.starts_with(&format!("/threads/{thread_id}/runs/")), "content-location: {location:?}");

    let runs = call(ALICE, "GET", &format!("/threads/{thread_id}/runs"), None).expect(200);
    let list = runs.body.as_array().expect("a list");
    assert_eq!(list.len(), 1, "{}", runs.body);
    let run_id = list[0]["run_id"].as_str().expect("run_id").to_string();
    assert!(location.ends_with(&run_id), "content-location {location} names the run {run_id}");
    let run = call(ALICE, "GET", &format!("/threads/{thread_id}/runs/{run_id}"), None).expect(200);
    assert_eq!(run.body["status"], "success");
    assert_eq!(run.body["thread_id"], thread_id);
    assert_eq!(run.body, list[0], "the list and the run agree");
    assert_snapshot("run", &shape(&run.body, &[]));
    let thread = call(ALICE, "GET", &format!("/threads/{thread_id}"), None).expect(200);
    assert_eq!(thread.body["values"], json!({"text": "hello"}));
    assert_eq!(thread.body["status"], "idle");

    assert_hidden(BOB, "GET", &format!("/threads/{thread_id}/runs/{{id}}"), &run_id, None);
    assert_hidden(BOB, "GET", &format!("/threads/{thread_id}/runs/{{id}}/join"), &run_id, None);
    assert_hidden(BOB, "DELETE", &format!("/threads/{thread_id}/runs/{{id}}"), &run_id, None);
    assert_hidden(BOB, "POST", &format!("/threads/{thread_id}/runs/{{id}}/cancel"), &run_id, None);
    assert_hidden(BOB, "GET", "/threads/{id}/runs", &thread_id, None);
    call(ALICE, "GET", &format!("/threads/{thread_id}/runs/{run_id}"), None).expect(200);
}

/// Crons: create with a schedule (next firing computed), search, count, delete; the other
/// user's search and count find nothing and get, patch and delete look missing.
#[test]
fn crons_belong_to_their_creator() {
    let tag = marker();
    let created = call(ALICE, "POST", "/runs/crons", Some(json!({"assistant_id": "agent", "schedule": "0 0 1 1 *", "input": {"text": "new year"}, "metadata": {"tag": tag}}))).expect(200);
    let cron_id = created.id("cron_id");
    assert_eq!(created.body["schedule"], "0 0 1 1 *");
    assert_eq!(created.body["metadata"], json!({"tag": tag, "owner": "alice"}));
    assert!(created.body["next_run_date"].as_str().is_some_and(|date| date.contains("-01-01T")), "{}", created.body);
    assert_snapshot("cron", &shape(&created.body, &[]));

    let found = call(ALICE, "POST", "/runs/crons/search", Some(json!({"metadata": {"tag": tag}}))).expect(200);
    assert_eq!(found.body, json!([created.body]));
    assert_eq!(call(ALICE, "POST", "/runs/crons/count", Some(json!({"metadata": {"tag": tag}}))).expect(200).body, 1);

    assert_eq!(call(BOB, "POST", "/runs/crons/search", Some(json!({"metadata": {"tag": tag}}))).expect(200).body, json!([]));
    assert_eq!(call(BOB, "POST", "/runs/crons/count", Some(json!({"metadata": {"tag": tag}}))).expect(200).body, 0);
    assert_hidden(BOB, "GET", "/runs/crons/{id}", &cron_id, None);
    assert_hidden(BOB, "PATCH", "/runs/crons/{id}", &cron_id, Some(json!({"enabled": false})));
    assert_hidden(BOB, "DELETE", "/runs/crons/{id}", &cron_id, None);
    assert_eq!(call(ALICE, "GET", &format!("/runs/crons/{cron_id}"), None).expect(200).body["enabled"], true, "bob's patch changed nothing");

    call(ALICE, "DELETE", &format!("/runs/crons/{cron_id}"), None).expect(204);
    call(ALICE, "GET", &format!("/runs/crons/{cron_id}"), None).expect(404);
    assert_eq!(call(ALICE, "POST", "/runs/crons/search", Some(json!({"metadata": {"tag": tag}}))).expect(200).body, json!([]));
}

/// The store: put, get, search, namespaces, delete in the caller's own namespace; the other
/// user is refused (403) on every path into that namespace and the item survives.
#[test]
fn store_items_stay_in_their_namespace() {
    let tag = marker();
    let namespace = json!(["alice", tag]);
    call(ALICE, "PUT", "/store/items", Some(json!({"namespace": namespace, "key": "k1", "value": {"color": "red"}}))).expect(204);
    call(ALICE, "PUT", "/store/items", Some(json!({"namespace": ["alice", tag, "deeper"], "key": "k2", "value": {"color": "blue"}}))).expect(204);
    let item = call(ALICE, "GET", &format!("/store/items?namespace=alice.{tag}&key=k1"), None).expect(200);
    assert_eq!((&item.body["namespace"], &item.body["key"], &item.body["value"]), (&namespace, &json!("k1"), &json!({"color": "red"})));
    assert_snapshot("store_item", &shape(&item.body, &[]));

    let found = call(ALICE, "POST", "/store/items/search", Some(json!({"namespace_prefix": ["alice", tag], "filter": {"color": "blue"}}))).expect(200);
    let keys: Vec<&Value> = found.body["items"].as_array().expect("items").iter().map(|item| &item["key"]).collect();
    assert_eq!(keys, [&json!("k2")], "{}", found.body);
    assert_snapshot("store_search_page", &shape(&found.body, &[]));
    let namespaces = call(ALICE, "POST", "/store/namespaces", Some(json!({"prefix": ["alice", tag]}))).expect(200);
    assert_eq!(namespaces.body, json!({"namespaces": [["alice", tag], ["alice", tag, "deeper"]]}));

    call(BOB, "GET", &format!("/store/items?namespace=alice.{tag}&key=k1"), None).expect(403);
    call(BOB, "PUT", "/store/items", Some(json!({"namespace": namespace, "key": "k1", "value": {"color": "bob"}}))).expect(403);
    call(BOB, "POST", "/store/items/search", Some(json!({"namespace_prefix": ["alice", tag]}))).expect(403);
    call(BOB, "POST", "/store/namespaces", Some(json!({"prefix": ["alice", tag]}))).expect(403);
    call(BOB, "DELETE", "/store/items", Some(json!({"namespace": namespace, "key": "k1"}))).expect(403);
    assert_eq!(call(ALICE, "GET", &format!("/store/items?namespace=alice.{tag}&key=k1"), None).expect(200).body["value"], json!({"color": "red"}), "bob changed nothing");

    call(ALICE, "DELETE", "/store/items", Some(json!({"namespace": namespace, "key": "k1"}))).expect(204);
    // A missing item is `null`, not 404 (like the reference).
    assert_eq!(call(ALICE, "GET", &format!("/store/items?namespace=alice.{tag}&key=k1"), None).expect(200).body, Value::Null);
}

/// Errors as a client sees them: every one is JSON `{"detail": <string>}`; 401 without or with
/// a wrong token whatever the body; 422 for malformed JSON and wrong types; 404 for unknown ids
/// of every family. The table of (request, status, body shape) is a snapshot, so a changed
/// status or message shows in review.
#[test]
fn errors_are_detail_bodies() {
    let thread_id = call(ALICE, "POST", "/threads", Some(json!({}))).expect(200).id("thread_id");
    let unknown = uuid::Uuid::new_v4();
    // (token, method, path, body, expected status)
    type Case<'a> = (Option<&'a str>, &'a str, String, Option<String>, u16);
    let cases: Vec<Case> = vec![
        (ANONYMOUS, "GET", format!("/threads/{unknown}"), None, 401),
        (Some("mallory-token"), "POST", "/threads".into(), Some("{}".into()), 401),
        (ANONYMOUS, "POST", "/threads".into(), Some("{".into()), 401),
        (ALICE, "POST", "/threads".into(), Some("{\"metadata\": ".into()), 422),
        (ALICE, "PUT", "/store/items".into(), Some("not json".into()), 422),
        (ALICE, "POST", "/threads/search".into(), Some(r#"{"limit": "ten"}"#.into()), 422),
        (ALICE, "POST", "/runs/crons".into(), Some(r#"{"assistant_id": "agent", "schedule": "every day"}"#.into()), 422),
        (ALICE, "GET", "/threads/not-a-uuid".into(), None, 422),
        // An array is not a struct's fields in order (serde would read it so), and no message
        // names a Rust type.
        (ALICE, "POST", "/threads".into(), Some(format!(r#"["{unknown}", {{"via": "array"}}, null, null, null]"#)), 422),
        (ALICE, "PUT", "/store/items".into(), Some(r#"[["alice", "arr"], "k", {"v": 1}, null, null]"#.into()), 422),
        (ALICE, "POST", "/runs/batch".into(), Some(r#"[["agent"]]"#.into()), 422),
        (ALICE, "GET", format!("/threads/{unknown}"), None, 404),
        (ALICE, "PATCH", format!("/threads/{unknown}"), Some("{}".into()), 404),
        (ALICE, "DELETE", format!("/threads/{unknown}"), None, 404),
        (ALICE, "GET", format!("/assistants/{unknown}"), None, 404),
        (ALICE, "PATCH", format!("/assistants/{unknown}"), Some("{}".into()), 404),
        (ALICE, "DELETE", format!("/assistants/{unknown}"), None, 404),
        (ALICE, "GET", format!("/threads/{thread_id}/runs/{unknown}"), None, 404),
        (ALICE, "POST", format!("/threads/{unknown}/runs/wait"), Some(r#"{"assistant_id": "agent"}"#.into()), 404),
        (ALICE, "GET", format!("/runs/crons/{unknown}"), None, 404),
        (ALICE, "PATCH", format!("/runs/crons/{unknown}"), Some(r#"{"enabled": false}"#.into()), 404),
        (ALICE, "DELETE", format!("/runs/crons/{unknown}"), None, 404),
        (ALICE, "GET", "/no-such-route".into(), None, 404),
    ];
    let mut table = Vec::new();
    for (token, method, path, body, expected) in cases {
        let reply = call_raw(token, method, &path, body);
        assert_eq!(reply.status.as_u16(), expected, "{method} {path}: {}", reply.body);
        assert_eq!(reply.headers["content-type"], "application/json", "{method} {path}");
        assert!(reply.body.as_object().is_some_and(|body| body.len() == 1 && body["detail"].is_string()), "{method} {path}: {}", reply.body);
        let who = match token {
            ANONYMOUS => "no token",
            ALICE => "alice",
            _ => "a wrong token",
        };
        table.push(json!({"request": format!("{method} {} ({who})", without_uuids(&path)), "status": expected, "body": shape(&reply.body, &[])}));
    }
    assert_snapshot("error_bodies", &Value::Array(table));
}

/// The shape helper itself: ids and times become placeholders, volatile keys their type, the
/// rest and the key order stay.
#[test]
fn shapes_keep_structure_and_hide_volatile_values() {
    let value = json!({"z": "2026-01-02T03:04:05.123456+00:00", "a": "fe096781-5601-53d2-b2f6-0d3403f7e9ca", "n": 3, "v": "1.2.3", "list": [{"k": "text"}]});
    assert_eq!(
        serde_json::to_string(&shape(&value, &["v"])).expect("json"),
        r#"{"z":"<timestamp>","a":"<uuid>","n":3,"v":"<string>","list":[{"k":"text"}]}"#
    );
    assert_eq!(without_uuids("Thread with ID fe096781-5601-53d2-b2f6-0d3403f7e9ca not found"), "Thread with ID <uuid> not found");
    assert_eq!(line_diff("a\nb\nc\n", "a\nx\nc\n"), "  a\n- b\n+ x\n  c\n");
}

