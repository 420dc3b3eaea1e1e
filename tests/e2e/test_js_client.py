"""The official JS client (`@langchain/langgraph-sdk`, pinned in tests/js) against the example app.

Runs tests/js/smoke.mjs with Node (threads, assistants and the store, authenticated with an
`Authorization` header) and tests/js/stream.mjs (`runs.stream`, re-joining the run with
`Last-Event-ID`). Installs tests/js/node_modules with `npm ci` when it is missing.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from conftest import REPO, Server

JS_DIR = REPO / "tests" / "js"


@pytest.fixture(scope="module")
def node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not on PATH")
    if not (JS_DIR / "node_modules" / "@langchain" / "langgraph-sdk").is_dir():
        npm = shutil.which("npm")
        assert npm is not None, "node is on PATH but npm is not: cannot install tests/js"
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=JS_DIR,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, f"npm ci failed in {JS_DIR}:\n{result.stdout}\n{result.stderr}"
    return node


@pytest.fixture
def example_app(tmp_path):
    """The example app copied into a new folder, so the server starts on fresh state."""
    app = tmp_path / "app"
    shutil.copytree(REPO / "examples", app / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "langgraph.json", app / "langgraph.json")
    server = Server(app / "langgraph.json")
    yield server
    server.stop()


def test_js_client_smoke(node, example_app):
    try:
        result = subprocess.run(
            [node, str(JS_DIR / "smoke.mjs"), example_app.url],
            cwd=JS_DIR,
            capture_output=True,
            text=True,
            timeout=300,
        )
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"smoke.mjs timed out:\n{error.stdout}\n{error.stderr}\n--- server log ---\n{example_app.output()}")
    assert result.returncode == 0, (
        f"smoke.mjs exited with {result.returncode}:\n{result.stdout}\n{result.stderr}"
        f"\n--- server log ---\n{example_app.output()}"
    )


def test_js_stream_and_rejoin(node, example_app):
    try:
        result = subprocess.run(
            [node, str(JS_DIR / "stream.mjs"), example_app.url],
            cwd=JS_DIR,
            capture_output=True,
            text=True,
            timeout=300,
        )
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"stream.mjs timed out:\n{error.stdout}\n{error.stderr}\n--- server log ---\n{example_app.output()}")
    assert result.returncode == 0, (
        f"stream.mjs exited with {result.returncode}:\n{result.stdout}\n{result.stderr}"
        f"\n--- server log ---\n{example_app.output()}"
    )


def websocket_flags(node: str) -> list[str]:
    """Node 20 and 21 have the global `WebSocket` only behind a flag."""
    major = int(subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout.strip().lstrip("v").split(".")[0])
    return ["--experimental-websocket"] if major < 22 else []


def test_js_thread_event_stream(node, example_app):
    """tests/js/event_stream.mjs: `client.threads.stream` (the v3 protocol over SSE and over a
    WebSocket)."""
    try:
        result = subprocess.run(
            [node, *websocket_flags(node), str(JS_DIR / "event_stream.mjs"), example_app.url],
            cwd=JS_DIR,
            capture_output=True,
            text=True,
            timeout=300,
        )
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"event_stream.mjs timed out:\n{error.stdout}\n{error.stderr}\n--- server log ---\n{example_app.output()}")
    assert result.returncode == 0, (
        f"event_stream.mjs exited with {result.returncode}:\n{result.stdout}\n{result.stderr}"
        f"\n--- server log ---\n{example_app.output()}"
    )
