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
fn html() -> Value {
    json!({"type": "string"})
}

/// Every route the server has.
pub const ROUTES: &[RouteDoc] = &[
    RouteDoc { method: "get", path: "/ok", tag: "System", summary: "Health check", body: None, response: health },
    RouteDoc { method: "get", path: "/", tag: "System", summary: "Health check (load balancers)", body: None, response: health },
    RouteDoc { method: "get", path: "/info", tag: "System", summary: "Server version and feature flags", body: None, response: any_object },
    RouteDoc { method: "get", path: "/openapi.json", tag: "System", summary: "This document", body: None, response: any_object },
    RouteDoc { method: "get", path: "/docs", tag: "System", summary: "API reference page", body: None, response: html },
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
];

/// The OpenAPI 3.1 document; `graph_ids` fill the `graph_id` enums.
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
