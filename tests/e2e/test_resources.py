"""Threads and store through the official Python client (async and sync), with two users under
examples/auth.py: each sees only their own records; data survives a restart."""

from __future__ import annotations

import shutil
import uuid

import httpx
import pytest
from langgraph_sdk import get_client, get_sync_client
from langgraph_sdk.errors import ConflictError, NotFoundError, PermissionDeniedError, UnprocessableEntityError

from conftest import REPO, Server


def headers(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {user}-token"}


@pytest.fixture
def fresh_example(tmp_path):
    """The example app copied into a new folder (its own .graphward state)."""
    app = tmp_path / "app"
    shutil.copytree(REPO / "examples", app / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "langgraph.json", app / "langgraph.json")
    servers: list[Server] = []

    def start() -> Server:
        server = Server(app / "langgraph.json")
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.mark.anyio
async def test_threads_are_owned_async(fresh_example):
    server = fresh_example()
    alice, bob = get_client(url=server.url, headers=headers("user1")), get_client(url=server.url, headers=headers("user2"))
    mine = await alice.threads.create(metadata={"topic": "a"})
    assert mine["metadata"] == {"topic": "a", "owner": "user1"}
    assert mine["status"] == "idle" and mine["values"] is None and mine["interrupts"] == {}
    theirs = await bob.threads.create(metadata={"topic": "b"})

    assert (await alice.threads.get(mine["thread_id"]))["thread_id"] == mine["thread_id"]
    with pytest.raises(NotFoundError):
        await alice.threads.get(theirs["thread_id"])
    assert [t["thread_id"] for t in await alice.threads.search()] == [mine["thread_id"]]
    assert await alice.threads.count() == 1
    assert await alice.threads.search(metadata={"topic": "b"}) == []

    patched = await alice.threads.update(mine["thread_id"], metadata={"extra": 1})
    assert patched["metadata"] == {"topic": "a", "owner": "user1", "extra": 1}
    with pytest.raises(NotFoundError):
        await alice.threads.update(theirs["thread_id"], metadata={"x": 1})
    with pytest.raises(NotFoundError):
        await alice.threads.delete(theirs["thread_id"])
    # Creating with another user's id is a conflict, whatever if_exists says.
    with pytest.raises(ConflictError):
        await alice.threads.create(thread_id=theirs["thread_id"], if_exists="do_nothing")
    same = await alice.threads.create(thread_id=mine["thread_id"], if_exists="do_nothing")
    assert same["thread_id"] == mine["thread_id"]
    with pytest.raises(ConflictError):
        await alice.threads.create(thread_id=mine["thread_id"])

    copy = await alice.threads.copy(mine["thread_id"])
    assert copy["metadata"]["owner"] == "user1" and copy["thread_id"] != mine["thread_id"]
    with pytest.raises(ConflictError):
        await alice.threads.copy(theirs["thread_id"])

    await alice.threads.delete(mine["thread_id"])
    with pytest.raises(NotFoundError):
        await alice.threads.get(mine["thread_id"])
    assert (await bob.threads.get(theirs["thread_id"]))["metadata"]["owner"] == "user2"


def test_threads_search_pages_and_sorts_sync(fresh_example):
    server = fresh_example()
    alice = get_sync_client(url=server.url, headers=headers("user1"))
    ids = [alice.threads.create(metadata={"i": i, "even": i % 2 == 0})["thread_id"] for i in range(5)]
    get_sync_client(url=server.url, headers=headers("user2")).threads.create(metadata={"i": 0})
    newest_first = [t["thread_id"] for t in alice.threads.search(limit=10)]
    assert newest_first == ids[::-1]
    assert [t["metadata"]["i"] for t in alice.threads.search(sort_by="created_at", sort_order="asc", limit=2, offset=1)] == [1, 2]
    assert alice.threads.count(metadata={"even": True}) == 3
    selected = alice.threads.search(limit=1, select=["thread_id", "status"])
    assert set(selected[0]) == {"thread_id", "status"}
    response = httpx.post(f"{server.url}/threads/search", headers=headers("user1"), json={"limit": 2})
    assert response.headers["x-pagination-next"] == "2"
    extracted = httpx.post(f"{server.url}/threads/search", headers=headers("user1"), json={"limit": 1, "extract": {"i": "metadata.i"}}).json()
    assert extracted[0]["extracted"] == {"i": 4}
    with pytest.raises(UnprocessableEntityError):
        alice.threads.search(status="sleeping")
    assert httpx.post(f"{server.url}/threads/prune", headers=headers("user1"), json={"thread_ids": ids[:2]}).json() == {"pruned_count": 2}
    assert alice.threads.count() == 3
    other = get_sync_client(url=server.url, headers=headers("user2")).threads.search()[0]["thread_id"]
    response = httpx.post(f"{server.url}/threads/prune", headers=headers("user1"), json={"thread_ids": [ids[2], other]})
    assert response.status_code == 404 and alice.threads.count() == 3


@pytest.mark.anyio
async def test_store_namespaces_are_per_user(fresh_example):
    server = fresh_example()
    alice, bob = get_client(url=server.url, headers=headers("user1")), get_client(url=server.url, headers=headers("user2"))
    await alice.store.put_item(("user1", "notes"), "k", {"v": 1})
    await alice.store.put_item(("user1", "notes", "deep"), "k2", {"v": 2})
    item = await alice.store.get_item(("user1", "notes"), "k")
    assert item["value"] == {"v": 1} and item["namespace"] == ["user1", "notes"]
    with pytest.raises(PermissionDeniedError):
        await bob.store.get_item(("user1", "notes"), "k")
    with pytest.raises(PermissionDeniedError):
        await bob.store.put_item(("user1", "notes"), "k", {"v": 666})
    found = await alice.store.search_items(("user1",), filter={"v": 2})
    assert [i["key"] for i in found["items"]] == ["k2"] and found["items"][0]["score"] is None
    assert (await alice.store.list_namespaces(prefix=["user1"], max_depth=2))["namespaces"] == [["user1", "notes"]]
    await alice.store.delete_item(("user1", "notes"), "k")
    assert await alice.store.get_item(("user1", "notes"), "k") is None


def test_state_survives_a_restart(fresh_example):
    server = fresh_example()
    client = get_sync_client(url=server.url, headers=headers("user1"))
    thread = client.threads.create(metadata={"keep": True})
    client.store.put_item(("user1", "memories"), "m", {"text": "remember"})
    assert server.stop() == 0
    again = fresh_example()
    client = get_sync_client(url=again.url, headers=headers("user1"))
    assert client.threads.get(thread["thread_id"])["metadata"] == {"keep": True, "owner": "user1"}
    assert client.store.get_item(("user1", "memories"), "m")["value"] == {"text": "remember"}


def test_bad_input_gets_clear_errors(fresh_example):
    server = fresh_example()
    h = headers("user1")
    cases = [
        ("POST", "/threads", b"{not json", 422, "Invalid JSON in request body"),
        ("POST", "/threads", b'{"metadata": []}', 422, "metadata: invalid type"),
        ("POST", "/threads", b'{"thread_id": "nope"}', 422, "thread_id: must be a UUID"),
        ("POST", "/threads", b'{"if_exists": "maybe"}', 422, "if_exists: unknown variant"),
        ("GET", "/threads/not-a-uuid", None, 422, "Invalid thread ID: must be a UUID"),
        ("GET", f"/threads/{uuid.uuid4()}", None, 404, "Thread with ID"),
        ("PUT", "/store/items", b'{"namespace": ["user1"], "key": "k", "value": 3}', 422, "value: invalid type"),
        ("PUT", "/store/items", b'{"namespace": ["user1", "a.b"], "key": "k", "value": {}}', 422, "Namespace label 'a.b'"),
        ("GET", "/store/items?namespace=user1", None, 400, "Key is required"),
    ]
    for method, path, body, status, detail in cases:
        response = httpx.request(method, f"{server.url}{path}", headers=h, content=body)
        assert response.status_code == status, (method, path, response.text)
        assert response.json()["detail"].startswith(detail), (method, path, response.text)
    assert httpx.post(f"{server.url}/threads/search", headers=h, json={}).json() == []


@pytest.mark.anyio
async def test_assistants_are_owned_and_versioned(fresh_example):
    server = fresh_example()
    alice, bob = get_client(url=server.url, headers=headers("user1")), get_client(url=server.url, headers=headers("user2"))
    created = await alice.assistants.create("agent", config={"configurable": {"model": "a"}}, metadata={"team": "x"}, name="Mine")
    assert created["metadata"] == {"team": "x", "owner": "user1"} and created["version"] == 1
    assert created["context"] == {"model": "a"}
    with pytest.raises(NotFoundError):
        await bob.assistants.get(created["assistant_id"])
    assert [a["assistant_id"] for a in await alice.assistants.search()] == [created["assistant_id"]]
    assert await bob.assistants.search() == []
    assert await alice.assistants.count(graph_id="agent") == 1

    updated = await alice.assistants.update(created["assistant_id"], name="Renamed", metadata={"extra": True})
    assert updated["version"] == 2 and updated["name"] == "Renamed"
    assert updated["metadata"] == {"team": "x", "owner": "user1", "extra": True}
    with pytest.raises(NotFoundError):
        await bob.assistants.update(created["assistant_id"], name="stolen")
    versions = await alice.assistants.get_versions(created["assistant_id"])
    assert [v["version"] for v in versions] == [2, 1] and "updated_at" not in versions[0]
    restored = await alice.assistants.set_latest(created["assistant_id"], 1)
    assert restored["version"] == 1 and restored["name"] == "Mine"
    with pytest.raises(NotFoundError):
        await alice.assistants.set_latest(created["assistant_id"], 9)

    with pytest.raises(ConflictError):
        await alice.assistants.create("agent", assistant_id=created["assistant_id"])
    same = await alice.assistants.create("agent", assistant_id=created["assistant_id"], if_exists="do_nothing")
    assert same["name"] == "Mine"
    with pytest.raises(NotFoundError):
        await alice.assistants.create("ghost")
    with pytest.raises(NotFoundError):
        await bob.assistants.delete(created["assistant_id"])
    await alice.assistants.delete(created["assistant_id"])
    with pytest.raises(NotFoundError):
        await alice.assistants.get(created["assistant_id"])


@pytest.mark.anyio
async def test_crons_are_owned(fresh_example):
    server = fresh_example()
    alice, bob = get_client(url=server.url, headers=headers("user1")), get_client(url=server.url, headers=headers("user2"))
    thread = await alice.threads.create()
    stateless = await alice.crons.create("agent", schedule="0 9 * * *", input={"messages": []}, metadata={"kind": "daily"})
    assert stateless["user_id"] == "user1"
    assert stateless["metadata"] == {"kind": "daily", "owner": "user1"}
    assert stateless["on_run_completed"] == "delete" and stateless["thread_id"] is None
    assert stateless["next_run_date"].endswith(":00+00:00") and stateless["enabled"] is True
    assert stateless["payload"]["config"]["configurable"]["cron_id"] == stateless["cron_id"]
    on_thread = await alice.crons.create_for_thread(thread["thread_id"], "agent", schedule="*/5 * * * *", timezone="Europe/Paris")
    assert on_thread["thread_id"] == thread["thread_id"] and on_thread["on_run_completed"] is None

    assert {c["cron_id"] for c in await alice.crons.search()} == {stateless["cron_id"], on_thread["cron_id"]}
    assert await bob.crons.search() == []
    assert await alice.crons.count(thread_id=thread["thread_id"]) == 1
    with pytest.raises(NotFoundError):
        await bob.crons.create_for_thread(thread["thread_id"], "agent", schedule="* * * * *")

    updated = await alice.crons.update(stateless["cron_id"], schedule="30 10 * * *", enabled=False, metadata={"extra": 1})
    assert updated["schedule"] == "30 10 * * *" and updated["enabled"] is False
    assert updated["metadata"]["extra"] == 1 and updated["payload"]["assistant_id"] == stateless["assistant_id"]
    assert "10:30:00" in updated["next_run_date"]
    with pytest.raises(NotFoundError):
        await bob.crons.update(stateless["cron_id"], enabled=True)
    with pytest.raises(UnprocessableEntityError):
        await alice.crons.create("agent", schedule="61 * * * *")
    with pytest.raises(UnprocessableEntityError):
        await alice.crons.create("agent", schedule="* * * * *", timezone="Mars/Olympus")
    with pytest.raises(NotFoundError):
        await alice.crons.create("ghost", schedule="* * * * *")
    await alice.crons.delete(stateless["cron_id"])
    await alice.threads.delete(thread["thread_id"])  # takes its crons along
    assert await alice.crons.search() == []


def test_crons_fire_as_their_creator(fresh_example, tmp_path):
    """A due cron starts a run on its schedule, with the creator's identity in the config."""
    import time

    server = fresh_example()
    alice = get_sync_client(url=server.url, headers=headers("user1"))
    thread = alice.threads.create()
    cron = alice.crons.create_for_thread(thread["thread_id"], "agent", schedule="0 0 1 1 *", input={"messages": [{"role": "human", "content": "tick"}]})
    # Make it due now (the schedule fires yearly); the scheduler checks every second.
    server.execute("UPDATE crons SET next_run_date = 0 WHERE cron_id = ?", (cron["cron_id"],))
    deadline = time.monotonic() + 20
    runs = []
    while time.monotonic() < deadline:
        runs = alice.runs.list(thread["thread_id"])
        if runs and runs[0]["status"] == "success":
            break
        time.sleep(0.2)
    assert runs and runs[0]["status"] == "success", runs
    assert runs[0]["kwargs"]["config"]["configurable"]["cron_id"] == cron["cron_id"]
    assert runs[0]["kwargs"]["config"]["configurable"]["langgraph_auth_user_id"] == "user1"
    assert alice.threads.get(thread["thread_id"])["values"]["messages"][-1]["content"] == "echo: tick"
    # It moved on to its next firing and did not fire again.
    assert alice.crons.search()[0]["next_run_date"].endswith("-01-01T00:00:00+00:00")
    assert len(alice.runs.list(thread["thread_id"])) == 1


def test_crons_due_together_each_fire_once_as_their_creator(fresh_example, tmp_path):
    """Many crons of two users due in the same second fire concurrently: each exactly once, on
    its own thread, as its own creator, and each moves on to its next firing."""
    import time

    server = fresh_example()
    clients = {user: get_sync_client(url=server.url, headers=headers(user)) for user in ("user1", "user2")}
    crons = []  # (user, thread_id, cron_id)
    for index in range(40):
        user = ("user1", "user2")[index % 2]
        client = clients[user]
        thread = client.threads.create()
        cron = client.crons.create_for_thread(thread["thread_id"], "agent", schedule="0 0 1 1 *", input={"messages": [{"role": "human", "content": f"tick {index}"}]})
        crons.append((user, thread["thread_id"], cron["cron_id"]))
    server.execute("UPDATE crons SET next_run_date = 0")
    deadline = time.monotonic() + 60
    pending = list(crons)
    while pending and time.monotonic() < deadline:
        pending = [entry for entry in pending if not any(run["status"] == "success" for run in clients[entry[0]].runs.list(entry[1]))]
        time.sleep(0.3)
    assert not pending, f"{len(pending)} of {len(crons)} crons did not fire: {pending[:3]}"
    for user, thread_id, cron_id in crons:
        runs = clients[user].runs.list(thread_id)
        assert len(runs) == 1, (cron_id, runs)
        configurable = runs[0]["kwargs"]["config"]["configurable"]
        assert (configurable["cron_id"], configurable["langgraph_auth_user_id"]) == (cron_id, user)
        assert clients[user].threads.get(thread_id)["values"]["messages"][-1]["content"].startswith("echo: tick")
    for user, client in clients.items():
        mine = client.crons.search(limit=100)
        assert {cron["cron_id"] for cron in mine} == {cron_id for owner, _, cron_id in crons if owner == user}
        assert all(cron["next_run_date"].endswith("-01-01T00:00:00+00:00") for cron in mine)
