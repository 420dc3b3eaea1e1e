"""`graphward dev` reloads the app's code when a file changes: a new auth rule applies without
a restart, a broken file leaves the old code serving with one error line, runs in flight finish
on the graph they started with, and a `langgraph.json` change that needs a new process
restarts the server (same pid). `--no-reload` turns it off."""

from __future__ import annotations

import json
import os
import time

import httpx
import pytest

GRAPH = '''
import asyncio
from typing import TypedDict
from langgraph.graph import StateGraph, START, END

class State(TypedDict, total=False):
    slow: float
    version: str

async def answer(state):
    await asyncio.sleep(state.get("slow") or 0)
    return {"version": "VERSION"}

builder = StateGraph(State)
builder.add_node("answer", answer)
builder.add_edge(START, "answer")
builder.add_edge("answer", END)
graph = builder.compile()
'''

AUTH = '''
from langgraph_sdk import Auth
auth = Auth()
TOKENS = {"alice-token": "alice", "bob-token": "bob"}

@auth.authenticate
async def authenticate(authorization: str | None):
    token = (authorization or "").removeprefix("Bearer ")
    if token not in TOKENS:
        raise Auth.exceptions.HTTPException(status_code=401, detail="no")
    return TOKENS[token]

@auth.on.threads.create
async def create(ctx, value):
    if ctx.user.identity == "DENIED":
        raise Auth.exceptions.HTTPException(status_code=403, detail="not you")
'''

ALICE = {"Authorization": "Bearer alice-token"}
BOB = {"Authorization": "Bearer bob-token"}


def write(path, text):
    path.write_text(text)
    # A later modification time than the previous write, whatever the clock's granularity.
    stamp = time.time() + 2
    os.utime(path, (stamp, stamp))


def app_files(version="v1", denied="nobody"):
    return {
        "graph.py": GRAPH.replace("VERSION", version),
        "auth.py": AUTH.replace("DENIED", denied),
        "langgraph.json": json.dumps({"graphs": {"agent": "./graph.py:graph"}, "auth": {"path": "./auth.py:auth"}}),
    }


def eventually(check, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError("the change did not take effect in time")


def status_of(server, headers):
    return httpx.post(f"{server.url}/threads", headers=headers, json={}).status_code


def test_an_auth_rule_changes_without_a_restart_and_a_broken_file_keeps_the_old(make_server, tmp_path):
    server = make_server(app_files())
    pid = server.process.pid
    assert status_of(server, BOB) == 200
    write(tmp_path / "auth.py", AUTH.replace("DENIED", "bob"))
    eventually(lambda: status_of(server, BOB) == 403)
    assert status_of(server, ALICE) == 200
    # Broken: the previous policy keeps serving, and the log says why in one line.
    write(tmp_path / "auth.py", AUTH.replace("DENIED", "bob") + "\ndef broken(:\n")
    eventually(lambda: "reload failed" in server.output())
    failures = [line for line in server.output().splitlines() if "reload failed" in line]
    assert len(failures) == 1 and "auth.py" in failures[0] and "SyntaxError" in failures[0]
    assert status_of(server, BOB) == 403 and status_of(server, ALICE) == 200
    # Fixed, with another rule: it applies.
    write(tmp_path / "auth.py", AUTH.replace("DENIED", "alice"))
    eventually(lambda: status_of(server, ALICE) == 403)
    assert status_of(server, BOB) == 200
    assert server.process.pid == pid and server.process.poll() is None


def test_runs_in_flight_finish_on_their_graph(make_server, tmp_path):
    server = make_server(app_files())
    thread = httpx.post(f"{server.url}/threads", headers=ALICE, json={}).json()
    slow = httpx.post(f"{server.url}/threads/{thread['thread_id']}/runs", headers=ALICE, json={"assistant_id": "agent", "input": {"slow": 3}}).json()
    write(tmp_path / "graph.py", GRAPH.replace("VERSION", "v2"))

    def answers_v2():
        answer = httpx.post(f"{server.url}/runs/wait", headers=ALICE, json={"assistant_id": "agent", "input": {}}, timeout=30)
        return answer.json().get("version") == "v2"

    eventually(answers_v2)
    joined = httpx.get(f"{server.url}/threads/{thread['thread_id']}/runs/{slow['run_id']}/join", headers=ALICE, timeout=30).json()
    assert joined["version"] == "v1"


def test_langgraph_json_changes_restart_the_server(make_server, tmp_path):
    server = make_server(app_files())
    pid = server.process.pid
    # Broken JSON: one error line, the server keeps serving.
    write(tmp_path / "langgraph.json", "{ not json")
    eventually(lambda: "reload failed" in server.output())
    assert status_of(server, ALICE) == 200
    # A second graph needs a new process: checked first, then the same command starts again.
    (tmp_path / "other.py").write_text(GRAPH.replace("VERSION", "other"))
    write(tmp_path / "langgraph.json", json.dumps({"graphs": {"agent": "./graph.py:graph", "other": "./other.py:graph"}, "auth": {"path": "./auth.py:auth"}}))

    def serves_other():
        try:
            answer = httpx.post(f"{server.url}/runs/wait", headers=ALICE, json={"assistant_id": "other", "input": {}}, timeout=30)
        except httpx.HTTPError:
            return False
        return answer.status_code == 200 and answer.json().get("version") == "other"

    eventually(serves_other, timeout=40)
    assert server.process.pid == pid and server.process.poll() is None
    assert "restarting" in server.output()


def test_a_restart_that_would_fail_is_not_made(make_server, tmp_path):
    server = make_server(app_files())
    (tmp_path / "other.py").write_text("raise RuntimeError('nope')\n")
    write(tmp_path / "langgraph.json", json.dumps({"graphs": {"agent": "./graph.py:graph", "other": "./other.py:graph"}, "auth": {"path": "./auth.py:auth"}}))
    # `graphward check` runs in its own process; on 2 shared cores under a full suite it can
    # take most of a minute.
    eventually(lambda: "reload failed" in server.output(), timeout=90)
    line = next(line for line in server.output().splitlines() if "reload failed" in line)
    assert "nope" in line
    assert status_of(server, ALICE) == 200


def test_no_reload_keeps_the_code_it_started_with(make_server, tmp_path):
    server = make_server(app_files(), extra_args=["--no-reload"])
    write(tmp_path / "auth.py", AUTH.replace("DENIED", "bob"))
    time.sleep(2.5)
    assert status_of(server, BOB) == 200
    assert "reload" not in server.output()


ENV_GRAPH = GRAPH.replace('return {"version": "VERSION"}', 'import os\n    return {"version": os.environ.get("FLAVOUR", "none")}')


def test_a_changed_env_file_restarts_with_the_new_values(make_server, tmp_path):
    files = {"graph.py": ENV_GRAPH, ".env": "FLAVOUR=salt\n", "langgraph.json": json.dumps({"graphs": {"agent": "./graph.py:graph"}, "env": ".env"})}
    server = make_server(files)

    def flavour():
        try:
            return httpx.post(f"{server.url}/runs/wait", json={"assistant_id": "agent", "input": {}}, timeout=30).json().get("version")
        except httpx.HTTPError:
            return None

    assert flavour() == "salt"
    write(tmp_path / ".env", "FLAVOUR=pepper\n")
    eventually(lambda: flavour() == "pepper", timeout=40)
