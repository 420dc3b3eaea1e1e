"""Killing the server mid-run: after a restart no run is left `running` and no queued run is
lost (spec runs.md §2, issue 5)."""

from __future__ import annotations

import json
import signal
import time

from langgraph_sdk import get_sync_client

from conftest import Server

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
    server = Server(tmp_path / "langgraph.json")
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

    again = Server(tmp_path / "langgraph.json")
    try:
        client = get_sync_client(url=again.url)
        assert client.runs.get(tid, running["run_id"])["status"] == "error"
        # The queued run survived the crash and runs now.
        assert wait_for(lambda: client.runs.get(tid, queued["run_id"])["status"] == "success")
        assert client.threads.get(tid)["values"] == {"text": "done"}
        statuses = [run["status"] for run in client.runs.list(tid)]
        assert "running" not in statuses and "pending" not in statuses
    finally:
        again.stop()
