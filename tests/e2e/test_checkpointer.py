"""The `checkpointer` block of langgraph.json: thread TTLs swept in the background (`delete`,
`keep_latest`), per-thread `ttl` on create and patch, `?include=ttl`; two users.

The TTLs here are fractions of a minute and `sweep_interval_minutes` is 0.01 (0.6 s), so the
sweeps come within a second or two; the tests wait for their effect with a deadline."""

from __future__ import annotations

import json
import re
import shutil
import time
import uuid

import httpx
import pytest
from langgraph_sdk import get_sync_client
from langgraph_sdk.errors import NotFoundError

from conftest import POSTGRES, REPO, Server, postgres_database

USER1 = {"Authorization": "Bearer user1-token"}
USER2 = {"Authorization": "Bearer user2-token"}
FAST_SWEEP = 0.01


def app(folder, checkpointer: dict, *, auth: bool = False):
    shutil.copy(REPO / "tests" / "e2e" / "apps" / "counter_graph.py", folder / "counter_graph.py")
    config = {"graphs": {"counter": "./counter_graph.py:graph"}, "checkpointer": checkpointer}
    if auth:
        shutil.copy(REPO / "examples" / "auth.py", folder / "auth.py")
        config["auth"] = {"path": "./auth.py:my_auth"}
    (folder / "langgraph.json").write_text(json.dumps(config))
    return folder / "langgraph.json"


def wait_until(condition, seconds: float = 20.0):
    """Polls `condition` until it holds; fails after `seconds` (a deadline, not a measurement)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"not within {seconds} s")


def gone(client, thread_id) -> bool:
    try:
        client.threads.get(thread_id)
    except NotFoundError:
        return True
    return False


@pytest.fixture(scope="module")
def deleting(tmp_path_factory):
    """Threads expire 0.05 min (3 s) after their last activity by default and are deleted."""
    config = app(tmp_path_factory.mktemp("ttl-delete"), {"ttl": {"strategy": "delete", "default_ttl": 0.05, "sweep_interval_minutes": FAST_SWEEP}})
    server = Server(config)
    yield server
    server.stop()


def test_expired_threads_are_deleted_with_their_checkpoints(deleting):
    client = get_sync_client(url=deleting.url)
    thread = client.threads.create()
    client.runs.wait(thread["thread_id"], "counter", input={"count": 0})
    shown = client.threads.get(thread["thread_id"], include=["ttl"])
    assert shown["ttl"]["strategy"] == "delete" and shown["ttl"]["ttl_minutes"] == pytest.approx(0.05)
    assert shown["ttl"]["expires_at"] > shown["updated_at"]
    assert "ttl" not in client.threads.get(thread["thread_id"])
    # A thread of its own longer TTL stays.
    kept = client.threads.create(ttl=60)
    assert client.threads.get(kept["thread_id"], include=["ttl"])["ttl"]["ttl_minutes"] == 60
    wait_until(lambda: gone(client, thread["thread_id"]))
    assert client.threads.get(kept["thread_id"])["thread_id"] == kept["thread_id"]
    # Its checkpoints went with it: the id, created again, starts empty.
    again = client.threads.create(thread_id=thread["thread_id"], ttl=60)
    assert client.threads.get_state(again["thread_id"])["values"] == {}


def test_activity_restarts_the_ttl(deleting):
    client = get_sync_client(url=deleting.url)
    thread = client.threads.create()
    started = time.monotonic()
    # Patched every second for 6 s (twice the TTL): never idle for 3 s, so never swept.
    while time.monotonic() - started < 6:
        client.threads.update(thread["thread_id"], metadata={"touched": time.time()})
        time.sleep(1)
    assert not gone(client, thread["thread_id"])
    wait_until(lambda: gone(client, thread["thread_id"]))


def test_patch_sets_the_ttl_and_bad_ttls_are_422(deleting):
    client = get_sync_client(url=deleting.url)
    thread = client.threads.create(ttl=60)
    client.threads.update(thread["thread_id"], metadata={}, ttl={"ttl": 0.02, "strategy": "delete"})
    assert client.threads.get(thread["thread_id"], include=["ttl"])["ttl"]["ttl_minutes"] == pytest.approx(0.02)
    wait_until(lambda: gone(client, thread["thread_id"]))
    for ttl in [{"ttl": 0}, {"ttl": -1}, {"ttl": "soon"}, {"ttl": 5, "strategy": "archive"}, "5"]:
        response = httpx.post(f"{deleting.url}/threads", json={"ttl": ttl})
        assert response.status_code == 422, (ttl, response.text)
        assert "ttl" in response.json()["detail"]


def test_keep_latest_prunes_and_keeps_the_thread(tmp_path):
    config = app(tmp_path, {"ttl": {"strategy": "keep_latest", "default_ttl": 0.03, "sweep_interval_minutes": FAST_SWEEP}})
    server = Server(config)
    try:
        client = get_sync_client(url=server.url)
        thread = client.threads.create()
        client.runs.wait(thread["thread_id"], "counter", input={"count": 0})
        client.runs.wait(thread["thread_id"], "counter", input={"count": 10})
        assert len(client.threads.get_history(thread["thread_id"], limit=100)) > 2
        wait_until(lambda: len(client.threads.get_history(thread["thread_id"], limit=100)) == 1)
        assert client.threads.get_state(thread["thread_id"])["values"] == {"count": 12}
        # The thread goes on from its latest checkpoint.
        assert client.runs.wait(thread["thread_id"], "counter", input={"count": 20})["count"] == 22
    finally:
        server.stop()


def test_one_user_cannot_set_another_users_ttl(tmp_path):
    config = app(tmp_path, {"ttl": {"sweep_interval_minutes": FAST_SWEEP}}, auth=True)
    server = Server(config)
    try:
        alice, bob = get_sync_client(url=server.url, headers=USER1), get_sync_client(url=server.url, headers=USER2)
        thread = alice.threads.create()
        with pytest.raises(NotFoundError):
            bob.threads.update(thread["thread_id"], metadata={}, ttl={"ttl": 0.01, "strategy": "delete"})
        assert alice.threads.get(thread["thread_id"], include=["ttl"])["ttl"] is None
        # Bob's own short TTL sweeps only his thread.
        his = bob.threads.create(ttl={"ttl": 0.01, "strategy": "delete"})
        wait_until(lambda: gone(bob, his["thread_id"]))
        assert alice.threads.get(thread["thread_id"])["thread_id"] == thread["thread_id"]
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("checkpointer", "expected"),
    [
        ({"ttl": {"strategy": "archive"}}, "`checkpointer.ttl.strategy`: `archive` is not a strategy"),
        ({"ttl": {"default_ttl": -5}}, "`checkpointer.ttl.default_ttl`: must be a number of minutes above 0"),
        ({"serde": {"pickle_fallback": "yes"}}, "`checkpointer.serde.pickle_fallback`: must be true or false"),
    ],
)
def test_bad_checkpointer_config_is_one_line(tmp_path, checkpointer, expected):
    config = app(tmp_path, checkpointer)
    with pytest.raises(RuntimeError) as failure:
        Server(config)
    assert expected in str(failure.value) and "langgraph.json" in str(failure.value)


def pickle_app(folder, serde: dict | None):
    shutil.copy(REPO / "tests" / "e2e" / "apps" / "pickle_graph.py", folder / "pickle_graph.py")
    config = {"graphs": {"boxes": "./pickle_graph.py:graph"}}
    if serde is not None:
        config["checkpointer"] = {"serde": serde}
    (folder / "langgraph.json").write_text(json.dumps(config))
    return folder / "langgraph.json"


@pytest.mark.parametrize("pickle_fallback", [True, False])
def test_pickle_fallback_lets_state_hold_pickle_only_objects(tmp_path, pickle_fallback):
    server = Server(pickle_app(tmp_path, {"pickle_fallback": pickle_fallback}))
    try:
        client = get_sync_client(url=server.url)
        thread = client.threads.create()
        run = client.runs.create(thread["thread_id"], "boxes", input={"n": 21})
        client.runs.join(thread["thread_id"], run["run_id"])
        finished = client.runs.get(thread["thread_id"], run["run_id"])
        if pickle_fallback:
            assert finished["status"] == "success", server.output()
            assert client.threads.get_state(thread["thread_id"])["values"]["unboxed"] == 42
            # Read back from the checkpoint after a restart of the process, too.
            server.stop()
            server = Server(pickle_app(tmp_path, {"pickle_fallback": True}))
            client = get_sync_client(url=server.url)
            assert client.threads.get_state(thread["thread_id"])["values"]["unboxed"] == 42
        else:
            # msgpack refuses the object: the checkpoint cannot be written, the run fails.
            assert finished["status"] == "error"
    finally:
        server.stop()


def custom_saver_app(folder, attribute: str):
    shutil.copy(REPO / "tests" / "e2e" / "apps" / "recording_saver.py", folder / "recording_saver.py")
    shutil.copy(REPO / "tests" / "e2e" / "apps" / "counter_graph.py", folder / "counter_graph.py")
    config = {"graphs": {"counter": "./counter_graph.py:graph"}, "checkpointer": {"path": f"./recording_saver.py:{attribute}"}}
    (folder / "langgraph.json").write_text(json.dumps(config))
    return folder / "langgraph.json"


def test_checkpointer_path_replaces_graphwards_saver(tmp_path):
    log = tmp_path / "calls.log"
    server = Server(custom_saver_app(tmp_path, "saver"), env={"RECORDING_SAVER_LOG": str(log)})
    try:
        client = get_sync_client(url=server.url)
        thread = client.threads.create()
        assert client.runs.wait(thread["thread_id"], "counter", input={"count": 1})["count"] == 3
        assert client.threads.get_state(thread["thread_id"])["values"] == {"count": 3}
        calls = log.read_text().splitlines()
        assert calls[0] == "enter" and f"aput {thread['thread_id']}" in calls
        # Copy (through the saver's public methods) and delete go through it too.
        copy = client.threads.copy(thread["thread_id"])
        assert client.threads.get_state(copy["thread_id"])["values"] == {"count": 3}
        client.threads.delete(thread["thread_id"])
        assert f"adelete_thread {thread['thread_id']}" in log.read_text().splitlines()
        assert client.threads.get_state(copy["thread_id"])["values"] == {"count": 3}
    finally:
        server.stop()
    # Its context was left at shutdown.
    assert log.read_text().splitlines()[-1] == "exit"


def test_checkpointer_path_may_name_a_saver_class(tmp_path):
    log = tmp_path / "calls.log"
    server = Server(custom_saver_app(tmp_path, "CountingSaver"), env={"RECORDING_SAVER_LOG": str(log)})
    try:
        client = get_sync_client(url=server.url)
        thread = client.threads.create()
        assert client.runs.wait(thread["thread_id"], "counter", input={"count": 1})["count"] == 3
        assert f"class aput {thread['thread_id']}" in log.read_text().splitlines()
    finally:
        server.stop()


def test_checkpointer_path_to_something_else_fails_at_start(tmp_path):
    with pytest.raises(RuntimeError) as failure:
        Server(custom_saver_app(tmp_path, "not_a_saver"), env={"RECORDING_SAVER_LOG": str(tmp_path / "calls.log")})
    assert "checkpointer.path" in str(failure.value) and "not a BaseCheckpointSaver" in str(failure.value)


CAPPING_AUTH = '''
from langgraph_sdk import Auth

auth = Auth()


@auth.authenticate
async def who(authorization: str | None):
    return {"identity": "anyone"}


@auth.on.threads.create
async def cap_ttl(ctx, value):
    """No thread lives longer than 0.02 min without activity, whatever TTL the client asks
    for (an in-place edit of the event's value sticks, as for metadata)."""
    if value.get("ttl"):
        value["ttl"]["ttl"] = min(value["ttl"]["ttl"], 0.02)
'''


def test_a_threads_create_handler_sees_and_caps_the_ttl(tmp_path):
    (tmp_path / "capping_auth.py").write_text(CAPPING_AUTH)
    config = app(tmp_path, {"ttl": {"sweep_interval_minutes": FAST_SWEEP}})
    settings = json.loads(config.read_text())
    settings["auth"] = {"path": "./capping_auth.py:auth"}
    config.write_text(json.dumps(settings))
    server = Server(config)
    try:
        client = get_sync_client(url=server.url, headers={"Authorization": "Bearer x"})
        asked_long = client.threads.create(ttl=600)
        asked_none = client.threads.create()
        assert client.threads.get(asked_long["thread_id"], include=["ttl"])["ttl"]["ttl_minutes"] == pytest.approx(0.02)
        assert client.threads.get(asked_none["thread_id"], include=["ttl"])["ttl"] is None
        wait_until(lambda: gone(client, asked_long["thread_id"]))
        assert not gone(client, asked_none["thread_id"])
    finally:
        server.stop()


def test_prune_keep_latest_only_for_the_callers_threads(tmp_path):
    server = Server(app(tmp_path, {}, auth=True))
    try:
        alice, bob = get_sync_client(url=server.url, headers=USER1), get_sync_client(url=server.url, headers=USER2)
        thread = alice.threads.create()
        alice.runs.wait(thread["thread_id"], "counter", input={"count": 0})
        alice.runs.wait(thread["thread_id"], "counter", input={"count": 5})
        before = len(alice.threads.get_history(thread["thread_id"], limit=100))
        assert before > 2
        prune = lambda headers, ids: httpx.post(f"{server.url}/threads/prune", headers=headers, json={"thread_ids": ids, "strategy": "keep_latest"})  # noqa: E731
        refused = prune(USER2, [thread["thread_id"]])
        assert refused.status_code == 404, refused.text
        assert len(alice.threads.get_history(thread["thread_id"], limit=100)) == before
        missing = "00000000-0000-0000-0000-000000000001"
        assert prune(USER1, [thread["thread_id"], missing]).json() == {"pruned_count": 1}
        assert len(alice.threads.get_history(thread["thread_id"], limit=100)) == 1
        assert alice.threads.get_state(thread["thread_id"])["values"] == {"count": 7}
        assert bob.threads.search() == []
    finally:
        server.stop()


@pytest.mark.skipif(POSTGRES is None, reason="replicas share a Postgres database (GRAPHWARD_E2E_POSTGRES)")
def test_replicas_sweeping_one_database_delete_each_thread_once(tmp_path):
    """Three processes sweep every 0.6 s: each expired thread is claimed (and deleted) by
    exactly one of them — their logged counts add up to the number of threads."""
    config = app(tmp_path, {"ttl": {"default_ttl": 0.02, "sweep_interval_minutes": FAST_SWEEP}})
    env = {"DATABASE_URI": postgres_database(f"ttl-replicas-{uuid.uuid4()}")}
    servers = [Server(config, command="serve", env=env) for _ in range(3)]
    try:
        client = get_sync_client(url=servers[0].url)
        ids = [client.threads.create()["thread_id"] for _ in range(30)]
        wait_until(lambda: client.threads.count() == 0, 30)
        assert all(gone(client, thread_id) for thread_id in ids)

        def logs() -> list[str]:
            return [re.sub(r"\x1b\[[0-9;]*m", "", server.output()) for server in servers]

        def swept() -> int:
            return sum(int(count) for log in logs() for count in re.findall(r"deleted threads whose TTL ran out threads=(\d+)", log))

        # A sweep logs its count after its delete commits: the last line may come just after
        # the count reached 0. More than the thread count would be a double delete.
        wait_until(lambda: swept() >= len(ids), 10)
        time.sleep(1.5)
        assert swept() == len(ids), logs()
        assert not any("cannot delete threads whose TTL ran out" in log for log in logs())
    finally:
        for server in servers:
            server.stop()
