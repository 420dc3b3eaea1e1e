"""The full example app (examples/full): graph factories built per use, a FastAPI `http.app`
whose routes are authenticated like the API, streaming custom responses; two users."""

from __future__ import annotations

import shutil

import httpx
import pytest
from langgraph_sdk import get_client

from conftest import REPO, Server

ALICE = {"Authorization": "Bearer alice-token"}
BOB = {"Authorization": "Bearer bob-token"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("full-app") / "app"
    shutil.copytree(REPO / "examples" / "full", folder, ignore=shutil.ignore_patterns(".graphward", "__pycache__"))
    started = Server(folder / "langgraph.json")
    yield started
    started.stop()


def test_custom_routes_are_authenticated_like_the_api(server):
    assert httpx.get(f"{server.url}/hello").status_code == 401
    answer = httpx.get(f"{server.url}/hello", headers=ALICE)
    assert answer.status_code == 200
    assert answer.json() == {"hello": "alice", "permissions": ["read", "write"], "started": True}
    assert httpx.get(f"{server.url}/hello", headers=BOB).json()["hello"] == "bob"
    echoed = httpx.post(f"{server.url}/echo/some%20name?a=1&a=2", headers=BOB, json={"k": [1, 2]})
    assert echoed.json() == {"name": "some name", "body": {"k": [1, 2]}, "query": {"a": "2"}}
    # The app's own answers: validation errors, wrong methods, unknown paths (after auth).
    assert httpx.get(f"{server.url}/countdown?start=x", headers=BOB).status_code == 422
    assert httpx.get(f"{server.url}/echo/x", headers=BOB).status_code == 405
    assert httpx.get(f"{server.url}/nowhere", headers=BOB).status_code == 404
    assert httpx.get(f"{server.url}/nowhere").status_code == 401


def test_custom_streaming_responses_stream(server):
    with httpx.stream("GET", f"{server.url}/countdown?start=3", headers=ALICE) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        lines = [line for line in response.iter_lines() if line]
    assert lines == ["3", "2", "1", "liftoff"]


def test_the_api_is_served_beside_the_app(server):
    assert httpx.get(f"{server.url}/ok").json()["ok"] is True
    assert httpx.post(f"{server.url}/threads", json={}).status_code == 401
    created = httpx.post(f"{server.url}/threads", headers=ALICE, json={})
    assert created.status_code == 200
    thread_id = created.json()["thread_id"]
    assert httpx.get(f"{server.url}/threads/{thread_id}", headers=BOB).status_code == 404


@pytest.mark.anyio
async def test_config_driven_factories_build_per_assistant(server):
    client = get_client(url=server.url, headers=ALICE)
    shout = await client.assistants.create("assistant", config={"configurable": {"style": "shout"}}, name="shout")
    polite = await client.assistants.create("assistant", config={"configurable": {"style": "polite"}}, name="polite")
    thread = await client.threads.create()
    loud = await client.runs.wait(thread["thread_id"], shout["assistant_id"], input={"question": "hi"})
    assert loud["answer"] == "HI!"
    kind = await client.runs.wait(None, polite["assistant_id"], input={"question": "hi"})
    assert kind["answer"] == "Kindly: hi"
    # A run's own configurable is what the factory sees too.
    plain = await client.runs.wait(None, "assistant", input={"question": "hi"}, config={"configurable": {"style": "plain"}})
    assert plain["answer"] == "hi"
    # Introspection builds the graph for the assistant (its name says which style).
    graph = await client.assistants.get_graph(shout["assistant_id"])
    assert {node["id"] for node in graph["nodes"]} >= {"reply"}
    schemas = await client.assistants.get_schemas(polite["assistant_id"])
    assert schemas["graph_id"] == "assistant"
    # A `typing.TypedDict` state on Python 3.11 (which pydantic refuses as a class) still has
    # its schema, named after the graph the factory built for this assistant.
    assert set(schemas["state_schema"]["properties"]) == {"question", "answer", "log"}
    assert schemas["state_schema"]["title"] == "assistant-polite_state"
    state = await client.threads.get_state(thread["thread_id"])
    assert state["values"]["answer"] == "HI!"
    # Bob cannot use Alice's assistant.
    bob = get_client(url=server.url, headers=BOB)
    with pytest.raises(Exception) as refused:
        await bob.runs.wait(None, shout["assistant_id"], input={"question": "hi"})
    assert getattr(refused.value, "status_code", None) in (404, 403) or "404" in str(refused.value)


@pytest.mark.anyio
async def test_runtime_factories_get_the_user_and_keep_resources_open_for_the_run(server):
    alice = get_client(url=server.url, headers=ALICE)
    bob = get_client(url=server.url, headers=BOB)
    for _ in range(2):
        thread = await alice.threads.create()
        values = await alice.runs.wait(thread["thread_id"], "researcher", input={"question": "tides"})
        assert values["answer"] == "researched 'tides' for alice"
        # The connection opened for this run is the only one open: the last run's was closed.
        assert values["log"] == ["threads.create_run", "open=1"]
    values = await bob.runs.wait(None, "researcher", input={"question": "moons"})
    assert values["answer"] == "researched 'moons' for bob"
    # State reads and introspection build the graph without a run (no connection, no error).
    state = await alice.threads.get_state(thread["thread_id"])
    assert state["values"]["answer"] == "researched 'tides' for alice"
    history = await alice.threads.get_history(thread["thread_id"])
    assert history
    mine = await alice.assistants.create("researcher", name="mine")
    graph = await alice.assistants.get_graph(mine["assistant_id"])
    assert {node["id"] for node in graph["nodes"]} >= {"research"}
    # An update builds it with `threads.update` and applies to the same topology.
    await alice.threads.update_state(thread["thread_id"], {"question": "edited"}, as_node="research")
    assert (await alice.threads.get_state(thread["thread_id"]))["values"]["question"] == "edited"


def test_the_api_documents_the_app_routes_and_keeps_its_own_docs(server):
    document = httpx.get(f"{server.url}/openapi.json")
    assert document.status_code == 200
    paths = document.json()["paths"]
    assert "/threads" in paths and "/hello" in paths and "/echo/{name}" in paths
    assert httpx.get(f"{server.url}/docs").status_code == 200
    # The app's other routes stay the app's (authenticated like every custom route).
    assert httpx.get(f"{server.url}/redoc").status_code == 401


@pytest.mark.anyio
async def test_semantic_store_search_ranks_each_users_own_items(server):
    alice = get_client(url=server.url, headers=ALICE)
    bob = get_client(url=server.url, headers=BOB)
    await alice.store.put_item(["alice", "notes"], "fruit", {"text": "apples and pears in the orchard"})
    await alice.store.put_item(["alice", "notes"], "boats", {"text": "sailing boats on the lake"})
    await bob.store.put_item(["bob", "notes"], "fruit", {"text": "apples apples apples"})
    found = (await alice.store.search_items(["alice"], query="apples orchard"))["items"]
    assert [item["key"] for item in found] == ["fruit", "boats"]
    assert found[0]["score"] > found[1]["score"]
    assert all(item["namespace"][0] == "alice" for item in found)
    # Bob's search of Alice's namespace is refused by auth.py, query or not.
    response = httpx.post(f"{server.url}/store/items/search", headers=BOB, json={"namespace_prefix": ["alice"], "query": "apples"})
    assert response.status_code == 403


@pytest.mark.anyio
async def test_threads_get_the_configured_ttl(server):
    alice = get_client(url=server.url, headers=ALICE)
    thread = await alice.threads.create()
    shown = await alice.threads.get(thread["thread_id"], include=["ttl"])
    assert shown["ttl"]["strategy"] == "delete" and shown["ttl"]["ttl_minutes"] == 43200
    # Bob cannot shorten it.
    response = httpx.patch(f"{server.url}/threads/{thread['thread_id']}", headers=BOB, json={"metadata": {}, "ttl": {"ttl": 0.01, "strategy": "delete"}})
    assert response.status_code == 404
    assert (await alice.threads.get(thread["thread_id"], include=["ttl"]))["ttl"]["ttl_minutes"] == 43200
