"""Parity with the reference (`langgraph dev`) where graphward used to refuse or ignore a
request: crons re-authorized at every firing, the user object in a run's record, the
resumable join stream, joins of finished stateless runs, update-before-lookup, thread
supersteps, and the smaller options (`/ok?check_db`, `namespace_prefix: null`, …)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx

AUTH = '''
import asyncio
import json
from pathlib import Path

from langgraph_sdk import Auth

TOKENS = {"alice-token": "alice", "bob-token": "bob"}
# What each user's `threads.create_run` does now: the test flips it between firings.
MODES = Path(__file__).with_name("modes.json")
auth = Auth()

@auth.authenticate
async def authenticate(authorization: str | None):
    token = (authorization or "").removeprefix("Bearer ")
    if token not in TOKENS:
        raise Auth.exceptions.HTTPException(status_code=401, detail="Invalid token")
    who = TOKENS[token]
    return {"identity": who, "display_name": who.title(), "permissions": ["runs:write"], "org": f"org-{who}"}

@auth.on
async def owner(ctx, value):
    filters = {"owner": ctx.user.identity}
    if isinstance(value, dict) and isinstance(value.get("metadata"), dict):
        value["metadata"].update(filters)
    return filters

@auth.on.threads.create_run
async def create_run(ctx, value):
    mode = json.loads(MODES.read_text()).get(ctx.user.identity, "allow") if MODES.exists() else "allow"
    if mode == "deny":
        raise Auth.exceptions.HTTPException(status_code=403, detail="revoked")
    if mode == "error":
        raise RuntimeError("the permission service is down")
    if mode == "slow":
        await asyncio.sleep(30)
    value.setdefault("metadata", {}).update(owner=ctx.user.identity, fired_as=f"{ctx.user.identity}:{ctx.user['org']}")
    return {"owner": ctx.user.identity}
'''


def start(make_server, **kwargs):
    agent = Path(__file__).resolve().parents[2] / "examples" / "agent.py"
    files = {
        "langgraph.json": json.dumps({"graphs": {"agent": f"{agent}:graph"}, "auth": {"path": "./auth.py:auth"}}),
        "auth.py": AUTH,
    }
    return make_server(files, **kwargs)


def client(server, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def cron_firings(server) -> dict[str, int]:
    text = httpx.get(f"{server.url}/metrics", headers={"Authorization": "Bearer alice-token"}).text
    return {outcome: int(float(count)) for outcome, count in re.findall(r'graphward_cron_firings_total\{outcome="(\w+)"\} (\S+)', text)}


def wait_for(condition, what: str, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_cron_is_authorized_again_at_every_firing(make_server, tmp_path):
    """spec auth.md §3.7: each firing dispatches `threads.create_run` as the cron's creator
    (stored with permissions and extra fields). A handler that now refuses, raises or does not
    answer in time stops that firing (fail closed): no run, a log line, a count in
    `graphward_cron_firings_total`; the cron stays and fires again once allowed. Bob's cron
    never touches Alice's thread."""
    modes = tmp_path / "modes.json"
    server = start(make_server, env={"GRAPHWARD_AUTH_TIMEOUT": "1"})
    alice, bob = client(server, "alice-token"), client(server, "bob-token")
    threads, crons = {}, {}
    for name, user in (("alice", alice), ("bob", bob)):
        threads[name] = user.post("/threads", json={}).json()["thread_id"]
        reply = user.post(f"/threads/{threads[name]}/runs/crons", json={"assistant_id": "agent", "schedule": "0 0 1 1 *", "input": {"messages": [{"role": "human", "content": f"tick {name}"}]}})
        assert reply.status_code == 200, reply.text
        crons[name] = reply.json()["cron_id"]
    # Bob cannot aim a cron at Alice's thread.
    assert bob.post(f"/threads/{threads['alice']}/runs/crons", json={"assistant_id": "agent", "schedule": "0 0 1 1 *"}).status_code == 404

    def fire(name: str) -> None:
        server.execute("UPDATE crons SET next_run_date = 0 WHERE cron_id = ?", (crons[name],))

    def runs(name: str, user: httpx.Client) -> list:
        return user.get(f"/threads/{threads[name]}/runs").json()

    # Allowed: each fires once as its creator, with the extra fields authenticate returned.
    fire("alice")
    fire("bob")
    for name, user in (("alice", alice), ("bob", bob)):
        done = wait_for(lambda name=name, user=user: [run for run in runs(name, user) if run["status"] == "success"], f"{name}'s cron")
        assert done[0]["metadata"]["fired_as"] == f"{name}:org-{name}"
        assert done[0]["kwargs"]["config"]["configurable"]["langgraph_auth_user"]["identity"] == name
    assert [run["metadata"]["fired_as"] for run in runs("alice", alice)] == ["alice:org-alice"]

    # Refused, failing, timing out: nothing runs, each outcome is counted, the cron stays.
    for mode, outcome in (("deny", "refused"), ("error", "error"), ("slow", "timeout")):
        before = cron_firings(server).get(outcome, 0)
        modes.write_text(json.dumps({"bob": mode}))
        fire("bob")
        wait_for(lambda outcome=outcome, before=before: cron_firings(server).get(outcome, 0) > before, f"a {outcome} firing", timeout=40)
        assert len(runs("bob", bob)) == 1, mode
        assert [cron["cron_id"] for cron in bob.post("/runs/crons/search", json={}).json()] == [crons["bob"]]
        assert bob.post("/runs/crons/search", json={}).json()[0]["next_run_date"].endswith("-01-01T00:00:00+00:00")
    assert "cron could not start its run" in server.output()
    # Alice's thread saw none of it; her cron, still allowed, fires again.
    fire("alice")
    wait_for(lambda: len([run for run in runs("alice", alice) if run["status"] == "success"]) == 2, "alice's second firing")
    assert all(run["metadata"]["fired_as"] == "alice:org-alice" for run in runs("alice", alice))
    # Allowed again, Bob's cron fires again.
    modes.write_text(json.dumps({}))
    fire("bob")
    wait_for(lambda: len([run for run in runs("bob", bob) if run["status"] == "success"]) == 2, "bob's cron once allowed again")
    assert alice.get(f"/threads/{threads['bob']}/runs").status_code == 404


def test_a_runs_record_carries_the_user_object(make_server):
    """As in the reference, `GET /threads/{id}/runs/{run_id}` shows the user object
    authenticate returned (extra fields included) as `kwargs.config.configurable
    .langgraph_auth_user`; a client's own value for it is replaced."""
    server = start(make_server)
    alice = client(server, "alice-token")
    thread = alice.post("/threads", json={}).json()["thread_id"]
    forged = {"langgraph_auth_user": {"identity": "bob", "permissions": ["admin"]}}
    expected = {"identity": "alice", "display_name": "Alice", "is_authenticated": True, "permissions": ["runs:write"], "org": "org-alice"}
    for body in ({"config": {"configurable": forged}}, {"context": forged}):
        reply = alice.post(f"/threads/{thread}/runs/wait", json={"assistant_id": "agent", "input": {"messages": []}, **body})
        assert reply.status_code == 200, reply.text
        run = alice.get(f"/threads/{thread}/runs").json()[0]
        record = alice.get(f"/threads/{thread}/runs/{run['run_id']}").json()
        assert record["kwargs"]["config"]["configurable"]["langgraph_auth_user"] == expected
        assert record["kwargs"]["config"]["configurable"]["langgraph_auth_user_id"] == "alice"
        assert record["kwargs"].get("context", {}).get("langgraph_auth_user", expected) == expected


def test_a_runs_record_without_auth_has_a_null_user(open_server):
    """Without custom auth the reference's record has `langgraph_auth_user: null`."""
    with httpx.Client(base_url=open_server.url, timeout=30) as anyone:
        thread = anyone.post("/threads", json={}).json()["thread_id"]
        run = anyone.post(f"/threads/{thread}/runs", json={"assistant_id": "agent", "input": {"messages": []}}).json()
        configurable = anyone.get(f"/threads/{thread}/runs/{run['run_id']}").json()["kwargs"]["config"]["configurable"]
    assert (configurable["langgraph_auth_user"], configurable["langgraph_auth_user_id"], configurable["langgraph_auth_permissions"]) == (None, "", [])


GRAPHS = '''
import asyncio
from typing import Annotated, TypedDict

from langgraph.graph import END, START, StateGraph


def append(left, right):
    return (left or []) + (right or [])


class State(TypedDict, total=False):
    text: str
    seen: Annotated[list, append]


async def first(state):
    await asyncio.sleep(0.6)
    return {"seen": ["first"]}


async def second(state):
    await asyncio.sleep(0.6)
    return {"seen": ["second"]}


builder = StateGraph(State)
builder.add_node("first", first)
builder.add_node("second", second)
builder.add_edge(START, "first")
builder.add_edge("first", "second")
builder.add_edge("second", END)
slow = builder.compile()


def a(state):
    return {"seen": ["a"]}


def b(state):
    return {"seen": ["b"]}


builder = StateGraph(State)
builder.add_node("a", a)
builder.add_node("b", b)
builder.add_edge(START, "a")
builder.add_edge("a", "b")
builder.add_edge("b", END)
two = builder.compile()
'''


def start_open(make_server, **kwargs):
    files = {"langgraph.json": json.dumps({"graphs": {"slow": "./graphs.py:slow", "two": "./graphs.py:two"}}), "graphs.py": GRAPHS}
    return make_server(files, **kwargs)


def sse(response: httpx.Response) -> list[tuple[str, str | None, object]]:
    """(event, id, data) of each server-sent event."""
    events, current = [], {}
    for line in response.iter_lines():
        if not line:
            if current:
                events.append((current.get("event"), current.get("id"), json.loads(current.get("data", "null"))))
            current = {}
            continue
        field, _, value = line.partition(":")
        current[field] = value.strip()
    if current:
        events.append((current.get("event"), current.get("id"), json.loads(current.get("data", "null"))))
    return events


def wait_running(anyone: httpx.Client, thread: str, run_id: str) -> None:
    wait_for(lambda: anyone.get(f"/threads/{thread}/runs/{run_id}").json()["status"] == "running", "the run to start")


def test_a_join_stream_starts_with_the_metadata_event(make_server):
    """As in the reference: joining a resumable run's stream (no `Last-Event-ID`) replays it
    from its `metadata` event; joining another run's stream sends its `metadata` event first,
    then the events from now on."""
    server = start_open(make_server)
    anyone = httpx.Client(base_url=server.url, timeout=30)
    thread = anyone.post("/threads", json={}).json()["thread_id"]
    for resumable in (True, False):
        run = anyone.post(f"/threads/{thread}/runs", json={"assistant_id": "slow", "input": {"text": "x"}, "stream_resumable": resumable, "stream_mode": ["values", "updates"]}).json()
        wait_running(anyone, thread, run["run_id"])
        time.sleep(0.3)  # the run's first events are out before the join
        with anyone.stream("GET", f"/threads/{thread}/runs/{run['run_id']}/stream") as response:
            events = sse(response)
        assert events[0][0] == "metadata" and events[0][2]["run_id"] == run["run_id"], events
        assert events[-1][0] == "values" and events[-1][2]["seen"][-2:] == ["first", "second"], events
        if resumable:
            assert [event for event, _, _ in events] == ["metadata", "values", "updates", "values", "updates", "values"], events
            assert all(event_id for _, event_id, _ in events)
        else:
            assert ("updates", None, {"second": {"seen": ["second"]}}) in events and len([1 for event, _, _ in events if event == "metadata"]) == 1


def test_the_sdk_join_stream_starts_with_metadata(make_server):
    """`client.runs.joinStream` as the Python SDK calls it, on a resumable run."""
    from langgraph_sdk import get_sync_client

    server = start_open(make_server)
    sdk = get_sync_client(url=server.url)
    thread = sdk.threads.create()["thread_id"]
    run = sdk.runs.create(thread, "slow", input={"text": "x"}, stream_resumable=True, stream_mode=["values"])
    wait_running(httpx.Client(base_url=server.url), thread, run["run_id"])
    parts = list(sdk.runs.join_stream(thread, run["run_id"]))
    assert parts[0].event == "metadata" and parts[0].data["run_id"] == run["run_id"], parts
    assert parts[-1].event == "values" and parts[-1].data["seen"] == ["first", "second"]


def test_joining_a_finished_stateless_run_answers_its_final_values(make_server):
    """`runs.create(None, …)` then `runs.join(thread_id, run_id)`: the reference answers the
    final values every time, also when the run finished and its temporary thread was deleted
    before the join came (graphward used to answer 404 about one time in three)."""
    from langgraph_sdk import get_sync_client

    server = start_open(make_server)
    sdk = get_sync_client(url=server.url)
    for index in range(60):
        run = sdk.runs.create(None, "two", input={"text": f"t{index}"})
        if index % 3 == 0:  # surely finished and deleted
            wait_for(lambda run=run: httpx.get(f"{server.url}/threads/{run['thread_id']}").status_code == 404, "the temporary thread to go")
        assert sdk.runs.join(run["thread_id"], run["run_id"]) == {"text": f"t{index}", "seen": ["a", "b"]}, index


def test_a_finished_stateless_runs_values_are_only_its_users(make_server):
    """The kept final values of a deleted temporary thread answer only a caller whose
    `threads.read` filter passes that thread; another user gets the 404s the thread's absence
    gives — also after taking the thread's id for a thread of their own."""
    server = start(make_server)
    alice, bob = client(server, "alice-token"), client(server, "bob-token")
    run = alice.post("/runs", json={"assistant_id": "agent", "input": {"messages": [{"role": "human", "content": "alice-secret"}]}}).json()
    wait_for(lambda: alice.get(f"/threads/{run['thread_id']}").status_code == 404, "the temporary thread to go")
    path = f"/threads/{run['thread_id']}/runs/{run['run_id']}/join"
    mine = alice.get(path)
    assert mine.status_code == 200 and mine.json()["messages"][-1]["content"] == "echo: alice-secret", mine.text
    theirs = bob.get(path)
    assert theirs.status_code == 404 and "alice-secret" not in theirs.text, theirs.text
    assert bob.post("/threads", json={"thread_id": run["thread_id"]}).status_code == 200
    theirs = bob.get(path)
    assert "alice-secret" not in theirs.text and "__error__" in theirs.json(), theirs.text
    assert alice.get(path).json()["messages"][-1]["content"] == "echo: alice-secret"
