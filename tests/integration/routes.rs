//! Route coverage, generated from the router: every path the router serves
//! (`graphward::server::route_paths()`) and every method on it must have an entry here with the
//! auth events it fires, observed on the running server through a handler that records each
//! event. A new route, or a new method on a path, without an entry fails this test; so does an
//! entry whose route fires other events than listed (spec auth.md §4.5).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

use crate::common::{ECHO_GRAPH, Server, app};

const AUTH: &str = r#"
import os
from langgraph_sdk import Auth

auth = Auth()

@auth.authenticate
async def authenticate(authorization: str | None):
    if authorization != "Bearer token":
        raise Auth.exceptions.HTTPException(status_code=401, detail="Invalid token")
    return {"identity": "tester"}

@auth.on
async def record(ctx, value):
    with open(os.environ["GRAPHWARD_TEST_EVENTS"], "a") as log:
        log.write(f"{ctx.resource}.{ctx.action}\n")
"#;

/// Routes that need no authentication (and fire no events).
const PUBLIC: [&str; 5] = ["/ok", "/", "/info", "/openapi.json", "/docs"];

/// (method, path template, concrete path with placeholders, body, expected events), in an
/// order that keeps the records each step needs alive. Placeholders: `{T}` a thread with a
/// finished run `{R}` and a checkpoint `{CK}`, `{T2}` a thread to delete, `{T3}` a thread to
/// prune, `{A}` a user-created assistant, `{C}` a cron.
const ROUTES: &[(&str, &str, &str, Option<&str>, &[&str])] = &[
    ("GET", "/ok", "/ok", None, &[]),
    ("GET", "/", "/", None, &[]),
    ("GET", "/info", "/info", None, &[]),
    ("GET", "/openapi.json", "/openapi.json", None, &[]),
    ("GET", "/docs", "/docs", None, &[]),
    ("GET", "/metrics", "/metrics", None, &[]),
    ("POST", "/assistants", "/assistants", Some(r#"{"graph_id": "agent"}"#), &["assistants.create"]),
    ("POST", "/assistants/search", "/assistants/search", Some("{}"), &["assistants.search"]),
    ("POST", "/assistants/count", "/assistants/count", Some("{}"), &["assistants.search"]),
    ("GET", "/assistants/{assistant_id}", "/assistants/{A}", None, &["assistants.read"]),
    ("PATCH", "/assistants/{assistant_id}", "/assistants/{A}", Some(r#"{"metadata": {"x": 1}}"#), &["assistants.update"]),
    ("POST", "/assistants/{assistant_id}/versions", "/assistants/{A}/versions", Some("{}"), &["assistants.read"]),
    ("POST", "/assistants/{assistant_id}/latest", "/assistants/{A}/latest", Some(r#"{"version": 1}"#), &["assistants.update"]),
    ("GET", "/assistants/{assistant_id}/graph", "/assistants/{A}/graph", None, &["assistants.read"]),
    ("GET", "/assistants/{assistant_id}/schemas", "/assistants/{A}/schemas", None, &["assistants.read"]),
    ("GET", "/assistants/{assistant_id}/subgraphs", "/assistants/{A}/subgraphs", None, &["assistants.read"]),
    ("GET", "/assistants/{assistant_id}/subgraphs/{namespace}", "/assistants/{A}/subgraphs/none", None, &["assistants.read"]),
    ("POST", "/threads", "/threads", Some("{}"), &["threads.create"]),
    ("POST", "/threads/search", "/threads/search", Some("{}"), &["threads.search"]),
    ("POST", "/threads/count", "/threads/count", Some("{}"), &["threads.search"]),
    ("GET", "/threads/{thread_id}", "/threads/{T}", None, &["threads.read"]),
    ("PATCH", "/threads/{thread_id}", "/threads/{T}", Some(r#"{"metadata": {"x": 1}}"#), &["threads.update"]),
    ("POST", "/threads/{thread_id}/copy", "/threads/{T}/copy", None, &["threads.read", "threads.create"]),
    ("GET", "/threads/{thread_id}/state", "/threads/{T}/state", None, &["threads.read"]),
    ("POST", "/threads/{thread_id}/state", "/threads/{T}/state", Some(r#"{"values": {"text": "set"}}"#), &["threads.update", "threads.read"]),
    ("GET", "/threads/{thread_id}/state/{checkpoint_id}", "/threads/{T}/state/{CK}", None, &["threads.read"]),
    ("POST", "/threads/{thread_id}/state/checkpoint", "/threads/{T}/state/checkpoint", Some(r#"{"checkpoint": {"checkpoint_id": "{CK}"}}"#), &["threads.read"]),
    ("GET", "/threads/{thread_id}/history", "/threads/{T}/history", None, &["threads.read", "threads.read"]),
    ("POST", "/threads/{thread_id}/history", "/threads/{T}/history", Some("{}"), &["threads.read", "threads.read"]),
    ("POST", "/threads/{thread_id}/runs/wait", "/threads/{T}/runs/wait", Some(r#"{"assistant_id": "agent", "input": {"text": "a"}}"#), &["threads.create_run", "threads.read", "threads.read", "threads.read"]),
    ("POST", "/threads/{thread_id}/runs/stream", "/threads/{T}/runs/stream", Some(r#"{"assistant_id": "agent", "input": {"text": "b"}}"#), &["threads.create_run", "threads.read", "threads.read", "threads.read"]),
    ("POST", "/threads/{thread_id}/runs", "/threads/{T}/runs", Some(r#"{"assistant_id": "{A}", "input": {"text": "c"}}"#), &["threads.create_run", "assistants.read"]),
    ("GET", "/threads/{thread_id}/runs", "/threads/{T}/runs", None, &["threads.read", "threads.search"]),
    ("GET", "/threads/{thread_id}/runs/{run_id}", "/threads/{T}/runs/{R}", None, &["threads.read", "threads.read"]),
    ("GET", "/threads/{thread_id}/runs/{run_id}/join", "/threads/{T}/runs/{R}/join", None, &["threads.read", "threads.read", "threads.read"]),
    ("GET", "/threads/{thread_id}/runs/{run_id}/stream", "/threads/{T}/runs/{R}/stream", None, &["threads.read"]),
    ("POST", "/threads/{thread_id}/runs/{run_id}/cancel", "/threads/{T}/runs/{R}/cancel", None, &["threads.update"]),
    ("GET", "/threads/{thread_id}/stream", "/threads/{T}/stream", None, &["threads.read"]),
    ("POST", "/threads/{thread_id}/commands", "/threads/{T}/commands", Some(r#"{"id": 1, "method": "run.start", "params": {"assistant_id": "{A}", "input": {"text": "p"}}}"#), &["threads.create_run", "assistants.read"]),
    ("POST", "/threads/{thread_id}/stream/events", "/threads/{T}/stream/events", Some(r#"{"channels": ["values", "lifecycle"]}"#), &["threads.read"]),
    // Without a WebSocket upgrade: authorized, then 426.
    ("GET", "/threads/{thread_id}/stream/events", "/threads/{T}/stream/events", None, &["threads.read"]),
    ("POST", "/runs", "/runs", Some(r#"{"assistant_id": "agent", "input": {"text": "d"}}"#), &["threads.create_run"]),
    ("POST", "/runs/wait", "/runs/wait", Some(r#"{"assistant_id": "agent", "input": {"text": "e"}}"#), &["threads.create_run", "threads.read", "threads.read", "threads.read"]),
    ("POST", "/runs/stream", "/runs/stream", Some(r#"{"assistant_id": "agent", "input": {"text": "f"}}"#), &["threads.create_run", "threads.read", "threads.read", "threads.read"]),
    ("POST", "/runs/batch", "/runs/batch", Some(r#"[{"assistant_id": "agent", "input": {"text": "g"}}, {"assistant_id": "agent", "input": {"text": "h"}}]"#), &["threads.create_run", "threads.create_run"]),
    ("POST", "/runs/cancel", "/runs/cancel", Some(r#"{"status": "pending"}"#), &["threads.update"]),
    ("POST", "/runs/crons", "/runs/crons", Some(r#"{"assistant_id": "agent", "schedule": "0 0 1 1 *"}"#), &["crons.create"]),
    ("POST", "/threads/{thread_id}/runs/crons", "/threads/{T}/runs/crons", Some(r#"{"assistant_id": "{A}", "schedule": "0 0 1 1 *"}"#), &["crons.create", "assistants.read", "threads.read"]),
    ("POST", "/runs/crons/search", "/runs/crons/search", Some("{}"), &["crons.search", "threads.search"]),
    ("POST", "/runs/crons/count", "/runs/crons/count", Some("{}"), &["crons.search", "threads.search"]),
    ("GET", "/runs/crons/{cron_id}", "/runs/crons/{C}", None, &["crons.read"]),
    ("PATCH", "/runs/crons/{cron_id}", "/runs/crons/{C}", Some(r#"{"enabled": false}"#), &["crons.update"]),
    ("DELETE", "/runs/crons/{cron_id}", "/runs/crons/{C}", None, &["crons.delete"]),
    ("PUT", "/store/items", "/store/items", Some(r#"{"namespace": ["a"], "key": "k", "value": {"v": 1}}"#), &["store.put"]),
    ("GET", "/store/items", "/store/items?namespace=a&key=k", None, &["store.get"]),
    ("POST", "/store/items/search", "/store/items/search", Some(r#"{"namespace_prefix": ["a"]}"#), &["store.search"]),
    ("POST", "/store/namespaces", "/store/namespaces", Some("{}"), &["store.list_namespaces"]),
    ("DELETE", "/store/items", "/store/items", Some(r#"{"namespace": ["a"], "key": "k"}"#), &["store.delete"]),
    ("POST", "/mcp", "/mcp", Some(r#"{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}"#), &["assistants.search"]),
    ("GET", "/mcp", "/mcp", None, &[]),
    ("DELETE", "/mcp", "/mcp", None, &[]),
    ("GET", "/a2a/{assistant_id}", "/a2a/{A}", None, &["assistants.read"]),
    (
        "POST",
        "/a2a/{assistant_id}",
        "/a2a/{A}",
        Some(r#"{"jsonrpc": "2.0", "id": "1", "method": "message/send", "params": {"message": {"role": "user", "messageId": "m", "parts": [{"kind": "data", "data": {"text": "m"}}]}}}"#),
        // The run's own reads, then the task's thread read back as the caller.
        &["threads.create_run", "assistants.read", "threads.read", "threads.read", "threads.read", "threads.read"],
    ),
    ("GET", "/a2a/{assistant_id}/.well-known/agent-card.json", "/a2a/{A}/.well-known/agent-card.json", None, &["assistants.read"]),
    ("GET", "/.well-known/agent-card.json", "/.well-known/agent-card.json?assistant_id={A}", None, &["assistants.read"]),
    ("DELETE", "/threads/{thread_id}/runs/{run_id}", "/threads/{T}/runs/{R}", None, &["threads.delete"]),
    ("POST", "/threads/prune", "/threads/prune", Some(r#"{"thread_ids": ["{T3}"]}"#), &["threads.delete", "threads.delete"]),
    ("DELETE", "/threads/{thread_id}", "/threads/{T2}", None, &["threads.delete"]),
    ("DELETE", "/assistants/{assistant_id}", "/assistants/{A}?delete_threads=true", None, &["assistants.delete", "threads.update", "crons.delete", "threads.delete", "threads.delete"]),
];

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

/// Sends a request with the test token; the status and, unless it is a stream, the body.
async fn send(client: &reqwest::Client, base: &str, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    // MCP's transport requires the Accept header; the other routes ignore it.
    let mut request = client.request(method, format!("{base}{path}")).header("authorization", "Bearer token").header("accept", "application/json, text/event-stream");
    if let Some(body) = body {
        request = request.header("content-type", "application/json").body(body.to_string());
    }
    let response = request.send().await.expect("send");
    let status = response.status().as_u16();
    // The thread streams never end: their events were fired before their headers were sent.
    if (path.ends_with("/stream") && path.starts_with("/threads/") && path.matches('/').count() == 3) || (path.ends_with("/stream/events") && status == 200) {
        return (status, Value::Null);
    }
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn take_events(log: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let _ = std::fs::write(log, "");
    text.lines().map(str::to_string).collect()
}

fn id_of(value: &Value, key: &str) -> String {
    value[key].as_str().unwrap_or_else(|| panic!("no {key} in {value}")).to_string()
}

#[test]
fn the_openapi_document_lists_exactly_the_routed_operations() {
    // This table is the router (the test below checks both its paths and that no other method
    // is served), so the document must list exactly its operations: a route missing from
    // `/openapi.json`, or documented but not served, fails here.
    let routed: BTreeSet<(String, &str)> = ROUTES.iter().map(|(method, path, ..)| (method.to_ascii_lowercase(), *path)).collect();
    let documented: BTreeSet<(String, &str)> = graphward::server::openapi::ROUTES.iter().map(|route| (route.method.to_string(), route.path)).collect();
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    assert!(undocumented.is_empty(), "served but missing from /openapi.json (src/server/openapi.rs ROUTES): {undocumented:?}");
    let unserved: Vec<_> = documented.difference(&routed).collect();
    assert!(unserved.is_empty(), "documented in /openapi.json but not served: {unserved:?}");
}

#[test]
fn every_route_is_mapped_to_its_auth_events() {
    // The router's paths and this table agree.
    let routed: BTreeSet<&str> = graphward::server::route_paths().into_iter().collect();
    let mapped: BTreeSet<&str> = ROUTES.iter().map(|(_, path, ..)| *path).collect();
    let unmapped: Vec<&&str> = routed.difference(&mapped).collect();
    assert!(unmapped.is_empty(), "routes without an entry in the auth event map (tests/integration/routes.rs): {unmapped:?}");
    let stale: Vec<&&str> = mapped.difference(&routed).collect();
    assert!(stale.is_empty(), "entries for paths the router does not serve: {stale:?}");

    let dir = app(&[("langgraph.json", r#"{"graphs": {"agent": "./agent.py:graph"}, "auth": {"path": "./auth.py:auth"}}"#), ("agent.py", ECHO_GRAPH), ("auth.py", AUTH)]);
    let log = dir.join("events.log");
    let server = Server::start_with_env(&dir.join("langgraph.json"), &[("GRAPHWARD_TEST_EVENTS", log.to_str().expect("path"))]);
    let base = server.base.clone();
    runtime().block_on(async {
        let client = reqwest::Client::new();
        let (_, thread) = send(&client, &base, "POST", "/threads", Some("{}")).await;
        let (_, second) = send(&client, &base, "POST", "/threads", Some("{}")).await;
        let (_, third) = send(&client, &base, "POST", "/threads", Some("{}")).await;
        let (_, assistant) = send(&client, &base, "POST", "/assistants", Some(r#"{"graph_id": "agent"}"#)).await;
        let (_, cron) = send(&client, &base, "POST", "/runs/crons", Some(r#"{"assistant_id": "agent", "schedule": "0 0 1 1 *"}"#)).await;
        let thread_id = id_of(&thread, "thread_id");
        let (status, _) = send(&client, &base, "POST", &format!("/threads/{thread_id}/runs/wait"), Some(r#"{"assistant_id": "agent", "input": {"text": "x"}}"#)).await;
        assert_eq!(status, 200);
        let (_, runs) = send(&client, &base, "GET", &format!("/threads/{thread_id}/runs"), None).await;
        let (_, state) = send(&client, &base, "GET", &format!("/threads/{thread_id}/state"), None).await;
        let substitutions = [
            ("{T2}", id_of(&second, "thread_id")),
            ("{T3}", id_of(&third, "thread_id")),
            ("{T}", thread_id.clone()),
            ("{R}", id_of(&runs[0], "run_id")),
            ("{CK}", id_of(&state["checkpoint"], "checkpoint_id")),
            ("{A}", id_of(&assistant, "assistant_id")),
            ("{C}", id_of(&cron, "cron_id")),
        ];
        let fill = |text: &str| substitutions.iter().fold(text.to_string(), |text, (placeholder, id)| text.replace(placeholder, id));
        take_events(&log);

        let mut methods: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for (method, template, path, body, expected) in ROUTES {
            methods.entry(template).or_default().insert(method);
            let (path, body) = (fill(path), body.map(fill));
            let (status, answer) = send(&client, &base, method, &path, body.as_deref()).await;
            // A stateless MCP server has no stream (GET: 405) and no session to end (DELETE: 404);
            // a GET of the event stream without a WebSocket upgrade is 426.
            let refusal = (*method == "POST" && template.ends_with("/cancel"))
                || (*template == "/mcp" && *method != "POST")
                || (*method == "GET" && template.ends_with("/stream/events") && status == 426);
            assert!(status < 400 || refusal, "{method} {template}: {status} {answer}");
            let fired = take_events(&log);
            assert_eq!(fired, *expected, "{method} {template} fired other auth events than mapped");
        }
        // No other method is served on a mapped path: a new one needs an entry.
        for (template, served) in &methods {
            if PUBLIC.contains(template) {
                continue;
            }
            let path = fill(&template.replace("{thread_id}", "{T}").replace("{run_id}", "{R}").replace("{assistant_id}", "agent").replace("{cron_id}", "{C}").replace("{checkpoint_id}", "{CK}").replace("{namespace}", "none"));
            for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
                if served.contains(method) {
                    continue;
                }
                let (status, answer) = send(&client, &base, method, &path, Some("{}")).await;
                assert_eq!(status, 405, "{method} {template} is served but has no entry: {answer}");
            }
        }
        // Without credentials every protected route is 401, whatever its ids and body.
        for (method, template, path, body, _) in ROUTES {
            if PUBLIC.contains(template) {
                continue;
            }
            let request = client.request(reqwest::Method::from_bytes(method.as_bytes()).expect("method"), format!("{base}{}", fill(path))).body(body.map(fill).unwrap_or_default());
            let status = request.send().await.expect("send").status().as_u16();
            assert_eq!(status, 401, "{method} {template} without credentials");
        }
        assert!(take_events(&log).is_empty(), "a refused request reached a handler");
    });
}
