"""Killing the server mid-run: after a restart no run is left `running` and no queued run is
lost (spec runs.md §2, issue 5)."""

from __future__ import annotations

import json
import signal
import time

from langgraph_sdk import get_sync_client

from conftest import POSTGRES, Server

SLOW_GRAPH = """
import asyncio
from typing import TypedDict
from langgraph.graph import StateGraph, START, END

class State(TypedDict):
    text: str

async def slow(state):
    await asyncio.sleep(float(state.get("text") or 0))
    return {"text": "done"}

builder = StateGraph(State)
builder.add_node("slow", slow)
builder.add_edge(START, "slow")
builder.add_edge("slow", END)
graph = builder.compile()
"""


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_killed_mid_run_recovers(tmp_path):
    (tmp_path / "graph.py").write_text(SLOW_GRAPH)
    (tmp_path / "langgraph.json").write_text(json.dumps({"graphs": {"slow": "./graph.py:graph"}}))
    server = Server(tmp_path / "langgraph.json", env={"GRAPHWARD_RUN_LEASE": "2"})
    client = get_sync_client(url=server.url)
    thread = client.threads.create()
    tid = thread["thread_id"]
    running = client.runs.create(tid, "slow", input={"text": "30"})
    queued = client.runs.create(tid, "slow", input={"text": "0"})
    wait_for(lambda: client.runs.get(tid, running["run_id"])["status"] == "running")
    assert client.runs.get(tid, queued["run_id"])["status"] == "pending"
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(timeout=10)
    server.stop()

    # On Postgres the next process cannot know the old one is gone until its lease lapses.
    again = Server(tmp_path / "langgraph.json")
    try:
        client = get_sync_client(url=again.url)
        if POSTGRES:
            wait_for(lambda: client.runs.get(tid, running["run_id"])["status"] == "error", timeout=20)
        assert client.runs.get(tid, running["run_id"])["status"] == "error"
        # The queued run survived the crash and runs now.
        assert wait_for(lambda: client.runs.get(tid, queued["run_id"])["status"] == "success")
        assert client.threads.get(tid)["values"] == {"text": "done"}
        statuses = [run["status"] for run in client.runs.list(tid)]
        assert "running" not in statuses and "pending" not in statuses
    finally:
        again.stop()


GATED_GRAPH = """
import asyncio
from pathlib import Path
from typing import TypedDict
from langgraph.graph import StateGraph, START, END

HERE = Path(__file__).parent

class State(TypedDict, total=False):
    text: str
    steps: list

def first(state):
    return {"steps": (state.get("steps") or []) + ["first"]}

async def gated(state):
    with open(HERE / "starts.txt", "a") as starts:
        starts.write("start\\n")
    delay = float((HERE / "delay.txt").read_text()) if (HERE / "delay.txt").exists() else 0.0
    await asyncio.sleep(delay)
    return {"text": "done", "steps": state["steps"] + ["gated"]}

builder = StateGraph(State)
builder.add_node("first", first)
builder.add_node("gated", gated)
builder.add_edge(START, "first")
builder.add_edge("first", "gated")
builder.add_edge("gated", END)
graph = builder.compile()
"""


def gated_app(tmp_path):
    (tmp_path / "graph.py").write_text(GATED_GRAPH)
    (tmp_path / "langgraph.json").write_text(json.dumps({"graphs": {"gated": "./graph.py:graph"}}))
    return tmp_path / "langgraph.json"


def terminate(server: Server, timeout: float = 30.0) -> float:
    """SIGTERM; the seconds until the process exited (it must exit cleanly)."""
    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=timeout) == 0, server.output()
    elapsed = time.monotonic() - started
    server.stop()
    return elapsed


def test_sigterm_hands_back_a_run_that_outlives_the_grace_period(tmp_path):
    """A run still executing when the grace period ends is stopped and queued again, with
    none of its checkpoints kept; the next start runs it once, from the beginning."""
    config = gated_app(tmp_path)
    server = Server(config, env={"GRAPHWARD_SHUTDOWN_GRACE": "0.5"})
    client = get_sync_client(url=server.url)
    # A run that was never interrupted, for the shape of one execution's history.
    plain = client.threads.create()["thread_id"]
    client.runs.wait(plain, "gated", input={"text": "go"})
    one_run_history = len(client.threads.get_history(plain, limit=100))
    (tmp_path / "starts.txt").write_text("")
    (tmp_path / "delay.txt").write_text("60")
    tid = client.threads.create()["thread_id"]
    run = client.runs.create(tid, "gated", input={"text": "go"})
    wait_for(lambda: (tmp_path / "starts.txt").read_text().count("start") == 1)
    assert terminate(server) < 20
    (tmp_path / "delay.txt").unlink()

    again = Server(config)
    try:
        client = get_sync_client(url=again.url)
        assert wait_for(lambda: client.runs.get(tid, run["run_id"])["status"] == "success")
        assert client.runs.join(tid, run["run_id"]) == {"text": "done", "steps": ["first", "gated"]}
        assert (tmp_path / "starts.txt").read_text().count("start") == 2  # handed back, run again once
        assert len(client.threads.get_history(tid, limit=100)) == one_run_history
        assert client.threads.get(tid)["status"] == "idle"
    finally:
        again.stop()


def test_sigterm_lets_a_run_finish_within_the_grace_period(tmp_path):
    config = gated_app(tmp_path)
    (tmp_path / "delay.txt").write_text("2")
    server = Server(config, env={"GRAPHWARD_SHUTDOWN_GRACE": "30"})
    client = get_sync_client(url=server.url)
    tid = client.threads.create()["thread_id"]
    run = client.runs.create(tid, "gated", input={"text": "go"})
    wait_for(lambda: (tmp_path / "starts.txt").exists())
    terminate(server)

    again = Server(config)
    try:
        client = get_sync_client(url=again.url)
        assert client.runs.get(tid, run["run_id"])["status"] == "success"
        assert client.threads.get(tid)["values"] == {"text": "done", "steps": ["first", "gated"]}
        assert (tmp_path / "starts.txt").read_text().count("start") == 1
    finally:
        again.stop()
