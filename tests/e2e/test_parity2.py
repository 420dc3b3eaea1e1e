"""Parity with the reference (`langgraph dev`) for the rest of issue 15: thread creation with
`supersteps`, `GET /ok?check_db=…`, the `tools` and `lifecycle` run stream modes (which the
reference's run API refuses), `state_update` events on the thread stream, and two options
that already matched (`namespace_prefix: null`, `POST /assistants/{id}/latest`)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import httpx
import pytest
from langgraph_sdk import get_client, get_sync_client
from langgraph_sdk.errors import BadRequestError, ConflictError, NotFoundError, UnprocessableEntityError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
APPS = Path(__file__).resolve().parent / "apps"
USER1 = {"Authorization": "Bearer user1-token"}
USER2 = {"Authorization": "Bearer user2-token"}

# The example's auth, recording each event a handler receives (to count them).
RECORDING_AUTH = '''
from pathlib import Path

from langgraph_sdk import Auth

TOKENS = {"user1-token": "user1", "user2-token": "user2"}
EVENTS = Path(__file__).with_name("events.log")
auth = Auth()

@auth.authenticate
async def authenticate(authorization: str | None):
    token = (authorization or "").removeprefix("Bearer ")
    if token not in TOKENS:
        raise Auth.exceptions.HTTPException(status_code=401, detail="Invalid token")
    return {"identity": TOKENS[token]}

@auth.on
async def owner(ctx, value):
    with EVENTS.open("a") as log:
        log.write(f"{ctx.resource}.{ctx.action}\\n")
    filters = {"owner": ctx.user.identity}
    if isinstance(value, dict) and isinstance(value.get("metadata"), dict):
        value["metadata"].update(filters)
    return filters
'''


def start_app(make_server, *, auth: bool):
    """The example graph and the tool graph; with the recording auth or none."""
    config = {"graphs": {"agent": f"{EXAMPLES / 'agent.py'}:graph", "tools": f"{APPS / 'tool_graph.py'}:graph"}}
    files = {}
    if auth:
        config["auth"] = {"path": "./auth.py:auth"}
        files["auth.py"] = RECORDING_AUTH
    files["langgraph.json"] = json.dumps(config)
    return make_server(files)


def message(text: str, role: str = "human") -> dict:
    return {"messages": [{"role": role, "content": text, "id": text}]}


def contents(values: dict | None) -> list[str]:
    return [item["content"] for item in (values or {}).get("messages", [])]


# --------------------------------------------------------------------------------------------
# supersteps on POST /threads


def test_supersteps_are_applied_in_order_as_state_updates(make_server):
    """`client.threads.create(graph_id=…, supersteps=[…])`: each superstep is a state update
    (as `threads.update_state` applies one) on the graph metadata.graph_id names, one
    checkpoint each; the answer is the thread with the resulting values."""
    server = start_app(make_server, auth=False)
    sdk = get_sync_client(url=server.url)
    thread = sdk.threads.create(graph_id="agent", supersteps=[
        {"updates": [{"values": message("a"), "as_node": "respond"}]},
        {"updates": [{"values": message("b", "ai"), "as_node": "respond"}]},
    ])
    assert thread["metadata"] == {"graph_id": "agent"} and thread["status"] == "idle"
    assert contents(thread["values"]) == ["a", "b"]
    assert sdk.threads.get(thread["thread_id"])["values"] == thread["values"]
    state = sdk.threads.get_state(thread["thread_id"])
    assert contents(state["values"]) == ["a", "b"] and state["next"] == [] and state["metadata"]["source"] == "update"
    history = sdk.threads.get_history(thread["thread_id"])
    assert [(entry["metadata"]["source"], entry["metadata"]["step"]) for entry in history] == [("update", 1), ("update", 0)]
    assert [contents(entry["values"]) for entry in history] == [["a", "b"], ["a"]]

    # As input: the input checkpoint, its `__start__` still to run (the thread is interrupted,
    # as after the same update through `update_state`).
    thread = sdk.threads.create(graph_id="agent", supersteps=[{"updates": [{"values": message("hi"), "as_node": "__input__"}]}])
    assert thread["status"] == "interrupted" and contents(thread["values"]) == []
    assert sdk.threads.get_state(thread["thread_id"])["next"] == ["__start__"]
    # A run then goes on from there.
    final = sdk.runs.wait(thread["thread_id"], "agent", input=None)
    assert contents(final) == ["hi", "echo: hi"]

    # Another graph, its own nodes; values null is an update with nothing in it.
    thread = sdk.threads.create(graph_id="tools", supersteps=[
        {"updates": [{"values": message("x"), "as_node": "call"}]},
        {"updates": [{"values": None, "as_node": "tools"}]},
    ])
    assert contents(thread["values"]) == ["x"]
    # No supersteps (the SDK leaves an empty list out; sent as it is, the same): a plain thread.
    plain = httpx.post(f"{server.url}/threads", json={"metadata": {"graph_id": "agent"}, "supersteps": []})
    assert plain.status_code == 200 and plain.json()["values"] is None


def test_a_superstep_can_be_a_command(make_server):
    """An update with `command` applies that Command (its `update`) as the node: the
    reference answers 500 to it (README: differences)."""
    server = start_app(make_server, auth=False)
    sdk = get_sync_client(url=server.url)
    thread = sdk.threads.create(graph_id="agent", supersteps=[{"updates": [{"values": None, "command": {"update": message("c")}, "as_node": "respond"}]}])
    assert contents(thread["values"]) == ["c"]


def test_refused_supersteps_create_nothing(make_server):
    """The reference's refusals, and its status codes; a refused request leaves no thread
    (the reference leaves the thread created, with the supersteps before the failing one:
    README, differences)."""
    server = start_app(make_server, auth=False)
    sdk = get_sync_client(url=server.url)

    def refused(error, supersteps, detail: str | None = None):
        thread_id = str(uuid.uuid4())
        with pytest.raises(error) as raised:
            sdk.threads.create(thread_id=thread_id, graph_id="agent", supersteps=supersteps)
        if detail is not None:
            assert raised.value.response.json() == {"detail": detail}
        with pytest.raises(NotFoundError):
            sdk.threads.get(thread_id)
        assert httpx.get(f"{server.url}/threads/{thread_id}/state").status_code == 404

    refused(BadRequestError, [{"updates": []}], "No updates provided")
    refused(BadRequestError, [{"updates": [{"values": message("a"), "as_node": "zzz"}]}], "Node zzz does not exist")
    # A later superstep's unknown node: the first one is not kept either.
    refused(BadRequestError, [{"updates": [{"values": message("a"), "as_node": "__input__"}]}, {"updates": [{"values": message("b"), "as_node": "zzz"}]}], "Node zzz does not exist")
    # langgraph's own refusal, once a superstep was written.
    refused(BadRequestError, [{"updates": [{"values": message("a"), "as_node": "respond"}]}, {"updates": [{"values": message("b"), "as_node": "__input__"}, {"values": message("c"), "as_node": "respond"}]}], "Cannot apply multiple updates when updating as input")
    # Malformed: 422 before anything (the reference's schema refuses them too).
    for body in (
        {"supersteps": None},
        {"supersteps": {"updates": []}},
        {"supersteps": [{}]},
        {"supersteps": [{"updates": None}]},
        {"supersteps": [{"updates": [5]}]},
        {"supersteps": [{"updates": [{"values": message("a")}]}]},
        {"supersteps": [{"updates": [{"values": message("a"), "as_node": None}]}]},
        {"supersteps": [{"updates": [{"values": 5, "as_node": "respond"}]}]},
        {"supersteps": [{"updates": [{"values": "x", "as_node": "respond"}]}]},
        {"supersteps": [{"updates": [{"command": "x", "as_node": "respond"}]}]},
    ):
        thread_id = str(uuid.uuid4())
        reply = httpx.post(f"{server.url}/threads", json={"thread_id": thread_id, "metadata": {"graph_id": "agent"}, **body})
        assert reply.status_code == 422, (body, reply.text)
        assert httpx.get(f"{server.url}/threads/{thread_id}").status_code == 404


def test_supersteps_without_a_known_graph_create_the_thread_and_say_so(make_server):
    """As in the reference: no `metadata.graph_id`, or one no graph has, creates the thread
    (without state) and answers 201 with a detail saying the state was not updated."""
    server = start_app(make_server, auth=False)
    sdk = get_sync_client(url=server.url)
    steps = [{"updates": [{"values": message("a"), "as_node": "respond"}]}]
    for graph_id, expected in ((None, "has no assigned graph ID"), ("nope", "Graph 'nope' not found. Expected one of: ['agent', 'tools']")):
        thread_id = str(uuid.uuid4())
        reply = httpx.post(f"{server.url}/threads", json={"thread_id": thread_id, "metadata": {"graph_id": graph_id} if graph_id else {}, "supersteps": steps})
        assert reply.status_code == 201, reply.text
        detail = reply.json()["detail"]
        assert detail.startswith(f"Thread {thread_id} was created, but there were problems updating the state: ") and expected in detail, detail
        thread = sdk.threads.get(thread_id)
        assert thread["values"] is None and thread["status"] == "idle"
        if graph_id is None:
            assert sdk.threads.get_state(thread_id)["checkpoint"] is None
        else:
            # The state of a thread whose graph the server does not have: 404, as in the
            # reference (graphward used to answer 500).
            for reply in (httpx.get(f"{server.url}/threads/{thread_id}/state"), httpx.post(f"{server.url}/threads/{thread_id}/history", json={}), httpx.post(f"{server.url}/threads/{thread_id}/state", json={"values": {}})):
                assert (reply.status_code, reply.json()) == (404, {"detail": "Graph 'nope' not found. Expected one of: ['agent', 'tools']"})


def test_supersteps_with_auth_run_the_create_handler_once_and_stay_the_callers(make_server, tmp_path):
    """With custom auth the creation is authorized as any `threads.create` (its handler once,
    no other event); the thread is the creator's. Another user naming that thread id, with
    `if_exists` `raise` or `do_nothing`, is refused (409) and writes nothing into its state;
    `do_nothing` on one's own thread leaves it as it is (README: differences)."""
    server = start_app(make_server, auth=True)
    events = tmp_path / "events.log"
    user1, user2 = get_sync_client(url=server.url, headers=USER1), get_sync_client(url=server.url, headers=USER2)
    events.write_text("")
    thread = user1.threads.create(graph_id="agent", supersteps=[{"updates": [{"values": message("secret"), "as_node": "respond"}]}, {"updates": [{"values": message("more"), "as_node": "respond"}]}])
    assert events.read_text().split() == ["threads.create"]
    assert thread["metadata"] == {"graph_id": "agent", "owner": "user1"} and contents(thread["values"]) == ["secret", "more"]
    thread_id = thread["thread_id"]
    before = user1.threads.get_history(thread_id)

    for if_exists in ("raise", "do_nothing"):
        with pytest.raises(ConflictError) as refused:
            user2.threads.create(thread_id=thread_id, if_exists=if_exists, graph_id="agent", supersteps=[{"updates": [{"values": message("bob"), "as_node": "respond"}]}])
        assert "secret" not in refused.value.response.text
    again = user1.threads.create(thread_id=thread_id, if_exists="do_nothing", graph_id="agent", supersteps=[{"updates": [{"values": message("again"), "as_node": "respond"}]}])
    assert contents(again["values"]) == ["secret", "more"]
    assert user1.threads.get_history(thread_id) == before
    with pytest.raises(NotFoundError):
        user2.threads.get_state(thread_id)
    # User2's own thread, made the same way, is theirs alone.
    theirs = user2.threads.create(graph_id="agent", supersteps=[{"updates": [{"values": message("bob"), "as_node": "respond"}]}])
    assert [thread["thread_id"] for thread in user1.threads.search()] == [thread_id]
    with pytest.raises(NotFoundError):
        user1.threads.get(theirs["thread_id"])
    # Without credentials: refused before anything.
    thread_id = str(uuid.uuid4())
    anonymous = httpx.post(f"{server.url}/threads", json={"thread_id": thread_id, "metadata": {"graph_id": "agent"}, "supersteps": [{"updates": [{"values": message("x"), "as_node": "respond"}]}]})
    assert anonymous.status_code == 401
    with pytest.raises(NotFoundError):
        user1.threads.get(thread_id)


# --------------------------------------------------------------------------------------------
# GET /ok?check_db


def test_ok_checks_the_database_when_asked(open_server):
    """`check_db` is an integer, as the reference reads it (`int()`): non-zero probes the
    database; anything else is a 400 in the reference's words. `/` answers the same."""
    for path in ("/ok", "/"):
        for query in ("", "?check_db=1", "?check_db=0", "?check_db=2", "?check_db=%201%20"):
            reply = httpx.get(f"{open_server.url}{path}{query}")
            assert (reply.status_code, reply.json()) == (200, {"ok": True, "services": {}}), (path, query)
        for raw, shown in (("abc", "'abc'"), ("", "''"), ("true", "'true'"), ("1.5", "'1.5'")):
            reply = httpx.get(f"{open_server.url}{path}", params={"check_db": raw})
            assert (reply.status_code, reply.json()) == (400, {"detail": f"invalid literal for int() with base 10: {shown}"}), (path, raw)


def test_ok_is_unhealthy_when_the_database_does_not_answer(make_server):
    """A database that does not answer within 3 s (a failpoint stalls the probe) makes
    `check_db=1` a 500 naming the database; without `check_db` the server still answers."""
    server = make_server({"langgraph.json": json.dumps({"graphs": {"agent": f"{EXAMPLES / 'agent.py'}:graph"}})}, env={"GRAPHWARD_FAILPOINTS": "health-check=5000"})
    started = time.monotonic()
    reply = httpx.get(f"{server.url}/ok?check_db=1", timeout=30)
    assert (reply.status_code, reply.json()) == (500, {"ok": False, "services": {"database": "unhealthy"}})
    assert 2.5 < time.monotonic() - started < 5
    assert httpx.get(f"{server.url}/ok").json() == {"ok": True, "services": {}}


def test_ok_needs_no_credentials_with_auth(make_server):
    server = start_app(make_server, auth=True)
    assert httpx.get(f"{server.url}/ok?check_db=1").json() == {"ok": True, "services": {}}


# --------------------------------------------------------------------------------------------
# The `tools` and `lifecycle` stream modes on run streams


def test_tools_and_lifecycle_run_stream_modes_are_refused_as_by_the_reference(make_server):
    """The SDKs' StreamMode names `tools` and `lifecycle`, but the reference's run schema
    refuses both (422) on every run route; graphward does the same, naming the mode. (Its
    v3 event stream carries `tools` and `lifecycle` channels: test_event_stream.py.)"""
    server = start_app(make_server, auth=False)
    sdk = get_sync_client(url=server.url)
    thread_id = sdk.threads.create()["thread_id"]
    for modes in ("tools", "lifecycle", ["values", "tools"], ["lifecycle", "updates"]):
        for call in (
            lambda modes=modes: list(sdk.runs.stream(thread_id, "tools", input=message("hey"), stream_mode=modes)),
            lambda modes=modes: list(sdk.runs.stream(None, "tools", input=message("hey"), stream_mode=modes)),
            lambda modes=modes: sdk.runs.create(thread_id, "tools", input=message("hey"), stream_mode=modes),
        ):
            with pytest.raises(UnprocessableEntityError) as refused:
                call()
            detail = refused.value.response.json()["detail"]
            assert "is not a stream mode" in detail and ("'tools'" in detail or "'lifecycle'" in detail), detail
        for path in (f"/threads/{thread_id}/runs/wait", "/runs/wait", f"/threads/{thread_id}/runs/crons"):
            reply = httpx.post(f"{server.url}{path}", json={"assistant_id": "tools", "input": message("hey"), "stream_mode": modes, "schedule": "0 0 1 1 *"})
            assert reply.status_code == 422 and "is not a stream mode" in reply.json()["detail"], (path, reply.text)
    assert sdk.runs.list(thread_id) == []
    assert httpx.post(f"{server.url}/runs/crons/search", json={}).json() == []
    # A cron's stream modes are checked when it is made or changed, not at its firing.
    cron = sdk.crons.create_for_thread(thread_id, "tools", schedule="0 0 1 1 *", stream_mode=["values", "updates"])
    reply = httpx.patch(f"{server.url}/runs/crons/{cron['cron_id']}", json={"stream_mode": ["tools"]})
    assert reply.status_code == 422 and "'tools' is not a stream mode" in reply.json()["detail"], reply.text


def test_the_tool_graph_streams_its_tool_call_and_answer(make_server):
    """The tool graph (apps/tool_graph.py: a node that asks for a tool call, langgraph's
    ToolNode answering it) through the modes the run API has: `updates` show the AI message
    with the call, the tool's message and the final answer; the thread stream carries them."""
    server = start_app(make_server, auth=False)
    sdk = get_sync_client(url=server.url)
    thread_id = sdk.threads.create()["thread_id"]
    parts = [part for part in sdk.runs.stream(thread_id, "tools", input=message("hey"), stream_mode="updates") if part.event == "updates"]
    assert [next(iter(part.data)) for part in parts] == ["call", "tools", "call"]
    call = parts[0].data["call"]["messages"][0]
    assert call["tool_calls"] == [{"name": "shout", "args": {"text": "hey"}, "id": "call-1", "type": "tool_call"}]
    answer = parts[1].data["tools"]["messages"][0]
    assert (answer["type"], answer["content"], answer["tool_call_id"], answer["name"]) == ("tool", "HEY", "call-1", "shout")
    assert contents(sdk.threads.get_state(thread_id)["values"]) == ["hey", "", "HEY", "done: HEY"]


SLOW = '''
import asyncio
from typing import Annotated, TypedDict

from langgraph.graph import END, START, StateGraph


def append(left, right):
    return (left or []) + (right or [])


class State(TypedDict, total=False):
    seen: Annotated[list, append]


async def first(state):
    await asyncio.sleep(0.8)
    return {"seen": ["first"]}


async def second(state):
    await asyncio.sleep(0.8)
    return {"seen": ["second"]}


builder = StateGraph(State)
builder.add_node("first", first)
builder.add_node("second", second)
builder.add_edge(START, "first")
builder.add_edge("first", "second")
builder.add_edge("second", END)
slow = builder.compile()
'''


def test_a_filtered_join_sends_only_the_modes_it_names(make_server):
    """`client.runs.join_stream(…, stream_mode=…)` of a running run, as the reference answers
    it: only the events of the named modes — no `metadata` event unless named, nothing for
    `tools` (no run streams it); unfiltered, the `metadata` event first."""
    server = make_server({"langgraph.json": json.dumps({"graphs": {"slow": "./slow.py:slow"}}), "slow.py": SLOW})
    sdk = get_sync_client(url=server.url)
    thread_id = sdk.threads.create()["thread_id"]
    for resumable in (True, False):
        # (A non-resumable run's `metadata` event, once the run started, is not replayed by
        # the reference at all: not asserted here.)
        cases = [("updates", ["updates", "updates"]), ("tools", []), ("lifecycle", [])]
        if resumable:
            cases += [("metadata", ["metadata"]), (["updates", "metadata"], ["metadata", "updates", "updates"])]
        for modes, expected in cases:
            run = sdk.runs.create(thread_id, "slow", input={}, stream_mode=["values", "updates"], stream_resumable=resumable)
            deadline = time.monotonic() + 15
            while sdk.runs.get(thread_id, run["run_id"])["status"] != "running" and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.2)
            events = [part.event for part in sdk.runs.join_stream(thread_id, run["run_id"], stream_mode=modes)]
            assert events == expected, (resumable, modes, events)
            sdk.runs.join(thread_id, run["run_id"])
    run = sdk.runs.create(thread_id, "slow", input={}, stream_mode=["values", "updates"], stream_resumable=True)
    events = [part.event for part in sdk.runs.join_stream(thread_id, run["run_id"])]
    assert events[0] == "metadata" and events.count("updates") == 2, events


# --------------------------------------------------------------------------------------------
# state_update events on the thread stream


# How long a join is given to be subscribed before the test writes: a stream has no event
# that says so, and a loaded machine (the whole suite on 2 cores) needs more than a second.
JOINED = 2.5


async def collect(client, thread_id: str, modes, out: list) -> None:
    async for part in await client.threads.join_stream(thread_id, stream_mode=modes):
        out.append(part)


async def wait_until(condition, what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.anyio
async def test_a_state_update_is_sent_on_the_thread_stream(make_server):
    """As the reference does (asked with `stream_modes`; graphward also reads the SDK's
    `stream_mode`): `POST /threads/{id}/state` while a client is joined sends a `state_update`
    event, `{"state": <the thread's state now>, "thread_id": …}`. `run_modes` (the default)
    and `lifecycle` do not carry it; a run does not send one."""
    server = start_app(make_server, auth=False)
    sdk = get_client(url=server.url)
    thread_id = (await sdk.threads.create(graph_id="agent"))["thread_id"]
    seen = {"state_update": [], "run_modes": [], "lifecycle": [], "both": []}
    modes = {"state_update": "state_update", "run_modes": "run_modes", "lifecycle": "lifecycle", "both": ["run_modes", "state_update"]}
    tasks = [asyncio.create_task(collect(sdk, thread_id, modes[name], seen[name])) for name in seen]
    try:
        await asyncio.sleep(JOINED)
        await sdk.threads.update_state(thread_id, message("u1"), as_node="respond")
        await sdk.threads.update_state(thread_id, message("u2"))
        await wait_until(lambda: len(seen["state_update"]) == 2 and len(seen["both"]) == 2, "two state updates")
        first, second = seen["state_update"]
        assert (first.event, set(first.data)) == ("state_update", {"state", "thread_id"}) and first.data["thread_id"] == thread_id
        assert contents(first.data["state"]["values"]) == ["u1"] and first.data["state"]["next"] == []
        assert contents(second.data["state"]["values"]) == ["u1", "u2"] and second.data["state"]["next"] == ["respond"]
        assert second.data["state"] == await sdk.threads.get_state(thread_id)
        # A run: its events on run_modes, no state_update.
        await sdk.runs.wait(thread_id, "agent", input=message("run"))
        await wait_until(lambda: any(part.data.get("status") == "run_done" for part in seen["run_modes"] if part.event == "metadata"), "the run on the thread stream")
        await wait_until(lambda: len(seen["lifecycle"]) == 2, "the run's lifecycle events")
        await asyncio.sleep(0.5)
        assert [part.event for part in seen["state_update"]] == ["state_update", "state_update"]
        assert "state_update" not in [part.event for part in seen["run_modes"] + seen["lifecycle"]]
        assert [part.event for part in seen["both"]][:2] == ["state_update", "state_update"] and "values" in [part.event for part in seen["both"]]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@pytest.mark.anyio
async def test_state_updates_reach_only_the_threads_own_readers(make_server):
    """Two users: user2, joined on their own thread and trying to join user1's, never sees
    user1's state updates (their join on user1's thread is the reference's 404 error event);
    user1, joined on their own thread, sees theirs. When user1's thread is deleted and user2
    takes its id, user1's stream has ended and user2's updates never reach user1."""
    server = start_app(make_server, auth=True)
    user1, user2 = get_client(url=server.url, headers=USER1), get_client(url=server.url, headers=USER2)
    mine = (await user1.threads.create(graph_id="agent"))["thread_id"]
    theirs = (await user2.threads.create(graph_id="agent"))["thread_id"]
    seen = {"user1": [], "user2-own": [], "user2-peek": []}
    tasks = [
        asyncio.create_task(collect(user1, mine, "state_update", seen["user1"])),
        asyncio.create_task(collect(user2, theirs, ["state_update", "run_modes", "lifecycle"], seen["user2-own"])),
        asyncio.create_task(collect(user2, mine, ["state_update", "run_modes", "lifecycle"], seen["user2-peek"])),
    ]
    try:
        await asyncio.sleep(JOINED)
        await user1.threads.update_state(mine, message("alice-secret"), as_node="respond")
        await wait_until(lambda: len(seen["user1"]) == 1, "user1's state update")
        assert contents(seen["user1"][0].data["state"]["values"]) == ["alice-secret"]
        with pytest.raises(NotFoundError):
            await user2.threads.update_state(mine, message("bob"), as_node="respond")
        await asyncio.sleep(1)
        assert len(seen["user1"]) == 1
        assert seen["user2-own"] == []
        assert [part.event for part in seen["user2-peek"]] == ["error"], seen["user2-peek"]
        assert "alice-secret" not in repr(seen["user2-own"] + seen["user2-peek"])

        # User1's thread deleted, its id taken by user2: user1's stream ends and never carries
        # user2's updates; user1 joining it now is refused.
        await user1.threads.delete(mine)
        await wait_until(lambda: tasks[0].done(), "user1's stream to end with the thread")
        await user2.threads.create(thread_id=mine, graph_id="agent")
        late = []
        tasks.append(asyncio.create_task(collect(user2, mine, "state_update", late)))
        tasks.append(asyncio.create_task(collect(user1, mine, "state_update", seen["user1"])))
        await asyncio.sleep(JOINED)
        await user2.threads.update_state(mine, message("bob-secret"), as_node="respond")
        await wait_until(lambda: len(late) == 1, "user2's state update on the id they took")
        assert contents(late[0].data["state"]["values"]) == ["bob-secret"]
        await asyncio.sleep(0.5)
        assert "bob-secret" not in repr(seen["user1"]) and [part.event for part in seen["user1"]][1:] == ["error"], seen["user1"]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# --------------------------------------------------------------------------------------------
# Options that already matched the reference


def test_a_null_namespace_prefix_is_ignored_as_by_the_reference(example_server):
    """`POST /store/namespaces` with `namespace_prefix: null` (a key the API does not have)
    lists as without it, as in the reference; each user sees only their namespaces (the
    example's store handler)."""
    user1, user2 = get_sync_client(url=example_server.url, headers=USER1), get_sync_client(url=example_server.url, headers=USER2)
    tag = f"p2-{uuid.uuid4().hex[:8]}"
    for client, namespace in ((user1, ["user1", tag, "a"]), (user1, ["user1", tag, "b", "c"]), (user2, ["user2", tag, "z"])):
        client.store.put_item(namespace, "k", {"v": 1})
    for user, mine in ((USER1, [["user1", tag, "a"], ["user1", tag, "b", "c"]]), (USER2, [["user2", tag, "z"]])):
        prefix = mine[0][:2]
        for body in ({"prefix": prefix, "namespace_prefix": None}, {"prefix": prefix}, {"prefix": prefix, "namespace_prefix": ["someone-else"]}):
            reply = httpx.post(f"{example_server.url}/store/namespaces", json=body, headers=user)
            assert (reply.status_code, reply.json()) == (200, {"namespaces": mine}), (user, body)
    # Another user's prefix, with or without the key: refused by the handler.
    for body in ({"prefix": ["user1", tag], "namespace_prefix": None}, {"namespace_prefix": None}):
        assert httpx.post(f"{example_server.url}/store/namespaces", json=body, headers=USER2).status_code == 403
    assert user1.store.list_namespaces(prefix=["user1", tag]) == {"namespaces": [["user1", tag, "a"], ["user1", tag, "b", "c"]]}


def test_set_latest_with_a_version_body_matches_the_reference(example_server):
    """`client.assistants.set_latest(id, version)` (a `{"version": n}` body) makes that
    version the assistant's; an unknown version is 404 and a string 422, as in the reference;
    another user's assistant is 404 and stays as it is."""
    user1, user2 = get_sync_client(url=example_server.url, headers=USER1), get_sync_client(url=example_server.url, headers=USER2)
    assistant = user1.assistants.create("agent", config={"configurable": {"v": 1}})
    assistant_id = assistant["assistant_id"]
    user1.assistants.update(assistant_id, config={"configurable": {"v": 2}})
    latest = user1.assistants.set_latest(assistant_id, 1)
    assert (latest["version"], latest["config"]["configurable"]) == (1, {"v": 1})
    assert user1.assistants.get(assistant_id)["version"] == 1
    with pytest.raises(NotFoundError) as missing:
        user1.assistants.set_latest(assistant_id, 9)
    assert missing.value.response.json() == {"detail": f"Version 9 not found for assistant {assistant_id}"}
    reply = httpx.post(f"{example_server.url}/assistants/{assistant_id}/latest", json={"version": "2"}, headers=USER1)
    assert reply.status_code == 422
    with pytest.raises(NotFoundError) as hidden:
        user2.assistants.set_latest(assistant_id, 2)
    assert hidden.value.response.json() == {"detail": f"Assistant {assistant_id} not found"}
    assert user1.assistants.get(assistant_id)["version"] == 1
