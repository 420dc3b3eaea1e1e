"""Hosts a user's custom `auth.py` (a `langgraph_sdk.Auth` object) for graphward.

Loaded by Rust as module `graphward_auth`, after `graphward_host`. Contract: spec/auth.md
§1.2-§1.3 (loading, coverage warning), §3 (authentication), §4.1-§4.4 (authorization),
§6.2 (`auth.cache`).

Entry points used by Rust:
  load_auth(raw, file, module_name, attribute, options) -> AuthHost   (start-up)
  AuthHost.coverage() / AuthHost.missing_paths()                      (start-up log)
  await AuthHost.dispatch(request, events) -> dict                    (once per request)

The object is accepted whether it comes from graphward's shim or from the real
langgraph-sdk: it is recognised by its internal attributes (§2.5), and every object handed
to user code (`AuthContext`, `StudioUser`) is built from `type(auth).types`.

On purpose this differs from the reference in one place: an `HTTPException` raised by the
authenticate function keeps its status, detail and headers, whatever the status.
"""

from __future__ import annotations

import asyncio
import collections
import http
import inspect
import time
import types
import urllib.parse
from collections.abc import Mapping

import graphward_host

KEY = "auth.path"

# §1.3: every (resource, action) pair the server dispatches, in this order.
MATRIX = (
    ("assistants", ("create", "read", "update", "delete", "search")),
    ("threads", ("create", "read", "update", "delete", "search", "create_run")),
    ("crons", ("create", "read", "update", "delete", "search")),
    ("store", ("put", "get", "search", "delete", "list_namespaces")),
)

# §3.3: parameters an authenticate function may declare, with the types they receive.
SUPPORTED_PARAMETERS = {
    "request": "Request",
    "body": "dict",
    "user": "BaseUser",
    "path": "str",
    "method": "str",
    "scopes": "list[str]",
    "path_params": "dict[str, str] | None",
    "query_params": "dict[str, str] | None",
    "headers": "dict[bytes, bytes] | None",
    "authorization": "str | None",
    "scope": "dict[str, Any]",
}

# §2.5: the attributes that identify an Auth object (shim or real SDK).
_AUTH_ATTRIBUTES = ("_authenticate_handler", "_handlers", "_global_handlers", "_handler_cache", "on")

STUDIO_USERNAME = "langgraph-studio-user"


class _Identity:
    """Stands in an event value for the caller's identity until authentication has run."""

    __slots__ = ()

    def __repr__(self):
        return "<identity>"


IDENTITY = _Identity()
INTERNAL_ERROR = "Internal Server Error"
NO_RECEIVE = "Receive channel has not been made available"


def _fail(message):
    """A start-up error, prefixed like graphward_host's own ("`auth.path`: ...")."""
    return graphward_host.StartupError(f"`{KEY}`: {message}")


def _name(fn):
    """The name reported for a handler (its qualified name when it has one)."""
    if fn is None:
        return None
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)


# --------------------------------------------------------------------------------------------
# Loading (§1.2, §3.3, §6.2)


def load_auth(raw, file, module_name, attribute, options):
    """Imports the Auth object of `auth.path` and checks it; raises StartupError (one line)."""
    options = dict(options or {})
    auth = graphward_host.load_object(KEY, raw, file, module_name, attribute)
    if not _looks_like_auth(auth):
        raise _fail(f"Expected an Auth instance, got {type(auth)}")
    authenticate = auth._authenticate_handler
    if authenticate is None:
        raise _fail(
            f"Custom Auth object at path: {raw} does not have an authenticate handler. "
            "Register one with @auth.authenticate."
        )
    parameters = _authenticate_parameters(authenticate)
    cache = _cache_options(options.get("cache"))
    return AuthHost(auth, parameters, options, cache)


# The loaded auth being served (see `install`).
HOST = None


def cache_stats():
    """(hits, misses, entries) of the `auth.cache` of the auth being served; None without one."""
    host = HOST
    if host is None or host._cache is None:
        return None
    return host.cache_hits, host.cache_misses, len(host._cache)


def install(host):
    """Serves `host` from now on (start-up, and a reload that loaded everything)."""
    global HOST
    HOST = host
    graphward_host.AUTH_DISPATCH = host.dispatch


def _looks_like_auth(obj):
    if not all(hasattr(obj, name) for name in _AUTH_ATTRIBUTES):
        return False
    if not isinstance(obj._handlers, dict) or not isinstance(obj._global_handlers, list):
        return False
    namespace = getattr(type(obj), "types", None)
    return hasattr(namespace, "AuthContext") and hasattr(namespace, "StudioUser")


def _authenticate_parameters(fn):
    """The §3.3 parameter names `fn` declares (in order). Unsupported required ones fail."""
    if not callable(fn):
        raise _fail(f"the authenticate handler {fn!r} is not callable")
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError) as error:
        raise _fail(f"cannot read the signature of the authenticate handler: {graphward_host.describe_error(error)}") from None
    injected, unsupported = [], []
    for parameter in signature.parameters.values():
        by_name = parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
        if by_name and parameter.name in SUPPORTED_PARAMETERS:
            if parameter.name != "body":  # listed as supported, but never supplied (§3.3)
                injected.append(parameter.name)
        elif parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD) or parameter.default is parameter.empty:
            unsupported.append(parameter.name)
    if unsupported:
        supported = ", ".join(f"{name} ({kind})" for name, kind in SUPPORTED_PARAMETERS.items())
        raise _fail(
            f"Handler has unsupported required parameters: {', '.join(unsupported)}. "
            f"Supported parameters are: {supported}. Give the other parameters a default value."
        )
    return injected


def _cache_options(cache):
    """(lower-cased header names, ttl seconds, max entries) or None."""
    if cache is None:
        return None
    if not isinstance(cache, Mapping):
        raise _fail(f"invalid auth.cache: expected an object with cache_keys, ttl_seconds, max_size, got {type(cache).__name__}")
    keys = cache.get("cache_keys")
    if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys):
        raise _fail(f"invalid auth.cache: cache_keys must be a list of header names, got {keys!r}")
    ttl = cache.get("ttl_seconds")
    ttl = 60 if ttl is None else ttl
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not ttl > 0:
        raise _fail(f"invalid auth.cache: ttl_seconds must be a positive number, got {ttl!r}")
    size = cache.get("max_size")
    size = 1000 if size is None else size
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise _fail(f"invalid auth.cache: max_size must be a positive integer, got {size!r}")
    return tuple(key.lower() for key in keys), float(ttl), size


# --------------------------------------------------------------------------------------------
# Handler resolution (§4.1)


def _resolve(auth, resource, action):
    """(handler, via) for one event: the first hit of the §4.1 order, or (None, None)."""
    handlers = auth._handlers
    for key, via in (
        ((resource, action), "exact"),
        ((resource, "*"), "resource"),
        (("*", action), "action"),
        (("*", "*"), "star"),
    ):
        found = handlers.get(key)
        if found:
            return found[-1], via
    if auth._global_handlers:
        return auth._global_handlers[-1], "global"
    return None, None


# --------------------------------------------------------------------------------------------
# Results and errors (§3.5, §3.6, §4.3)


class _Refusal(Exception):
    """A failure already mapped to a response: `status`, `detail`, and `reason` for the log."""

    def __init__(self, status, detail, reason):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.reason = reason


def _map_result(result):
    """A handler's return value (§4.3) -> the filter (None = no filter); raises _Refusal."""
    if result is None or result is True:
        return None
    if result is False:
        raise _Refusal(403, "Forbidden", "returned False")
    if isinstance(result, dict):
        return result or None
    raise _Refusal(
        500,
        f"Auth handler returned invalid result. Expected filter dict, None, or boolean. Got {type(result)} instead.",
        f"returned an invalid result of type {type(result).__name__}",
    )


def _map_error(error, stage):
    """An exception of the authenticate function or of a handler -> (status, detail, headers, reason)."""
    if isinstance(error, _Refusal):
        return error.status, error.detail, {}, error.reason
    raised = f"raised {graphward_host.describe_error(error)}"
    status = getattr(error, "status_code", None)
    if hasattr(error, "detail") and isinstance(status, int) and not isinstance(status, bool) and 100 <= status <= 599:
        detail = error.detail
        if detail is None:
            detail = _reason_phrase(status)
        return status, detail if isinstance(detail, str) else str(detail), _header_strings(getattr(error, "headers", None)), raised
    if isinstance(error, AssertionError) and stage == "authorize":
        return 403, str(error) or "unknown error", {}, raised
    if isinstance(error, ValueError):
        return 400, str(error) or "unknown error", {}, raised
    return 500, INTERNAL_ERROR, {}, raised


def _reason_phrase(status):
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return INTERNAL_ERROR


def _header_strings(headers):
    if not headers:
        return {}
    try:
        pairs = headers.items() if isinstance(headers, Mapping) else headers
        return {str(name): str(value) for name, value in pairs}
    except Exception:  # noqa: BLE001 - unusable headers are dropped, the status still applies
        return {}


# --------------------------------------------------------------------------------------------
# Users (§3.5)


class AuthenticatedUser:
    """`ctx.user` for whatever authenticate returned (a dict, a string or an object).

    Attributes fall through to the returned dict (nested dicts too) or object; the mapping
    interface gives `identity`, `is_authenticated`, `display_name`, then the dict's keys
    (or, for objects, the output of their own `dict()` method).
    """

    __slots__ = ("_source",)

    def __init__(self, source):
        self._source = source

    def _field(self, name):
        source = self._source
        if isinstance(source, dict):
            try:
                return source[name]
            except KeyError:
                raise AttributeError(f"user has no attribute {name!r}") from None
        return getattr(source, name)

    @property
    def identity(self):
        return self._field("identity")

    @property
    def display_name(self):
        try:
            return self._field("display_name")
        except AttributeError:
            return self.identity

    @property
    def is_authenticated(self):
        try:
            return self._field("is_authenticated")
        except AttributeError:
            return True

    def __getattr__(self, name):
        if name.startswith("__") or name == "_source":
            raise AttributeError(name)
        value = self._field(name)
        if isinstance(self._source, dict) and isinstance(value, dict):
            return _AttributeDict(value)
        return value

    def dict(self):
        mapping = {"identity": self.identity, "is_authenticated": self.is_authenticated, "display_name": self.display_name}
        source = self._source
        if isinstance(source, dict):
            mapping.update(source)
        else:
            own = getattr(source, "dict", None)
            if callable(own):
                mapping.update(own())
        return mapping

    def __getitem__(self, key):
        return self.dict()[key]

    def __contains__(self, key):
        return key in self.dict()

    def __iter__(self):
        return iter(self.dict())

    def __len__(self):
        return len(self.dict())

    def get(self, key, default=None):
        return self.dict().get(key, default)

    def keys(self):
        return self.dict().keys()

    def values(self):
        return self.dict().values()

    def items(self):
        return self.dict().items()

    def __repr__(self):
        return f"{type(self).__name__}(identity={self.identity!r})"


class AuthenticatedUserWithPermissions(AuthenticatedUser):
    """The same, for users that have `permissions` (so they satisfy `Auth.types.BaseUser`)."""

    __slots__ = ()

    @property
    def permissions(self):
        return self._field("permissions")


Mapping.register(AuthenticatedUser)


class _AttributeDict(dict):
    """A nested dict of a user, whose keys are also attributes."""

    __slots__ = ()

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            value = self[name]
        except KeyError:
            raise AttributeError(f"user has no attribute {name!r}") from None
        return _AttributeDict(value) if isinstance(value, dict) and not isinstance(value, _AttributeDict) else value


def _wrap_user(source):
    if isinstance(source, dict):
        has_permissions = "permissions" in source
    else:
        has_permissions = hasattr(source, "permissions")
    return (AuthenticatedUserWithPermissions if has_permissions else AuthenticatedUser)(source)


def _normalise(result):
    """§3.5: an authenticate return value -> (permissions, user object)."""
    if type(result) is dict and "identity" in result:
        # The common case, decided without the attribute probes below (same outcome).
        if "permissions" in result:
            return list(result["permissions"]), AuthenticatedUserWithPermissions(result)
        return [], AuthenticatedUser(result)
    if isinstance(result, tuple):
        if len(result) != 2:
            raise _Refusal(
                400,
                f"Expected a tuple with two elements (permissions, user), got {len(result)}",
                f"returned a tuple of {len(result)} elements",
            )
        permissions, user = result
    elif hasattr(result, "permissions"):
        permissions, user = result.permissions, result
    elif isinstance(result, Mapping) and "permissions" in result:
        permissions, user = result["permissions"], result
    else:
        permissions, user = [], result
    if isinstance(user, AuthenticatedUser):
        pass
    elif hasattr(user, "identity"):
        user = _wrap_user(user)
    elif isinstance(user, str):
        user = AuthenticatedUser({"identity": user})
    elif isinstance(user, dict) and "identity" in user:
        user = _wrap_user(user)
    else:
        raise _Refusal(
            400,
            "Expected a BaseUser instance with required property: identity (str). Optional properties are: "
            "is_authenticated (bool, defaults to True) and display_name (str, defaults to identity). "
            f"Got {type(user)} instead",
            f"returned no usable user ({type(user).__name__})",
        )
    return list(permissions), user


def user_mapping(user):
    """The mapping form of a user object from `dispatch` (the Studio user's includes `kind`)."""
    if isinstance(user, AuthenticatedUser):
        return user.dict()
    return {
        "kind": type(user).__name__,
        "is_authenticated": user.is_authenticated,
        "display_name": user.display_name,
        "identity": user.identity,
        "permissions": list(user.permissions),
    }


# --------------------------------------------------------------------------------------------
# What the authenticate function receives (§3.3)


def _load_starlette():
    try:
        from starlette.datastructures import QueryParams
        from starlette.requests import Request
    except ImportError:
        return None
    return Request, QueryParams


class QueryParams(Mapping):
    """Immutable multi-dict of the query string (Starlette's surface): `[]` gives the last value."""

    def __init__(self, query_string=b""):
        if isinstance(query_string, bytes):
            query_string = query_string.decode("latin-1")
        self._list = urllib.parse.parse_qsl(query_string, keep_blank_values=True)
        self._dict = dict(self._list)

    def __getitem__(self, key):
        return self._dict[key]

    def __iter__(self):
        return iter(self._dict)

    def __len__(self):
        return len(self._dict)

    def getlist(self, key):
        return [value for name, value in self._list if name == key]

    def multi_items(self):
        return list(self._list)

    def __str__(self):
        return urllib.parse.urlencode(self._list)

    def __repr__(self):
        return f"{type(self).__name__}({str(self)!r})"


class Headers(Mapping):
    """Case-insensitive, read-only view of the request headers (Starlette's surface)."""

    def __init__(self, raw):
        self.raw = list(raw)

    def __getitem__(self, key):
        wanted = key.lower().encode("latin-1")
        for name, value in self.raw:
            if name == wanted:
                return value.decode("latin-1")
        raise KeyError(key)

    def __contains__(self, key):
        return isinstance(key, str) and key.lower().encode("latin-1") in {name for name, _ in self.raw}

    def __iter__(self):
        return iter(self.keys())

    def __len__(self):
        return len(self.raw)

    def keys(self):
        return [name.decode("latin-1") for name, _ in self.raw]

    def values(self):
        return [value.decode("latin-1") for _, value in self.raw]

    def items(self):
        return [(name.decode("latin-1"), value.decode("latin-1")) for name, value in self.raw]

    def getlist(self, key):
        wanted = key.lower().encode("latin-1")
        return [value.decode("latin-1") for name, value in self.raw if name == wanted]

    def __repr__(self):
        return f"{type(self).__name__}({self.items()!r})"


class URL:
    """The request URL (Starlette's surface: scheme, netloc, path, query, hostname, port...)."""

    def __init__(self, scope, headers):
        scheme = scope["scheme"]
        host = headers.get("host")
        if host:
            netloc = host
        elif scope.get("server"):
            name, port = scope["server"]
            default = {"http": 80, "https": 443, "ws": 80, "wss": 443}.get(scheme)
            netloc = name if port == default else f"{name}:{port}"
        else:
            netloc = ""
        url = f"{scheme}://{netloc}{scope.get('root_path', '')}{scope['path']}" if netloc else scope["path"]
        query = scope["query_string"].decode("latin-1")
        self._url = f"{url}?{query}" if query else url
        self.components = urllib.parse.urlsplit(self._url)

    scheme = property(lambda self: self.components.scheme)
    netloc = property(lambda self: self.components.netloc)
    path = property(lambda self: self.components.path)
    query = property(lambda self: self.components.query)
    fragment = property(lambda self: self.components.fragment)
    username = property(lambda self: self.components.username)
    password = property(lambda self: self.components.password)
    hostname = property(lambda self: self.components.hostname)
    port = property(lambda self: self.components.port)
    is_secure = property(lambda self: self.components.scheme in ("https", "wss"))

    def __eq__(self, other):
        return str(self) == str(other)

    def __hash__(self):
        return hash(self._url)

    def __str__(self):
        return self._url

    def __repr__(self):
        return f"URL({self._url!r})"


Address = collections.namedtuple("Address", ["host", "port"])


class Request(Mapping):
    """Stand-in for a Starlette `Request` when Starlette is not installed. Its body is unreadable."""

    def __init__(self, scope):
        self.scope = scope
        self.headers = Headers(scope["headers"])
        self.query_params = QueryParams(scope["query_string"])
        self.url = URL(scope, self.headers)
        self.path_params = {}
        self.state = types.SimpleNamespace()

    def __getitem__(self, key):
        return self.scope[key]

    def __iter__(self):
        return iter(self.scope)

    def __len__(self):
        return len(self.scope)

    __eq__ = object.__eq__
    __hash__ = object.__hash__

    @property
    def method(self):
        return self.scope["method"]

    @property
    def client(self):
        client = self.scope.get("client")
        return Address(*client) if client is not None else None

    @property
    def cookies(self):
        cookies = {}
        for header in self.headers.getlist("cookie"):
            for chunk in header.split(";"):
                name, _, value = chunk.partition("=") if "=" in chunk else ("", "", chunk)
                name, value = name.strip(), value.strip()
                if name or value:
                    cookies[name] = value
        return cookies

    async def body(self):
        raise RuntimeError(NO_RECEIVE)

    async def json(self):
        return await self.body()

    async def stream(self):
        raise RuntimeError(NO_RECEIVE)
        yield b""  # never reached; makes this an async generator, like Starlette's


def _scope(request):
    """The ASGI-like scope of a request dict from Rust (§3.3)."""
    path = str(request.get("path") or "/")
    client = request.get("client")
    server = request.get("server")
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": str(request.get("http_version") or "1.1"),
        "method": str(request.get("method") or "GET").upper(),
        "scheme": str(request.get("scheme") or "http"),
        "path": path,
        "raw_path": bytes(request.get("raw_path") or path.encode()),
        "query_string": bytes(request.get("query_string") or b""),
        "root_path": "",
        "headers": [(bytes(name).lower(), bytes(value)) for name, value in request.get("headers") or ()],
        "client": tuple(client) if client is not None else None,
        "server": tuple(server) if server is not None else None,
        "path_params": {},
        "state": {},
    }


# --------------------------------------------------------------------------------------------
# The host


def _reraise_if_task_needed(error):
    """Outside a Task (graphward's eager first step), an error of a library that needs one is
    raised to the bridge, which starts the dispatch again as a Task."""
    if asyncio.current_task() is None and graphward_host._needs_task(error):
        raise error


_STUDIO_CLASSES = {}


def _studio_user(types):
    """The Studio user of the bypass: an instance of `types.StudioUser` (so `isinstance` holds
    for whichever Auth the app imported) that also has the mapping interface of other users."""
    cls = _STUDIO_CLASSES.get(id(types))
    if cls is None:
        base = types.StudioUser

        class StudioUser(base):
            __slots__ = ()

            def _mapping(self):
                return {
                    "kind": "StudioUser",
                    "is_authenticated": self.is_authenticated,
                    "display_name": self.display_name,
                    "identity": self.identity,
                    "permissions": list(self.permissions),
                }

            def __getitem__(self, key):
                return self._mapping()[key]

            def __contains__(self, key):
                return key in self._mapping()

            def __iter__(self):
                return iter(self._mapping())

            def __len__(self):
                return len(self._mapping())

            def keys(self):
                return self._mapping().keys()

            def values(self):
                return self._mapping().values()

            def items(self):
                return self._mapping().items()

            def get(self, key, default=None):
                return self._mapping().get(key, default)

            def dict(self):
                return self._mapping()

        StudioUser.__qualname__ = base.__qualname__
        StudioUser.__module__ = base.__module__
        cls = _STUDIO_CLASSES[id(types)] = StudioUser
    return cls(STUDIO_USERNAME)


def _summary(user, permissions):
    """What Rust keeps of the user."""
    source = getattr(user, "_source", None) if type(user) in _OWN_USER_TYPES else None
    if type(source) is dict:
        # Our own wrapper around a plain dict: read it directly (same values as the properties).
        identity = source["identity"]
        summary = {
            "identity": str(identity),
            "display_name": str(source.get("display_name", identity)),
            "is_authenticated": bool(source.get("is_authenticated", True)),
            "permissions": permissions,
        }
        fields = source
    else:
        summary = {
            "identity": str(user.identity),
            "display_name": str(user.display_name),
            "is_authenticated": bool(user.is_authenticated),
            "permissions": permissions,
        }
        own = getattr(user, "dict", None)
        fields = own() if callable(own) else {}
        if not isinstance(fields, dict):
            fields = {}
    # The other fields authenticate returned travel with the user (graphs, factories and the
    # app see them); Rust keeps those that are JSON data.
    if len(fields) > len(_STANDARD_FIELDS & fields.keys()):
        for key, value in fields.items():
            if key not in _STANDARD_FIELDS and isinstance(key, str):
                summary[key] = value
    return summary


_STANDARD_FIELDS = frozenset(("identity", "display_name", "is_authenticated", "permissions", "kind"))


_OWN_USER_TYPES = (AuthenticatedUser, AuthenticatedUserWithPermissions)


def _has_dict(mapping):
    for item in mapping.values():
        if isinstance(item, dict):
            return True
    return False


class AuthHost:
    """One loaded `auth.py`: authenticates requests and authorizes their events."""

    def __init__(self, auth, parameters, options, cache):
        self.auth = auth
        self.types = type(auth).types
        self.parameters = parameters
        self._authenticate = auth._authenticate_handler
        self._is_async = inspect.iscoroutinefunction(self._authenticate) or inspect.iscoroutinefunction(
            getattr(self._authenticate, "__call__", None)
        )
        self._studio_allowed = bool(options.get("studio_allowed"))
        self._allow_api_keys = bool(options.get("allow_langsmith_api_keys"))
        self._starlette = _load_starlette()
        self._cache_keys, self._cache_ttl, self._cache_size = cache or ((), 0.0, 0)
        self._cache = collections.OrderedDict() if cache else None
        self._clock = time.monotonic
        # `auth.cache` lookups, for /metrics.
        self.cache_hits = 0
        self.cache_misses = 0

    # ---- start-up information (§1.3)

    def coverage(self):
        rows = []
        for resource, actions in MATRIX:
            for action in actions:
                handler, via = _resolve(self.auth, resource, action)
                rows.append({"resource": resource, "action": action, "handler": _name(handler), "via": via})
        return rows

    def missing_paths(self):
        handlers, global_handlers = self.auth._handlers, self.auth._global_handlers
        if not handlers and not global_handlers:
            return []
        if global_handlers or ("*", "*") in handlers:
            return []
        return sorted(
            f"{resource}.{action}"
            for resource, actions in MATRIX
            for action in actions
            if not any(key in handlers for key in ((resource, action), (resource, "*"), ("*", action)))
        )

    # ---- one request

    async def dispatch(self, request, events):
        raw_headers = request.get("headers") or ()
        # graphward's server sends the lower-cased map along (hyper's names are lower-case).
        headers = request.get("header_map")
        if headers is None:
            headers = {bytes(name).lower(): bytes(value) for name, value in raw_headers}
        acting_as = request.get("acting_as")
        studio = acting_as is None and self._studio_allowed and self._is_studio(raw_headers, headers)
        # Seconds authenticate took when it ran (not for a cache hit, a stored user or Studio),
        # and each handler's: graphward's per-handler latency histograms.
        authenticate_seconds = None
        started = time.perf_counter()
        try:
            if acting_as is not None:
                # Server work for a stored user (a cron firing, auth.md §3.7): that user, as
                # authenticate once returned it; no authenticate call, the handlers run.
                permissions, user = _normalise(dict(acting_as))
            elif studio:
                permissions, user = [], _studio_user(self.types)
            else:
                permissions, user, ran = await self._authenticate_request(request, headers)
                if ran:
                    authenticate_seconds = time.perf_counter() - started
            summary = _summary(user, permissions)
        except Exception as error:  # noqa: BLE001 - becomes the response
            _reraise_if_task_needed(error)
            return self._failure("authenticate", error, self._authenticate, None, "authenticate handler", time.perf_counter() - started)

        outcomes = []
        for _, _, value in events:
            if type(value) is dict and IDENTITY in value.values():
                for key, item in value.items():
                    if item is IDENTITY:
                        value[key] = summary["identity"]
        for index, (resource, action, value) in enumerate(events):
            original = dict(value) if isinstance(value, dict) else value
            handler, _ = _resolve(self.auth, resource, action)
            filter_ = None
            seconds = None
            if handler is not None:
                started = time.perf_counter()
                try:
                    ctx = self.types.AuthContext(permissions=permissions, user=user, resource=resource, action=action)
                    filter_ = _map_result(await handler(ctx=ctx, value=value))
                except Exception as error:  # noqa: BLE001 - becomes the response
                    _reraise_if_task_needed(error)
                    return self._failure("authorize", error, handler, index, f"auth handler for {resource}.{action}", time.perf_counter() - started)
                seconds = time.perf_counter() - started
            effective = dict(value) if resource == "store" and isinstance(value, dict) else original
            # Values without nested dicts (e.g. `{"thread_id": UUID}`) cannot be changed in a way
            # that sticks, so they are not sent back (Rust keeps its own copy).
            if resource != "store" and isinstance(original, dict) and not _has_dict(original):
                effective = None
            outcomes.append({"handler": _name(handler), "filter": filter_, "value": effective, "seconds": seconds})
        return {
            "ok": True,
            "studio": studio,
            "user": summary,
            "user_object": user,
            "events": outcomes,
            "authenticate": _name(self._authenticate),
            "authenticate_seconds": authenticate_seconds,
        }

    def _failure(self, stage, error, handler, index, what, seconds):
        status, detail, headers, reason = _map_error(error, stage)
        return {
            "ok": False,
            "stage": stage,
            "status": status,
            "detail": detail,
            "headers": headers,
            "handler": _name(handler),
            "event_index": index,
            "log": f"{what} `{_name(handler)}` {reason}",
            "seconds": seconds,
        }

    def _is_studio(self, raw_headers, headers):
        """§3.2: the Studio bypasses of `langgraph dev`. A repeated `x-auth-scheme` counts by
        its first value, like the reference."""
        if not self._studio_allowed:
            return False
        scheme = None
        if b"x-auth-scheme" in headers:
            scheme = next((bytes(value) for name, value in raw_headers if bytes(name).lower() == b"x-auth-scheme"), None)
        if scheme == b"langsmith":
            return True
        return self._allow_api_keys and not headers.get(b"authorization", b"").strip()

    async def _authenticate_request(self, request, headers):
        key = self._cache_key(headers)
        if key is not None:
            entry = self._cache.get(key)
            if entry is not None and entry[0] > self._clock():
                self._cache.move_to_end(key)
                self.cache_hits += 1
                return list(entry[1]), entry[2], False
            self._cache.pop(key, None)
            self.cache_misses += 1
        arguments = self._arguments(request, headers)
        if self._is_async:
            result = await self._authenticate(**arguments)
        else:
            result = await asyncio.to_thread(self._authenticate, **arguments)
            if inspect.isawaitable(result):
                result = await result
        permissions, user = _normalise(result)
        if key is not None:
            self._cache[key] = (self._clock() + self._cache_ttl, list(permissions), user)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return permissions, user, True

    def _cache_key(self, headers):
        """§6.2: the values of the cache-key headers, or None (no cache, or none of them sent)."""
        if self._cache is None:
            return None
        key = tuple(headers.get(name.encode("latin-1")) for name in self._cache_keys)
        return key if any(value is not None for value in key) else None

    def _arguments(self, request, headers):
        """The keyword arguments for the declared §3.3 parameters."""
        if not self.parameters:
            return {}
        # The scope is built only for the parameters that need it (most need just a header).
        scope = _scope(request) if any(name in ("request", "query_params", "scope", "path", "method") for name in self.parameters) else None
        arguments = {}
        for name in self.parameters:
            if name == "request":
                value = self._starlette[0](scope) if self._starlette else Request(scope)
            elif name == "query_params":
                value = self._starlette[1](scope["query_string"]) if self._starlette else QueryParams(scope["query_string"])
            elif name == "headers":
                value = dict(headers)
            elif name == "authorization":
                found = headers.get(b"authorization")
                value = found.decode("utf-8", "replace") if found else None
            elif name == "scope":
                value = scope
            elif name in ("path", "method"):
                value = scope[name]
            elif name == "path_params":
                value = {}
            elif name == "scopes":
                value = []
            else:  # "user"
                value = None
            arguments[name] = value
        return arguments
