"""graphward on Postgres (`DATABASE_URI`): checkpoints in the tables of the maintained
langgraph-checkpoint-postgres package, read and written both ways with its
`AsyncPostgresSaver`; and what a user sees when the database is wrong or missing."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import subprocess
import sys

import httpx
import pytest

from conftest import POSTGRES, REPO, Server, free_port

needs_postgres = pytest.mark.skipif(POSTGRES is None, reason="needs a Postgres server (GRAPHWARD_E2E_POSTGRES)")


def echo_builder():
    """The example app's graph builder (examples/agent.py), to compile with another saver."""
    spec = importlib.util.spec_from_file_location("example_agent_for_saver", REPO / "examples" / "agent.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.builder


def contents(values) -> list[str]:
    return [message["content"] if isinstance(message, dict) else message.content for message in values["messages"]]


@needs_postgres
def test_checkpoints_are_shared_both_ways_with_langgraph_checkpoint_postgres(tmp_path):
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    (tmp_path / "langgraph.json").write_text(json.dumps({"graphs": {"agent": f"{REPO / 'examples' / 'agent.py'}:graph"}}))
    server = Server(tmp_path / "langgraph.json")
    try:
        api = httpx.Client(base_url=server.url, timeout=30)
        written = api.post("/threads", json={}).json()["thread_id"]
        api.post(f"/threads/{written}/runs/wait", json={"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": "hi"}]}}).raise_for_status()
        history_before = len(api.post(f"/threads/{written}/history", json={"limit": 100}).json())

        async def with_the_package():
            async with AsyncPostgresSaver.from_conn_string(server.database_uri) as saver:
                graph = echo_builder().compile(checkpointer=saver)
                # What graphward wrote, as the package reads it.
                state = await graph.aget_state({"configurable": {"thread_id": written}})
                history = [item async for item in saver.alist({"configurable": {"thread_id": written}})]
                # The package's own run continues the thread.
                await graph.ainvoke({"messages": [("user", "from the package")]}, {"configurable": {"thread_id": written}})
                return state, history

        state, history = asyncio.run(with_the_package())
        assert contents(state.values) == ["hi", "echo: hi"]
        assert len(history) == history_before
        # What the package wrote, as graphward serves it; and a run of graphward continues it.
        assert contents(api.get(f"/threads/{written}/state").json()["values"]) == ["hi", "echo: hi", "from the package", "echo: from the package"]
        api.post(f"/threads/{written}/runs/wait", json={"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": "again"}]}}).raise_for_status()
        assert contents(api.get(f"/threads/{written}/state").json()["values"])[-2:] == ["again", "echo: again"]
        package_thread = written
        # Copy and delete go through the same tables.
        copy = api.post(f"/threads/{package_thread}/copy").json()["thread_id"]
        assert contents(api.get(f"/threads/{copy}/state").json()["values"])[-1] == "echo: again"
        api.delete(f"/threads/{package_thread}").raise_for_status()

        async def read_back():
            async with AsyncPostgresSaver.from_conn_string(server.database_uri) as saver:
                return await saver.aget_tuple({"configurable": {"thread_id": package_thread}}), await saver.aget_tuple({"configurable": {"thread_id": copy}})

        deleted, copied = asyncio.run(read_back())
        assert deleted is None and copied is not None
    finally:
        server.stop()


def run_graphward(args: list[str], env: dict[str, str], timeout: float = 40) -> subprocess.CompletedProcess:
    import os

    binary = os.environ.get("GRAPHWARD_BIN") or str(REPO / "target" / "debug" / "graphward")
    environment = {**os.environ, "VIRTUAL_ENV": sys.prefix, **env}
    return subprocess.run([binary, *args], env=environment, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("postgres://nobody@127.0.0.1:{port}/none", "cannot connect to Postgres (127.0.0.1:{port}/none)"),
        ("postgres://user:secret@127.0.0.1:notaport/x", "invalid database URI"),
        ("mysql://user:secret@127.0.0.1/x", "must be a postgres:// or postgresql:// URI, got `mysql://user:***@127.0.0.1/x`"),
    ],
)
def test_a_wrong_database_is_one_line_and_exit_2(tmp_path, uri, message):
    port = free_port()  # nothing listens there
    (tmp_path / "langgraph.json").write_text(json.dumps({"graphs": {"agent": f"{REPO / 'examples' / 'agent.py'}:graph"}}))
    done = run_graphward(["serve", "--port", "0", "--config", str(tmp_path / "langgraph.json")], {"DATABASE_URI": uri.format(port=port)})
    assert done.returncode == 2, done
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message.format(port=port) in errors[0], done.stderr
    assert "secret" not in done.stderr


def test_workers_need_a_shared_database(tmp_path):
    (tmp_path / "langgraph.json").write_text(json.dumps({"graphs": {"agent": f"{REPO / 'examples' / 'agent.py'}:graph"}}))
    done = run_graphward(["serve", "--port", "0", "--workers", "2", "--config", str(tmp_path / "langgraph.json")], {"DATABASE_URI": "", "GRAPHWARD_DATABASE": str(tmp_path / "state.db")})
    assert done.returncode == 2, done
    assert "`--workers 2` needs a database the processes share" in done.stderr


@needs_postgres
def test_workers_share_the_port_and_every_process_runs_graphs(tmp_path):
    (tmp_path / "langgraph.json").write_text(json.dumps({"graphs": {"agent": f"{REPO / 'examples' / 'agent.py'}:graph"}}))
    server = Server(tmp_path / "langgraph.json", command="serve", extra_args=["--workers", "2"])
    try:
        api = httpx.Client(base_url=server.url, timeout=30)
        # Two interpreters ready: both workers answer (new connections go to either).
        deadline = 60
        while server.output().count("interpreter ready") < 2 and deadline > 0:
            asyncio.run(asyncio.sleep(0.1))
            deadline -= 0.1
        assert server.output().count("interpreter ready") == 2, server.output()
        threads = [api.post("/threads", json={}).json()["thread_id"] for _ in range(20)]
        for thread_id in threads:
            answer = httpx.post(f"{server.url}/threads/{thread_id}/runs/wait", json={"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": thread_id}]}}, timeout=30)
            assert answer.json()["messages"][-1]["content"] == f"echo: {thread_id}"
        assert server.output().count("run finished") == 20
    finally:
        assert server.stop() == 0
