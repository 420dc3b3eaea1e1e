"""Contract tests for graphward's auth host, `python/graphward/auth_host.py` (spec/auth.md
§1.2, §1.3, §3, §4.1-§4.4, §6.2), through its Python API only.

Every test runs four times: with graphward's `langgraph_sdk` shim and with the real
langgraph-sdk (skipped when absent), each with Starlette importable and with Starlette
blocked (the host then uses its own Request/QueryParams stand-ins).

Deliberate deviation from the reference (kept by these tests): an HTTPException raised
by authenticate keeps its status, detail and headers for every status.

Run: python -m pytest tests/e2e/test_auth_host.py -q
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import sys
import textwrap
import threading
import types as pytypes
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYTHON_ROOT = ROOT / "python"
PKG = "langgraph_sdk"


def _load_module(name: str, path: Path) -> pytypes.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


HOST = _load_module("graphward_host", PYTHON_ROOT / "graphward" / "host.py")
AUTH_HOST = _load_module("graphward_auth", PYTHON_ROOT / "graphward" / "auth_host.py")


# ---------------------------------------------------------------------------
# The two flavours of langgraph_sdk, loaded in isolation (as in test_shim.py)
# ---------------------------------------------------------------------------


def _is_sdk_module(name: str) -> bool:
    return name == PKG or name.startswith(PKG + ".")


def _take_sdk_modules() -> dict:
    taken = {n: m for n, m in sys.modules.items() if _is_sdk_module(n)}
    for name in taken:
        del sys.modules[name]
    return taken


class Sdk:
    def __init__(self, kind: str, modules: dict) -> None:
        self.kind = kind
        self.modules = modules
        self.types = modules[PKG + ".auth.types"]
        self.exceptions = modules[PKG + ".auth.exceptions"]
        self.Auth = modules[PKG + ".auth"].Auth

    @contextlib.contextmanager
    def active(self):
        previous = _take_sdk_modules()
        sys.modules.update(self.modules)
        try:
            yield
        finally:
            _take_sdk_modules()
            sys.modules.update(previous)


def _load_isolated(kind: str) -> Sdk:
    previous = _take_sdk_modules()
    saved_path = list(sys.path)
    try:
        sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != PYTHON_ROOT]
        if kind == "shim":
            sys.path.insert(0, str(PYTHON_ROOT))
        importlib.invalidate_caches()
        if kind == "real":
            pytest.importorskip(PKG)
        for name in (PKG, PKG + ".auth", PKG + ".auth.types", PKG + ".auth.exceptions"):
            importlib.import_module(name)
        loaded = {n: m for n, m in sys.modules.items() if _is_sdk_module(n)}
    finally:
        _take_sdk_modules()
        sys.modules.update(previous)
        sys.path[:] = saved_path
    from_shim = PYTHON_ROOT in Path(loaded[PKG].__file__).resolve().parents
    assert from_shim == (kind == "shim")
    return Sdk(kind, loaded)


@pytest.fixture(scope="module", params=["shim", "real"])
def sdk(request) -> Sdk:
    return _load_isolated(request.param)


@pytest.fixture(params=["starlette", "plain"])
def web(request, monkeypatch):
    """With Starlette, or with its import blocked (the host's own stand-ins are used)."""
    if request.param == "starlette":
        pytest.importorskip("starlette")
    else:
        for name in ("starlette", "starlette.requests", "starlette.datastructures"):
            monkeypatch.setitem(sys.modules, name, None)
    return request.param


HEADER = """\
from langgraph_sdk import Auth

auth = Auth()
CALLS = []

"""

DEFAULT_AUTHENTICATE = """
@auth.authenticate
async def who(authorization: str | None):
    CALLS.append(authorization)
    if not authorization:
        raise Auth.exceptions.HTTPException(status_code=401)
    return {"identity": authorization.split(" ", 1)[-1], "permissions": ["read"]}
"""

OPTIONS = {"studio_allowed": False, "allow_langsmith_api_keys": False, "cache": None}


@pytest.fixture
def make(sdk, web, tmp_path):
    """Writes an auth.py (HEADER + source) and loads it with `load_auth`."""

    def make(source: str, *, options: dict | None = None, attribute: str = "auth", header: bool = True):
        path = tmp_path / "auth.py"
        path.write_text((HEADER if header else "") + textwrap.dedent(source))
        with sdk.active():
            return AUTH_HOST.load_auth(f"./auth.py:{attribute}", str(path), None, attribute, {**OPTIONS, **(options or {})})

    return make


def module_of(host):
    """The globals of the loaded auth.py."""
    return host.auth._authenticate_handler.__globals__


def request(path="/threads/x", *, method="GET", query=b"", headers=(("authorization", "Bearer alice"),), client=("127.0.0.1", 5555)):
    return {
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "headers": [(name.lower().encode(), value.encode()) for name, value in headers],
        "client": client,
        "server": ("127.0.0.1", 2024),
        "scheme": "http",
        "http_version": "1.1",
    }


def dispatch(host, req=None, events=()):
    return asyncio.run(host.dispatch(req or request(), list(events)))


def single_line(error) -> str:
    text = str(error)
    assert "\n" not in text
    assert text.startswith("`auth.path`: ")  # the prefix graphward_host.load_object uses too
    return text


MATRIX = [
    (r, a)
    for r, actions in [
        ("assistants", ["create", "read", "update", "delete", "search"]),
        ("threads", ["create", "read", "update", "delete", "search", "create_run"]),
        ("crons", ["create", "read", "update", "delete", "search"]),
        ("store", ["put", "get", "search", "delete", "list_namespaces"]),
    ]
    for a in actions
]

# ---------------------------------------------------------------------------
# §1.2 loading
# ---------------------------------------------------------------------------

STARTUP_FAILURES = [
    ("not-auth-int", "auth = 5\n", "Expected an Auth instance, got <class 'int'>"),
    ("not-auth-dict", "auth = {'_handlers': {}}\n", "Expected an Auth instance, got <class 'dict'>"),
    ("auth-class", "auth = Auth\n", "Expected an Auth instance, got <class 'type'>"),
    ("no-authenticate", "", "Custom Auth object at path: ./auth.py:auth does not have an authenticate handler."),
    (
        "handlers-only",
        "@auth.on\nasync def h(ctx, value):\n    return None\n",
        "Custom Auth object at path: ./auth.py:auth does not have an authenticate handler.",
    ),
    ("required-response", "@auth.authenticate\nasync def f(response):\n    return 'a'\n", "Handler has unsupported required parameters: response."),
    ("kwargs", "@auth.authenticate\nasync def f(headers, **kwargs):\n    return 'a'\n", "Handler has unsupported required parameters: kwargs."),
    ("args", "@auth.authenticate\nasync def f(*args):\n    return 'a'\n", "Handler has unsupported required parameters: args."),
    (
        "several",
        "@auth.authenticate\nasync def f(request, foo, *args, bar, **kw):\n    return 'a'\n",
        "Handler has unsupported required parameters: foo, args, bar, kw.",
    ),
    ("positional-only", "@auth.authenticate\nasync def f(request, /):\n    return 'a'\n", "unsupported required parameters: request."),
    ("import-error", "raise RuntimeError('boom')\n", "RuntimeError: boom"),
    ("non-callable", "auth.authenticate(42)\n", "is not callable"),
]


@pytest.mark.parametrize("source, message", [row[1:] for row in STARTUP_FAILURES], ids=[row[0] for row in STARTUP_FAILURES])
def test_startup_failures(make, source, message):
    with pytest.raises(HOST.StartupError) as info:
        make(source)
    assert message in single_line(info.value)


def test_unsupported_parameters_message_lists_supported_ones(make):
    with pytest.raises(HOST.StartupError) as info:
        make("@auth.authenticate\nasync def f(response):\n    return 'a'\n")
    text = single_line(info.value)
    assert "Supported parameters are:" in text
    for name in ["request", "body", "user", "path", "method", "scopes", "path_params", "query_params", "headers", "authorization", "scope"]:
        assert f" {name} (" in text


def test_missing_attribute_and_file(make, tmp_path):
    with pytest.raises(HOST.StartupError) as info:
        make(DEFAULT_AUTHENTICATE, attribute="nope")
    assert "nope" in single_line(info.value)
    with pytest.raises(HOST.StartupError) as info:
        AUTH_HOST.load_auth("./missing.py:auth", str(tmp_path / "missing.py"), None, "auth", OPTIONS)
    assert "not found" in single_line(info.value)


ACCEPTED_SIGNATURES = [
    "async def f():\n    return 'a'\n",
    "async def f(body):\n    return 'a'\n",  # required body is accepted at start-up (fails per request)
    "async def f(response=None, *, extra=1):\n    return 'a'\n",
    "def f(request, body, user, path, method, scopes, path_params, query_params, headers, authorization, scope):\n    return 'a'\n",
    "async def f(*, headers, authorization):\n    return 'a'\n",
]


@pytest.mark.parametrize("source", ACCEPTED_SIGNATURES)
def test_accepted_signatures(make, source):
    host = make("@auth.authenticate\n" + source)
    assert isinstance(host, AUTH_HOST.AuthHost)


def test_dotted_module_path(sdk, web, tmp_path, monkeypatch):
    package = tmp_path / "mypkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "security.py").write_text(HEADER + DEFAULT_AUTHENTICATE)
    monkeypatch.syspath_prepend(str(tmp_path))
    with sdk.active():
        host = AUTH_HOST.load_auth("mypkg.security:auth", None, "mypkg.security", "auth", OPTIONS)
    sys.modules.pop("mypkg.security", None)
    sys.modules.pop("mypkg", None)
    assert dispatch(host)["user"]["identity"] == "alice"


BAD_CACHE = [
    {"cache_keys": "x-api-key"},
    {"cache_keys": None},
    {"ttl_seconds": 10},
    {"cache_keys": ["x", 1]},
    {"cache_keys": ["x"], "ttl_seconds": -1},
    {"cache_keys": ["x"], "ttl_seconds": True},
    {"cache_keys": ["x"], "ttl_seconds": "60"},
    {"cache_keys": ["x"], "max_size": 0},
    {"cache_keys": ["x"], "max_size": 1.5},
    ["x-api-key"],
]


@pytest.mark.parametrize("cache", BAD_CACHE)
def test_invalid_cache_options(make, cache):
    with pytest.raises(HOST.StartupError) as info:
        make(DEFAULT_AUTHENTICATE, options={"cache": cache})
    assert "auth.cache" in single_line(info.value)


@pytest.mark.parametrize("cache", [{"cache_keys": []}, {"cache_keys": ["X-Api-Key"], "ttl_seconds": None, "max_size": None}, {"cache_keys": ["a"], "ttl_seconds": 0.5, "max_size": 1}])
def test_valid_cache_options(make, cache):
    make(DEFAULT_AUTHENTICATE, options={"cache": cache})


# ---------------------------------------------------------------------------
# §1.3 coverage warning and the resolution matrix
# ---------------------------------------------------------------------------

HANDLER_FN = "async def {name}(ctx, value):\n    return None\n"

ALL_PATHS = sorted(f"{r}.{a}" for r, a in MATRIX)

MISSING_PATH_ROWS = [
    ("nothing", "", []),
    ("global", "@auth.on\n" + HANDLER_FN.format(name="g"), []),
    ("global-and-threads", "@auth.on\n" + HANDLER_FN.format(name="g") + "@auth.on.threads\n" + HANDLER_FN.format(name="t"), []),
    ("star-key", HANDLER_FN.format(name="s") + "auth._handlers[('*', '*')] = [s]\n", []),
    ("threads-only", "@auth.on.threads\n" + HANDLER_FN.format(name="t"), [p for p in ALL_PATHS if not p.startswith("threads.")]),
    (
        "read-action-and-store",
        "@auth.on(actions='read')\n" + HANDLER_FN.format(name="r") + "@auth.on.store\n" + HANDLER_FN.format(name="s"),
        [p for p in ALL_PATHS if not p.startswith("store.") and not p.endswith(".read")],
    ),
    ("one-exact", "@auth.on.threads.create\n" + HANDLER_FN.format(name="c"), [p for p in ALL_PATHS if p != "threads.create"]),
    ("unknown-key-only", "@auth.on(resources='foo', actions='bar')\n" + HANDLER_FN.format(name="f"), ALL_PATHS),
]


@pytest.mark.parametrize("source, expected", [r[1:] for r in MISSING_PATH_ROWS], ids=[r[0] for r in MISSING_PATH_ROWS])
def test_missing_paths(make, source, expected):
    host = make(DEFAULT_AUTHENTICATE + source)
    assert host.missing_paths() == expected


def test_coverage_via_and_order(make):
    host = make(
        DEFAULT_AUTHENTICATE
        + "@auth.on\n" + HANDLER_FN.format(name="glob")
        + "@auth.on.threads.read\n" + HANDLER_FN.format(name="t_read")
        + "@auth.on.threads\n" + HANDLER_FN.format(name="t_any")
        + "@auth.on(actions='search')\n" + HANDLER_FN.format(name="any_search")
        + HANDLER_FN.format(name="star") + "auth._handlers[('*', '*')] = [star]\n"
    )
    rows = host.coverage()
    assert [(row["resource"], row["action"]) for row in rows] == MATRIX
    got = {(row["resource"], row["action"]): (row["handler"], row["via"]) for row in rows}
    assert got[("threads", "read")] == ("t_read", "exact")
    assert got[("threads", "search")] == ("t_any", "resource")
    assert got[("assistants", "search")] == ("any_search", "action")
    assert got[("crons", "create")] == ("star", "star")
    assert host.missing_paths() == []
    plain = make(DEFAULT_AUTHENTICATE + "@auth.on\n" + HANDLER_FN.format(name="glob"))
    assert {(row["handler"], row["via"]) for row in plain.coverage()} == {("glob", "global")}
    empty = make(DEFAULT_AUTHENTICATE)
    assert {(row["handler"], row["via"]) for row in empty.coverage()} == {(None, None)}


def test_coverage_reports_qualname(make):
    host = make(
        DEFAULT_AUTHENTICATE
        + "class Policies:\n    @staticmethod\n    async def threads(ctx, value):\n        return None\n"
        + "auth.on.threads(Policies.threads)\n"
    )
    assert {row["handler"] for row in host.coverage() if row["resource"] == "threads"} == {"Policies.threads"}


# ---------------------------------------------------------------------------
# §3.2 Studio bypass
# ---------------------------------------------------------------------------

STUDIO_ROWS = [
    # options, headers, studio?
    ({"studio_allowed": True}, [("x-auth-scheme", "langsmith")], True),
    ({"studio_allowed": True}, [("x-auth-scheme", "langsmith"), ("authorization", "Bearer alice")], True),
    ({"studio_allowed": True}, [("x-auth-scheme", "LangSmith"), ("authorization", "Bearer alice")], False),
    ({"studio_allowed": False}, [("x-auth-scheme", "langsmith"), ("authorization", "Bearer alice")], False),
    ({"studio_allowed": True, "allow_langsmith_api_keys": True}, [], True),
    ({"studio_allowed": True, "allow_langsmith_api_keys": True}, [("authorization", "  ")], True),
    ({"studio_allowed": True, "allow_langsmith_api_keys": True}, [("authorization", "Bearer alice")], False),
    ({"studio_allowed": False, "allow_langsmith_api_keys": True}, [("authorization", "Bearer alice")], False),
    ({"studio_allowed": True, "allow_langsmith_api_keys": False}, [("authorization", "Bearer alice")], False),
]

STUDIO_SOURCE = DEFAULT_AUTHENTICATE + """
SEEN = []

@auth.on
async def record(ctx, value):
    SEEN.append((isinstance(ctx.user, Auth.types.StudioUser), ctx.user.identity, ctx.user.is_authenticated, ctx.permissions, isinstance(ctx, Auth.types.AuthContext)))
"""


@pytest.mark.parametrize("options, headers, studio", STUDIO_ROWS)
def test_studio_bypass(make, sdk, options, headers, studio):
    host = make(STUDIO_SOURCE, options=options)
    out = dispatch(host, request(headers=headers), [("threads", "read", {"thread_id": uuid.uuid4()})])
    assert out["ok"] and out["studio"] is studio
    seen = module_of(host)["SEEN"]
    if studio:
        assert module_of(host)["CALLS"] == []
        assert seen == [(True, "langgraph-studio-user", False, [], True)]
        assert dict(out["user_object"])["kind"] == "StudioUser" and isinstance(out["user_object"], sdk.types.BaseUser)
        assert isinstance(out["user_object"], sdk.types.StudioUser)
        assert out["user"] == {"identity": "langgraph-studio-user", "display_name": "langgraph-studio-user", "is_authenticated": False, "permissions": []}
        assert AUTH_HOST.user_mapping(out["user_object"]) == {
            "kind": "StudioUser",
            "is_authenticated": False,
            "display_name": "langgraph-studio-user",
            "identity": "langgraph-studio-user",
            "permissions": [],
        }
    else:
        assert module_of(host)["CALLS"] == ["Bearer alice"]
        assert seen[0][1] == "alice" and seen[0][0] is False


# ---------------------------------------------------------------------------
# §3.3 parameters, §3.4 sync functions
# ---------------------------------------------------------------------------

PARAMS_SOURCE = """
GOT = {}

@auth.authenticate
async def who(request, user, path, method, scopes, path_params, query_params, headers, authorization, scope, body="default-body", response="default-response"):
    GOT.update(locals())
    try:
        await request.body()
    except RuntimeError as error:
        GOT["body_error"] = str(error)
    return "alice"
"""

PARAM_REQUEST = request(
    "/threads/abc/runs",
    method="POST",
    query=b"a=1&a=2&b=%20x&c=",
    headers=[
        ("Authorization", "Bearer first"),
        ("x-dup", "1"),
        ("cookie", "session=s1; theme=dark"),
        ("host", "example.test:2024"),
        ("x-dup", "2"),
        ("authorization", "Bearer last"),
    ],
)


def _starlette_types(web):
    if web != "starlette":
        return AUTH_HOST.Request, AUTH_HOST.QueryParams  # the host's own stand-ins
    from starlette.datastructures import QueryParams
    from starlette.requests import Request

    return Request, QueryParams


PARAM_CHECKS = [
    ("user", lambda v, web: v is None),
    ("scopes", lambda v, web: v == []),
    ("path_params", lambda v, web: v == {}),
    ("path", lambda v, web: v == "/threads/abc/runs" and type(v) is str),
    ("method", lambda v, web: v == "POST"),
    ("body", lambda v, web: v == "default-body"),
    ("response", lambda v, web: v == "default-response"),
    ("authorization", lambda v, web: v == "Bearer last"),
    ("headers", lambda v, web: type(v) is dict and v[b"x-dup"] == b"2" and v[b"authorization"] == b"Bearer last" and all(type(k) is bytes and k == k.lower() for k in v)),
    ("query_params", lambda v, web: not isinstance(v, dict) and v["a"] == "2" and v.getlist("a") == ["1", "2"] and dict(v) == {"a": "2", "b": " x", "c": ""}),
    ("query_params", lambda v, web: isinstance(v, _starlette_types(web)[1])),
    ("scope", lambda v, web: v["type"] == "http" and v["method"] == "POST" and v["path"] == "/threads/abc/runs" and v["root_path"] == ""),
    ("scope", lambda v, web: v["raw_path"] == b"/threads/abc/runs" and v["query_string"] == b"a=1&a=2&b=%20x&c=" and v["http_version"] == "1.1" and v["scheme"] == "http"),
    ("scope", lambda v, web: [h for h in v["headers"] if h[0] in (b"x-dup", b"authorization")] == [(b"authorization", b"Bearer first"), (b"x-dup", b"1"), (b"x-dup", b"2"), (b"authorization", b"Bearer last")]),
    ("scope", lambda v, web: tuple(v["client"]) == ("127.0.0.1", 5555) and tuple(v["server"]) == ("127.0.0.1", 2024)),
    ("request", lambda v, web: isinstance(v, _starlette_types(web)[0])),
    ("request", lambda v, web: v.method == "POST" and v.url.path == "/threads/abc/runs" and v.headers["AUTHORIZATION"] == "Bearer first"),
    ("request", lambda v, web: v.headers.getlist("x-dup") == ["1", "2"] and "X-Dup" in v.headers and v.query_params["a"] == "2"),
    ("request", lambda v, web: v.client.host == "127.0.0.1" and v.client.port == 5555 and v.cookies == {"session": "s1", "theme": "dark"}),
    ("request", lambda v, web: str(v.url) == "http://example.test:2024/threads/abc/runs?a=1&a=2&b=%20x&c=" and v.url.port == 2024),
    ("body_error", lambda v, web: v == "Receive channel has not been made available"),
]


@pytest.mark.parametrize("name, check", PARAM_CHECKS, ids=[f"{i}-{row[0]}" for i, row in enumerate(PARAM_CHECKS)])
def test_authenticate_parameters(make, web, name, check):
    host = make(PARAMS_SOURCE)
    assert host.parameters == ["request", "user", "path", "method", "scopes", "path_params", "query_params", "headers", "authorization", "scope"]
    assert dispatch(host, PARAM_REQUEST)["ok"]
    assert check(module_of(host)["GOT"][name], web)


EMPTY_QUERY_SOURCE = """
GOT = {}

@auth.authenticate
async def who(query_params, authorization, request):
    GOT.update(qp=query_params, authorization=authorization, client=request.client, url=str(request.url))
    return "alice"
"""


def test_empty_query_missing_authorization_no_client(make):
    host = make(EMPTY_QUERY_SOURCE)
    assert dispatch(host, request("/info", headers=(), client=None))["ok"]
    got = module_of(host)["GOT"]
    assert len(got["qp"]) == 0 and dict(got["qp"]) == {}
    assert got["authorization"] is None and got["client"] is None
    assert got["url"] == "http://127.0.0.1:2024/info"


def test_only_declared_parameters_are_passed(make):
    host = make("@auth.authenticate\nasync def who(authorization):\n    return authorization\n")
    assert host.parameters == ["authorization"]
    assert dispatch(host)["user"]["identity"] == "Bearer alice"


def test_no_parameters(make):
    host = make("@auth.authenticate\nasync def who():\n    return 'nobody'\n")
    assert dispatch(host)["user"]["identity"] == "nobody"


def test_required_body_fails_every_request(make):
    host = make("@auth.authenticate\nasync def who(body):\n    return 'a'\n")
    out = dispatch(host)
    assert (out["ok"], out["status"], out["detail"], out["stage"]) == (False, 500, "Internal Server Error", "authenticate")
    assert "TypeError" in out["log"] and "who" in out["log"]


def test_sync_authenticate_runs_in_a_worker_thread(make):
    host = make(
        "import threading\nTHREADS = []\n@auth.authenticate\ndef who(authorization):\n"
        "    THREADS.append(threading.get_ident())\n    return {'identity': 'sync', 'permissions': ['x']}\n"
    )
    out = dispatch(host)
    assert out["ok"] and out["user"]["identity"] == "sync" and out["user"]["permissions"] == ["x"]
    assert module_of(host)["THREADS"] != [threading.get_ident()]


# ---------------------------------------------------------------------------
# §3.5 return values and the user object
# ---------------------------------------------------------------------------

USER_SOURCE = """
class Obj:
    def __init__(self, **kw):
        self.__dict__.update(kw)

class WithDict(Obj):
    def dict(self):
        return {"identity": self.identity, "org": "o1"}

PERMS = ["p"]
RESULT = {RESULT}
SEEN = {{}}

@auth.authenticate
async def who():
    return RESULT

@auth.on
async def record(ctx, value):
    u = ctx.user
    SEEN["identity"] = u.identity
    SEEN["display_name"] = u.display_name
    SEEN["is_authenticated"] = u.is_authenticated
    try:
        SEEN["user.permissions"] = u.permissions
    except AttributeError:
        SEEN["user.permissions"] = AttributeError
    SEEN["ctx.permissions"] = ctx.permissions
    SEEN["minimal"] = isinstance(u, Auth.types.MinimalUser)
    SEEN["base"] = isinstance(u, Auth.types.BaseUser)
    SEEN["studio"] = isinstance(u, Auth.types.StudioUser)
    SEEN["mapping"] = dict(u)
"""

A = AttributeError
USER_ROWS = [
    # RESULT expression, identity, display_name, is_authenticated, user.permissions, ctx.permissions, BaseUser?, mapping
    ('"alice"', "alice", "alice", True, A, [], False, {"identity": "alice", "is_authenticated": True, "display_name": "alice"}),
    ('{"identity": "a"}', "a", "a", True, A, [], False, {"identity": "a", "is_authenticated": True, "display_name": "a"}),
    (
        '{"identity": "a", "permissions": PERMS, "display_name": "D", "is_authenticated": False, "org": "o"}',
        "a", "D", False, ["p"], ["p"], True,
        {"identity": "a", "is_authenticated": False, "display_name": "D", "permissions": ["p"], "org": "o"},
    ),
    ("Obj(identity='o')", "o", "o", True, A, [], False, {"identity": "o", "is_authenticated": True, "display_name": "o"}),
    (
        "Obj(identity='o', permissions=PERMS, display_name='OD', is_authenticated=False, extra=1)",
        "o", "OD", False, ["p"], ["p"], True, {"identity": "o", "is_authenticated": False, "display_name": "OD"},
    ),
    ("WithDict(identity='w')", "w", "w", True, A, [], False, {"identity": "w", "is_authenticated": True, "display_name": "w", "org": "o1"}),
    ('(["t"], "alice")', "alice", "alice", True, A, ["t"], False, {"identity": "alice", "is_authenticated": True, "display_name": "alice"}),
    (
        '(["t"], {"identity": "a", "permissions": ["i"]})',
        "a", "a", True, ["i"], ["t"], True, {"identity": "a", "is_authenticated": True, "display_name": "a", "permissions": ["i"]},
    ),
    ('{"identity": 7}', 7, 7, True, A, [], False, {"identity": 7, "is_authenticated": True, "display_name": 7}),
    ('{"identity": "s", "permissions": "ab"}', "s", "s", True, "ab", ["a", "b"], True, {"identity": "s", "is_authenticated": True, "display_name": "s", "permissions": "ab"}),
    (
        'Auth.types.StudioUser("dev", is_authenticated=True)',
        "dev", "dev", True, ["authenticated"], ["authenticated"], True, {"identity": "dev", "is_authenticated": True, "display_name": "dev"},
    ),
]


@pytest.mark.parametrize("row", USER_ROWS, ids=[row[0] for row in USER_ROWS])
def test_user_normalisation(make, row):
    result, identity, display_name, is_authenticated, user_permissions, ctx_permissions, base, mapping = row
    host = make(USER_SOURCE.replace("{RESULT}", result).replace("{{}}", "{}"))
    out = dispatch(host, events=[("threads", "read", {"thread_id": uuid.uuid4()})])
    assert out["ok"], out
    seen = module_of(host)["SEEN"]
    assert seen["identity"] == identity
    assert seen["display_name"] == display_name
    assert seen["is_authenticated"] is is_authenticated
    assert seen["user.permissions"] == user_permissions
    assert seen["ctx.permissions"] == ctx_permissions and type(seen["ctx.permissions"]) is list
    assert seen["minimal"] is True
    assert seen["base"] is base
    assert seen["studio"] is False  # a returned StudioUser is wrapped, not a Studio user
    assert seen["mapping"] == mapping and list(seen["mapping"]) == list(mapping)
    # The other fields authenticate returned travel with the user (graphs and the app see them).
    extra = {key: value for key, value in mapping.items() if key not in ("identity", "display_name", "is_authenticated", "permissions", "kind")}
    assert out["user"] == {"identity": str(identity), "display_name": str(display_name), "is_authenticated": is_authenticated, "permissions": ctx_permissions, **extra}
    assert out["user_object"].identity == identity
    assert out["studio"] is False


def test_user_permissions_is_the_returned_list(make):
    host = make(USER_SOURCE.replace("{RESULT}", '{"identity": "a", "permissions": PERMS}').replace("{{}}", "{}"))
    dispatch(host, events=[("threads", "read", {})])
    module = module_of(host)
    assert module["SEEN"]["user.permissions"] is module["PERMS"]
    assert module["SEEN"]["ctx.permissions"] is not module["PERMS"]


BAD_RETURNS = [
    ('("p", "a", "x")', "Expected a tuple with two elements (permissions, user), got 3"),
    ("()", "Expected a tuple with two elements (permissions, user), got 0"),
    ("None", "<class 'NoneType'>"),
    ("5", "<class 'int'>"),
    ('{"name": "x"}', "<class 'dict'>"),
    ('["a"]', "<class 'list'>"),
    ('(["t"], None)', "<class 'NoneType'>"),
]


@pytest.mark.parametrize("result, detail_part", BAD_RETURNS)
def test_invalid_authenticate_results(make, result, detail_part):
    host = make(USER_SOURCE.replace("{RESULT}", result).replace("{{}}", "{}"))
    out = dispatch(host, events=[("threads", "read", {})])
    assert (out["ok"], out["stage"], out["status"], out["event_index"], out["handler"]) == (False, "authenticate", 400, None, "who")
    assert detail_part in out["detail"]
    if "tuple" not in detail_part:
        assert out["detail"] == (
            "Expected a BaseUser instance with required property: identity (str). Optional properties are: "
            "is_authenticated (bool, defaults to True) and display_name (str, defaults to identity). "
            f"Got {detail_part} instead"
        )
    assert module_of(host)["SEEN"] == {}


DICT_USER_SOURCE = """
SEEN = {}

@auth.authenticate
async def who():
    return {"identity": "a", "org": "acme", "extra": {"a": 1, "deep": {"b": 2}}, "values": "v", "keys": "k", "items": "i", "dict": "d", "get": "g"}

@auth.on
async def record(ctx, value):
    u = ctx.user
    SEEN["org"] = u.org
    SEEN["extra.a"] = u.extra.a
    SEEN["extra.deep.b"] = u.extra.deep.b
    SEEN["extra['a']"] = u.extra["a"]
    try:
        u.missing
    except AttributeError:
        SEEN["missing"] = "AttributeError"
    try:
        u.extra.nothing
    except AttributeError:
        SEEN["extra.nothing"] = "AttributeError"
    SEEN["methods"] = [callable(u.values), callable(u.keys), callable(u.items), callable(u.dict), callable(u.get)]
    SEEN["getitem"] = u["org"]
    SEEN["contains"] = ("org" in u, "nope" in u)
    SEEN["get"] = (u.get("org"), u.get("nope", "dflt"))
    SEEN["keys"] = list(u.keys())
    SEEN["values"] = list(u.values())[:3]
    SEEN["items"] = list(u.items())[:3]
    SEEN["len"] = len(u)
    SEEN["iter"] = list(u)
    SEEN["dict()"] = dict(u) == u.dict()
    SEEN["item values"] = u["values"]
"""


def test_dict_user_behaviour(make):
    host = make(DICT_USER_SOURCE)
    assert dispatch(host, events=[("threads", "read", {})])["ok"]
    seen = module_of(host)["SEEN"]
    keys = ["identity", "is_authenticated", "display_name", "org", "extra", "values", "keys", "items", "dict", "get"]
    assert seen == {
        "org": "acme",
        "extra.a": 1,
        "extra.deep.b": 2,
        "extra['a']": 1,
        "missing": "AttributeError",
        "extra.nothing": "AttributeError",
        "methods": [True, True, True, True, True],
        "getitem": "acme",
        "contains": (True, False),
        "get": ("acme", "dflt"),
        "keys": keys,
        "values": ["a", True, "a"],
        "items": [("identity", "a"), ("is_authenticated", True), ("display_name", "a")],
        "len": len(keys),
        "iter": keys,
        "dict()": True,
        "item values": "v",
    }


def test_object_user_attribute_fall_through(make):
    host = make(
        "class U:\n    identity = 'u'\n    team = 'red'\n    def helper(self):\n        return 'h'\n"
        "SEEN = {}\n@auth.authenticate\nasync def who():\n    return U()\n"
        "@auth.on\nasync def record(ctx, value):\n    SEEN.update(team=ctx.user.team, helper=ctx.user.helper(), mapping=dict(ctx.user))\n"
    )
    assert dispatch(host, events=[("threads", "read", {})])["ok"]
    assert module_of(host)["SEEN"] == {"team": "red", "helper": "h", "mapping": {"identity": "u", "is_authenticated": True, "display_name": "u"}}


# ---------------------------------------------------------------------------
# §3.6 authentication errors (headers kept: graphward deviation)
# ---------------------------------------------------------------------------

AUTH_ERROR_ROWS = [
    # raise statement, status, detail, headers
    ("raise Auth.exceptions.HTTPException(status_code=401)", 401, "Unauthorized", {}),
    ("raise Auth.exceptions.HTTPException(401, 'bad token', headers={'WWW-Authenticate': 'Bearer'})", 401, "bad token", {"WWW-Authenticate": "Bearer"}),
    ("raise Auth.exceptions.HTTPException(status_code=403)", 403, "Forbidden", {}),
    ("raise Auth.exceptions.HTTPException(403, 'nope', {'x-a': 'b'})", 403, "nope", {"x-a": "b"}),
    ("raise Auth.exceptions.HTTPException(404)", 404, "Not Found", {}),
    ("raise Auth.exceptions.HTTPException(418, headers={'x-a': 'b'})", 418, "I'm a Teapot", {"x-a": "b"}),
    ("raise Auth.exceptions.HTTPException(500, 'srv')", 500, "srv", {}),
    ("raise DuckHTTPError(409, 'conflict', {'retry-after': 5})", 409, "conflict", {"retry-after": "5"}),
    ("raise DuckHTTPError(429, None, None)", 429, "Too Many Requests", {}),
    ("raise ValueError('bad input')", 400, "bad input", {}),
    ("raise UnicodeError('sub of ValueError')", 400, "sub of ValueError", {}),
    ("raise AssertionError('no')", 500, "Internal Server Error", {}),
    ("raise RuntimeError('boom')", 500, "Internal Server Error", {}),
    ("raise KeyError('k')", 500, "Internal Server Error", {}),
    ("raise TypeError('t')", 500, "Internal Server Error", {}),
]

AUTH_ERROR_SOURCE = """
class DuckHTTPError(Exception):
    def __init__(self, status_code, detail, headers):
        self.status_code, self.detail, self.headers = status_code, detail, headers

CALLED = []

@auth.authenticate
async def who(authorization):
    {RAISE}

@auth.on
async def never(ctx, value):
    CALLED.append(1)
"""


@pytest.mark.parametrize("statement, status, detail, headers", AUTH_ERROR_ROWS, ids=[row[0] for row in AUTH_ERROR_ROWS])
def test_authenticate_errors(make, statement, status, detail, headers):
    host = make(AUTH_ERROR_SOURCE.replace("{RAISE}", statement))
    out = dispatch(host, events=[("threads", "read", {})])
    assert out == {
        "ok": False,
        "stage": "authenticate",
        "status": status,
        "detail": detail,
        "headers": headers,
        "handler": "who",
        "event_index": None,
        "log": out["log"],
        "seconds": out["seconds"],
    }
    assert out["seconds"] >= 0, "the failing authenticate's time (graphward_auth_handler_duration_seconds)"
    assert "\n" not in out["log"] and "`who`" in out["log"]
    assert statement.split("raise ")[1].split("(")[0].split(".")[-1] + ":" in out["log"]
    assert module_of(host)["CALLED"] == []


def test_starlette_http_exception_in_authenticate(make, web):
    if web != "starlette":
        pytest.skip("needs Starlette")
    host = make(
        "from starlette.exceptions import HTTPException as SE\n"
        "@auth.authenticate\nasync def who():\n    raise SE(status_code=402, detail='pay', headers={'x-p': '1'})\n"
    )
    out = dispatch(host)
    assert (out["status"], out["detail"], out["headers"]) == (402, "pay", {"x-p": "1"})


def test_missing_authorization_is_up_to_the_function(make):
    host = make(DEFAULT_AUTHENTICATE)
    out = dispatch(host, request(headers=()))
    assert (out["status"], out["detail"]) == (401, "Unauthorized")
    assert module_of(host)["CALLS"] == [None]


# ---------------------------------------------------------------------------
# §4.1 dispatch order
# ---------------------------------------------------------------------------

RESOLUTION_SOURCE = DEFAULT_AUTHENTICATE + """
RAN = []

def make(name):
    async def handler(ctx, value):
        RAN.append((name, ctx.resource, ctx.action, isinstance(ctx, Auth.types.AuthContext)))
    handler.__qualname__ = name
    return handler
"""

RESOLUTION_ROWS = [
    # registrations, (resource, action), expected handler
    (["exact", "resource", "action", "star", "global"], ("threads", "read"), "exact"),
    (["resource", "action", "star", "global"], ("threads", "read"), "resource"),
    (["action", "star", "global"], ("threads", "read"), "action"),
    (["star", "global"], ("threads", "read"), "star"),
    (["global"], ("threads", "read"), "global"),
    ([], ("threads", "read"), None),
    (["exact", "resource"], ("threads", "create_run"), "resource"),
    (["exact", "action"], ("assistants", "read"), "action"),
    (["exact", "global"], ("store", "put"), "global"),
    (["exact"], ("crons", "read"), None),
]

REGISTRATION = {
    "exact": "auth.on.threads.read(make('exact'))\n",
    "resource": "auth.on.threads(make('resource'))\n",
    "action": "auth.on(actions='read')(make('action'))\n",
    "star": "auth._handlers[('*', '*')] = [make('star')]\n",
    "global": "auth.on(make('global'))\n",
}


@pytest.mark.parametrize("registered, pair, expected", RESOLUTION_ROWS)
def test_resolution_order(make, registered, pair, expected):
    host = make(RESOLUTION_SOURCE + "".join(REGISTRATION[name] for name in registered))
    value = {"thread_id": uuid.uuid4()}
    out = dispatch(host, events=[(*pair, value)])
    assert out["ok"]
    ran = module_of(host)["RAN"]
    if expected is None:
        assert ran == [] and out["events"] == [{"handler": None, "filter": None, "value": None, "seconds": None}]
    else:
        assert ran == [(expected, *pair, True)]
        assert out["events"][0]["handler"] == expected
    by_pair = {(row["resource"], row["action"]): row["handler"] for row in host.coverage()}
    assert by_pair[pair] == expected


def test_handler_is_called_with_keywords_and_fresh_context(make, sdk):
    host = make(
        DEFAULT_AUTHENTICATE
        + "CTXS = []\n@auth.on\nasync def h(*, value, ctx):\n"
        "    CTXS.append((ctx, ctx.resource, ctx.action))\n    ctx.resource = 'tampered'\n"
    )
    out = dispatch(host, events=[("threads", "read", {}), ("assistants", "search", {})])
    assert out["ok"]
    (first, *first_pair), (second, *second_pair) = module_of(host)["CTXS"]
    assert first is not second
    assert first_pair == ["threads", "read"] and second_pair == ["assistants", "search"]
    assert type(first) is sdk.types.AuthContext
    assert first.permissions == ["read"] and first.user.identity == "alice"


def test_success_shape(make):
    host = make(DEFAULT_AUTHENTICATE + "@auth.on.threads\nasync def own(ctx, value):\n    return {'owner': ctx.user.identity}\n")
    tid = uuid.uuid4()
    out = dispatch(host, events=[("threads", "read", {"thread_id": tid}), ("assistants", "read", {"assistant_id": "x"})])
    assert out == {
        "ok": True,
        "studio": False,
        "user": {"identity": "alice", "display_name": "alice", "is_authenticated": True, "permissions": ["read"]},
        "user_object": out["user_object"],
        # Values without nested dicts cannot change in a way that sticks: not sent back.
        "events": [
            {"handler": "own", "filter": {"owner": "alice"}, "value": None, "seconds": out["events"][0]["seconds"]},
            {"handler": None, "filter": None, "value": None, "seconds": None},
        ],
        "authenticate": "who",
        "authenticate_seconds": out["authenticate_seconds"],
    }
    # Each handler that ran, and authenticate, report their time (per-handler histograms).
    assert out["events"][0]["seconds"] >= 0 and out["authenticate_seconds"] >= 0
    kept = dispatch(host, events=[("threads", "update", {"thread_id": tid, "metadata": {}})])
    assert kept["events"][0]["value"]["thread_id"] is tid
    assert AUTH_HOST.user_mapping(out["user_object"]) == {"identity": "alice", "is_authenticated": True, "display_name": "alice", "permissions": ["read"]}


def test_no_events_only_authenticates(make):
    host = make(DEFAULT_AUTHENTICATE)
    out = dispatch(host, events=[])
    assert out["ok"] and out["events"] == [] and module_of(host)["CALLS"] == ["Bearer alice"]


# ---------------------------------------------------------------------------
# §4.3 handler results and exceptions
# ---------------------------------------------------------------------------

HANDLER_ROWS = [
    # handler body, ok, status/filter, detail, headers
    ("return None", True, None, None, None),
    ("return True", True, None, None, None),
    ("return {}", True, None, None, None),
    ("return {'owner': 'alice'}", True, {"owner": "alice"}, None, None),
    ("return {'$or': [{'a': 1}, {'b': 2}]}", True, {"$or": [{"a": 1}, {"b": 2}]}, None, None),
    ("return False", False, 403, "Forbidden", {}),
    ("return 5", False, 500, "Auth handler returned invalid result. Expected filter dict, None, or boolean. Got <class 'int'> instead.", {}),
    ("return 0", False, 500, "Auth handler returned invalid result. Expected filter dict, None, or boolean. Got <class 'int'> instead.", {}),
    ("return ['a']", False, 500, "Auth handler returned invalid result. Expected filter dict, None, or boolean. Got <class 'list'> instead.", {}),
    ("return 'yes'", False, 500, "Auth handler returned invalid result. Expected filter dict, None, or boolean. Got <class 'str'> instead.", {}),
    ("return (1,)", False, 500, "Auth handler returned invalid result. Expected filter dict, None, or boolean. Got <class 'tuple'> instead.", {}),
    (
        "return types.MappingProxyType({'a': 1})",
        False, 500, "Auth handler returned invalid result. Expected filter dict, None, or boolean. Got <class 'mappingproxy'> instead.", {},
    ),
    ("raise AssertionError('msg')", False, 403, "msg", {}),
    ("assert False", False, 403, "unknown error", {}),
    ("raise Auth.exceptions.HTTPException(418, headers={'x-a': 'b'})", False, 418, "I'm a Teapot", {"x-a": "b"}),
    ("raise Auth.exceptions.HTTPException(401)", False, 401, "Unauthorized", {}),
    ("raise Auth.exceptions.HTTPException(404, 'gone')", False, 404, "gone", {}),
    ("raise ValueError('v')", False, 400, "v", {}),
    ("raise RuntimeError('boom')", False, 500, "Internal Server Error", {}),
    ("raise KeyError('k')", False, 500, "Internal Server Error", {}),
]


@pytest.mark.parametrize("body, ok, outcome, detail, headers", HANDLER_ROWS, ids=[row[0] for row in HANDLER_ROWS])
def test_handler_results(make, body, ok, outcome, detail, headers):
    host = make(DEFAULT_AUTHENTICATE + f"import types\n@auth.on.threads.read\nasync def guard(ctx, value):\n    {body}\n")
    out = dispatch(host, events=[("threads", "read", {"thread_id": uuid.uuid4()})])
    assert out["ok"] is ok
    if ok:
        assert out["events"][0]["filter"] == outcome and out["events"][0]["handler"] == "guard"
    else:
        assert out == {
            "ok": False,
            "stage": "authorize",
            "status": outcome,
            "detail": detail,
            "headers": headers,
            "handler": "guard",
            "event_index": 0,
            "log": out["log"],
            "seconds": out["seconds"],
        }
        assert out["seconds"] >= 0
        assert "`guard`" in out["log"] and "threads.read" in out["log"] and "\n" not in out["log"]
        if body.startswith("raise RuntimeError"):
            assert "RuntimeError: boom" in out["log"]


def test_extra_required_handler_parameter_is_a_plain_500(make):
    host = make(DEFAULT_AUTHENTICATE + "@auth.on\nasync def greedy(ctx, value, extra):\n    return None\n")
    out = dispatch(host, events=[("threads", "read", {})])
    assert (out["status"], out["detail"], out["handler"]) == (500, "Internal Server Error", "greedy")
    assert "TypeError" in out["log"]


def test_first_denial_stops_dispatch(make):
    host = make(
        DEFAULT_AUTHENTICATE
        + "RAN = []\n@auth.on\nasync def gate(ctx, value):\n    RAN.append(value['n'])\n    return value['n'] != 1\n"
    )
    out = dispatch(host, events=[("threads", "read", {"n": 0}), ("threads", "read", {"n": 1}), ("threads", "read", {"n": 2})])
    assert (out["ok"], out["status"], out["event_index"], out["handler"]) == (False, 403, 1, "gate")
    assert module_of(host)["RAN"] == [0, 1]


# ---------------------------------------------------------------------------
# §4.4 mutations of value
# ---------------------------------------------------------------------------

MUTATION_SOURCE = DEFAULT_AUTHENTICATE + """
@auth.on
async def stamp(ctx, value):
    value.setdefault("metadata", {})["owner"] = ctx.user.identity   # in place: sticks
    value["kwargs"]["config"]["tag"] = 1                               # nested in place: sticks
    value["limit"] = 1                                                  # replacement: ignored
    value["added"] = True                                               # new key: ignored
    value["if_exists"] = "do_nothing"                                   # replacement: ignored

@auth.on.threads.update
async def replace(ctx, value):
    value["metadata"] = {"replaced": True}                             # replacement: ignored

@auth.on.store
async def per_user(ctx, value):
    ns = tuple(value.get("namespace") or ())
    if not ns or ns[0] != ctx.user.identity:
        value["namespace"] = (ctx.user.identity, *ns)                   # store: sticks
    value["key"] = value["key"].upper()
    value.setdefault("metadata", {})
"""


def test_in_place_edits_stick_replacements_do_not(make):
    host = make(MUTATION_SOURCE)
    tid = uuid.uuid4()
    metadata = {}
    kwargs = {"config": {}}
    value = {"thread_id": tid, "metadata": metadata, "limit": 10, "if_exists": "raise", "kwargs": kwargs}
    out = dispatch(host, events=[("threads", "create", value)])
    effective = out["events"][0]["value"]
    assert effective == {"thread_id": tid, "metadata": {"owner": "alice"}, "limit": 10, "if_exists": "raise", "kwargs": {"config": {"tag": 1}}}
    assert effective["metadata"] is metadata and effective["thread_id"] is tid and effective["kwargs"] is kwargs


def test_replacing_metadata_is_ignored(make):
    host = make(MUTATION_SOURCE)
    metadata = {"a": 1}
    out = dispatch(host, events=[("threads", "update", {"thread_id": uuid.uuid4(), "metadata": metadata})])
    assert out["events"][0]["value"]["metadata"] is metadata and metadata == {"a": 1}


def test_setdefault_on_missing_key_is_ignored(make):
    host = make(MUTATION_SOURCE)
    out = dispatch(host, events=[("assistants", "search", {"limit": 10, "offset": 0, "kwargs": {"config": {}}})])
    assert out["events"][0]["value"] == {"limit": 10, "offset": 0, "kwargs": {"config": {"tag": 1}}}


@pytest.mark.parametrize(
    "action, value, expected",
    [
        ("put", {"namespace": ("docs",), "key": "k", "value": {"v": 1}, "index": None, "ttl": None},
         {"namespace": ("alice", "docs"), "key": "K", "value": {"v": 1}, "index": None, "ttl": None, "metadata": {}}),
        ("get", {"namespace": ("alice", "x"), "key": "k", "refresh_ttl": None},
         {"namespace": ("alice", "x"), "key": "K", "refresh_ttl": None, "metadata": {}}),
        ("search", {"namespace": (), "filter": None, "limit": 10, "offset": 0, "query": None, "refresh_ttl": None, "key": "q"},
         {"namespace": ("alice",), "filter": None, "limit": 10, "offset": 0, "query": None, "refresh_ttl": None, "key": "Q", "metadata": {}}),
    ],
)
def test_store_values_are_reread(make, action, value, expected):
    host = make(MUTATION_SOURCE)
    out = dispatch(host, events=[("store", action, value)])
    assert out["events"][0]["value"] == expected and out["events"][0]["handler"] == "per_user"


def test_store_list_namespaces_with_none_namespace(make):
    host = make(MUTATION_SOURCE.replace('value["key"] = value["key"].upper()', "pass"))
    value = {"namespace": None, "suffix": None, "max_depth": None, "limit": 100, "offset": 0}
    out = dispatch(host, events=[("store", "list_namespaces", value)])
    assert out["events"][0]["value"]["namespace"] == ("alice",)


# ---------------------------------------------------------------------------
# §6.2 auth.cache (implemented by graphward for Python auth)
# ---------------------------------------------------------------------------

CACHE_SOURCE = """
@auth.authenticate
async def who(headers):
    CALLS.append(headers.get(b"x-api-key"))
    key = headers.get(b"x-api-key", b"anon").decode()
    if key == "bad":
        raise Auth.exceptions.HTTPException(401)
    return {"identity": key, "permissions": ["p"]}
"""


def keyed(value=None, **extra):
    headers = [("x-api-key", value)] if value is not None else []
    headers += [(name.replace("_", "-"), v) for name, v in extra.items()]
    return request(headers=headers)


def cached_host(make, **cache):
    return make(CACHE_SOURCE, options={"cache": {"cache_keys": ["X-Api-Key"], **cache}})


def test_cache_hit_reuses_user(make):
    host = cached_host(make)
    first, second = dispatch(host, keyed("k1")), dispatch(host, keyed("k1"))
    assert module_of(host)["CALLS"] == [b"k1"]
    assert second["user_object"] is first["user_object"] and second["user"] == first["user"]
    assert second["user"]["permissions"] is not first["user"]["permissions"]


def test_cache_never_mixes_values(make):
    host = cached_host(make)
    identities = [dispatch(host, keyed(v))["user"]["identity"] for v in ["k1", "k2", "k1", "k2"]]
    assert identities == ["k1", "k2", "k1", "k2"]
    assert module_of(host)["CALLS"] == [b"k1", b"k2"]


def test_requests_without_cache_headers_are_not_cached(make):
    host = cached_host(make)
    dispatch(host, keyed()), dispatch(host, keyed())
    assert module_of(host)["CALLS"] == [None, None]


def test_failures_are_not_cached(make):
    host = cached_host(make)
    assert [dispatch(host, keyed("bad"))["status"] for _ in range(2)] == [401, 401]
    assert module_of(host)["CALLS"] == [b"bad", b"bad"]


def test_cache_ttl(make):
    host = cached_host(make, ttl_seconds=10)
    now = [100.0]
    host._clock = lambda: now[0]
    dispatch(host, keyed("k1"))
    now[0] = 109.0
    dispatch(host, keyed("k1"))
    now[0] = 110.5
    dispatch(host, keyed("k1"))
    assert module_of(host)["CALLS"] == [b"k1", b"k1"]


def test_cache_lru_bound(make):
    host = cached_host(make, max_size=2)
    for value in ["a", "b", "a", "c", "b", "a"]:
        dispatch(host, keyed(value))
    # a, b cached; a hit (most recent); c evicts b; b misses and evicts a; a misses
    assert module_of(host)["CALLS"] == [b"a", b"b", b"c", b"b", b"a"]


def test_cache_key_is_the_tuple_of_all_key_headers(make):
    host = make(CACHE_SOURCE, options={"cache": {"cache_keys": ["X-Api-Key", "X-Org"]}})
    dispatch(host, keyed("k1"))
    dispatch(host, keyed("k1", x_org="o1"))
    dispatch(host, keyed("k1", x_org="o1"))
    dispatch(host, keyed(None, x_org="k1"))
    dispatch(host, keyed("k1"))
    assert module_of(host)["CALLS"] == [b"k1", b"k1", None]


def test_no_cache_without_options(make):
    host = make(CACHE_SOURCE)
    dispatch(host, keyed("k1")), dispatch(host, keyed("k1"))
    assert module_of(host)["CALLS"] == [b"k1", b"k1"]


def test_studio_requests_bypass_the_cache(make):
    host = make(CACHE_SOURCE, options={"studio_allowed": True, "cache": {"cache_keys": ["x-api-key"]}})
    out = dispatch(host, request(headers=[("x-api-key", "k1"), ("x-auth-scheme", "langsmith")]))
    assert out["studio"] is True
    assert dispatch(host, keyed("k1"))["user"]["identity"] == "k1"
    assert module_of(host)["CALLS"] == [b"k1"]
