"""Contract tests for graphward's ``langgraph_sdk`` auth shim (spec/auth.md §2).

Every test runs twice: against the shim shipped in ``python/`` and against the real
langgraph-sdk (skipped when it is not installed). Both packages are imported in
isolation so that they can coexist in one interpreter.

Where the real SDK 0.4.14 and the spec disagree, the tests follow the SDK; those
places are marked ``SDK != spec``.

Run: python -m pytest tests/e2e/test_shim.py -q
"""

from __future__ import annotations

import collections.abc
import contextlib
import dataclasses
import datetime as dt_module
import functools
import importlib
import itertools
import sys
import types as pytypes
import typing
import uuid
from pathlib import Path

import pytest

SHIM_ROOT = Path(__file__).resolve().parents[2] / "python"
PKG = "langgraph_sdk"


def _is_sdk_module(name: str) -> bool:
    return name == PKG or name.startswith(PKG + ".")


def _take_sdk_modules() -> dict[str, pytypes.ModuleType]:
    """Remove and return every ``langgraph_sdk*`` entry of ``sys.modules``."""
    taken = {n: m for n, m in sys.modules.items() if _is_sdk_module(n)}
    for name in taken:
        del sys.modules[name]
    return taken


class Sdk:
    """One loaded flavour of ``langgraph_sdk`` (shim or real)."""

    def __init__(self, kind: str, modules: dict[str, pytypes.ModuleType]) -> None:
        self.kind = kind
        self.modules = modules
        self.root = modules[PKG]
        self.auth_pkg = modules[PKG + ".auth"]
        self.types = modules[PKG + ".auth.types"]
        self.exceptions = modules[PKG + ".auth.exceptions"]
        self.Auth = self.auth_pkg.Auth

    @contextlib.contextmanager
    def active(self):
        """Make this flavour the one ``import langgraph_sdk...`` statements see."""
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
    shim = str(SHIM_ROOT)
    try:
        sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != SHIM_ROOT]
        if kind == "shim":
            sys.path.insert(0, shim)
        importlib.invalidate_caches()
        if kind == "real":
            pytest.importorskip(PKG)
        importlib.import_module(PKG)
        for sub in ("auth", "auth.types", "auth.exceptions"):
            importlib.import_module(f"{PKG}.{sub}")
        loaded = {n: m for n, m in sys.modules.items() if _is_sdk_module(n)}
    finally:
        _take_sdk_modules()
        sys.modules.update(previous)
        sys.path[:] = saved_path
    origin = Path(loaded[PKG].__file__).resolve()
    from_shim = SHIM_ROOT in origin.parents
    assert from_shim == (kind == "shim"), f"{kind} loaded from {origin}"
    return Sdk(kind, loaded)


@pytest.fixture(scope="module", params=["shim", "real"])
def sdk(request) -> Sdk:
    return _load_isolated(request.param)


@pytest.fixture
def auth(sdk):
    return sdk.Auth()


# ---------------------------------------------------------------------------
# handlers used throughout
# ---------------------------------------------------------------------------


async def good(ctx, value):
    return None


async def good2(ctx, value):
    return True


async def good_kwonly(*, ctx, value, **extra):
    return None


async def with_extra_required(ctx, value, extra):  # accepted at registration
    return None


def sync_handler(ctx, value):
    return None


async def no_ctx(value):
    return None


async def only_kwargs(**kwargs):  # **kwargs does not count as ctx
    return None


async def no_value(ctx):
    return None


async def ctx_named_wrong(context, value):
    return None


def _msg_not_async(name):
    return (
        f"Auth handler '{name}' must be an async function. Add 'async' before 'def' "
        "to make it asynchronous and ensure any IO operations are non-blocking."
    )


def _msg_no_ctx(name):
    return (
        f"Auth handler '{name}' must have a 'ctx: AuthContext' parameter. "
        "Update the function signature to include this required parameter."
    )


def _msg_no_value(name):
    return (
        f"Auth handler '{name}' must have a 'value' parameter.  The value contains "
        "the mutable data being sent to the endpoint.Update the function signature "
        "to include this required parameter."
    )


def _run(source: str, namespace: dict) -> None:
    """exec() without inheriting this module's ``from __future__ import annotations``,
    so annotations are evaluated at definition time as in a plain user file."""
    exec(compile(source, "<auth.py>", "exec", dont_inherit=True), namespace)


def _raises_exact(exc_type, message, fn, *args, **kwargs):
    with pytest.raises(exc_type) as info:
        fn(*args, **kwargs)
    assert str(info.value) == message
    return info.value


THREAD_ACTIONS = ["create", "read", "update", "delete", "search", "create_run"]
CRUD_ACTIONS = ["create", "read", "update", "delete", "search"]
STORE_ACTIONS = ["put", "get", "search", "delete", "list_namespaces"]
RESOURCE_ACTIONS = {
    "threads": THREAD_ACTIONS,
    "assistants": CRUD_ACTIONS,
    "crons": CRUD_ACTIONS,
}

# ---------------------------------------------------------------------------
# §2.1 import paths
# ---------------------------------------------------------------------------

IMPORT_STATEMENTS = [
    "from langgraph_sdk import Auth",
    "from langgraph_sdk.auth import Auth, types, exceptions",
    "from langgraph_sdk.auth import is_studio_user",
    "from langgraph_sdk.auth.exceptions import HTTPException",
    "from langgraph_sdk.auth.types import AuthContext, StudioUser, on, FilterType",
    "from langgraph_sdk.auth.types import ThreadsCreate, StorePut, MinimalUserDict",
    "import langgraph_sdk.auth.types",
]


@pytest.mark.parametrize("statement", IMPORT_STATEMENTS)
def test_import_paths_resolve(sdk, statement):
    namespace: dict = {}
    with sdk.active():
        exec(statement, namespace)
    if "Auth" in namespace:
        assert namespace["Auth"] is sdk.Auth
    if "HTTPException" in namespace:
        assert namespace["HTTPException"] is sdk.exceptions.HTTPException


def test_auth_submodules_are_the_class_attributes(sdk):
    assert sdk.root.Auth is sdk.Auth
    assert sdk.auth_pkg.types is sdk.types
    assert sdk.auth_pkg.exceptions is sdk.exceptions
    assert sdk.Auth.types is sdk.types
    assert sdk.Auth.exceptions is sdk.exceptions
    assert sdk.Auth.exceptions.HTTPException is sdk.exceptions.HTTPException
    assert callable(sdk.auth_pkg.is_studio_user)


@pytest.mark.parametrize("name", ["get_client", "get_sync_client"])
def test_client_factories(sdk, name):
    if sdk.kind == "real":
        assert callable(getattr(sdk.root, name))
        return
    # The shim deliberately lacks the clients and says so.
    with pytest.raises(ImportError, match="langgraph-sdk") as info:
        getattr(sdk.root, name)
    assert name in str(info.value)
    with sdk.active(), pytest.raises(ImportError, match="real langgraph-sdk"):
        exec(f"from langgraph_sdk import {name}", {})


# ---------------------------------------------------------------------------
# §2.2 Auth class
# ---------------------------------------------------------------------------


def test_auth_slots_and_initial_state(sdk, auth):
    assert set(sdk.Auth.__slots__) == {
        "_authenticate_handler",
        "_global_handlers",
        "_handler_cache",
        "_handlers",
        "on",
    }
    assert not hasattr(auth, "__dict__")
    assert auth._authenticate_handler is None
    assert auth._handlers == {}
    assert auth._global_handlers == []
    assert auth._handler_cache == {}
    with pytest.raises(AttributeError):
        auth.something_else = 1


def test_auth_takes_no_arguments(sdk):
    with pytest.raises(TypeError):
        sdk.Auth(1)
    with pytest.raises(TypeError):
        sdk.Auth(name="x")


def test_auth_on_on_the_class_is_a_slot_descriptor(sdk):
    assert isinstance(sdk.Auth.__dict__["on"], pytypes.MemberDescriptorType)
    with pytest.raises(AttributeError):
        sdk.Auth.on.threads
    # ... while the types alias tree works without an instance.
    assert sdk.Auth.types.on.threads.create.value is sdk.types.ThreadsCreate


def test_instances_are_independent(sdk):
    a, b = sdk.Auth(), sdk.Auth()
    a.on(good)
    a.on.threads.create(good)
    assert b._global_handlers == [] and b._handlers == {}


AUTHENTICATE_TARGETS = [
    pytest.param(good, id="async"),
    pytest.param(sync_handler, id="sync"),
    pytest.param(42, id="non-callable"),
    pytest.param(lambda: None, id="lambda-no-params"),
]


@pytest.mark.parametrize("target", AUTHENTICATE_TARGETS)
def test_authenticate_stores_without_validation(auth, target):
    assert auth.authenticate(target) is target
    assert auth._authenticate_handler is target
    # Registering authorization handlers is unaffected.
    assert auth._handlers == {} and auth._global_handlers == []


@pytest.mark.parametrize("first", AUTHENTICATE_TARGETS)
def test_authenticate_twice(auth, first):
    auth.authenticate(first)
    _raises_exact(
        ValueError,
        f"Authentication handler already set as {first}.",
        auth.authenticate,
        good2,
    )
    assert auth._authenticate_handler is first


def test_authenticate_twice_message_uses_repr_of_function(auth):
    auth.authenticate(good)
    with pytest.raises(ValueError) as info:
        auth.authenticate(good)
    assert str(info.value) == f"Authentication handler already set as {good!r}."
    assert "<function good at 0x" in str(info.value)


# ---------------------------------------------------------------------------
# §2.3 registration forms
# ---------------------------------------------------------------------------


def _call(path):
    """``_call("threads.create")`` -> registrar ``(auth, fn) -> auth.on.threads.create(fn)``."""

    def registrar(auth, fn):
        target = auth.on
        for part in filter(None, path.split(".")):
            target = getattr(target, part)
        return target(fn)

    registrar.__name__ = f"on.{path}" if path else "on"
    return registrar


def _factory(path="", **kwargs):
    """Registrar for ``auth.on.<path>(**kwargs)(fn)``."""

    def registrar(auth, fn):
        target = auth.on
        for part in filter(None, path.split(".")):
            target = getattr(target, part)
        return target(**kwargs)(fn)

    return registrar


GLOBAL = "GLOBAL"

# (id, registrar, expected keys in _handlers; GLOBAL means the global list)
FORMS = [
    ("on-bare", _call(""), [GLOBAL]),
    ("on-empty-call", _factory(""), [GLOBAL]),
    ("on-star-star", _factory("", resources="*", actions="*"), [GLOBAL]),
    ("on-none-none", _factory("", resources=None, actions=None), [GLOBAL]),
    ("on-star-lists", _factory("", resources=["*"], actions=["*"]), [GLOBAL]),
    # empty strings are normalised to "*" by the registration routine
    ("on-empty-strings", _factory("", resources="", actions=""), [GLOBAL]),
    ("on-resource", _factory("", resources="threads"), [("threads", "*")]),
    ("on-resource-star", _factory("", resources="threads", actions="*"),
     [("threads", "*")]),
    ("on-action", _factory("", actions="read"), [("*", "read")]),
    ("on-resource-action", _factory("", resources="threads", actions="create"),
     [("threads", "create")]),
    ("on-cross-product",
     _factory("", resources=["threads", "assistants"], actions=["read", "search"]),
     [("threads", "read"), ("threads", "search"),
      ("assistants", "read"), ("assistants", "search")]),
    ("on-tuples", _factory("", resources=("crons",), actions=("delete",)),
     [("crons", "delete")]),
    ("on-arbitrary-strings", _factory("", resources="foo", actions="bar"),
     [("foo", "bar")]),
    ("on-runs-resource", _factory("", resources="runs", actions="create"),
     [("runs", "create")]),
    ("on-star-with-global", _factory("", resources="*", actions=["*", "read"]),
     [GLOBAL, ("*", "read")]),
    ("on-empty-resources", _factory("", resources=[]), []),
    ("on-empty-actions", _factory("", resources="threads", actions=[]), []),
    ("store-bare", _call("store"), [("store", "*")]),
    ("store-empty-call", _factory("store"), [("store", "*")]),
    ("store-action", _factory("store", actions="put"), [("store", "put")]),
    ("store-action-list", _factory("store", actions=["put", "get", "list_namespaces"]),
     [("store", "put"), ("store", "get"), ("store", "list_namespaces")]),
    ("store-unknown-action", _factory("store", actions="bogus"), [("store", "bogus")]),
    ("store-empty-actions", _factory("store", actions=[]), []),
]
for _action in STORE_ACTIONS:
    FORMS.append((f"store.{_action}", _call(f"store.{_action}"), [("store", _action)]))
for _res, _actions in RESOURCE_ACTIONS.items():
    FORMS += [
        (f"{_res}-bare", _call(_res), [(_res, "*")]),
        (f"{_res}-empty-call", _factory(_res), [(_res, "*")]),
        (f"{_res}-own-resource", _factory(_res, resources=_res), [(_res, "*")]),
        (f"{_res}-own-resource-list", _factory(_res, resources=[_res]), [(_res, "*")]),
        (f"{_res}-action-str", _factory(_res, actions="read"), [(_res, "read")]),
        (f"{_res}-action-list", _factory(_res, actions=_actions),
         [(_res, a) for a in _actions]),
        (f"{_res}-action-tuple", _factory(_res, actions=("update", "delete")),
         [(_res, "update"), (_res, "delete")]),
    ]
    for _action in _actions:
        FORMS.append((f"{_res}.{_action}", _call(f"{_res}.{_action}"), [(_res, _action)]))


@pytest.mark.parametrize(
    ("registrar", "expected"), [pytest.param(r, e, id=i) for i, r, e in FORMS]
)
@pytest.mark.parametrize("handler", [good, good_kwonly, with_extra_required])
def test_registration_forms(auth, registrar, expected, handler):
    assert registrar(auth, handler) is handler
    keys = [k for k in expected if k != GLOBAL]
    assert auth._handlers == {k: [handler] for k in keys}
    assert list(auth._handlers) == keys  # insertion order of registration
    assert auth._global_handlers == ([handler] if GLOBAL in expected else [])
    assert auth._handler_cache == {}


def test_resource_specific_positional_fn_with_actions(auth):
    # fn given positionally together with keyword options is honoured.
    assert auth.on.threads(good, actions="create") is good
    assert auth._handlers == {("threads", "create"): [good]}


def test_generic_positional_fn_ignores_options(auth):
    # with fn given, the generic form registers the global handler regardless.
    assert auth.on(good, resources="threads", actions="read") is good
    assert auth._global_handlers == [good] and auth._handlers == {}


def test_stacked_decorators(auth):
    @auth.on.threads.create
    @auth.on.assistants.read
    @auth.on.store.put
    @auth.on(resources="crons")
    @auth.on
    async def stacked(ctx, value):
        return None

    assert auth._global_handlers == [stacked]
    assert auth._handlers == {
        ("crons", "*"): [stacked],
        ("store", "put"): [stacked],
        ("assistants", "read"): [stacked],
        ("threads", "create"): [stacked],
    }


def test_on_has_no_runs(auth):
    with pytest.raises(AttributeError):
        auth.on.runs


def test_assistants_and_crons_have_no_create_run(auth):
    for res in ("assistants", "crons"):
        with pytest.raises(AttributeError):
            getattr(auth.on, res).create_run


# ---------------------------------------------------------------------------
# §2.4 registration-time validation
# ---------------------------------------------------------------------------

BAD_HANDLERS = [
    ("sync", sync_handler, _msg_not_async("sync_handler")),
    ("no-ctx", no_ctx, _msg_no_ctx("no_ctx")),
    ("only-kwargs", only_kwargs, _msg_no_ctx("only_kwargs")),
    ("ctx-named-wrong", ctx_named_wrong, _msg_no_ctx("ctx_named_wrong")),
    ("no-value", no_value, _msg_no_value("no_value")),
]
# A callable without __name__: the message falls back to str(handler).
_nameless = functools.partial(sync_handler)
BAD_HANDLERS.append(("nameless", _nameless, _msg_not_async(str(_nameless))))
_nameless_async = functools.partial(no_value)
BAD_HANDLERS.append(
    ("nameless-async", _nameless_async, _msg_no_value(str(_nameless_async)))
)

VALIDATING_PATHS = [
    ("on-bare", _call("")),
    ("on-call", _factory("")),
    ("on-keyed", _factory("", resources="threads", actions="read")),
    ("on-cross", _factory("", resources=["a", "b"], actions=["c", "d"])),
    ("store-bare", _call("store")),
    ("store-call", _factory("store")),
    ("store-actions", _factory("store", actions=["put", "get"])),
]
for _res, _actions in RESOURCE_ACTIONS.items():
    VALIDATING_PATHS += [
        (f"{_res}-bare", _call(_res)),
        (f"{_res}-call", _factory(_res)),
        (f"{_res}-actions", _factory(_res, actions=["read", "search"])),
        # handler validation precedes every argument check
        (f"{_res}-bad-actions", _factory(_res, actions=[])),
        (f"{_res}-bad-resources", _factory(_res, resources="elsewhere")),
    ]
    VALIDATING_PATHS += [(f"{_res}.{a}", _call(f"{_res}.{a}")) for a in _actions]
VALIDATING_PATHS += [(f"store.{a}", _call(f"store.{a}")) for a in STORE_ACTIONS]


@pytest.mark.parametrize(
    ("registrar", "handler", "message"),
    [
        pytest.param(r, h, m, id=f"{pid}-{hid}")
        for (pid, r), (hid, h, m) in itertools.product(VALIDATING_PATHS, BAD_HANDLERS)
    ],
)
def test_handler_validation(auth, registrar, handler, message):
    _raises_exact(ValueError, message, registrar, auth, handler)
    assert auth._handlers == {} and auth._global_handlers == []


# Forms that never call the registration routine do not validate the handler.
@pytest.mark.parametrize(
    "registrar",
    [
        pytest.param(_factory("", resources=[]), id="on-no-resources"),
        pytest.param(_factory("", actions=[]), id="on-no-actions"),
        pytest.param(_factory("store", actions=[]), id="store-no-actions"),
    ],
)
def test_empty_generic_forms_skip_validation(auth, registrar):
    assert registrar(auth, sync_handler) is sync_handler
    assert auth._handlers == {} and auth._global_handlers == []


# (id, setup registrars, failing registrar, exception, message, keys after failure)
def _dup(res, action):
    return f"types.Handler already set for {res}, {action}."


REGISTRATION_ERRORS = [
    ("second-global-bare", [_call("")], _call(""), ValueError,
     "Global handler already set.", [GLOBAL]),
    ("second-global-call", [_call("")], _factory("", resources="*"), ValueError,
     "Global handler already set.", [GLOBAL]),
    ("dup-threads-create", [_call("threads.create")], _call("threads.create"),
     ValueError, _dup("threads", "create"), [("threads", "create")]),
    ("dup-generic-vs-specific", [_factory("", resources="threads", actions="read")],
     _call("threads.read"), ValueError, _dup("threads", "read"), [("threads", "read")]),
    ("dup-threads-star", [_call("threads")], _factory("", resources="threads"),
     ValueError, _dup("threads", "*"), [("threads", "*")]),
    ("dup-star-action", [_factory("", actions="read")], _factory("", actions=["read"]),
     ValueError, _dup("*", "read"), [("*", "read")]),
    ("dup-store", [_call("store.put")], _factory("store", actions="put"),
     ValueError, _dup("store", "put"), [("store", "put")]),
    ("dup-store-bare", [_call("store")], _factory("store"),
     ValueError, _dup("store", "*"), [("store", "*")]),
    ("dup-arbitrary", [_factory("", resources="foo", actions="bar")],
     _factory("", resources="foo", actions="bar"), ValueError, _dup("foo", "bar"),
     [("foo", "bar")]),
    ("dup-crons-specific-list", [_call("crons.delete")],
     _factory("crons", actions=["read", "delete"]), ValueError,
     _dup("crons", "delete"), [("crons", "delete")]),
    # generic form: not atomic, earlier pairs stay registered
    ("generic-not-atomic", [_call("threads.read")],
     _factory("", resources="threads", actions=["create", "read", "update"]),
     ValueError, _dup("threads", "read"), [("threads", "read"), ("threads", "create")]),
    # store(actions=[...]) is not atomic either and accepts duplicates until they clash
    ("store-dup-in-list", [], _factory("store", actions=["put", "put"]), ValueError,
     _dup("store", "put"), [("store", "put")]),
    # resource-specific form: atomic, nothing registered
    ("specific-atomic", [_call("threads.read")],
     _factory("threads", actions=["create", "read"]), ValueError,
     _dup("threads", "read"), [("threads", "read")]),
    ("invalid-action", [], _factory("threads", actions="bogus"), ValueError,
     "Invalid action(s) for threads: bogus", []),
    ("invalid-actions-sorted", [], _factory("threads", actions=["zeta", "create", "alpha"]),
     ValueError, "Invalid action(s) for threads: alpha, zeta", []),
    ("invalid-dup-unknown-reported-once", [],
     _factory("assistants", actions=["x", "x"]), ValueError,
     "Invalid action(s) for assistants: x", []),
    ("assistants-no-create-run", [], _factory("assistants", actions="create_run"),
     ValueError, "Invalid action(s) for assistants: create_run", []),
    ("crons-no-create-run", [], _factory("crons", actions=["read", "create_run"]),
     ValueError, "Invalid action(s) for crons: create_run", []),
    ("explicit-star-is-invalid", [], _factory("threads", actions="*"), ValueError,
     "Invalid action(s) for threads: *", []),
    ("store-action-invalid-for-threads", [], _factory("threads", actions="put"),
     ValueError, "Invalid action(s) for threads: put", []),
    ("empty-actions", [], _factory("threads", actions=[]), ValueError,
     "actions must not be empty", []),
    ("empty-actions-tuple", [], _factory("crons", actions=()), ValueError,
     "actions must not be empty", []),
    ("duplicate-actions", [], _factory("threads", actions=["read", "read"]),
     ValueError, "actions must not contain duplicates", []),
    ("actions-not-sequence", [], _factory("threads", actions=5), TypeError,
     "actions must be a string or sequence of strings", []),
    ("actions-set", [], _factory("threads", actions={"read"}), TypeError,
     "actions must be a string or sequence of strings", []),
    ("actions-non-str-item", [], _factory("assistants", actions=["read", 5]),
     TypeError, "actions must be a string or sequence of strings", []),
    ("resources-not-sequence", [], _factory("threads", resources=5), TypeError,
     "resources must be a string or sequence of strings", []),
    ("other-resource", [], _factory("threads", resources="assistants"), ValueError,
     "Resource-specific decorator for 'threads' cannot register handlers for "
     "['assistants']. Use @auth.on(...) for other or multiple resources.", []),
    ("multiple-resources", [], _factory("crons", resources=["crons", "threads"]),
     ValueError,
     "Resource-specific decorator for 'crons' cannot register handlers for "
     "['crons', 'threads']. Use @auth.on(...) for other or multiple resources.", []),
    ("empty-resources-specific", [], _factory("assistants", resources=[]), ValueError,
     "Resource-specific decorator for 'assistants' cannot register handlers for "
     "[]. Use @auth.on(...) for other or multiple resources.", []),
    # resource check comes before the action checks
    ("resource-checked-before-actions", [],
     _factory("threads", resources="runs", actions=[]), ValueError,
     "Resource-specific decorator for 'threads' cannot register handlers for "
     "['runs']. Use @auth.on(...) for other or multiple resources.", []),
    # emptiness before item types, invalid names before duplicates
    ("invalid-before-duplicates", [], _factory("threads", actions=["bad", "bad", "read"]),
     ValueError, "Invalid action(s) for threads: bad", []),
]


@pytest.mark.parametrize(
    ("setup", "registrar", "exc_type", "message", "after"),
    [pytest.param(*row[1:], id=row[0]) for row in REGISTRATION_ERRORS],
)
def test_registration_errors(auth, setup, registrar, exc_type, message, after):
    for register in setup:
        register(auth, good)
    _raises_exact(exc_type, message, registrar, auth, good2)
    keys = [k for k in after if k != GLOBAL]
    assert set(auth._handlers) == set(keys)
    assert all(len(v) == 1 for v in auth._handlers.values())
    assert len(auth._global_handlers) == (1 if GLOBAL in after else 0)


# SDK != spec: the spec's TypeError messages for resources/actions only exist on
# the resource-specific decorators; the generic and store forms just call list()
# and fail with Python's own TypeError.
@pytest.mark.parametrize(
    "registrar",
    [
        pytest.param(_factory("", resources=5), id="on-resources"),
        pytest.param(_factory("", actions=5), id="on-actions"),
        pytest.param(_factory("store", actions=5), id="store-actions"),
    ],
)
def test_generic_forms_type_errors(auth, registrar):
    with pytest.raises(TypeError, match="not iterable"):
        registrar(auth, good)
    assert auth._handlers == {} and auth._global_handlers == []


# ---------------------------------------------------------------------------
# §2.5 namespace shapes
# ---------------------------------------------------------------------------

RESOURCE_VALUE_TYPES = {
    "threads": {
        "Create": "ThreadsCreate", "Read": "ThreadsRead", "Update": "ThreadsUpdate",
        "Delete": "ThreadsDelete", "Search": "ThreadsSearch", "CreateRun": "RunsCreate",
    },
    "assistants": {
        "Create": "AssistantsCreate", "Read": "AssistantsRead",
        "Update": "AssistantsUpdate", "Delete": "AssistantsDelete",
        "Search": "AssistantsSearch",
    },
    "crons": {
        "Create": "CronsCreate", "Read": "CronsRead", "Update": "CronsUpdate",
        "Delete": "CronsDelete", "Search": "CronsSearch",
    },
}
_ATTR_TO_ACTION = {
    "Create": "create", "Read": "read", "Update": "update", "Delete": "delete",
    "Search": "search", "CreateRun": "create_run",
}
STORE_VALUE_TYPES = {
    "put": "StorePut", "get": "StoreGet", "search": "StoreSearch",
    "delete": "StoreDelete", "list_namespaces": "StoreListNamespaces",
}


@pytest.mark.parametrize("resource", list(RESOURCE_VALUE_TYPES))
def test_resource_namespace_shape(sdk, auth, resource):
    ns = getattr(auth.on, resource)
    assert ns.resource == resource
    assert ns.auth is auth
    for attr, type_name in RESOURCE_VALUE_TYPES[resource].items():
        expected = getattr(sdk.types, type_name)
        assert getattr(type(ns), attr) is expected
        deco = getattr(ns, _ATTR_TO_ACTION[attr])
        assert (deco.resource, deco.action) == (resource, _ATTR_TO_ACTION[attr])
        assert deco.value is expected
    members = [getattr(sdk.types, n) for n in RESOURCE_VALUE_TYPES[resource].values()]
    value = type(ns).value
    if resource == "crons":
        # SDK != spec: auth.on.crons.value is type[<union>], not the bare union.
        assert typing.get_origin(value) is type
        (value,) = typing.get_args(value)
    # SDK: auth.on.threads.value also contains RunsCreate (types.on.threads.value
    # does not).
    assert set(typing.get_args(value)) == set(members)


def test_store_namespace_shape(sdk, auth):
    for action, type_name in STORE_VALUE_TYPES.items():
        deco = getattr(auth.on.store, action)
        assert deco.action == action
        assert deco.value is getattr(sdk.types, type_name)
        assert not hasattr(deco, "resource")


def test_on_value(auth):
    assert auth.on.value == dict[str, typing.Any]


# ---------------------------------------------------------------------------
# §2.6 HTTPException
# ---------------------------------------------------------------------------

# (id, args, kwargs, status, detail, headers)
HTTP_EXCEPTION_CASES = [
    ("default", (), {}, 401, "Unauthorized", None),
    ("403", (403,), {}, 403, "Forbidden", None),
    ("404-kw", (), {"status_code": 404}, 404, "Not Found", None),
    ("418", (418,), {}, 418, "I'm a Teapot", None),
    ("500", (500,), {}, 500, "Internal Server Error", None),
    ("429", (), {"status_code": 429}, 429, "Too Many Requests", None),
    ("explicit-detail", (403, "nope"), {}, 403, "nope", None),
    ("empty-detail-kept", (), {"detail": ""}, 401, "", None),
    ("all-positional", (401, "bad", {"WWW-Authenticate": "Bearer"}), {}, 401, "bad",
     {"WWW-Authenticate": "Bearer"}),
    ("headers-only", (), {"headers": {"X-A": "1"}}, 401, "Unauthorized", {"X-A": "1"}),
    ("unknown-status-with-detail", (599, "odd"), {}, 599, "odd", None),
]


@pytest.mark.parametrize(
    ("args", "kwargs", "status", "detail", "headers"),
    [pytest.param(*row[1:], id=row[0]) for row in HTTP_EXCEPTION_CASES],
)
def test_http_exception(sdk, args, kwargs, status, detail, headers):
    exc = sdk.exceptions.HTTPException(*args, **kwargs)
    assert isinstance(exc, Exception)
    assert (exc.status_code, exc.detail, exc.headers) == (status, detail, headers)
    assert str(exc) == f"{status}: {detail}"
    assert repr(exc) == f"HTTPException(status_code={status!r}, detail={detail!r})"
    with pytest.raises(sdk.exceptions.HTTPException):
        raise exc


@pytest.mark.parametrize("status", [599, 0, 999])
def test_http_exception_unknown_status_without_detail(sdk, status):
    with pytest.raises(ValueError):
        sdk.exceptions.HTTPException(status)


def test_http_exception_subclass_repr_uses_subclass_name(sdk):
    class Denied(sdk.exceptions.HTTPException):
        pass

    assert repr(Denied(403)) == "Denied(status_code=403, detail='Forbidden')"


# ---------------------------------------------------------------------------
# §2.7 types catalogue
# ---------------------------------------------------------------------------

TYPE_NAMES = [
    "AuthContext", "BaseAuthContext", "MinimalUser", "BaseUser", "MinimalUserDict",
    "StudioUser", "FilterType", "HandlerResult", "Handler", "Authenticator",
    "RunStatus", "MultitaskStrategy", "OnConflictBehavior", "IfNotExists",
    "ThreadStatus", "MetadataInput", "ThreadTTL", "ThreadsCreate", "ThreadsRead",
    "ThreadsUpdate", "ThreadsDelete", "ThreadsSearch", "RunsCreate",
    "AssistantsCreate", "AssistantsRead", "AssistantsUpdate", "AssistantsDelete",
    "AssistantsSearch", "CronsCreate", "CronsRead", "CronsUpdate", "CronsDelete",
    "CronsSearch", "StoreGet", "StoreSearch", "StoreListNamespaces", "StorePut",
    "StoreDelete", "on",
]


@pytest.mark.parametrize("name", TYPE_NAMES)
def test_type_names_exist(sdk, name):
    assert getattr(sdk.types, name) is getattr(sdk.Auth.types, name)
    namespace: dict = {}
    with sdk.active():
        exec(f"from langgraph_sdk.auth.types import {name}", namespace)
    assert namespace[name] is getattr(sdk.types, name)


REEXPORTS = [
    ("UUID", lambda v: v is uuid.UUID),
    ("datetime", lambda v: v is dt_module.datetime),
    ("typing", lambda v: v is typing),
    # the shim aliases it to `typing` when typing_extensions is not installed
    ("typing_extensions", lambda v: isinstance(v, pytypes.ModuleType)
     and hasattr(v, "Required")),
    ("Awaitable", lambda v: v is collections.abc.Awaitable),
    ("Callable", lambda v: v is collections.abc.Callable),
    ("Sequence", lambda v: v is collections.abc.Sequence),
    ("dataclass", lambda v: v is dataclasses.dataclass),
    ("T", lambda v: isinstance(v, typing.TypeVar) and v.__name__ == "T"),
]


@pytest.mark.parametrize(("name", "check"), REEXPORTS, ids=[r[0] for r in REEXPORTS])
def test_reexports(sdk, name, check):
    assert check(getattr(sdk.types, name))


LITERALS = [
    ("RunStatus", ("pending", "error", "success", "timeout", "interrupted")),
    ("MultitaskStrategy", ("reject", "rollback", "interrupt", "enqueue")),
    ("OnConflictBehavior", ("raise", "do_nothing")),
    ("IfNotExists", ("create", "reject")),
    ("ThreadStatus", ("idle", "busy", "interrupted", "error")),
]


@pytest.mark.parametrize(("name", "values"), LITERALS, ids=[r[0] for r in LITERALS])
def test_literal_aliases(sdk, name, values):
    alias = getattr(sdk.types, name)
    assert typing.get_origin(alias) is typing.Literal
    assert typing.get_args(alias) == values


def test_other_aliases(sdk):
    t = sdk.types
    assert t.MetadataInput == dict[str, typing.Any]
    result_members = typing.get_args(t.HandlerResult)
    assert type(None) in result_members and bool in result_members
    assert all(typing.get_origin(m) is dict for m in typing.get_args(t.FilterType))
    assert set(typing.get_args(t.FilterType)) <= set(result_members)
    for alias in (t.Handler, t.Authenticator):
        assert typing.get_origin(alias) is collections.abc.Callable
        params, ret = typing.get_args(alias)
        assert params is Ellipsis
        assert typing.get_origin(ret) is collections.abc.Awaitable


TYPED_DICT_FIELDS = [
    ("MinimalUserDict", ["identity", "display_name", "is_authenticated", "permissions"]),
    ("ThreadTTL", ["strategy", "ttl"]),
    ("ThreadsCreate", ["thread_id", "metadata", "if_exists", "ttl"]),
    ("ThreadsRead", ["thread_id", "run_id"]),
    ("ThreadsUpdate", ["thread_id", "metadata", "action"]),
    ("ThreadsDelete", ["thread_id", "run_id"]),
    ("ThreadsSearch",
     ["metadata", "values", "status", "limit", "offset", "ids", "thread_id"]),
    ("RunsCreate",
     ["assistant_id", "thread_id", "run_id", "status", "metadata",
      "prevent_insert_if_inflight", "multitask_strategy", "if_not_exists",
      "after_seconds", "kwargs", "action"]),
    ("AssistantsCreate",
     ["assistant_id", "graph_id", "config", "context", "metadata", "if_exists", "name"]),
    ("AssistantsRead", ["assistant_id", "metadata"]),
    ("AssistantsUpdate",
     ["assistant_id", "graph_id", "config", "context", "metadata", "name", "version"]),
    ("AssistantsDelete", ["assistant_id"]),
    ("AssistantsSearch", ["graph_id", "metadata", "limit", "offset"]),
    ("CronsCreate",
     ["payload", "schedule", "cron_id", "thread_id", "user_id", "end_time"]),
    ("CronsRead", ["cron_id"]),
    ("CronsDelete", ["cron_id"]),
    ("CronsUpdate", ["cron_id", "payload", "schedule"]),
    ("CronsSearch", ["assistant_id", "thread_id", "limit", "offset"]),
    ("StoreGet", ["namespace", "key"]),
    ("StoreSearch", ["namespace", "filter", "limit", "offset", "query"]),
    ("StoreListNamespaces", ["namespace", "suffix", "max_depth", "limit", "offset"]),
    ("StorePut", ["namespace", "key", "value", "index"]),
    ("StoreDelete", ["namespace", "key"]),
]
# TypedDicts declared total=True in the SDK (all keys required); the rest total=False.
TOTAL_TYPED_DICTS = {
    "AssistantsDelete", "AssistantsSearch", "CronsDelete", "CronsRead", "StoreGet",
    "StoreSearch", "StoreListNamespaces", "StorePut", "StoreDelete",
}


@pytest.mark.parametrize(
    ("name", "fields"), TYPED_DICT_FIELDS, ids=[r[0] for r in TYPED_DICT_FIELDS]
)
def test_typed_dicts(sdk, name, fields):
    td = getattr(sdk.types, name)
    assert list(td.__annotations__) == fields
    assert td.__total__ == (name in TOTAL_TYPED_DICTS)
    if name == "MinimalUserDict":
        # SDK != spec: the spec says `identity` is required, but the SDK's postponed
        # annotations hide the Required[] marker, so at runtime no key is required.
        assert td.__required_keys__ == frozenset()
    instance = td(**{f: None for f in fields})
    assert type(instance) is dict
    assert instance == {f: None for f in fields}


ON_TREE = [
    ("threads", {"create": "ThreadsCreate", "create_run": "RunsCreate",
                 "read": "ThreadsRead", "update": "ThreadsUpdate",
                 "delete": "ThreadsDelete", "search": "ThreadsSearch"},
     ["ThreadsCreate", "ThreadsRead", "ThreadsUpdate", "ThreadsDelete",
      "ThreadsSearch"]),
    ("assistants", {a: "Assistants" + a.capitalize() for a in CRUD_ACTIONS},
     ["Assistants" + a.capitalize() for a in CRUD_ACTIONS]),
    ("crons", {a: "Crons" + a.capitalize() for a in CRUD_ACTIONS},
     ["Crons" + a.capitalize() for a in CRUD_ACTIONS]),
    ("store", STORE_VALUE_TYPES, list(STORE_VALUE_TYPES.values())),
]


def test_on_tree_root(sdk):
    assert sdk.types.on.value == dict[str, typing.Any]
    assert not hasattr(sdk.types.on, "runs")


@pytest.mark.parametrize(
    ("resource", "leaves", "union"), ON_TREE, ids=[r[0] for r in ON_TREE]
)
def test_on_tree(sdk, resource, leaves, union):
    node = getattr(sdk.types.on, resource)
    # a bare union (types.UnionType) whose members are the per-action TypedDicts
    assert isinstance(node.value, pytypes.UnionType)
    assert set(typing.get_args(node.value)) == {getattr(sdk.types, n) for n in union}
    for action, type_name in leaves.items():
        assert getattr(node, action).value is getattr(sdk.types, type_name)
    # usable in a handler annotation evaluated at definition time
    ns = {"on": sdk.types.on}
    _run(f"async def h(ctx, value: on.{resource}.{next(iter(leaves))}.value): pass", ns)
    first_leaf = getattr(sdk.types, next(iter(leaves.values())))
    assert ns["h"].__annotations__["value"] is first_leaf


def test_on_tree_annotation_through_auth_class(sdk):
    ns = {"Auth": sdk.Auth}
    _run(
        "async def h(ctx: Auth.types.AuthContext,"
        " value: Auth.types.on.threads.create.value): pass",
        ns,
    )
    assert ns["h"].__annotations__["value"] is sdk.types.ThreadsCreate
    with pytest.raises(AttributeError):
        _run("async def g(ctx, value: Auth.on.threads.create.value): pass", ns)


STUDIO_USERS = [
    ("default", ("langgraph-studio-user",), {}, False, []),
    ("authenticated-kw", ("alice",), {"is_authenticated": True}, True,
     ["authenticated"]),
    ("authenticated-pos", ("bob", True), {}, True, ["authenticated"]),
    ("explicit-false", ("carol",), {"is_authenticated": False}, False, []),
]


@pytest.mark.parametrize(
    ("args", "kwargs", "authenticated", "permissions"),
    [pytest.param(*row[1:], id=row[0]) for row in STUDIO_USERS],
)
def test_studio_user(sdk, args, kwargs, authenticated, permissions):
    user = sdk.types.StudioUser(*args, **kwargs)
    name = args[0]
    assert user.username == name
    assert user.identity == name
    assert user.display_name == name
    assert user.is_authenticated is authenticated
    assert list(user.permissions) == permissions
    assert set(sdk.types.StudioUser.__slots__) == {
        "username", "_is_authenticated", "_permissions",
    }
    assert not hasattr(user, "__dict__")
    with pytest.raises(AttributeError):
        user.extra = 1
    assert isinstance(user, sdk.types.MinimalUser)
    # no mapping protocol, so not a BaseUser
    assert not isinstance(user, sdk.types.BaseUser)
    assert sdk.auth_pkg.is_studio_user(user)


class _FullUser:
    identity = "u"
    display_name = "U"
    is_authenticated = True
    permissions = ()

    def __getitem__(self, key):
        return getattr(self, key)

    def __contains__(self, key):
        return hasattr(self, key)

    def __iter__(self):
        return iter(())


def test_user_protocols(sdk):
    t = sdk.types
    assert isinstance(_FullUser(), t.BaseUser)
    assert isinstance(_FullUser(), t.MinimalUser)
    assert not isinstance({"identity": "x"}, t.MinimalUser)
    assert not isinstance(object(), t.MinimalUser)


IS_STUDIO_USER_CASES = [
    ("studio-object", lambda t: t.StudioUser("x"), True),
    ("studio-object-auth", lambda t: t.StudioUser("x", True), True),
    ("dict-kind", lambda t: {"kind": "StudioUser", "identity": "x"}, True),
    ("dict-kind-only", lambda t: {"kind": "StudioUser"}, True),
    ("dict-other-kind", lambda t: {"kind": "User", "identity": "x"}, False),
    ("dict-kind-case", lambda t: {"kind": "studiouser"}, False),
    ("dict-no-kind", lambda t: {"identity": "langgraph-studio-user"}, False),
    ("plain-user", lambda t: _FullUser(), False),
    ("string", lambda t: "StudioUser", False),
    ("none", lambda t: None, False),
]


@pytest.mark.parametrize(
    ("make", "expected"),
    [pytest.param(m, e, id=i) for i, m, e in IS_STUDIO_USER_CASES],
)
def test_is_studio_user(sdk, make, expected):
    assert sdk.auth_pkg.is_studio_user(make(sdk.types)) is expected


def test_auth_context(sdk):
    t = sdk.types
    user = t.StudioUser("alice", True)
    ctx = t.AuthContext(["read"], user, "threads", "create")
    assert [f.name for f in dataclasses.fields(t.AuthContext)] == [
        "permissions", "user", "resource", "action",
    ]
    assert (ctx.permissions, ctx.user, ctx.resource, ctx.action) == (
        ["read"], user, "threads", "create",
    )
    assert ctx == t.AuthContext(
        permissions=["read"], user=user, resource="threads", action="create"
    )
    assert repr(ctx).startswith("AuthContext(permissions=['read'], user=")
    assert isinstance(ctx, t.BaseAuthContext)
    assert getattr(t.AuthContext, "__final__", False) is True
    assert not hasattr(ctx, "__dict__")
    with pytest.raises(AttributeError):
        ctx.extra = 1
    ctx.action = "read"  # mutable
    ctx.permissions = []
    assert (ctx.action, ctx.permissions) == ("read", [])
    with pytest.raises(TypeError):
        t.AuthContext([], user, "threads")


def test_base_auth_context(sdk):
    t = sdk.types
    assert [f.name for f in dataclasses.fields(t.BaseAuthContext)] == [
        "permissions", "user",
    ]
    base = t.BaseAuthContext([], None)
    assert not hasattr(base, "__dict__")
    assert not isinstance(base, t.AuthContext)


# ---------------------------------------------------------------------------
# Direct parity check between the two flavours (skipped without the real SDK)
# ---------------------------------------------------------------------------


def _public(obj) -> set[str]:
    return {n for n in dir(obj) if not n.startswith("_")}


def test_public_surface_matches_real_sdk():
    shim, real = _load_isolated("shim"), _load_isolated("real")
    assert _public(shim.types) == _public(real.types)
    assert _public(shim.exceptions) >= {"HTTPException"}
    assert _public(shim.Auth) == _public(real.Auth)
    shim_auth, real_auth = shim.Auth(), real.Auth()
    paths = ["", "threads", "assistants", "crons", "store"]
    paths += [f"{r}.{a}" for r, acts in RESOURCE_ACTIONS.items() for a in acts]
    paths += [f"store.{a}" for a in STORE_ACTIONS]
    for path in paths:
        s, r = shim_auth.on, real_auth.on
        for part in filter(None, path.split(".")):
            s, r = getattr(s, part), getattr(r, part)
        assert _public(s) == _public(r), path
