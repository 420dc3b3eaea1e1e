"""Starts the built graphward binary on a free port for the end-to-end tests.

scripts/test.sh runs these with the repo's `.venv` (pinned langgraph, langgraph-sdk, httpx,
pytest) and GRAPHWARD_BIN pointing at the binary it just built; a second time with
GRAPHWARD_E2E_POSTGRES (a Postgres server URI): every server then runs on a Postgres database
instead of its SQLite file, one database per file it would have used (so a restarted server
finds its data, and a new app folder starts empty).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import hashlib
import time
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]


POSTGRES = os.environ.get("GRAPHWARD_E2E_POSTGRES")

sqlite_only = pytest.mark.skipif(POSTGRES is not None, reason="inspects the SQLite file itself")


def postgres_database(key: str) -> str:
    """The URI of the Postgres database standing in for SQLite file `key` (created if new)."""
    import psycopg

    name = "e2e_" + hashlib.sha1(key.encode()).hexdigest()[:20]
    with psycopg.connect(POSTGRES, autocommit=True) as connection:
        if connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            connection.execute(f"CREATE DATABASE {name}")
    return POSTGRES.rsplit("/", 1)[0] + "/" + name


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A running `graphward dev`; stopped with SIGTERM (and checked to exit cleanly)."""

    def __init__(self, config: Path, *, env: dict[str, str] | None = None, command: str = "dev", extra_args: list[str] | None = None, ready_path: str = "/ok"):
        self.port = free_port()
        self.ready_path = ready_path
        self.url = f"http://127.0.0.1:{self.port}"
        self.cwd = tempfile.mkdtemp(prefix="graphward-e2e-")
        binary = os.environ.get("GRAPHWARD_BIN") or str(REPO / "target" / "debug" / "graphward")
        # Servers stopped with runs still executing wait 2 s for them, not the default 10 s.
        # The outer shell's GRAPHWARD_LOG is not the test's (a test may pass its own).
        inherited = {name: value for name, value in os.environ.items() if name != "GRAPHWARD_LOG"}
        environment = {**inherited, "VIRTUAL_ENV": sys.prefix, "GRAPHWARD_SHUTDOWN_GRACE": "2", **(env or {})}
        args = [binary, command, "--port", str(self.port), "--config", str(config)]
        if command == "dev":
            args.append("--no-browser")
        extra_args = list(extra_args or [])
        self.database = environment.get("GRAPHWARD_DATABASE") or str(Path(config).resolve().parent / ".graphward" / "state.db")
        if "--database" in extra_args:
            self.database = extra_args[extra_args.index("--database") + 1]
        self.database_uri = None
        if POSTGRES and "DATABASE_URI" not in environment:
            if "--database" in extra_args:
                del extra_args[extra_args.index("--database") : extra_args.index("--database") + 2]
            environment.pop("GRAPHWARD_DATABASE", None)
            environment["DATABASE_URI"] = postgres_database(self.database)
        self.database_uri = environment.get("DATABASE_URI")
        args.extend(extra_args)
        self.log = open(Path(self.cwd) / "server.log", "w+")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(args, cwd=self.cwd, env=environment, stdout=self.log, stderr=subprocess.STDOUT)
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"graphward exited with {self.process.returncode}:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}{self.ready_path}", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"graphward did not answer {self.ready_path} within 60 s:\n{self.output()}")

    def execute(self, statement: str, params: tuple = ()) -> None:
        """Runs one SQL statement (`?` placeholders) on the server's database, whichever it is."""
        if self.database_uri:
            import psycopg

            with psycopg.connect(self.database_uri, autocommit=True) as connection:
                connection.execute(statement.replace("?", "%s"), params)
        else:
            import sqlite3

            with sqlite3.connect(self.database) as connection:
                connection.execute(statement, params)

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
