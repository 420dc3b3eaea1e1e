//! Broken start-ups: each ends in one clear line on stderr and exit code 2, for `dev` and
//! `check`.

use std::net::TcpListener;
use std::path::Path;

use crate::common::{ECHO_GRAPH, app, graphward, run, scratch};

/// Runs `graphward <command> --config <config>` and returns (exit code, stderr lines).
fn start(command: &str, config: &Path) -> (Option<i32>, Vec<String>) {
    let mut cmd = graphward(&scratch());
    cmd.arg(command);
    if command == "dev" {
        cmd.args(["--no-browser", "--port", "0"]);
    }
    let output = run(cmd.arg("--config").arg(config));
    let stderr = String::from_utf8_lossy(&output.stderr);
    (output.status.code(), stderr.lines().filter(|line| !line.trim().is_empty()).map(str::to_string).collect())
}

fn assert_one_line(command: &str, config: &Path, expected: &[&str]) {
    let (code, lines) = start(command, config);
    assert_eq!(code, Some(2), "{command}: exit code, stderr: {lines:?}");
    assert_eq!(lines.len(), 1, "{command}: one line, got {lines:?}");
    let line = &lines[0];
    assert!(line.starts_with("error: "), "{line}");
    for part in expected {
        assert!(line.contains(part), "{command}: expected `{part}` in: {line}");
    }
}

fn config_with_graph(graph_path: &str, files: &[(&str, &str)]) -> std::path::PathBuf {
    let config = format!(r#"{{"graphs": {{"agent": "{graph_path}"}}}}"#);
    let mut all = vec![("langgraph.json", config.as_str())];
    all.extend_from_slice(files);
    app(&all).join("langgraph.json")
}

#[test]
fn broken_startups_are_one_line_and_exit_2() {
    let cases: Vec<(&str, std::path::PathBuf, Vec<&str>)> = vec![
        ("missing config", scratch().join("langgraph.json"), vec!["langgraph.json", "config file not found"]),
        (
            "invalid JSON",
            app(&[("langgraph.json", "{\n  \"graphs\": {\n    \"agent\": \"./a.py:graph\",\n  }\n}")]).join("langgraph.json"),
            vec!["langgraph.json", "invalid JSON at line 4, column 3"],
        ),
        ("graph path without colon", config_with_graph("./agent.py", &[("agent.py", ECHO_GRAPH)]), vec!["`graphs.agent`", "has no `:attribute`"]),
        ("missing graph file", config_with_graph("./nope.py:graph", &[]), vec!["`graphs.agent`", "`./nope.py` not found"]),
        ("missing attribute", config_with_graph("./agent.py:nope", &[("agent.py", ECHO_GRAPH)]), vec!["graphs.agent", "has no attribute `nope`"]),
        (
            "import error in the graph",
            config_with_graph("./agent.py:graph", &[("agent.py", "import os\nimport not_a_module_xyz\ngraph = None\n")]),
            vec!["graphs.agent", "ModuleNotFoundError: No module named 'not_a_module_xyz'", "agent.py:2"],
        ),
        (
            "syntax error in the graph",
            config_with_graph("./agent.py:graph", &[("agent.py", "def broken(:\n")]),
            vec!["graphs.agent", "SyntaxError", "agent.py:1"],
        ),
        (
            "exception while importing",
            config_with_graph("./agent.py:graph", &[("agent.py", "raise RuntimeError('boom')\n")]),
            vec!["graphs.agent", "RuntimeError: boom", "agent.py:1"],
        ),
        ("not a graph", config_with_graph("./agent.py:graph", &[("agent.py", "graph = 42\n")]), vec!["graphs.agent", "is a int, not a compiled graph"]),
        (
            "factory that fails",
            config_with_graph("./agent.py:make", &[("agent.py", "def make():\n    raise ValueError('no key')\n")]),
            vec!["graphs.agent", "factory `make` failed: ValueError: no key"],
        ),
        ("module graph that is missing", config_with_graph("no_such_pkg.graphs:graph", &[]), vec!["graphs.agent", "No module named 'no_such_pkg'"]),
    ];
    for (name, config, expected) in &cases {
        for command in ["dev", "check"] {
            eprintln!("case: {name} ({command})");
            assert_one_line(command, config, expected);
        }
    }
}

#[test]
fn port_in_use_is_one_line_and_exit_2() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let config = config_with_graph("./agent.py:graph", &[("agent.py", ECHO_GRAPH)]);
    let output = run(graphward(&scratch()).args(["dev", "--no-browser", "--port", &port.to_string(), "--config"]).arg(&config));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|line| !line.trim().is_empty()).collect();
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains(&format!("port {port} on 127.0.0.1 is already in use")), "{stderr}");
}

#[test]
fn check_accepts_a_valid_app_and_reports_graphs() {
    let config = config_with_graph("./agent.py:graph", &[("agent.py", ECHO_GRAPH)]);
    let output = run(graphward(&scratch()).args(["check", "--config"]).arg(&config));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("graph `agent`"), "{stdout}");
    assert!(stdout.contains("Python 3.11"), "{stdout}");
}

#[test]
fn graph_forms_the_reference_accepts_all_load() {
    let module = "\
from typing import TypedDict
from langgraph.graph import StateGraph, START, END

class State(TypedDict):
    text: str

def build():
    builder = StateGraph(State)
    builder.add_node('respond', lambda state: {'text': state['text']})
    builder.add_edge(START, 'respond')
    builder.add_edge('respond', END)
    return builder

uncompiled = build()
compiled = build().compile(name='Named')

def factory(config):
    return build().compile()

async def async_factory():
    return build().compile()
";
    let config = r#"{
        "dependencies": ["./lib"],
        "graphs": {
            "file": "./graphs.py:compiled",
            "uncompiled": "./graphs.py:uncompiled",
            "factory": "./graphs.py:factory",
            "async_factory": {"path": "./graphs.py:async_factory", "description": "made by a coroutine"},
            "module": "mypkg.graphs:compiled"
        },
        "env": ".env"
    }"#;
    let dir = app(&[
        ("langgraph.json", config),
        ("graphs.py", module),
        ("lib/mypkg/__init__.py", ""),
        ("lib/mypkg/graphs.py", module),
        (".env", "MY_SETTING=from-env-file\n"),
    ]);
    let output = run(graphward(&scratch()).args(["check", "--config"]).arg(dir.join("langgraph.json")));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    for graph in ["file", "uncompiled", "factory", "async_factory", "module"] {
        assert!(stdout.contains(&format!("graph `{graph}`")), "{graph}: {stdout}");
    }
    assert!(stdout.contains("graph `file` (name `Named`)"), "{stdout}");
}

fn config_with_auth(auth_py: &str, auth_block: &str) -> std::path::PathBuf {
    let config = format!(r#"{{"graphs": {{"agent": "./agent.py:graph"}}, "auth": {auth_block}}}"#);
    app(&[("langgraph.json", config.as_str()), ("agent.py", ECHO_GRAPH), ("auth.py", auth_py)]).join("langgraph.json")
}

const AUTH_HEADER: &str = "from langgraph_sdk import Auth\nauth = Auth()\n";

#[test]
fn broken_auth_is_one_line_and_exit_2() {
    let authenticate = "@auth.authenticate\nasync def who(authorization):\n    return 'a'\n";
    let path = r#"{"path": "./auth.py:auth"}"#;
    let cases: Vec<(&str, std::path::PathBuf, Vec<&str>)> = vec![
        ("auth file missing", config_with_auth("", r#"{"path": "./missing.py:auth"}"#), vec!["`auth.path`", "`./missing.py` not found"]),
        ("auth path without colon", config_with_auth("", r#"{"path": "./auth.py"}"#), vec!["`auth.path`", "has no `:attribute`"]),
        ("auth attribute missing", config_with_auth(AUTH_HEADER, r#"{"path": "./auth.py:nope"}"#), vec!["`auth.path`", "has no attribute `nope`"]),
        ("not an Auth", config_with_auth("auth = 42\n", path), vec!["`auth.path`", "Expected an Auth instance, got <class 'int'>"]),
        ("no authenticate", config_with_auth(AUTH_HEADER, path), vec!["`auth.path`", "does not have an authenticate handler"]),
        (
            "unsupported parameter",
            config_with_auth(&format!("{AUTH_HEADER}@auth.authenticate\nasync def who(token):\n    return 'a'\n"), path),
            vec!["`auth.path`", "Handler has unsupported required parameters: token."],
        ),
        (
            "import error in auth.py",
            config_with_auth(&format!("import missing_auth_dep\n{AUTH_HEADER}{authenticate}"), path),
            vec!["`auth.path`", "No module named 'missing_auth_dep'", "auth.py:1"],
        ),
        (
            "registration error in auth.py",
            config_with_auth(&format!("{AUTH_HEADER}{authenticate}@auth.on.threads\ndef sync_handler(ctx, value):\n    pass\n"), path),
            vec!["`auth.path`", "must be an async function"],
        ),
        (
            "bad cache block",
            config_with_auth(&format!("{AUTH_HEADER}{authenticate}"), r#"{"path": "./auth.py:auth", "cache": {"cache_keys": "authorization"}}"#),
            vec!["cache_keys"],
        ),
    ];
    for (name, config, expected) in &cases {
        for command in ["dev", "check"] {
            eprintln!("case: {name} ({command})");
            assert_one_line(command, config, expected);
        }
    }
}

#[test]
fn check_prints_the_coverage_matrix_and_strict_fails_on_gaps() {
    let auth_py = format!(
        "{AUTH_HEADER}@auth.authenticate\nasync def who(authorization):\n    return 'a'\n\n@auth.on.threads\nasync def threads(ctx, value):\n    return None\n\n@auth.on.store.put\nasync def put(ctx, value):\n    return None\n"
    );
    let config = config_with_auth(&auth_py, r#"{"path": "./auth.py:auth"}"#);
    let output = run(graphward(&scratch()).args(["check", "--config"]).arg(&config));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let row = |resource: &str, action: &str| {
        stdout
            .lines()
            .find(|line| line.split_whitespace().take(2).eq([resource, action]))
            .unwrap_or_else(|| panic!("no row {resource} {action} in {stdout}"))
            .to_string()
    };
    assert!(row("threads", "create_run").contains("threads (resource)"), "{stdout}");
    assert!(row("store", "put").contains("put (exact)"), "{stdout}");
    assert!(row("store", "get").contains("allowed: no handler"), "{stdout}");
    assert!(row("assistants", "read").contains("allowed: no handler"), "{stdout}");

    let strict = run(graphward(&scratch()).args(["check", "--strict", "--config"]).arg(&config));
    assert_eq!(strict.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&strict.stderr).contains("have no auth handler (--strict)"));

    // The example app's policy covers every pair.
    let example = run(graphward(&scratch()).args(["check", "--strict", "--config"]).arg(crate::common::repo().join("langgraph.json")));
    assert_eq!(example.status.code(), Some(0), "{}", String::from_utf8_lossy(&example.stderr));
}

/// A database file has one server: a second `dev` on the same app (the same default
/// `.graphward/state.db`) is refused in one line while the first runs, instead of ending the
/// first one's runs as its own recovery would.
#[test]
fn a_second_server_of_one_database_is_one_line_and_exit_2() {
    let config = config_with_graph("./agent.py:graph", &[("agent.py", ECHO_GRAPH)]);
    let _first = crate::common::Server::start(&config);
    let (code, lines) = start("dev", &config);
    assert_eq!(code, Some(2), "{lines:?}");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("another graphward process is serving") && lines[0].contains("state.db"), "{lines:?}");
}

/// `langgraph dev` command lines work: flags without meaning here are named in a notice, the
/// TLS flags and an unknown log level are refused in one line.
#[test]
fn langgraph_dev_flags_are_accepted_or_refused_in_one_line() {
    let config = config_with_graph("./agent.py:graph", &[("agent.py", ECHO_GRAPH)]);
    for (flags, expected) in [
        (vec!["--ssl-keyfile", "key.pem"], "graphward serves plain HTTP only"),
        (vec!["--server-log-level", "loud"], "`--server-log-level` must be one of"),
    ] {
        let output = run(graphward(&scratch()).args(["dev", "--no-browser", "--port", "0"]).args(&flags).arg("--config").arg(&config));
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = stderr.lines().filter(|line| !line.trim().is_empty()).collect();
        assert_eq!(output.status.code(), Some(2), "{flags:?}: {stderr}");
        assert!(lines.len() == 1 && lines[0].contains(expected), "{flags:?}: {stderr}");
    }
    // Accepted: each flag without meaning is one notice (a port in use then ends the start).
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    let flags = ["--tunnel", "--allow-blocking", "--debug-port", "5678", "--n-jobs-per-worker", "2", "--server-log-level", "warning", "--studio-url", "https://studio.example"];
    let output = run(graphward(&scratch()).args(["dev", "--no-browser", "--port", &port]).args(flags).arg("--config").arg(&config));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for notice in ["`--allow-blocking`: graphward never raises", "`--tunnel`: graphward opens no public tunnel", "`--debug-port`/`--wait-for-client`"] {
        assert_eq!(stderr.matches(notice).count(), 1, "{notice}: {stderr}");
    }
    assert!(stderr.contains("is already in use"), "{stderr}");
}
