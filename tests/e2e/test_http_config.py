"""`langgraph.json` → `http`: mount prefix, disabled route groups, CORS, headers copied into a
run's config, the access log, and apps that are plain ASGI callables or unauthenticated."""

from __future__ import annotations

import json

import httpx
import pytest
from langgraph_sdk import get_client

GRAPH = '''
from typing import TypedDict
from langgraph.graph import StateGraph, START, END

class State(TypedDict, total=False):
    seen: dict

def look(state, config):
    return {"seen": {key: value for key, value in config["configurable"].items() if isinstance(value, str)}}

builder = StateGraph(State)
builder.add_node("look", look)
builder.add_edge(START, "look")
builder.add_edge("look", END)
graph = builder.compile()
'''

STARLETTE_APP = '''
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

async def hello(request):
    user = request.user
    return JSONResponse({"authenticated": user.is_authenticated, "path": request.url.path, "root": request.scope.get("root_path")})

app = Starlette(routes=[Route("/hello", hello)])
'''

RAW_APP = '''
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 207, "headers": [(b"x-raw", b"1")]})
    await send({"type": "http.response.body", "body": scope["path"].encode(), "more_body": True})
    await send({"type": "http.response.body", "body": b"!"})
'''

AUTH = '''
from langgraph_sdk import Auth
auth = Auth()

@auth.authenticate
async def authenticate(authorization: str | None):
    if authorization != "Bearer token":
        raise Auth.exceptions.HTTPException(status_code=401, detail="no")
    return "user-1"
'''


def config(**http):
    return json.dumps({"graphs": {"agent": "./graph.py:graph"}, "http": http})


def test_mount_prefix_serves_everything_under_it(make_server):
    server = make_server({"graph.py": GRAPH, "webapp.py": STARLETTE_APP, "langgraph.json": config(mount_prefix="/api/v1", app="./webapp.py:app")}, ready_path="/api/v1/ok")
    assert httpx.get(f"{server.url}/api/v1/ok").status_code == 200
    assert httpx.get(f"{server.url}/ok").status_code == 404
    hello = httpx.get(f"{server.url}/api/v1/hello").json()
    assert hello == {"authenticated": False, "path": "/api/v1/hello", "root": "/api/v1"}
    client = get_client(url=f"{server.url}/api/v1")
    values = client_run(client)
    assert values["seen"]["graph_id"] == "agent"


def client_run(client):
    import asyncio

    async def go():
        thread = await client.threads.create()
        return await client.runs.wait(thread["thread_id"], "agent", input={})

    return asyncio.run(go())


def test_disabled_groups_are_not_served(make_server):
    files = {"graph.py": GRAPH, "auth.py": AUTH, "langgraph.json": json.dumps({
        "graphs": {"agent": "./graph.py:graph"}, "auth": {"path": "./auth.py:auth"},
        "http": {"disable_store": True, "disable_meta": True, "disable_threads": True, "disable_mcp": True, "disable_a2a": True},
    })}
    server = make_server(files)
    token = {"Authorization": "Bearer token"}
    assert httpx.get(f"{server.url}/ok").status_code == 200
    # Like any unknown route: authenticated first.
    assert httpx.put(f"{server.url}/store/items", json={"namespace": ["a"], "key": "k", "value": {}}).status_code == 401
    assert httpx.put(f"{server.url}/store/items", headers=token, json={"namespace": ["a"], "key": "k", "value": {}}).status_code == 404
    assert httpx.get(f"{server.url}/info", headers=token).status_code == 404
    assert httpx.post(f"{server.url}/threads", headers=token, json={}).status_code == 404
    assert httpx.post(f"{server.url}/assistants/search", headers=token, json={}).status_code == 200
    rpc = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    assert httpx.post(f"{server.url}/mcp", json=rpc, headers={"Accept": "application/json, text/event-stream"}).status_code == 401
    assert httpx.post(f"{server.url}/mcp", json=rpc, headers={**token, "Accept": "application/json, text/event-stream"}).status_code == 404
    for path in ("/a2a/agent", "/a2a/agent/.well-known/agent-card.json", "/.well-known/agent-card.json?assistant_id=agent"):
        assert httpx.get(f"{server.url}{path}", headers=token).status_code == 404, path
    # Runs stay (a stateless run needs no thread routes).
    assert httpx.post(f"{server.url}/runs/wait", headers=token, json={"assistant_id": "agent", "input": {}}).status_code == 200


def test_cors_policy_from_config(make_server):
    server = make_server({"graph.py": GRAPH, "langgraph.json": config(cors={
        "allow_origins": ["https://good.example"], "allow_methods": ["GET", "POST"], "allow_headers": ["x-custom"],
        "allow_credentials": True, "expose_headers": ["x-pagination-total"], "max_age": 30,
    })})
    preflight = {"Origin": "https://good.example", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x-custom, content-type"}
    good = httpx.options(f"{server.url}/threads/search", headers=preflight)
    assert good.status_code == 200
    assert good.headers["access-control-allow-origin"] == "https://good.example"
    assert good.headers["access-control-allow-credentials"] == "true"
    assert good.headers["access-control-max-age"] == "30"
    bad_origin = httpx.options(f"{server.url}/threads/search", headers={**preflight, "Origin": "https://evil.example"})
    assert bad_origin.status_code == 400
    assert "access-control-allow-origin" not in bad_origin.headers
    bad_method = httpx.options(f"{server.url}/threads/search", headers={**preflight, "Access-Control-Request-Method": "DELETE"})
    assert bad_method.status_code == 400
    bad_header = httpx.options(f"{server.url}/threads/search", headers={**preflight, "Access-Control-Request-Headers": "x-other"})
    assert bad_header.status_code == 400
    simple = httpx.post(f"{server.url}/threads/search", headers={"Origin": "https://good.example"}, json={})
    assert simple.headers["access-control-allow-origin"] == "https://good.example"
    assert simple.headers["access-control-expose-headers"] == "x-pagination-total"
    foreign = httpx.post(f"{server.url}/threads/search", headers={"Origin": "https://evil.example"}, json={})
    assert foreign.status_code == 200 and "access-control-allow-origin" not in foreign.headers


def test_configurable_headers_reach_the_run_but_never_the_server_keys(make_server):
    server = make_server({"graph.py": GRAPH, "langgraph.json": config(configurable_headers={"include": ["*"], "exclude": ["x-secret"]})})
    headers = {"x-tenant-id": "t-1", "x-secret": "s", "authorization": "Bearer abc", "thread_id": "forged", "langgraph_auth_user_id": "forged"}
    answer = httpx.post(f"{server.url}/runs/wait", headers=headers, json={"assistant_id": "agent", "input": {}})
    seen = answer.json()["seen"]
    assert seen["x-tenant-id"] == "t-1"
    assert "x-secret" not in seen
    # Credentials only when named exactly; server keys never.
    assert "authorization" not in seen
    assert seen["thread_id"] != "forged"
    assert seen.get("langgraph_auth_user_id", "") != "forged"


HEADERS = {"x-tenant-id": "t-1", "authorization": "Bearer abc"}


def test_configurable_headers_may_name_a_credential_exactly(make_server):
    named = make_server({"graph.py": GRAPH, "langgraph.json": config(configurable_headers={"includes": ["authorization"]})})
    seen = httpx.post(f"{named.url}/runs/wait", headers=HEADERS, json={"assistant_id": "agent", "input": {}}).json()["seen"]
    assert seen["authorization"] == "Bearer abc" and "x-tenant-id" not in seen


def test_without_configurable_headers_no_header_reaches_the_run(make_server):
    plain = make_server({"graph.py": GRAPH, "langgraph.json": json.dumps({"graphs": {"agent": "./graph.py:graph"}})})
    seen = httpx.post(f"{plain.url}/runs/wait", headers=HEADERS, json={"assistant_id": "agent", "input": {}}).json()["seen"]
    assert "x-tenant-id" not in seen and "authorization" not in seen


def test_disable_webhooks_drops_the_webhook(make_server):
    server = make_server({"graph.py": GRAPH, "langgraph.json": config(disable_webhooks=True)})
    thread = httpx.post(f"{server.url}/threads", json={}).json()
    run = httpx.post(f"{server.url}/threads/{thread['thread_id']}/runs", json={"assistant_id": "agent", "input": {}, "webhook": "https://example.com/hook"}).json()
    assert run["kwargs"]["webhook"] is None


def test_plain_asgi_apps_get_every_path_the_api_does_not_serve(make_server):
    server = make_server({"graph.py": GRAPH, "webapp.py": RAW_APP, "langgraph.json": config(app="./webapp.py:app")})
    answer = httpx.get(f"{server.url}/anything/here")
    assert answer.status_code == 207 and answer.headers["x-raw"] == "1" and answer.text == "/anything/here!"
    assert httpx.get(f"{server.url}/ok").json()["ok"] is True


def test_custom_routes_without_custom_route_auth_are_public(make_server):
    files = {"graph.py": GRAPH, "auth.py": AUTH, "webapp.py": STARLETTE_APP, "langgraph.json": json.dumps({
        "graphs": {"agent": "./graph.py:graph"}, "auth": {"path": "./auth.py:auth"}, "http": {"app": "./webapp.py:app"},
    })}
    server = make_server(files)
    assert httpx.get(f"{server.url}/hello").json()["authenticated"] is False
    assert httpx.post(f"{server.url}/threads", json={}).status_code == 401


def test_access_log_writes_allowed_headers_only(make_server):
    server = make_server(
        {"graph.py": GRAPH, "langgraph.json": config(logging_headers={"include": ["x-*", "authorization"], "exclude": ["x-private"]})},
        env={"GRAPHWARD_LOG": "info,graphward::access=debug"},
    )
    httpx.get(f"{server.url}/ok", headers={"x-trace": "abc", "x-private": "p", "authorization": "Bearer q", "cookie": "c=1"})
    line = next(line for line in server.output().splitlines() if "request" in line and "/ok" in line and "x-trace" in line)
    assert "x-trace=abc" in line and "authorization=Bearer q" in line
    assert "x-private" not in line and "c=1" not in line


UPLOAD_APP = """
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

async def upload(request):
    size, chunks = 0, 0
    async for chunk in request.stream():
        size += len(chunk)
        chunks += 1 if chunk else 0
    return JSONResponse({"size": size, "chunks": chunks})

async def ignore(request):
    return JSONResponse({"ignored": True})

app = Starlette(routes=[Route("/upload", upload, methods=["POST"]), Route("/ignore", ignore, methods=["POST"])])
"""


def test_large_request_bodies_stream_to_the_app(make_server):
    server = make_server({"graph.py": GRAPH, "webapp.py": UPLOAD_APP, "langgraph.json": config(app="./webapp.py:app")})

    def chunks():
        for _ in range(40):
            yield b"x" * (256 * 1024)

    answer = httpx.post(f"{server.url}/upload", content=chunks(), timeout=60).json()
    assert answer["size"] == 40 * 256 * 1024 and answer["chunks"] > 1
    # An app that answers without reading the body: the upload ends, the server keeps serving.
    assert httpx.post(f"{server.url}/ignore", content=chunks(), timeout=60).json() == {"ignored": True}
    assert httpx.post(f"{server.url}/upload", content=b"small").json() == {"size": 5, "chunks": 1}


LIFESPAN_APP = """
import contextlib, os, pathlib
from starlette.applications import Starlette

@contextlib.asynccontextmanager
async def lifespan(app):
    pathlib.Path(os.environ["MARKER"]).write_text("started")
    yield
    pathlib.Path(os.environ["MARKER"]).write_text("stopped")

app = Starlette(lifespan=lifespan)
"""


def test_the_app_lifespan_starts_and_stops_with_the_server(make_server, tmp_path):
    marker = tmp_path / "marker.txt"
    server = make_server({"graph.py": GRAPH, "webapp.py": LIFESPAN_APP, "langgraph.json": config(app="./webapp.py:app")}, env={"MARKER": str(marker)})
    assert marker.read_text() == "started"
    assert server.stop() == 0
    assert marker.read_text() == "stopped"
