"""Auth through HTTP, on the routes that exist: the example app with the official client, and
small auth.py files for each row of spec/auth.md §3.6, §4.3 and §5 (with graphward's
fail-closed deviations), under the real langgraph-sdk and under graphward's shim.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid

import httpx
import pytest
from langgraph_sdk import get_client, get_sync_client
from langgraph_sdk.errors import AuthenticationError, NotFoundError

from conftest import REPO, Server

AGENT_ID = str(uuid.uuid5(uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8"), "agent"))
USER1 = {"Authorization": "Bearer user1-token"}

# A graph that needs no langgraph (duck-typed), so apps also run in a venv without it.
DUCK_GRAPH = """
class Graph:
    name = "LangGraph"
    async def astream(self, *args, **kwargs):
        yield {}
    def get_graph(self, *args, **kwargs):
        return None
    async def aget_state(self, *args, **kwargs):
        return None

graph = Graph()
"""

TOKENS = '''
from langgraph_sdk import Auth

auth = Auth()

@auth.authenticate
async def authenticate(authorization: str | None):
    if authorization != "Bearer good":
        raise Auth.exceptions.HTTPException(status_code=401, detail="Invalid token")
    return {"identity": "alice", "permissions": ["read"]}
'''


def app(handlers: str, *, extra_config: str = "") -> dict[str, str]:
    return {
        "langgraph.json": '{"graphs": {"agent": "./agent.py:graph"}, "auth": {"path": "./auth.py:auth"%s}}' % extra_config,
        "agent.py": DUCK_GRAPH,
        "auth.py": TOKENS + textwrap.dedent(handlers),
    }


def get(server: Server, path: str, headers=None) -> httpx.Response:
    return httpx.get(f"{server.url}{path}", headers=headers or {"Authorization": "Bearer good"})


# --- the example app (examples/auth.py), official client ---------------------------------


def test_public_routes_never_authenticate(example_server):
    for path in ("/ok", "/", "/info", "/docs", "/openapi.json"):
        response = httpx.get(f"{example_server.url}{path}", headers={"Authorization": "Bearer nope"})
        assert response.status_code == 200, path


def test_bad_or_missing_token_is_401_everywhere_else(example_server):
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "garbage"}):
        for method, path in (("GET", f"/assistants/{AGENT_ID}"), ("POST", "/assistants/search"), ("GET", "/no/such/route"), ("DELETE", "/ok")):
            response = httpx.request(method, f"{example_server.url}{path}", headers=headers, json={} if method == "POST" else None)
            assert (response.status_code, response.json()) == (401, {"detail": "Invalid token"}), (method, path, headers)


def test_a_connection_left_with_an_unread_body_is_closed_for_the_client(example_server, open_server):
    """A large body (over the 64 KiB read before authentication) refused with a 401 unread, or
    answered without being read (an unknown route), leaves the connection unusable: the
    answer says `Connection: close`, so a keep-alive client opens a new connection for its
    next request instead of failing with "Server disconnected" on the old one."""
    big = {"padding": "x" * 300_000}
    cases = [
        (example_server, {}, "/threads/search"),
        (example_server, USER1, "/no/such/route"),
        (open_server, {}, "/no/such/route"),
    ]
    for server, headers, path in cases:
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
            for _ in range(20):
                refused = client.post(path, json=big)
                assert refused.status_code in (401, 404), (path, refused.status_code)
                assert refused.headers.get("connection") == "close", (path, refused.headers)
                assert client.get("/ok").status_code == 200
    # A body the route reads, or a small one, leaves the connection open.
    with httpx.Client(base_url=example_server.url, headers=USER1, timeout=30) as client:
        assert "connection" not in client.post("/threads/search", json={}).headers
        assert "connection" not in client.post("/threads/search", json={"metadata": {"padding": "x" * 300_000}}).headers


@pytest.mark.anyio
async def test_owner_filter_hides_system_assistants(example_server):
    """The global owner filter hides the system assistant (reference behaviour, spec §5.5)."""
    client = get_client(url=example_server.url, headers=USER1)
    with pytest.raises(NotFoundError):
        await client.assistants.get(AGENT_ID)
    assert await client.assistants.search() == []
    assert await client.assistants.count() == 0
    bad = get_client(url=example_server.url, headers={"Authorization": "Bearer nope"})
    with pytest.raises(AuthenticationError):
        await bad.assistants.search()
    # Authenticated unknown routes are a plain 404.
    assert httpx.get(f"{example_server.url}/nope", headers=USER1).status_code == 404


def test_studio_bypass_only_under_dev(example_server, tmp_path):
    studio = {"x-auth-scheme": "langsmith"}
    # dev: the Studio user passes authentication; the owner filter still applies.
    assert httpx.post(f"{example_server.url}/assistants/search", headers=studio, json={}).json() == []
    assert httpx.post(f"{example_server.url}/assistants/search", headers={"x-auth-scheme": "LangSmith"}, json={}).status_code == 401
    # serve: the header means nothing. (Its own database: one process serves a database file.)
    server = Server(REPO / "langgraph.json", command="serve", extra_args=["--database", str(tmp_path / "state.db")])
    try:
        response = httpx.post(f"{server.url}/assistants/search", headers=studio, json={})
        assert (response.status_code, response.json()) == (401, {"detail": "Invalid token"})
    finally:
        assert server.stop() == 0


def test_disable_studio_auth(make_server):
    server = make_server(app("@auth.on\nasync def allow(ctx, value):\n    return True\n", extra_config=', "disable_studio_auth": true'))
    assert get(server, "/assistants/agent", headers={"x-auth-scheme": "langsmith"}).status_code == 401


# --- handler results (§4.3) and filters (§5), with the fail-closed deviations --------------

HANDLER_CASES = [
    # (handler body, status, detail, extra header)
    ("return None", 200, None, None),
    ("return True", 200, None, None),
    ("return {}", 200, None, None),
    ("return False", 403, "Forbidden", None),
    ("return {'created_by': 'system'}", 200, None, None),
    ("return {'created_by': {'$eq': 'system'}}", 200, None, None),
    ("return {'created_by': 'someone'}", 404, "Not Found", None),
    ("return {'created_by': {'$contains': 'system'}}", 404, "Not Found", None),
    ("return {'$or': [{'created_by': 'x'}, {'created_by': 'system'}]}", 200, None, None),
    ("return 42", 500, "Auth handler returned invalid result. Expected filter dict, None, or boolean. Got <class 'int'> instead.", None),
    ("raise AssertionError('not yours')", 403, "not yours", None),
    ("assert False", 403, "unknown error", None),
    ("raise ValueError('bad value')", 400, "bad value", None),
    ("raise Auth.exceptions.HTTPException(418, 'teapot', headers={'x-a': 'b'})", 418, "teapot", ("x-a", "b")),
    ("raise RuntimeError('boom')", 500, "Internal Server Error", None),
    # Fail closed where the reference matches everything:
    ("return {'created_by': {'$ne': 'x'}}", 500, "Your auth handler returned a filter with an unsupported operator `$ne` on `created_by`", None),
    ("return {'created_by': {}}", 500, "Your auth handler returned a filter with an empty condition on `created_by`", None),
    ("return {'$or': [{'a': 1}]}", 500, "Your auth handler returned a filter with an invalid $or operator.", None),
]


@pytest.mark.parametrize(("body", "status", "detail", "header"), HANDLER_CASES, ids=[case[0] for case in HANDLER_CASES])
def test_handler_results(make_server, body, status, detail, header):
    server = make_server(app(f"@auth.on.assistants.read\nasync def check(ctx, value):\n    {body}\n"))
    response = get(server, "/assistants/agent")
    assert response.status_code == status, response.text
    if detail is not None:
        assert response.json()["detail"].startswith(detail)
    else:
        assert response.json()["assistant_id"] == AGENT_ID
    if header is not None:
        assert response.headers[header[0]] == header[1]
    assert get(server, "/ok").status_code == 200


def test_one_app_many_rows(make_server):
    """Resolution order (§4.1), search narrowing (§4.4) and the context a handler sees."""
    handlers = '''
@auth.on
async def fallback(ctx, value):
    return False

@auth.on.assistants
async def assistants_any(ctx, value):
    assert isinstance(ctx, Auth.types.AuthContext)
    assert (ctx.resource, ctx.action) == ("assistants", "read")
    assert ctx.user.identity == "alice" and ctx.permissions == ["read"]
    assert isinstance(value["assistant_id"], __import__("uuid").UUID)
    return None

@auth.on.assistants.search
async def narrow(ctx, value):
    if value["graph_id"] == "agent":
        value["metadata"]["created_by"] = "nobody"  # in place: narrows the search
    else:
        value["metadata"] = {"created_by": "nobody"}  # replaced: no effect
    return None
'''
    server = make_server(app(handlers))
    assert get(server, "/assistants/agent").status_code == 200
    search = lambda body: httpx.post(f"{server.url}/assistants/search", headers={"Authorization": "Bearer good"}, json=body).json()
    assert search({"graph_id": "agent"}) == []
    assert len(search({})) == 1
    assert httpx.post(f"{server.url}/assistants/count", headers={"Authorization": "Bearer good"}, json={"graph_id": "agent"}).json() == 0


# --- authentication (§3.6) with graphward's kept headers -----------------------------------

AUTHENTICATE_CASES = [
    ("raise Auth.exceptions.HTTPException(401, 'Nope', headers={'WWW-Authenticate': 'Bearer'})", 401, "Nope", ("www-authenticate", "Bearer")),
    ("raise Auth.exceptions.HTTPException(403)", 403, "Forbidden", None),
    ("raise Auth.exceptions.HTTPException(404, 'hidden')", 404, "hidden", None),
    ("raise ValueError('bad header')", 400, "bad header", None),
    ("raise AssertionError('x')", 500, "Internal Server Error", None),
    ("return None", 400, "Expected a BaseUser instance with required property: identity (str).", None),
    ("return ('a', 'b', 'c')", 400, "Expected a tuple with two elements (permissions, user), got 3", None),
    ("return 'alice'", 200, None, None),
]


@pytest.mark.parametrize(("body", "status", "detail", "header"), AUTHENTICATE_CASES, ids=[case[0] for case in AUTHENTICATE_CASES])
def test_authenticate_outcomes(make_server, body, status, detail, header):
    auth_py = f"from langgraph_sdk import Auth\nauth = Auth()\n@auth.authenticate\nasync def authenticate(headers):\n    {body}\n"
    server = make_server({"langgraph.json": '{"graphs": {"agent": "./agent.py:graph"}, "auth": {"path": "./auth.py:auth"}}', "agent.py": DUCK_GRAPH, "auth.py": auth_py})
    response = get(server, "/assistants/agent")
    assert response.status_code == status, response.text
    if detail is not None:
        assert response.json()["detail"].startswith(detail)
    if header is not None:
        assert response.headers[header[0]] == header[1]


def test_authenticate_sees_the_request(make_server):
    handlers = '''
@auth.on.assistants.read
async def echo(ctx, value):
    raise Auth.exceptions.HTTPException(403, detail=ctx.user.seen)
'''
    auth_py = '''
from langgraph_sdk import Auth
auth = Auth()

@auth.authenticate
async def authenticate(request, path, method, headers, query_params, authorization, path_params, scopes, user):
    seen = "|".join([
        path, method, str(headers[b"x-custom"], "utf-8"), query_params["q"], authorization or "-",
        repr(path_params), repr(scopes), repr(user), request.url.path, request.headers["x-custom"],
    ])
    return {"identity": "alice", "seen": seen}
''' + handlers
    server = make_server({"langgraph.json": '{"graphs": {"agent": "./agent.py:graph"}, "auth": {"path": "./auth.py:auth"}}', "agent.py": DUCK_GRAPH, "auth.py": auth_py})
    response = httpx.get(f"{server.url}/assistants/agent?q=a%20b", headers={"x-custom": "v", "Authorization": "Bearer t"})
    assert response.status_code == 403
    assert response.json()["detail"] == "/assistants/agent|GET|v|a b|Bearer t|{}|[]|None|/assistants/agent|v"


def test_hanging_handler_is_cut_off_with_503(make_server):
    server = make_server(
        app("import asyncio\n@auth.on.assistants.read\nasync def slow(ctx, value):\n    await asyncio.sleep(60)\n"),
        env={"GRAPHWARD_AUTH_TIMEOUT": "0.5"},
    )
    response = get(server, "/assistants/agent")
    assert (response.status_code, response.json()) == (503, {"detail": "Authentication timed out"})
    assert get(server, "/ok").status_code == 200


def test_auth_cache_reuses_only_same_header_values(make_server):
    auth_py = '''
from langgraph_sdk import Auth
import itertools
calls = itertools.count(1)
auth = Auth()

@auth.authenticate
async def authenticate(authorization):
    return {"identity": f"{authorization}#{next(calls)}"}

@auth.on.assistants.read
async def echo(ctx, value):
    raise Auth.exceptions.HTTPException(403, detail=ctx.user.identity)
'''
    config = '{"graphs": {"agent": "./agent.py:graph"}, "auth": {"path": "./auth.py:auth", "cache": {"cache_keys": ["Authorization"], "ttl_seconds": 60}}}'
    server = make_server({"langgraph.json": config, "agent.py": DUCK_GRAPH, "auth.py": auth_py})
    who = lambda token: get(server, "/assistants/agent", headers={"Authorization": token}).json()["detail"]
    first = who("a")
    assert who("a") == first
    assert who("b") != first and who("b").startswith("b#")
    assert who("a") == first


# --- the shim: the same decisions without langgraph-sdk installed --------------------------


@pytest.fixture(scope="module")
def bare_venv(tmp_path_factory):
    """A venv with nothing installed: user code imports graphward's langgraph_sdk shim."""
    path = tmp_path_factory.mktemp("bare") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    return path


@pytest.mark.embedded
def test_shim_serves_the_same_decisions(make_server, bare_venv):
    handlers = '''
@auth.on.assistants.read
async def check(ctx, value):
    assert isinstance(ctx, Auth.types.AuthContext)
    import langgraph_sdk
    assert getattr(langgraph_sdk, "GRAPHWARD_SHIM", False), "the shim is in use"
    return {"created_by": "system"}

@auth.on.assistants.search
async def deny(ctx, value):
    return False
'''
    server = make_server(app(handlers), env={"VIRTUAL_ENV": str(bare_venv)})
    assert get(server, "/assistants/agent").json()["assistant_id"] == AGENT_ID
    assert get(server, "/assistants/agent", headers={"Authorization": "Bearer bad"}).json() == {"detail": "Invalid token"}
    response = httpx.post(f"{server.url}/assistants/search", headers={"Authorization": "Bearer good"}, json={})
    assert (response.status_code, response.json()) == (403, {"detail": "Forbidden"})
    client = get_sync_client(url=server.url, headers={"Authorization": "Bearer good"})
    assert client.assistants.get(AGENT_ID)["graph_id"] == "agent"


def test_cors_preflight_skips_auth(example_server):
    response = httpx.options(
        f"{example_server.url}/assistants/search",
        headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"},
    )
    assert response.status_code == 200 and response.text == "OK"
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["access-control-allow-headers"] == "authorization,content-type"
    simple = httpx.post(f"{example_server.url}/threads/search", headers={**USER1, "Origin": "http://localhost:3000"}, json={})
    assert simple.headers["access-control-allow-origin"] == "*"
    # LangGraph Studio, a public page, reaching the local server: Chrome's private-network
    # preflight.
    studio = httpx.options(
        f"{example_server.url}/assistants/search",
        headers={"Origin": "https://smith.langchain.com", "Access-Control-Request-Method": "POST", "Access-Control-Request-Private-Network": "true"},
    )
    assert studio.status_code == 200
    assert studio.headers["access-control-allow-private-network"] == "true"
    assert "x-pagination-total" in simple.headers["access-control-expose-headers"]


def test_studio_user_is_a_mapping_and_first_scheme_header_counts(example_server, make_server):
    handlers = """
@auth.on.assistants.read
async def show(ctx, value):
    user = ctx.user
    assert isinstance(user, Auth.types.StudioUser)
    raise Auth.exceptions.HTTPException(403, detail=repr((dict(user), len(user), "identity" in user, isinstance(user, Auth.types.BaseUser))))
"""
    server = make_server(app(handlers))
    response = httpx.get(f"{server.url}/assistants/agent", headers=[("x-auth-scheme", "langsmith"), ("x-auth-scheme", "other")])
    assert response.status_code == 403
    assert response.json()["detail"] == repr(
        ({"kind": "StudioUser", "is_authenticated": False, "display_name": "langgraph-studio-user", "identity": "langgraph-studio-user", "permissions": []}, 5, True, True)
    )
    assert httpx.get(f"{server.url}/assistants/agent", headers=[("x-auth-scheme", "other"), ("x-auth-scheme", "langsmith")]).status_code == 401


def test_empty_value_error_and_empty_authorization(make_server):
    auth_py = """
from langgraph_sdk import Auth
auth = Auth()

@auth.authenticate
async def authenticate(authorization, scope):
    if authorization is None:
        raise ValueError()
    return {"identity": "x", "raw": scope["raw_path"].decode()}

@auth.on.assistants.read
async def show(ctx, value):
    raise Auth.exceptions.HTTPException(403, detail=ctx.user.raw)
"""
    server = make_server({"langgraph.json": '{"graphs": {"agent": "./agent.py:graph"}, "auth": {"path": "./auth.py:auth"}}', "agent.py": DUCK_GRAPH, "auth.py": auth_py})
    response = httpx.get(f"{server.url}/assistants/agent", headers={"Authorization": ""})
    assert (response.status_code, response.json()) == (400, {"detail": "unknown error"})
    response = httpx.get(f"{server.url}/assistants/a%67ent", headers={"Authorization": "x"})
    assert response.json()["detail"] == "/assistants/a%67ent"


def test_authenticate_may_use_httpx(make_server):
    """Libraries that need a current asyncio Task (httpx, anyio) work in authenticate."""
    auth_py = """
import httpx
from langgraph_sdk import Auth
auth = Auth()

@auth.authenticate
async def authenticate(authorization):
    async with httpx.AsyncClient(timeout=2) as client:
        try:
            await client.get("http://127.0.0.1:9/introspect")
        except httpx.ConnectError:
            pass
    return "alice"

@auth.on.assistants.read
async def who(ctx, value):
    raise Auth.exceptions.HTTPException(403, detail=ctx.user.identity)
"""
    server = make_server({"langgraph.json": '{"graphs": {"agent": "./agent.py:graph"}, "auth": {"path": "./auth.py:auth"}}', "agent.py": DUCK_GRAPH, "auth.py": auth_py})
    response = get(server, "/assistants/agent")
    assert (response.status_code, response.json()) == (403, {"detail": "alice"})
