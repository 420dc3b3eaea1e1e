"""Attacks on the 2026-12-07 changes (graph factories per use, `http.app` as ASGI, `http.*`
settings, dev hot reload), played by two users (alice, bob) against an app with owner filters
and an `http.app`. Each test is one finding of the review: it fails on the code it was written
against and passes once the finding is fixed (see the review report for the fix suggested)."""

from __future__ import annotations

import json
import os
import socket
import time

import httpx

ALICE = {"Authorization": "Bearer alice-token"}
BOB = {"Authorization": "Bearer bob-token"}

AUTH = '''
from langgraph_sdk import Auth
TOKENS = {"alice-token": "alice", "bob-token": "bob"}
auth = Auth()

@auth.authenticate
async def authenticate(headers: dict):
    token = headers.get(b"authorization", b"").decode().removeprefix("Bearer ")
    if token not in TOKENS:
        raise Auth.exceptions.HTTPException(status_code=401, detail="Invalid token")
    return {"identity": TOKENS[token], "permissions": ["write"]}

@auth.on
async def owner(ctx: Auth.types.AuthContext, value: dict):
    if isinstance(value, dict) and isinstance(value.get("metadata"), dict):
        value["metadata"]["owner"] = ctx.user.identity
    return {"$or": [{"owner": ctx.user.identity}, {"created_by": "system"}]}
'''

GRAPH = '''
from typing import TypedDict
from langgraph.graph import StateGraph, START, END

class State(TypedDict, total=False):
    seen: str

def _identity(config):
    user = config["configurable"].get("langgraph_auth_user")
    if isinstance(user, dict):
        return user.get("identity")
    return getattr(user, "identity", None)

def _built(node):
    builder = StateGraph(State)
    builder.add_node(node, lambda state: {"seen": node})
    builder.add_edge(START, node)
    builder.add_edge(node, END)
    return builder.compile()

graph = _built("plain")

def factory(config):
    # A graph built per user (their tools, their prompts): named after the user the server
    # says this use is for.
    return _built(f"tools_of_{_identity(config)}")
'''

STREAMING_APP = '''
import asyncio
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

app = FastAPI()
PRODUCED = {"chunks": 0}

@app.get("/progress")
async def progress():
    return PRODUCED

@app.get("/download")
async def download():
    chunk = b"x" * (1 << 20)

    async def body():
        for _ in range(300):
            PRODUCED["chunks"] += 1
            yield chunk
            await asyncio.sleep(0)
    return StreamingResponse(body(), media_type="application/octet-stream")

@app.get("/hello")
async def hello():
    return {"hello": "world"}
'''


def config(**extra):
    return json.dumps({"graphs": {"agent": "./graph.py:graph", "fac": "./graph.py:factory"}, "auth": {"path": "./auth.py:auth"}, **extra})


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def eventually(check, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def write(path, text):
    path.write_text(text)
    stamp = time.time() + 2
    os.utime(path, (stamp, stamp))


def test_a_factory_built_for_introspection_sees_the_caller_not_an_identity_from_the_assistant_config(make_server):
    """Alice stores `langgraph_auth_user` (bob) in her assistant's config; the factory built to
    draw her assistant must see alice (the server owns that key, as it does for runs)."""
    server = make_server({"auth.py": AUTH, "graph.py": GRAPH, "langgraph.json": config()})
    forged = {"configurable": {"langgraph_auth_user": {"identity": "bob", "permissions": ["admin"]}}}
    created = httpx.post(f"{server.url}/assistants", headers=ALICE, json={"graph_id": "fac", "config": forged})
    assert created.status_code == 200, created.text
    assistant_id = created.json()["assistant_id"]
    # A run of that assistant is built for alice (the run path strips the key).
    ran = httpx.post(f"{server.url}/runs/wait", headers=ALICE, json={"assistant_id": assistant_id, "input": {}}, timeout=30)
    assert ran.json() == {"seen": "tools_of_alice"}
    drawn = httpx.get(f"{server.url}/assistants/{assistant_id}/graph", headers=ALICE)
    assert drawn.status_code == 200, drawn.text
    nodes = {node["id"] for node in drawn.json()["nodes"]}
    assert "tools_of_alice" in nodes and "tools_of_bob" not in nodes, nodes
    for path in ("schemas", "subgraphs"):
        assert httpx.get(f"{server.url}/assistants/{assistant_id}/{path}", headers=ALICE).status_code == 200


def test_a_slow_reader_of_an_app_stream_does_not_make_the_server_buffer_it(make_server):
    """A public `http.app` route streams 300 MB; a client that reads nothing must not make the
    server hold what the app produced (ASGI `send` should wait for the client: backpressure)."""
    server = make_server({"auth.py": AUTH, "graph.py": GRAPH, "webapp.py": STREAMING_APP, "langgraph.json": config(http={"app": "./webapp.py:app"})})
    assert httpx.get(f"{server.url}/hello").status_code == 200
    before = rss_bytes(server.process.pid)
    reader = socket.create_connection(("127.0.0.1", server.port))
    reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        reader.sendall(b"GET /download HTTP/1.1\r\nHost: x\r\n\r\n")
        # Until the app is done or blocked (its count stays put for a second).
        last, steady_since = -1, time.monotonic()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            produced = httpx.get(f"{server.url}/progress").json()["chunks"]
            if produced != last:
                last, steady_since = produced, time.monotonic()
            elif time.monotonic() - steady_since > 1.0 or produced >= 300:
                break
            time.sleep(0.1)
        grown = rss_bytes(server.process.pid) - before
        assert grown < 64 * 1024 * 1024, f"the server holds {grown >> 20} MB for one client that reads nothing ({last} MB produced)"
    finally:
        reader.close()


def test_an_unauthenticated_body_to_a_public_app_route_is_not_buffered_whole(make_server):
    """With `auth.py` and a public `http.app` (no `enable_custom_route_auth`), an anonymous client
    sends 150 MB to a route that never reads a body: the server should not hold it (the API's
    routes read at most 64 KiB before authentication; the reference streams a body to the app as
    it reads it)."""
    server = make_server({"auth.py": AUTH, "graph.py": GRAPH, "webapp.py": STREAMING_APP, "langgraph.json": config(http={"app": "./webapp.py:app"})})
    assert httpx.get(f"{server.url}/hello").status_code == 200
    before = rss_bytes(server.process.pid)
    sender = socket.create_connection(("127.0.0.1", server.port))
    sender.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
    try:
        total = 200 * 1024 * 1024
        sender.sendall(f"POST /hello HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: {total}\r\n\r\n".encode())
        sender.settimeout(2)
        chunk = b"y" * (1 << 20)
        sent = 0
        try:
            while sent < 150 * 1024 * 1024:
                sender.sendall(chunk)
                sent += len(chunk)
        except (TimeoutError, OSError):
            pass  # the server stopped reading (or answered and closed): what should happen
        time.sleep(1)
        grown = rss_bytes(server.process.pid) - before
        assert grown < 64 * 1024 * 1024, f"the server holds {grown >> 20} MB of an anonymous request's body ({sent >> 20} MB sent)"
    finally:
        sender.close()


def test_adding_auth_path_while_dev_runs_protects_the_api(make_server, tmp_path):
    """`langgraph.json` has an `auth` block without `path`; the user adds `auth.path` while
    `dev` runs. The API must then require authentication (by a reload or a restart), not keep
    serving everyone after a `KeyError: 'graphward_auth'` in the log."""
    files = {"auth.py": AUTH, "graph.py": GRAPH, "langgraph.json": json.dumps({"graphs": {"agent": "./graph.py:graph"}, "auth": {"disable_studio_auth": True}})}
    server = make_server(files)
    assert httpx.post(f"{server.url}/threads/search", json={}).status_code == 200
    write(tmp_path / "langgraph.json", json.dumps({"graphs": {"agent": "./graph.py:graph"}, "auth": {"path": "./auth.py:auth", "disable_studio_auth": True}}))

    def refuses_anonymous():
        try:
            return httpx.post(f"{server.url}/threads/search", json={}, timeout=5).status_code == 401
        except httpx.HTTPError:
            return False

    assert eventually(refuses_anonymous, timeout=30), "the API still serves anonymous requests:\n" + "\n".join(
        line for line in server.output().splitlines() if "reload" in line
    )
    assert httpx.post(f"{server.url}/threads/search", headers=ALICE, json={}).status_code == 200


def test_a_disabled_runs_route_is_not_reached_through_an_empty_segment(make_server):
    """With `http.disable_runs`, `GET /threads//runs` is classified by the enabled
    `/threads/{thread_id}` pattern (empty segments are skipped) and then routed by axum to the
    disabled `/threads/{thread_id}/runs` handler (an empty id): it must be a 404 like every
    disabled route, not the runs handler's 422."""
    server = make_server({"auth.py": AUTH, "graph.py": GRAPH, "langgraph.json": config(http={"disable_runs": True})})
    thread = httpx.post(f"{server.url}/threads", headers=ALICE, json={}).json()["thread_id"]
    assert httpx.get(f"{server.url}/threads/{thread}/runs", headers=ALICE).status_code == 404
    for path in ("/threads//runs", "/threads//stream"):
        answer = httpx.get(f"{server.url}{path}", headers=ALICE)
        assert answer.status_code == 404, f"{path}: {answer.status_code} {answer.text}"


VARIANT_GRAPH = '''
from typing import TypedDict
from langgraph.graph import StateGraph, START, END
from langgraph.types import interrupt

class State(TypedDict, total=False):
    seen: str

def factory(config):
    # The assistant's config picks the graph's shape (a model, a tool set, ...).
    node = "ask_" + config.get("configurable", {}).get("variant", "default")
    builder = StateGraph(State)
    builder.add_node(node, lambda state: {"seen": interrupt("question")})
    builder.add_edge(START, node)
    builder.add_edge(node, END)
    return builder.compile()
'''


def test_a_factory_built_for_a_state_read_gets_the_config_of_the_threads_runs(make_server):
    """A factory whose graph depends on the assistant's config: the thread's state must be read
    with the graph its run used (the reference builds it from the thread's config, which its
    runs fill in). graphward passes the thread's `config`, always `{}`, so the state of an
    interrupted thread shows no `next`, no tasks and no interrupts, and `as_node` of the run's
    graph is refused."""
    server = make_server({"auth.py": AUTH, "graph.py": VARIANT_GRAPH, "langgraph.json": json.dumps({"graphs": {"fac": "./graph.py:factory"}, "auth": {"path": "./auth.py:auth"}})})
    assistant = httpx.post(f"{server.url}/assistants", headers=ALICE, json={"graph_id": "fac", "config": {"configurable": {"variant": "b"}}}).json()
    thread = httpx.post(f"{server.url}/threads", headers=ALICE, json={}).json()["thread_id"]
    ran = httpx.post(f"{server.url}/threads/{thread}/runs/wait", headers=ALICE, json={"assistant_id": assistant["assistant_id"], "input": {}}, timeout=30)
    assert ran.json()["__interrupt__"][0]["value"] == "question"
    assert httpx.get(f"{server.url}/threads/{thread}", headers=ALICE).json()["status"] == "interrupted"
    state = httpx.get(f"{server.url}/threads/{thread}/state", headers=ALICE).json()
    assert state["next"] == ["ask_b"], state
    assert [interrupt["value"] for interrupt in state["interrupts"]] == ["question"], state
    updated = httpx.post(f"{server.url}/threads/{thread}/state", headers=ALICE, json={"values": {"seen": "x"}, "as_node": "ask_b"})
    assert updated.status_code == 200, updated.text


FAILING_APP = '''
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"first half of the report", "more_body": True})
    if scope["path"] == "/fails":
        raise RuntimeError("the app failed mid-stream")
    # "/unfinished": returns without the last body message.
'''


def test_an_app_response_cut_short_is_not_delivered_as_complete(make_server):
    """The app fails (or returns) after part of a streamed body: the client must see an incomplete
    response (the connection closed without the final chunk, as uvicorn does), not a complete
    200 whose body is silently truncated."""
    import pytest

    server = make_server({"graph.py": GRAPH, "webapp.py": FAILING_APP, "langgraph.json": json.dumps({"graphs": {"agent": "./graph.py:graph"}, "http": {"app": "./webapp.py:app"}})})
    for path in ("/fails", "/unfinished"):
        with pytest.raises(httpx.HTTPError):
            answer = httpx.get(f"{server.url}{path}")
            pytest.fail(f"{path}: a complete {answer.status_code} with body {answer.text!r}")


ORG_AUTH = '''
from langgraph_sdk import Auth
TOKENS = {"alice-token": "alice", "bob-token": "bob"}
auth = Auth()

@auth.authenticate
async def authenticate(headers: dict):
    token = headers.get(b"authorization", b"").decode().removeprefix("Bearer ")
    if token not in TOKENS:
        raise Auth.exceptions.HTTPException(status_code=401, detail="Invalid token")
    return {"identity": TOKENS[token], "permissions": ["write"], "org": "org-of-" + TOKENS[token]}
'''

ORG_GRAPH = '''
from typing import TypedDict
from langgraph.graph import StateGraph, START, END
from langgraph_sdk.runtime import ServerRuntime

class State(TypedDict, total=False):
    seen: dict

def _org(user):
    try:
        return user["org"]
    except Exception as error:  # noqa: BLE001
        return "missing: " + type(error).__name__

def factory(runtime: ServerRuntime):
    built_for = _org(runtime.ensure_user())

    def look(state, config):
        return {"seen": {"factory": built_for, "graph": _org(config["configurable"]["langgraph_auth_user"])}}

    builder = StateGraph(State)
    builder.add_node("look", look)
    builder.add_edge(START, "look")
    builder.add_edge("look", END)
    return builder.compile()
'''

ORG_APP = '''
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

async def whoami(request):
    try:
        org = request.user["org"]
    except Exception as error:  # noqa: BLE001
        org = "missing: " + type(error).__name__
    return JSONResponse({"identity": request.user.identity, "org": org})

app = Starlette(routes=[Route("/whoami", whoami)])
'''


def test_the_user_object_keeps_the_fields_authenticate_returned(make_server):
    """authenticate returns `{"identity", "permissions", "org"}`; the user object a graph
    (`langgraph_auth_user`), a factory (`ServerRuntime.user`) and the app (`request.user`) get
    is "the user object itself" (spec auth.md §3.7): `user["org"]` works in the reference.
    graphward rebuilds it from identity/display_name/permissions only."""
    files = {
        "auth.py": ORG_AUTH,
        "graph.py": ORG_GRAPH,
        "webapp.py": ORG_APP,
        "langgraph.json": json.dumps({"graphs": {"fac": "./graph.py:factory"}, "auth": {"path": "./auth.py:auth"}, "http": {"app": "./webapp.py:app", "enable_custom_route_auth": True}}),
    }
    server = make_server(files)
    ran = httpx.post(f"{server.url}/runs/wait", headers=ALICE, json={"assistant_id": "fac", "input": {}}, timeout=30)
    assert ran.status_code == 200, ran.text
    app = httpx.get(f"{server.url}/whoami", headers=BOB).json()
    assert (ran.json()["seen"], app) == ({"factory": "org-of-alice", "graph": "org-of-alice"}, {"identity": "bob", "org": "org-of-bob"})


def _slow_bodies(server, path, count):
    """`count` connections that send their headers and one byte of a 10-byte body, then stall."""
    stalled = []
    for _ in range(count):
        connection = socket.create_connection(("127.0.0.1", server.port))
        connection.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n{{".encode())
        stalled.append(connection)
    return stalled


def _answers_ok(server):
    try:
        return httpx.get(f"{server.url}/ok", timeout=3).status_code == 200
    except httpx.HTTPError:
        return False


def test_stalled_bodies_to_a_public_app_route_do_not_take_every_connection(make_server):
    """Anonymous clients that send a request's headers and then stall its body: on the API they
    are cut after `--header-timeout` (the gate reads a body before authentication within it);
    on a public `http.app` route the body is read without a deadline, so `--max-connections`
    such clients leave the server unable to answer anyone (`/ok` included)."""
    files = {"auth.py": AUTH, "graph.py": GRAPH, "webapp.py": STREAMING_APP, "langgraph.json": config(http={"app": "./webapp.py:app"})}
    server = make_server(files, command="serve", extra_args=["--max-connections", "4", "--header-timeout", "1"])
    api = _slow_bodies(server, "/threads/search", 4)
    time.sleep(2.5)
    assert _answers_ok(server), "baseline: stalled API bodies are cut after the header timeout"
    for connection in api:
        connection.close()
    time.sleep(0.5)
    app = _slow_bodies(server, "/hello", 4)
    try:
        time.sleep(2.5)
        assert _answers_ok(server), "four stalled anonymous bodies to a public app route took every connection"
    finally:
        for connection in app:
            connection.close()


EXPORT_APP = '''
from fastapi import FastAPI

app = FastAPI()

@app.get("/threads/{rest:path}/export")
async def export(rest: str):
    return {"export": rest}
'''


def test_an_app_route_with_a_path_parameter_in_the_middle_does_not_shadow_the_api(make_server):
    """`/threads/{rest:path}/export` matches only paths ending in `/export` in Starlette; custom.rs
    treats `{rest:path}` as "everything from here" and sends every `GET /threads/...` to the app,
    whose 404 then hides the API's thread, state and history reads."""
    server = make_server({"auth.py": AUTH, "graph.py": GRAPH, "webapp.py": EXPORT_APP, "langgraph.json": config(http={"app": "./webapp.py:app"})})
    thread = httpx.post(f"{server.url}/threads", headers=ALICE, json={}).json()["thread_id"]
    assert httpx.get(f"{server.url}/threads/{thread}/export").json() == {"export": thread}
    for path in (f"/threads/{thread}", f"/threads/{thread}/state", f"/threads/{thread}/history"):
        answer = httpx.get(f"{server.url}{path}", headers=ALICE)
        assert answer.status_code == 200, f"{path}: {answer.status_code} {answer.text}"


def test_disable_webhooks_also_holds_for_runs_queued_before_it_was_set(make_server):
    """`http.disable_webhooks` drops a run's webhook when the run is created; a run queued
    before the setting (`after_seconds`, then a restart with the new `langgraph.json`) still
    calls its webhook, because the run executor does not check the setting."""
    import http.server
    import threading

    hits = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the stdlib's name
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    receiver = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    env = {"GRAPHWARD_WEBHOOK_ALLOW_PRIVATE": "1"}
    try:
        files = {"graph.py": GRAPH, "langgraph.json": json.dumps({"graphs": {"agent": "./graph.py:graph"}})}
        first = make_server(files, env=env)
        thread = httpx.post(f"{first.url}/threads", json={}).json()["thread_id"]
        hook = f"http://127.0.0.1:{receiver.server_port}/hook"
        run = httpx.post(f"{first.url}/threads/{thread}/runs", json={"assistant_id": "agent", "input": {}, "webhook": hook, "after_seconds": 6}).json()
        first.stop()
        files["langgraph.json"] = json.dumps({"graphs": {"agent": "./graph.py:graph"}, "http": {"disable_webhooks": True}})
        second = make_server(files, env=env)
        joined = httpx.get(f"{second.url}/threads/{thread}/runs/{run['run_id']}/join", timeout=60)
        assert joined.status_code == 200, joined.text
        assert httpx.get(f"{second.url}/threads/{thread}/runs/{run['run_id']}").json()["status"] == "success"
        time.sleep(2)
        assert hits == [], f"the webhook was called with http.disable_webhooks set: {hits}"
    finally:
        receiver.shutdown()
