"""Starts the built graphward binary on a free port for the end-to-end tests.

scripts/test.sh runs these with the repo's `.venv` (pinned langgraph, langgraph-sdk, httpx,
pytest) and GRAPHWARD_BIN pointing at the binary it just built.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A running `graphward dev`; stopped with SIGTERM (and checked to exit cleanly)."""

    def __init__(self, config: Path, *, env: dict[str, str] | None = None, command: str = "dev", extra_args: list[str] | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.cwd = tempfile.mkdtemp(prefix="graphward-e2e-")
        binary = os.environ.get("GRAPHWARD_BIN") or str(REPO / "target" / "debug" / "graphward")
        # Servers stopped with runs still executing wait 2 s for them, not the default 10 s.
        environment = {**os.environ, "VIRTUAL_ENV": sys.prefix, "GRAPHWARD_SHUTDOWN_GRACE": "2", **(env or {})}
        environment.pop("GRAPHWARD_LOG", None)
        args = [binary, command, "--port", str(self.port), "--config", str(config)]
        if command == "dev":
            args.append("--no-browser")
        args.extend(extra_args or [])
        self.log = open(Path(self.cwd) / "server.log", "w+")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(args, cwd=self.cwd, env=environment, stdout=self.log, stderr=subprocess.STDOUT)
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"graphward exited with {self.process.returncode}:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/ok", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"graphward did not answer /ok within 60 s:\n{self.output()}")

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        shutil.rmtree(self.cwd, ignore_errors=True)
        return self.process.returncode


@pytest.fixture(scope="session")
def example_server(tmp_path_factory):
    """The repo's example app (langgraph.json at the root, with examples/auth.py), on a
    database of its own: one process serves a database file, and `scripts/dev.sh` may be
    serving the repo's."""
    database = tmp_path_factory.mktemp("example-db") / "state.db"
    server = Server(REPO / "langgraph.json", extra_args=["--database", str(database)])
    yield server
    server.stop()


@pytest.fixture(scope="session")
def open_server(tmp_path_factory):
    """The example graph without auth."""
    folder = tmp_path_factory.mktemp("open-app")
    agent = REPO / "examples" / "agent.py"
    (folder / "langgraph.json").write_text(json.dumps({"graphs": {"agent": f"{agent}:graph"}}))
    server = Server(folder / "langgraph.json")
    yield server
    server.stop()


@pytest.fixture
def make_server(tmp_path):
    """Starts servers for app folders a test writes; stops them after the test."""
    started: list[Server] = []

    def start(files: dict[str, str], **kwargs) -> Server:
        for name, content in files.items():
            path = tmp_path / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
        server = Server(tmp_path / "langgraph.json", **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def anyio_backend():
    """Async tests (`@pytest.mark.anyio`) run on asyncio, like the official client expects."""
    return "asyncio"
