//! `GET /openapi.json` and `GET /docs`: graphward's own description of the routes it serves.
//!
//! [`ROUTES`] lists every route the router has; a test checks that each one answers.

use serde_json::{Map, Value, json};

/// One documented operation.
#[derive(Debug, Clone, Copy)]
pub struct RouteDoc {
    pub method: &'static str,
    pub path: &'static str,
    pub tag: &'static str,
    pub summary: &'static str,
    /// Name of the request body schema in `components.schemas`, if the route takes a body.
    pub body: Option<&'static str>,
    /// The 200 response schema (a JSON Schema).
    pub response: fn() -> Value,
}

fn thread_ref() -> Value {
    json!({"$ref": "#/components/schemas/Thread"})
}
fn thread_list() -> Value {
    json!({"type": "array", "items": {"$ref": "#/components/schemas/Thread"}})
}
fn item_or_null() -> Value {
    json!({"anyOf": [{"$ref": "#/components/schemas/Item"}, {"type": "null"}]})
}
fn empty() -> Value {
    json!({})
}
fn cron_ref() -> Value {
    json!({"$ref": "#/components/schemas/Cron"})
}
fn cron_list() -> Value {
    json!({"type": "array", "items": {"$ref": "#/components/schemas/Cron"}})
}
fn assistant_ref() -> Value {
    json!({"$ref": "#/components/schemas/Assistant"})
}
fn assistant_list() -> Value {
    json!({"type": "array", "items": {"$ref": "#/components/schemas/Assistant"}})
}
fn integer() -> Value {
    json!({"type": "integer"})
}
fn health() -> Value {
    json!({"type": "object", "properties": {"ok": {"type": "boolean"}, "services": {"type": "object"}}, "required": ["ok"]})
}
fn any_object() -> Value {
    json!({"type": "object"})
}
fn any_list() -> Value {
    json!({"type": "array"})
}
fn sse() -> Value {
    json!({"type": "string", "description": "text/event-stream"})
}
fn html() -> Value {
    json!({"type": "string"})
}
fn text() -> Value {
    json!({"type": "string", "description": "Prometheus text format 0.0.4"})
}

/// Every route the server has.
pub const ROUTES: &[RouteDoc] = &[
    RouteDoc { method: "get", path: "/ok", tag: "System", summary: "Health check", body: None, response: health },
    RouteDoc { method: "get", path: "/", tag: "System", summary: "Health check (load balancers)", body: None, response: health },
    RouteDoc { method: "get", path: "/info", tag: "System", summary: "Server version and feature flags", body: None, response: any_object },
    RouteDoc { method: "get", path: "/openapi.json", tag: "System", summary: "This document", body: None, response: any_object },
    RouteDoc { method: "get", path: "/docs", tag: "System", summary: "API reference page", body: None, response: html },
    RouteDoc { method: "get", path: "/metrics", tag: "System", summary: "Prometheus metrics (authenticated)", body: None, response: text },
    RouteDoc {
        method: "post",
        path: "/assistants/search",
        tag: "Assistants",
        summary: "Search assistants",
        body: Some("AssistantSearchRequest"),
        response: assistant_list,
    },
    RouteDoc {
        method: "post",
        path: "/assistants/count",
        tag: "Assistants",
        summary: "Count assistants",
        body: Some("AssistantCountRequest"),
        response: integer,
    },
    RouteDoc {
        method: "get",
        path: "/assistants/{assistant_id}",
        tag: "Assistants",
        summary: "Get an assistant (by UUID or graph id)",
        body: None,
        response: assistant_ref,
    },
    RouteDoc { method: "post", path: "/assistants", tag: "Assistants", summary: "Create an assistant", body: Some("AssistantCreate"), response: assistant_ref },
    RouteDoc { method: "patch", path: "/assistants/{assistant_id}", tag: "Assistants", summary: "Update an assistant (new version)", body: Some("AssistantPatch"), response: assistant_ref },
    RouteDoc { method: "delete", path: "/assistants/{assistant_id}", tag: "Assistants", summary: "Delete an assistant", body: None, response: empty },
    RouteDoc { method: "post", path: "/assistants/{assistant_id}/versions", tag: "Assistants", summary: "List an assistant's versions", body: Some("AssistantVersionsSearchRequest"), response: assistant_list },
    RouteDoc { method: "post", path: "/assistants/{assistant_id}/latest", tag: "Assistants", summary: "Make a version current", body: Some("AssistantVersionChange"), response: assistant_ref },
    RouteDoc { method: "get", path: "/assistants/{assistant_id}/graph", tag: "Assistants", summary: "The assistant's graph, drawable (`xray`)", body: None, response: any_object },
    RouteDoc { method: "get", path: "/assistants/{assistant_id}/schemas", tag: "Assistants", summary: "JSON schemas of the assistant's graph", body: None, response: any_object },
    RouteDoc { method: "get", path: "/assistants/{assistant_id}/subgraphs", tag: "Assistants", summary: "Schemas of the subgraphs", body: None, response: any_object },
    RouteDoc { method: "get", path: "/assistants/{assistant_id}/subgraphs/{namespace}", tag: "Assistants", summary: "Schemas of one subgraph namespace", body: None, response: any_object },
    RouteDoc { method: "post", path: "/threads", tag: "Threads", summary: "Create a thread", body: Some("ThreadCreate"), response: thread_ref },
    RouteDoc { method: "post", path: "/threads/search", tag: "Threads", summary: "Search threads", body: Some("ThreadSearchRequest"), response: thread_list },
    RouteDoc { method: "post", path: "/threads/count", tag: "Threads", summary: "Count threads", body: Some("ThreadCountRequest"), response: integer },
    RouteDoc { method: "post", path: "/threads/prune", tag: "Threads", summary: "Delete threads in bulk", body: Some("ThreadPruneRequest"), response: any_object },
    RouteDoc { method: "get", path: "/threads/{thread_id}", tag: "Threads", summary: "Get a thread", body: None, response: thread_ref },
    RouteDoc { method: "patch", path: "/threads/{thread_id}", tag: "Threads", summary: "Merge metadata into a thread", body: Some("ThreadPatch"), response: thread_ref },
    RouteDoc { method: "delete", path: "/threads/{thread_id}", tag: "Threads", summary: "Delete a thread", body: None, response: empty },
    RouteDoc { method: "post", path: "/threads/{thread_id}/copy", tag: "Threads", summary: "Copy a thread", body: None, response: thread_ref },
    RouteDoc { method: "post", path: "/runs/crons", tag: "Crons", summary: "Create a stateless cron", body: Some("CronCreate"), response: cron_ref },
    RouteDoc { method: "post", path: "/threads/{thread_id}/runs/crons", tag: "Crons", summary: "Create a cron on a thread", body: Some("CronCreate"), response: cron_ref },
    RouteDoc { method: "post", path: "/runs/crons/search", tag: "Crons", summary: "Search crons", body: Some("CronSearch"), response: cron_list },
    RouteDoc { method: "post", path: "/runs/crons/count", tag: "Crons", summary: "Count crons", body: Some("CronSearch"), response: integer },
    RouteDoc { method: "get", path: "/runs/crons/{cron_id}", tag: "Crons", summary: "Get a cron", body: None, response: cron_ref },
    RouteDoc { method: "patch", path: "/runs/crons/{cron_id}", tag: "Crons", summary: "Update a cron", body: Some("CronCreate"), response: cron_ref },
    RouteDoc { method: "delete", path: "/runs/crons/{cron_id}", tag: "Crons", summary: "Delete a cron", body: None, response: empty },
    RouteDoc { method: "post", path: "/threads/{thread_id}/runs", tag: "Thread Runs", summary: "Create a background run", body: Some("RunCreate"), response: any_object },
    RouteDoc { method: "get", path: "/threads/{thread_id}/runs", tag: "Thread Runs", summary: "List a thread's runs", body: None, response: any_list },
    RouteDoc { method: "post", path: "/threads/{thread_id}/runs/stream", tag: "Thread Runs", summary: "Create a run and stream it (SSE)", body: Some("RunCreate"), response: sse },
    RouteDoc { method: "post", path: "/threads/{thread_id}/runs/wait", tag: "Thread Runs", summary: "Create a run and wait for its result", body: Some("RunCreate"), response: any_object },
    RouteDoc { method: "get", path: "/threads/{thread_id}/runs/{run_id}", tag: "Thread Runs", summary: "Get a run", body: None, response: any_object },
    RouteDoc { method: "delete", path: "/threads/{thread_id}/runs/{run_id}", tag: "Thread Runs", summary: "Delete a run", body: None, response: empty },
    RouteDoc { method: "get", path: "/threads/{thread_id}/runs/{run_id}/join", tag: "Thread Runs", summary: "Wait for a run's result", body: None, response: any_object },
    RouteDoc { method: "get", path: "/threads/{thread_id}/runs/{run_id}/stream", tag: "Thread Runs", summary: "Join a run's stream (Last-Event-ID)", body: None, response: sse },
    RouteDoc { method: "post", path: "/threads/{thread_id}/runs/{run_id}/cancel", tag: "Thread Runs", summary: "Cancel a run", body: None, response: empty },
    RouteDoc { method: "get", path: "/threads/{thread_id}/stream", tag: "Thread Runs", summary: "Stream every run of a thread (SSE)", body: None, response: sse },
    RouteDoc { method: "post", path: "/threads/{thread_id}/commands", tag: "Thread Runs", summary: "A v3 streaming protocol command (run.start, input.respond, subscription.*, agent.getTree)", body: None, response: any_object },
    RouteDoc { method: "post", path: "/threads/{thread_id}/stream/events", tag: "Thread Runs", summary: "The thread's v3 protocol events (SSE; body: SubscribeParams with since)", body: None, response: sse },
    RouteDoc { method: "get", path: "/threads/{thread_id}/stream/events", tag: "Thread Runs", summary: "The v3 protocol over a WebSocket (commands in, answers and events out)", body: None, response: any_object },
    RouteDoc { method: "post", path: "/runs", tag: "Stateless Runs", summary: "Create a stateless background run", body: Some("RunCreate"), response: any_object },
    RouteDoc { method: "post", path: "/runs/stream", tag: "Stateless Runs", summary: "Create a stateless run and stream it", body: Some("RunCreate"), response: sse },
    RouteDoc { method: "post", path: "/runs/wait", tag: "Stateless Runs", summary: "Create a stateless run and wait for it", body: Some("RunCreate"), response: any_object },
    RouteDoc { method: "post", path: "/runs/batch", tag: "Stateless Runs", summary: "Create several stateless runs", body: None, response: any_list },
    RouteDoc { method: "post", path: "/runs/cancel", tag: "Thread Runs", summary: "Cancel runs by ids or status", body: None, response: empty },
    RouteDoc { method: "get", path: "/threads/{thread_id}/state", tag: "Threads", summary: "The thread's latest state", body: None, response: any_object },
    RouteDoc { method: "post", path: "/threads/{thread_id}/state", tag: "Threads", summary: "Update the thread's state", body: None, response: any_object },
    RouteDoc { method: "get", path: "/threads/{thread_id}/state/{checkpoint_id}", tag: "Threads", summary: "The thread's state at a checkpoint", body: None, response: any_object },
    RouteDoc { method: "post", path: "/threads/{thread_id}/state/checkpoint", tag: "Threads", summary: "The thread's state at a checkpoint object", body: None, response: any_object },
    RouteDoc { method: "get", path: "/threads/{thread_id}/history", tag: "Threads", summary: "The thread's state history", body: None, response: any_list },
    RouteDoc { method: "post", path: "/threads/{thread_id}/history", tag: "Threads", summary: "The thread's state history (filtered)", body: None, response: any_list },
    RouteDoc { method: "post", path: "/mcp", tag: "MCP", summary: "MCP over streamable HTTP (JSON-RPC: initialize, ping, tools/list, tools/call)", body: None, response: any_object },
    RouteDoc { method: "get", path: "/mcp", tag: "MCP", summary: "No server stream: 405 (stateless server)", body: None, response: empty },
    RouteDoc { method: "delete", path: "/mcp", tag: "MCP", summary: "No sessions to end: 404 (stateless server)", body: None, response: empty },
    RouteDoc { method: "post", path: "/a2a/{assistant_id}", tag: "A2A", summary: "A2A JSON-RPC (message/send, tasks/get)", body: None, response: any_object },
    RouteDoc { method: "get", path: "/a2a/{assistant_id}", tag: "A2A", summary: "The assistant's A2A agent card", body: None, response: any_object },
    RouteDoc { method: "get", path: "/a2a/{assistant_id}/.well-known/agent-card.json", tag: "A2A", summary: "The assistant's A2A agent card", body: None, response: any_object },
    RouteDoc { method: "get", path: "/.well-known/agent-card.json", tag: "A2A", summary: "An assistant's A2A agent card (assistant_id=…)", body: None, response: any_object },
    RouteDoc { method: "put", path: "/store/items", tag: "Store", summary: "Put an item", body: Some("StorePutRequest"), response: empty },
    RouteDoc { method: "get", path: "/store/items", tag: "Store", summary: "Get an item (namespace=a.b&key=k)", body: None, response: item_or_null },
    RouteDoc { method: "delete", path: "/store/items", tag: "Store", summary: "Delete an item", body: Some("StoreDeleteRequest"), response: empty },
    RouteDoc { method: "post", path: "/store/items/search", tag: "Store", summary: "Search items", body: Some("StoreSearchRequest"), response: any_object },
    RouteDoc { method: "post", path: "/store/namespaces", tag: "Store", summary: "List namespaces", body: Some("StoreListNamespacesRequest"), response: any_object },
];

/// The OpenAPI 3.1 document; `graph_ids` fill the `graph_id` enums.
/// `document` with `auth.openapi` of langgraph.json merged in: its `securitySchemes` join
/// `components`, its `security` is the document's, and its `paths` overrides set the security
/// of the operations graphward serves (others are not added). Public routes, which never
/// authenticate, say so (`security: []`) when there is a global requirement.
pub fn with_security(mut document: Value, security: Option<&Map<String, Value>>) -> Value {
    let Some(security) = security else {
        return document;
    };
    if let Some(Value::Object(schemes)) = security.get("securitySchemes") {
        document["components"]["securitySchemes"] = Value::Object(schemes.clone());
    }
    if let Some(requirements) = security.get("security").filter(|requirements| !requirements.is_null()) {
        document["security"] = requirements.clone();
        for path in super::gate::PUBLIC_PATHS {
            if let Some(Value::Object(operations)) = document["paths"].get_mut(path) {
                for operation in operations.values_mut() {
                    operation["security"] = json!([]);
                }
            }
        }
    }
    if let Some(Value::Object(paths)) = security.get("paths") {
        for (path, methods) in paths {
            for (method, requirements) in methods.as_object().into_iter().flatten() {
                if let Some(operation) = document["paths"].get_mut(path).and_then(|operations| operations.get_mut(method.to_ascii_lowercase()))
                    && operation.is_object()
                {
                    operation["security"] = requirements.clone();
                }
            }
        }
    }
    document
}

pub fn document(graph_ids: &[&str]) -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let mut operation = json!({
            "tags": [route.tag],
            "summary": route.summary,
            "responses": {
                "200": {"description": "Success", "content": {"application/json": {"schema": (route.response)()}}},
                "422": {"description": "Validation error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}},
            },
        });
        let parameters: Vec<Value> = path_parameters(route.path)
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        if !parameters.is_empty() {
            operation["parameters"] = Value::Array(parameters);
        }
        if let Some(body) = route.body {
            operation["requestBody"] =
                json!({"required": false, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{body}")}}}});
        }
        let entry = paths.entry(route.path.to_string()).or_insert_with(|| Value::Object(Map::new()));
        entry[route.method] = operation;
    }
    let graph_enum = json!({"type": "string", "enum": graph_ids});
    let assistant_fields = json!(["assistant_id", "graph_id", "name", "description", "config", "context", "created_at", "updated_at", "metadata", "version"]);
    json!({
        "openapi": "3.1.0",
        "info": {"title": "graphward", "version": env!("CARGO_PKG_VERSION"), "description": "LangGraph API served by graphward"},
        "paths": paths,
        "components": {"schemas": {
            "ErrorResponse": {"type": "object", "properties": {"detail": {"type": "string"}}, "required": ["detail"]},
            "Assistant": {
                "type": "object",
                "properties": {
                    "assistant_id": {"type": "string", "format": "uuid"},
                    "graph_id": graph_enum,
                    "config": {"type": "object"},
                    "context": {"type": "object"},
                    "created_at": {"type": "string", "format": "date-time"},
                    "updated_at": {"type": "string", "format": "date-time"},
                    "metadata": {"type": "object"},
                    "version": {"type": "integer"},
                    "name": {"type": "string"},
                    "description": {"type": ["string", "null"]},
                },
                "required": assistant_fields,
            },
            "AssistantSearchRequest": {
                "type": "object",
                "properties": {
                    "metadata": {"type": "object"},
                    "graph_id": graph_enum,
                    "name": {"type": "string"},
                    "limit": {"type": "integer", "default": 10, "minimum": 1, "maximum": 1000},
                    "offset": {"type": "integer", "default": 0, "minimum": 0},
                    "sort_by": {"type": "string", "enum": ["assistant_id", "created_at", "updated_at", "name", "graph_id"]},
                    "sort_order": {"type": "string", "enum": ["asc", "desc"]},
                    "select": {"type": "array", "items": {"type": "string", "enum": assistant_fields}},
                },
            },
            "Thread": {"type": "object", "properties": {
                "thread_id": {"type": "string", "format": "uuid"},
                "created_at": {"type": "string", "format": "date-time"},
                "updated_at": {"type": "string", "format": "date-time"},
                "state_updated_at": {"type": "string", "format": "date-time"},
                "metadata": {"type": "object"},
                "config": {"type": "object"},
                "status": {"type": "string", "enum": ["idle", "busy", "interrupted", "error"]},
                "values": {"type": ["object", "null"]},
                "interrupts": {"type": "object"},
                "error": {"type": ["object", "null"]},
            }},
            "ThreadCreate": {"type": "object", "properties": {
                "thread_id": {"type": "string", "format": "uuid"},
                "metadata": {"type": "object"},
                "if_exists": {"type": "string", "enum": ["raise", "do_nothing"]},
                "supersteps": {"type": "array", "description": "State updates applied in order to the new thread, with the graph metadata.graph_id names; all or nothing.", "items": {
                    "type": "object", "required": ["updates"], "properties": {"updates": {"type": "array", "items": {
                        "type": "object", "required": ["as_node"], "properties": {
                            "values": {"type": ["object", "null"]},
                            "command": {"type": ["object", "null"]},
                            "as_node": {"type": "string"},
                        },
                    }}},
                }},
            }},
            "ThreadSearchRequest": {"type": "object", "properties": {
                "ids": {"type": "array", "items": {"type": "string", "format": "uuid"}},
                "metadata": {"type": "object"},
                "values": {"type": "object"},
                "status": {"type": "string", "enum": ["idle", "busy", "interrupted", "error"]},
                "limit": {"type": "integer", "default": 10, "minimum": 1, "maximum": 1000},
                "offset": {"type": "integer", "default": 0, "minimum": 0},
                "sort_by": {"type": "string", "enum": ["thread_id", "status", "created_at", "updated_at", "state_updated_at"]},
                "sort_order": {"type": "string", "enum": ["asc", "desc"]},
                "select": {"type": "array", "items": {"type": "string"}},
                "extract": {"type": "object"},
            }},
            "ThreadCountRequest": {"type": "object", "properties": {"metadata": {"type": "object"}, "values": {"type": "object"}, "status": {"type": "string"}}},
            "ThreadPatch": {"type": "object", "properties": {"metadata": {"type": "object"}}},
            "ThreadPruneRequest": {"type": "object", "required": ["thread_ids"], "properties": {
                "thread_ids": {"type": "array", "items": {"type": "string", "format": "uuid"}},
                "strategy": {"type": "string", "enum": ["delete", "keep_latest"]},
            }},
            "Item": {"type": "object", "properties": {
                "namespace": {"type": "array", "items": {"type": "string"}},
                "key": {"type": "string"},
                "value": {"type": "object"},
                "created_at": {"type": "string", "format": "date-time"},
                "updated_at": {"type": "string", "format": "date-time"},
            }},
            "StorePutRequest": {"type": "object", "required": ["namespace", "key", "value"], "properties": {
                "namespace": {"type": "array", "items": {"type": "string"}},
                "key": {"type": "string"},
                "value": {"type": "object"},
                "index": {"anyOf": [{"const": false}, {"type": "array", "items": {"type": "string"}}, {"type": "null"}]},
                "ttl": {"type": ["number", "null"]},
            }},
            "StoreDeleteRequest": {"type": "object", "required": ["namespace", "key"], "properties": {
                "namespace": {"type": "array", "items": {"type": "string"}}, "key": {"type": "string"},
            }},
            "StoreSearchRequest": {"type": "object", "properties": {
                "namespace_prefix": {"type": "array", "items": {"type": "string"}},
                "filter": {"type": ["object", "null"]},
                "limit": {"type": "integer", "default": 10},
                "offset": {"type": "integer", "default": 0},
                "query": {"type": ["string", "null"]},
            }},
            "StoreListNamespacesRequest": {"type": "object", "properties": {
                "prefix": {"type": "array", "items": {"type": "string"}},
                "suffix": {"type": "array", "items": {"type": "string"}},
                "max_depth": {"type": "integer"},
                "limit": {"type": "integer", "default": 100},
                "offset": {"type": "integer", "default": 0},
            }},
            "AssistantCreate": {"type": "object", "required": ["graph_id"], "properties": {
                "graph_id": graph_enum,
                "assistant_id": {"type": "string", "format": "uuid"},
                "config": {"type": "object"},
                "context": {"type": "object"},
                "metadata": {"type": "object"},
                "if_exists": {"type": "string", "enum": ["raise", "do_nothing"]},
                "name": {"type": "string"},
                "description": {"type": ["string", "null"]},
            }},
            "AssistantPatch": {"type": "object", "properties": {
                "graph_id": graph_enum,
                "config": {"type": "object"},
                "context": {"type": "object"},
                "metadata": {"type": "object"},
                "name": {"type": "string"},
                "description": {"type": ["string", "null"]},
            }},
            "AssistantVersionsSearchRequest": {"type": "object", "properties": {
                "metadata": {"type": "object"}, "limit": {"type": "integer", "default": 10}, "offset": {"type": "integer", "default": 0},
            }},
            "AssistantVersionChange": {"type": "object", "required": ["version"], "properties": {"version": {"type": "integer"}}},
            "Cron": {"type": "object", "properties": {
                "cron_id": {"type": "string", "format": "uuid"},
                "assistant_id": {"type": "string", "format": "uuid"},
                "thread_id": {"type": ["string", "null"], "format": "uuid"},
                "on_run_completed": {"type": ["string", "null"], "enum": ["delete", "keep", null]},
                "end_time": {"type": ["string", "null"], "format": "date-time"},
                "schedule": {"type": "string"},
                "timezone": {"type": ["string", "null"]},
                "created_at": {"type": "string", "format": "date-time"},
                "updated_at": {"type": "string", "format": "date-time"},
                "payload": {"type": "object"},
                "user_id": {"type": ["string", "null"]},
                "next_run_date": {"type": ["string", "null"], "format": "date-time"},
                "metadata": {"type": "object"},
                "enabled": {"type": "boolean"},
            }},
            "CronCreate": {"type": "object", "required": ["schedule", "assistant_id"], "properties": {
                "schedule": {"type": "string"},
                "assistant_id": {"type": "string"},
                "timezone": {"type": "string"},
                "end_time": {"type": "string", "format": "date-time"},
                "input": {},
                "metadata": {"type": "object"},
                "config": {"type": "object"},
                "context": {"type": "object"},
                "on_run_completed": {"type": "string", "enum": ["delete", "keep"]},
                "enabled": {"type": "boolean"},
            }},
            "CronSearch": {"type": "object", "properties": {
                "assistant_id": {"type": "string"},
                "thread_id": {"type": "string", "format": "uuid"},
                "enabled": {"type": "boolean"},
                "metadata": {"type": "object"},
                "limit": {"type": "integer", "default": 10},
                "offset": {"type": "integer", "default": 0},
                "sort_by": {"type": "string", "enum": ["cron_id", "assistant_id", "thread_id", "next_run_date", "end_time", "created_at", "updated_at"]},
                "sort_order": {"type": "string", "enum": ["asc", "desc"]},
            }},
            "RunCreate": {"type": "object", "required": ["assistant_id"], "properties": {
                "assistant_id": {"type": "string"},
                "input": {},
                "command": {"type": "object"},
                "metadata": {"type": "object"},
                "config": {"type": "object"},
                "context": {"type": "object"},
                "stream_mode": {},
                "stream_subgraphs": {"type": "boolean"},
                "stream_resumable": {"type": "boolean"},
                "interrupt_before": {},
                "interrupt_after": {},
                "checkpoint_id": {"type": "string"},
                "multitask_strategy": {"type": "string", "enum": ["reject", "interrupt", "rollback", "enqueue"]},
                "if_not_exists": {"type": "string", "enum": ["create", "reject"]},
                "on_disconnect": {"type": "string", "enum": ["cancel", "continue"]},
                "on_completion": {"type": "string", "enum": ["delete", "keep"]},
                "after_seconds": {"type": "number"},
                "webhook": {"type": "string"},
                "durability": {"type": "string", "enum": ["sync", "async", "exit"]},
            }},
            "AssistantCountRequest": {
                "type": "object",
                "properties": {"metadata": {"type": "object"}, "graph_id": graph_enum, "name": {"type": "string"}},
            },
        }},
    })
}

fn path_parameters(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter_map(|segment| segment.strip_prefix('{').and_then(|rest| rest.strip_suffix('}')))
}

/// A self-contained HTML page listing every operation, with the document inlined.
pub fn docs_page(document: &Value) -> String {
    let mut rows = String::new();
    if let Some(paths) = document["paths"].as_object() {
        for (path, operations) in paths {
            for (method, operation) in operations.as_object().into_iter().flatten() {
                rows.push_str(&format!(
                    "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>\n",
                    escape(&method.to_uppercase()),
                    escape(path),
                    escape(operation["tags"][0].as_str().unwrap_or_default()),
                    escape(operation["summary"].as_str().unwrap_or_default()),
                ));
            }
        }
    }
    let inlined = escape(&serde_json::to_string_pretty(document).unwrap_or_default());
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>graphward API</title>\
<style>body{{font-family:system-ui,sans-serif;margin:2em}}td{{padding:.2em 1em}}pre{{background:#f4f4f4;padding:1em}}</style></head>\
<body><h1>graphward API</h1><p>Machine-readable: <a href=\"/openapi.json\">/openapi.json</a></p>\
<table><tr><th>Method</th><th>Path</th><th>Tag</th><th>Summary</th></tr>\n{rows}</table>\
<details><summary>OpenAPI document</summary><pre>{inlined}</pre></details></body></html>"
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_openapi_is_merged_in() {
        let block = json!({
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}, "key": {"type": "apiKey", "in": "header", "name": "x-api-key"}},
            "security": [{"bearer": []}],
            "paths": {"/threads": {"POST": [{"key": []}]}, "/not/served": {"get": [{"key": []}]}},
        });
        let document = with_security(document(&["agent"]), block.as_object());
        assert_eq!(document["components"]["securitySchemes"], block["securitySchemes"]);
        assert!(document["components"]["schemas"]["Thread"].is_object(), "the schemas stay");
        assert_eq!(document["security"], json!([{"bearer": []}]));
        assert_eq!(document["paths"]["/threads"]["post"]["security"], json!([{"key": []}]));
        assert!(document["paths"]["/threads/search"]["post"].get("security").is_none(), "others follow the global requirement");
        assert_eq!(document["paths"]["/ok"]["get"]["security"], json!([]), "public routes never authenticate");
        assert!(document["paths"].get("/not/served").is_none());
        assert_eq!(with_security(document.clone(), None), document);
    }
}
