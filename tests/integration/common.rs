//! Starting the real binary: on a free port, with the test venv, from a scratch folder.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The repo root.
pub(crate) fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The venv with `langgraph` that scripts/test.sh prepares.
pub(crate) fn venv() -> PathBuf {
    let venv = std::env::var_os("GRAPHWARD_TEST_VENV").map_or_else(|| repo().join(".venv"), PathBuf::from);
    assert!(venv.join("bin/python").exists(), "no test venv at {}; run scripts/test.sh", venv.display());
    venv
}

/// `graphward` with the test venv, run from a scratch folder (never the repo).
pub(crate) fn graphward(cwd: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_graphward"));
    command.current_dir(cwd).env("VIRTUAL_ENV", venv()).env_remove("GRAPHWARD_LOG");
    command
}

/// A fresh folder under the system temp dir.
pub(crate) fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("graphward-test-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// Writes `files` (relative path, content) into a fresh folder and returns it.
pub(crate) fn app(files: &[(&str, &str)]) -> PathBuf {
    let dir = scratch();
    for (path, content) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, content).expect("write");
    }
    dir
}

pub(crate) const ECHO_GRAPH: &str = "\
from typing import TypedDict
from langgraph.graph import StateGraph, START, END

class State(TypedDict):
    text: str

def respond(state):
    return {\"text\": state[\"text\"]}

builder = StateGraph(State)
builder.add_node(\"respond\", respond)
builder.add_edge(START, \"respond\")
builder.add_edge(\"respond\", END)
graph = builder.compile()
";

/// A free port on 127.0.0.1 (bound and released; good enough for one test).
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// A running server, killed on drop.
pub(crate) struct Server {
    child: Child,
    pub(crate) base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `graphward dev` on a free port with the given config and waits for `/ok`.
    pub(crate) fn start(config: &Path) -> Self {
        Self::start_with_env(config, &[])
    }

    /// [`Server::start`] with extra environment variables.
    pub(crate) fn start_with_env(config: &Path, env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let child = graphward(&scratch())
            .args(["dev", "--no-browser", "--port", &port.to_string(), "--config"])
            .arg(config)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn graphward");
        let mut server = Self { child, base: format!("http://127.0.0.1:{port}") };
        server.wait_ready();
        server
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                let mut stderr = String::new();
                if let Some(pipe) = self.child.stderr.take() {
                    for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                        stderr.push_str(&line);
                        stderr.push('\n');
                    }
                }
                panic!("graphward exited early ({status}): {stderr}");
            }
            if ureq_ok(&format!("{}/ok", self.base)) {
                // Keep draining stderr so the server never blocks on a full pipe.
                if let Some(pipe) = self.child.stderr.take() {
                    std::thread::spawn(move || for _ in BufReader::new(pipe).lines() {});
                }
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("graphward did not answer /ok within 60 s");
    }
}

fn ureq_ok(url: &str) -> bool {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return false };
    runtime.block_on(async { reqwest::get(url).await.is_ok_and(|response| response.status().is_success()) })
}

/// Runs to completion and returns the output.
pub(crate) fn run(command: &mut Command) -> Output {
    command.stdin(Stdio::null()).output().expect("run graphward")
}
