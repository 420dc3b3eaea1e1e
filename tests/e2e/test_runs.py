"""Runs, streaming and thread state through the official Python client and RemoteGraph,
under examples/auth.py (spec runs.md)."""

from __future__ import annotations

import json
import shutil
import time

import httpx
import pytest
from langgraph.pregel.remote import RemoteGraph
from langgraph_sdk import get_client, get_sync_client
from langgraph_sdk.errors import ConflictError, NotFoundError

from conftest import POSTGRES, REPO, Server

USER1 = {"Authorization": "Bearer user1-token"}
USER2 = {"Authorization": "Bearer user2-token"}
HI = {"messages": [{"role": "human", "content": "hi"}]}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    app = tmp_path_factory.mktemp("runs-app")
    shutil.copytree(REPO / "examples", app / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "tests" / "e2e" / "apps" / "interrupt_graph.py", app / "interrupt_graph.py")
    config = {
        "dependencies": ["./examples"],
        "graphs": {"agent": "./examples/agent.py:graph", "interrupt": "./interrupt_graph.py:graph", "failing": "./interrupt_graph.py:failing_graph"},
        "auth": {"path": "./examples/auth.py:my_auth"},
    }
    (app / "langgraph.json").write_text(json.dumps(config))
    running = Server(app / "langgraph.json")
    yield running
    running.stop()


def texts(values):
    return [message["content"] for message in values["messages"]]


@pytest.mark.anyio
async def test_wait_stream_join_and_state(server):
    client = get_client(url=server.url, headers=USER1)
    thread = await client.threads.create()
    tid = thread["thread_id"]
    result = await client.runs.wait(tid, "agent", input=HI)
    assert texts(result) == ["hi", "echo: hi"]
    parts = [part async for part in client.runs.stream(tid, "agent", input={"messages": [{"role": "human", "content": "again"}]}, stream_mode=["values", "updates"])]
    assert [part.event for part in parts] == ["metadata", "values", "updates", "values"]
    assert parts[2].data == {"respond": {"messages": [{"role": "ai", "content": "echo: again"}]}}
    run = await client.runs.create(tid, "agent", input={"messages": [{"role": "human", "content": "third"}]})
    assert run["status"] == "pending"
    joined = await client.runs.join(tid, run["run_id"])
    assert texts(joined)[-1] == "echo: third"
    assert (await client.runs.get(tid, run["run_id"]))["status"] == "success"
    runs = await client.runs.list(tid)
    assert len(runs) == 3 and runs[0]["run_id"] == run["run_id"]

    state = await client.threads.get_state(tid)
    assert texts(state["values"])[-1] == "echo: third" and state["next"] == []
    assert state["checkpoint"]["thread_id"] == tid and state["metadata"]["graph_id"] == "agent"
    history = await client.threads.get_history(tid, limit=20)
    assert len(history) >= 6 and history[0]["checkpoint_id"] == state["checkpoint_id"]
    thread = await client.threads.get(tid)
    assert thread["status"] == "idle" and texts(thread["values"])[-1] == "echo: third"
    assert thread["metadata"]["graph_id"] == "agent" and thread["metadata"]["owner"] == "user1"

    other = get_client(url=server.url, headers=USER2)
    # `runs.wait` surfaces the raw httpx error (the SDK does not map it).
    with pytest.raises(httpx.HTTPStatusError) as raised:
        await other.runs.wait(tid, "agent", input=HI)
    assert raised.value.response.status_code == 404
    with pytest.raises(NotFoundError):
        await other.threads.get_state(tid)
    with pytest.raises(NotFoundError):
        await other.runs.get(tid, run["run_id"])
    with pytest.raises(NotFoundError):
        await other.runs.list(tid)
    bad = get_client(url=server.url, headers={"Authorization": "Bearer nope"})
    with pytest.raises(httpx.HTTPStatusError) as raised:
        await bad.runs.wait(tid, "agent", input=HI)
    assert raised.value.response.status_code == 401


def test_interrupt_and_resume(server):
    client = get_sync_client(url=server.url, headers=USER1)
    thread = client.threads.create()
    tid = thread["thread_id"]
    paused = client.runs.wait(tid, "interrupt", input={"messages": [{"role": "human", "content": "q"}]})
    assert paused["__interrupt__"][0]["value"] == {"question": "approve?"}
    thread = client.threads.get(tid)
    assert thread["status"] == "interrupted"
    [interrupts] = list(thread["interrupts"].values())
    assert interrupts[0]["value"] == {"question": "approve?"}
    state = client.threads.get_state(tid)
    assert state["next"] == ["ask"] and state["interrupts"][0]["value"] == {"question": "approve?"}
    done = client.runs.wait(tid, "interrupt", command={"resume": {"ok": True}})
    assert texts(done)[-1] == "answer: {'ok': True}"
    assert client.threads.get(tid)["status"] == "idle"


def test_thread_values_after_runs_match_the_checkpoint(server):
    """A run that ends without an interrupt reports the state it streamed last; one that
    streams nothing (no input, nothing to do) leaves the thread's values as they were."""
    client = get_sync_client(url=server.url, headers=USER1)
    tid = client.threads.create()["thread_id"]
    first = client.runs.wait(tid, "agent", input=HI)
    assert texts(first) == ["hi", "echo: hi"]
    thread = client.threads.get(tid)
    assert thread["status"] == "idle" and thread["interrupts"] == {}
    assert thread["values"] == first == client.threads.get_state(tid)["values"]
    again = client.runs.wait(tid, "agent", input=None)
    assert again == first
    assert client.threads.get(tid)["values"] == first and client.threads.get(tid)["status"] == "idle"
    # A run that stops at an interrupt reads its summary from the checkpoint instead.
    paused = client.runs.wait(tid, "interrupt", input={"messages": [{"role": "human", "content": "q"}]})
    assert "__interrupt__" in paused and client.threads.get(tid)["status"] == "interrupted"
    assert client.threads.get_state(tid)["next"] == ["ask"]


def test_errors_stateless_and_multitask(server):
    client = get_sync_client(url=server.url, headers=USER1)
    thread = client.threads.create()
    failed = client.runs.wait(thread["thread_id"], "failing", input=HI, raise_error=False)
    assert failed == {"__error__": {"error": "ValueError", "message": "boom failure"}}
    assert client.threads.get(thread["thread_id"])["status"] == "error"
    stateless = client.runs.wait(None, "agent", input=HI)
    assert texts(stateless) == ["hi", "echo: hi"]
    parts = list(client.runs.stream(None, "agent", input=HI, stream_mode="updates"))
    assert [part.event for part in parts] == ["metadata", "updates"]

    busy = client.threads.create()
    first = client.runs.create(busy["thread_id"], "interrupt", input={"messages": [{"role": "human", "content": "q"}]})
    client.runs.join(busy["thread_id"], first["run_id"])
    second = client.runs.create(busy["thread_id"], "agent", input=HI, after_seconds=30)
    with pytest.raises(ConflictError):
        client.runs.create(busy["thread_id"], "agent", input=HI, multitask_strategy="reject")
    client.runs.cancel(busy["thread_id"], second["run_id"])
    assert client.runs.get(busy["thread_id"], second["run_id"])["status"] == "interrupted"


def test_update_state_and_remote_graph(server):
    client = get_sync_client(url=server.url, headers=USER1)
    thread = client.threads.create(graph_id="agent")
    tid = thread["thread_id"]
    updated = client.threads.update_state(tid, {"messages": [{"role": "human", "content": "seeded"}]}, as_node="respond")
    assert updated["checkpoint"]["thread_id"] == tid
    assert texts(client.threads.get_state(tid)["values"]) == ["seeded"]

    remote = RemoteGraph("agent", url=server.url, headers=USER1)
    config = {"configurable": {"thread_id": tid}}
    out = remote.invoke({"messages": [{"role": "human", "content": "remote"}]}, config)
    assert texts(out)[-1] == "echo: remote"
    snapshot = remote.get_state(config)
    assert snapshot.values["messages"][-1]["content"] == "echo: remote"
    history = list(remote.get_state_history(config))
    assert len(history) >= 3
    remote.update_state(config, {"messages": [{"role": "human", "content": "patched"}]}, as_node="respond")
    assert remote.get_state(config).values["messages"][-1]["content"] == "patched"
    chunks = list(remote.stream({"messages": [{"role": "human", "content": "s"}]}, config, stream_mode="updates"))
    assert chunks == [{"respond": {"messages": [{"role": "ai", "content": "echo: s"}]}}]
    stateless = RemoteGraph("agent", url=server.url, headers=USER1).invoke(HI)
    assert texts(stateless) == ["hi", "echo: hi"]
    copy = client.threads.copy(tid)
    copied_state = client.threads.get_state(copy["thread_id"])
    assert copied_state["values"] == client.threads.get_state(tid)["values"]
    assert copied_state["checkpoint"]["thread_id"] == copy["thread_id"]
    assert len(client.threads.get_history(copy["thread_id"], limit=50)) == len(client.threads.get_history(tid, limit=50))
    client.threads.delete(copy["thread_id"])
    other = RemoteGraph("agent", url=server.url, headers=USER2)
    with pytest.raises(Exception) as raised:
        other.invoke(HI, config)
    assert "404" in str(raised.value) or "not found" in str(raised.value).lower()


@pytest.mark.anyio
async def test_remote_graph_async(server):
    remote = RemoteGraph("agent", url=server.url, headers=USER1)
    client = get_client(url=server.url, headers=USER1)
    tid = (await client.threads.create())["thread_id"]
    out = await remote.ainvoke(HI, {"configurable": {"thread_id": tid}})
    assert texts(out) == ["hi", "echo: hi"]
    state = await remote.aget_state({"configurable": {"thread_id": tid}})
    assert state.next == ()


STORE_GRAPH = """
from typing import TypedDict
from langgraph.graph import StateGraph, START, END
from langgraph.store.base import BaseStore

class State(TypedDict):
    text: str

async def remember(state, *, store: BaseStore):
    await store.aput(("memories", "u"), "last", {"text": state["text"]})
    seen = await store.aget(("memories", "u"), "from_api")
    found = await store.asearch(("memories",))
    return {"text": f"{seen.value['v'] if seen else None}|{len(found)}"}

builder = StateGraph(State)
builder.add_node("remember", remember)
builder.add_edge(START, "remember")
builder.add_edge("remember", END)
graph = builder.compile()
"""


def test_graph_store_is_the_api_store(make_server):
    """A graph's `store` reads and writes the items `/store` serves."""
    server = make_server({"langgraph.json": '{"graphs": {"mem": "./graph.py:graph"}}', "graph.py": STORE_GRAPH})
    client = get_sync_client(url=server.url)
    client.store.put_item(("memories", "u"), "from_api", {"v": 7})
    out = client.runs.wait(None, "mem", input={"text": "hello"})
    assert out == {"text": "7|2"}
    assert client.store.get_item(("memories", "u"), "last")["value"] == {"text": "hello"}


STORE_PROBE_GRAPH = """
from typing import Any, TypedDict
from langgraph.graph import StateGraph, START, END
import uuid
from langgraph.store.base import BaseStore, GetOp, PutOp, SearchOp

class State(TypedDict, total=False):
    who: str
    out: Any

class Named:
    def __repr__(self):
        return "ann"

async def probe(state, *, store: BaseStore):
    who = state["who"]
    out = {}
    for n in range(3):
        await store.aput((who, "notes", f"day{n}"), f"k{n}", {"n": n, "tag": "even" if n % 2 == 0 else "odd"})
    got = await store.aget((who, "notes", "day1"), "k1")
    out["get"] = [list(got.namespace), got.key, got.value, got.created_at.tzinfo is not None]
    out["missing"] = await store.aget((who, "notes", "day1"), "nope")
    out["search"] = sorted(item.key for item in await store.asearch((who,), filter={"n": {"$gte": 1}}))
    out["search_tag"] = [item.key for item in await store.asearch((who, "notes"), filter={"tag": "even"}, limit=1, offset=1)]
    out["prefix"] = [list(ns) for ns in await store.alist_namespaces(prefix=(who,), max_depth=2)]
    out["suffix"] = [list(ns) for ns in await store.alist_namespaces(prefix=(who,), suffix=("day2",))]
    out["wildcard"] = [list(ns) for ns in await store.alist_namespaces(prefix=(who, "*", "day0"))]
    await store.adelete((who, "notes", "day0"), "k0")
    out["deleted"] = await store.aget((who, "notes", "day0"), "k0")
    errors = []
    for attempt in (
        lambda: store.aput((f"{who}.smith", "x"), "k", {"v": 1}),
        lambda: store.aput((), "k", {"v": 1}),
        lambda: store.aget((who, ""), "k"),
        lambda: store.asearch((who,), filter={"n": {"$contains": 1}}),
        # Raw batches: labels that are not strings, and a batch whose last operation is bad
        # (nothing of it is written).
        lambda: store.abatch([PutOp((Named(),), "k", {"v": 1})]),
        lambda: store.abatch([GetOp((uuid.UUID(int=1),), "k")]),
        lambda: store.abatch([PutOp((who, "atomic"), "k", {"n": 1}), SearchOp((who,), {"zzz": {"$regex": 1}}, 10, 0)]),
    ):
        try:
            await attempt()
            errors.append(None)
        except Exception as error:
            errors.append(type(error).__name__)
    out["errors"] = errors
    out["atomic"] = await store.aget((who, "atomic"), "k")
    return {"out": out}

builder = StateGraph(State)
builder.add_node("probe", probe)
builder.add_edge(START, "probe")
builder.add_edge("probe", END)
graph = builder.compile()
"""


def test_graph_store_operations_follow_the_api_rules(make_server):
    """Every BaseStore operation a graph uses goes through graphward's own store: the same
    items, filters, namespace listing and namespace checks as `/store`."""
    server = make_server({"langgraph.json": '{"graphs": {"probe": "./graph.py:graph"}}', "graph.py": STORE_PROBE_GRAPH})
    client = get_sync_client(url=server.url)
    out = client.runs.wait(None, "probe", input={"who": "ann"})["out"]
    assert out["get"] == [["ann", "notes", "day1"], "k1", {"n": 1, "tag": "odd"}, True]
    assert out["missing"] is None
    assert out["search"] == ["k1", "k2"]
    assert out["search_tag"] == ["k0"]
    assert out["prefix"] == [["ann", "notes"]]
    assert out["suffix"] == [["ann", "notes", "day2"]]
    assert out["wildcard"] == [["ann", "notes", "day0"]]
    assert out["deleted"] is None
    assert out["errors"] == ["InvalidNamespaceError"] * 3 + ["ValueError"] + ["InvalidNamespaceError"] * 2 + ["ValueError"]
    assert out["atomic"] is None
    # What the graph wrote is what HTTP serves, and nothing of the refused writes exists.
    assert client.store.get_item(("ann", "notes", "day2"), "k2")["value"] == {"n": 2, "tag": "even"}
    http = client.store.list_namespaces(prefix=["ann"])["namespaces"]
    assert http == [["ann", "notes", "day1"], ["ann", "notes", "day2"]]
    assert client.store.search_items(["ann"], filter={"n": {"$gte": 1}})["items"]


def test_graph_and_api_store_writes_together_keep_the_database_sound(make_server, tmp_path):
    """Graphs and the API write the store at once (the case that corrupted the database when a
    second SQLite library wrote it): every write lands and the file passes its integrity check."""
    import sqlite3
    import threading

    server = make_server({"langgraph.json": '{"graphs": {"probe": "./graph.py:graph"}}', "graph.py": STORE_PROBE_GRAPH})
    client = get_sync_client(url=server.url)
    failures = []

    def api_writes(worker):
        own = get_sync_client(url=server.url)
        for n in range(40):
            try:
                own.store.put_item(("api", str(worker)), f"k{n}", {"n": n})
            except Exception as error:  # noqa: BLE001 - collected and asserted below
                failures.append(repr(error))

    def graph_runs(worker):
        own = get_sync_client(url=server.url)
        for n in range(6):
            out = own.runs.wait(None, "probe", input={"who": f"g{worker}x{n}"})
            if "out" not in out:
                failures.append(repr(out))

    threads = [threading.Thread(target=api_writes, args=(w,)) for w in range(3)] + [threading.Thread(target=graph_runs, args=(w,)) for w in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    for worker in range(3):
        assert len(client.store.search_items(["api", str(worker)], limit=100)["items"]) == 40
    assert len(client.store.list_namespaces(prefix=["g0x5"])["namespaces"]) == 2
    if POSTGRES is None:
        with sqlite3.connect(tmp_path / ".graphward" / "state.db") as connection:
            assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_webhooks(make_server, tmp_path):
    """A finished run is POSTed to its webhook; loopback targets need an explicit opt-in."""
    import http.server
    import socket
    import threading

    received = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    receiver = http.server.HTTPServer(("127.0.0.1", port), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        files = {"langgraph.json": json.dumps({"graphs": {"agent": str(REPO / "examples" / "agent.py") + ":graph"}})}
        allowed = make_server(files, env={"GRAPHWARD_WEBHOOK_ALLOW_PRIVATE": "1"})
        client = get_sync_client(url=allowed.url)
        thread = client.threads.create()
        client.runs.wait(thread["thread_id"], "agent", input=HI, webhook=f"http://127.0.0.1:{port}/hook")
        deadline = time.monotonic() + 10
        while not received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert received, "webhook not called"
        payload = received[0]
        assert payload["status"] == "success" and payload["thread_id"] == thread["thread_id"]
        assert texts(payload["values"]) == ["hi", "echo: hi"]
        assert {"run_started_at", "run_ended_at", "webhook_sent_at"} <= set(payload)
    finally:
        receiver.shutdown()


CHAT_GRAPH = """
from typing import Annotated, TypedDict
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langgraph.graph import StateGraph, START, END
from langgraph.graph.message import add_messages
from langgraph.config import get_stream_writer

class State(TypedDict):
    messages: Annotated[list, add_messages]

async def chat(state):
    get_stream_writer()({"progress": "thinking"})
    model = GenericFakeChatModel(messages=iter([AIMessage(content="hello streaming world")]))
    return {"messages": [await model.ainvoke(state["messages"])]}

builder = StateGraph(State)
builder.add_node("chat", chat)
builder.add_edge(START, "chat")
builder.add_edge("chat", END)
graph = builder.compile()
"""


def test_message_and_custom_stream_modes(make_server):
    server = make_server({"langgraph.json": '{"graphs": {"chat": "./graph.py:graph"}}', "graph.py": CHAT_GRAPH})
    client = get_sync_client(url=server.url)
    parts = list(client.runs.stream(None, "chat", input=HI, stream_mode=["messages-tuple", "custom"]))
    events = [part.event for part in parts]
    assert events[0] == "metadata" and "custom" in events
    tokens = [part.data[0]["content"] for part in parts if part.event == "messages"]
    assert "".join(tokens) == "hello streaming world" and len(tokens) > 1
    assert all(part.data[1]["langgraph_node"] == "chat" for part in parts if part.event == "messages")
    assert [part.data for part in parts if part.event == "custom"] == [{"progress": "thinking"}]

    legacy = list(client.runs.stream(None, "chat", input=HI, stream_mode="messages"))
    names = [part.event for part in legacy]
    assert "messages/metadata" in names and "messages/partial" in names
    partials = [part.data[0] for part in legacy if part.event == "messages/partial"]
    assert partials[-1]["content"] == "hello streaming world" and partials[-1]["type"] == "ai"


def test_interrupt_and_rollback_strategies(make_server):
    from test_recovery import SLOW_GRAPH, wait_for

    server = make_server({"langgraph.json": '{"graphs": {"slow": "./graph.py:graph"}}', "graph.py": SLOW_GRAPH})
    client = get_sync_client(url=server.url)
    tid = client.threads.create()["thread_id"]
    first = client.runs.create(tid, "slow", input={"text": "30"})
    wait_for(lambda: client.runs.get(tid, first["run_id"])["status"] == "running")
    second = client.runs.create(tid, "slow", input={"text": "0"}, multitask_strategy="interrupt")
    assert wait_for(lambda: client.runs.get(tid, second["run_id"])["status"] == "success")
    assert client.runs.get(tid, first["run_id"])["status"] == "interrupted"

    third = client.runs.create(tid, "slow", input={"text": "30"})
    wait_for(lambda: client.runs.get(tid, third["run_id"])["status"] == "running")
    fourth = client.runs.create(tid, "slow", input={"text": "0"}, multitask_strategy="rollback")
    assert wait_for(lambda: client.runs.get(tid, fourth["run_id"])["status"] == "success")
    with pytest.raises(NotFoundError):
        client.runs.get(tid, third["run_id"])
    assert client.threads.get(tid)["status"] == "idle"


def test_other_users_cannot_join(server):
    owner = get_sync_client(url=server.url, headers=USER1)
    tid = owner.threads.create()["thread_id"]
    run = owner.runs.create(tid, "agent", input=HI, stream_resumable=True)
    owner.runs.join(tid, run["run_id"])
    other = get_sync_client(url=server.url, headers=USER2)
    with pytest.raises(httpx.HTTPStatusError) as raised:
        other.runs.join(tid, run["run_id"])
    assert raised.value.response.status_code == 404
    parts = list(other.runs.join_stream(tid, run["run_id"], last_event_id="-1"))
    assert [part.event for part in parts] == ["error"] and "404" in parts[0].data["message"]
    replay = list(owner.runs.join_stream(tid, run["run_id"], last_event_id="-1"))
    assert [part.event for part in replay][0] == "metadata" and replay[-1].event == "values"
    with pytest.raises(NotFoundError):
        other.runs.cancel(tid, run["run_id"])


def test_events_stream_mode(server):
    client = get_sync_client(url=server.url, headers=USER1)
    parts = list(client.runs.stream(None, "agent", input=HI, stream_mode=["events", "values"]))
    events = [part.data for part in parts if part.event == "events"]
    assert events and events[0]["event"] == "on_chain_start"
    root = [event for event in events if not event["parent_ids"]]
    run_id = parts[0].data["run_id"]
    assert root[0]["run_id"] == run_id
    assert "on_chain_end" in [event["event"] for event in root]
    assert texts([part for part in parts if part.event == "values"][-1].data) == ["hi", "echo: hi"]


def test_thread_stream_sees_every_run(server):
    """`GET /threads/{id}/stream` carries each run's events and a `run_done` marker."""
    import threading

    client = get_sync_client(url=server.url, headers=USER1)
    tid = client.threads.create()["thread_id"]
    seen = []
    done = threading.Event()

    def listen():
        for part in get_sync_client(url=server.url, headers=USER1).threads.join_stream(tid):
            seen.append(part)
            if part.event == "metadata" and part.data.get("status") == "run_done":
                done.set()
                return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    time.sleep(0.5)
    run = client.runs.create(tid, "agent", input=HI, stream_mode="updates")
    assert done.wait(20), seen
    events = [part.event for part in seen]
    assert events[0] == "metadata" and seen[0].data["run_id"] == run["run_id"]
    assert "values" in events and all(part.id for part in seen)
    bad = httpx.get(f"{server.url}/threads/{tid}/stream", headers={**USER1, "Last-Event-ID": "-1"})
    assert bad.status_code == 422


def test_subgraphs_interrupt_before_and_time_travel(make_server):
    from test_system import SUBGRAPH_APP

    server = make_server({"langgraph.json": '{"graphs": {"nested": "./graph.py:graph"}}', "graph.py": SUBGRAPH_APP})
    client = get_sync_client(url=server.url)
    tid = client.threads.create()["thread_id"]
    parts = list(client.runs.stream(tid, "nested", input={"text": "a"}, stream_mode="updates", stream_subgraphs=True))
    names = [part.event for part in parts]
    assert "updates" in names and any(name.startswith("updates|sub:") for name in names), names
    assert client.threads.get_state(tid)["values"] == {"text": "a!"}

    paused = client.threads.create()["thread_id"]
    client.runs.wait(paused, "nested", input={"text": "b"}, interrupt_before=["last"])
    state = client.threads.get_state(paused)
    assert state["next"] == ["last"] and client.threads.get(paused)["status"] == "interrupted"
    finished = client.runs.wait(paused, "nested", input=None)
    assert finished == {"text": "b!"} and client.threads.get(paused)["status"] == "idle"

    # Fork from the first checkpoint after the input: the history then holds both branches.
    history = client.threads.get_history(tid, limit=20)
    first_input = [state for state in history if state["metadata"]["source"] == "input"][-1]
    forked = client.runs.wait(tid, "nested", input={"text": "c"}, checkpoint_id=first_input["checkpoint_id"])
    assert forked == {"text": "c!"}
    assert len(client.threads.get_history(tid, limit=50)) > len(history)


@pytest.mark.anyio
async def test_cancel_racing_the_start_of_a_run_ends_it(make_server):
    """A cancel that lands while the scheduler claims or starts the run (before its first step):
    the run ends interrupted (or gone, for a rollback) with the thread's values kept, the
    thread is not busy and a join answers at once. Before, the row could stay `running` with the
    thread `busy` and every join hung, or the run started anyway beside the next one, or it
    ended as an error that wiped the thread's values."""
    import anyio
    from test_recovery import SLOW_GRAPH

    server = make_server({"langgraph.json": '{"graphs": {"slow": "./graph.py:graph"}}', "graph.py": SLOW_GRAPH})
    client = get_client(url=server.url)

    async def race(index: int) -> None:
        thread = await client.threads.create()
        tid = thread["thread_id"]
        await client.runs.wait(tid, "slow", input={"text": "0"})  # values to keep: {"text": "done"}
        action = "rollback" if index % 2 else "interrupt"
        # Queued behind a short run, so the scheduler claims it when that one ends: the
        # cancel lands before, during or after the claim and the start.
        await client.runs.create(tid, "slow", input={"text": "0.05"})
        run = await client.runs.create(tid, "slow", input={"text": "0.2"}, multitask_strategy="enqueue")
        await anyio.sleep(0.03 + 0.002 * (index % 20))
        try:
            await client.runs.cancel(tid, run["run_id"], action=action, wait=False)
        except NotFoundError:
            action = "finished first"
        with anyio.fail_after(20):
            await client.runs.join(tid, run["run_id"])
        runs = {each["run_id"]: each["status"] for each in await client.runs.list(tid)}
        if action == "rollback":
            assert run["run_id"] not in runs
        elif action == "interrupt":
            # Accepted: it does not run on (nor beside the next run) to a success.
            assert runs[run["run_id"]] == "interrupted"
        else:
            assert runs[run["run_id"]] == "success"
        with anyio.fail_after(10):
            while (await client.threads.get(tid))["status"] == "busy":
                await anyio.sleep(0.02)
        settled = await client.threads.get(tid)
        values = (await client.threads.get_state(tid))["values"]
        if action != "interrupt":
            assert (settled["status"], values) == ("idle", {"text": "done"}), settled
        else:
            # Stopped before it began, or after its input was written (a step left to run).
            assert (settled["status"], values) in [("idle", {"text": "done"}), ("interrupted", {"text": "0.2"})], (settled, values)

    for _ in range(3):
        async with anyio.create_task_group() as group:
            for index in range(24):
                group.start_soon(race, index)


@pytest.mark.anyio
@pytest.mark.skipif(POSTGRES is None, reason="the window is Postgres's (SQLite serializes its writes; the failpoint is in the Postgres storage)")
async def test_a_queued_run_cancelled_while_the_run_before_it_ends_leaves_the_thread_idle(make_server):
    """A run's end is stored in one transaction that reads whether another run of the thread
    is still active; a queued run cancelled meanwhile settles the thread by reading the same.
    On Postgres each read saw the other's run still active (each statement sees what was
    committed when it began), so the thread stayed `busy` for good with no run left (found by
    `test_cancel_racing_the_start_of_a_run_ends_it` under load: 8 of 49 runs, two copies in
    parallel on 2 cores). The failpoint holds every run's end uncommitted for 1.5 s after
    that read, with the thread's row locked now, so the cancel's settling reads after it."""
    import anyio
    from test_recovery import SLOW_GRAPH

    server = make_server({"langgraph.json": '{"graphs": {"slow": "./graph.py:graph"}}', "graph.py": SLOW_GRAPH}, env={"GRAPHWARD_FAILPOINTS": "run-end-uncommitted=1500"})
    client = get_client(url=server.url)
    tid = (await client.threads.create())["thread_id"]
    first = await client.runs.create(tid, "slow", input={"text": "0"})
    queued = await client.runs.create(tid, "slow", input={"text": "0"}, multitask_strategy="enqueue")
    # The first run's graph has written its last checkpoint: its end is being stored (held).
    with anyio.fail_after(20):
        while (await client.threads.get_state(tid))["values"] != {"text": "done"}:
            await anyio.sleep(0.02)
    await anyio.sleep(0.3)
    await client.runs.cancel(tid, queued["run_id"], wait=False)
    with anyio.fail_after(20):
        await client.runs.join(tid, queued["run_id"])
    with anyio.fail_after(10):
        while (await client.threads.get(tid))["status"] == "busy":
            await anyio.sleep(0.05)
    runs = {each["run_id"]: each["status"] for each in await client.runs.list(tid)}
    assert runs == {first["run_id"]: "success", queued["run_id"]: "interrupted"}
    assert (await client.threads.get(tid))["status"] == "idle"
    assert (await client.threads.get_state(tid))["values"] == {"text": "done"}


@pytest.mark.anyio
@pytest.mark.parametrize("action", ["interrupt", "rollback"])
async def test_a_cancel_that_lands_while_a_run_stores_its_end_finds_it_ended(make_server, action):
    """Between the end of a run's graph and the stored end of the run, a cancel was accepted
    (202) and the run then ended as a success anyway: the executor had already read its
    cancellation marks and left the one this cancel put down unread (found by
    `test_cancel_racing_the_start_of_a_run_ends_it` under load: `'success' == 'interrupted'`, 1 of 49 runs).
    Now the cancel answers 404, as for a run that has ended, and the run keeps its success.
    The failpoint holds every run in that window for 1.5 s."""
    import anyio
    from test_recovery import SLOW_GRAPH

    server = make_server({"langgraph.json": '{"graphs": {"slow": "./graph.py:graph"}}', "graph.py": SLOW_GRAPH}, env={"GRAPHWARD_FAILPOINTS": "run-executed=1500"})
    client = get_client(url=server.url)
    tid = (await client.threads.create())["thread_id"]
    run = await client.runs.create(tid, "slow", input={"text": "0"})
    with anyio.fail_after(20):
        while (await client.threads.get_state(tid))["values"] != {"text": "done"}:
            await anyio.sleep(0.02)
    await anyio.sleep(0.3)
    assert (await client.runs.get(tid, run["run_id"]))["status"] == "running"
    with pytest.raises(NotFoundError):
        await client.runs.cancel(tid, run["run_id"], action=action, wait=False)
    with anyio.fail_after(20):
        await client.runs.join(tid, run["run_id"])
    assert (await client.runs.get(tid, run["run_id"]))["status"] == "success"
    with anyio.fail_after(10):
        while (await client.threads.get(tid))["status"] == "busy":
            await anyio.sleep(0.05)
    assert (await client.threads.get(tid))["status"] == "idle"
    assert (await client.threads.get_state(tid))["values"] == {"text": "done"}


@pytest.mark.anyio
async def test_a_run_that_ends_before_its_create_answers_can_be_joined(make_server):
    """The scheduler can claim, execute and finish a run between the moment its row is stored
    and the moment its create request resumes. Before, the create then opened a second channel
    for the run that nobody would finish, and every join of that run hung (found by the
    hunter: `hung` on `GET …/join` right after `POST /threads/{t}/runs`, twice in 750,000
    requests). The failpoint holds every create in that window for 1.5 s, longer than the
    scheduler's 1 s tick, so the run is claimed and ends there every time."""
    graph = (
        "from typing import TypedDict\nfrom langgraph.graph import StateGraph\n\n"
        "class State(TypedDict):\n    n: int\n\n"
        "def step(state: State) -> State:\n    return {'n': state['n'] + 1}\n\n"
        "builder = StateGraph(State)\nbuilder.add_node('step', step)\nbuilder.set_entry_point('step')\ngraph = builder.compile()\n"
    )
    files = {"langgraph.json": '{"graphs": {"quick": "./graph.py:graph"}}', "graph.py": graph}
    server = make_server(files, env={"GRAPHWARD_FAILPOINTS": "run-stored=1500"})
    import anyio

    client = get_client(url=server.url)
    thread = await client.threads.create()
    tid = thread["thread_id"]
    for n in range(2):
        run = await client.runs.create(tid, "quick", input={"n": n})
        assert (await client.runs.get(tid, run["run_id"]))["status"] == "success"
        # A join waits on keep-alive newlines, so no read timeout would end a hung one.
        with anyio.fail_after(10):
            assert await client.runs.join(tid, run["run_id"]) == {"n": n + 1}
    # A stream created in the window still sees the run's events from the start.
    with anyio.fail_after(10):
        parts = [part async for part in client.runs.stream(tid, "quick", input={"n": 5}, stream_mode="values")]
    assert [part.event for part in parts] == ["metadata", "values", "values"]
    assert parts[-1].data == {"n": 6}
