"""One case for each cross-user path issue #10 found, beside the randomized hunter
(test_hunter.py): each would have caught its bug, with two users and the policies where it
showed (a threads-only policy, a store filter, identities with a dot)."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid

import httpx
import pytest

OWNER_AUTH = '''
from langgraph_sdk import Auth

TOKENS = {"alice-token": "alice", "dot-token": "alice.smith", "bob-token": "bob"}
auth = Auth()

@auth.authenticate
async def authenticate(authorization: str | None):
    token = (authorization or "").removeprefix("Bearer ")
    if token not in TOKENS:
        raise Auth.exceptions.HTTPException(status_code=401, detail="Invalid token")
    return {"identity": TOKENS[token]}

@auth.on
async def owner(ctx, value):
    filters = {"owner": ctx.user.identity}
    value.setdefault("metadata", {}).update(filters)
    return filters

@auth.on.crons.create
async def stamp_cron(ctx, value):
    value.setdefault("metadata", {})["owner"] = ctx.user.identity
    return {"owner": ctx.user.identity}

@auth.on.crons.update
async def stamp_cron_update(ctx, value):
    if value.get("metadata") is not None:
        value["metadata"]["owner"] = ctx.user.identity
    return {"owner": ctx.user.identity}

@auth.on.store()
async def own_namespace(ctx, value):
    assert value["namespace"][0] == ctx.user.identity, "Not authorized"
'''

THREADS_ONLY_AUTH = '''
from langgraph_sdk import Auth

TOKENS = {"alice-token": "alice", "bob-token": "bob"}
auth = Auth()

@auth.authenticate
async def authenticate(authorization: str | None):
    token = (authorization or "").removeprefix("Bearer ")
    if token not in TOKENS:
        raise Auth.exceptions.HTTPException(status_code=401, detail="Invalid token")
    return {"identity": TOKENS[token]}

@auth.on.crons
async def crons(ctx, value):
    filters = {"owner": ctx.user.identity}
    if isinstance(value.get("metadata"), dict):
        value["metadata"].update(filters)
    return filters

@auth.on.threads
async def threads(ctx, value):
    filters = {"owner": ctx.user.identity}
    if isinstance(value.get("metadata"), dict):
        value["metadata"].update(filters)
    return filters
'''

STORE_FILTER_AUTH = '''
from langgraph_sdk import Auth

auth = Auth()

@auth.authenticate
async def authenticate(authorization: str | None):
    if authorization not in ("Bearer alice-token", "Bearer bob-token"):
        raise Auth.exceptions.HTTPException(status_code=401, detail="Invalid token")
    return {"identity": authorization.split()[1].removesuffix("-token")}

@auth.on.store()
async def by_owner_field(ctx, value):
    return {"owner": ctx.user.identity}
'''

GRAPHS = '''
import asyncio
from typing import Annotated, TypedDict

from langgraph.config import get_config, get_store
from langgraph.graph import END, START, StateGraph
from langgraph.store.base import PutOp


def append(left, right):
    return (left or []) + (right or [])


class State(TypedDict, total=False):
    text: str
    seen: Annotated[list, append]


def who(state):
    configurable = get_config()["configurable"]
    return {"seen": [{"user_id": configurable.get("user_id"), "thread_id": configurable.get("thread_id")}]}


async def slow(state):
    await asyncio.sleep(0.3)
    return {"seen": [{"step": state.get("text")}]}


async def stubborn(state):
    """Takes a while to stop when cancelled (cleanup in a finally, say)."""
    try:
        await asyncio.sleep(0.2)
    except asyncio.CancelledError:
        await asyncio.sleep(1.5)
        raise
    return {"seen": [{"step": state.get("text")}]}


async def remember(state):
    identity = get_config()["configurable"]["langgraph_auth_user_id"]
    await get_store().abatch([PutOp((identity, "mem"), "k", {"text": state.get("text")})])
    return {"seen": [{"stored": identity}]}


def build(*nodes):
    builder = StateGraph(State)
    previous = START
    for index, node in enumerate(nodes):
        name = f"n{index}"
        builder.add_node(name, node)
        builder.add_edge(previous, name)
        previous = name
    builder.add_edge(previous, END)
    return builder.compile()


who_graph = build(who)
slow_graph = build(*[slow] * 20)
stubborn_graph = build(*[stubborn] * 40)
memory_graph = build(remember)
'''


def start(make_server, auth: str, **kwargs):
    files = {
        "langgraph.json": json.dumps({
            "graphs": {"who": "./graphs.py:who_graph", "slow": "./graphs.py:slow_graph", "stubborn": "./graphs.py:stubborn_graph", "memory": "./graphs.py:memory_graph"},
            "auth": {"path": "./auth.py:auth"},
        }),
        "graphs.py": GRAPHS,
        "auth.py": auth,
    }
    return make_server(files, **kwargs)


def client(server, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def test_client_config_never_names_another_thread_or_identity(make_server):
    server = start(make_server, OWNER_AUTH)
    alice, bob = client(server, "alice-token"), client(server, "bob-token")
    thread = alice.post("/threads", json={}).json()["thread_id"]
    alice.post(f"/threads/{thread}/runs/wait", json={"assistant_id": "who", "input": {"text": "alice"}}).raise_for_status()
    history = len(alice.post(f"/threads/{thread}/history", json={"limit": 100}).json())
    forged = {"user_id": "alice", "langgraph_auth_user_id": "alice", "thread_id": thread}
    for body in (
        {"checkpoint": {"thread_id": thread}, "on_completion": "keep"},
        {"config": {"configurable": forged}, "on_completion": "keep"},
        {"context": forged, "on_completion": "keep"},
    ):
        out = bob.post("/runs/wait", json={"assistant_id": "who", "input": {"text": "bob"}, **body}).json()
        assert out["seen"] == [{"user_id": "bob", "thread_id": out["seen"][0]["thread_id"]}], out
        assert out["seen"][0]["thread_id"] != thread and "alice" not in json.dumps(out)
    assert len(alice.post(f"/threads/{thread}/history", json={"limit": 100}).json()) == history
    # On Bob's own thread, too: the graph sees Bob and Bob's thread.
    own = bob.post("/threads", json={}).json()["thread_id"]
    out = bob.post(f"/threads/{own}/runs/wait", json={"assistant_id": "who", "input": {"text": "own"}, "config": {"configurable": forged}}).json()
    assert out.get("seen") == [{"user_id": "bob", "thread_id": own}], out


def test_assistant_delete_cascades_only_to_the_callers_threads(make_server):
    server = start(make_server, THREADS_ONLY_AUTH)
    alice, bob = client(server, "alice-token"), client(server, "bob-token")
    mine = alice.post("/threads", json={}).json()["thread_id"]
    alice.post(f"/threads/{mine}/runs/wait", json={"assistant_id": "who", "input": {"text": "a"}}).raise_for_status()
    theirs = bob.post("/threads", json={}).json()["thread_id"]
    bob.post(f"/threads/{theirs}/runs/wait", json={"assistant_id": "who", "input": {"text": "b"}}).raise_for_status()
    system = alice.get(f"/threads/{mine}").json()["metadata"]["assistant_id"]
    assert bob.delete(f"/assistants/{system}", params={"delete_threads": "true"}).status_code == 204
    assert alice.get(f"/threads/{mine}").status_code == 200
    assert len(alice.post(f"/threads/{mine}/history", json={}).json()) > 0
    assert bob.get(f"/threads/{theirs}").status_code == 404


def test_a_cron_keeps_the_handlers_metadata_in_its_payload(make_server):
    server = start(make_server, OWNER_AUTH)
    bob = client(server, "bob-token")
    cron = bob.post("/runs/crons", json={"assistant_id": "who", "schedule": "0 0 1 1 *", "metadata": {"owner": "alice"}}).json()
    assert cron["metadata"]["owner"] == "bob" and cron["payload"]["metadata"]["owner"] == "bob", cron
    patched = bob.patch(f"/runs/crons/{cron['cron_id']}", json={"metadata": {"owner": "alice"}}).json()
    assert patched["metadata"]["owner"] == "bob" and patched["payload"]["metadata"]["owner"] == "bob", patched


def test_a_deleted_threads_run_never_reaches_a_new_thread_with_its_id(make_server):
    server = start(make_server, OWNER_AUTH)
    alice, bob = client(server, "alice-token"), client(server, "bob-token")
    thread = alice.post("/threads", json={}).json()["thread_id"]
    run = alice.post(f"/threads/{thread}/runs", json={"assistant_id": "slow", "input": {"text": "alice-secret"}}).json()
    deadline = time.monotonic() + 10
    while alice.get(f"/threads/{thread}/runs/{run['run_id']}").json()["status"] != "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # a few checkpoints written
    assert alice.delete(f"/threads/{thread}").status_code == 204
    created = bob.post("/threads", json={"thread_id": thread})
    assert created.status_code == 200, created.text
    time.sleep(1.5)  # what the old run would have written meanwhile
    assert bob.get(f"/threads/{thread}/history").json() == []
    for _ in range(2):
        state = bob.get(f"/threads/{thread}/state").json()
        assert "alice" not in json.dumps(state), state
        assert "alice" not in json.dumps(bob.get(f"/threads/{thread}").json())
        bob.post(f"/threads/{thread}/runs/wait", json={"assistant_id": "who", "input": {"text": "bob"}}).raise_for_status()
    assert "alice" not in json.dumps(bob.post(f"/threads/{thread}/history", json={"limit": 100}).json())
    assert all(r["status"] == "success" for r in bob.get(f"/threads/{thread}/runs").json())


def test_a_thread_id_stays_taken_until_its_deletion_ends(make_server):
    """Another user's concurrent deletes of the same id (a prune that names it) never end the
    guard early: while the first deletion is still stopping a slow run, the id cannot be
    created, so the new thread never sees the old one's checkpoints."""
    server = start(make_server, OWNER_AUTH)
    alice, bob = client(server, "alice-token"), client(server, "bob-token")
    thread = alice.post("/threads", json={}).json()["thread_id"]
    run = alice.post(f"/threads/{thread}/runs", json={"assistant_id": "stubborn", "input": {"text": "alice-secret"}}).json()
    while alice.get(f"/threads/{thread}/runs/{run['run_id']}").json()["status"] != "running":
        time.sleep(0.05)
    time.sleep(0.5)
    done = threading.Event()

    def prune_in_a_loop():
        pruner = client(server, "bob-token")
        while not done.is_set():
            pruner.post("/threads/prune", json={"thread_ids": [str(uuid.uuid4()) for _ in range(200)] + [thread]})

    def delete():
        alice.delete(f"/threads/{thread}")
        done.set()

    pruning = threading.Thread(target=prune_in_a_loop)
    deleting = threading.Thread(target=delete)
    pruning.start()
    time.sleep(0.1)
    deleting.start()
    seen = []
    while not done.is_set() or not seen:
        created = bob.post("/threads", json={"thread_id": thread, "metadata": {"graph_id": "stubborn"}})
        if created.status_code == 200:
            seen.append(json.dumps(bob.get(f"/threads/{thread}/state").json()) + json.dumps(bob.get(f"/threads/{thread}/history").json()))
            break
        assert created.status_code == 409, created.text
        time.sleep(0.02)
    deleting.join()
    pruning.join()
    assert seen and "alice" not in seen[0], seen


def test_thread_streams_end_with_their_thread(make_server):
    server = start(make_server, OWNER_AUTH)
    alice, bob = client(server, "alice-token"), client(server, "bob-token")
    thread = alice.post("/threads", json={}).json()["thread_id"]
    lines: list[str] = []

    def listen():
        with alice.stream("GET", f"/threads/{thread}/stream", headers={"Last-Event-ID": "-"}, timeout=20) as stream:
            for line in stream.iter_lines():
                lines.append(line)

    listener = threading.Thread(target=listen)
    listener.start()
    time.sleep(0.3)
    alice.post(f"/threads/{thread}/runs/wait", json={"assistant_id": "who", "input": {"text": "alice-secret"}}).raise_for_status()
    assert alice.delete(f"/threads/{thread}").status_code == 204
    listener.join(timeout=10)
    assert not listener.is_alive(), "the deleted thread's stream did not end"
    assert any("alice-secret" in line for line in lines)
    # The same id, created anew by another user: nothing of the old stream is replayed.
    bob.post("/threads", json={"thread_id": thread}).raise_for_status()
    replayed: list[str] = []
    # Read until 2 s pass without a byte (heartbeats come every 5 s).
    with bob.stream("GET", f"/threads/{thread}/stream", headers={"Last-Event-ID": "-"}, timeout=2) as stream:
        try:
            for line in stream.iter_lines():
                replayed.append(line)
        except httpx.ReadTimeout:
            pass
    assert not any("alice" in line for line in replayed), replayed


def test_assistant_delete_never_takes_other_users_crons(make_server):
    server = start(make_server, THREADS_ONLY_AUTH)
    alice, bob = client(server, "alice-token"), client(server, "bob-token")
    cron = alice.post("/runs/crons", json={"assistant_id": "who", "schedule": "0 0 1 1 *"}).json()
    system = cron["assistant_id"]
    answer = bob.delete(f"/assistants/{system}")
    assert answer.status_code == 409, answer.text
    assert alice.get(f"/runs/crons/{cron['cron_id']}").status_code == 200
    assert alice.post("/runs/wait", json={"assistant_id": "who", "input": {"text": "a"}}).status_code == 200
    # Alice may: her own crons go with the assistant.
    assert alice.delete(f"/assistants/{system}").status_code == 204
    assert alice.get(f"/runs/crons/{cron['cron_id']}").status_code == 404


def test_store_namespaces_are_checked_on_every_path(make_server):
    server = start(make_server, OWNER_AUTH)
    alice, dotted = client(server, "alice-token"), client(server, "dot-token")
    # Over HTTP a label with a period is refused.
    put = dotted.put("/store/items", json={"namespace": ["alice.smith", "mem"], "key": "k", "value": {"text": "x"}})
    assert put.status_code == 422, put.text
    # From a graph (`abatch` with a PutOp) too: the run fails and nothing is written.
    out = dotted.post("/runs/wait", json={"assistant_id": "memory", "input": {"text": "dotted-secret"}}).json()
    assert "__error__" in out, out
    # So alice's prefix never finds alice.smith's items.
    found = alice.post("/store/items/search", json={"namespace_prefix": ["alice"]}).json()["items"]
    assert "dotted-secret" not in json.dumps(found)
    # A plain identity works from the graph.
    alice.post("/runs/wait", json={"assistant_id": "memory", "input": {"text": "mine"}}).raise_for_status()
    item = alice.get("/store/items", params={"namespace": "alice.mem", "key": "k"}).json()
    assert item["value"] == {"text": "mine"}


def test_store_filters_apply_to_item_values(make_server):
    server = start(make_server, STORE_FILTER_AUTH)
    alice, bob = client(server, "alice-token"), client(server, "bob-token")
    ns = ["shared"]
    assert alice.put("/store/items", json={"namespace": ns, "key": "a", "value": {"owner": "alice", "v": 1}}).status_code == 204
    # A value that fails the filter is not written, nor is an item that fails it replaced.
    assert bob.put("/store/items", json={"namespace": ns, "key": "b", "value": {"owner": "alice"}}).status_code == 403
    assert bob.put("/store/items", json={"namespace": ns, "key": "a", "value": {"owner": "bob"}}).status_code == 403
    # Get: another owner's item reads as missing; delete leaves it.
    assert bob.get("/store/items", params={"namespace": "shared", "key": "a"}).json() is None
    assert bob.request("DELETE", "/store/items", json={"namespace": ns, "key": "a"}).status_code == 204
    assert alice.get("/store/items", params={"namespace": "shared", "key": "a"}).json()["value"] == {"owner": "alice", "v": 1}
    assert bob.post("/store/items/search", json={"namespace_prefix": ns}).json()["items"] == []
    # A namespace listing has no item value to apply a filter to: refused, never unfiltered.
    listed = bob.post("/store/namespaces", json={})
    assert listed.status_code == 500 and "list_namespaces" in listed.json()["detail"]


def test_webhooks_to_this_server_or_loopback_are_refused(make_server):
    server = start(make_server, OWNER_AUTH)
    bob = client(server, "bob-token")
    thread = bob.post("/threads", json={}).json()["thread_id"]
    for target in (f"/threads/{thread}/runs", server.url + "/ok", "http://localhost:1/x", "http://[::1]/x", "http://10.1.2.3/x", "http://u@example.com/"):
        for path in ("/runs", f"/threads/{thread}/runs/wait"):
            answer = bob.post(path, json={"assistant_id": "who", "webhook": target})
            assert answer.status_code == 422, (path, target, answer.text)
        cron = bob.post("/runs/crons", json={"assistant_id": "who", "schedule": "0 0 1 1 *", "webhook": target})
        assert cron.status_code == 422, (target, cron.text)


def test_nothing_is_learned_or_read_before_authentication(make_server):
    server = start(make_server, OWNER_AUTH, extra_args=["--preauth-body-limit", "1024"])
    alice = client(server, "alice-token")
    thread = alice.post("/threads", json={}).json()["thread_id"]
    anonymous = httpx.Client(base_url=server.url, timeout=30)
    for path in (f"/threads/{thread}/runs", f"/threads/{uuid.uuid4()}/runs", "/threads/1234/runs", "/threads/%2e%2e/runs"):
        for body in ('{"assistant_id": "who"}', "{", '{"assistant_id": "nope"}'):
            answer = anonymous.post(path, content=body)
            assert (answer.status_code, answer.json()) == (401, {"detail": "Invalid token"}), (path, body)
    # A body over the pre-authentication limit is answered without being read.
    big = b'{"metadata": {"x": "' + b"a" * 5_000_000 + b'"}}'
    assert anonymous.post("/threads", content=big).status_code == 401
    # Authenticated, the same body is read (bigger than the limit is fine once authenticated).
    assert alice.post("/threads", content=big).status_code == 200


def test_slow_and_idle_connections_are_closed(make_server):
    server = start(make_server, OWNER_AUTH, extra_args=["--header-timeout", "1", "--idle-timeout", "2"])
    port = int(server.url.rsplit(":", 1)[1])

    def closed_within(sock: socket.socket, seconds: float) -> bool:
        sock.settimeout(seconds)
        try:
            while sock.recv(4096):
                pass
            return True
        except (TimeoutError, socket.timeout):
            return False
        except ConnectionResetError:
            return True

    half = socket.create_connection(("127.0.0.1", port))
    half.sendall(b"GET /ok HTTP/1.1\r\nHost: x\r\n")  # headers never finished
    assert closed_within(half, 4), "a connection with unfinished headers stayed open"
    kept = socket.create_connection(("127.0.0.1", port))
    kept.sendall(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
    kept.settimeout(2)
    assert b"200 OK" in kept.recv(4096)
    assert closed_within(kept, 4), "an idle kept-alive connection stayed open"
    # A body that stops arriving: closed too, and the server keeps serving.
    stalled = socket.create_connection(("127.0.0.1", port))
    stalled.sendall(b"POST /threads HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer alice-token\r\nContent-Length: 100\r\n\r\n{")
    assert closed_within(stalled, 6), "a stalled body kept its connection"
    assert httpx.get(server.url + "/ok").status_code == 200


@pytest.mark.parametrize("flag", ["--header-timeout", "--idle-timeout", "--max-connections"])
def test_limit_flags_are_validated(make_server, flag):
    with pytest.raises(RuntimeError, match=flag):
        start(make_server, OWNER_AUTH, extra_args=[flag, "0"])


def test_deleting_or_rolling_back_a_run_leaves_copies_of_its_thread_alone(make_server):
    server = start(make_server, OWNER_AUTH)
    alice = client(server, "alice-token")

    def history(thread):
        return alice.post(f"/threads/{thread}/history", json={"limit": 100}).json()

    # A finished run, then a copy, then the run deleted on the original.
    thread = alice.post("/threads", json={}).json()["thread_id"]
    run = alice.post(f"/threads/{thread}/runs", json={"assistant_id": "who", "input": {"text": "a"}}).json()
    alice.get(f"/threads/{thread}/runs/{run['run_id']}/join").raise_for_status()
    copy = alice.post(f"/threads/{thread}/copy").json()["thread_id"]
    before = history(copy)
    assert before and alice.get(f"/threads/{copy}/state").json()["values"]["seen"]
    assert alice.delete(f"/threads/{thread}/runs/{run['run_id']}").status_code == 204
    assert history(copy) == before
    assert alice.get(f"/threads/{copy}/state").json()["values"] == before[0]["values"]

    # A run copied mid-way, then rolled back on the original: the copy keeps what it copied.
    thread = alice.post("/threads", json={}).json()["thread_id"]
    run = alice.post(f"/threads/{thread}/runs", json={"assistant_id": "slow", "input": {"text": "s"}}).json()
    deadline = time.monotonic() + 20
    while len(history(thread)) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    copy = alice.post(f"/threads/{thread}/copy").json()["thread_id"]
    before = history(copy)
    assert len(before) >= 3
    cancel = alice.post(f"/threads/{thread}/runs/{run['run_id']}/cancel", params={"action": "rollback", "wait": "true"})
    assert cancel.status_code in (200, 202, 204), cancel.text
    deadline = time.monotonic() + 20
    while history(thread) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert history(thread) == []
    assert history(copy) == before


REVOCABLE_AUTH = '''
from pathlib import Path
from langgraph_sdk import Auth

TOKENS = {"alice-token": "alice", "carol-token": "carol"}
REVOKED = Path(__file__).with_name("revoked.txt")
auth = Auth()

@auth.authenticate
async def authenticate(authorization: str | None):
    token = (authorization or "").removeprefix("Bearer ")
    if token not in TOKENS:
        raise Auth.exceptions.HTTPException(status_code=401, detail="Invalid token")
    return {"identity": TOKENS[token], "permissions": ["runs:write", f"seen:{TOKENS[token]}"]}

@auth.on
async def owner(ctx, value):
    filters = {"owner": ctx.user.identity}
    if isinstance(value.get("metadata"), dict):
        value["metadata"].update(filters)
    return filters

@auth.on.threads.create_run
async def create_run(ctx, value):
    revoked = REVOKED.read_text().split() if REVOKED.exists() else []
    if ctx.user.identity in revoked or "runs:write" not in ctx.permissions:
        raise Auth.exceptions.HTTPException(status_code=403, detail="revoked")
    value.setdefault("metadata", {})["fired_as"] = f"{ctx.user.identity}:{','.join(sorted(ctx.permissions))}"
    return {"owner": ctx.user.identity}
'''


def test_a_cron_fires_as_its_creator_through_the_handlers(make_server, tmp_path):
    """auth.md §3.7: at firing time the run's events go through the handlers as the cron's
    creator (identity and permissions as authenticated), so a permission revoked since the
    cron was made stops it."""
    server = start(make_server, REVOCABLE_AUTH)
    alice, carol = client(server, "alice-token"), client(server, "carol-token")
    for user in (alice, carol):
        reply = user.post("/runs/crons", json={"assistant_id": "who", "schedule": "* * * * *", "input": {"text": "tick"}, "on_run_completed": "keep"})
        assert reply.status_code == 200, reply.text
    (tmp_path / "revoked.txt").write_text("carol\n")
    # The next minute boundary, then a few seconds for the run.
    time.sleep(62 - time.time() % 60)
    deadline = time.monotonic() + 20
    fired = []
    while time.monotonic() < deadline:
        fired = alice.post("/threads/search", json={"metadata": {"fired_as": "alice:runs:write,seen:alice"}}).json()
        if fired:
            break
        time.sleep(0.5)
    assert fired, "alice's cron did not fire through the handlers as alice"
    run = alice.get(f"/threads/{fired[0]['thread_id']}/runs").json()[0]
    assert run["kwargs"]["config"]["configurable"]["langgraph_auth_permissions"] == ["runs:write", "seen:alice"]
    assert carol.post("/threads/search", json={}).json() == [], "carol's cron fired after her permission was revoked"
    assert "cron could not start its run" in server.output()


def test_a_deletion_the_client_abandons_still_ends(make_server):
    """A client that goes away in the middle of `DELETE /threads/{id}` (while a run that is
    slow to stop is being stopped) does not stop the deletion half-way: the id is free again
    afterwards, and a new thread with it has none of the old checkpoints."""
    server = start(make_server, OWNER_AUTH)
    alice, bob = client(server, "alice-token"), client(server, "bob-token")
    thread = alice.post("/threads", json={}).json()["thread_id"]
    run = alice.post(f"/threads/{thread}/runs", json={"assistant_id": "stubborn", "input": {"text": "alice-secret"}}).json()
    deadline = time.monotonic() + 10
    while alice.get(f"/threads/{thread}/runs/{run['run_id']}").json()["status"] != "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # a few checkpoints written
    with pytest.raises(httpx.TimeoutException):
        httpx.delete(f"{server.url}/threads/{thread}", headers={"Authorization": "Bearer alice-token"}, timeout=0.3)
    deadline = time.monotonic() + 20
    created = bob.post("/threads", json={"thread_id": thread})
    while created.status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
        created = bob.post("/threads", json={"thread_id": thread})
    assert created.status_code == 200, created.text
    assert bob.post(f"/threads/{thread}/history", json={"limit": 100}).json() == []
    out = bob.post(f"/threads/{thread}/runs/wait", json={"assistant_id": "who", "input": {"text": "bob"}}, timeout=30)
    assert out.status_code == 200 and "alice" not in out.text, out.text
    assert "alice" not in json.dumps(bob.post(f"/threads/{thread}/history", json={"limit": 100}).json())
