"""A fuzz pass over every route of `GET /openapi.json`, on the example app.

Each route (method + path template) gets malformed variants — wrong JSON types for the whole
body and for each field its request schema names, invalid JSON, huge and deeply nested JSON,
invalid UTF-8, chunked and `Expect: 100-continue` bodies, bad ids and percent-escapes in path
parameters, bad query strings, duplicate and wrong headers — each sent twice: without
credentials and as `user1`. The checks:

* without credentials, a protected route (all but `PUBLIC_PATHS`) answers 401, before any
  404/405/413/422, whatever the ids and body;
* otherwise every answer is < 500;
* every 4xx is JSON `{"detail": <string or list>}` — except that a request the server cannot
  frame (two Content-Lengths, Content-Length with chunked) may get a bare 400, and that the
  protocol endpoints (`PROTOCOL_ERRORS`: the event-streaming commands, MCP, A2A) answer a
  request their protocol rejects with that protocol's own error message, which their clients
  parse;
* after each case the server still answers `GET /ok` 200, and no handler panicked.

Requests go over raw sockets (`send`), so the bytes on the wire are exactly the variant's
(an invalid `%ZZ`, two `Authorization` headers, invalid UTF-8 in a header). A body is sent
as fast as the server takes it and the client stops sending once an answer arrives, as a
server that refuses an unauthenticated body early expects. Event streams are closed right
after the status line, so no case waits on a stream.

The route list is read at collection time from a short-lived server; variants come from a
seeded RNG and fixed tables, so every run sends the same bytes. The cases run on a server and
database of their own (`fuzz_server`), with the example's handlers (see `FUZZ_AUTH`), against
real records of user1 (`ids`). A failure is named `route | variant | anonymous|user1`; select
some with e.g. `-k "threads/search and huge"`.
"""

from __future__ import annotations

import functools
import http.client
import json
import random
import re
import select
import socket
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from conftest import REPO, Server

SEED = 20261201
PUBLIC_PATHS = frozenset({"/ok", "/", "/info", "/docs", "/openapi.json"})
USER_AUTH = (b"Bearer user1-token",)
REQUEST_TIMEOUT = 10.0
SEND_CHUNK = 64 * 1024
MAX_READ = 64 * 1024 * 1024

HUGE_STRING_BYTES = 4 * 1024 * 1024
HUGE_ARRAY_LENGTH = 50_000
DEEP = 100_000
# Below serde_json's recursion limit (128): the value reaches the handlers and Python.
DEEP_BUT_PARSEABLE = 120

# One JSON value per JSON-Schema type, for the wrong-type variants.
TYPE_SAMPLES = {"string": "fuzz", "integer": 7, "number": 1.5, "boolean": True, "array": ["fuzz"], "object": {"fuzz": 1}, "null": None}

# Minimal valid bodies, by route or by request schema, so a one-field mutation gets past
# "missing field" (and query and header variants reach the handler). The cron fires once a
# year; runs are of the echo graph, which ends at once.
RUN = {"assistant_id": "agent", "input": {"messages": []}}
BASE_BODIES = {
    "POST /runs/batch": [RUN],
    "POST /runs/cancel": {"status": "pending"},
    "POST /threads/{thread_id}/state": {"values": {"messages": []}},
    "POST /threads/{thread_id}/state/checkpoint": {"checkpoint": {}},
    "AssistantCreate": {"graph_id": "agent"},
    "AssistantVersionChange": {"version": 1},
    "CronCreate": {"assistant_id": "agent", "schedule": "0 0 1 1 *"},
    "RunCreate": RUN,
    "StorePutRequest": {"namespace": ["user1", "fuzz"], "key": "k", "value": {}},
    "StoreDeleteRequest": {"namespace": ["user1", "fuzz"], "key": "k"},
    "StoreSearchRequest": {"namespace_prefix": ["user1"]},
    "StoreListNamespacesRequest": {"prefix": ["user1"]},
    "ThreadPruneRequest": {"thread_ids": []},
}

# examples/auth.py's handlers, but a store handler that refuses an empty namespace: the
# example's `namespace[0]` raises IndexError there, a 500 (fail closed) that is the example's
# fault, not the server's.
FUZZ_AUTH = '''
from langgraph_sdk import Auth

from auth import add_owner, get_current_user  # examples/auth.py

auth = Auth()
auth.authenticate(get_current_user)
auth.on(add_owner)


@auth.on.store()
async def authorize_store(ctx: Auth.types.AuthContext, value: dict):
    namespace = value["namespace"]
    assert namespace and namespace[0] == ctx.user.identity, "Not authorized"
'''

# Query keys some route reads; "bogus-values" sets all of them to junk.
QUERY_KEYS = (
    "limit", "offset", "xray", "stream_mode", "select", "delete_threads", "wait", "action", "subgraphs", "key",
    "namespace", "before", "checkpoint_id", "cancel_on_disconnect", "status", "metadata", "run_modes", "lifecycle",
)  # fmt: skip

_rng = random.Random(SEED)


def _seeded_uuid() -> str:
    return str(uuid.UUID(int=_rng.getrandbits(128), version=4))


# Ids of nothing: DELETE routes get MISSING_ID (deleting the fixture's records would turn every
# later case into a 404).
MISSING_ID = _seeded_uuid()
EXTRA_ID = _seeded_uuid() + "0"

# Path-parameter values, as sent on the wire (already percent-encoded where they need it).
BAD_PATH_VALUES = {
    "missing": MISSING_ID,
    "1234": "1234",
    "not-a-uuid": "not-a-uuid",
    "uuid+extra": EXTRA_ID,
    "blank": "%20",
    "empty": "",
    "%2F": "%2F",
    "%2e%2e": "%2e%2e",
    "%00": "%00",
    "%ZZ": "%ZZ",
    "%FF": "%FF",
    "overlong-utf8": "%C0%AE%C0%AE",
    "long": "%61" * 4096,
}

BAD_QUERIES = {
    "limit=-1": "limit=-1",
    "limit=abc": "limit=abc",
    "repeated-keys": "limit=1&limit=2&offset=0&offset=x&select=run_id&select=bogus",
    "bad-escapes": "%ZZ=%ZZ&&=&%FF=%00",
    "bogus-values": "&".join(f"{key}=bogus" for key in QUERY_KEYS),
    "long": "x=" + "y" * 8192,
}


# ---------------------------------------------------------------------------------------------
# Routes and variants


@dataclass(frozen=True)
class Route:
    """One operation of the OpenAPI document, with its resolved request-body schema."""

    method: str
    template: str
    schema_name: str | None = None
    schema: dict | None = None

    @property
    def params(self) -> list[str]:
        return re.findall(r"{(\w+)}", self.template)

    @property
    def protected(self) -> bool:
        return self.template not in PUBLIC_PATHS

    @property
    def takes_body(self) -> bool:
        return self.schema is not None or self.method in {"POST", "PUT", "PATCH"}

    @property
    def base_body(self) -> dict | list:
        return BASE_BODIES.get(str(self), BASE_BODIES.get(self.schema_name or "", {}))

    @property
    def base_object(self) -> dict:
        """The base body if it is an object (fields go in there), else `{}`."""
        return self.base_body if isinstance(self.base_body, dict) else {}

    @property
    def well_formed_body(self) -> bytes | None:
        """The body of variants that break something else (path, query, headers)."""
        return dumps(self.base_body) if self.takes_body else None

    def __str__(self) -> str:
        return f"{self.method} {self.template}"


@dataclass(frozen=True)
class Variant:
    """One malformed request for a route: what differs from a well-formed one."""

    name: str
    # The body, or a function that builds it (big bodies are built only when sent); None: none.
    body: bytes | Callable[[], bytes] | None = None
    content_types: tuple[str, ...] = ("application/json",)
    # Raw Content-Length values; None computes the right one (or none when chunked).
    content_lengths: tuple[str, ...] | None = None
    chunked: bool = False
    path: dict[str, str] = field(default_factory=dict)
    query: str = ""
    anonymous_auth: tuple[bytes, ...] = ()
    user_auth: tuple[bytes, ...] = USER_AUTH
    extra_headers: tuple[tuple[str, bytes], ...] = ()
    # Malformed at the HTTP level: the server cannot frame it, so a bare 400 is a fine answer.
    framing: bool = False


@dataclass(frozen=True)
class Case:
    route: Route
    variant: Variant
    anonymous: bool

    @property
    def id(self) -> str:
        return f"{self.route} | {self.variant.name} | {'anonymous' if self.anonymous else 'user1'}"


def dumps(value) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def deep_array(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def deep_object(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def with_field(base: dict, name: str, raw_value: bytes) -> bytes:
    """`base` with field `name` set to the raw JSON bytes `raw_value` (which may be invalid or
    too deep for `json.dumps`)."""
    placeholder = "\u0000fuzz-placeholder\u0000"
    return dumps({**base, name: placeholder}).replace(dumps(placeholder), raw_value)


def huge_string(base: dict, name: str) -> bytes:
    return with_field(base, name, b'"' + b"a" * HUGE_STRING_BYTES + b'"')


def allowed_types(prop: dict) -> set[str] | None:
    """The JSON types a schema property admits; None when it says nothing (any type)."""
    if "anyOf" in prop:
        options = [allowed_types(option) for option in prop["anyOf"]]
        return None if any(option is None for option in options) else set().union(*options)
    if "const" in prop:
        return {"boolean" if isinstance(prop["const"], bool) else type(prop["const"]).__name__}
    declared = prop.get("type")
    if declared is None:
        return None
    types = {declared} if isinstance(declared, str) else set(declared)
    return types | {"integer"} if "number" in types else types


def first_field(route: Route, json_type: str) -> str:
    """The first schema field of `json_type` (where a huge or deep value hurts most), else "fuzz"."""
    for name, prop in (route.schema or {}).get("properties", {}).items():
        if json_type in (allowed_types(prop) or ()):
            return name
    return "fuzz"


def body_variants(route: Route) -> Iterator[Variant]:
    base, base_bytes = route.base_object, dumps(route.base_body)
    for json_type in ("array", "string", "number", "null", "boolean"):
        yield Variant(f"body={json_type}", body=dumps(TYPE_SAMPLES[json_type]))
    yield Variant("json=truncated", body=base_bytes[:-1] + b",")
    yield Variant("json=single-quotes", body=b"{'a': 1}")
    yield Variant("json=trailing-garbage", body=base_bytes + b" x")
    yield Variant("json=NaN", body=with_field(base, "fuzz", b"NaN"))
    text_field = first_field(route, "string")
    yield Variant("utf8=invalid-bytes", body=with_field(base, text_field, b'"\xff\xfe\xfd"'))
    yield Variant("utf8=overlong", body=with_field(base, text_field, b'"\xc0\xaf"'))
    yield Variant("utf8=lone-surrogate-escape", body=with_field(base, text_field, b'"\\ud800"'))
    huge = functools.partial(huge_string, base, text_field)
    yield Variant("huge=string", body=huge)
    yield Variant("huge=array-field", body=lambda: with_field(base, first_field(route, "array"), dumps([0] * HUGE_ARRAY_LENGTH)))
    yield Variant("huge=array-body", body=lambda: dumps([0] * HUGE_ARRAY_LENGTH))
    yield Variant("deep=array-body", body=functools.partial(deep_array, DEEP))
    yield Variant("deep=object-body", body=functools.partial(deep_object, DEEP))
    object_field = first_field(route, "object")
    yield Variant("deep=object-field", body=lambda: with_field(base, object_field, deep_object(DEEP)))
    yield Variant(f"deep={DEEP_BUT_PARSEABLE}-object-field", body=with_field(base, object_field, deep_object(DEEP_BUT_PARSEABLE)))
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/json; charset=latin-1"):
        yield Variant(f"content-type={content_type}", body=base_bytes, content_types=(content_type,))
    yield Variant("content-type=none", body=base_bytes, content_types=())
    yield Variant("two-content-types", body=base_bytes, content_types=("application/json", "text/plain"))
    yield Variant("two-content-lengths", body=base_bytes, content_lengths=(str(len(base_bytes)), str(len(base_bytes) + 1)), framing=True)
    yield Variant("chunked", body=base_bytes, chunked=True)
    yield Variant("chunked+huge=string", body=huge, chunked=True)
    yield Variant("chunked+content-length", body=base_bytes, content_lengths=(str(len(base_bytes)),), chunked=True, framing=True)
    yield Variant("expect-100-continue+huge=string", body=huge, extra_headers=(("Expect", b"100-continue"),))
    for name, prop in (route.schema or {}).get("properties", {}).items():
        allowed = allowed_types(prop)
        for json_type, sample in TYPE_SAMPLES.items():
            if allowed is None or json_type not in allowed:
                yield Variant(f"field={name}:{json_type}", body=dumps({**base, name: sample}))


def path_variants(route: Route) -> Iterator[Variant]:
    for param in route.params:
        for name, value in BAD_PATH_VALUES.items():
            yield Variant(f"path:{param}={name}", body=route.well_formed_body, path={param: value})


def query_variants(route: Route) -> Iterator[Variant]:
    for name, query in BAD_QUERIES.items():
        yield Variant(f"query:{name}", body=route.well_formed_body, query=query)


def header_variants(route: Route) -> Iterator[Variant]:
    body = route.well_formed_body
    yield Variant(
        "two-authorizations",
        body=body,
        anonymous_auth=(b"Bearer nope", b"Basic Zm9vOmJhcg=="),
        user_auth=(*USER_AUTH, b"Bearer user2-token"),
    )
    yield Variant(
        "header=invalid-utf8",
        body=body,
        anonymous_auth=(b"Bearer \xff\xfe",),
        extra_headers=(("X-Fuzz", b"\xff\xfe\xc0\xaf"),),
    )


def variants(route: Route) -> Iterator[Variant]:
    if route.takes_body:
        yield from body_variants(route)
    yield from path_variants(route)
    yield from query_variants(route)
    yield from header_variants(route)


def routes_of(document: dict) -> list[Route]:
    """Every (method, path) of an OpenAPI document, with its JSON request schema resolved."""
    schemas = document.get("components", {}).get("schemas", {})
    routes = []
    for template, operations in document["paths"].items():
        for method, operation in operations.items():
            if method.upper() not in {"GET", "POST", "PUT", "PATCH", "DELETE"}:
                continue
            schema = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            name = schema["$ref"].rsplit("/", 1)[-1] if schema and "$ref" in schema else None
            routes.append(Route(method.upper(), template, name, schemas.get(name, schema) if schema else None))
    return routes


@functools.cache
def collected_cases() -> list[Case]:
    """Starts a short-lived server for its route list and builds every case from it."""
    with tempfile.TemporaryDirectory(prefix="graphward-fuzz-") as folder:
        server = Server(REPO / "langgraph.json", env={"GRAPHWARD_DATABASE": f"{folder}/state.db"})
        try:
            document = httpx.get(f"{server.url}/openapi.json", timeout=30).json()
        finally:
            server.stop()
    return [Case(route, variant, anonymous) for route in routes_of(document) for variant in variants(route) for anonymous in (True, False)]


def pytest_generate_tests(metafunc):
    if "case" in metafunc.fixturenames:
        cases = collected_cases()
        metafunc.parametrize("case", cases, ids=[case.id for case in cases])


# ---------------------------------------------------------------------------------------------
# The raw client


@dataclass
class Answer:
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: str | None = None

    def summary(self) -> str:
        if self.status is None:
            return f"no answer ({self.error})"
        return f"{self.status} {self.body[:300]!r}"


def chunked(body: bytes) -> bytes:
    """`body` in the chunked transfer coding."""
    pieces = [body[start : start + SEND_CHUNK] for start in range(0, len(body), SEND_CHUNK)]
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


def request_bytes(case: Case, ids: dict[str, str]) -> tuple[bytes, bytes]:
    """The head (request line and headers) and body of `case`, with `ids` in the path."""
    route, variant = case.route, case.variant
    values = {**ids, **variant.path}
    target = re.sub(r"{(\w+)}", lambda match: values[match.group(1)], route.template)
    if variant.query:
        target += "?" + variant.query
    headers: list[tuple[str, bytes]] = [("Host", b"127.0.0.1"), ("Connection", b"close")]
    headers += [("Authorization", value) for value in (variant.anonymous_auth if case.anonymous else variant.user_auth)]
    body = (variant.body() if callable(variant.body) else variant.body) or b""
    if variant.body is not None:
        headers += [("Content-Type", value.encode()) for value in variant.content_types]
        lengths = variant.content_lengths or (() if variant.chunked else (str(len(body)),))
        headers += [("Content-Length", value.encode()) for value in lengths]
        if variant.chunked:
            headers.append(("Transfer-Encoding", b"chunked"))
            body = chunked(body)
    headers += list(variant.extra_headers)
    head = f"{route.method} {target} HTTP/1.1\r\n".encode() + b"".join(name.encode() + b": " + value + b"\r\n" for name, value in headers)
    return head + b"\r\n", body


def send_until_answered(sock: socket.socket, body: bytes) -> None:
    """Sends `body` as fast as the server takes it, but stops once an answer is readable (a
    server that answers early may never read the rest); a `100 Continue` is skipped."""
    sock.setblocking(False)
    view = memoryview(body)
    while view:
        readable, writable, _ = select.select([sock], [sock], [], REQUEST_TIMEOUT)
        if readable:
            if not skip_continue(sock):
                return
        elif writable:
            view = view[sock.send(view[:SEND_CHUNK]) :]
        else:
            return


def skip_continue(sock: socket.socket) -> bool:
    """Consumes a `100 Continue` interim answer at the head of the socket, if that is what the
    server sent (True), else leaves the answer unread (False)."""
    pending = sock.recv(4096, socket.MSG_PEEK)
    if not pending.startswith(b"HTTP/1.1 100 "):
        return False
    end = pending.find(b"\r\n\r\n")
    if end >= 0:
        sock.recv(end + 4)
    return True


def send(port: int, head: bytes, body: bytes, method: str) -> Answer:
    """Sends one request on a new connection and reads the answer (only the status line and
    headers of an event stream). Stops sending the body as soon as an answer is readable."""
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=REQUEST_TIMEOUT)
    except OSError as error:
        return Answer(error=f"connect: {error}")
    with sock:
        try:
            sock.sendall(head)
            send_until_answered(sock, body)
        except OSError:
            pass  # the server may answer and close before taking the whole body
        sock.settimeout(REQUEST_TIMEOUT)
        response = http.client.HTTPResponse(sock, method=method)
        try:
            response.begin()
            headers = {name.lower(): value for name, value in response.getheaders()}
            streaming = headers.get("content-type", "").startswith("text/event-stream")
            return Answer(response.status, headers, b"" if streaming else response.read(MAX_READ))
        except (OSError, http.client.HTTPException) as error:
            return Answer(error=repr(error))
        finally:
            response.close()


def is_protocol_error(document: object) -> bool:
    """The event-streaming protocol's error: `{"type": "error", "id", "error", "message"}`."""
    return isinstance(document, dict) and document.get("type") == "error" and isinstance(document.get("error"), str) and isinstance(document.get("message"), str)


def is_jsonrpc_error(document: object) -> bool:
    """A JSON-RPC 2.0 error response: `{"jsonrpc": "2.0", "id", "error": {"code", "message"}}`."""
    error = document.get("error") if isinstance(document, dict) else None
    return document.get("jsonrpc") == "2.0" and isinstance(error, dict) and isinstance(error.get("code"), int) and isinstance(error.get("message"), str)


# Routes whose clients speak a protocol of their own: a request the protocol rejects is
# answered with the protocol's error message (HTTP errors — 401, 404, 413 — stay `detail`).
PROTOCOL_ERRORS: dict[str, Callable[[object], bool]] = {
    "/threads/{thread_id}/commands": is_protocol_error,
    "/mcp": is_jsonrpc_error,
    "/a2a/{assistant_id}": is_jsonrpc_error,
}


def detail_problem(answer: Answer, route: Route) -> str | None:
    """Why a 4xx answer is neither JSON `{"detail": <string or list>}` nor, on a protocol
    route, that protocol's error message; or None."""
    if not answer.headers.get("content-type", "").startswith("application/json"):
        return f"content-type {answer.headers.get('content-type')!r}, not JSON"
    try:
        document = json.loads(answer.body)
    except ValueError:
        return "body is not JSON"
    if isinstance(document, dict) and isinstance(document.get("detail"), (str, list)):
        return None
    protocol_error = PROTOCOL_ERRORS.get(route.template)
    if protocol_error is not None:
        return None if protocol_error(document) else "body is neither {\"detail\": …} nor the protocol's error message"
    return 'body is not {"detail": <string or list>}'


def problem(case: Case, answer: Answer) -> str | None:
    """What is wrong with `answer` to `case`, or None."""
    if answer.status is None:
        return "no answer"
    if case.variant.framing and answer.status == 400:
        return None
    if case.anonymous and case.route.protected:
        if answer.status != 401:
            return "expected 401 without credentials"
    elif answer.status >= 500:
        return "expected a status < 500"
    if 400 <= answer.status < 500:
        return detail_problem(answer, case.route)
    return None


# ---------------------------------------------------------------------------------------------
# Fixtures and tests


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory):
    """The example app (with `FUZZ_AUTH`) on a database of its own."""
    folder = tmp_path_factory.mktemp("fuzz-app")
    examples = REPO / "examples"
    config = {"dependencies": [str(examples)], "graphs": {"agent": f"{examples / 'agent.py'}:graph"}, "auth": {"path": "./fuzz_auth.py:auth"}}
    (folder / "langgraph.json").write_text(json.dumps(config))
    (folder / "fuzz_auth.py").write_text(FUZZ_AUTH)
    server = Server(folder / "langgraph.json", env={"GRAPHWARD_DATABASE": str(folder / "state.db")})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def ids(fuzz_server) -> dict[str, str]:
    """Real records of user1 for the path parameters, so malformed bodies reach the handlers:
    a thread with one finished run and a checkpoint, an assistant, a cron."""
    client = httpx.Client(base_url=fuzz_server.url, headers={"Authorization": USER_AUTH[0].decode()}, timeout=30)
    with client:
        thread_id = client.post("/threads", json={}).raise_for_status().json()["thread_id"]
        run = client.post(f"/threads/{thread_id}/runs", json={"assistant_id": "agent", "input": {"messages": [{"role": "human", "content": "hi"}]}})
        run_id = run.raise_for_status().json()["run_id"]
        client.get(f"/threads/{thread_id}/runs/{run_id}/join").raise_for_status()
        checkpoint_id = client.get(f"/threads/{thread_id}/state").raise_for_status().json()["checkpoint"]["checkpoint_id"]
        assistant_id = client.post("/assistants", json={"graph_id": "agent"}).raise_for_status().json()["assistant_id"]
        cron_id = client.post("/runs/crons", json=BASE_BODIES["CronCreate"]).raise_for_status().json()["cron_id"]
    return {"thread_id": thread_id, "run_id": run_id, "checkpoint_id": checkpoint_id, "assistant_id": assistant_id, "cron_id": cron_id, "namespace": "fuzz"}


@pytest.fixture(scope="module")
def health() -> dict[str, str | None]:
    """The request after which the server stopped answering `GET /ok`, once it has: later
    cases then fail at once instead of each waiting for its timeout."""
    return {"down_after": None}


def check_alive(server: Server, health: dict[str, str | None], after: str) -> None:
    answer = send(server.port, b"GET /ok HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", b"", "GET")
    if answer.status != 200:
        health["down_after"] = after
        tail = "\n".join(server.output().splitlines()[-20:])
        pytest.fail(f"GET /ok answered {answer.summary()} after {after}; server log tail:\n{tail}", pytrace=False)


def test_fuzz(case: Case, fuzz_server: Server, ids: dict[str, str], health: dict[str, str | None]):
    """One malformed request: the answer has the expected status and shape; the server lives."""
    if health["down_after"]:
        pytest.fail(f"the server stopped answering GET /ok after {health['down_after']}", pytrace=False)
    path_ids = {name: MISSING_ID for name in ids} if case.route.method == "DELETE" else ids
    head, body = request_bytes(case, path_ids)
    answer = send(fuzz_server.port, head, body, case.route.method)
    request_line = head.split(b"\r\n", 1)[0].decode(errors="replace")[:200]
    found = problem(case, answer)
    check_alive(fuzz_server, health, request_line)
    if found:
        pytest.fail(f"{request_line} -> {answer.summary()}: {found}", pytrace=False)


def test_no_panic_logged(fuzz_server: Server):
    """Runs after the cases (same module, later in file order): no handler panicked."""
    panics = [line for line in fuzz_server.output().splitlines() if "panicked" in line]
    assert not panics, "\n".join(panics[:10])
