"""The foundation seen through the official Python client (async and sync)."""

from __future__ import annotations

import signal
import uuid

import httpx
import pytest
from langgraph_sdk import get_client, get_sync_client
from langgraph_sdk.errors import NotFoundError, UnprocessableEntityError

from conftest import POSTGRES, REPO, Server

AGENT_ID = str(uuid.uuid5(uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8"), "agent"))


def test_system_routes(open_server):
    assert httpx.get(f"{open_server.url}/ok").json() == {"ok": True, "services": {}}
    info = httpx.get(f"{open_server.url}/info").json()
    assert info["flags"]["assistants"] is True
    assert set(info) >= {"version", "langgraph_py_version", "flags", "host"}
    document = httpx.get(f"{open_server.url}/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    assert "/assistants/search" in document["paths"]
    docs = httpx.get(f"{open_server.url}/docs")
    assert docs.status_code == 200 and "text/html" in docs.headers["content-type"]


@pytest.mark.anyio
async def test_async_client_reads_system_assistant(open_server):
    client = get_client(url=open_server.url)
    assistant = await client.assistants.get(AGENT_ID)
    assert assistant["assistant_id"] == AGENT_ID
    assert assistant["graph_id"] == "agent"
    assert assistant["metadata"] == {"created_by": "system"}
    assert assistant["version"] == 1
    found = await client.assistants.search(graph_id="agent")
    assert [a["assistant_id"] for a in found] == [AGENT_ID]
    assert await client.assistants.count() == 1
    with pytest.raises(NotFoundError):
        await client.assistants.get(str(uuid.uuid4()))
    with pytest.raises(UnprocessableEntityError):
        await client.assistants.search(limit=0)


def test_sync_client_reads_system_assistant(open_server):
    client = get_sync_client(url=open_server.url)
    assert client.assistants.get(AGENT_ID)["name"] == "agent"
    page = client.assistants.search(metadata={"created_by": "system"}, limit=5, offset=0)
    assert len(page) == 1
    assert client.assistants.search(metadata={"created_by": "someone"}) == []
    with pytest.raises(NotFoundError):
        client.assistants.search(graph_id="missing")


def test_runs_from_any_folder_with_env_and_local_dependencies(make_server, tmp_path):
    """`env` applies before user imports; local dependencies are importable; SIGTERM exits 0."""
    graph = """
import os
import helper  # from the local dependency ./lib
from typing import TypedDict
from langgraph.graph import StateGraph, START, END

assert os.environ["GREETING"] == "hello", os.environ.get("GREETING")

class State(TypedDict):
    text: str

builder = StateGraph(State)
builder.add_node("respond", lambda state: {"text": helper.shout(state["text"])})
builder.add_edge(START, "respond")
builder.add_edge("respond", END)
graph = builder.compile(name="Shouter")
"""
    server = make_server(
        {
            "langgraph.json": '{"dependencies": ["./lib"], "graphs": {"shout": "./graph.py:graph"}, "env": ".env"}',
            "graph.py": graph,
            "lib/helper.py": "def shout(text):\n    return text.upper()\n",
            ".env": "GREETING=hello\n",
        }
    )
    client = get_sync_client(url=server.url)
    assistant = client.assistants.get("shout")
    assert assistant["name"] == "Shouter"
    # A new app folder starts empty; its state lives in .graphward/ next to langgraph.json.
    assert client.threads.search() == []
    assert POSTGRES or (tmp_path / ".graphward" / "state.db").exists()
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=15) == 0
    assert "shut down" in server.output()


@pytest.mark.embedded
def test_dev_finds_dot_venv_next_to_config(make_server, tmp_path):
    """Without VIRTUAL_ENV, a `.venv` next to langgraph.json is the user's environment."""
    import os
    import sys

    os.symlink(sys.prefix, tmp_path / ".venv")
    server = make_server(
        {"langgraph.json": '{"graphs": {"agent": "./agent.py:graph"}}', "agent.py": (REPO / "examples" / "agent.py").read_text()},
        env={"VIRTUAL_ENV": ""},
    )
    assert httpx.get(f"{server.url}/assistants/agent").json()["graph_id"] == "agent"


SUBGRAPH_APP = """
from typing_extensions import TypedDict
from langgraph.graph import StateGraph, START, END

class State(TypedDict):
    text: str

class Context(TypedDict):
    model: str

inner = StateGraph(State)
inner.add_node("inner_node", lambda state: {"text": state["text"] + "!"})
inner.add_edge(START, "inner_node")
inner.add_edge("inner_node", END)

outer = StateGraph(State, context_schema=Context)
outer.add_node("sub", inner.compile())
outer.add_node("last", lambda state: state)
outer.add_edge(START, "sub")
outer.add_edge("sub", "last")
outer.add_edge("last", END)
graph = outer.compile()
"""


def test_graph_introspection(make_server):
    """RemoteGraph.get_graph and the schema endpoints, on a graph with a subgraph."""
    from langgraph.pregel.remote import RemoteGraph

    server = make_server({"langgraph.json": '{"graphs": {"nested": "./graph.py:graph"}}', "graph.py": SUBGRAPH_APP})
    client = get_sync_client(url=server.url)
    drawn = client.assistants.get_graph("nested")
    assert [node["id"] for node in drawn["nodes"]] == ["__start__", "sub", "last", "__end__"]
    assert all("id" not in node.get("data", {}) for node in drawn["nodes"])
    expanded = client.assistants.get_graph("nested", xray=True)
    assert "sub:inner_node" in [node["id"] for node in expanded["nodes"]]
    remote = RemoteGraph("nested", url=server.url).get_graph()
    assert set(remote.nodes) == {"__start__", "sub", "last", "__end__"}
    bad = httpx.get(f"{server.url}/assistants/nested/graph?xray=0")
    assert (bad.status_code, bad.json()) == (422, {"detail": "Invalid xray value"})

    schemas = client.assistants.get_schemas("nested")
    assert schemas["graph_id"] == "nested"
    assert schemas["input_schema"]["properties"]["text"]["type"] == "string"
    assert schemas["state_schema"]["properties"]["text"]["type"] == "string"
    assert schemas["context_schema"]["properties"]["model"]["type"] == "string"
    assert isinstance(schemas["config_schema"], dict)
    subgraphs = client.assistants.get_subgraphs("nested")
    assert list(subgraphs) == ["sub"] and set(subgraphs["sub"]) == {"input_schema", "output_schema", "state_schema", "config_schema", "context_schema"}
    assert client.assistants.get_subgraphs("nested", namespace="missing") == {}
