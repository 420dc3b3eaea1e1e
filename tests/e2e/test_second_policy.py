"""The resources under a second policy (tests/e2e/apps/member_auth.py): resource/action
handlers, `$contains` and `$or` filters, a namespace-rewriting store handler."""

from __future__ import annotations

import json
import shutil

import pytest
from langgraph_sdk import get_client, get_sync_client
from langgraph_sdk.errors import NotFoundError

from conftest import REPO, Server

ALICE = {"Authorization": "Bearer alice-token"}
BOB = {"Authorization": "Bearer bob-token"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    app = tmp_path_factory.mktemp("members")
    shutil.copy(REPO / "examples" / "agent.py", app / "agent.py")
    shutil.copy(REPO / "tests" / "e2e" / "apps" / "member_auth.py", app / "member_auth.py")
    (app / "langgraph.json").write_text(json.dumps({"graphs": {"agent": "./agent.py:graph"}, "auth": {"path": "./member_auth.py:auth"}}))
    running = Server(app / "langgraph.json")
    yield running
    running.stop()


@pytest.mark.anyio
async def test_threads_shared_through_contains(server):
    alice, bob = get_client(url=server.url, headers=ALICE), get_client(url=server.url, headers=BOB)
    thread = await alice.threads.create(metadata={"title": "plan"})
    assert thread["metadata"]["members"] == ["alice"]
    with pytest.raises(NotFoundError):
        await bob.threads.get(thread["thread_id"])
    assert await bob.threads.search() == []
    await alice.threads.update(thread["thread_id"], metadata={"members": ["alice", "bob"]})
    assert (await bob.threads.get(thread["thread_id"]))["metadata"]["title"] == "plan"
    assert [t["thread_id"] for t in await bob.threads.search()] == [thread["thread_id"]]
    assert await bob.threads.count() == 1
    await alice.threads.update(thread["thread_id"], metadata={"members": ["alice"]})
    with pytest.raises(NotFoundError):
        await bob.threads.delete(thread["thread_id"])


def test_assistants_visible_by_or_filter(server):
    alice, bob = get_sync_client(url=server.url, headers=ALICE), get_sync_client(url=server.url, headers=BOB)
    mine = alice.assistants.create("agent", name="alice's")
    assert mine["metadata"]["maker"] == "alice"
    # System assistants pass the `$or`; the other maker's do not.
    assert {a["name"] for a in alice.assistants.search()} == {"agent", "alice's"}
    assert {a["name"] for a in bob.assistants.search()} == {"agent"}
    assert bob.assistants.get("agent")["graph_id"] == "agent"
    with pytest.raises(NotFoundError):
        bob.assistants.get(mine["assistant_id"])


def test_store_namespace_rewritten_per_user(server):
    alice, bob = get_sync_client(url=server.url, headers=ALICE), get_sync_client(url=server.url, headers=BOB)
    alice.store.put_item(("notes",), "todo", {"text": "alice's"})
    bob.store.put_item(("notes",), "todo", {"text": "bob's"})
    assert alice.store.get_item(("notes",), "todo")["value"] == {"text": "alice's"}
    item = bob.store.get_item(("notes",), "todo")
    assert item["value"] == {"text": "bob's"} and item["namespace"] == ["bob", "notes"]
    assert [i["namespace"] for i in alice.store.search_items(("notes",))["items"]] == [["alice", "notes"]]
    assert alice.store.list_namespaces()["namespaces"] == [["alice", "notes"]]
    bob.store.delete_item(("notes",), "todo")
    assert bob.store.get_item(("notes",), "todo") is None
    assert alice.store.get_item(("notes",), "todo") is not None
