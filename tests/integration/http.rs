//! The HTTP surface of the running binary: system routes, error shapes, every documented route.

use serde_json::Value;

use crate::common::{ECHO_GRAPH, Server, app};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

fn server() -> Server {
    let dir = app(&[
        ("langgraph.json", r#"{"graphs": {"agent": "./agent.py:graph", "other": {"path": "./agent.py:graph", "description": "second"}}}"#),
        ("agent.py", ECHO_GRAPH),
    ]);
    Server::start(&dir.join("langgraph.json"))
}

async fn call(client: &reqwest::Client, method: &str, url: &str, body: Option<&str>) -> (u16, Value, reqwest::header::HeaderMap) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = client.request(method, url);
    if let Some(body) = body {
        request = request.header("content-type", "application/json").body(body.to_string());
    }
    let response = request.send().await.expect("send");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)), headers)
}

#[test]
fn system_routes_and_errors() {
    let server = server();
    runtime().block_on(async {
        let client = reqwest::Client::new();
        let base = &server.base;
        let (status, body, _) = call(&client, "GET", &format!("{base}/ok"), None).await;
        assert_eq!((status, body), (200, serde_json::json!({"ok": true, "services": {}})));
        let (status, info, _) = call(&client, "GET", &format!("{base}/info"), None).await;
        assert_eq!(status, 200);
        assert_eq!(info["flags"]["assistants"], true);
        assert!(info["langgraph_py_version"].is_string(), "{info}");

        let cases = [
            ("GET", "/nope", None, 404, "Not Found"),
            ("DELETE", "/ok", None, 405, "Method Not Allowed"),
            ("POST", "/assistants/search", Some("{"), 422, "Invalid JSON in request body"),
            ("POST", "/assistants/search", Some(r#"{"limit": "x"}"#), 422, "limit: invalid type: string \"x\", expected i64"),
            ("POST", "/assistants/search", Some(r#"{"limit": 0}"#), 422, "limit: 0 is not between 1 and 1000"),
            ("POST", "/assistants/search", Some(r#"{"sort_by": "size"}"#), 422, "sort_by: unknown variant `size`"),
            ("POST", "/assistants/search", Some(r#"{"graph_id": "ghost"}"#), 404, "Graph 'ghost' not found. Expected one of: ['agent', 'other']"),
            ("GET", "/assistants/not-a-uuid", None, 422, "Invalid assistant ID: must be a UUID"),
            ("GET", "/assistants/00000000-0000-0000-0000-000000000000", None, 404, "Not Found"),
        ];
        for (method, path, body, expected_status, expected_detail) in cases {
            let (status, body, headers) = call(&client, method, &format!("{base}{path}"), body).await;
            assert_eq!(status, expected_status, "{method} {path}: {body}");
            assert_eq!(headers["content-type"], "application/json", "{method} {path}");
            let detail = body["detail"].as_str().unwrap_or_default();
            assert!(detail.starts_with(expected_detail), "{method} {path}: {detail}");
        }

        // The server keeps serving after bad input.
        let (status, _, _) = call(&client, "GET", &format!("{base}/ok"), None).await;
        assert_eq!(status, 200);
    });
}

#[test]
fn oversized_bodies_get_413() {
    let server = server();
    runtime().block_on(async {
        let client = reqwest::Client::new();
        let body = format!("{{\"metadata\": {{\"x\": \"{}\"}}}}", "a".repeat(301 * 1024 * 1024));
        let (status, body, _) = call(&client, "POST", &format!("{}/assistants/search", server.base), Some(&body)).await;
        assert_eq!(status, 413, "{body}");
        assert_eq!(body["detail"], "Request body too large (limit: 314572800 bytes)");
    });
}

#[test]
fn system_assistants_follow_the_id_rule_and_search_pages() {
    let server = server();
    runtime().block_on(async {
        let client = reqwest::Client::new();
        let base = &server.base;
        let (status, agent, _) = call(&client, "GET", &format!("{base}/assistants/fe096781-5601-53d2-b2f6-0d3403f7e9ca"), None).await;
        assert_eq!(status, 200, "{agent}");
        assert_eq!(agent["graph_id"], "agent");
        assert_eq!(agent["name"], "agent");
        assert_eq!(agent["metadata"], serde_json::json!({"created_by": "system"}));
        assert_eq!(agent["version"], 1);
        assert_eq!(agent["description"], Value::Null);
        let (_, by_graph, _) = call(&client, "GET", &format!("{base}/assistants/agent"), None).await;
        assert_eq!(by_graph, agent);
        let (_, other, _) = call(&client, "GET", &format!("{base}/assistants/other"), None).await;
        assert_eq!(other["description"], "second");

        let (status, page, headers) = call(&client, "POST", &format!("{base}/assistants/search"), Some(r#"{"limit": 1, "sort_by": "graph_id", "sort_order": "asc"}"#)).await;
        assert_eq!(status, 200);
        assert_eq!(page.as_array().map(Vec::len), Some(1));
        assert_eq!(page[0]["graph_id"], "agent");
        assert_eq!(headers["x-pagination-next"], "1");
        assert_eq!(headers["x-pagination-total"], "2");
        let (_, page, headers) = call(&client, "POST", &format!("{base}/assistants/search"), Some(r#"{"limit": 1, "offset": 1, "sort_by": "graph_id", "sort_order": "asc", "select": ["graph_id"]}"#)).await;
        assert_eq!(page, serde_json::json!([{"graph_id": "other"}]));
        assert!(headers.get("x-pagination-next").is_none());
        assert_eq!(headers["x-pagination-total"], "2");
        let (_, count, _) = call(&client, "POST", &format!("{base}/assistants/count"), Some(r#"{"metadata": {"created_by": "system"}}"#)).await;
        assert_eq!(count, 2);
        let (_, count, _) = call(&client, "POST", &format!("{base}/assistants/count"), Some(r#"{"name": "OTH"}"#)).await;
        assert_eq!(count, 1);
    });
}

#[test]
fn every_documented_route_exists() {
    let server = server();
    runtime().block_on(async {
        let client = reqwest::Client::new();
        let (_, document, _) = call(&client, "GET", &format!("{}/openapi.json", server.base), None).await;
        let paths = document["paths"].as_object().expect("paths");
        assert!(paths.contains_key("/assistants/search"), "{document}");
        assert_eq!(document["components"]["schemas"]["Assistant"]["properties"]["graph_id"]["enum"], serde_json::json!(["agent", "other"]));
        // Every documented operation is routed: never the 404/405 fallbacks. Bodies are minimal
        // valid ones where a route needs them.
        let (_, thread, _) = call(&client, "POST", &format!("{}/threads", server.base), Some("{}")).await;
        let thread_id = thread["thread_id"].as_str().expect("thread id").to_string();
        let (_, cron, _) = call(&client, "POST", &format!("{}/runs/crons", server.base), Some(r#"{"assistant_id": "agent", "schedule": "@daily"}"#)).await;
        let cron_id = cron["cron_id"].as_str().expect("cron id").to_string();
        let bodies = [
            ("/threads/prune", r#"{"thread_ids": []}"#),
            ("/store/items", r#"{"namespace": ["a"], "key": "k", "value": {}}"#),
            ("/assistants", r#"{"graph_id": "agent"}"#),
            ("/assistants/{assistant_id}/latest", r#"{"version": 1}"#),
            ("/runs/crons", r#"{"assistant_id": "agent", "schedule": "0 * * * *"}"#),
            ("/threads/{thread_id}/runs/crons", r#"{"assistant_id": "agent", "schedule": "0 * * * *"}"#),
            ("/runs/crons/{cron_id}", r#"{"enabled": false}"#),
            ("/threads/{thread_id}/commands", r#"{"id": 1, "method": "agent.getTree"}"#),
        ];
        for (path, operations) in paths {
            for method in operations.as_object().expect("operations").keys() {
                // Delete the thread last; streams never end by themselves; run routes are
                // exercised end to end by the pytest suite.
                if method == "delete" && (path.contains("{thread_id}") || path.contains("{assistant_id}") || path.contains("{cron_id}")) {
                    continue;
                }
                // `/mcp` answers GET and DELETE with 405 and 404 (stateless) and needs MCP's headers
                // on POST (tests/e2e/test_mcp_a2a.py).
                let runs_or_state = (path.contains("/runs") && !path.contains("/crons")) || path.contains("/stream") || path.contains("/state") || path.contains("/history") || path == "/mcp";
                if runs_or_state {
                    // Routed (a wrong method gets 405, an unknown path 404).
                    let (status, _, _) = call(&client, "TRACE", &format!("{}{}", server.base, path.replace("{thread_id}", &thread_id)), None).await;
                    assert_eq!(status, 405, "{method} {path} is not routed");
                    continue;
                }
                let concrete = path.replace("{assistant_id}", "agent").replace("{thread_id}", &thread_id).replace("{namespace}", "none").replace("{cron_id}", &cron_id);
                let concrete = match (method.as_str(), path.as_str()) {
                    ("get", "/store/items") => format!("{concrete}?namespace=a&key=k"),
                    ("get", "/.well-known/agent-card.json") => format!("{concrete}?assistant_id=agent"),
                    _ => concrete,
                };
                let body = bodies.iter().find(|(p, _)| p == path).map(|(_, body)| *body).or_else(|| (method != "get").then_some("{}"));
                let (status, body, _) = call(&client, &method.to_uppercase(), &format!("{}{concrete}", server.base), body).await;
                assert!((200..300).contains(&status), "{method} {path} answered {status}: {body}");
            }
        }
        let (status, _, _) = call(&client, "DELETE", &format!("{}/threads/{thread_id}", server.base), None).await;
        assert_eq!(status, 204);
        let (status, html, _) = call(&client, "GET", &format!("{}/docs", server.base), None).await;
        assert_eq!(status, 200);
        assert!(html.as_str().is_some_and(|page| page.contains("/assistants/search")));
    });
}
