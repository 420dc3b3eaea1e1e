"""The v3 event-streaming protocol (`client.threads.stream()`, `RemoteGraph.stream_events(
version="v3")`): `POST /threads/{id}/commands` and `/threads/{id}/stream/events` over SSE and
WebSocket, with the example app's two users."""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid

import httpx
import pytest
from langgraph.pregel.remote import RemoteGraph
from langgraph_sdk import get_client, get_sync_client
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus

from conftest import REPO, Server

ALICE = {"Authorization": "Bearer user1-token"}
BOB = {"Authorization": "Bearer user2-token"}
HI = {"messages": [{"role": "human", "content": "hi"}]}
APPS = REPO / "tests" / "e2e" / "apps"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("event-stream-app")
    for source in [REPO / "examples" / "agent.py", REPO / "examples" / "auth.py", APPS / "interrupt_graph.py", APPS / "event_graphs.py"]:
        shutil.copy(source, folder / source.name)
    (folder / "langgraph.json").write_text(json.dumps({
        "dependencies": ["."],
        "graphs": {"agent": "./agent.py:graph", "approve": "./interrupt_graph.py:graph", "failing": "./interrupt_graph.py:failing_graph", "tools": "./event_graphs.py:graph"},
        "auth": {"path": "./auth.py:my_auth"},
    }))
    started = Server(folder / "langgraph.json")
    yield started
    started.stop()


def texts(values) -> list[str]:
    return [message["content"] for message in values["messages"]]


@pytest.mark.anyio
@pytest.mark.parametrize("transport", ["sse", "websocket"])
async def test_async_stream_runs_the_example_assistant(server, transport):
    client = get_client(url=server.url, headers=ALICE)
    async with client.threads.stream(assistant_id="agent", transport=transport, headers=ALICE) as thread:
        await thread.run.start(input=HI)
        snapshots = [snapshot async for snapshot in thread.values]
        output = await thread.output.with_timeout(30)
    assert texts(snapshots[-1]) == ["hi", "echo: hi"]
    assert texts(output) == ["hi", "echo: hi"]
    state = await client.threads.get_state(thread.thread_id)
    assert texts(state["values"]) == ["hi", "echo: hi"]
    # The thread is Alice's: stamped with her identity like any run's thread.
    assert (await client.threads.get(thread.thread_id))["metadata"]["owner"] == "user1"


@pytest.mark.anyio
@pytest.mark.parametrize("transport", ["sse", "websocket"])
async def test_messages_tools_and_custom_events(server, transport):
    client = get_client(url=server.url, headers=ALICE)
    async with client.threads.stream(assistant_id="tools", transport=transport, headers=ALICE) as thread:
        events = []

        async def collect():
            async for event in thread.subscribe(["messages", "tools", "custom", "lifecycle", "updates", "checkpoints"]):
                events.append(event)
                if event["method"] == "lifecycle" and event["params"]["data"]["event"] == "completed" and not event["params"]["namespace"]:
                    return

        collector = asyncio.create_task(collect())
        await thread.run.start(input={"messages": [{"role": "human", "content": "cats"}]})
        await asyncio.wait_for(collector, 30)
        await thread.output.with_timeout(30)
    methods = [(event["method"], event["params"]["data"].get("event")) for event in events if isinstance(event["params"]["data"], dict)]
    assert ("lifecycle", "running") in methods
    assert ("messages", "message-start") in methods and ("messages", "message-finish") in methods
    started = next(event["params"]["data"] for event in events if event["method"] == "tools" and event["params"]["data"]["event"] == "tool-started")
    assert started == {"event": "tool-started", "tool_call_id": "call-1", "tool_name": "lookup", "input": {"q": "cats"}}
    finished = next(event["params"]["data"] for event in events if event["method"] == "tools" and event["params"]["data"]["event"] == "tool-finished")
    assert finished["output"] == "found cats"
    custom = next(event["params"]["data"] for event in events if event["method"] == "custom")
    assert custom == {"name": "progress", "step": "model"}
    checkpoint = next(event["params"]["data"] for event in events if event["method"] == "checkpoints")
    assert set(checkpoint) >= {"id", "step", "source"}
    finals = [event["params"]["data"]["content"]["text"] for event in events if event["method"] == "messages" and event["params"]["data"]["event"] == "content-block-finish" and event["params"]["data"]["content"]["type"] == "text"]
    assert "done: found cats" in finals
    seqs = [event["seq"] for event in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


@pytest.mark.anyio
@pytest.mark.parametrize("transport", ["sse", "websocket"])
async def test_an_interrupt_is_answered_with_respond(server, transport):
    client = get_client(url=server.url, headers=ALICE)
    async with client.threads.stream(assistant_id="approve", transport=transport, headers=ALICE) as thread:
        await thread.run.start(input=HI)
        for _ in range(300):
            if thread.interrupted:
                break
            await asyncio.sleep(0.05)
        assert thread.interrupted
        assert thread.interrupts[0]["value"] == {"question": "approve?"}
        await thread.run.respond("yes")
        output = await thread.output.with_timeout(30)
    assert texts(output) == ["hi", "answer: yes"]


@pytest.mark.anyio
async def test_a_failing_run_fails_its_output(server):
    client = get_client(url=server.url, headers=ALICE)
    async with client.threads.stream(assistant_id="failing") as thread:
        await thread.run.start(input=HI)
        with pytest.raises(Exception, match="boom failure"):
            await thread.output.with_timeout(30)


@pytest.mark.parametrize("transport", ["sse", "websocket"])
def test_sync_stream_runs_the_example_assistant(server, transport):
    client = get_sync_client(url=server.url, headers=ALICE)
    with client.threads.stream(assistant_id="agent", transport=transport, headers=ALICE) as thread:
        thread.run.start(input=HI)
        snapshots = list(thread.values)
        output = thread.output
    assert texts(snapshots[-1]) == ["hi", "echo: hi"]
    assert texts(output) == ["hi", "echo: hi"]


def test_remote_graph_stream_events_v3(server):
    remote = RemoteGraph("agent", url=server.url, headers=ALICE)
    config = {"configurable": {"thread_id": str(uuid.uuid4())}}
    with remote.stream_events(HI, config, version="v3") as run:
        snapshots = list(run.values)
        output = run.output
    assert texts(snapshots[-1]) == ["hi", "echo: hi"]
    assert texts(output) == ["hi", "echo: hi"]


@pytest.mark.anyio
async def test_remote_graph_astream_events_v3(server):
    remote = RemoteGraph("agent", url=server.url, headers=ALICE)
    async with await remote.astream_events(HI, {"configurable": {"thread_id": str(uuid.uuid4())}}, version="v3") as run:
        snapshots = [snapshot async for snapshot in run.values]
    assert texts(snapshots[-1]) == ["hi", "echo: hi"]


def command(server, thread_id, body, headers):
    return httpx.post(f"{server.url}/threads/{thread_id}/commands", json=body, headers=headers, timeout=30)


def sse_events(server, thread_id, headers, body, seconds=2.0):
    """The status and the events an SSE subscription gets within `seconds`."""
    events = []
    try:
        with httpx.stream("POST", f"{server.url}/threads/{thread_id}/stream/events", json=body, headers=headers, timeout=seconds) as response:
            if response.status_code != 200:
                return response.status_code, []
            for line in response.iter_lines():
                if line.startswith("data: "):
                    events.append(json.loads(line[6:]))
    except httpx.ReadTimeout:
        pass
    return 200, events


def interrupted_thread_of_alice(server):
    thread_id = str(uuid.uuid4())
    started = command(server, thread_id, {"id": 1, "method": "run.start", "params": {"assistant_id": "approve", "input": HI}}, ALICE)
    assert started.json()["type"] == "success"
    for _ in range(300):
        state = httpx.get(f"{server.url}/threads/{thread_id}", headers=ALICE).json()
        if state["status"] == "interrupted":
            return thread_id, state
        asyncio.run(asyncio.sleep(0.05))
    raise AssertionError("the run did not reach its interrupt")


def test_other_users_cannot_start_respond_or_subscribe(server):
    thread_id, before = interrupted_thread_of_alice(server)
    interrupt_id = next(iter(before["interrupts"].values()))[0]["id"]
    # Bob: 404 for every command and for the stream, and Alice's thread is unchanged.
    assert command(server, thread_id, {"id": 1, "method": "run.start", "params": {"assistant_id": "agent", "input": HI}}, BOB).status_code == 404
    assert command(server, thread_id, {"id": 2, "method": "input.respond", "params": {"namespace": [], "interrupt_id": interrupt_id, "response": "bob"}}, BOB).status_code == 404
    for method in ["subscription.subscribe", "agent.getTree"]:
        assert command(server, thread_id, {"id": 3, "method": method, "params": {"channels": ["values"]}}, BOB).status_code == 404
    assert sse_events(server, thread_id, BOB, {"channels": ["values", "lifecycle", "input"]}) == (404, [])
    assert sse_events(server, thread_id, BOB, {"channels": ["values"], "since": 0}) == (404, [])
    after = httpx.get(f"{server.url}/threads/{thread_id}", headers=ALICE).json()
    assert after["status"] == "interrupted" and after["values"] == before["values"]
    assert len(httpx.get(f"{server.url}/threads/{thread_id}/runs", headers=ALICE).json()) == 1
    # Alice sees her events and can answer.
    status, events = sse_events(server, thread_id, ALICE, {"channels": ["input", "lifecycle"]})
    assert status == 200 and [event["method"] for event in events] == ["lifecycle", "input.requested", "lifecycle"]
    # A reconnect with `since` (or Last-Event-ID) gets only what came after.
    assert [event["seq"] for event in sse_events(server, thread_id, ALICE, {"channels": ["input", "lifecycle"], "since": events[1]["seq"]})[1]] == [events[2]["seq"]]
    resumed = httpx.Client(headers={**ALICE, "Last-Event-ID": str(events[1]["seq"])})
    with resumed.stream("POST", f"{server.url}/threads/{thread_id}/stream/events", json={"channels": ["lifecycle"]}, timeout=2) as response:
        first = next(line for line in response.iter_lines() if line.startswith("data: "))
    assert json.loads(first[6:])["seq"] == events[2]["seq"]
    answered = command(server, thread_id, {"id": 4, "method": "input.respond", "params": {"namespace": [], "interrupt_id": interrupt_id, "response": "ok"}}, ALICE)
    assert answered.json()["type"] == "success"


def test_without_credentials_401(server):
    thread_id = str(uuid.uuid4())
    assert command(server, thread_id, {"id": 1, "method": "run.start", "params": {"assistant_id": "agent", "input": HI}}, {}).status_code == 401
    assert command(server, thread_id, {"not": "a command"}, {}).status_code == 401
    assert sse_events(server, thread_id, {}, {"channels": ["values"]}) == (401, [])


@pytest.mark.anyio
async def test_websocket_refuses_other_users_and_anonymous(server):
    thread_id, _ = await asyncio.to_thread(interrupted_thread_of_alice, server)
    url = server.url.replace("http://", "ws://") + f"/threads/{thread_id}/stream/events"
    for headers, status in [(BOB, 404), ({}, 401)]:
        with pytest.raises(InvalidStatus) as refused:
            async with ws_connect(url, additional_headers=headers):
                pass
        assert refused.value.response.status_code == status
    # Alice's socket: commands and events on one connection.
    async with ws_connect(url, additional_headers=ALICE) as socket:
        await socket.send(json.dumps({"id": 1, "method": "subscription.subscribe", "params": {"channels": ["input"], "since": 0}}))
        frames = [json.loads(await asyncio.wait_for(socket.recv(), 10)) for _ in range(2)]
    assert frames[0]["type"] == "success" and frames[0]["result"]["subscription_id"]
    assert frames[1]["method"] == "input.requested"


def test_command_errors(server):
    thread_id = str(uuid.uuid4())
    bad = command(server, thread_id, {"nope": 1}, ALICE)
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_argument"
    assert command(server, thread_id, {"id": 1, "method": "bogus"}, ALICE).json()["error"] == "unknown_command"
    assert command(server, thread_id, {"id": 2, "method": "run.start", "params": {}}, ALICE).json()["error"] == "invalid_argument"
    assert command(server, thread_id, {"id": 3, "method": "run.start", "params": {"assistant_id": "nope"}}, ALICE).status_code == 422
    unknown = httpx.post(f"{server.url}/threads/{thread_id}/stream/events", json={"channels": ["nope"]}, headers=ALICE)
    assert unknown.status_code == 422


def test_run_start_after_a_state_update_runs_its_input(server):
    """A state update leaves the thread `interrupted` with a next task but no interrupt: a
    `run.start` there is a run of its input, not a resume that drops it (found by the hunter)."""
    thread_id = str(uuid.uuid4())
    assert httpx.post(f"{server.url}/threads", json={"thread_id": thread_id, "metadata": {"graph_id": "agent"}}, headers=ALICE).status_code == 200
    updated = httpx.post(f"{server.url}/threads/{thread_id}/state", json={"values": {"messages": [{"role": "human", "content": "before"}]}}, headers=ALICE)
    assert updated.status_code == 200
    record = httpx.get(f"{server.url}/threads/{thread_id}", headers=ALICE).json()
    assert record["status"] == "interrupted" and not any(record["interrupts"].values())
    started = command(server, thread_id, {"id": 1, "method": "run.start", "params": {"assistant_id": "agent", "input": {"messages": [{"role": "human", "content": "after"}]}}}, ALICE)
    assert started.json()["type"] == "success"
    run_id = started.json()["result"]["run_id"]
    values = httpx.get(f"{server.url}/threads/{thread_id}/runs/{run_id}/join", headers=ALICE, timeout=30).json()
    assert texts(values) == ["before", "after", "echo: after"]  # as the reference answers


async def socket_frames(socket, seconds: float) -> list[dict]:
    """What a socket receives within `seconds`."""
    frames = []
    try:
        while True:
            frames.append(json.loads(await asyncio.wait_for(socket.recv(), seconds)))
    except TimeoutError:
        return frames


@pytest.mark.anyio
async def test_websocket_on_a_new_thread_binds_it_once_it_is_the_callers(server):
    """The JS client opens its socket on a new thread's id before `run.start`: the handshake of
    a thread nobody has is accepted, a subscription is kept, and the run's events arrive once
    the run has created the thread as the caller's."""
    thread_id = str(uuid.uuid4())
    url = server.url.replace("http://", "ws://") + f"/threads/{thread_id}/stream/events"
    async with ws_connect(url, additional_headers=ALICE) as socket:
        await socket.send(json.dumps({"id": 1, "method": "subscription.subscribe", "params": {"channels": ["values", "lifecycle"]}}))
        subscribed = json.loads(await asyncio.wait_for(socket.recv(), 10))
        assert subscribed["type"] == "success" and subscribed["meta"]["applied_through_seq"] == 0
        await socket.send(json.dumps({"id": 2, "method": "run.start", "params": {"assistant_id": "agent", "input": HI}}))
        frames = []
        while not any(frame.get("method") == "lifecycle" and frame["params"]["data"].get("event") == "completed" for frame in frames):
            frames.append(json.loads(await asyncio.wait_for(socket.recv(), 30)))
    assert any(frame.get("id") == 2 and frame["type"] == "success" for frame in frames)
    values = [frame["params"]["data"] for frame in frames if frame.get("method") == "values"]
    assert texts(values[-1]) == ["hi", "echo: hi"]
    assert httpx.get(f"{server.url}/threads/{thread_id}", headers=ALICE).json()["metadata"]["owner"] == "user1"


@pytest.mark.anyio
async def test_a_socket_opened_before_another_user_takes_the_id_sees_nothing_of_theirs(server):
    """Alice opens a socket on an id nobody has and subscribes; Bob then creates a thread with
    that id and runs on it. Alice's socket never receives Bob's events; her later commands on
    it are refused as for any thread of another user's, and a new socket is a 404."""
    thread_id = str(uuid.uuid4())
    secret = f"bob-secret-{uuid.uuid4().hex[:6]}"
    url = server.url.replace("http://", "ws://") + f"/threads/{thread_id}/stream/events"
    async with ws_connect(url, additional_headers=ALICE) as socket:
        await socket.send(json.dumps({"id": 1, "method": "subscription.subscribe", "params": {"channels": ["values", "lifecycle", "messages", "updates"]}}))
        assert json.loads(await asyncio.wait_for(socket.recv(), 10))["type"] == "success"
        bob = httpx.Client(base_url=server.url, headers=BOB, timeout=30)
        bob.post("/threads", json={"thread_id": thread_id}).raise_for_status()
        bob.post(f"/threads/{thread_id}/runs/wait", json={"assistant_id": "agent", "input": {"messages": [{"role": "human", "content": secret}]}}).raise_for_status()
        started = command(server, thread_id, {"id": 1, "method": "run.start", "params": {"assistant_id": "agent", "input": {"messages": [{"role": "human", "content": secret}]}}}, BOB)
        assert started.json()["type"] == "success"
        bob.get(f"/threads/{thread_id}/runs/{started.json()['result']['run_id']}/join").raise_for_status()
        for index, method in enumerate(["subscription.subscribe", "agent.getTree", "run.start"], start=2):
            params = {"channels": ["values"]} if method == "subscription.subscribe" else {"assistant_id": "agent", "input": HI} if method == "run.start" else {}
            await socket.send(json.dumps({"id": index, "method": method, "params": params}))
        frames = await socket_frames(socket, 3)
    assert secret not in json.dumps(frames)
    assert not any(frame.get("type") == "event" for frame in frames), frames
    assert [frame["type"] for frame in frames] == ["error", "error", "error"], frames
    assert len(bob.get(f"/threads/{thread_id}/runs").json()) == 2
    with pytest.raises(InvalidStatus) as refused:
        async with ws_connect(url, additional_headers=ALICE):
            pass
    assert refused.value.response.status_code == 404
