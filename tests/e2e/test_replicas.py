"""Several graphward processes on one Postgres database (GRAPHWARD_E2E_POSTGRES): whatever
replica a client reaches, it sees the same runs, streams and cancellations; runs execute once,
in order per thread; a process killed mid-run leaves no run `running`."""

from __future__ import annotations

import asyncio
import itertools
import os
import json
import signal
import time
import uuid

import httpx
import pytest
from langgraph_sdk import get_client, get_sync_client

from conftest import POSTGRES, Server, postgres_database

pytestmark = pytest.mark.skipif(POSTGRES is None, reason="replicas share a Postgres database (GRAPHWARD_E2E_POSTGRES)")

# Streams one `values` chunk per step; each step sleeps `delay` seconds and appends to `log`.
STEPS_GRAPH = """
import asyncio
import operator
from typing import Annotated, TypedDict

from langgraph.graph import END, START, StateGraph


class State(TypedDict, total=False):
    steps: int
    delay: float
    log: Annotated[list, operator.add]


async def step(state):
    await asyncio.sleep(state.get("delay", 0.1))
    return {"log": [len(state.get("log") or [])]}


def more(state):
    return "step" if len(state.get("log") or []) < state.get("steps", 3) else END


builder = StateGraph(State)
builder.add_node("step", step)
builder.add_edge(START, "step")
builder.add_conditional_edges("step", more)
graph = builder.compile()
"""


@pytest.fixture
def replicas(tmp_path):
    """Three processes of one app on one fresh database, with short leases."""
    (tmp_path / "graph.py").write_text(STEPS_GRAPH)
    (tmp_path / "langgraph.json").write_text(json.dumps({"graphs": {"steps": "./graph.py:graph"}}))
    database = postgres_database(f"replicas-{uuid.uuid4()}")
    env = {"DATABASE_URI": database, "GRAPHWARD_RUN_LEASE": "2"}
    servers = [Server(tmp_path / "langgraph.json", command="serve", env=env) for _ in range(3)]
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture
def owner_replicas(tmp_path):
    """`count` processes of test_isolation's app (its owner auth and graphs) on one fresh
    database; stopped after the test."""
    from test_isolation import OWNER_AUTH, start

    servers = []

    def start_replicas(count: int) -> list[Server]:
        database = postgres_database(f"replicas-auth-{uuid.uuid4()}")

        def make_server(files, **kwargs):
            for name, content in files.items():
                (tmp_path / name).write_text(content)
            return Server(tmp_path / "langgraph.json", command="serve", env={"DATABASE_URI": database}, **kwargs)

        servers.append(start(make_server, OWNER_AUTH))
        for _ in range(count - 1):
            servers.append(Server(tmp_path / "langgraph.json", command="serve", env={"DATABASE_URI": database}))
        return list(servers)

    yield start_replicas
    for server in servers:
        server.stop()


def events_of(url: str, path: str, body: dict | None = None, headers: dict | None = None) -> list[tuple[str, str, dict]]:
    """(id, event, data) of every SSE event of a POST (with `body`) or GET stream."""
    found, current = [], {}
    with httpx.Client(base_url=url, timeout=60) as client:
        method = "POST" if body is not None else "GET"
        with client.stream(method, path, json=body, headers=headers or {}) as response:
            assert response.status_code == 200, response.read()
            for line in response.iter_lines():
                if not line:
                    if "event" in current:
                        found.append((current.get("id", ""), current["event"], json.loads(current.get("data", "null"))))
                    current = {}
                    continue
                field, _, value = line.partition(":")
                current[field] = value.strip()
    return found


def test_a_run_started_anywhere_is_streamed_joined_and_cancelled_anywhere(replicas):
    a, b, c = replicas
    thread = httpx.post(f"{a.url}/threads", json={}).json()
    tid = thread["thread_id"]
    # Streamed by its creator on A, wherever it executes.
    streamed = events_of(a.url, f"/threads/{tid}/runs/stream", {"assistant_id": "steps", "input": {"steps": 4, "delay": 0.05}, "stream_mode": "values"})
    assert [event for _, event, _ in streamed] == ["metadata"] + ["values"] * 5
    assert streamed[-1][2]["log"] == [0, 1, 2, 3]

    # Started on A, joined from B (from the start, with a resumable stream's ids), cancelled from C.
    run = httpx.post(f"{a.url}/threads/{tid}/runs", json={"assistant_id": "steps", "input": {"steps": 200, "delay": 0.05}, "stream_resumable": True, "stream_mode": "values"}).json()
    path = f"/threads/{tid}/runs/{run['run_id']}/stream"

    async def join_then_cancel():
        join = asyncio.create_task(asyncio.to_thread(events_of, b.url, path, None, {"Last-Event-ID": "-1"}))
        for _ in range(100):
            if httpx.get(f"{c.url}/threads/{tid}/runs/{run['run_id']}").json()["status"] == "running":
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.6)
        cancelled = httpx.post(f"{c.url}/threads/{tid}/runs/{run['run_id']}/cancel?wait=1", timeout=30)
        return await join, cancelled

    joined, cancelled = asyncio.run(join_then_cancel())
    assert cancelled.status_code == 200, cancelled.text
    names = [event for _, event, _ in joined]
    assert names[0] == "metadata" and "values" in names, names
    assert len(joined) < 100, "the run was not stopped"
    assert httpx.get(f"{b.url}/threads/{tid}/runs/{run['run_id']}").json()["status"] == "interrupted"
    assert httpx.get(f"{c.url}/threads/{tid}").json()["status"] in ("idle", "interrupted")

    # A resume on another replica after any event id: the rest, none lost, none repeated.
    ids = [event_id for event_id, _, _ in joined]
    assert all(ids) and len(set(ids)) == len(ids)
    for cut, replica in zip((0, len(joined) // 2, len(joined) - 1), (a, b, c)):
        rest = events_of(replica.url, path, None, {"Last-Event-ID": ids[cut]})
        assert rest == joined[cut + 1 :], (cut, replica.url)


def test_runs_execute_once_in_order_per_thread_across_replicas(replicas):
    async def main():
        clients = [get_client(url=server.url) for server in replicas]
        spread = itertools.cycle(clients)
        threads = [await next(spread).threads.create() for _ in range(50)]
        created = []  # (thread_id, run_id, index on its thread)
        for index in range(4):
            batch = [next(spread).runs.create(t["thread_id"], "steps", input={"steps": 1, "delay": 0.01}, multitask_strategy="enqueue") for t in threads]
            for thread, run in zip(threads, await asyncio.gather(*batch)):
                created.append((thread["thread_id"], run["run_id"], index))
        deadline = time.monotonic() + 120
        for thread in threads:
            while True:
                runs = await next(spread).runs.list(thread["thread_id"], limit=10)
                if all(run["status"] == "success" for run in runs) and len(runs) == 4:
                    break
                assert time.monotonic() < deadline, runs
                await asyncio.sleep(0.1)
            state = await next(spread).threads.get_state(thread["thread_id"])
            # Each run appended exactly once: four runs of one step each.
            assert state["values"]["log"] == [0, 1, 2, 3], state["values"]
            runs = sorted(await next(spread).runs.list(thread["thread_id"], limit=10), key=lambda run: run["created_at"])
            ordered = [run["run_id"] for run in runs]
            mine = [run_id for tid, run_id, _ in sorted((entry for entry in created if entry[0] == thread["thread_id"]), key=lambda entry: entry[2])]
            assert ordered == mine
            # One after the other: each started after the previous one ended.
            history = await next(spread).threads.get_history(thread["thread_id"], limit=50)
            run_ids = [checkpoint["metadata"].get("run_id") for checkpoint in reversed(history) if checkpoint["metadata"].get("run_id")]
            assert [run_id for run_id, _ in itertools.groupby(run_ids)] == mine

    asyncio.run(main())
    executed = [server.output().count("run finished") for server in replicas]
    assert sum(executed) == 200 and sum(1 for count in executed if count) >= 2, executed


def test_a_killed_replica_leaves_no_run_running_and_no_thread_busy(replicas):
    import psycopg

    client = get_sync_client(url=replicas[1].url)
    tid = client.threads.create()["thread_id"]
    run = client.runs.create(tid, "steps", input={"steps": 1000, "delay": 0.05})
    queued = client.runs.create(tid, "steps", input={"steps": 1, "delay": 0}, multitask_strategy="enqueue")
    deadline = time.monotonic() + 20
    while client.runs.get(tid, run["run_id"])["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    with psycopg.connect(replicas[0].database_uri) as connection:
        owner = str(connection.execute("SELECT owner FROM runs WHERE run_id = %s", (run["run_id"],)).fetchone()[0])
    victim = next(server for server in replicas if owner in server.output())
    victim.process.send_signal(signal.SIGKILL)
    victim.process.wait(timeout=10)
    survivor = get_sync_client(url=next(server for server in replicas if server is not victim).url)
    # Within a lease (2 s) and a sweep of the survivors.
    deadline = time.monotonic() + 30
    while survivor.runs.get(tid, run["run_id"])["status"] == "running":
        assert time.monotonic() < deadline, "the killed process's run stayed running"
        time.sleep(0.2)
    assert survivor.runs.get(tid, run["run_id"])["status"] == "error"
    # The thread's next run then executes on a survivor.
    while survivor.runs.get(tid, queued["run_id"])["status"] != "success":
        assert time.monotonic() < deadline, survivor.runs.get(tid, queued["run_id"])
        time.sleep(0.1)
    while survivor.threads.get(tid)["status"] == "busy":
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_a_due_cron_fires_once_across_replicas(replicas):
    clients = [get_sync_client(url=server.url) for server in replicas]
    crons = []
    for index in range(12):
        client = clients[index % 3]
        thread = client.threads.create()
        cron = client.crons.create_for_thread(thread["thread_id"], "steps", schedule="0 0 1 1 *", input={"steps": 1, "delay": 0})
        crons.append((thread["thread_id"], cron["cron_id"]))
    # Due now for every replica's cron loop (each checks every second).
    replicas[0].execute("UPDATE crons SET next_run_date = 0")
    deadline = time.monotonic() + 30
    for thread_id, _ in crons:
        while not any(run["status"] == "success" for run in clients[0].runs.list(thread_id)):
            assert time.monotonic() < deadline, clients[0].runs.list(thread_id)
            time.sleep(0.1)
    time.sleep(2.5)  # every loop has had its chance to fire them again
    for thread_id, cron_id in crons:
        runs = clients[1].runs.list(thread_id)
        assert len(runs) == 1, (cron_id, runs)
    fired = sum(server.output().count("cron fired") for server in replicas)
    assert fired == len(crons), fired


def test_a_thread_stream_on_one_replica_carries_runs_executing_on_others(replicas):
    import threading

    a, b, c = replicas
    tid = get_sync_client(url=a.url).threads.create()["thread_id"]
    seen, done = [], threading.Event()

    def listen():
        finished = 0
        for part in get_sync_client(url=a.url).threads.join_stream(tid):
            seen.append(part)
            if part.event == "metadata" and part.data.get("status") == "run_done":
                finished += 1
                if finished == 6:
                    done.set()
                    return

    threading.Thread(target=listen, daemon=True).start()
    time.sleep(0.5)
    runs = [get_sync_client(url=server.url).runs.create(tid, "steps", input={"steps": 2, "delay": 0.02}, multitask_strategy="enqueue") for server in (b, c, b, c, b, c)]
    assert done.wait(60), [(part.event, part.data) for part in seen]
    started = [part.data["run_id"] for part in seen if part.event == "metadata" and "run_id" in part.data and part.data.get("status") != "run_done"]
    ended = [part.data["run_id"] for part in seen if part.event == "metadata" and part.data.get("status") == "run_done"]
    assert started == ended == [run["run_id"] for run in runs]
    assert sum(1 for part in seen if part.event == "values") >= 6
    executed_elsewhere = sum(server.output().count("run finished") for server in (b, c))
    assert executed_elsewhere >= 1, "every run executed on the stream's own replica: nothing crossed"


@pytest.mark.skipif(not os.environ.get("GRAPHWARD_E2E_POSTGRES_DIR"), reason="restarts the test cluster (scripts/test.sh names its folder)")
def test_a_postgres_restart_under_write_load_loses_no_acknowledged_write(replicas):
    import subprocess
    import threading

    from conftest import REPO

    acknowledged, statuses, stop = [], [], threading.Event()

    def write(server):
        with httpx.Client(base_url=server.url, timeout=30) as client:
            index = 0
            while not stop.is_set():
                index += 1
                try:
                    answer = client.post("/threads", json={"metadata": {"writer": server.url, "index": index}})
                except httpx.HTTPError as error:  # the server must keep answering
                    statuses.append(repr(error))
                    continue
                statuses.append(answer.status_code)
                if answer.status_code == 200:
                    acknowledged.append(answer.json()["thread_id"])

    writers = [threading.Thread(target=write, args=(server,)) for server in replicas[:2] for _ in range(2)]
    for writer in writers:
        writer.start()
    time.sleep(1.5)
    before = len(acknowledged)
    restarted = subprocess.run(["bash", str(REPO / "scripts" / "postgres.sh"), "restart", os.environ["GRAPHWARD_E2E_POSTGRES_DIR"]], capture_output=True, text=True, check=False)
    assert restarted.returncode == 0, restarted.stderr
    restarted_at = len(acknowledged)
    deadline = time.monotonic() + 30
    while len(acknowledged) < restarted_at + 50:
        assert time.monotonic() < deadline, f"writes did not resume after the restart: {statuses[-5:]}"
        time.sleep(0.1)
    stop.set()
    for writer in writers:
        writer.join()
    assert before > 0
    # Failed writes were 503s, nothing else; every acknowledged one is there, on every replica.
    assert set(statuses) <= {200, 503}, sorted({str(status) for status in statuses})
    for server in replicas:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            missing = [tid for tid in acknowledged if client.get(f"/threads/{tid}").status_code != 200]
            assert missing == [], (server.url, len(missing))
        assert server.process.poll() is None
    # Runs (the interpreter's checkpointer has its own pool) work again without a restart.
    tid = acknowledged[-1]
    out = httpx.post(f"{replicas[2].url}/threads/{tid}/runs/wait", json={"assistant_id": "steps", "input": {"steps": 1, "delay": 0}}, timeout=30)
    assert out.status_code == 200 and out.json()["log"] == [0], out.text


def test_a_thread_id_deleted_on_one_replica_and_taken_by_another_user_streams_nothing_across(owner_replicas):
    """Alice streams her thread on A; she deletes it through C, and Bob creates a thread with the
    same id through C and runs on it. Alice's stream ends without any of Bob's events, and
    Bob's stream on A (with a full replay) holds none of Alice's."""
    import threading

    from test_isolation import client as as_user

    a, c = owner_replicas(2)
    alice_a, alice_c, bob_a, bob_c = as_user(a, "alice-token"), as_user(c, "alice-token"), as_user(a, "bob-token"), as_user(c, "bob-token")
    thread = alice_a.post("/threads", json={}).json()["thread_id"]
    alice_lines: list[str] = []

    def listen():
        with alice_a.stream("GET", f"/threads/{thread}/stream", headers={"Last-Event-ID": "-"}, timeout=20) as stream:
            for line in stream.iter_lines():
                alice_lines.append(line)

    listener = threading.Thread(target=listen)
    listener.start()
    time.sleep(0.5)
    alice_c.post(f"/threads/{thread}/runs/wait", json={"assistant_id": "who", "input": {"text": "alice-secret"}}).raise_for_status()
    time.sleep(0.5)
    assert alice_c.delete(f"/threads/{thread}").status_code == 204
    bob_c.post("/threads", json={"thread_id": thread}).raise_for_status()
    bob_c.post(f"/threads/{thread}/runs/wait", json={"assistant_id": "who", "input": {"text": "bob-secret"}}).raise_for_status()
    listener.join(timeout=15)
    assert not listener.is_alive(), "the deleted thread's stream did not end"
    assert any("alice-secret" in line for line in alice_lines), alice_lines
    assert not any("bob-secret" in line for line in alice_lines), alice_lines
    bob_lines: list[str] = []
    with bob_a.stream("GET", f"/threads/{thread}/stream", headers={"Last-Event-ID": "-"}, timeout=2) as stream:
        try:
            for line in stream.iter_lines():
                bob_lines.append(line)
        except httpx.ReadTimeout:
            pass
    assert not any("alice" in line for line in bob_lines), bob_lines


def test_a_thread_deleted_with_a_run_executing_elsewhere_leaves_nothing_to_its_id_taker(owner_replicas):
    """Alice's thread has a run executing (slow to stop) when she deletes it through one
    replica; Bob creates a thread with the same id through another as soon as he can. The id
    stays taken (409) until that run has stopped and removed what it wrote; then Bob's thread
    starts empty, and Alice's run never writes into it."""
    from test_isolation import client as as_user

    servers = owner_replicas(3)
    alice = [as_user(server, "alice-token") for server in servers]
    bob = [as_user(server, "bob-token") for server in servers]
    for round_ in range(3):
        thread = alice[round_ % 3].post("/threads", json={}).json()["thread_id"]
        run = alice[round_ % 3].post(f"/threads/{thread}/runs", json={"assistant_id": "stubborn", "input": {"text": "alice-secret"}}).json()
        deadline = time.monotonic() + 15
        while alice[0].get(f"/threads/{thread}/runs/{run['run_id']}").json()["status"] != "running":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.5)  # a few checkpoints written
        assert alice[(round_ + 1) % 3].delete(f"/threads/{thread}").status_code == 204
        taker = bob[(round_ + 2) % 3]
        while True:
            created = taker.post("/threads", json={"thread_id": thread})
            if created.status_code == 200:
                break
            assert created.status_code == 409 and time.monotonic() < deadline + 30, created.text
            time.sleep(0.05)
        assert taker.post(f"/threads/{thread}/history", json={"limit": 100}).json() == []
        time.sleep(2)  # alice's run, if it were still going, would write by now
        assert taker.post(f"/threads/{thread}/history", json={"limit": 100}).json() == []
        assert "alice" not in taker.get(f"/threads/{thread}/state").text
