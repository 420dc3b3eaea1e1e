"""A model-based, randomized multi-user hunter for cross-user leaks.

The hunter starts graphward on its own app (`app_files`: a `langgraph.json`, an `auth.py`
written against `langgraph_sdk.Auth`, two graphs and a graph factory, an `http.app` and a
local embedding for `store.index`), then lets a few users issue random, weighted operations
over every resource — threads, assistants, runs, crons, the store, custom routes, `/metrics`,
the event-streaming protocol, MCP and A2A — mixing in other users' ids, forged owners and configs, bad credentials, path tricks and
malformed input. A model
of who owns what predicts every answer; every difference is a violation, printed with a
replayable sequence of `curl` commands.

The oracles, from generic to specific:

* **Canaries.** Every value a user writes carries a unique marker `canary-<identity>-<n>`.
  A response (JSON or SSE) to user X that contains a canary of another user is a leak, unless
  X itself sent that very canary in the request.
* **Denials.** Another user's thread, assistant or cron is 404 (thread copy: 409, the
  reference's quirk, or 404; a create with another user's existing id: 409 as spec auth.md
  §5.4 prescribes, or 404, which reveals less; a state update: 404 or 403). Another user's
  store namespace is 403, a namespace label with a dot 422 (either, when both apply).
  Without valid credentials every route but `/ok`, `/`, `/info`, `/docs` and
  `/openapi.json` is 401, before any 404 or 422 — `/metrics`, the custom routes, the protocol
  commands and event stream, `/mcp` and A2A too. Malformed input is a 4xx with a JSON
  `{"detail": "..."}` body; no answer is ever a 5xx, no request hangs, and after the hunt
  the server's SQLite files pass `PRAGMA integrity_check`.
* **Nothing changes behind the owner's back.** Before and after another user touches a
  resource, its owner reads it (a thread: the thread, its state, its history and its runs;
  an assistant, a cron, a store item: the record) and both readings must agree, even when the
  intruder's answer looked right.
* **Searches and counts** return exactly the caller's own records; a store search with a
  semantic `query` (`store.index`) too, whatever it asks for (one's own item's text, another
  user's canary), its results scored best first, an item whose text is the query on top.
* **Prune and expiry.** `POST /threads/prune` (`delete` or `keep_latest`, which leaves one
  checkpoint) with any foreign id refuses it all; other users' threads it did not name read
  the same before and after. A thread with a short TTL is deleted by the sweep and an item
  with a short ttl is gone at once, while the other users' threads and stores read the same
  before and after; a TTL a user tries to give another's thread is refused (every owner's
  reading includes `?include=ttl`: none of the model's threads has one).
* **Runs.** A run's graph sees `configurable.user_id` and `langgraph_auth_user_id` equal to
  the requesting identity and `configurable.thread_id` equal to the run's own thread, whatever
  the request forged (`config.configurable`, `context`, `checkpoint.thread_id`, another
  thread's `checkpoint_id`). Webhooks given as a path or a loopback URL are refused (422).
* **The graph factory.** The `factory` graph is built for every use by a function taking
  the config and the `ServerRuntime`: it fails unless `runtime.user` and the config's
  `langgraph_auth_user_id` are one person, names its node after them, and a run records whom
  it was built for, which must be the caller whatever the request or its headers forge;
  `/graph` of one's own factory assistant shows one's own node, another user's is 404.
* **Custom routes and paths.** The `http.app` (`enable_custom_route_auth`) answers the
  caller's own identity, whatever the headers claim. Raw paths with dot segments, empty
  segments and encoded slashes or dots (`/custom/../threads/<id>`, `//threads/<id>`,
  `/threads%2F<id>`, `/ok/../threads/<id>`, …) are 401 without credentials and never reach
  another user's thread with them (a 4xx or the app's echo; the thread reads the same).
* **`/metrics`** labels name routes and handlers, never a user's identity, canary or
  thread id.
* **The store from graphs.** The `memory` graph writes `(user_id, "mem")` items through
  `store.abatch([PutOp(...)])` and `store.aput`, then searches `(user_id,)`: the identity
  `alice.smith` must get an error (a label with a dot), the others exactly their own items.
  `alice` may own the namespace `["alice", "smith", "mem"]`, which must never meet
  `alice.smith`'s items.
* **Crons** store and fire as their creator: `metadata.owner` and `payload.metadata.owner`
  are the creator even when the request forged another owner, and the thread a stateless
  cron's run creates belongs to the creator.
* **The event-streaming protocol.** `POST /threads/{id}/commands`: `run.start` runs as the
  caller on their own thread or a missing one (created as theirs) with an assistant they may
  use, whatever config, metadata and headers forge, and is joined and checked like any run;
  on another user's thread or with an assistant the caller may not use it is 404, creates
  nothing (a missing thread stays missing) and changes nothing. Every other command
  (`subscription.*`, `agent.getTree`, `input.respond`) on a thread the caller may not read is
  404; an unknown command is answered alike whatever the thread. `POST
  /threads/{id}/stream/events` (read for a fraction of a second, or until the run followed
  ends): another user's or a missing thread is 404 with no event; one's own thread's events
  are protocol events in `seq` order (the SSE id), of the channels asked for, whose values
  show only the owner's runs on this thread; a run followed from `run.start`'s
  `applied_through_seq` runs, ends with its input in its values, and completes. A run of
  `approve` waiting at its interrupt: another user's `run.start` (which would resume it),
  `input.respond` with the real interrupt id, subscribing and the stream are all 404 and
  change nothing; the owner sees `input.requested` and resumes it with their answer. A thread
  id deleted and taken by another user (even while the old owner's protocol run still runs)
  replays none of the old thread's events and shows no active run. The WebSocket on the
  stream's path: another user's thread's handshake is 404, a missing thread's opens with no
  event, without credentials 401; on one's own thread every command is answered by its id and a subscription's events
  are checked as over SSE.
* **MCP** (`/mcp`). `tools/list` names exactly the caller's own assistants (the server's tool
  name rule applied to the names the model knows); `tools/call` of one of them runs it
  statelessly as the caller (checked like a stateless run); any other name — another user's
  assistant's name or id, a graph's, a made-up one — is a JSON-RPC error and changes no one's
  assistant or store.
* **A2A** (`/a2a/{id}`, `/a2a/{id}/.well-known/agent-card.json`,
  `/.well-known/agent-card.json?assistant_id=`). The card of one's own or the public assistant
  is served, any other is 404. `message/send` runs as the caller in their own context (thread)
  or a new one, which the task names, its history holding the message; in another user's
  context, or with an assistant the caller may not use, it is a JSON-RPC error, the context
  reads the same after, nothing of it is in the answer, and a missing context is not created.
  `tasks/get` answers one's own task; another user's (as it is, as a bare run id with its
  context, or its run under one's own thread id) is refused. Requests speak A2A 0.3
  (`message/send`, `tasks/get`, `kind`-tagged parts) or 1.0 (`SendMessage`, `GetTask`,
  `ROLE_USER`, a send answered `{"task": ...}`) at random, until the server says it does not
  know one's method names. The protocol routes may answer a
  4xx with their protocol's own error message instead of `{"detail": ...}`.
* **The delete/re-create race.** A user deletes a thread while a run of theirs is still
  executing on it and another user creates a thread with the same id: the new thread must show
  only its new owner's data, before and after they run on it.

The app's policy: a global `@auth.on` handler stamps `metadata.owner` in place and returns
`{"owner": identity}`; `crons.create`/`crons.update` have their own handler doing the same; the
store handler requires `namespace[0] == identity`. One graph per worker (`shared`, …) has a
*public* system assistant that every user may read, run and delete, so that
`DELETE /assistants/{public}?delete_threads=true` by one user can be checked never to delete
another user's threads. `disable_studio_auth` is on, so nothing bypasses authentication.

Runs are deterministic per seed as far as the server allows: operations come from a seeded
`random.Random`, thread and assistant ids are chosen by the client from that generator (so
replays reuse them); run and cron ids are the server's, and background runs race with the
next operations.

When the model and the server part ways, the violation is reported once and the model learns
the server's view of that resource again (`resync`, `store_unknown`), so that one bug does not
make every later reading fail. Violations are de-duplicated by kind and subject (repeats are
counted) and at most a dozen of each kind are kept with their replay: the `curl` commands of
the exchanges that mention the ids, canaries or store keys involved, in order.

`hunt()` runs one or more workers on one server; each worker has its own users
(`identities_for`), its own public assistant and its own model, so that workers never share a
record and their models stay exact.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import json
import os
import random
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

# --------------------------------------------------------------------------------------------
# Identities and the app

BASE_NAMES = ("alice", "bob", "carol", "alice.smith")
SYSTEM_NAMESPACE = uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")
RESERVED_METADATA = ("thread_id", "assistant_id", "run_id", "cron_id", "counters_since_delta_snapshot")
GRAPHS = ("echo", "memory", "factory")
INTERRUPT_GRAPH = "approve"  # asks its question (`interrupt`) and answers with the reply: only scenarios run it
NEVER_SCHEDULE = "0 0 1 1 *"  # yearly: never fires during a hunt
STORE_KEYS = tuple(f"k{n}" for n in range(8))
MAX_WORKERS = 64  # workers of one hunt (each with its own users and public assistant)
TTL_SWEEP_MINUTES = 0.01  # the thread TTL sweep's interval (0.6 s)
SHORT_TTL_MINUTES = 0.01  # the TTL of threads and store items meant to expire during a hunt (0.6 s)


def identities_for(worker: int) -> list[str]:
    """The users of one worker: `alice`, `bob`, `carol`, `alice.smith`; with a suffix after the
    first label for workers after the first (`alice_w1`, `alice_w1.smith`), so that every
    worker has its own universe with the same prefix tricks."""
    suffix = f"_w{worker}" if worker else ""
    return [name.replace(".", f"{suffix}.") if "." in name else f"{name}{suffix}" for name in BASE_NAMES]


def public_graph_for(worker: int) -> str:
    return f"shared_w{worker}" if worker else "shared"


def system_assistant_id(graph_id: str) -> str:
    return str(uuid.uuid5(SYSTEM_NAMESPACE, graph_id))


def token_of(identity: str) -> str:
    return f"tok-{identity}"


AUTH_PY = '''"""The hunter's auth: bearer tokens, owner stamping, per-user store namespaces."""

from langgraph_sdk import Auth

TOKENS = __TOKENS__
# System assistants every user may read, run and delete (and re-create).
PUBLIC_ASSISTANTS = __PUBLIC__

auth = Auth()


@auth.authenticate
async def authenticate(authorization: str | None) -> Auth.types.MinimalUserDict:
    """`Authorization: Bearer <token>` for a known token, else 401."""
    if not authorization:
        raise Auth.exceptions.HTTPException(status_code=401, detail="Missing credentials")
    scheme, _, token = authorization.partition(" ")
    if scheme != "Bearer" or token not in TOKENS:
        raise Auth.exceptions.HTTPException(status_code=401, detail="Invalid credentials")
    return {"identity": TOKENS[token]}


def stamp_owner(ctx: Auth.types.AuthContext, value: dict) -> dict:
    """Stamps the owner in place on the value's metadata and filters on it."""
    metadata = value.get("metadata")
    if not isinstance(metadata, dict):
        metadata = value["metadata"] = {}
    metadata["owner"] = ctx.user.identity
    return {"owner": ctx.user.identity}


@auth.on
async def owner_only(ctx: Auth.types.AuthContext, value: dict):
    """Everything is its creator's, except that public assistants may be read and deleted."""
    public = ctx.resource == "assistants" and ctx.action in ("read", "delete")
    if public and str(value.get("assistant_id")) in PUBLIC_ASSISTANTS:
        return None
    return stamp_owner(ctx, value)


@auth.on.crons.create
@auth.on.crons.update
async def own_crons(ctx: Auth.types.AuthContext, value: dict):
    """Crons get their own handler, so that stamping a cron's payload is exercised."""
    return stamp_owner(ctx, value)


@auth.on.store()
async def own_namespace(ctx: Auth.types.AuthContext, value: dict):
    namespace = tuple(value.get("namespace") or ())
    assert namespace and namespace[0] == ctx.user.identity, "Not authorized"
'''

GRAPHS_PY = '''"""The hunter's graphs: `echo` replies to the last message; `memory` writes and searches
the store as `configurable.user_id`; `factory` is built for every use by a graph factory and
replies like `echo`; `approve` stops at an interrupt asking about the last message, then
answers with the reply it is resumed with. All record what the run's config claimed (`seen`).
`embed` is the store's deterministic local embedding (`store.index`)."""

import asyncio
import hashlib
import operator
from typing import Annotated, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.store.base import BaseStore, PutOp
from langgraph.types import interrupt
from langgraph_sdk.runtime import ServerRuntime

DIMS = 64


def embed(texts: list[str]) -> list[list[float]]:
    """A hashed bag of words: texts sharing words point the same way."""
    vectors = []
    for text in texts:
        vector = [0.0] * DIMS
        for word in text.lower().replace("-", " ").split():
            vector[int(hashlib.sha256(word.encode()).hexdigest(), 16) % DIMS] += 1.0
        vectors.append(vector)
    return vectors


class State(TypedDict, total=False):
    messages: Annotated[list, add_messages]
    sleep: float
    key: str
    seen: Annotated[list, operator.add]
    memories: list
    store_errors: dict


def seen(config: RunnableConfig) -> dict:
    configurable = config.get("configurable", {})
    return {
        "user_id": configurable.get("user_id"),
        "auth_user_id": configurable.get("langgraph_auth_user_id"),
        "thread_id": configurable.get("thread_id"),
        "run_id": configurable.get("run_id"),
    }


def last_text(state: State) -> str:
    messages = state.get("messages") or []
    if not messages:
        return ""
    last = messages[-1]
    return last.get("content", "") if isinstance(last, dict) else getattr(last, "content", "")


async def respond(state: State, config: RunnableConfig) -> dict:
    if state.get("sleep"):
        await asyncio.sleep(min(float(state["sleep"]), 5.0))
    return {"messages": [{"role": "ai", "content": f"echo: {last_text(state)}"}], "seen": [seen(config)], "sleep": 0.0}


def error_text(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"


async def remember(state: State, config: RunnableConfig, store: BaseStore) -> dict:
    identity = config["configurable"].get("user_id")
    key = state.get("key") or "k"
    text = last_text(state)
    errors = {}
    try:
        await store.abatch([PutOp((identity, "mem"), key, {"text": text, "via": "abatch"})])
    except Exception as error:
        errors["abatch"] = error_text(error)
    try:
        await store.aput((identity, "mem"), f"{key}-aput", {"text": text, "via": "aput"})
    except Exception as error:
        errors["aput"] = error_text(error)
    memories = []
    try:
        found = await store.asearch((identity,), query=text or None, limit=1000)
        memories = [{"namespace": list(item.namespace), "key": item.key, "value": item.value} for item in found]
    except Exception as error:
        errors["search"] = error_text(error)
    return {
        "messages": [{"role": "ai", "content": f"remembered: {text}"}],
        "seen": [seen(config)],
        "memories": memories,
        "store_errors": errors,
    }


def one_node(node) -> object:
    builder = StateGraph(State)
    builder.add_node("step", node)
    builder.add_edge(START, "step")
    builder.add_edge("step", END)
    return builder.compile()


async def ask(state: State, config: RunnableConfig) -> dict:
    """`approve`: asks about the last message, answers with the reply it is resumed with."""
    answer = interrupt({"question": last_text(state)})
    return {"messages": [{"role": "ai", "content": f"answer: {answer}"}], "seen": [seen(config)]}


echo = one_node(respond)
memory = one_node(remember)
approve = one_node(ask)


def factory(config: RunnableConfig, runtime: ServerRuntime):
    """`factory`: built for each use (run, state read, update, introspection) as the caller.
    The user of the runtime and the config's `langgraph_auth_user_id` must be the same person
    (else the use fails); the one node is named after them, so `/graph` shows whom it was
    built for, and a run records it (`built_for`)."""
    user = runtime.user
    built_for = getattr(user, "identity", None)
    claimed = (config.get("configurable") or {}).get("langgraph_auth_user_id")
    if built_for is None or built_for != claimed:
        raise ValueError(f"factory built for {built_for!r} with a config for {claimed!r}")
    access = runtime.access_context

    async def respond_as(state: State, config: RunnableConfig) -> dict:
        update = await respond(state, config)
        update["seen"][0].update(built_for=built_for, access=access)
        return update

    builder = StateGraph(State)
    builder.add_node(f"as_{built_for}", respond_as)
    builder.add_edge(START, f"as_{built_for}")
    builder.add_edge(f"as_{built_for}", END)
    return builder.compile()
'''

WEBAPP_PY = '''"""The hunter's `http.app`, authenticated by auth.py (`enable_custom_route_auth`)."""

from fastapi import FastAPI, Request

app = FastAPI(docs_url=None, redoc_url=None)


@app.get("/custom/me")
async def me(request: Request):
    return {"identity": request.user.identity}


@app.get("/custom/threads/{thread_id}")
async def thread_echo(thread_id: str, request: Request):
    """Echoes the id: the app never reads the API's data."""
    return {"thread_id": thread_id, "identity": request.user.identity}
'''


def app_files(workers: int) -> dict[str, str]:
    """The hunter's app for `workers` disjoint universes of users."""
    assert 1 <= workers <= MAX_WORKERS, f"between 1 and {MAX_WORKERS} workers"
    identities = [identity for worker in range(workers) for identity in identities_for(worker)]
    tokens = {token_of(identity): identity for identity in identities}
    public_graphs = [public_graph_for(worker) for worker in range(workers)]
    graphs = {"echo": "./graphs.py:echo", "memory": "./graphs.py:memory", "factory": "./graphs.py:factory", INTERRUPT_GRAPH: "./graphs.py:approve"}
    graphs.update({graph: "./graphs.py:echo" for graph in public_graphs})
    # Every request header reaches a run's `configurable` (`http.configurable_headers`), so the
    # `headers` forgery tests that none overrides the server's keys. The custom routes are
    # authenticated like the API's. Threads expire only when a client gives them a TTL (no
    # `default_ttl`); the sweep runs every 0.6 s so that a hunt sees it.
    config = {
        "graphs": graphs,
        "auth": {"path": "./auth.py:auth", "disable_studio_auth": True},
        "http": {"configurable_headers": {"include": ["*"]}, "app": "./webapp.py:app", "enable_custom_route_auth": True},
        "store": {"index": {"embed": "./graphs.py:embed", "dims": 64, "fields": ["text"]}},
        "checkpointer": {"ttl": {"strategy": "delete", "sweep_interval_minutes": TTL_SWEEP_MINUTES}},
    }
    auth = AUTH_PY.replace("__TOKENS__", json.dumps(tokens, indent=4)).replace(
        "__PUBLIC__", json.dumps(sorted(system_assistant_id(graph) for graph in public_graphs))
    )
    return {"langgraph.json": json.dumps(config, indent=2), "auth.py": auth, "graphs.py": GRAPHS_PY, "webapp.py": WEBAPP_PY}


# --------------------------------------------------------------------------------------------
# The server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """`graphward dev` on the hunter's app in a temporary folder, on a free port."""

    def __init__(self, binary: str, workers: int = 1, *, log_level: str | None = None, max_runs: int | None = None):
        binary = str(Path(binary).resolve())  # the server runs in the app's folder
        self.folder = Path(tempfile.mkdtemp(prefix="graphward-hunt-"))
        for name, content in app_files(workers).items():
            (self.folder / name).write_text(content)
        environment = {**os.environ, "VIRTUAL_ENV": sys.prefix}
        environment.pop("GRAPHWARD_LOG", None)
        if log_level:
            environment["GRAPHWARD_LOG"] = log_level
        self.log_path = self.folder / "server.log"
        for _attempt in range(5):
            self.port = free_port()
            self.url = f"http://127.0.0.1:{self.port}"
            args = [binary, "dev", "--no-browser", "--port", str(self.port), "--config", str(self.folder / "langgraph.json")]
            if max_runs:
                args += ["--max-runs", str(max_runs)]
            self.log = open(self.log_path, "w+")  # noqa: SIM115 - closed in stop()
            self.process = subprocess.Popen(args, cwd=self.folder, env=environment, stdout=self.log, stderr=subprocess.STDOUT)
            if self._wait_ready():
                return
            self.log.close()  # the port was taken between picking and binding: try another
        raise RuntimeError(f"graphward did not start:\n{self.output()}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                if "in use" in self.output():
                    return False
                raise RuntimeError(f"graphward exited with {self.process.returncode}:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/ok", timeout=1).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"graphward did not answer /ok within 60 s:\n{self.output()}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.process.poll() is None

    def memory_kib(self) -> dict[str, int]:
        """`VmRSS` and `VmHWM` (peak) of the server process, in KiB (empty if unreadable)."""
        figures = {}
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                name, _, value = line.partition(":")
                if name in ("VmRSS", "VmHWM"):
                    figures[name] = int(value.split()[0])
        return figures

    def stop(self) -> int | None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        return self.process.returncode

    def database_problems(self) -> dict[str, str]:
        """`PRAGMA integrity_check` of each SQLite file of the stopped server: file -> problem."""
        import sqlite3

        problems = {}
        for path in sorted((self.folder / ".graphward").glob("*.db")):
            try:
                with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as database:
                    rows = [row[0] for row in database.execute("PRAGMA integrity_check").fetchall()]
            except sqlite3.DatabaseError as error:
                rows = [str(error)]
            if rows != ["ok"]:
                problems[path.name] = "; ".join(rows[:5])
        return problems

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# Canaries

CANARY = re.compile(r"canary-([A-Za-z0-9_.]+)-(\d+)")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# Ids every exchange may mention (system assistants): useless to tell which requests matter.
SHARED_IDS = frozenset(
    system_assistant_id(graph) for graph in (*GRAPHS, INTERRUPT_GRAPH, *(public_graph_for(worker) for worker in range(MAX_WORKERS)))
)


class Canaries:
    """Unique markers `canary-<identity>-<n>` (one counter per worker)."""

    def __init__(self) -> None:
        self.count = 0

    def new(self, identity: str) -> str:
        self.count += 1
        return f"canary-{identity}-{self.count}"


def canaries_in(text: str) -> Iterator[tuple[str, str]]:
    """(canary, identity) for every canary in `text`."""
    for match in CANARY.finditer(text):
        yield match.group(0), match.group(1)


# --------------------------------------------------------------------------------------------
# The trace and its replay

BODY_KEEP = 8192
EXCERPT = 600
REQUEST_DEADLINE = 60.0  # seconds; waits and joins send keep-alive newlines, so read timeouts never fire
HUNG_LIMIT = 3  # requests that never completed before the hunt gives up on the server


@dataclasses.dataclass
class Exchange:
    """One request and the gist of its answer."""

    seq: int
    user: str  # the identity, or a label for bad credentials ("no credentials", ...)
    authorization: str | None
    method: str
    path: str  # with the query string
    body: str | None  # JSON text or raw bytes as sent (truncated)
    headers: dict[str, str]
    status: int
    excerpt: str
    tokens: frozenset[str]

    def curl(self) -> str:
        if self.method == "WS":  # a WebSocket: no curl for it
            return f"# WebSocket $BASE{self.path} (Authorization: {self.authorization}) sending, one frame each: {self.body}"
        parts = ["curl -sS", "-X", self.method, f'"$BASE{self.path}"']
        if "/." in self.path or "//" in self.path:
            parts.insert(1, "--path-as-is")  # curl would squash the dot segments
        if self.authorization is not None:
            parts += ["-H", shlex.quote(f"Authorization: {self.authorization}")]
        for name, value in self.headers.items():
            parts += ["-H", shlex.quote(f"{name}: {value}")]
        if self.body is not None:
            parts += ["-H", shlex.quote("Content-Type: application/json"), "-d", shlex.quote(self.body)]
        return " ".join(parts)


class Trace:
    """Every exchange of one worker (the newest `keep` of them)."""

    def __init__(self, keep: int | None = None) -> None:
        self.exchanges: deque[Exchange] = deque(maxlen=keep)
        self.seq = 0

    def add(self, **fields: Any) -> Exchange:
        self.seq += 1
        exchange = Exchange(seq=self.seq, **fields)
        self.exchanges.append(exchange)
        return exchange

    def dump(self, path: Path) -> None:
        """Every kept exchange, one per line: `#seq user METHOD path body -> status excerpt`."""
        with open(path, "w") as out:
            out.writelines(f"#{e.seq} {e.user} {e.method} {e.path} {e.body or ''} -> {e.status} {e.excerpt[:300]!r}\n" for e in self.exchanges)

    def relevant(self, tokens: set[str], upto: int, limit: int = 40) -> tuple[list[Exchange], int]:
        """The exchanges up to `upto` that mention any of `tokens` (ids, canaries, store
        keys): the first one per token (its creation) and the newest, at most `limit`.
        Returns them and how many were left out."""
        hits = [exchange for exchange in self.exchanges if exchange.seq <= upto and exchange.tokens & tokens]
        if len(hits) <= limit:
            return hits, 0
        first = {}
        for exchange in hits:
            for token in exchange.tokens & tokens:
                first.setdefault(token, exchange)
        keep = {exchange.seq for exchange in first.values()}
        for exchange in reversed(hits):
            if len(keep) >= limit:
                break
            keep.add(exchange.seq)
        chosen = [exchange for exchange in hits if exchange.seq in keep]
        return chosen, len(hits) - len(chosen)


# --------------------------------------------------------------------------------------------
# Violations


@dataclasses.dataclass
class Violation:
    kind: str
    message: str
    expected: str
    seen: str
    tokens: set[str]
    worker: int
    seq: int
    replay: list[str]
    omitted: int
    repeats: int = 0

    def report(self, base_url: str = "") -> str:
        lines = [f"[{self.kind}] {self.message} (worker {self.worker}, request #{self.seq}, seen {self.repeats + 1}x)"]
        lines.append(f"  expected: {self.expected}")
        lines.append(f"  seen:     {self.seen}")
        lines.append(f"  replay{' (' + str(self.omitted) + ' more requests on these ids left out)' if self.omitted else ''}:")
        lines.append(f"    BASE={base_url or 'http://127.0.0.1:PORT'}")
        lines.extend(f"    {line}" for line in self.replay)
        return "\n".join(lines)


class Violations:
    """Collected violations, de-duplicated by kind and subject; thread-safe."""

    def __init__(self, cap: int = 200, per_kind: int = 12, on_new: Callable[[Violation], None] | None = None) -> None:
        """`on_new` is told of each distinct violation as it is found (a long hunt's log)."""
        self.cap = cap
        self.on_new = on_new
        self.per_kind = per_kind
        self.items: list[Violation] = []
        self.shown: Counter[str] = Counter()
        self.by_key: dict[tuple[str, frozenset[str]], Violation] = {}
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()

    def add(self, violation: Violation, key: frozenset[str]) -> None:
        with self.lock:
            self.counts[violation.kind] += 1
            known = self.by_key.get((violation.kind, key))
            if known is not None:
                known.repeats += 1
                return
            if len(self.items) < self.cap and self.shown[violation.kind] < self.per_kind:
                self.items.append(violation)
                self.shown[violation.kind] += 1
                self.by_key[(violation.kind, key)] = violation
        if known is None and self.on_new is not None:
            self.on_new(violation)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def report(self, base_url: str = "", full: int | None = None) -> str:
        """Every collected violation with its replay (only the first `full` ones with their
        replay, the others in one line each)."""
        if not self.items:
            return "no violations"
        header = f"{self.total} violations ({', '.join(f'{kind}: {n}' for kind, n in sorted(self.counts.items()))}); distinct shown: {len(self.items)}"
        shown = self.items if full is None else self.items[:full]
        rest = [] if full is None else self.items[full:]
        parts = [header, *(violation.report(base_url) for violation in shown)]
        if rest:
            parts.append("more:\n" + "\n".join(f"  [{v.kind}] {v.message} (request #{v.seq})" for v in rest))
        return "\n\n".join(parts)


# --------------------------------------------------------------------------------------------
# HTTP with the generic oracles


@dataclasses.dataclass(frozen=True)
class User:
    identity: str

    @property
    def authorization(self) -> str:
        return f"Bearer {token_of(self.identity)}"


@dataclasses.dataclass(frozen=True)
class Credential:
    """Credentials that must be refused (or none at all)."""

    label: str
    authorization: str | None
    extra: tuple[tuple[str, str], ...] = ()


BAD_CREDENTIALS = (
    Credential("no credentials", None),
    Credential("unknown token", "Bearer tok-mallory"),
    Credential("empty token", 'Bearer ""'),
    Credential("bare scheme", "Bearer"),
    Credential("wrong scheme", "Basic dG9rLWFsaWNlOg=="),
    Credential("lower-case scheme", "bearer tok-alice"),
    Credential("token with a suffix", "Bearer tok-alice extra"),
    Credential("token case", "Bearer TOK-ALICE"),
    Credential("studio header", None, (("x-auth-scheme", "langsmith"),)),
)


@dataclasses.dataclass
class SseEvent:
    event: str
    data: Any
    id: str | None


def parse_sse(text: str) -> list[SseEvent]:
    events = []
    for block in re.split(r"\r?\n\r?\n", text):
        name, data, event_id = "message", [], None
        for line in block.splitlines():
            if not line or line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
            elif field == "id":
                event_id = value
        if data:
            text_data = "\n".join(data)
            try:
                parsed = json.loads(text_data)
            except ValueError:
                parsed = text_data
            events.append(SseEvent(name, parsed, event_id))
    return events


_UNSET = object()


class Reply:
    """An answer: status, text, headers, parsed JSON or SSE events."""

    def __init__(self, status: int, text: str, headers: httpx.Headers, exchange: Exchange):
        self.status = status
        self.text = text
        self.headers = headers
        self.exchange = exchange
        self._json: Any = _UNSET

    @property
    def is_sse(self) -> bool:
        return "text/event-stream" in self.headers.get("content-type", "")

    def json(self) -> Any:
        if self._json is _UNSET:
            try:
                self._json = json.loads(self.text) if self.text.strip() else None
            except ValueError:
                self._json = None
        return self._json

    def events(self) -> list[SseEvent]:
        return parse_sse(self.text) if self.is_sse else []

    def brief(self) -> str:
        return f"{self.status} {self.text[:300]!r}"


PUBLIC_PATHS = ("/ok", "/", "/info", "/docs", "/openapi.json")


class ServerGone(RuntimeError):
    """The server stopped answering: the hunt cannot go on."""


class OperationAborted(RuntimeError):
    """A request got no answer (reported): the rest of the operation is skipped."""


class DeadlinePassed(httpx.TimeoutException):
    """An answer did not complete within REQUEST_DEADLINE."""


class Api:
    """One worker's HTTP client. Records every exchange in the trace and applies the generic
    oracles to every answer: no 5xx, 4xx bodies are `{"detail": str}`, and no canary of
    another user reaches an authenticated caller."""

    def __init__(self, base_url: str, trace: Trace, report: Callable[..., None], identities: set[str]):
        # graphward closes a kept-alive connection after 10 idle seconds: drop ours before that.
        limits = httpx.Limits(keepalive_expiry=5.0)
        self.client = httpx.Client(base_url=base_url, timeout=httpx.Timeout(60.0, connect=10.0), limits=limits)
        self.trace = trace
        self.report = report
        self.identities = identities
        self.requests = 0
        self.hung = 0

    def close(self) -> None:
        self.client.close()

    def call(
        self,
        who: User | Credential,
        method: str,
        path: str,
        *,
        json_body: Any = _UNSET,
        content: bytes | None = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        stream_seconds: float | None = None,
        stop_when: Callable[[str], bool] | None = None,
        raw_path: str | None = None,
    ) -> Reply:
        """One request. `raw_path` is sent byte for byte (dot segments, encoded slashes)."""
        request_headers = dict(headers or {})
        authorization = who.authorization
        if authorization is not None:
            request_headers["Authorization"] = authorization
        if isinstance(who, Credential):
            request_headers.update(who.extra)
        body_text = None
        if json_body is not _UNSET:
            content = json.dumps(json_body).encode()
        if content is not None:
            request_headers["Content-Type"] = "application/json"
            body_text = content.decode(errors="replace")[:BODY_KEEP]
        timeout = httpx.Timeout(10.0, read=stream_seconds) if stream_seconds else None
        request = self.client.build_request(method, path, params=params, content=content, headers=request_headers, **({"timeout": timeout} if timeout else {}))
        if raw_path is not None:
            request.url = request.url.copy_with(raw_path=raw_path.encode())
        full_path = request.url.raw_path.decode()
        self.requests += 1
        try:
            status, text, response_headers = self._send(request, stream_seconds, stop_when)
        except (httpx.TransportError, DeadlinePassed) as error:
            if not self.server_answers():
                raise ServerGone(f"{method} {full_path}: {error!r}") from error
            label = who.identity if isinstance(who, User) else who.label
            exchange = self.trace.add(
                user=label,
                authorization=authorization,
                method=method,
                path=full_path,
                body=body_text,
                headers={},
                status=0,
                excerpt=repr(error),
                tokens=frozenset(UUID.findall(full_path)),
            )
            reply = Reply(0, "", httpx.Headers(), exchange)
            if isinstance(error, DeadlinePassed):
                self.hung += 1
                self.report(
                    "hung", f"{method} {full_path} did not complete within {REQUEST_DEADLINE:.0f} s", "a complete answer", "still waiting", set(), reply
                )
                if self.hung >= HUNG_LIMIT:
                    raise ServerGone(f"{self.hung} requests never completed; the last: {method} {full_path}") from error
            else:
                self.report("connection-dropped", f"{method} {full_path} got no answer ({error!r})", "an HTTP answer", "the connection closed", set(), reply)
            raise OperationAborted(str(error)) from error
        label = who.identity if isinstance(who, User) else who.label
        extra = {name: value for name, value in request_headers.items() if name.lower() not in ("authorization", "content-type")}
        scanned = f"{full_path} {body_text or ''} {text if len(text) < 2048 else ''}"
        tokens = (frozenset(UUID.findall(scanned)) - SHARED_IDS) | frozenset(canary for canary, _ in canaries_in(f"{full_path} {body_text or ''}"))
        exchange = self.trace.add(
            user=label,
            authorization=authorization,
            method=method,
            path=full_path,
            body=body_text,
            headers=extra,
            status=status,
            excerpt=text[:EXCERPT],
            tokens=tokens,
        )
        reply = Reply(status, text, response_headers, exchange)
        self._generic_oracles(who, reply, f"{full_path} {body_text or ''}")
        return reply

    def server_answers(self) -> bool:
        try:
            return httpx.get(str(self.client.base_url.join("/ok")), timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def _send(self, request: httpx.Request, stream_seconds: float | None, stop_when: Callable[[str], bool] | None = None) -> tuple[int, str, httpx.Headers]:
        """Status, body and headers. With `stream_seconds` (endless streams) whatever came in
        that time (or until `stop_when` says the text so far is enough); otherwise the whole
        body, which must come within REQUEST_DEADLINE."""
        response = self.client.send(request, stream=True)
        chunks: list[bytes] = []
        started = time.monotonic()
        try:
            for chunk in response.iter_bytes():
                chunks.append(chunk)
                elapsed = time.monotonic() - started
                if stream_seconds is not None and elapsed > stream_seconds:
                    break
                if stop_when is not None and stop_when(b"".join(chunks).decode(errors="replace")):
                    break
                if stream_seconds is None and elapsed > REQUEST_DEADLINE:
                    raise DeadlinePassed(f"no complete answer within {REQUEST_DEADLINE:.0f} s")
        except httpx.ReadTimeout:
            if stream_seconds is None:
                raise
        finally:
            response.close()
        return response.status_code, b"".join(chunks).decode(errors="replace"), response.headers

    def _generic_oracles(self, who: User | Credential, reply: Reply, request_text: str) -> None:
        what = f"{reply.exchange.method} {reply.exchange.path}"
        if reply.status >= 500:
            self.report("server-error", f"{what} answered {reply.status}", "a non-5xx answer", reply.brief(), set(), reply)
        elif reply.status >= 400:
            body = reply.json()
            if not (isinstance(body, dict) and isinstance(body.get("detail"), str)) and not protocol_error(reply.exchange.path, body):
                self.report("error-shape", f"{what} answered {reply.status} without a JSON detail", '{"detail": "..."}', reply.brief(), set(), reply)
        if not isinstance(who, User):
            return
        for canary, identity in canaries_in(reply.text):
            if identity != who.identity and identity in self.identities and canary not in request_text:
                self.report(
                    "canary-leak",
                    f"{who.identity} received {identity}'s {canary} from {what}",
                    f"no data of another user in an answer to {who.identity}",
                    excerpt_around(reply.text, canary),
                    {canary},
                    reply,
                    key={canary},
                )


def is_command_error(document: Any) -> bool:
    """The event-streaming protocol's error: `{"type": "error", "id", "error", "message"}`."""
    return isinstance(document, dict) and document.get("type") == "error" and isinstance(document.get("error"), str) and isinstance(document.get("message"), str)


def is_jsonrpc_error(document: Any) -> bool:
    """A JSON-RPC 2.0 error response: `{"jsonrpc": "2.0", "id", "error": {"code", "message"}}`."""
    error = document.get("error") if isinstance(document, dict) else None
    return isinstance(error, dict) and document.get("jsonrpc") == "2.0" and isinstance(error.get("code"), int) and isinstance(error.get("message"), str)


def protocol_error(path: str, document: Any) -> bool:
    """Whether a 4xx body is the error message of the protocol the route speaks (the
    commands of the event-streaming protocol, MCP, A2A): their clients parse those."""
    route = path.split("?", 1)[0]
    if re.fullmatch(r"/threads/[^/]+/commands", route):
        return is_command_error(document)
    if route == "/mcp" or route.startswith("/a2a/"):
        return is_jsonrpc_error(document)
    return False


def excerpt_around(text: str, needle: str, width: int = 160) -> str:
    at = text.find(needle)
    if at < 0:
        return text[: 2 * width]
    return ("…" if at > width else "") + text[max(0, at - width) : at + len(needle) + width] + "…"


# --------------------------------------------------------------------------------------------
# The model: who owns what


class Relation(enum.Enum):
    OWN = "own"
    FOREIGN = "foreign"
    MISSING = "missing"


@dataclasses.dataclass
class RunModel:
    run_id: str
    thread_id: str
    owner: str
    canary: str
    graph: str
    stateless: bool = False
    keep: bool = True
    cancelled: bool = False  # its fate is the canceller's: not checked
    assistant: str | None = None  # its assistant's UUID: deleting it cancels the run


@dataclasses.dataclass
class ThreadModel:
    thread_id: str
    owner: str
    metadata: dict | None  # None: learned at the owner's next read
    history: int | None = 0  # checkpoints; None: learned at the owner's next read
    lineage: set[str] = dataclasses.field(default_factory=set)  # this id and those it was copied from
    runs: dict[str, RunModel] = dataclasses.field(default_factory=dict)
    maybe_gone_runs: set[str] = dataclasses.field(default_factory=set)
    active: list[RunModel] = dataclasses.field(default_factory=list)
    reserved: bool = False  # a scenario's: never a random target
    runs_known: bool = True  # False: the run list is learned at the owner's next read
    checkpoint_id: str | None = None
    parent_checkpoint_id: str | None = None

    def __post_init__(self) -> None:
        self.lineage.add(self.thread_id)

    @property
    def graph(self) -> str | None:
        return (self.metadata or {}).get("graph_id")

    def run_count(self) -> int:
        return len(self.runs)


@dataclasses.dataclass
class AssistantModel:
    assistant_id: str
    owner: str
    graph_id: str
    versions: list[dict]  # per version: {"metadata": ..., "name": ...}
    version: int = 1
    public: bool = False

    @property
    def current(self) -> dict:
        return self.versions[self.version - 1]


@dataclasses.dataclass
class CronModel:
    cron_id: str
    owner: str
    thread_id: str | None
    assistant_id: str
    metadata: dict
    schedule: str
    enabled: bool = True
    firing: bool = False
    tag: str | None = None
    canary: str | None = None
    forged_owner: str | None = None
    next_run: float | None = None


@dataclasses.dataclass
class A2aTask:
    """A task an A2A `message/send` made: the run `run_id` of `assistant` (as sent) on `thread_id`."""

    owner: str
    assistant: str
    thread_id: str
    run_id: str

    @property
    def task_id(self) -> str:
        return f"{self.thread_id}:{self.run_id}"


@dataclasses.dataclass
class PublicAssistant:
    graph_id: str
    assistant_id: str
    exists: bool = True
    owner: str | None = None  # None: the system one; else who re-created it


class Model:
    """What each user of one worker created, and what they may therefore see."""

    THREAD_CAP = 30
    ASSISTANT_CAP = 10
    CRON_CAP = 8
    GONE_CAP = 200

    def __init__(self, identities: list[str], public_graph: str):
        self.users = [User(identity) for identity in identities]
        self.threads: dict[str, ThreadModel] = {}
        self.gone_threads: deque[str] = deque(maxlen=self.GONE_CAP)
        self.assistants: dict[str, AssistantModel] = {}
        self.gone_assistants: deque[str] = deque(maxlen=self.GONE_CAP)
        self.crons: dict[str, CronModel] = {}
        self.gone_crons: deque[str] = deque(maxlen=self.GONE_CAP)
        self.gone_cron_tags: set[str] = set()  # tags of firing crons whose threads were deleted
        self.store: dict[tuple[tuple[str, ...], str], dict] = {}
        self.transient: dict[str, RunModel] = {}  # stateless background runs: their threads come and go
        self.store_unknown: set[str] = set()  # users whose store a reported bug changed: learned again
        self.public = PublicAssistant(public_graph, system_assistant_id(public_graph))

    def threads_of(self, identity: str, usable: Callable[[ThreadModel], bool] | None = None) -> list[ThreadModel]:
        return [t for t in self.threads.values() if t.owner == identity and not t.reserved and (usable is None or usable(t))]

    def assistants_of(self, identity: str) -> list[AssistantModel]:
        return [a for a in self.assistants.values() if a.owner == identity]

    def crons_of(self, identity: str) -> list[CronModel]:
        return [c for c in self.crons.values() if c.owner == identity]

    def add_thread(self, thread: ThreadModel) -> ThreadModel:
        self.threads[thread.thread_id] = thread
        with contextlib.suppress(ValueError):
            self.gone_threads.remove(thread.thread_id)
        return thread

    def drop_thread(self, thread_id: str, only: ThreadModel | None = None) -> None:
        """Forgets a deleted thread (`only`: unless the id now belongs to another thread)."""
        if only is not None and self.threads.get(thread_id) is not only:
            return
        thread = self.threads.pop(thread_id, None)
        self.gone_threads.append(thread_id)
        if thread is not None and isinstance(thread.metadata, dict) and thread.metadata.get("cron_tag"):
            self.gone_cron_tags.add(thread.metadata["cron_tag"])  # a cron's thread, adopted then deleted
        for cron in [c for c in self.crons.values() if c.thread_id == thread_id]:
            self.drop_cron(cron.cron_id)

    def drop_assistant(self, assistant_id: str) -> None:
        self.assistants.pop(assistant_id, None)
        self.gone_assistants.append(assistant_id)
        # The server cancels the assistant's runs: a pending one never writes, a running one
        # stops wherever it was. Their outcome (and their thread's history) is not predicted.
        for thread in self.threads.values():
            for run in thread.active:
                if run.assistant == assistant_id:
                    run.cancelled = True
                    thread.history = None
        for run in self.transient.values():
            if run.assistant == assistant_id:
                run.cancelled = True
        for cron in [c for c in self.crons.values() if c.assistant_id == assistant_id]:
            self.drop_cron(cron.cron_id)

    def drop_cron(self, cron_id: str) -> None:
        self.crons.pop(cron_id, None)
        self.gone_crons.append(cron_id)

    def store_items(self, prefix: list[str]) -> dict[tuple[tuple[str, ...], str], dict]:
        size = len(prefix)
        return {item: value for item, value in self.store.items() if list(item[0][:size]) == prefix}


def clean_metadata(metadata: dict) -> dict:
    return {key: value for key, value in metadata.items() if key not in RESERVED_METADATA}


def label_error(namespace: list[str]) -> bool:
    """Whether a namespace has a label the API must refuse (empty, or with a dot)."""
    return any(not label or "." in label for label in namespace)


def message_texts(values: Any) -> list[str]:
    messages = values.get("messages") if isinstance(values, dict) else None
    texts = []
    for message in messages or ():
        if isinstance(message, dict):
            texts.append(str(message.get("content", "")))
    return texts


def content_location(reply: Reply) -> tuple[str | None, str | None]:
    """(thread id, run id) of `Content-Location: [/threads/<tid>]/runs/<rid>`."""
    match = re.search(r"(?:/threads/([0-9a-f-]{36}))?/runs/([0-9a-f-]{36})", reply.headers.get("content-location", ""))
    return (match.group(1), match.group(2)) if match else (None, None)


def last_values(events: list[SseEvent]) -> Any:
    values = [event.data for event in events if event.event == "values"]
    return values[-1] if values else None


PROTOCOL_CHANNELS = ("values", "updates", "messages", "tools", "lifecycle", "input", "checkpoints", "tasks", "custom")


ROOT_ENDS = ("completed", "failed", "interrupted")


def run_ended(text: str, marker: str) -> bool:
    """Whether an event stream's text so far has root values holding `marker` (a run's
    canary) followed by the root lifecycle's end (`completed`, `failed`, `interrupted`): the
    end of that run, not of one before it whose last events came late."""
    seen = False
    for event in parse_sse(text):
        params = event.data.get("params") if isinstance(event.data, dict) else None
        if not isinstance(params, dict) or params.get("namespace") != []:
            continue
        if event.event == "values" and marker in message_texts(params.get("data")):
            seen = True
        elif seen and event.event == "lifecycle" and (params.get("data") or {}).get("event") in ROOT_ENDS:
            return True
    return False


def tool_name(name: str, assistant_id: str) -> str:
    """The MCP tool name of an assistant: its name with whitespace runs as `_`, only ASCII
    letters, digits, `_`, `-` and `.` kept (its id if nothing is left), at most 128 characters."""
    kept: list[str] = []
    in_space = False
    for character in name:
        if character.isspace():
            if not in_space:
                kept.append("_")
            in_space = True
            continue
        in_space = False
        if (character.isascii() and character.isalnum()) or character in "_-.":
            kept.append(character)
    return ("".join(kept) or assistant_id)[:128]


def a2a_task(result: Any) -> dict | None:
    """The task of an A2A answer (0.3: the result itself; 1.0: `{"task": ...}`)."""
    if isinstance(result, dict) and isinstance(result.get("task"), dict):
        return result["task"]
    return result if isinstance(result, dict) and "id" in result else None


def a2a_state(task: dict) -> str:
    """A task's state in 0.3's words (`TASK_STATE_INPUT_REQUIRED` -> `input-required`)."""
    state = str((task.get("status") or {}).get("state", "")).lower()
    return state.removeprefix("task_state_").replace("_", "-")


def a2a_texts(task: dict) -> list[str]:
    return [str(part.get("text")) for message in task.get("history") or [] if isinstance(message, dict) for part in message.get("parts") or [] if isinstance(part, dict) and "text" in part]


def diff(before: Any, after: Any) -> tuple[str, str]:
    """The parts of two readings that differ, as short texts."""
    if isinstance(before, dict) and isinstance(after, dict):
        keys = [key for key in sorted(set(before) | set(after)) if before.get(key) != after.get(key)]
        return (json.dumps({key: before.get(key) for key in keys}, default=str)[:700], json.dumps({key: after.get(key) for key in keys}, default=str)[:700])
    return json.dumps(before, default=str)[:700], json.dumps(after, default=str)[:700]


# --------------------------------------------------------------------------------------------
# The hunter

OPERATIONS: dict[str, tuple[float, Callable[[Hunter], None]]] = {}


def operation(name: str, weight: float) -> Callable[[Callable[[Hunter], None]], Callable[[Hunter], None]]:
    """Registers a random operation and its weight."""

    def register(function: Callable[[Hunter], None]) -> Callable[[Hunter], None]:
        OPERATIONS[name] = (weight, function)
        return function

    return register


RUNS_PER_THREAD = 5  # keeps histories (and their readings) short
FORGERIES = ("user_id", "auth_user_id", "thread_id", "context", "checkpoint", "checkpoint_id", "owner", "headers")
DENIED_THREAD_CREATE = {404, 409}
DENIED_COPY = {404, 409}
DENIED_STATE_UPDATE = {403, 404}
HISTORY_PER_RUN = 3  # a one-node graph writes the input checkpoint and two loop checkpoints


class Hunter:
    """One worker: its users, its model, its operations. `run(n)` performs `n` random
    operations, then settles everything and checks each user's whole view once more."""

    def __init__(
        self,
        base_url: str,
        *,
        seed: int,
        worker: int = 0,
        violations: Violations | None = None,
        trace_keep: int | None = None,
        all_identities: set[str] | None = None,
        firing_crons: bool = True,
        firing_every: int | None = None,
        only: tuple[str, ...] | None = None,
    ):
        self.base_url = base_url
        self.port = httpx.URL(base_url).port
        self.worker = worker
        self.rng = random.Random(f"{seed}:{worker}")
        self.model = Model(identities_for(worker), public_graph_for(worker))
        self.canaries = Canaries()
        self.trace = Trace(trace_keep)
        self.violations = violations if violations is not None else Violations()
        self.api = Api(base_url, self.trace, self._report_from_api, all_identities or set(identities_for(worker)))
        self.stats: Counter[str] = Counter()
        self.seconds: Counter[str] = Counter()  # time spent per operation
        self.firing_crons = firing_crons
        self.firing_every = firing_every  # operations between two pairs of firing crons (None: once)
        self.cron_tags: dict[str, str] = {}  # tag of a firing cron -> its creator
        self.operations_done = 0
        # `only`: the operations whose names start with one of these (a hunt focused on a few routes).
        self.names = [name for name in OPERATIONS if only is None or name.startswith(tuple(only))]
        assert self.names, f"no operation matches {only}"
        self.weights = [OPERATIONS[name][0] for name in self.names]
        self.rpc_ids = 0  # ids of protocol commands and JSON-RPC requests
        self.a2a_dialects = ["0.3", "1.0"]  # the A2A versions the server may speak (one it says it does not is dropped)
        self.a2a_dialect = "0.3"  # the version of the request being made
        self.a2a_tasks: list[A2aTask] = []  # tasks made through A2A, anybody's

    # --- reporting ------------------------------------------------------------------------

    def violation(self, kind: str, message: str, expected: Any, seen: Any, subject: set[str], reply: Reply | None = None, key: set[str] | None = None) -> None:
        seq = reply.exchange.seq if reply is not None else self.trace.seq
        tokens = {token for token in subject if token} | (set(reply.exchange.tokens) if reply is not None else set())
        chosen, omitted = self.trace.relevant(tokens, seq)
        if reply is not None and all(exchange.seq != reply.exchange.seq for exchange in chosen):
            chosen.append(reply.exchange)
        replay = []
        for exchange in chosen:
            replay.append(f"# #{exchange.seq} as {exchange.user} -> {exchange.status} {exchange.excerpt[:160]!r}")
            replay.append(exchange.curl())
        found = Violation(kind, message, str(expected)[:1200], str(seen)[:1200], tokens, self.worker, seq, replay, omitted)
        self.violations.add(found, frozenset(key if key is not None else {token for token in subject if token}))

    def _report_from_api(self, kind: str, message: str, expected: str, seen: str, subject: set[str], reply: Reply, key: set[str] | None = None) -> None:
        self.violation(kind, message, expected, seen, subject, reply, key)

    def check(
        self, condition: bool, kind: str, message: str, expected: Any, seen: Any, subject: set[str], reply: Reply | None = None, key: set[str] | None = None
    ) -> bool:
        if not condition:
            self.violation(kind, message, expected, seen, subject, reply, key)
        return condition

    def expect_status(self, reply: Reply, allowed: int | set[int], message: str, subject: set[str]) -> bool:
        allowed = {allowed} if isinstance(allowed, int) else allowed
        if reply.status in allowed:
            return True
        if all(status >= 400 for status in allowed) and reply.status < 400:
            kind = "not-denied"
        elif all(status < 400 for status in allowed) and reply.status >= 400:
            kind = "wrongly-refused"
        else:
            kind = "status"
        self.violation(
            kind,
            f"{message} ({reply.exchange.method} {reply.exchange.path} as {reply.exchange.user})",
            f"status {sorted(allowed)}",
            reply.brief(),
            subject,
            reply,
        )
        return False

    # --- picking --------------------------------------------------------------------------

    def new_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def actor(self) -> User:
        return self.rng.choice(self.model.users)

    def other(self, user: User) -> User:
        return self.rng.choice([other for other in self.model.users if other != user])

    def chance(self, probability: float) -> bool:
        return self.rng.random() < probability

    def missing_thread_id(self) -> str:
        gone = [thread_id for thread_id in self.model.gone_threads if thread_id not in self.model.threads]
        return self.rng.choice(gone) if gone and self.chance(0.5) else self.new_id()

    def pick_thread(
        self, actor: User, own: float = 0.65, foreign: float = 0.25, usable: Callable[[ThreadModel], bool] | None = None
    ) -> tuple[Relation, ThreadModel | None, str]:
        roll = self.rng.random()
        if roll < own:
            mine = self.model.threads_of(actor.identity, usable)
            if mine:
                thread = self.rng.choice(mine)
                return Relation.OWN, thread, thread.thread_id
        elif roll < own + foreign:
            theirs = self.foreign_threads(actor)
            if theirs:
                thread = self.rng.choice(theirs)
                return Relation.FOREIGN, thread, thread.thread_id
        return Relation.MISSING, None, self.missing_thread_id()

    def foreign_threads(self, actor: User) -> list[ThreadModel]:
        return [thread for thread in self.model.threads.values() if thread.owner != actor.identity and not thread.reserved]

    def pick_victim(self, actor: User) -> ThreadModel | None:
        theirs = self.foreign_threads(actor)
        return self.rng.choice(theirs) if theirs else None

    def pick_assistant(self, actor: User, own: float = 0.6, foreign: float = 0.25) -> tuple[Relation, AssistantModel | None, str]:
        roll = self.rng.random()
        if roll < own:
            mine = [a for a in self.model.assistants_of(actor.identity) if not a.public]
            if mine:
                assistant = self.rng.choice(mine)
                return Relation.OWN, assistant, assistant.assistant_id
        elif roll < own + foreign:
            theirs = [a for a in self.model.assistants.values() if a.owner != actor.identity and not a.public]
            if theirs:
                assistant = self.rng.choice(theirs)
                return Relation.FOREIGN, assistant, assistant.assistant_id
        gone = [a for a in self.model.gone_assistants if a not in self.model.assistants and a != self.model.public.assistant_id]
        return Relation.MISSING, None, self.rng.choice(gone) if gone and self.chance(0.5) else self.new_id()

    def pick_cron(self, actor: User) -> tuple[Relation, CronModel | None, str]:
        roll = self.rng.random()
        if roll < 0.6:
            mine = [c for c in self.model.crons_of(actor.identity) if not c.firing]
            if mine:
                cron = self.rng.choice(mine)
                return Relation.OWN, cron, cron.cron_id
        elif roll < 0.9:
            theirs = [c for c in self.model.crons.values() if c.owner != actor.identity and not c.firing]
            if theirs:
                cron = self.rng.choice(theirs)
                return Relation.FOREIGN, cron, cron.cron_id
        gone = list(self.model.gone_crons)
        return Relation.MISSING, None, self.rng.choice(gone) if gone and self.chance(0.5) else self.new_id()

    # --- readings: what an owner sees, checked against the model ---------------------------

    def settle(self, thread: ThreadModel) -> None:
        """Waits for the thread's background runs (joined by their owner) and checks them."""
        for run in list(thread.active):
            self.settle_run(run)

    def settle_run(self, run: RunModel) -> None:
        owner = User(run.owner)
        thread = self.model.threads.get(run.thread_id)
        if thread is not None and run in thread.active:
            thread.active.remove(run)
        self.model.transient.pop(run.thread_id, None)
        subject = {run.thread_id, run.run_id}
        reply = self.api.call(owner, "GET", f"/threads/{run.thread_id}/runs/{run.run_id}/join")
        if run.stateless and not run.keep:
            self.expect_status(reply, {200, 404}, "joining a stateless run", subject)
            if reply.status == 200 and not run.cancelled and reply.json() not in ({}, None) and "__error__" not in (reply.json() or {}):
                self.check_run_values(owner, reply.json(), thread_id=run.thread_id, canary=run.canary, run_id=run.run_id, graph=run.graph, reply=reply)
            return
        if not self.expect_status(reply, 200, "the owner joins their run", subject):
            return
        if run.cancelled:
            if thread is not None:
                thread.history = None
            return
        in_place = self.check_run_values(
            owner,
            reply.json(),
            thread_id=run.thread_id,
            canary=run.canary,
            run_id=run.run_id,
            graph=run.graph,
            reply=reply,
            lineage=thread.lineage if thread else None,
        )
        if not in_place and thread is not None:
            thread.history = None
        status = self.api.call(owner, "GET", f"/threads/{run.thread_id}/runs/{run.run_id}")
        if self.expect_status(status, 200, "the owner reads their run", subject):
            record = status.json() or {}
            if record.get("status") == "interrupted" and record.get("assistant_id") in self.model.gone_assistants:
                # Deleting an assistant cancels its runs: this one's fate was its deleter's.
                if thread is not None:
                    thread.history = None
                return
            self.check(
                record.get("status") == "success",
                "run-status",
                "a run nobody cancelled did not succeed",
                "success",
                (status.json() or {}).get("status"),
                subject,
                status,
            )
        if thread is not None and thread.history is not None:
            thread.history += HISTORY_PER_RUN

    def thread_reading(self, thread: ThreadModel, check: bool = True) -> dict:
        """The owner's view of a thread (record, state, history, runs), checked against the
        model (unless `check` is off: a guard's second reading is only compared with its
        first); unknown parts of the model are learned from it."""
        if not check:
            return self.raw_thread_reading(thread)
        self.settle(thread)
        owner = User(thread.owner)
        subject = {thread.thread_id}
        record = self.api.call(owner, "GET", f"/threads/{thread.thread_id}", params={"include": "ttl"})
        if record.status == 404:
            self.thread_lost(thread, record)
            return {"status": record.status}
        if not self.expect_status(record, 200, f"{owner.identity} reads their own thread", subject):
            return {"status": record.status}
        body = record.json() or {}
        metadata = body.get("metadata") or {}
        self.check(metadata.get("owner") == owner.identity, "owner", "a thread's owner changed", owner.identity, metadata.get("owner"), subject, record)
        self.check(body.get("ttl") is None, "ttl", "a thread nobody gave a TTL has one", None, body.get("ttl"), subject, record)
        if thread.metadata is None:
            thread.metadata = metadata
        if not self.check(
            metadata == thread.metadata, "metadata", "a thread's metadata differs from what its owner wrote", thread.metadata, metadata, subject, record
        ):
            thread.metadata = metadata
        state = self.api.call(owner, "GET", f"/threads/{thread.thread_id}/state")
        history = self.api.call(owner, "POST", f"/threads/{thread.thread_id}/history", json_body={"limit": 1000})
        runs = self.api.call(owner, "GET", f"/threads/{thread.thread_id}/runs", params={"limit": 1000})
        for reply in (state, history, runs):
            self.expect_status(reply, 200, f"{owner.identity} reads their own thread", subject)
        checkpoint = (state.json() or {}).get("checkpoint") or {}
        thread.checkpoint_id = checkpoint.get("checkpoint_id")
        thread.parent_checkpoint_id = ((state.json() or {}).get("parent_checkpoint") or {}).get("checkpoint_id")
        checkpoints = [((entry.get("checkpoint") or {}).get("checkpoint_id")) for entry in (history.json() or []) if isinstance(entry, dict)]
        if thread.history is None:
            thread.history = len(checkpoints)
        if not self.check(
            len(checkpoints) == thread.history,
            "history",
            "a thread's history has another length than its owner's runs and updates made",
            thread.history,
            len(checkpoints),
            subject | thread.lineage,
            history,
            key=subject,
        ):
            thread.history = len(checkpoints)
        for entry in history.json() or []:
            self.check_seen_entries(owner, (entry or {}).get("values"), thread, history)
        run_ids = {run.get("run_id") for run in (runs.json() or []) if isinstance(run, dict)}
        if not thread.runs_known:
            thread.runs = {run_id: thread.runs.get(run_id) or RunModel(run_id, thread.thread_id, owner.identity, "", "echo") for run_id in run_ids}
            thread.maybe_gone_runs.clear()
            thread.runs_known = True
        unexpected = run_ids - set(thread.runs) - thread.maybe_gone_runs
        lost = set(thread.runs) - run_ids - thread.maybe_gone_runs
        self.check(
            not unexpected,
            "foreign-run",
            "runs nobody of the owner created are on the thread",
            sorted(thread.runs),
            sorted(unexpected),
            subject | unexpected,
            runs,
        )
        self.check(not lost, "run-lost", "runs of the owner vanished from the thread", sorted(thread.runs), sorted(run_ids), subject | lost, runs)
        if unexpected or lost:
            thread.runs_known = False
            thread.runs = {run_id: thread.runs.get(run_id) or RunModel(run_id, thread.thread_id, owner.identity, "", "echo") for run_id in run_ids}
        return {
            **{key: body.get(key) for key in ("metadata", "values", "updated_at", "state_updated_at", "error", "ttl")},
            "status": body.get("status"),
            "checkpoint": thread.checkpoint_id,
            "history": checkpoints,
            "runs": sorted((run.get("run_id"), run.get("status")) for run in (runs.json() or []) if isinstance(run, dict)),
        }

    def raw_thread_reading(self, thread: ThreadModel) -> dict:
        owner = User(thread.owner)
        path = f"/threads/{thread.thread_id}"
        record = self.api.call(owner, "GET", path, params={"include": "ttl"})
        if record.status != 200:
            return {"status": record.status}
        body = record.json() or {}
        state = self.api.call(owner, "GET", f"{path}/state").json() or {}
        history = self.api.call(owner, "POST", f"{path}/history", json_body={"limit": 1000}).json() or []
        runs = self.api.call(owner, "GET", f"{path}/runs", params={"limit": 1000}).json() or []
        return {
            **{key: body.get(key) for key in ("metadata", "values", "updated_at", "state_updated_at", "error", "ttl")},
            "status": body.get("status"),
            "checkpoint": ((state.get("checkpoint") or {}) if isinstance(state, dict) else {}).get("checkpoint_id"),
            "history": [((entry.get("checkpoint") or {}).get("checkpoint_id")) for entry in history if isinstance(entry, dict)]
            if isinstance(history, list)
            else history,
            "runs": sorted((run.get("run_id"), run.get("status")) for run in runs if isinstance(run, dict)) if isinstance(runs, list) else runs,
        }

    def thread_lost(self, thread: ThreadModel, reply: Reply) -> None:
        """The owner cannot read a thread the model says is theirs: reported, then dropped."""
        self.violation(
            "thread-lost", f"{thread.owner}'s thread {thread.thread_id} vanished", "the owner reads it (200)", reply.brief(), {thread.thread_id}, reply
        )
        self.model.drop_thread(thread.thread_id, only=thread)

    def resync(self, thread: ThreadModel, reading: dict) -> None:
        """After a divergence was reported: learn the thread again at the owner's next read
        (or drop it if it is gone), so that one bug is reported once, not at every reading."""
        if reading.get("status") == 404:
            self.model.drop_thread(thread.thread_id, only=thread)
            return
        thread.metadata = None
        thread.history = None
        thread.runs_known = False

    def check_seen_entries(self, owner: User, values: Any, thread: ThreadModel, reply: Reply) -> None:
        """Every run recorded in a thread's values ran as its owner, on this thread (or one it
        was copied from)."""
        entries = values.get("seen") or [] if isinstance(values, dict) else []
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            identity_ok = entry.get("user_id") == owner.identity and entry.get("auth_user_id") == owner.identity
            self.check(
                identity_ok,
                "foreign-history",
                f"{owner.identity}'s thread holds a run that ran as someone else",
                owner.identity,
                entry,
                {thread.thread_id},
                reply,
                key={thread.thread_id},
            )
            self.check(
                entry.get("thread_id") in thread.lineage,
                "foreign-history",
                f"{owner.identity}'s thread holds a run of another thread",
                sorted(thread.lineage),
                entry,
                {thread.thread_id, str(entry.get("thread_id"))},
                reply,
                key={thread.thread_id},
            )

    def assistant_reading(self, assistant: AssistantModel, check: bool = True) -> dict:
        owner = User(assistant.owner)
        subject = {assistant.assistant_id}
        reply = self.api.call(owner, "GET", f"/assistants/{assistant.assistant_id}")
        if reply.status != 200 and not check:
            return {"status": reply.status}
        if not self.expect_status(reply, 200, f"{owner.identity} reads their own assistant", subject):
            return {"status": reply.status}
        body = reply.json() or {}
        seen = {key: body.get(key) for key in ("metadata", "version", "name", "graph_id", "updated_at", "config")}
        if not check:
            return seen
        expected = {"metadata": assistant.current["metadata"], "version": assistant.version, "name": assistant.current["name"], "graph_id": assistant.graph_id}
        self.check(
            {key: seen[key] for key in expected} == expected,
            "assistant",
            "an assistant differs from what its owner wrote",
            expected,
            {key: seen[key] for key in expected},
            subject,
            reply,
        )
        return seen

    def cron_reading(self, cron: CronModel, check: bool = True) -> dict:
        owner = User(cron.owner)
        subject = {cron.cron_id}
        reply = self.api.call(owner, "GET", f"/runs/crons/{cron.cron_id}")
        if reply.status != 200 and not check:
            return {"status": reply.status}
        if not self.expect_status(reply, 200, f"{owner.identity} reads their own cron", subject):
            return {"status": reply.status}
        body = reply.json() or {}
        if check:
            self.check_cron_body(owner, body, cron, reply)
        return {key: body.get(key) for key in ("metadata", "schedule", "enabled", "payload", "updated_at", "next_run_date", "thread_id", "user_id")}

    def check_cron_body(self, owner: User, body: dict, cron: CronModel, reply: Reply) -> None:
        subject = {cron.cron_id}
        self.check(
            body.get("user_id") == owner.identity, "cron-owner", "a cron's user_id is not its creator", owner.identity, body.get("user_id"), subject, reply
        )
        self.check(
            body.get("metadata") == cron.metadata,
            "cron-owner",
            "a cron's metadata differs from what its creator wrote",
            cron.metadata,
            body.get("metadata"),
            subject,
            reply,
        )
        payload_metadata = (body.get("payload") or {}).get("metadata")
        if isinstance(payload_metadata, dict):
            self.check(
                payload_metadata.get("owner") == owner.identity,
                "cron-owner",
                "a cron's payload.metadata.owner is not its creator",
                owner.identity,
                payload_metadata.get("owner"),
                subject,
                reply,
            )
        self.check(
            body.get("schedule") == cron.schedule and body.get("enabled") == cron.enabled,
            "cron",
            "a cron's schedule differs from what its creator set",
            (cron.schedule, cron.enabled),
            (body.get("schedule"), body.get("enabled")),
            subject,
            reply,
        )

    def store_reading(self, identity: str, check: bool = True) -> dict:
        """The owner's whole store (`namespace_prefix: [identity]`), checked against the model."""
        if "." in identity:
            return {}
        owner = User(identity)
        reply = self.api.call(owner, "POST", "/store/items/search", json_body={"namespace_prefix": [identity], "limit": 1000})
        if not self.expect_status(reply, 200, f"{identity} searches their own store", set()):
            return {"status": reply.status}
        found = {(tuple(item["namespace"]), item["key"]): item["value"] for item in (reply.json() or {}).get("items", [])}
        expected = self.model.store_items([identity])
        relearn = identity in self.model.store_unknown
        self.model.store_unknown.discard(identity)
        if check and (relearn or not self.compare_items(expected, found, f"{identity}'s store", reply)):
            for item in expected:
                self.model.store.pop(item, None)
            self.model.store.update(found)  # reported once; learned from here on
        return {f"{'/'.join(namespace)}:{key}": value for (namespace, key), value in found.items()}

    def compare_items(self, expected: dict, found: dict, what: str, reply: Reply) -> bool:
        unexpected = {item: value for item, value in found.items() if expected.get(item) != value}
        missing = {item: value for item, value in expected.items() if item not in found}
        subject = {f"store:{'/'.join(namespace)}:{key}" for namespace, key in [*unexpected, *missing]}
        self.check(
            not unexpected,
            "store",
            f"{what} holds items its owner did not write",
            {f"{'/'.join(n)}:{k}": expected.get((n, k)) for n, k in unexpected},
            {f"{'/'.join(n)}:{k}": v for (n, k), v in unexpected.items()},
            subject,
            reply,
        )
        self.check(not missing, "store-lost", f"{what} lost items", {f"{'/'.join(n)}:{k}": v for (n, k), v in missing.items()}, "absent", subject, reply)
        return not unexpected and not missing

    # --- guards: nothing changes behind an owner's back -------------------------------------

    @contextlib.contextmanager
    def guard(
        self,
        cause: str,
        *,
        actor: User | None = None,
        threads: tuple | list = (),
        assistants: tuple | list = (),
        crons: tuple | list = (),
        stores: tuple | list = (),
    ) -> Iterator[None]:
        """The owners read the given resources before and after the block: both readings must
        agree (`cause` says what the intruder did)."""
        threads = list({thread.thread_id: thread for thread in threads if thread is not None}.values())
        assistants = list({a.assistant_id: a for a in assistants if a is not None}.values())
        crons = list({c.cron_id: c for c in crons if c is not None}.values())
        stores = sorted(set(stores) - {None})
        readings = [
            *(
                (
                    t.owner,
                    f"{t.owner}'s thread {t.thread_id}",
                    {t.thread_id},
                    lambda check, t=t: self.thread_reading(t, check),
                    lambda later, t=t: self.resync(t, later),
                )
                for t in threads
            ),
            *(
                (a.owner, f"{a.owner}'s assistant {a.assistant_id}", {a.assistant_id}, lambda check, a=a: self.assistant_reading(a, check), None)
                for a in assistants
            ),
            *((c.owner, f"{c.owner}'s cron {c.cron_id}", {c.cron_id}, lambda check, c=c: self.cron_reading(c, check), None) for c in crons),
            *((owner, f"{owner}'s store", {f"store:{owner}"}, lambda check, owner=owner: self.store_reading(owner, check), None) for owner in stores),
        ]
        before = [reading[3](True) for reading in readings]
        yield
        for (owner, what, subject, read, forget), earlier in zip(readings, before):
            later = read(False)
            if later != earlier:
                was, now = diff(earlier, later)
                own = actor is not None and owner == actor.identity
                self.violation("refused-but-changed" if own else "changed-by-other", f"{what} changed after {cause}", was, now, subject)
                if forget is not None:
                    forget(later)

    # --- runs: bodies and outputs -----------------------------------------------------------

    def pick_run_assistant(self, actor: User, background: bool) -> tuple[str, str, bool, str | None]:
        """(assistant_id as sent, the graph it runs, whether the actor may use it, its UUID).
        Background runs stay on echo-like graphs (echo, factory: no store); one on the actor's own assistant is cancelled if
        the actor deletes that assistant before it is joined (`Model.drop_assistant`)."""
        echo = system_assistant_id("echo")
        factory = ("factory", "factory", True, system_assistant_id("factory"))
        options: list[tuple[float, tuple[str, str, bool, str | None]]] = [(3, ("echo", "echo", True, echo)), (1, (echo, "echo", True, echo)), (2, factory)]
        if not background:
            options.append((2, ("memory", "memory", True, system_assistant_id("memory"))))
            public = self.model.public
            options.append((1, (public.assistant_id, public.graph_id, public.exists, public.assistant_id)))
        mine = [a for a in self.model.assistants_of(actor.identity) if not a.public and (not background or a.graph_id in ("echo", "factory"))]
        if mine:
            own = self.rng.choice(mine)
            options.append((2, (own.assistant_id, own.graph_id, True, own.assistant_id)))
        theirs = [a for a in self.model.assistants.values() if a.owner != actor.identity and not a.public]
        if theirs:
            foreign = self.rng.choice(theirs)
            options.append((1, (foreign.assistant_id, foreign.graph_id, False, foreign.assistant_id)))
        options.append((0.3, (self.new_id(), "echo", False, None)))
        weights, choices = zip(*options)
        return self.rng.choices(choices, weights)[0]

    def pick_forgeries(self, stateful: bool) -> list[str]:
        return [name for name in FORGERIES if self.chance(0.12) and (stateful or name != "checkpoint_id")]

    def forged_headers(self, actor: User, forged: list[str], victim: ThreadModel | None) -> dict[str, str]:
        """Request headers claiming another identity and thread (the `headers` forgery): with
        `http.configurable_headers` including every header, none may reach the server's keys."""
        if "headers" not in forged:
            return {}
        someone_else = self.other(actor).identity
        headers = {"user_id": someone_else, "langgraph_auth_user_id": someone_else, "Langgraph_Auth_User": someone_else, "x-owner": someone_else}
        if victim is not None:
            headers["thread_id"] = victim.thread_id
        return headers

    def victims_for(self, actor: User, forged: list[str]) -> list[ThreadModel]:
        if not {"thread_id", "checkpoint", "checkpoint_id", "headers"} & set(forged):
            return []
        victim = self.pick_victim(actor)
        return [victim] if victim else []

    def run_body(
        self,
        actor: User,
        assistant: str,
        graph: str,
        canary: str,
        *,
        forged: list[str],
        victim: ThreadModel | None,
        stateful: bool,
        sleep: float | None = None,
        key: str | None = None,
    ) -> dict:
        """A run request carrying the actor's canary, with the chosen forgeries."""
        run_input: dict[str, Any] = {"messages": [{"role": "human", "content": canary}]}
        if graph == "memory":
            run_input["key"] = key
        if sleep:
            run_input["sleep"] = sleep
        body: dict[str, Any] = {"assistant_id": assistant, "input": run_input, "metadata": {"tag": canary}}
        someone_else = self.other(actor).identity
        claims: dict[str, Any] = {}
        if "user_id" in forged or "context" in forged:
            claims["user_id"] = someone_else
        if "auth_user_id" in forged:
            claims["langgraph_auth_user_id"] = someone_else
        if "thread_id" in forged and victim is not None:
            claims["thread_id"] = victim.thread_id
        if claims:
            if "context" in forged:
                body["context"] = claims
            else:
                body["config"] = {"configurable": claims}
        if "checkpoint" in forged and victim is not None:
            body["checkpoint"] = {"thread_id": victim.thread_id}
        if "checkpoint_id" in forged and stateful and victim is not None and victim.checkpoint_id:
            body["checkpoint_id"] = victim.checkpoint_id
        if "owner" in forged:
            body["metadata"]["owner"] = someone_else
        return body

    def record_memory(self, identity: str, key: str | None, canary: str | None) -> None:
        """What a `memory` run of `identity` writes (nothing, for a label with a dot)."""
        if key is None or canary is None or "." in identity:
            return
        self.model.store[((identity, "mem"), key)] = {"text": canary, "via": "abatch"}
        self.model.store[((identity, "mem"), f"{key}-aput")] = {"text": canary, "via": "aput"}

    def check_run_values(
        self,
        actor: User,
        values: Any,
        *,
        thread_id: str | None,
        canary: str,
        graph: str,
        reply: Reply,
        run_id: str | None = None,
        lineage: set[str] | None = None,
        forbidden: set[str] | frozenset[str] = frozenset(),
        memory: tuple[str, str] | None = None,
    ) -> bool:
        """A run's final values: its input is there, its graph ran as the actor on the run's
        own thread, and (memory graph) it met only the actor's store items. False when the
        run did not run where it should (the caller's model of the thread is then stale)."""
        subject = {thread_id, canary, run_id} - {None}
        if graph == "memory" and not (
            isinstance(values, dict) and any(entry.get("run_id") == run_id for entry in values.get("seen") or [] if isinstance(entry, dict))
        ):
            self.model.store_unknown.add(actor.identity)  # what the run wrote cannot be told
        if not isinstance(values, dict) or "__error__" in values or "__interrupt__" in values:
            self.violation("run-failed", "a run did not end with its values", "the final values", str(values)[:400], subject, reply)
            return False
        texts = message_texts(values)
        self.check(canary in texts, "run-output", "a run's values lack its input", canary, texts[-4:], subject, reply)
        seen = [entry for entry in values.get("seen") or [] if isinstance(entry, dict)]
        mine = [entry for entry in seen if entry.get("run_id") == run_id] if run_id else seen[-1:]
        if not self.check(bool(mine), "run-output", "a run's values lack its own record", f"an entry for run {run_id}", seen[-3:], subject, reply):
            return False
        entry = mine[-1]
        for claim in ("user_id", "auth_user_id"):
            name = "langgraph_auth_user_id" if claim == "auth_user_id" else "user_id"
            self.check(
                entry.get(claim) == actor.identity,
                "run-identity",
                f"the graph saw configurable.{name}={entry.get(claim)!r} in {actor.identity}'s run",
                actor.identity,
                entry,
                subject,
                reply,
            )
        if graph == "factory":
            self.check(
                entry.get("built_for") == actor.identity and entry.get("access") == "threads.create_run",
                "factory-identity",
                f"the factory built {actor.identity}'s run for {entry.get('built_for')!r} ({entry.get('access')})",
                {"built_for": actor.identity, "access": "threads.create_run"},
                entry,
                subject,
                reply,
            )
        in_place = thread_id is None or entry.get("thread_id") == thread_id
        if thread_id is not None:
            self.check(
                in_place,
                "run-thread",
                f"the graph saw configurable.thread_id={entry.get('thread_id')!r} in a run on {thread_id}",
                thread_id,
                entry,
                subject | {str(entry.get("thread_id"))},
                reply,
            )
        else:
            self.check(
                entry.get("thread_id") not in forbidden,
                "run-thread",
                "a stateless run ran on an existing thread",
                "its own temporary thread",
                entry,
                subject | {str(entry.get("thread_id"))},
                reply,
            )
        if lineage is not None:
            for other in seen:
                identity_ok = other.get("user_id") == actor.identity and other.get("auth_user_id") == actor.identity
                self.check(
                    identity_ok and other.get("thread_id") in lineage,
                    "foreign-history",
                    f"{actor.identity}'s thread holds a run of someone else or of another thread",
                    sorted(lineage),
                    other,
                    subject | {str(other.get("thread_id"))},
                    reply,
                )
        if graph == "memory":
            self.record_memory_run(actor, values, entry, memory, reply)
        return in_place

    def record_memory_run(self, actor: User, values: dict, entry: dict, memory: tuple[str, str] | None, reply: Reply) -> None:
        """The store after a `memory` run (its writes), then what the graph found. A run that
        ran as someone else wrote where the model cannot follow: both stores are learned again."""
        ran_as = entry.get("user_id")
        if ran_as != actor.identity:
            self.model.store_unknown.update({actor.identity, str(ran_as), str(ran_as).split(".")[0]})
            return
        if "." in actor.identity:
            self.check_memories(actor, values, reply)  # must fail, whatever the model knows
            return
        if memory is not None:
            self.record_memory(actor.identity, *memory)
        if actor.identity not in self.model.store_unknown:
            self.check_memories(actor, values, reply)

    def check_memories(self, actor: User, values: dict, reply: Reply) -> None:
        errors = values.get("store_errors") or {}
        found = {(tuple(item.get("namespace") or ()), item.get("key")): item.get("value") for item in values.get("memories") or [] if isinstance(item, dict)}
        subject = {f"store:{actor.identity}"}
        if "." in actor.identity:
            if not self.check(
                "abatch" in errors and "aput" in errors,
                "graph-store-label",
                f"{actor.identity}'s graph wrote a namespace whose first label has a dot",
                "an error from store.abatch and from store.aput",
                errors or "no error",
                subject,
                reply,
            ):
                self.model.store_unknown.add(actor.identity.split(".")[0])  # its items landed in that user's namespace
            self.check(not found, "graph-store-label", f"{actor.identity}'s graph found items under a label with a dot", "nothing", found, subject, reply)
            return
        self.check(not errors, "graph-store", f"{actor.identity}'s graph could not use its own namespace", "no errors", errors, subject, reply)
        self.compare_items(self.model.store_items([actor.identity]), found, f"the store {actor.identity}'s graph searched", reply)

    def check_run_record(self, actor: User, run: Any, thread_id: str | None, reply: Reply) -> None:
        """A stored run (background answers, `GET .../runs/{id}`) holds the real identity and thread."""
        if not self.check(isinstance(run, dict), "run-output", "a run answer is not a Run", "a Run object", str(run)[:200], {thread_id or ""}, reply):
            return
        configurable = ((run.get("kwargs") or {}).get("config") or {}).get("configurable") or {}
        subject = {thread_id, run.get("run_id")} - {None}
        for key in ("user_id", "langgraph_auth_user_id"):
            self.check(
                configurable.get(key) == actor.identity,
                "run-identity",
                f"a run was stored with configurable.{key}={configurable.get(key)!r}",
                actor.identity,
                configurable.get(key),
                subject,
                reply,
            )
        if thread_id is not None:
            self.check(
                run.get("thread_id") == thread_id and configurable.get("thread_id") == thread_id,
                "run-thread",
                "a run was stored for another thread",
                thread_id,
                (run.get("thread_id"), configurable.get("thread_id")),
                subject,
                reply,
            )

    def record_thread_run(self, actor: User, thread: ThreadModel, reply: Reply, mode: str, plan: dict) -> None:
        """The model after a run the actor made on their own thread, and its output checks."""
        if thread.metadata is not None:
            thread.metadata.update({"graph_id": plan["graph"], "assistant_id": plan["resolved"]})
        uncertain = bool({"checkpoint_id"} & set(plan["forged"]))
        if mode == "background":
            run = reply.json() or {}
            self.check_run_record(actor, run, thread.thread_id, reply)
            record = RunModel(str(run.get("run_id")), thread.thread_id, actor.identity, plan["canary"], plan["graph"], assistant=plan["resolved"])
            thread.runs[record.run_id] = record
            thread.active.append(record)
            if uncertain:
                thread.history = None
            return
        values, run_id = self.run_output(reply, mode)
        if run_id:
            thread.runs[run_id] = RunModel(run_id, thread.thread_id, actor.identity, plan["canary"], plan["graph"])
        tid, _ = content_location(reply)
        if mode == "wait":
            self.check(tid == thread.thread_id, "run-thread", "a run's Content-Location names another thread", thread.thread_id, tid, {thread.thread_id}, reply)
        in_place = self.check_run_values(
            actor,
            values,
            thread_id=thread.thread_id,
            canary=plan["canary"],
            graph=plan["graph"],
            reply=reply,
            run_id=run_id,
            lineage=thread.lineage,
            memory=(plan["key"], plan["canary"]),
        )
        if uncertain or not in_place:
            thread.history = None
        elif thread.history is not None:
            thread.history += HISTORY_PER_RUN

    def run_output(self, reply: Reply, mode: str) -> tuple[Any, str | None]:
        """(final values, run id) of a `/wait` or `/stream` answer."""
        if mode == "wait":
            return reply.json(), content_location(reply)[1]
        events = reply.events()
        for event in events:
            if event.event == "error":
                self.violation("run-failed", "a run stream ended with an error", "no error event", event.data, set(), reply)
        started = [event.data for event in events if event.event == "metadata" and isinstance(event.data, dict) and "run_id" in event.data]
        return last_values(events), started[0]["run_id"] if started else content_location(reply)[1]

    # --- operations: runs ------------------------------------------------------------------

    @operation("runs.on_thread", 10)
    def op_run_on_thread(self) -> None:
        """A run on a thread (wait, stream or background): own, another user's, or missing
        (`if_not_exists: create` makes it the actor's), with random forgeries."""
        actor = self.actor()
        mode = self.rng.choices(["wait", "stream", "background"], [5, 3, 2])[0]
        relation, thread, thread_id = self.pick_thread(actor, usable=lambda t: t.run_count() < RUNS_PER_THREAD)
        assistant, graph, usable, resolved = self.pick_run_assistant(actor, background=mode == "background")
        forged = self.pick_forgeries(stateful=True)
        victims = self.victims_for(actor, forged)
        create = relation is Relation.MISSING and self.chance(0.6)
        plan = {"graph": graph, "resolved": resolved, "forged": forged, "canary": self.canaries.new(actor.identity), "key": self.rng.choice(STORE_KEYS)}
        guarded = victims + ([thread] if relation is Relation.FOREIGN else [])
        if relation is Relation.OWN and thread is not None:
            # Earlier background runs are joined (and checked) first: a join answers the
            # thread's latest values, which a new run (from another checkpoint) may replace.
            self.settle(thread)
        with self.guard(f"{actor.identity}'s run on {thread_id} (forged {forged})", threads=guarded):
            body = self.run_body(
                actor,
                assistant,
                graph,
                plan["canary"],
                forged=forged,
                victim=victims[0] if victims else None,
                stateful=True,
                sleep=0.05 if mode == "background" and self.chance(0.3) else None,
                key=plan["key"],
            )
            if create:
                body["if_not_exists"] = "create"
            suffix = {"wait": "/wait", "stream": "/stream", "background": ""}[mode]
            headers = self.forged_headers(actor, forged, victims[0] if victims else None)
            reply = self.api.call(actor, "POST", f"/threads/{thread_id}/runs{suffix}", json_body=body, headers=headers)
            allowed = usable and (relation is Relation.OWN or create)
            subject = {thread_id, plan["canary"]}
            if not allowed:
                self.expect_status(reply, 404, f"a run on {relation.value} thread / assistant {assistant} must be refused", subject)
                return
            if not self.expect_status(reply, 200, f"{actor.identity}'s run on their {relation.value} thread", subject):
                return
            if relation is Relation.MISSING:
                thread = self.model.add_thread(ThreadModel(thread_id, actor.identity, metadata=None))
            assert thread is not None
            self.record_thread_run(actor, thread, reply, mode, plan)
            if victims and mode == "background":
                self.settle(thread)

    @operation("runs.stateless", 6)
    def op_run_stateless(self) -> None:
        """A stateless run (wait, stream, background, batch), kept or deleted, with forgeries
        that point at another user's thread."""
        actor = self.actor()
        mode = self.rng.choices(["wait", "stream", "background", "batch"], [4, 2, 2, 1])[0]
        background = mode in ("background", "batch")
        keep = self.chance(0.5)
        assistant, graph, usable, resolved = self.pick_run_assistant(actor, background=background)
        forged = self.pick_forgeries(stateful=False)
        victims = self.victims_for(actor, forged)
        forbidden = {t.thread_id for t in self.model.threads.values() if t.owner != actor.identity}
        with self.guard(f"{actor.identity}'s stateless run (forged {forged})", threads=victims):
            canaries = [self.canaries.new(actor.identity) for _ in range(self.rng.randint(1, 3) if mode == "batch" else 1)]
            key = self.rng.choice(STORE_KEYS)
            bodies = []
            for canary in canaries:
                body = self.run_body(actor, assistant, graph, canary, forged=forged, victim=victims[0] if victims else None, stateful=False, key=key)
                if keep or self.chance(0.5):
                    body["on_completion"] = "keep" if keep else "delete"
                bodies.append(body)
            path = {"wait": "/runs/wait", "stream": "/runs/stream", "background": "/runs", "batch": "/runs/batch"}[mode]
            headers = self.forged_headers(actor, forged, victims[0] if victims else None)
            reply = self.api.call(actor, "POST", path, json_body=bodies if mode == "batch" else bodies[0], headers=headers)
            subject = set(canaries)
            if not usable:
                self.expect_status(reply, 404, f"a stateless run on assistant {assistant} must be refused", subject)
                return
            if not self.expect_status(reply, 200, f"{actor.identity}'s stateless run", subject):
                return
            if background:
                runs = reply.json() if mode == "batch" else [reply.json()]
                for run, canary in zip(runs if isinstance(runs, list) else [], canaries):
                    self.record_stateless_background(actor, run, canary, keep, reply, victims, resolved)
                return
            values, run_id = self.run_output(reply, mode)
            thread_id = content_location(reply)[0] if mode == "wait" else None
            self.check_run_values(
                actor, values, thread_id=thread_id, canary=canaries[0], graph=graph, reply=reply, run_id=run_id, forbidden=forbidden, memory=(key, canaries[0])
            )
            temporary = thread_id or (self.find_kept_thread(actor, canaries[0]) if keep else None)
            if temporary and temporary not in self.model.threads and temporary not in forbidden:
                self.after_stateless(actor, temporary, keep, run_id, canaries[0], graph)

    def find_kept_thread(self, actor: User, canary: str) -> str | None:
        """The thread a kept stateless stream run made (its answer does not name it): the one
        whose metadata carries the run's tag."""
        reply = self.api.call(actor, "POST", "/threads/search", json_body={"metadata": {"tag": canary}, "limit": 10})
        rows = reply.json() if reply.status == 200 and isinstance(reply.json(), list) else []
        self.check(
            len(rows) == 1,
            "stateless-thread",
            "a kept stateless run's thread is not its creator's (or not there)",
            "exactly one thread tagged with the run's canary",
            [row.get("thread_id") for row in rows if isinstance(row, dict)],
            {canary},
            reply,
        )
        return str(rows[0].get("thread_id")) if len(rows) == 1 and isinstance(rows[0], dict) else None

    def after_stateless(self, actor: User, thread_id: str, keep: bool, run_id: str | None, canary: str, graph: str) -> None:
        """A finished stateless run's thread: the actor's when kept, gone otherwise."""
        if keep:
            thread = self.model.add_thread(ThreadModel(thread_id, actor.identity, metadata=None, history=HISTORY_PER_RUN))
            if run_id:
                thread.runs[run_id] = RunModel(run_id, thread_id, actor.identity, canary, graph, stateless=True)
        else:
            self.model.gone_threads.append(thread_id)
        if self.chance(0.3):
            reply = self.api.call(actor, "GET", f"/threads/{thread_id}")
            self.expect_status(
                reply, 200 if keep else 404, f"a stateless run's thread after the run (on_completion={'keep' if keep else 'delete'})", {thread_id}
            )
            if keep and reply.status == 200:
                owner = ((reply.json() or {}).get("metadata") or {}).get("owner")
                self.check(owner == actor.identity, "owner", "a kept stateless thread is not its creator's", actor.identity, owner, {thread_id}, reply)

    def record_stateless_background(
        self, actor: User, run: Any, canary: str, keep: bool, reply: Reply, victims: list[ThreadModel], assistant: str | None
    ) -> None:
        self.check_run_record(actor, run, None, reply)
        if not isinstance(run, dict) or not run.get("thread_id"):
            return
        thread_id = str(run["thread_id"])
        if thread_id in self.model.threads or any(thread_id == t.thread_id for t in victims):
            self.violation("run-thread", "a stateless run was created on an existing thread", "a new temporary thread", thread_id, {thread_id}, reply)
            return
        record = RunModel(str(run.get("run_id")), thread_id, actor.identity, canary, "echo", stateless=True, keep=keep, assistant=assistant)
        if keep:
            thread = self.model.add_thread(ThreadModel(thread_id, actor.identity, metadata=None))
            thread.runs[record.run_id] = record
            thread.active.append(record)
            if victims:
                self.settle(thread)
        else:
            self.model.transient[thread_id] = record
            if victims:
                self.settle_run(record)

    @operation("runs.webhook", 1)
    def op_run_webhook(self) -> None:
        """A webhook given as a path on this server or a loopback URL is refused (422)."""
        actor = self.actor()
        victim = self.pick_victim(actor)
        target = victim.thread_id if victim else self.new_id()
        hooks = [
            f"/threads/{target}/runs",
            "/runs/wait",
            f"http://127.0.0.1:{self.port}/threads/{target}/runs",
            f"http://localhost:{self.port}/threads/{target}/runs/wait",
            f"http://LOCALHOST:{self.port}/ok",
            f"http://[::1]:{self.port}/runs",
            f"http://127.0.0.2:{self.port}/runs",
            f"http://127.1:{self.port}/runs",
            f"http://2130706433:{self.port}/runs",
            f"http://0.0.0.0:{self.port}/runs",
        ]
        hook = self.rng.choice(hooks)
        mine = self.model.threads_of(actor.identity, lambda t: t.run_count() < RUNS_PER_THREAD)
        thread = self.rng.choice(mine) if mine and self.chance(0.5) else None
        path = f"/threads/{thread.thread_id}/runs/wait" if thread else self.rng.choice(["/runs", "/runs/wait", "/runs/stream"])
        canary = self.canaries.new(actor.identity)
        with self.guard(f"{actor.identity}'s run with webhook {hook}", actor=actor, threads=[t for t in (victim, thread) if t]):
            body = self.run_body(actor, "echo", "echo", canary, forged=[], victim=None, stateful=thread is not None)
            body["webhook"] = hook
            reply = self.api.call(actor, "POST", path, json_body=body)
            self.expect_status(reply, 422, f"a run with the webhook {hook} must be refused", {target, canary})

    @operation("runs.list", 2)
    def op_runs_list(self) -> None:
        actor = self.actor()
        relation, thread, thread_id = self.pick_thread(actor)
        with self.guard(f"{actor.identity} listing the runs of {thread_id}", threads=[thread] if relation is Relation.FOREIGN else []):
            reply = self.api.call(actor, "GET", f"/threads/{thread_id}/runs", params={"limit": 1000})
            if relation is not Relation.OWN:
                self.expect_status(reply, 404, f"listing the runs of a {relation.value} thread", {thread_id})
                return
            if self.expect_status(reply, 200, "listing the runs of one's own thread", {thread_id}):
                for run in reply.json() or []:
                    self.check(
                        isinstance(run, dict) and run.get("thread_id") == thread_id,
                        "foreign-run",
                        "a thread's run list holds another thread's run",
                        thread_id,
                        str(run)[:300],
                        {thread_id},
                        reply,
                    )
                    if isinstance(run, dict) and run.get("run_id") in (thread.runs if thread else {}):
                        self.check_run_record(actor, run, thread_id, reply)

    @operation("runs.get", 2)
    def op_runs_get(self) -> None:
        """One run: of an own thread, of another user's thread, or another thread's run under
        one's own thread id."""
        actor = self.actor()
        relation, thread, thread_id = self.pick_thread(actor, usable=lambda t: bool(t.runs))
        runs = [run for t in self.model.threads.values() for run in t.runs.values() if t.thread_id != thread_id]
        if thread is not None and thread.runs and self.chance(0.75):
            run_id, crossed = self.rng.choice(list(thread.runs)), False
        elif runs:
            run_id, crossed = self.rng.choice(runs).run_id, True
        else:
            run_id, crossed = self.new_id(), True
        with self.guard(f"{actor.identity} reading run {run_id} of {thread_id}", threads=[thread] if relation is Relation.FOREIGN else []):
            reply = self.api.call(actor, "GET", f"/threads/{thread_id}/runs/{run_id}")
            if relation is not Relation.OWN or crossed or run_id in thread.maybe_gone_runs:
                if relation is not Relation.OWN or crossed:
                    self.expect_status(reply, 404, f"reading a run through a {relation.value} thread", {thread_id, run_id})
                return
            if self.expect_status(reply, 200, "reading a run of one's own thread", {thread_id, run_id}):
                self.check_run_record(actor, reply.json(), thread_id, reply)

    @operation("runs.join", 2)
    def op_runs_join(self) -> None:
        actor = self.actor()
        relation, thread, thread_id = self.pick_thread(actor, usable=lambda t: bool(t.runs))
        run_id = self.rng.choice(list(thread.runs)) if thread is not None and thread.runs else self.new_id()
        stream = self.chance(0.4)
        with self.guard(f"{actor.identity} joining run {run_id} of {thread_id}", threads=[thread] if relation is Relation.FOREIGN else []):
            if relation is Relation.OWN:
                self.settle(thread)
            path = f"/threads/{thread_id}/runs/{run_id}/{'stream' if stream else 'join'}"
            reply = self.api.call(actor, "GET", path)
            subject = {thread_id, run_id}
            if relation is Relation.OWN:
                if self.expect_status(reply, 200, "joining one's own run", subject) and not stream and run_id not in thread.maybe_gone_runs:
                    values = reply.json()
                    if isinstance(values, dict) and "seen" in values:
                        self.check_seen_entries(actor, values, thread, reply)
                return
            if stream and reply.status == 200:
                errors = [event for event in reply.events() if event.event == "error"]
                others = [event for event in reply.events() if event.event != "error"]
                self.check(
                    reply.is_sse and bool(errors) and not others,
                    "not-denied",
                    "joining the stream of another user's run",
                    "an error event (404)",
                    reply.brief(),
                    subject,
                    reply,
                )
            else:
                self.expect_status(reply, 404, f"joining a run of a {relation.value} thread", subject)

    @operation("runs.cancel", 1.5)
    def op_runs_cancel(self) -> None:
        """Cancelling: one's own fresh run (it ends interrupted or rolled back), or another
        user's active run (404, and it ends normally)."""
        actor = self.actor()
        mine = self.model.threads_of(actor.identity, lambda t: t.run_count() < RUNS_PER_THREAD)
        if self.chance(0.5) or not mine:
            self.cancel_foreign(actor)
            return
        thread = self.rng.choice(mine)
        run = self.start_background(actor, thread, sleep=1.0)
        if run is None:
            return
        action = self.rng.choice(["interrupt", "rollback"])
        reply = self.api.call(
            actor, "POST", f"/threads/{thread.thread_id}/runs/{run.run_id}/cancel", params={"action": action, "wait": self.rng.choice(["false", "true"])}
        )
        self.expect_status(reply, {200, 202, 404}, "cancelling one's own run", {thread.thread_id, run.run_id})
        run.cancelled = True
        if action == "rollback":
            thread.maybe_gone_runs.add(run.run_id)
        self.settle(thread)

    def cancel_foreign(self, actor: User) -> None:
        victim = self.pick_victim(actor)
        if victim is None:
            return
        run = self.start_background(User(victim.owner), victim, sleep=0.3)
        if run is None:
            return
        form = self.rng.choice(["one", "by-ids", "all"])
        with self.guard(f"{actor.identity} cancelling {victim.owner}'s run ({form})", threads=[victim]):
            if form == "one":
                reply = self.api.call(actor, "POST", f"/threads/{victim.thread_id}/runs/{run.run_id}/cancel")
                self.expect_status(reply, 404, "cancelling another user's run", {victim.thread_id, run.run_id})
            elif form == "by-ids":
                reply = self.api.call(actor, "POST", "/runs/cancel", json_body={"thread_id": victim.thread_id, "run_ids": [run.run_id]})
                self.expect_status(reply, 404, "cancelling another user's runs by id", {victim.thread_id, run.run_id})
            else:
                reply = self.api.call(actor, "POST", "/runs/cancel", json_body={"status": self.rng.choice(["all", "pending", "running"])})
                self.expect_status(reply, {204, 404}, "cancelling all of one's runs", {victim.thread_id, run.run_id})
                for thread in self.model.threads_of(actor.identity):
                    for own in thread.active:
                        own.cancelled = True
                for own in self.model.transient.values():
                    if own.owner == actor.identity:
                        own.cancelled = True

    def start_background(self, owner: User, thread: ThreadModel, sleep: float) -> RunModel | None:
        canary = self.canaries.new(owner.identity)
        body = self.run_body(owner, "echo", "echo", canary, forged=[], victim=None, stateful=True, sleep=sleep)
        reply = self.api.call(owner, "POST", f"/threads/{thread.thread_id}/runs", json_body=body)
        if not self.expect_status(reply, 200, f"{owner.identity} starts a run on their thread", {thread.thread_id}):
            return None
        plan = {"graph": "echo", "resolved": system_assistant_id("echo"), "forged": [], "canary": canary, "key": None}
        self.record_thread_run(owner, thread, reply, "background", plan)
        return thread.active[-1] if thread.active else None

    @operation("runs.delete", 1)
    def op_runs_delete(self) -> None:
        actor = self.actor()
        relation, thread, thread_id = self.pick_thread(actor, usable=lambda t: bool(t.runs))
        run_id = self.rng.choice(list(thread.runs)) if thread is not None and thread.runs else self.new_id()
        with self.guard(f"{actor.identity} deleting run {run_id} of {thread_id}", threads=[thread] if relation is Relation.FOREIGN else []):
            if relation is Relation.OWN:
                self.settle(thread)
            reply = self.api.call(actor, "DELETE", f"/threads/{thread_id}/runs/{run_id}")
            if relation is not Relation.OWN:
                self.expect_status(reply, 404, f"deleting a run of a {relation.value} thread", {thread_id, run_id})
                return
            self.expect_status(reply, {204, 404} if run_id in thread.maybe_gone_runs else 204, "deleting one's own finished run", {thread_id, run_id})
            thread.runs.pop(run_id, None)
            thread.maybe_gone_runs.discard(run_id)
            thread.history = None  # its checkpoints go with it

    @operation("runs.settle", 2)
    def op_runs_settle(self) -> None:
        busy = [t for t in self.model.threads.values() if t.active]
        if busy:
            self.settle(self.rng.choice(busy))
        elif self.model.transient:
            self.settle_run(self.rng.choice(list(self.model.transient.values())))

    # --- operations: threads ---------------------------------------------------------------

    def all_threads_of(self, identity: str) -> list[ThreadModel]:
        """Every live thread of a user, reserved ones included (searches return those too)."""
        return [thread for thread in self.model.threads.values() if thread.owner == identity]

    @operation("threads.create", 6)
    def op_threads_create(self) -> None:
        """Create: a new client-chosen id, a server id, one's own existing id (`if_exists`), or
        the id of a deleted thread; metadata may forge another owner or carry reserved keys."""
        actor = self.actor()
        mine = self.model.threads_of(actor.identity)
        if len(mine) >= Model.THREAD_CAP:
            idle = [thread for thread in mine if not thread.active]
            if idle:
                self.delete_own_thread(actor, self.rng.choice(idle))
            return
        canary = self.canaries.new(actor.identity)
        metadata: dict[str, Any] = {"tag": canary}
        if self.chance(0.3):
            metadata["owner"] = self.other(actor).identity
        if self.chance(0.25):
            metadata["graph_id"] = self.rng.choice(GRAPHS)
        if self.chance(0.1):
            metadata["assistant_id"] = self.new_id()  # reserved: dropped by the server
        body: dict[str, Any] = {"metadata": metadata}
        if_exists = self.rng.choice([None, "raise", "do_nothing"])
        if if_exists:
            body["if_exists"] = if_exists
        variant = self.rng.choices(["new", "server-id", "own-existing", "gone-id"], [5, 2, 1, 1])[0]
        if variant == "own-existing" and mine:
            existing = self.rng.choice(mine)
            body["thread_id"] = existing.thread_id
            reply = self.api.call(actor, "POST", "/threads", json_body=body)
            if if_exists == "do_nothing":
                if self.expect_status(reply, 200, "re-creating one's own thread with do_nothing", {existing.thread_id}) and existing.metadata is not None:
                    self.check(
                        (reply.json() or {}).get("metadata") == existing.metadata,
                        "metadata",
                        "do_nothing changed an existing thread",
                        existing.metadata,
                        (reply.json() or {}).get("metadata"),
                        {existing.thread_id},
                        reply,
                    )
            else:
                self.expect_status(reply, 409, "re-creating one's own thread", {existing.thread_id})
            return
        thread_id = {"new": self.new_id, "gone-id": self.missing_thread_id}.get(variant, lambda: None)()
        if thread_id:
            body["thread_id"] = thread_id
        reply = self.api.call(actor, "POST", "/threads", json_body=body)
        if not self.expect_status(reply, 200, f"creating a thread ({variant})", {thread_id or "", canary}):
            return
        created = reply.json() or {}
        new_id = str(created.get("thread_id"))
        expected = {**clean_metadata(metadata), "owner": actor.identity}
        self.check(thread_id is None or new_id == thread_id, "thread", "a created thread has another id than requested", thread_id, new_id, {new_id}, reply)
        self.check(
            created.get("metadata") == expected,
            "owner" if (created.get("metadata") or {}).get("owner") != actor.identity else "metadata",
            "a created thread's metadata",
            expected,
            created.get("metadata"),
            {new_id},
            reply,
        )
        self.check(created.get("values") in (None, {}), "fresh-thread", "a new thread already has values", None, created.get("values"), {new_id}, reply)
        thread = self.model.add_thread(ThreadModel(new_id, actor.identity, metadata=expected))
        if variant == "gone-id" and self.chance(0.5):
            self.check_empty_thread(actor, thread)

    def check_empty_thread(self, owner: User, thread: ThreadModel) -> None:
        """A thread nobody ran on yet: no values, no checkpoint, no history, no runs."""
        subject = {thread.thread_id}
        record = self.api.call(owner, "GET", f"/threads/{thread.thread_id}")
        if self.expect_status(record, 200, "reading one's fresh thread", subject):
            self.check(
                (record.json() or {}).get("values") in (None, {}),
                "fresh-thread",
                "a fresh thread shows values",
                None,
                (record.json() or {}).get("values"),
                subject,
                record,
            )
        state = self.api.call(owner, "GET", f"/threads/{thread.thread_id}/state")
        if self.expect_status(state, 200, "reading one's fresh thread's state", subject):
            body = state.json() or {}
            checkpoint_id = (body.get("checkpoint") or {}).get("checkpoint_id")
            self.check(
                body.get("values") in (None, {}) and checkpoint_id is None,
                "fresh-thread",
                "a fresh thread has a state",
                {"values": {}, "checkpoint_id": None},
                {"values": body.get("values"), "checkpoint": body.get("checkpoint")},
                subject,
                state,
            )
        self.thread_reading(thread)

    def delete_own_thread(self, actor: User, thread: ThreadModel) -> None:
        reply = self.api.call(actor, "DELETE", f"/threads/{thread.thread_id}")
        if self.expect_status(reply, 204, "deleting one's own thread", {thread.thread_id}):
            self.model.drop_thread(thread.thread_id)

    @operation("threads.create_taken", 2)
    def op_threads_create_taken(self) -> None:
        """Create with another user's existing thread id: refused, their thread unchanged."""
        actor = self.actor()
        victim = self.pick_victim(actor)
        if victim is None:
            return
        body: dict[str, Any] = {"thread_id": victim.thread_id, "metadata": {"tag": self.canaries.new(actor.identity)}}
        if self.chance(0.7):
            body["if_exists"] = self.rng.choice(["raise", "do_nothing"])
        with self.guard(f"{actor.identity} creating a thread with {victim.owner}'s id", threads=[victim]):
            reply = self.api.call(actor, "POST", "/threads", json_body=body)
            self.expect_status(reply, DENIED_THREAD_CREATE, "creating a thread with another user's id", {victim.thread_id})

    @operation("threads.get", 4)
    def op_threads_get(self) -> None:
        actor = self.actor()
        relation, thread, thread_id = self.pick_thread(actor)
        if relation is Relation.OWN and self.chance(0.3):
            self.thread_reading(thread)
            return
        reply = self.api.call(actor, "GET", f"/threads/{thread_id}")
        if relation is not Relation.OWN:
            self.expect_status(reply, 404, f"reading a {relation.value} thread", {thread_id})
            return
        if self.expect_status(reply, 200, "reading one's own thread", {thread_id}):
            metadata = (reply.json() or {}).get("metadata")
            if thread.metadata is None:
                thread.metadata = metadata
            self.check(
                metadata == thread.metadata, "metadata", "a thread's metadata differs from what its owner wrote", thread.metadata, metadata, {thread_id}, reply
            )

    @operation("threads.patch", 4)
    def op_threads_patch(self) -> None:
        actor = self.actor()
        relation, thread, thread_id = self.pick_thread(actor)
        patch: dict[str, Any] = {"note": self.canaries.new(actor.identity)}
        if self.chance(0.3):
            patch["owner"] = self.other(actor).identity
        if self.chance(0.1):
            patch["thread_id"] = self.new_id()  # reserved: dropped
        minimal = self.chance(0.2)
        headers = {"Prefer": "return=minimal"} if minimal else None
        body: dict[str, Any] = {"metadata": patch}
        if relation is not Relation.OWN and self.chance(0.3):
            body["ttl"] = {"ttl": SHORT_TTL_MINUTES, "strategy": self.rng.choice(["delete", "keep_latest"])}  # refused: theirs never expires
        with self.guard(f"{actor.identity} patching {thread_id}", threads=[thread] if relation is Relation.FOREIGN else []):
            reply = self.api.call(actor, "PATCH", f"/threads/{thread_id}", json_body=body, headers=headers)
        if relation is not Relation.OWN:
            self.expect_status(reply, 404, f"patching a {relation.value} thread", {thread_id})
            return
        if not self.expect_status(reply, 204 if minimal else 200, "patching one's own thread", {thread_id}):
            return
        if thread.metadata is not None:
            thread.metadata.update(clean_metadata(patch))
            thread.metadata["owner"] = actor.identity
            if not minimal:
                seen = (reply.json() or {}).get("metadata")
                self.check(
                    seen == thread.metadata,
                    "owner" if (seen or {}).get("owner") != actor.identity else "metadata",
                    "a patched thread's metadata",
                    thread.metadata,
                    seen,
                    {thread_id},
                    reply,
                )

    @operation("threads.delete", 3)
    def op_threads_delete(self) -> None:
        actor = self.actor()
        relation, thread, thread_id = self.pick_thread(actor, own=0.5, foreign=0.35, usable=lambda t: not t.active)
        with self.guard(f"{actor.identity} deleting {thread_id}", threads=[thread] if relation is Relation.FOREIGN else []):
            reply = self.api.call(actor, "DELETE", f"/threads/{thread_id}")
        if relation is not Relation.OWN:
            self.expect_status(reply, 404, f"deleting a {relation.value} thread", {thread_id})
            return
        if self.expect_status(reply, 204, "deleting one's own thread", {thread_id}):
            self.model.drop_thread(thread_id)
            if self.chance(0.3):
                again = self.api.call(actor, "GET", f"/threads/{thread_id}")
                self.expect_status(again, 404, "reading a deleted thread", {thread_id})

    def tolerated_threads(self, identity: str) -> set[str]:
        """Threads of a user that may or may not be listed: stateless runs' temporary ones."""
        return {run.thread_id for run in self.model.transient.values() if run.owner == identity}

    def check_listed_threads(self, actor: User, rows: list, sure: set[str], maybe: set[str], reply: Reply, *, exact: bool) -> None:
        """A search's rows: all the actor's; with `exact`, every `sure` thread is there."""
        listed = set()
        for row in rows:
            if not isinstance(row, dict):
                continue
            thread_id = str(row.get("thread_id"))
            listed.add(thread_id)
            metadata = row.get("metadata") or {}
            tag = metadata.get("cron_tag")
            if thread_id not in self.model.threads and self.cron_tags.get(tag) == actor.identity and metadata.get("owner") == actor.identity:
                self.model.add_thread(ThreadModel(thread_id, actor.identity, metadata=metadata, history=None, runs_known=False))  # a cron's, adopted
                maybe.add(thread_id)
        allowed = sure | maybe | self.tolerated_threads(actor.identity)
        foreign = {thread_id for thread_id in listed - allowed if thread_id in self.model.threads}
        unknown = listed - allowed - foreign
        self.check(
            not foreign,
            "search-leak",
            f"{actor.identity}'s search lists other users' threads",
            "only own threads",
            {t: self.model.threads[t].owner for t in foreign},
            foreign,
            reply,
        )
        described = {str(row.get("thread_id")): row.get("metadata") for row in rows if isinstance(row, dict) and str(row.get("thread_id")) in unknown}
        self.check(
            not unknown, "search-unknown", f"{actor.identity}'s search lists threads nobody of theirs created", "only own threads", described, unknown, reply
        )
        if exact:
            missing = sure - listed
            if not self.check(
                not missing, "search-missing", f"{actor.identity}'s search misses their own threads", sorted(sure), sorted(missing), missing, reply
            ):
                for thread_id in missing:
                    again = self.api.call(actor, "GET", f"/threads/{thread_id}")
                    if again.status == 404 and thread_id in self.model.threads:
                        self.thread_lost(self.model.threads[thread_id], again)

    def thread_search_plan(self, actor: User, variant: str) -> tuple[dict, set[str], set[str], bool]:
        """(request body, sure ids, maybe ids, exact) of a thread search variant."""
        mine = self.all_threads_of(actor.identity)
        known = {t.thread_id for t in mine if t.metadata is not None}
        unknown = {t.thread_id for t in mine if t.metadata is None}
        if variant == "tag":
            tags = [t.metadata["tag"] for t in mine if t.metadata and "tag" in t.metadata]
            tag = self.rng.choice(tags) if tags else self.canaries.new(actor.identity)
            sure = {t.thread_id for t in mine if t.metadata is not None and t.metadata.get("tag") == tag}
            return {"metadata": {"tag": tag}}, sure, unknown, True
        if variant == "forged-owner":
            return {"metadata": {"owner": self.other(actor).identity}}, set(), known | unknown, False
        if variant == "ids":
            picked = self.rng.sample(sorted(known | unknown), min(2, len(mine)))
            others = self.rng.sample([t.thread_id for t in self.foreign_threads(actor)], min(2, len(self.foreign_threads(actor))))
            ids = [*picked, *others, self.new_id()]
            self.rng.shuffle(ids)
            return {"ids": ids}, set(picked), set(), True
        if variant == "page":
            return {"limit": 2, "offset": self.rng.randint(0, 3)}, set(), known | unknown, False
        if variant == "status":
            return {"status": self.rng.choice(["idle", "busy", "error", "interrupted"])}, set(), known | unknown, False
        if variant == "select":
            return {"select": ["thread_id", "metadata"]}, known | unknown, set(), True
        return {}, known | unknown, set(), True

    @operation("threads.search", 4)
    def op_threads_search(self) -> None:
        actor = self.actor()
        variant = self.rng.choice(["all", "tag", "forged-owner", "ids", "page", "status", "select"])
        body, sure, maybe, exact = self.thread_search_plan(actor, variant)
        body.setdefault("limit", 1000)
        reply = self.api.call(actor, "POST", "/threads/search", json_body=body)
        if not self.expect_status(reply, 200, f"searching one's threads ({variant})", set()):
            return
        rows = reply.json() if isinstance(reply.json(), list) else []
        self.check(len(rows) <= body["limit"], "search", "a search returned more rows than its limit", body["limit"], len(rows), set(), reply)
        if variant == "select":
            self.check(
                all(isinstance(row, dict) and set(row) == {"thread_id", "metadata"} for row in rows),
                "search",
                "select returned other fields",
                ["thread_id", "metadata"],
                [sorted(row) for row in rows[:3]],
                set(),
                reply,
            )
        self.check_listed_threads(actor, rows, sure, maybe, reply, exact=exact)

    @operation("threads.count", 2)
    def op_threads_count(self) -> None:
        actor = self.actor()
        variant = self.rng.choice(["all", "tag", "forged-owner", "status"])
        body, sure, maybe, exact = self.thread_search_plan(actor, variant)
        reply = self.api.call(actor, "POST", "/threads/count", json_body=body)
        if not self.expect_status(reply, 200, f"counting one's threads ({variant})", set()):
            return
        count = reply.json()
        slack = len(self.tolerated_threads(actor.identity)) + 3 * sum(1 for tag, owner in self.cron_tags.items() if owner == actor.identity)
        low = len(sure) if exact else 0
        high = len(sure) + len(maybe) + slack
        self.check(
            isinstance(count, int) and low <= count <= high,
            "count",
            f"{actor.identity}'s thread count ({variant}) is not their own threads'",
            f"between {low} and {high}",
            count,
            set(),
            reply,
        )

    @operation("threads.copy", 2)
    def op_threads_copy(self) -> None:
        actor = self.actor()
        if len(self.model.threads_of(actor.identity)) >= Model.THREAD_CAP:
            return
        relation, thread, thread_id = self.pick_thread(actor)
        with self.guard(f"{actor.identity} copying {thread_id}", threads=[thread] if relation is Relation.FOREIGN else []):
            if relation is Relation.OWN:
                self.settle(thread)
            reply = self.api.call(actor, "POST", f"/threads/{thread_id}/copy")
        if relation is not Relation.OWN:
            self.expect_status(reply, DENIED_COPY, f"copying a {relation.value} thread", {thread_id})
            return
        if not self.expect_status(reply, 200, "copying one's own thread", {thread_id}):
            return
        copied = reply.json() or {}
        copy_id = str(copied.get("thread_id"))
        self.check(copy_id != thread_id, "thread", "a copy kept its source's id", "a new id", copy_id, {thread_id}, reply)
        if thread.metadata is not None:
            self.check(
                copied.get("metadata") == thread.metadata,
                "owner" if (copied.get("metadata") or {}).get("owner") != actor.identity else "metadata",
                "a copy's metadata differs from its source's",
                thread.metadata,
                copied.get("metadata"),
                {thread_id, copy_id},
                reply,
            )
        metadata = dict(thread.metadata) if thread.metadata is not None else None
        self.model.add_thread(ThreadModel(copy_id, actor.identity, metadata=metadata, history=thread.history, lineage=set(thread.lineage)))

    @operation("threads.prune", 1)
    def op_threads_prune(self) -> None:
        """Prune (`delete`, or `keep_latest`: only the latest checkpoint stays) a mix of own,
        other users' and missing ids: any foreign id refuses it all. Other users' threads
        that were not named are read by their owners before and after: a prune touches
        nothing of theirs."""
        actor = self.actor()
        idle = self.model.threads_of(actor.identity, lambda t: not t.active)
        mine = self.rng.sample(idle, min(self.rng.randint(0, 2), len(idle)))
        theirs = self.foreign_threads(actor)
        foreign = self.rng.sample(theirs, 1) if theirs and self.chance(0.5) else []
        bystanders = self.sample([t for t in theirs if t not in foreign and not t.active], 2)
        missing = [self.new_id()] if self.chance(0.3) else []
        ids = [t.thread_id for t in mine + foreign] + missing
        self.rng.shuffle(ids)
        strategy = self.rng.choice([None, "delete", "keep_latest"])
        body: dict[str, Any] = {"thread_ids": ids}
        if strategy:
            body["strategy"] = strategy
        for thread in mine:
            self.settle(thread)
        with self.guard(f"{actor.identity} pruning {ids} ({strategy or 'delete'})", threads=foreign + bystanders):
            reply = self.api.call(actor, "POST", "/threads/prune", json_body=body)
        subject = set(ids)
        if foreign:
            self.expect_status(reply, 404, "pruning with another user's thread among the ids", subject)
            for thread in mine:
                again = self.api.call(actor, "GET", f"/threads/{thread.thread_id}")
                self.expect_status(again, 200, "a refused prune deleted one's own thread", {thread.thread_id})
            return
        if not self.expect_status(reply, 200, "pruning one's own threads", subject):
            for thread in mine:
                self.resync(thread, {})
            return
        self.check(reply.json() == {"pruned_count": len(mine)}, "prune", "pruned count", {"pruned_count": len(mine)}, reply.json(), subject, reply)
        if strategy != "keep_latest":
            self.expect_gone(actor, mine, "pruned")
            return
        for thread in mine:
            if thread.history is not None:
                thread.history = min(thread.history, 1)  # one-node graphs: one namespace
            self.thread_reading(thread)

    def expect_gone(self, actor: User, threads: list[ThreadModel], how: str) -> None:
        """The actor's threads must be gone now; the model follows what the server shows."""
        for thread in threads:
            again = self.api.call(actor, "GET", f"/threads/{thread.thread_id}")
            if self.expect_status(again, 404, f"reading a {how} thread", {thread.thread_id}):
                self.model.drop_thread(thread.thread_id, only=thread)

    @operation("threads.state", 3)
    def op_threads_state(self) -> None:
        """State: latest, at a checkpoint (one's own or another thread's), or through a
        checkpoint object naming another thread."""
        actor = self.actor()
        relation, thread, thread_id = self.pick_thread(actor)
        victim = self.pick_victim(actor)
        variant = self.rng.choice(["latest", "at-checkpoint", "checkpoint-object", "foreign-checkpoint"])
        subject = {thread_id}
        if variant == "at-checkpoint" and thread is not None and thread.checkpoint_id:
            reply = self.api.call(actor, "GET", f"/threads/{thread_id}/state/{thread.checkpoint_id}")
        elif variant == "foreign-checkpoint" and victim is not None and victim.checkpoint_id:
            subject.add(victim.thread_id)
            reply = self.api.call(actor, "GET", f"/threads/{thread_id}/state/{victim.checkpoint_id}")
        elif variant == "checkpoint-object":
            target = victim.thread_id if victim is not None else thread_id
            subject.add(target)
            reply = self.api.call(actor, "POST", f"/threads/{thread_id}/state/checkpoint", json_body={"checkpoint": {"thread_id": target}})
        else:
            reply = self.api.call(actor, "GET", f"/threads/{thread_id}/state")
        if relation is not Relation.OWN:
            self.expect_status(reply, 404, f"reading the state of a {relation.value} thread", subject)
            return
        allowed = {200, 404} if variant == "foreign-checkpoint" else 200
        if self.expect_status(reply, allowed, "reading one's own thread's state", subject) and reply.status == 200:
            self.check_seen_entries(actor, (reply.json() or {}).get("values"), thread, reply)

    @operation("threads.state_update", 2)
    def op_threads_state_update(self) -> None:
        actor = self.actor()
        relation, thread, thread_id = self.pick_thread(actor)
        canary = self.canaries.new(actor.identity)
        body = {"values": {"messages": [{"role": "human", "content": canary}]}}
        if relation is Relation.OWN and thread.metadata is None:
            self.thread_reading(thread)
        with self.guard(f"{actor.identity} updating the state of {thread_id}", threads=[thread] if relation is Relation.FOREIGN else []):
            if relation is Relation.OWN:
                self.settle(thread)
            reply = self.api.call(actor, "POST", f"/threads/{thread_id}/state", json_body=body)
        subject = {thread_id, canary}
        if relation is not Relation.OWN:
            self.expect_status(reply, DENIED_STATE_UPDATE if relation is Relation.FOREIGN else 404, f"updating the state of a {relation.value} thread", subject)
            return
        if thread.graph is None:
            self.expect_status(reply, 400, "updating the state of a thread without a graph", subject)
            return
        if self.expect_status(reply, 200, "updating one's own thread's state", subject):
            thread.checkpoint_id = ((reply.json() or {}).get("checkpoint") or {}).get("checkpoint_id")
            if thread.history is not None:
                thread.history += 1

    @operation("threads.history", 3)
    def op_threads_history(self) -> None:
        actor = self.actor()
        relation, thread, thread_id = self.pick_thread(actor)
        victim = self.pick_victim(actor)
        variant = self.rng.choice(["post", "get", "checkpoint-object"])
        subject = {thread_id}
        if variant == "get":
            reply = self.api.call(actor, "GET", f"/threads/{thread_id}/history", params={"limit": 1000})
        else:
            body: dict[str, Any] = {"limit": 1000}
            if variant == "checkpoint-object" and victim is not None:
                body["checkpoint"] = {"thread_id": victim.thread_id}
                subject.add(victim.thread_id)
            reply = self.api.call(actor, "POST", f"/threads/{thread_id}/history", json_body=body)
        if relation is not Relation.OWN:
            self.expect_status(reply, 404, f"reading the history of a {relation.value} thread", subject)
            return
        if not self.expect_status(reply, 200, "reading one's own thread's history", subject):
            return
        entries = reply.json() if isinstance(reply.json(), list) else []
        if thread.history is None and not thread.active:
            thread.history = len(entries)
        if not thread.active:
            self.check(
                len(entries) == thread.history,
                "history",
                "a thread's history has another length than its owner's runs and updates made",
                thread.history,
                len(entries),
                subject,
                reply,
            )
        for entry in entries:
            self.check_seen_entries(actor, (entry or {}).get("values") if isinstance(entry, dict) else None, thread, reply)

    @operation("threads.stream", 1)
    def op_threads_stream(self) -> None:
        """The thread-wide stream, replaying from the start: never another user's events."""
        actor = self.actor()
        relation, _thread, thread_id = self.pick_thread(actor)
        headers = {"Last-Event-ID": "0"} if self.chance(0.5) else None
        reply = self.api.call(actor, "GET", f"/threads/{thread_id}/stream", headers=headers, stream_seconds=0.25)
        if relation is Relation.OWN:
            self.expect_status(reply, 200, "streaming one's own thread", {thread_id})
            return
        if reply.status == 200:
            events = reply.events()
            self.check(
                reply.is_sse and events and all(event.event == "error" for event in events),
                "not-denied",
                f"streaming a {relation.value} thread",
                "an error event (404) or a 404",
                reply.brief(),
                {thread_id},
                reply,
            )
        else:
            self.expect_status(reply, 404, f"streaming a {relation.value} thread", {thread_id})

    @operation("threads.verify", 2)
    def op_threads_verify(self) -> None:
        actor = self.actor()
        mine = self.model.threads_of(actor.identity)
        if mine:
            self.thread_reading(self.rng.choice(mine))

    @operation("ttl.expiry", 0.2)
    def op_ttl_expiry(self) -> None:
        """A thread with a short TTL (maybe run on first) and a store item with a short ttl
        expire: the item is gone at once, the sweep deletes the thread. The owners of other
        threads (the actor's included) and other users' stores read theirs before and after:
        expiry takes nothing else."""
        actor = self.actor()
        canary = self.canaries.new(actor.identity)
        others = self.sample([t for t in self.model.threads.values() if not t.active and not t.reserved], 3)
        stores = self.sample([user.identity for user in self.model.users if user != actor and "." not in user.identity], 2)
        with self.guard(f"the expiry of {actor.identity}'s thread and store item", threads=others, stores=stores):
            body = {"metadata": {"tag": canary}, "ttl": {"ttl": SHORT_TTL_MINUTES, "strategy": "delete"}}
            reply = self.api.call(actor, "POST", "/threads", json_body=body)
            if not self.expect_status(reply, 200, "creating a thread with a TTL", {canary}):
                return
            thread_id = str((reply.json() or {}).get("thread_id"))
            ttl = (self.api.call(actor, "GET", f"/threads/{thread_id}", params={"include": "ttl"}).json() or {}).get("ttl") or {}
            expected = {"ttl_minutes": SHORT_TTL_MINUTES, "strategy": "delete"}
            seen = {key: ttl.get(key) for key in expected}
            self.check(seen == expected, "ttl", "a thread's TTL is not what its creator set", expected, ttl, {thread_id}, reply)
            if self.chance(0.3):
                run = self.run_body(actor, "echo", "echo", canary, forged=[], victim=None, stateful=True)
                self.expect_status(self.api.call(actor, "POST", f"/threads/{thread_id}/runs/wait", json_body=run), 200, "a run on one's expiring thread", {thread_id})
            item = self.put_expiring_item(actor, canary) if "." not in actor.identity else None
            self.wait_swept(actor, thread_id)
            if item is not None:
                self.check_item_expired(actor, *item)
        self.model.gone_threads.append(thread_id)

    def put_expiring_item(self, actor: User, canary: str) -> tuple[list[str], str] | None:
        """Puts an item with a short ttl in one's own namespace `[identity, "ttl"]` and reads
        it back while it is fresh; (namespace, key), or None if the put failed."""
        namespace = [actor.identity, "ttl"]
        key = f"t{self.canaries.count}"
        subject = {f"store:{'/'.join(namespace)}:{key}", canary}
        put = self.api.call(actor, "PUT", "/store/items", json_body={"namespace": namespace, "key": key, "value": {"text": canary}, "ttl": SHORT_TTL_MINUTES})
        started = time.monotonic()
        if not self.expect_status(put, 204, "writing one's own store item with a ttl", subject):
            return None
        fresh = self.api.call(actor, "GET", "/store/items", params={"namespace": ".".join(namespace), "key": key, "refresh_ttl": "false"})
        if time.monotonic() - started < SHORT_TTL_MINUTES * 30 and self.expect_status(fresh, 200, "reading one's fresh item", subject):
            self.check(((fresh.json() or {}).get("value") or {}).get("text") == canary, "store", "an item with a ttl", canary, fresh.brief(), subject, fresh)
        return namespace, key

    def check_item_expired(self, actor: User, namespace: list[str], key: str) -> None:
        subject = {f"store:{'/'.join(namespace)}:{key}"}
        gone = self.api.call(actor, "GET", "/store/items", params={"namespace": ".".join(namespace), "key": key})
        if self.expect_status(gone, 200, "reading one's expired item", subject):
            self.check(gone.json() is None, "store-ttl", "an item whose ttl ran out is still there", None, gone.brief(), subject, gone)
        search = self.api.call(actor, "POST", "/store/items/search", json_body={"namespace_prefix": namespace, "limit": 10})
        if self.expect_status(search, 200, "searching one's expiring namespace", subject):
            items = (search.json() or {}).get("items")
            self.check(items == [], "store-ttl", "a search lists an item whose ttl ran out", [], items, subject, search)

    def wait_swept(self, actor: User, thread_id: str, limit: float = 15.0) -> None:
        """Waits until the TTL sweep deleted the actor's thread (a violation if it never does)."""
        deadline = time.monotonic() + limit
        time.sleep(SHORT_TTL_MINUTES * 60)
        while True:
            time.sleep(0.2)
            reply = self.api.call(actor, "GET", f"/threads/{thread_id}")
            if reply.status == 404 or time.monotonic() > deadline:
                break
        self.expect_status(reply, 404, f"a thread whose TTL ran out {limit:.0f} s ago", {thread_id})

    # --- operations: assistants ------------------------------------------------------------

    def assistant_body(self, actor: User, graph: str, canary: str) -> dict:
        metadata: dict[str, Any] = {"tag": canary}
        if self.chance(0.3):
            metadata["owner"] = self.other(actor).identity
        return {"graph_id": graph, "config": {"configurable": {"marker": canary}}, "metadata": metadata, "name": f"assistant {canary}"}

    def threads_on_assistant(self, assistant_id: str, exclude_owner: str | None = None) -> list[ThreadModel]:
        return [
            thread
            for thread in self.model.threads.values()
            if thread.metadata is not None and thread.metadata.get("assistant_id") == assistant_id and thread.owner != exclude_owner and not thread.reserved
        ]

    @operation("assistants.create", 3)
    def op_assistants_create(self) -> None:
        actor = self.actor()
        mine = [a for a in self.model.assistants_of(actor.identity) if not a.public]
        if len(mine) >= Model.ASSISTANT_CAP:
            victim = self.rng.choice(mine)
            reply = self.api.call(actor, "DELETE", f"/assistants/{victim.assistant_id}")
            if self.expect_status(reply, 204, "deleting one's own assistant", {victim.assistant_id}):
                self.model.drop_assistant(victim.assistant_id)
            return
        canary = self.canaries.new(actor.identity)
        body = self.assistant_body(actor, self.rng.choice(GRAPHS), canary)
        variant = self.rng.choices(["new", "server-id", "own-existing"], [5, 2, 1])[0]
        if variant == "own-existing" and mine:
            existing = self.rng.choice(mine)
            body["assistant_id"] = existing.assistant_id
            body["if_exists"] = self.rng.choice(["raise", "do_nothing"])
            reply = self.api.call(actor, "POST", "/assistants", json_body=body)
            if body["if_exists"] == "raise":
                self.expect_status(reply, 409, "re-creating one's own assistant", {existing.assistant_id})
            elif self.expect_status(reply, 200, "re-creating one's own assistant with do_nothing", {existing.assistant_id}):
                self.check(
                    (reply.json() or {}).get("metadata") == existing.current["metadata"],
                    "assistant",
                    "do_nothing changed an existing assistant",
                    existing.current["metadata"],
                    (reply.json() or {}).get("metadata"),
                    {existing.assistant_id},
                    reply,
                )
            return
        if variant == "new":
            body["assistant_id"] = self.new_id()
        reply = self.api.call(actor, "POST", "/assistants", json_body=body)
        if not self.expect_status(reply, 200, "creating an assistant", {body.get("assistant_id", ""), canary}):
            return
        created = reply.json() or {}
        assistant_id = str(created.get("assistant_id"))
        expected = {**clean_metadata(body["metadata"]), "owner": actor.identity}
        self.check(
            created.get("metadata") == expected,
            "owner" if (created.get("metadata") or {}).get("owner") != actor.identity else "assistant",
            "a created assistant's metadata",
            expected,
            created.get("metadata"),
            {assistant_id},
            reply,
        )
        self.check(
            created.get("version") == 1 and created.get("graph_id") == body["graph_id"],
            "assistant",
            "a created assistant",
            (1, body["graph_id"]),
            (created.get("version"), created.get("graph_id")),
            {assistant_id},
            reply,
        )
        self.model.assistants[assistant_id] = AssistantModel(assistant_id, actor.identity, body["graph_id"], [{"metadata": expected, "name": body["name"]}])

    @operation("assistants.create_taken", 1)
    def op_assistants_create_taken(self) -> None:
        """Create with another user's (or a system) assistant id: refused, theirs unchanged."""
        actor = self.actor()
        _relation, victim, assistant_id = self.pick_assistant(actor, own=0, foreign=0.8)
        if victim is None:
            assistant_id = system_assistant_id(self.rng.choice(GRAPHS))
        body = {**self.assistant_body(actor, self.rng.choice(GRAPHS), self.canaries.new(actor.identity)), "assistant_id": assistant_id}
        if self.chance(0.7):
            body["if_exists"] = self.rng.choice(["raise", "do_nothing"])
        with self.guard(f"{actor.identity} creating an assistant with an id that is not theirs", assistants=[victim] if victim else []):
            reply = self.api.call(actor, "POST", "/assistants", json_body=body)
            self.expect_status(reply, {404, 409}, "creating an assistant with another user's id", {assistant_id})

    def assistant_target(self, actor: User) -> tuple[str, AssistantModel | None, str]:
        """(kind, model, id as sent): own, foreign, missing, system (uuid or graph id), public."""
        roll = self.rng.random()
        if roll < 0.12:
            graph = self.rng.choice(GRAPHS)
            return "system", None, self.rng.choice([graph, system_assistant_id(graph)])
        if roll < 0.2:
            public = self.model.public
            return ("public" if public.exists else "missing"), self.model.assistants.get(public.assistant_id), public.assistant_id
        relation, assistant, assistant_id = self.pick_assistant(actor)
        return relation.value, assistant, assistant_id

    @operation("assistants.read", 3)
    def op_assistants_read(self) -> None:
        actor = self.actor()
        kind, assistant, assistant_id = self.assistant_target(actor)
        route = self.rng.choice(["", "/graph", "/schemas", "/subgraphs", "/versions"])
        if route == "/versions":
            reply = self.api.call(actor, "POST", f"/assistants/{assistant_id}/versions", json_body={"limit": 100})
        else:
            reply = self.api.call(actor, "GET", f"/assistants/{assistant_id}{route}")
        subject = {assistant_id}
        if kind in ("own", "public"):
            if not self.expect_status(reply, 200, f"reading an assistant ({kind}) one may read", subject):
                return
            if route == "" and assistant is not None:
                body = reply.json() or {}
                self.check(
                    body.get("metadata") == assistant.current["metadata"] and body.get("version") == assistant.version,
                    "assistant",
                    "an assistant differs from what its owner wrote",
                    (assistant.current["metadata"], assistant.version),
                    (body.get("metadata"), body.get("version")),
                    subject,
                    reply,
                )
            if route == "/versions" and assistant is not None:
                self.check(
                    isinstance(reply.json(), list) and len(reply.json()) == len(assistant.versions),
                    "assistant",
                    "an assistant's versions",
                    len(assistant.versions),
                    reply.brief(),
                    subject,
                    reply,
                )
            return
        allowed = {404, 422} if kind == "system" and not UUID.fullmatch(assistant_id) else 404
        self.expect_status(reply, allowed, f"reading a {kind} assistant", subject)

    @operation("assistants.patch", 2)
    def op_assistants_patch(self) -> None:
        actor = self.actor()
        kind, assistant, assistant_id = self.assistant_target(actor)
        # Everyone may read the public assistant, so it carries no canary.
        canary = self.canaries.new(actor.identity) if kind == "own" else None
        patch: dict[str, Any] = {"note": canary or "plain"}
        if self.chance(0.3):
            patch["owner"] = self.other(actor).identity
        body = {"metadata": patch, "name": f"renamed {canary or 'plain'}"}
        mine = assistant is not None and assistant.owner == actor.identity
        guarded = [assistant] if assistant is not None and not mine else []
        with self.guard(f"{actor.identity} patching assistant {assistant_id}", assistants=guarded):
            reply = self.api.call(actor, "PATCH", f"/assistants/{assistant_id}", json_body=body)
        subject = {assistant_id}
        if not mine:
            self.expect_status(reply, {404, 422} if not UUID.fullmatch(assistant_id) else 404, f"patching a {kind} assistant", subject)
            return
        if not self.expect_status(reply, 200, "patching one's own assistant", subject):
            return
        metadata = {**assistant.current["metadata"], **clean_metadata(patch), "owner": actor.identity}
        assistant.versions.append({"metadata": metadata, "name": body["name"]})
        assistant.version = len(assistant.versions)
        seen = reply.json() or {}
        self.check(
            seen.get("metadata") == metadata and seen.get("version") == assistant.version,
            "owner" if (seen.get("metadata") or {}).get("owner") != actor.identity else "assistant",
            "a patched assistant",
            (metadata, assistant.version),
            (seen.get("metadata"), seen.get("version")),
            subject,
            reply,
        )

    @operation("assistants.latest", 1)
    def op_assistants_latest(self) -> None:
        actor = self.actor()
        relation, assistant, assistant_id = self.pick_assistant(actor)
        version = self.rng.randint(1, len(assistant.versions)) if assistant is not None else 1
        guarded = [assistant] if relation is Relation.FOREIGN else []
        with self.guard(f"{actor.identity} setting the version of assistant {assistant_id}", assistants=guarded):
            reply = self.api.call(actor, "POST", f"/assistants/{assistant_id}/latest", json_body={"version": version})
        if relation is not Relation.OWN:
            self.expect_status(reply, 404, f"setting the version of a {relation.value} assistant", {assistant_id})
            return
        if self.expect_status(reply, 200, "setting the version of one's own assistant", {assistant_id}):
            assistant.version = version
            seen = reply.json() or {}
            self.check(
                seen.get("version") == version and seen.get("metadata") == assistant.current["metadata"],
                "assistant",
                "an assistant after set-latest",
                (version, assistant.current["metadata"]),
                (seen.get("version"), seen.get("metadata")),
                {assistant_id},
                reply,
            )

    @operation("assistants.delete", 2)
    def op_assistants_delete(self) -> None:
        """Delete (sometimes `delete_threads=true`): own, foreign, missing or a system
        assistant; other users' threads on it stay."""
        actor = self.actor()
        kind, assistant, assistant_id = self.assistant_target(actor)
        if kind == "public":
            self.delete_public(actor)
            return
        delete_threads = self.chance(0.5)
        resolved = system_assistant_id(assistant_id) if kind == "system" and not UUID.fullmatch(assistant_id) else assistant_id
        bystanders = self.sample(self.threads_on_assistant(resolved, exclude_owner=actor.identity), 2)
        mine = kind == "own"
        with self.guard(
            f"{actor.identity} deleting assistant {assistant_id} (delete_threads={delete_threads})",
            threads=bystanders,
            assistants=[assistant] if kind == "foreign" else [],
        ):
            reply = self.api.call(actor, "DELETE", f"/assistants/{assistant_id}", params={"delete_threads": "true"} if delete_threads else None)
            if not mine:
                self.expect_status(reply, {404, 422} if not UUID.fullmatch(assistant_id) else 404, f"deleting a {kind} assistant", {assistant_id})
                return
            deleted = self.expect_status(reply, 204, "deleting one's own assistant", {assistant_id})
            if not deleted and self.api.call(actor, "GET", f"/assistants/{assistant_id}").status == 404:
                deleted = True  # refused, yet gone: reported above; the model follows the server
            if deleted:
                self.model.drop_assistant(assistant_id)
                if delete_threads:
                    self.drop_threads_on(actor, assistant_id)

    def drop_threads_on(self, actor: User, assistant_id: str) -> None:
        """After `delete_threads=true` by the actor: their threads on the assistant are gone."""
        for thread in self.all_threads_of(actor.identity):
            if thread.metadata is None:
                reply = self.api.call(actor, "GET", f"/threads/{thread.thread_id}")
                if reply.status == 404:
                    self.model.drop_thread(thread.thread_id)
                elif reply.status == 200:
                    thread.metadata = (reply.json() or {}).get("metadata")
                continue
            if thread.metadata.get("assistant_id") == assistant_id:
                # Its runs went with it (a join now answers 404): nothing is left to settle.
                thread.active.clear()
                self.expect_gone(actor, [thread], "delete_threads")

    def sample(self, items: list, count: int) -> list:
        return self.rng.sample(items, min(count, len(items)))

    def delete_public(self, actor: User) -> None:
        """The public assistant: anyone may delete it, with `delete_threads=true` taking only
        the deleter's threads along."""
        public = self.model.public
        bystanders = self.sample(self.threads_on_assistant(public.assistant_id, exclude_owner=actor.identity), 3)
        with self.guard(f"{actor.identity} deleting the public assistant with delete_threads=true", threads=bystanders):
            reply = self.api.call(actor, "DELETE", f"/assistants/{public.assistant_id}", params={"delete_threads": "true"})
            deleted = self.expect_status(reply, 204, "deleting the public assistant", {public.assistant_id})
            if not deleted and self.api.call(actor, "GET", f"/assistants/{public.assistant_id}").status != 404:
                return
            public.exists = False
            if public.assistant_id in self.model.assistants:
                self.model.drop_assistant(public.assistant_id)
            self.drop_threads_on(actor, public.assistant_id)

    @operation("assistants.public", 1)
    def op_assistants_public(self) -> None:
        actor = self.actor()
        public = self.model.public
        if public.exists:
            self.delete_public(actor)
            return
        body = {"assistant_id": public.assistant_id, "graph_id": public.graph_id, "name": "public", "if_exists": "do_nothing"}
        reply = self.api.call(actor, "POST", "/assistants", json_body=body)
        if self.expect_status(reply, 200, "re-creating the public assistant", {public.assistant_id}):
            metadata = (reply.json() or {}).get("metadata")
            self.check(
                metadata == {"owner": actor.identity},
                "owner",
                "the re-created public assistant",
                {"owner": actor.identity},
                metadata,
                {public.assistant_id},
                reply,
            )
            public.exists, public.owner = True, actor.identity
            self.model.assistants[public.assistant_id] = AssistantModel(
                public.assistant_id, actor.identity, public.graph_id, [{"metadata": {"owner": actor.identity}, "name": "public"}], public=True
            )

    def assistant_search_plan(self, actor: User) -> tuple[dict, set[str]]:
        mine = self.model.assistants_of(actor.identity)
        body: dict[str, Any] = {}
        roll = self.rng.random()
        if roll < 0.3:
            graph = self.rng.choice([*GRAPHS, self.model.public.graph_id])
            body["graph_id"] = graph
            mine = [a for a in mine if a.graph_id == graph]
        elif roll < 0.6 and mine:
            tag = self.rng.choice(mine).current["metadata"].get("tag")
            if tag:
                body["metadata"] = {"tag": tag}
                mine = [a for a in mine if a.current["metadata"].get("tag") == tag]
        return body, {a.assistant_id for a in mine}

    @operation("assistants.search", 2)
    def op_assistants_search(self) -> None:
        actor = self.actor()
        body, expected = self.assistant_search_plan(actor)
        reply = self.api.call(actor, "POST", "/assistants/search", json_body={**body, "limit": 1000})
        if not self.expect_status(reply, 200, "searching one's assistants", set()):
            return
        rows = reply.json() if isinstance(reply.json(), list) else []
        listed = {str(row.get("assistant_id")) for row in rows if isinstance(row, dict)}
        foreign = {a for a in listed - expected if a in self.model.assistants or a in {system_assistant_id(g) for g in GRAPHS}}
        self.check(
            not foreign,
            "search-leak",
            f"{actor.identity}'s assistant search lists assistants that are not theirs",
            sorted(expected),
            sorted(foreign),
            foreign,
            reply,
        )
        self.check(
            listed == expected or bool(foreign), "search", f"{actor.identity}'s assistant search", sorted(expected), sorted(listed), listed ^ expected, reply
        )

    @operation("assistants.count", 1)
    def op_assistants_count(self) -> None:
        actor = self.actor()
        body, expected = self.assistant_search_plan(actor)
        reply = self.api.call(actor, "POST", "/assistants/count", json_body=body)
        if self.expect_status(reply, 200, "counting one's assistants", set()):
            self.check(reply.json() == len(expected), "count", f"{actor.identity}'s assistant count", len(expected), reply.json(), set(), reply)

    # --- operations: crons -----------------------------------------------------------------

    def cron_assistant(self, actor: User) -> tuple[str, bool, str]:
        """(assistant_id as sent, whether the actor may use it, its UUID)."""
        roll = self.rng.random()
        if roll < 0.55:
            graph = self.rng.choice(GRAPHS)
            return self.rng.choice([graph, system_assistant_id(graph)]), True, system_assistant_id(graph)
        relation, _assistant, assistant_id = self.pick_assistant(actor, own=0.7, foreign=0.25)
        usable = relation is Relation.OWN
        return assistant_id, usable, assistant_id

    @operation("crons.create", 3)
    def op_crons_create(self) -> None:
        actor = self.actor()
        mine = [c for c in self.model.crons_of(actor.identity) if not c.firing]
        if len(mine) >= Model.CRON_CAP:
            victim = self.rng.choice(mine)
            reply = self.api.call(actor, "DELETE", f"/runs/crons/{victim.cron_id}")
            if self.expect_status(reply, 204, "deleting one's own cron", {victim.cron_id}):
                self.model.drop_cron(victim.cron_id)
            return
        relation, thread, thread_id = self.pick_thread(actor, own=0.4, foreign=0.3)
        stateless = self.chance(0.4)
        assistant, usable, resolved = self.cron_assistant(actor)
        canary = self.canaries.new(actor.identity)
        body: dict[str, Any] = {"assistant_id": assistant, "schedule": NEVER_SCHEDULE, "input": {"messages": [{"role": "human", "content": canary}]}}
        sent_metadata = self.chance(0.85)
        if sent_metadata:
            body["metadata"] = {"tag": canary}
            if self.chance(0.4):
                body["metadata"]["owner"] = self.other(actor).identity
        if stateless and self.chance(0.5):
            body["on_run_completed"] = self.rng.choice(["keep", "delete"])
        guarded = [thread] if relation is Relation.FOREIGN and not stateless else []
        with self.guard(f"{actor.identity} creating a cron", threads=guarded):
            path = "/runs/crons" if stateless else f"/threads/{thread_id}/runs/crons"
            reply = self.api.call(actor, "POST", path, json_body=body)
        subject = {canary} | (set() if stateless else {thread_id})
        if not usable or (not stateless and relation is not Relation.OWN):
            self.expect_status(
                reply,
                404,
                f"creating a cron on a {'' if usable else 'foreign/missing assistant, '}{'stateless' if stateless else relation.value + ' thread'}",
                subject,
            )
            return
        if not self.expect_status(reply, 200, "creating a cron", subject):
            return
        created = reply.json() or {}
        cron = CronModel(
            str(created.get("cron_id")),
            actor.identity,
            None if stateless else thread_id,
            resolved,
            {**clean_metadata(body.get("metadata", {})), "owner": actor.identity},
            NEVER_SCHEDULE,
        )
        self.check(created.get("thread_id") == cron.thread_id, "cron", "a created cron's thread", cron.thread_id, created.get("thread_id"), subject, reply)
        self.check_cron_body(actor, created, cron, reply)
        self.model.crons[cron.cron_id] = cron

    @operation("crons.read", 2)
    def op_crons_read(self) -> None:
        actor = self.actor()
        relation, cron, cron_id = self.pick_cron(actor)
        if relation is Relation.OWN:
            self.cron_reading(cron)
            return
        reply = self.api.call(actor, "GET", f"/runs/crons/{cron_id}")
        self.expect_status(reply, 404, f"reading a {relation.value} cron", {cron_id})

    @operation("crons.patch", 2)
    def op_crons_patch(self) -> None:
        actor = self.actor()
        relation, cron, cron_id = self.pick_cron(actor)
        body: dict[str, Any] = {}
        if self.chance(0.6):
            body["metadata"] = {"note": self.canaries.new(actor.identity)}
            if self.chance(0.5):
                body["metadata"]["owner"] = self.other(actor).identity
        if self.chance(0.4):
            body["enabled"] = self.chance(0.5)
        if not body or self.chance(0.3):
            body["schedule"] = self.rng.choice([NEVER_SCHEDULE, "0 0 2 1 *"])
        with self.guard(f"{actor.identity} patching cron {cron_id}", crons=[cron] if relation is Relation.FOREIGN else []):
            reply = self.api.call(actor, "PATCH", f"/runs/crons/{cron_id}", json_body=body)
        if relation is not Relation.OWN:
            self.expect_status(reply, 404, f"patching a {relation.value} cron", {cron_id})
            return
        if not self.expect_status(reply, 200, "patching one's own cron", {cron_id}):
            return
        if "metadata" in body:
            cron.metadata.update(clean_metadata(body["metadata"]))
            cron.metadata["owner"] = actor.identity
        cron.enabled = body.get("enabled", cron.enabled)
        cron.schedule = body.get("schedule", cron.schedule)
        self.check_cron_body(actor, reply.json() or {}, cron, reply)

    @operation("crons.delete", 1)
    def op_crons_delete(self) -> None:
        actor = self.actor()
        relation, cron, cron_id = self.pick_cron(actor)
        with self.guard(f"{actor.identity} deleting cron {cron_id}", crons=[cron] if relation is Relation.FOREIGN else []):
            reply = self.api.call(actor, "DELETE", f"/runs/crons/{cron_id}")
        if relation is not Relation.OWN:
            self.expect_status(reply, 404, f"deleting a {relation.value} cron", {cron_id})
        elif self.expect_status(reply, 204, "deleting one's own cron", {cron_id}):
            self.model.drop_cron(cron_id)

    @operation("crons.search", 2)
    def op_crons_search(self) -> None:
        actor = self.actor()
        mine = self.model.crons_of(actor.identity)
        body: dict[str, Any] = {}
        roll = self.rng.random()
        if roll < 0.3:
            _relation, _thread, thread_id = self.pick_thread(actor, own=0.5, foreign=0.5)
            body["thread_id"] = thread_id
            mine = [c for c in mine if c.thread_id == thread_id]
        elif roll < 0.5:
            graph = self.rng.choice(GRAPHS)
            body["assistant_id"] = system_assistant_id(graph)
            mine = [c for c in mine if c.assistant_id == system_assistant_id(graph)]
        expected = {c.cron_id for c in mine}
        count = self.chance(0.3)
        reply = self.api.call(actor, "POST", f"/runs/crons/{'count' if count else 'search'}", json_body=body if count else {**body, "limit": 1000})
        if not self.expect_status(reply, 200, "searching one's crons", set()):
            return
        if count:
            self.check(reply.json() == len(expected), "count", f"{actor.identity}'s cron count", len(expected), reply.json(), set(), reply)
            return
        rows = reply.json() if isinstance(reply.json(), list) else []
        listed = {str(row.get("cron_id")) for row in rows if isinstance(row, dict)}
        foreign = {c for c in listed - expected if c in self.model.crons}
        self.check(not foreign, "search-leak", f"{actor.identity}'s cron search lists other users' crons", sorted(expected), sorted(foreign), foreign, reply)
        self.check(listed == expected or bool(foreign), "search", f"{actor.identity}'s cron search", sorted(expected), sorted(listed), listed ^ expected, reply)

    # --- operations: the store -------------------------------------------------------------

    def namespaces_of(self, identity: str) -> list[list[str]]:
        return [[identity], [identity, "mem"], [identity, "notes"], [identity, "smith", "mem"], [identity, "deep", "er"]]

    def pick_namespace(self, actor: User) -> list[str]:
        roll = self.rng.random()
        if roll < 0.65:
            return self.rng.choice(self.namespaces_of(actor.identity))
        if roll < 0.85:
            return self.rng.choice(self.namespaces_of(self.other(actor).identity))
        return self.rng.choice([[actor.identity, "a.b"], ["x.y"], [actor.identity, ""], [f"{actor.identity}.smith", "mem"]])

    @staticmethod
    def store_refusal(actor: User, namespace: list[str]) -> set[int] | None:
        """The statuses a store request on `namespace` may get (None: allowed): 422 for a
        label with a dot or an empty one, 403 for another user's namespace; either when
        both apply."""
        foreign = not namespace or namespace[0] != actor.identity
        if label_error(namespace):
            return {403, 422} if foreign else {422}
        return {403} if foreign else None

    def store_owner(self, namespace: list[str]) -> str | None:
        """Whose store a namespace is, if it is a (non-dotted) user's of this worker."""
        owner = namespace[0] if namespace else None
        return owner if owner in {u.identity for u in self.model.users} and "." not in owner else None

    @operation("store.put", 4)
    def op_store_put(self) -> None:
        actor = self.actor()
        namespace = self.pick_namespace(actor)
        key = self.rng.choice(STORE_KEYS)
        canary = self.canaries.new(actor.identity)
        value = {"text": canary, "n": self.rng.randint(0, 9)}
        refusal = self.store_refusal(actor, namespace)
        owner = self.store_owner(namespace)
        body: dict[str, Any] = {"namespace": namespace, "key": key, "value": value}
        if refusal is not None and self.chance(0.3):
            body["ttl"] = SHORT_TTL_MINUTES  # refused: their item never expires
        with self.guard(f"{actor.identity} writing {namespace}:{key}", stores=[owner] if refusal and 403 in refusal and owner else []):
            reply = self.api.call(actor, "PUT", "/store/items", json_body=body)
        subject = {f"store:{'/'.join(namespace)}:{key}", canary}
        if refusal is not None:
            self.expect_status(reply, refusal, f"writing the store namespace {namespace}", subject)
        elif self.expect_status(reply, 204, "writing one's own store namespace", subject):
            self.model.store[(tuple(namespace), key)] = value

    @operation("store.get", 3)
    def op_store_get(self) -> None:
        actor = self.actor()
        namespace = self.pick_namespace(actor)
        key = self.rng.choice(STORE_KEYS)
        joined = ".".join(namespace)
        labels = joined.split(".")  # what the server reads from `namespace=a.b.c`
        reply = self.api.call(actor, "GET", "/store/items", params={"namespace": joined, "key": key})
        subject = {f"store:{'/'.join(labels)}:{key}"}
        refusal = self.store_refusal(actor, labels)
        if refusal is not None:
            self.expect_status(reply, refusal, f"reading the store namespace {joined!r}", subject)
            return
        if not self.expect_status(reply, 200, "reading one's own store item", subject) or actor.identity in self.model.store_unknown:
            return
        expected = self.model.store.get((tuple(labels), key))
        item = reply.json()
        seen = item.get("value") if isinstance(item, dict) else item
        self.check(
            seen == expected and (item is None or item.get("namespace") == labels),
            "store",
            f"{actor.identity}'s store item {joined}:{key}",
            expected,
            item,
            subject,
            reply,
        )

    @operation("store.delete", 2)
    def op_store_delete(self) -> None:
        actor = self.actor()
        namespace = self.pick_namespace(actor)
        key = self.rng.choice(STORE_KEYS)
        refusal = self.store_refusal(actor, namespace)
        owner = self.store_owner(namespace)
        with self.guard(f"{actor.identity} deleting {namespace}:{key}", stores=[owner] if refusal and 403 in refusal and owner else []):
            reply = self.api.call(actor, "DELETE", "/store/items", json_body={"namespace": namespace, "key": key})
        subject = {f"store:{'/'.join(namespace)}:{key}"}
        if refusal is not None:
            self.expect_status(reply, refusal, f"deleting in the store namespace {namespace}", subject)
        elif self.expect_status(reply, 204, "deleting one's own store item", subject):
            self.model.store.pop((tuple(namespace), key), None)

    def pick_prefix(self, actor: User) -> list[str]:
        roll = self.rng.random()
        if roll < 0.6:
            return self.rng.choice([[actor.identity], [actor.identity, "mem"], [actor.identity, "smith"], [actor.identity, "deep"]])
        if roll < 0.8:
            return self.rng.choice([[self.other(actor).identity], [self.other(actor).identity, "mem"]])
        return self.rng.choice([[], ["x.y"], [actor.identity.split(".")[0]]])

    @operation("store.search", 2)
    def op_store_search(self) -> None:
        actor = self.actor()
        prefix = self.pick_prefix(actor)
        body: dict[str, Any] = {"namespace_prefix": prefix, "limit": 1000}
        expected = self.model.store_items(prefix)
        if expected and self.chance(0.3):
            text = self.rng.choice(list(expected.values())).get("text")
            body["filter"] = {"text": text}
            expected = {item: value for item, value in expected.items() if value.get("text") == text}
        query = self.pick_query(actor) if self.chance(0.5) else None
        if query is not None:
            body["query"] = query
        reply = self.api.call(actor, "POST", "/store/items/search", json_body=body)
        refusal = self.store_refusal(actor, prefix)
        if refusal is not None:
            self.expect_status(reply, refusal, f"searching the store prefix {prefix}", {f"store:{'/'.join(prefix)}"})
            return
        if self.expect_status(reply, 200, "searching one's own store", set()) and actor.identity not in self.model.store_unknown:
            items = [item for item in (reply.json() or {}).get("items", []) if isinstance(item, dict)]
            found = {(tuple(item["namespace"]), item["key"]): item["value"] for item in items}
            what = f"{actor.identity}'s store search under {prefix}" + (f" for {query!r}" if query else "")
            if self.compare_items(expected, found, what, reply) and query is not None:
                self.check_ranking(items, query, reply)

    def pick_query(self, actor: User) -> str:
        """A semantic search query: the text of one of one's items, another user's canary
        (their items must still never show), or words nobody wrote."""
        roll = self.rng.random()
        mine = [value.get("text") for (namespace, _key), value in self.model.store_items([actor.identity]).items() if isinstance(value.get("text"), str)]
        theirs = [value.get("text") for (namespace, _key), value in self.model.store.items() if namespace[0] != actor.identity and isinstance(value.get("text"), str)]
        if roll < 0.5 and mine:
            return self.rng.choice(mine)
        if roll < 0.8 and theirs:
            return self.rng.choice(theirs)
        return "unrelated words nobody wrote"

    def check_ranking(self, items: list[dict], query: str, reply: Reply) -> None:
        """Every item of the hunt's store is embedded (`text`): each has a score, best first,
        and an item whose text is the query itself scores highest."""
        scores = [item.get("score") for item in items]
        subject = {f"store:{'/'.join(items[0]['namespace'])}"} if items else set()
        if not self.check(all(isinstance(score, (int, float)) for score in scores), "store-query", "a semantic search result has no score", "numbers", scores[:8], subject, reply):
            return
        self.check(scores == sorted(scores, reverse=True), "store-query", "semantic search results are not best first", "descending scores", scores[:8], subject, reply)
        exact = [item.get("score") for item in items if (item.get("value") or {}).get("text") == query]
        if exact and scores:
            self.check(max(exact) >= scores[0] - 1e-6, "store-query", "the item whose text is the query is not ranked first", query, items[0], subject, reply)

    @operation("store.namespaces", 1)
    def op_store_namespaces(self) -> None:
        actor = self.actor()
        prefix = self.pick_prefix(actor) if self.chance(0.9) else None
        body: dict[str, Any] = {"limit": 1000}
        if prefix is not None:
            body["prefix"] = prefix
        depth = self.rng.choice([None, 1, 2])
        if depth:
            body["max_depth"] = depth
        reply = self.api.call(actor, "POST", "/store/namespaces", json_body=body)
        refusal = self.store_refusal(actor, prefix) if prefix is not None else {403}
        if refusal is not None:
            self.expect_status(reply, refusal, f"listing store namespaces under {prefix}", {f"store:{'/'.join(prefix or [])}"})
            return
        if self.expect_status(reply, 200, "listing one's own store namespaces", set()) and actor.identity not in self.model.store_unknown:
            expected = sorted({tuple(namespace[:depth] if depth else namespace) for namespace, _key in self.model.store_items(prefix)})
            found = sorted(tuple(namespace) for namespace in (reply.json() or {}).get("namespaces", []))
            self.check(found == expected, "store", f"{actor.identity}'s store namespaces under {prefix}", expected, found, {f"store:{actor.identity}"}, reply)

    @operation("store.verify", 1)
    def op_store_verify(self) -> None:
        self.store_reading(self.actor().identity)

    # --- operations: the graph factory, the custom routes, /metrics ------------------------

    @operation("factory.graph", 1)
    def op_factory_graph(self) -> None:
        """`/graph` of a factory assistant builds the graph for the caller: one's own shows a
        node named after oneself, whatever identity the headers claim; another user's is 404."""
        actor = self.actor()
        factories = [a for a in self.model.assistants.values() if a.graph_id == "factory" and not a.public]
        if not factories:
            return
        assistant = self.rng.choice(factories)
        headers = self.forged_headers(actor, ["headers"], None) if self.chance(0.5) else None
        part = self.rng.choice(["graph", "graph?xray=true", "schemas", "subgraphs"])
        reply = self.api.call(actor, "GET", f"/assistants/{assistant.assistant_id}/{part}", headers=headers)
        subject = {assistant.assistant_id}
        if assistant.owner != actor.identity:
            self.expect_status(reply, 404, f"{part} of another user's factory assistant", subject)
            return
        if not self.expect_status(reply, 200, f"{part} of one's own factory assistant", subject) or not part.startswith("graph"):
            return
        nodes = sorted(str(node.get("id")) for node in (reply.json() or {}).get("nodes", []) if isinstance(node, dict))
        expected = sorted(["__start__", "__end__", f"as_{actor.identity}"])
        self.check(nodes == expected, "factory-identity", f"the factory built {actor.identity}'s graph for someone else", expected, nodes, subject, reply)

    APP_ROUTES = ("/custom/me", "/custom/threads/{thread}")

    def app_expectation(self, actor: User, reply: Reply, thread_id: str | None) -> None:
        """An `http.app` answer to a valid user: their own identity (and the id it was given)."""
        expected = {"identity": actor.identity} if thread_id is None else {"thread_id": thread_id, "identity": actor.identity}
        if self.expect_status(reply, 200, "a custom route", {thread_id or ""}):
            self.check(reply.json() == expected, "app-identity", "a custom route saw another user", expected, reply.brief(), {thread_id or ""}, reply)

    @operation("app.custom", 2)
    def op_app_custom(self) -> None:
        """The `http.app` routes, authenticated by auth.py: 401 without valid credentials,
        the caller's own identity with them (whatever the headers claim)."""
        actor = self.actor()
        _relation, _thread, thread_id = self.pick_thread(actor, own=0.4, foreign=0.4)
        route = self.rng.choice(self.APP_ROUTES)
        path = route.format(thread=thread_id)
        if self.chance(0.25):
            credential = self.rng.choice(BAD_CREDENTIALS)
            reply = self.api.call(credential, "GET", path)
            self.expect_status(reply, 401, f"{credential.label} on the custom route {route}", set())
            return
        headers = self.forged_headers(actor, ["headers"], None) if self.chance(0.3) else None
        reply = self.api.call(actor, "GET", path, headers=headers)
        self.app_expectation(actor, reply, thread_id if "{thread}" in route else None)

    def path_tricks(self, thread_id: str) -> list[str]:
        """Raw paths that name an API route (another user's thread) through dot segments,
        empty segments, encoded slashes and dots, or the custom routes' or public routes'
        prefixes."""
        return [
            f"/custom/../threads/{thread_id}",
            f"/custom/..%2Fthreads/{thread_id}",
            f"/custom/%2e%2e/threads/{thread_id}",
            f"/custom/me/../../threads/{thread_id}",
            f"//threads/{thread_id}",
            f"/threads//{thread_id}",
            f"/threads/{thread_id}/",
            f"/threads%2F{thread_id}",
            f"/%74hreads/{thread_id}",
            f"/ok/../threads/{thread_id}",
            f"/docs/..%2Fthreads/{thread_id}",
            f"/openapi.json/../threads/{thread_id}",
            f"/./threads/{thread_id}/state",
            f"/custom/threads/{thread_id}/../../../threads/{thread_id}/state",
            f"/custom%2Fthreads%2F{thread_id}",
            f"/custom/threads/{thread_id}%2F..%2F..%2F..%2Fthreads%2F{thread_id}",
        ]

    @operation("app.path_tricks", 1.5)
    def op_app_path_tricks(self) -> None:
        """Path tricks never reach an API route around auth: 401 without credentials; with a
        valid user, another user's thread stays hidden (a 4xx, or a custom route echoing the
        caller and the id) and unchanged."""
        actor = self.actor()
        victim = self.pick_victim(actor)
        thread_id = victim.thread_id if victim else self.missing_thread_id()
        path = self.rng.choice(self.path_tricks(thread_id))
        if self.chance(0.4):
            credential = self.rng.choice(BAD_CREDENTIALS)
            reply = self.api.call(credential, "GET", "/", raw_path=path)
            self.expect_status(reply, 401, f"{credential.label} on the raw path {path}", {thread_id})
            return
        method = self.rng.choice(["GET", "GET", "PATCH", "DELETE"])
        body = {"metadata": {"owner": actor.identity, "note": self.canaries.new(actor.identity)}} if method == "PATCH" else _UNSET
        with self.guard(f"{actor.identity}'s {method} {path}", threads=[victim] if victim else []):
            reply = self.api.call(actor, method, "/", raw_path=path, json_body=body)
        if reply.status == 200 and isinstance(reply.json(), dict) and set(reply.json()) == {"thread_id", "identity"}:
            self.check(
                reply.json().get("identity") == actor.identity, "app-identity", "a custom route saw another user", actor.identity, reply.brief(), {thread_id}, reply
            )
            return
        self.check(
            400 <= reply.status < 500 and reply.status not in (401, 403),
            "path-trick",
            f"{method} {path} as {actor.identity} reached another user's thread",
            "a 404 (or 405, 422) or the custom route's echo",
            reply.brief(),
            {thread_id},
            reply,
        )

    @operation("metrics", 0.5)
    def op_metrics(self) -> None:
        """`/metrics`: 401 without valid credentials; with them, no user's canary, identity
        or thread id among the labels."""
        if self.chance(0.3):
            credential = self.rng.choice(BAD_CREDENTIALS)
            self.expect_status(self.api.call(credential, "GET", "/metrics"), 401, f"{credential.label} on /metrics", set())
            return
        actor = self.actor()
        reply = self.api.call(actor, "GET", "/metrics")
        if not self.expect_status(reply, 200, "/metrics", set()):
            return
        labels = " ".join(re.findall(r"\{[^}]*\}", reply.text))
        found = sorted(
            {canary for canary, _identity in canaries_in(labels)}
            | {identity for identity in self.api.identities if f'"{identity}"' in labels}
            | {thread_id for thread_id in self.model.threads if thread_id in labels}
        )
        self.check(not found, "metrics-leak", "/metrics labels name users' data", "routes, statuses and handlers only", found, set(found), reply)

    # --- operations: the event-streaming protocol --------------------------------------------

    def next_rpc_id(self) -> int:
        self.rpc_ids += 1
        return self.rpc_ids

    def command(self, who: User | Credential, thread_id: str, method: str, params: dict | None = None, headers: dict[str, str] | None = None) -> Reply:
        """`POST /threads/{id}/commands` with one protocol command (its id: `self.rpc_ids`)."""
        body = {"id": self.next_rpc_id(), "method": method, "params": params if params is not None else {}}
        return self.api.call(who, "POST", f"/threads/{thread_id}/commands", json_body=body, headers=headers)

    def protocol_events(
        self, who: User | Credential, thread_id: str, body: dict, seconds: float, *, until_end_of: str | None = None, headers: dict[str, str] | None = None
    ) -> Reply:
        """`POST /threads/{id}/stream/events`: what came within `seconds` (with `until_end_of`,
        a run's canary: until that run's root lifecycle ended)."""
        stop = (lambda text: run_ended(text, until_end_of)) if until_end_of is not None else None
        return self.api.call(who, "POST", f"/threads/{thread_id}/stream/events", json_body=body, headers=headers, stream_seconds=seconds, stop_when=stop)

    def pick_channels(self) -> list[str]:
        channels = self.sample(list(PROTOCOL_CHANNELS), self.rng.randint(1, 4))
        if self.chance(0.1):
            channels.append("custom:progress")
        return channels

    def expect_nothing_created(self, actor: User, thread_id: str) -> None:
        """A refused request that named a missing thread did not create it."""
        reply = self.api.call(actor, "GET", f"/threads/{thread_id}")
        if self.expect_status(reply, 404, "a refused request must not create the thread it named", {thread_id}):
            return
        if reply.status == 200 and thread_id not in self.model.threads:
            self.model.add_thread(ThreadModel(thread_id, actor.identity, metadata=None, history=None, runs_known=False))  # reported; followed from here on

    def check_protocol_events(self, actor: User, thread: ThreadModel, reply: Reply, channels: list[str], events: list[SseEvent] | None = None) -> list[SseEvent]:
        """The events of the owner's thread (the reply's SSE events, or `events`): protocol
        events in `seq` order (the SSE id is the seq), of the channels asked for only, and every
        run they show ran as the owner on this thread (or one it was copied from)."""
        events = reply.events() if events is None else events
        subject = {thread.thread_id}
        previous = 0
        for event in events:
            data = event.data
            if not self.check(
                isinstance(data, dict) and data.get("type") == "event" and isinstance(data.get("seq"), int) and isinstance(data.get("params"), dict),
                "protocol-events",
                "an event of the event stream is not a protocol event",
                '{"type": "event", "seq": …, "method": …, "params": …}',
                str(data)[:300],
                subject,
                reply,
            ):
                return events
            seq = data["seq"]
            self.check(
                seq > previous and event.id == str(seq) and data.get("method") == event.event,
                "protocol-events",
                "protocol events out of order, or their SSE id / event name is not their seq / method",
                f"seq > {previous}, id {seq}, event {data.get('method')}",
                (seq, event.id, event.event),
                subject,
                reply,
            )
            previous = max(previous, seq)
            method = str(data.get("method"))
            payload = data["params"].get("data")
            channel = "input" if method == "input.requested" else method
            name = payload.get("name") if isinstance(payload, dict) else None
            self.check(
                channel in channels or (channel == "custom" and f"custom:{name}" in channels),
                "protocol-filter",
                "the event stream sent an event of a channel nobody asked for",
                channels,
                method,
                subject,
                reply,
                key=subject | {method},
            )
            if method == "values":
                self.check_seen_entries(actor, payload, thread, reply)
            elif method == "updates" and isinstance(payload, dict):
                for update in payload.values():
                    if isinstance(update, dict):
                        self.check_seen_entries(actor, update, thread, reply)
        return events

    def check_run_events(self, actor: User, thread: ThreadModel, reply: Reply, run_id: str, canary: str) -> None:
        """The events of one protocol run, from after `run.start`'s `applied_through_seq`: it
        runs, its last root values hold its input and its own record, and it completes."""
        subject = {thread.thread_id, run_id, canary}
        if not self.expect_status(reply, 200, "the event stream of one's own thread", subject):
            return
        events = self.check_protocol_events(actor, thread, reply, ["values", "lifecycle", "updates"])
        root = [(event.event, params) for event in events if isinstance(event.data, dict) for params in [event.data.get("params") or {}] if params.get("namespace") == []]
        lifecycle = [(index, (params.get("data") or {}).get("event")) for index, (method, params) in enumerate(root) if method == "lifecycle"]
        holding = [index for index, (method, params) in enumerate(root) if method == "values" and canary in message_texts(params.get("data"))]
        self.check(
            any(name == "running" for _, name in lifecycle), "protocol-events", "a protocol run's thread events lack its start", "running", lifecycle, subject, reply
        )
        if not self.check(bool(holding), "protocol-events", "a protocol run's values never held its input", canary, len(root), subject, reply):
            return
        final = root[holding[-1]][1].get("data")
        records = [entry for entry in final.get("seen") or [] if isinstance(entry, dict) and entry.get("run_id") == run_id] if isinstance(final, dict) else []
        self.check(bool(records), "protocol-events", "a protocol run's values lack its own record", f"an entry for run {run_id}", str(final)[:300], subject, reply)
        ends = [name for index, name in lifecycle if index > holding[-1] and name in ROOT_ENDS]
        self.check(ends[:1] == ["completed"], "protocol-events", "a protocol run did not complete", "completed", ends[:1] or "no end", subject, reply)

    PROTOCOL_COMMANDS = ("run.start", "subscription.subscribe", "subscription.unsubscribe", "agent.getTree", "input.respond", "thread.bogus")

    @operation("protocol.commands", 3)
    def op_protocol_commands(self) -> None:
        """A protocol command on a thread (own, another user's or missing). `run.start` runs as
        the caller, on their own or a missing thread with an assistant they may use; every other
        command on a thread they may not read is 404, and the thread reads the same after."""
        actor = self.actor()
        method = self.rng.choices(self.PROTOCOL_COMMANDS, [6, 1.5, 0.5, 1, 1, 0.3])[0]
        if method == "run.start":
            self.protocol_run_start(actor)
            return
        relation, thread, thread_id = self.pick_thread(actor)
        params = {
            "subscription.subscribe": {"channels": self.pick_channels(), "since": 0},
            "subscription.unsubscribe": {"subscription_id": self.new_id()},
            "agent.getTree": {},
            "input.respond": {"namespace": [], "interrupt_id": self.new_id().replace("-", ""), "response": self.canaries.new(actor.identity)},
            "thread.bogus": {},
        }[method]
        with self.guard(f"{actor.identity}'s {method} on {thread_id}", threads=[thread] if relation is Relation.FOREIGN else []):
            reply = self.command(actor, thread_id, method, params)
            sent = self.rpc_ids
            subject = {thread_id}
            if method == "thread.bogus":
                # Unknown commands are refused before the thread is looked at: the answer says
                # nothing of whether the thread exists or whose it is.
                if self.expect_status(reply, 200, "an unknown protocol command", subject):
                    answer = reply.json() or {}
                    self.check(answer.get("error") == "unknown_command", "protocol", "an unknown command's answer", "unknown_command", reply.brief(), subject, reply)
                return
            if relation is not Relation.OWN:
                self.expect_status(reply, 404, f"{method} on a {relation.value} thread", subject)
                return
            if not self.expect_status(reply, 200, f"{method} on one's own thread", subject):
                return
            answer = reply.json() or {}
            expected = {"subscription.subscribe": "success", "subscription.unsubscribe": "success", "input.respond": "error"}.get(method)
            self.check(
                answer.get("id") == sent and answer.get("type") in ("success", "error") and expected in (None, answer.get("type")),
                "protocol",
                f"the answer to {method} on one's own thread",
                {"id": sent, "type": expected or "success or error"},
                reply.brief(),
                subject,
                reply,
            )
            if method == "agent.getTree" and answer.get("type") == "success":
                graph = ((answer.get("result") or {}).get("tree") or {}).get("graph_name")
                self.check(
                    graph in (*GRAPHS, INTERRUPT_GRAPH, self.model.public.graph_id), "protocol", "agent.getTree names no graph of this app", GRAPHS, graph, subject, reply
                )

    def protocol_run_start(self, actor: User) -> None:
        """`run.start` on an own, another user's or a missing thread, with any assistant and
        forged config, metadata and headers: the run is the caller's (joined and checked like
        any background run), or it is refused (404) and nothing is created."""
        relation, thread, thread_id = self.pick_thread(actor, usable=lambda t: t.run_count() < RUNS_PER_THREAD)
        assistant, graph, usable, resolved = self.pick_run_assistant(actor, background=True)
        forged = [name for name in self.pick_forgeries(stateful=False) if name in ("user_id", "auth_user_id", "thread_id", "owner", "headers")]
        victims = self.victims_for(actor, forged)
        victim = victims[0] if victims else None
        canary = self.canaries.new(actor.identity)
        body = self.run_body(actor, assistant, graph, canary, forged=forged, victim=victim, stateful=False, sleep=0.05 if self.chance(0.3) else None)
        params = {key: body[key] for key in ("assistant_id", "input", "metadata", "config") if key in body}
        headers = self.forged_headers(actor, forged, victim)
        if relation is Relation.OWN and thread is not None:
            self.settle(thread)
        refused_own = relation is Relation.OWN and not usable  # a refused request changes one's own thread neither
        guarded = victims + ([thread] if relation is Relation.FOREIGN or refused_own else [])
        with self.guard(f"{actor.identity}'s run.start on {thread_id} with {assistant} (forged {forged})", actor=actor, threads=guarded):
            reply = self.command(actor, thread_id, "run.start", params, headers=headers or None)
            subject = {thread_id, canary}
            if not usable or relation is Relation.FOREIGN:
                self.expect_status(reply, 404, f"run.start on a {relation.value} thread with assistant {assistant} must be refused", subject)
                if relation is Relation.MISSING and reply.status >= 400:
                    self.expect_nothing_created(actor, thread_id)
                return
            if not self.expect_status(reply, 200, f"{actor.identity}'s run.start on their {relation.value} thread", subject):
                return
            answer = reply.json() or {}
            run_id = str((answer.get("result") or {}).get("run_id"))
            if not self.check(
                answer.get("type") == "success" and bool(UUID.fullmatch(run_id)), "protocol", "run.start did not start a run", "success and a run_id", reply.brief(), subject, reply
            ):
                return
            if relation is Relation.MISSING:
                thread = self.model.add_thread(ThreadModel(thread_id, actor.identity, metadata=None))
            assert thread is not None
            if thread.metadata is not None:
                thread.metadata.update({"graph_id": graph, "assistant_id": resolved})
            record = RunModel(run_id, thread_id, actor.identity, canary, graph, assistant=resolved)
            thread.runs[run_id] = record
            thread.active.append(record)
            if self.chance(0.4):
                since = (answer.get("meta") or {}).get("applied_through_seq")
                events = self.protocol_events(actor, thread_id, {"channels": ["values", "lifecycle", "updates"], "since": since}, 10.0, until_end_of=canary)
                self.check_run_events(actor, thread, events, run_id, canary)
            if victims:
                self.settle(thread)

    @operation("protocol.events", 1.5)
    def op_protocol_events(self) -> None:
        """The SSE event stream of a thread (replayed from the start, or live only): one's
        own thread's events are one's own runs'; another user's or a missing thread is 404 with
        no event."""
        actor = self.actor()
        relation, thread, thread_id = self.pick_thread(actor)
        channels = self.pick_channels()
        body: dict[str, Any] = {"channels": channels}
        if self.chance(0.5):
            body["since"] = 0
        if self.chance(0.2):
            body["namespaces"], body["depth"] = [[]], 0
        headers = {"Last-Event-ID": "0"} if "since" not in body and self.chance(0.3) else None
        reply = self.protocol_events(actor, thread_id, body, 0.15, headers=headers)
        if relation is Relation.OWN and thread is not None:
            if self.expect_status(reply, 200, "the event stream of one's own thread", {thread_id}):
                self.check_protocol_events(actor, thread, reply, channels)
            return
        self.expect_status(reply, 404, f"the event stream of a {relation.value} thread", {thread_id})
        self.check(not reply.events(), "protocol-leak", f"the event stream of a {relation.value} thread sent events", "none", reply.brief(), {thread_id}, reply)

    def socket(self, who: User | Credential, thread_id: str, commands: list[dict], seconds: float) -> Reply:
        """A WebSocket on `/threads/{id}/stream/events`: sends `commands` and gathers the frames
        that come within `seconds` (the reply's text: one JSON frame a line, status 101), or
        the handshake's refusal (its status and body). Traced and checked like any answer."""
        from websockets.exceptions import ConnectionClosed, InvalidStatus
        from websockets.sync.client import connect

        path = f"/threads/{thread_id}/stream/events"
        url = self.base_url.replace("http", "ws", 1) + path
        headers = {"Authorization": who.authorization} if who.authorization is not None else {}
        frames: list[str] = []
        status, text = 101, ""
        self.api.requests += 1
        try:
            with connect(url, additional_headers=headers, open_timeout=10, close_timeout=2) as connection:
                for command in commands:
                    connection.send(json.dumps(command))
                deadline = time.monotonic() + seconds
                while (left := deadline - time.monotonic()) > 0:
                    try:
                        frame = connection.recv(timeout=left)
                    except TimeoutError:
                        break
                    frames.append(frame if isinstance(frame, str) else frame.decode(errors="replace"))
        except InvalidStatus as error:
            status, text = error.response.status_code, (error.response.body or b"").decode(errors="replace")
        except (OSError, ConnectionClosed) as error:
            if not self.api.server_answers():
                raise ServerGone(f"WS {path}: {error!r}") from error
            status, text = 0, repr(error)
        if status == 101:
            text = "\n".join(frames)
        sent = json.dumps(commands)
        label = who.identity if isinstance(who, User) else who.label
        tokens = (frozenset(UUID.findall(f"{path} {sent} {text[:2048]}")) - SHARED_IDS) | frozenset(canary for canary, _ in canaries_in(sent))
        exchange = self.trace.add(
            user=label, authorization=who.authorization, method="WS", path=path, body=sent[:BODY_KEEP], headers={}, status=status, excerpt=text[:EXCERPT], tokens=tokens
        )
        reply = Reply(status, text, httpx.Headers({"content-type": "application/json"} if status != 101 else {}), exchange)
        self.api._generic_oracles(who, reply, f"{path} {sent}")
        return reply

    @operation("protocol.socket", 0.6)
    def op_protocol_socket(self) -> None:
        """The protocol over a WebSocket: on another user's thread the handshake is refused
        (404), without credentials 401; on a missing thread it opens with no event; on one's
        own thread each command is answered (by its id) and a subscription's events are the
        owner's, as over SSE."""
        actor = self.actor()
        if self.chance(0.15):
            credential = self.rng.choice(BAD_CREDENTIALS[:5])
            _relation, _thread, thread_id = self.pick_thread(actor, own=0.3, foreign=0.5)
            reply = self.socket(credential, thread_id, [], 0.0)
            self.expect_status(reply, 401, f"{credential.label} opening a protocol WebSocket", {thread_id})
            return
        relation, thread, thread_id = self.pick_thread(actor)
        channels = self.pick_channels()
        first = self.next_rpc_id()
        commands = [{"id": first, "method": "subscription.subscribe", "params": {"channels": channels, "since": 0}}]
        if self.chance(0.5):
            commands.append({"id": self.next_rpc_id(), "method": self.rng.choice(["agent.getTree", "thread.bogus", "subscription.unsubscribe"]), "params": {}})
        reply = self.socket(actor, thread_id, commands, 0.2)
        subject = {thread_id}
        if relation is Relation.MISSING:
            # Nobody's thread: the socket is the caller's to create it (as the JS client does);
            # it is open, its subscription kept, and there is nothing to see.
            if not self.expect_status(reply, 101, "opening a protocol WebSocket on a missing thread", subject):
                return
            documents = [json.loads(line) for line in reply.text.splitlines() if line.startswith("{")]
            self.check(
                not any(document.get("type") == "event" for document in documents if isinstance(document, dict)),
                "protocol-leak",
                "a protocol WebSocket on a missing thread carried events",
                "no event",
                reply.text[:300],
                subject,
                reply,
            )
            return
        if relation is not Relation.OWN or thread is None:
            self.expect_status(reply, 404, f"opening a protocol WebSocket on a {relation.value} thread", subject)
            return
        if not self.expect_status(reply, 101, "opening a protocol WebSocket on one's own thread", subject):
            return
        documents = []
        for line in reply.text.splitlines():
            try:
                documents.append(json.loads(line))
            except ValueError:
                documents.append(line)
        answers = {document.get("id"): document for document in documents if isinstance(document, dict) and document.get("type") in ("success", "error")}
        self.check(
            set(answers) == {command["id"] for command in commands} and answers[first].get("type") == "success",
            "protocol",
            "a protocol WebSocket did not answer each command by its id (the subscription with success)",
            [command["id"] for command in commands],
            reply.text[:300],
            subject,
            reply,
        )
        events = [SseEvent(str(document.get("method")), document, str(document.get("seq"))) for document in documents if isinstance(document, dict) and document.get("type") == "event"]
        self.check_protocol_events(actor, thread, reply, channels, events)

    def wait_thread_status(self, owner: User, thread_id: str, status: str, limit: float = 15.0) -> dict | None:
        """The owner's thread once it has `status` (None, reported, if it does not within `limit`)."""
        deadline = time.monotonic() + limit
        while True:
            reply = self.api.call(owner, "GET", f"/threads/{thread_id}")
            body = reply.json() if reply.status == 200 else None
            if isinstance(body, dict) and body.get("status") == status:
                return body
            if time.monotonic() > deadline:
                self.violation("protocol-run", f"{owner.identity}'s thread never became {status}", status, reply.brief(), {thread_id}, reply)
                return None
            time.sleep(0.05)

    @operation("protocol.interrupt", 0.4)
    def op_protocol_interrupt(self) -> None:
        """A protocol run of `approve` stops at its interrupt. Another user tries `run.start`
        (which would resume it), `input.respond` with the interrupt's real id, subscribing,
        `agent.getTree` and the event stream: all 404, no event, the thread reads the same. The
        owner sees the `input.requested` event and answers it; the run ends with the answer.
        Then maybe the owner deletes the thread and the other user takes its id."""
        owner = self.actor()
        intruder = self.other(owner)
        thread_id = self.new_id()
        canary = self.canaries.new(owner.identity)
        question = {"assistant_id": INTERRUPT_GRAPH, "input": {"messages": [{"role": "human", "content": canary}]}, "metadata": {"tag": canary}}
        started = self.command(owner, thread_id, "run.start", question)
        subject = {thread_id, canary}
        if not self.expect_status(started, 200, f"{owner.identity}'s run.start of {INTERRUPT_GRAPH}", subject):
            return
        run_id = str(((started.json() or {}).get("result") or {}).get("run_id"))
        thread = self.model.add_thread(ThreadModel(thread_id, owner.identity, metadata=None, history=None, reserved=True))
        thread.runs[run_id] = RunModel(run_id, thread_id, owner.identity, canary, INTERRUPT_GRAPH)
        try:
            record = self.wait_thread_status(owner, thread_id, "interrupted")
            interrupts = [item for items in ((record or {}).get("interrupts") or {}).values() if isinstance(items, list) for item in items if isinstance(item, dict)]
            if record is None or not self.check(bool(interrupts), "protocol-run", "an interrupted thread shows no interrupt", "its interrupt", str(record)[:300], subject):
                return
            interrupt_id = str(interrupts[0].get("id"))
            self.intrude_interrupted(intruder, thread, interrupt_id)
            seen = self.protocol_events(owner, thread_id, {"channels": ["input", "lifecycle"], "since": 0}, 0.3)
            if self.expect_status(seen, 200, "the event stream of one's own interrupted thread", subject):
                events = self.check_protocol_events(owner, thread, seen, ["input", "lifecycle"])
                asked = [((event.data.get("params") or {}).get("data") or {}) for event in events if event.event == "input.requested" and isinstance(event.data, dict)]
                self.check(
                    any(item.get("interrupt_id") == interrupt_id and canary in json.dumps(item.get("value")) for item in asked),
                    "protocol-events",
                    "the owner's event stream lacks their run's input.requested",
                    {"interrupt_id": interrupt_id, "value": {"question": canary}},
                    asked,
                    subject,
                    seen,
                )
            reply_text = f"ok {canary}"
            answered = self.command(owner, thread_id, "input.respond", {"namespace": [], "interrupt_id": interrupt_id, "response": reply_text})
            if self.expect_status(answered, 200, "the owner answers their interrupt", subject) and self.check(
                (answered.json() or {}).get("type") == "success", "protocol", "the owner's input.respond was refused", "success", answered.brief(), subject, answered
            ):
                done = self.wait_thread_status(owner, thread_id, "idle")
                if done is not None:
                    texts = message_texts(done.get("values"))
                    self.check(f"answer: {reply_text}" in texts, "protocol-run", "the resumed run did not get its owner's answer", f"answer: {reply_text}", texts, subject)
        finally:
            thread.reserved = False
            thread.metadata, thread.history, thread.runs_known = None, None, False  # learned at the next reading
        if self.chance(0.5):
            self.protocol_reuse(owner, intruder, thread)

    def intrude_interrupted(self, intruder: User, thread: ThreadModel, interrupt_id: str) -> None:
        canary = self.canaries.new(intruder.identity)
        attempts = [
            ("run.start", {"assistant_id": "echo", "input": {"messages": [{"role": "human", "content": canary}]}}),
            ("run.start", {"assistant_id": INTERRUPT_GRAPH, "input": f"hijack {canary}"}),
            ("input.respond", {"namespace": [], "interrupt_id": interrupt_id, "response": f"hijack {canary}"}),
            ("input.respond", {"responses": [{"interrupt_id": interrupt_id, "response": f"hijack {canary}"}]}),
            ("subscription.subscribe", {"channels": ["input", "lifecycle"], "since": 0}),
            ("agent.getTree", {}),
        ]
        subject = {thread.thread_id, canary}
        with self.guard(f"{intruder.identity}'s commands on {thread.owner}'s interrupted thread", threads=[thread]):
            for method, params in self.sample(attempts, 3):
                reply = self.command(intruder, thread.thread_id, method, params)
                self.expect_status(reply, 404, f"{method} on another user's interrupted thread", subject)
            stream = self.protocol_events(intruder, thread.thread_id, {"channels": ["input", "lifecycle", "values"], "since": 0}, 0.15)
            self.expect_status(stream, 404, "the event stream of another user's interrupted thread", subject)
            self.check(not stream.events(), "protocol-leak", "another user's interrupted thread streamed events", "none", stream.brief(), subject, stream)

    def protocol_reuse(self, owner: User, intruder: User, thread: ThreadModel) -> None:
        """The owner deletes their thread (maybe while a protocol run of theirs still runs on
        it) and the intruder creates one with its id: its event stream, replayed from the
        start, has none of the old thread's events, and no run is active on it."""
        thread_id = thread.thread_id
        subject = {thread_id}
        if self.chance(0.4):
            canary = self.canaries.new(owner.identity)
            params = {"assistant_id": "echo", "input": {"messages": [{"role": "human", "content": canary}], "sleep": 0.4}}
            self.expect_status(self.command(owner, thread_id, "run.start", params), 200, "the owner's run.start on their thread", subject)
        deleted = self.api.call(owner, "DELETE", f"/threads/{thread_id}")
        if not self.expect_status(deleted, 204, "deleting one's own thread", subject):
            return
        self.model.drop_thread(thread_id)
        created = self.api.call(intruder, "POST", "/threads", json_body={"thread_id": thread_id, "metadata": {"tag": self.canaries.new(intruder.identity)}})
        if not self.expect_status(created, 200, "creating a thread with a deleted thread's id", subject):
            return
        taken = self.model.add_thread(ThreadModel(thread_id, intruder.identity, metadata=None))
        stream = self.protocol_events(intruder, thread_id, {"channels": list(PROTOCOL_CHANNELS), "since": 0}, 0.6)
        if self.expect_status(stream, 200, "the event stream of one's own new thread", subject):
            self.check(
                not stream.events(),
                "protocol-leak",
                "a thread's new owner gets the events of the deleted thread that had its id",
                "no event",
                stream.brief(),
                subject,
                stream,
            )
        tree = self.command(intruder, thread_id, "agent.getTree")
        if self.expect_status(tree, 200, "agent.getTree on one's own new thread", subject):
            self.check(
                (tree.json() or {}).get("error") == "no_such_run",
                "protocol-leak",
                "a thread's new owner sees the deleted thread's run in agent.getTree",
                "no_such_run",
                tree.brief(),
                subject,
                tree,
            )
        self.thread_reading(taken)

    # --- operations: MCP ---------------------------------------------------------------------

    MCP_HEADERS = {"Accept": "application/json, text/event-stream"}

    def mcp(self, who: User | Credential, method: str, params: dict | None = None) -> Reply:
        body: dict[str, Any] = {"jsonrpc": "2.0", "id": self.next_rpc_id(), "method": method}
        if params is not None:
            body["params"] = params
        return self.api.call(who, "POST", "/mcp", json_body=body, headers=self.MCP_HEADERS)

    def tool_names_of(self, identity: str) -> Counter[str]:
        """The MCP tool names of a user's assistants (those they may search), with repeats."""
        return Counter(tool_name(a.current["name"], a.assistant_id) for a in self.model.assistants_of(identity))

    @operation("mcp", 2.5)
    def op_mcp(self) -> None:
        """`/mcp`: `tools/list` lists exactly the caller's own assistants' tools; `tools/call`
        runs one of them statelessly as the caller and refuses any other name (another user's
        assistant's name or id, a graph's, a made-up one), changing nothing; bad credentials 401."""
        actor = self.actor()
        variant = self.rng.choices(["initialize", "list", "call", "credentials"], [0.4, 1.2, 2, 0.4])[0]
        if variant == "credentials":
            credential = self.rng.choice(BAD_CREDENTIALS)
            theirs = [a for a in self.model.assistants.values()]
            name = tool_name(theirs[0].current["name"], theirs[0].assistant_id) if theirs else "echo"
            method, params = self.rng.choice([("initialize", {"protocolVersion": "2025-06-18"}), ("tools/list", {}), ("tools/call", {"name": name, "arguments": {}}), ("ping", None)])
            reply = self.mcp(credential, method, params)
            self.expect_status(reply, 401, f"{credential.label} on MCP {method}", set())
            return
        if variant == "initialize":
            reply = self.mcp(actor, "initialize", {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "hunter", "version": "1"}})
            if self.expect_status(reply, 200, "MCP initialize", set()):
                result = (reply.json() or {}).get("result") or {}
                self.check(isinstance(result.get("protocolVersion"), str), "mcp", "MCP initialize has no protocolVersion", "a version", reply.brief(), set(), reply)
            return
        if variant == "list":
            reply = self.mcp(actor, "tools/list", {})
            if not self.expect_status(reply, 200, "MCP tools/list", set()):
                return
            tools = ((reply.json() or {}).get("result") or {}).get("tools")
            if not self.check(isinstance(tools, list), "mcp", "MCP tools/list has no tools list", "a list", reply.brief(), set(), reply):
                return
            listed = Counter(str(tool.get("name")) for tool in tools if isinstance(tool, dict))
            expected = set(self.tool_names_of(actor.identity))
            others = {name for user in self.model.users if user != actor for name in self.tool_names_of(user.identity)} - expected
            leaked = set(listed) & others
            self.check(not leaked, "mcp-leak", f"{actor.identity}'s MCP tools include other users' assistants", sorted(expected), sorted(leaked), leaked, reply)
            self.check(
                set(listed) == expected and all(count == 1 for count in listed.values()),
                "mcp-tools",
                f"{actor.identity}'s MCP tools are not exactly their own assistants",
                sorted(expected),
                sorted(listed.elements()),
                set(listed) ^ expected,
                reply,
            )
            return
        self.mcp_call(actor)

    def mcp_call(self, actor: User) -> None:
        mine = self.model.assistants_of(actor.identity)
        theirs = [a for a in self.model.assistants.values() if a.owner != actor.identity]
        roll = self.rng.random()
        victim = None
        if roll < 0.45 and mine:
            target = self.rng.choice(mine)
            name = tool_name(target.current["name"], target.assistant_id)
        elif roll < 0.85 and theirs:
            victim = self.rng.choice(theirs)
            name = self.rng.choice([tool_name(victim.current["name"], victim.assistant_id), victim.assistant_id])
        else:
            name = self.rng.choice([*GRAPHS, INTERRUPT_GRAPH, self.model.public.graph_id, "public", self.new_id()])
        counts = self.tool_names_of(actor.identity)
        allowed = counts.get(name, 0) == 1
        runner = next((a for a in mine if tool_name(a.current["name"], a.assistant_id) == name), None) if allowed else None
        canary = self.canaries.new(actor.identity)
        key = self.rng.choice(STORE_KEYS)
        arguments: dict[str, Any] = {"messages": [{"role": "human", "content": canary}]}
        if runner is not None and runner.graph_id == "memory":
            arguments["key"] = key
        subject = {name, canary}
        stores = [actor.identity] if victim is not None and victim.graph_id == "memory" else []
        with self.guard(f"{actor.identity}'s MCP tools/call {name}", assistants=[victim] if victim else [], stores=stores):
            reply = self.mcp(actor, "tools/call", {"name": name, "arguments": arguments})
            if not self.expect_status(reply, 200, f"MCP tools/call {name}", subject):
                return
            body = reply.json() or {}
            if runner is None:
                self.check(
                    is_jsonrpc_error(body) and "result" not in body,
                    "not-denied",
                    f"MCP tools/call {name} (not a tool of {actor.identity}'s) must be refused",
                    "a JSON-RPC error",
                    reply.brief(),
                    subject,
                    reply,
                )
                return
            result = body.get("result")
            if not self.check(
                isinstance(result, dict) and not result.get("isError"), "mcp-call", f"MCP tools/call of {actor.identity}'s own tool {name} failed", "a result", reply.brief(), subject, reply
            ):
                return
            forbidden = {t.thread_id for t in self.model.threads.values() if t.owner != actor.identity}
            memory = (key, canary) if runner.graph_id == "memory" else None
            self.check_run_values(actor, result.get("structuredContent"), thread_id=None, canary=canary, graph=runner.graph_id, reply=reply, forbidden=forbidden, memory=memory)

    # --- operations: A2A ---------------------------------------------------------------------

    def a2a_methods(self) -> tuple[str, str]:
        """(send, get) in the names of the version in use: A2A 0.3's or 1.0's."""
        return ("SendMessage", "GetTask") if self.a2a_dialect == "1.0" else ("message/send", "tasks/get")

    def a2a_message(self, text: str, context_id: str | None) -> dict:
        message: dict[str, Any] = {"messageId": str(uuid.UUID(int=self.rng.getrandbits(128), version=4))}
        if self.a2a_dialect == "1.0":
            message.update(role="ROLE_USER", parts=[{"text": text}])
        else:
            message.update(kind="message", role="user", parts=[{"kind": "text", "text": text}])
        if context_id is not None:
            message["contextId"] = context_id
        return message

    def a2a(self, who: User | Credential, assistant: str, kind: str, params: Callable[[], dict]) -> Reply:
        """One A2A JSON-RPC request (`send` or `get`) to `/a2a/{assistant}`, in a version the
        server speaks (either, at random, while it refuses neither's method names); `params`
        builds the params in that version's shapes."""
        while True:
            self.a2a_dialect = self.rng.choice(self.a2a_dialects)
            method = self.a2a_methods()[0 if kind == "send" else 1]
            body = {"jsonrpc": "2.0", "id": self.next_rpc_id(), "method": method, "params": params()}
            reply = self.api.call(who, "POST", f"/a2a/{assistant}", json_body=body)
            answer = reply.json()
            error = answer.get("error") if isinstance(answer, dict) else None
            if reply.status == 200 and isinstance(error, dict) and error.get("code") == -32601 and len(self.a2a_dialects) > 1:
                self.a2a_dialects.remove(self.a2a_dialect)
                continue
            return reply

    @staticmethod
    def rpc_refused(reply: Reply) -> bool:
        """A JSON-RPC request refused: a JSON-RPC error without a result (or a bare 404)."""
        body = reply.json()
        return reply.status == 404 or (reply.status == 200 and is_jsonrpc_error(body) and "result" not in body)

    @operation("a2a.card", 1)
    def op_a2a_card(self) -> None:
        """An assistant's A2A agent card (three paths): one's own and the public one are
        served, another user's, a system one or a missing one is 404."""
        actor = self.actor()
        kind, assistant, assistant_id = self.assistant_target(actor)
        form = self.rng.choice(["path", "well-known-path", "query"])
        if form == "query":
            reply = self.api.call(actor, "GET", "/.well-known/agent-card.json", params={"assistant_id": assistant_id})
        else:
            reply = self.api.call(actor, "GET", f"/a2a/{assistant_id}" + ("/.well-known/agent-card.json" if form == "well-known-path" else ""))
        subject = {assistant_id}
        if kind in ("own", "public"):
            if self.expect_status(reply, 200, f"the agent card of an assistant ({kind}) one may read", subject) and assistant is not None:
                card = reply.json() or {}
                self.check(
                    card.get("name") == assistant.current["name"] and str(card.get("url", "")).endswith(f"/a2a/{assistant_id}"),
                    "a2a-card",
                    "an agent card is not its assistant's",
                    {"name": assistant.current["name"], "url": f".../a2a/{assistant_id}"},
                    {"name": card.get("name"), "url": card.get("url")},
                    subject,
                    reply,
                )
            return
        allowed = {404, 422} if kind == "system" and not UUID.fullmatch(assistant_id) else 404
        self.expect_status(reply, allowed, f"the agent card of a {kind} assistant", subject)

    @operation("a2a.send", 2)
    def op_a2a_send(self) -> None:
        """An A2A `message/send` to an assistant, in a context (thread) that is one's own,
        another user's, missing, or none: it runs as the caller on their own or a new thread;
        another user's context or an assistant one may not use is refused, the thread reads the
        same after, nothing of it is answered, and a missing context is not created."""
        actor = self.actor()
        assistant, graph, usable, resolved = self.pick_run_assistant(actor, background=True)
        if self.chance(0.25):
            relation, thread, thread_id = Relation.MISSING, None, None
        else:
            relation, thread, thread_id = self.pick_thread(actor, usable=lambda t: t.run_count() < RUNS_PER_THREAD)
        canary = self.canaries.new(actor.identity)
        if relation is Relation.OWN and thread is not None:
            self.settle(thread)
        guarded = [thread] if relation is Relation.FOREIGN or (relation is Relation.OWN and not usable) else []
        with self.guard(f"{actor.identity}'s A2A message to {assistant} in context {thread_id}", actor=actor, threads=guarded):
            reply = self.a2a(actor, assistant, "send", lambda: {"message": self.a2a_message(canary, thread_id)})
            subject = {thread_id or "", canary}
            if not usable or relation is Relation.FOREIGN:
                self.check(
                    self.rpc_refused(reply),
                    "not-denied",
                    f"an A2A message to assistant {assistant} in a {relation.value if thread_id else 'new'} context must be refused",
                    "a JSON-RPC error (or 404)",
                    reply.brief(),
                    subject,
                    reply,
                )
                if thread_id is not None and relation is Relation.MISSING:
                    self.expect_nothing_created(actor, thread_id)
                return
            if not self.expect_status(reply, 200, "an A2A message/send", subject):
                return
            task = a2a_task((reply.json() or {}).get("result"))
            task_id = str((task or {}).get("id"))
            context, _, run_id = task_id.partition(":")
            if not self.check(
                task is not None and bool(UUID.fullmatch(context)) and bool(UUID.fullmatch(run_id)) and task.get("contextId") == context,
                "a2a",
                "an A2A message/send did not answer a task `<thread>:<run>` of its context",
                "a task",
                reply.brief(),
                subject,
                reply,
            ):
                return
            assert task is not None
            if thread_id is not None:
                self.check(context == thread_id, "run-thread", "an A2A task ran in another context", thread_id, context, subject | {context}, reply)
            elif not self.check(
                context not in self.model.threads and context not in self.model.gone_threads,
                "run-thread",
                "an A2A message without a context ran on an existing thread",
                "a new thread",
                context,
                subject | {context},
                reply,
            ):
                return
            self.check(a2a_state(task) == "completed", "a2a", "an A2A task did not complete", "completed", task.get("status"), subject, reply)
            texts = a2a_texts(task)
            self.check(canary in texts, "a2a", "an A2A task's history lacks its message", canary, texts[-3:], subject, reply)
            if thread is None:
                thread = self.model.add_thread(ThreadModel(context, actor.identity, metadata=None, history=None))
            elif thread.metadata is not None:
                thread.metadata.update({"graph_id": graph, "assistant_id": resolved})
            thread.runs[run_id] = RunModel(run_id, context, actor.identity, canary, graph, assistant=resolved)
            if thread.history is not None:
                thread.history += HISTORY_PER_RUN
            self.a2a_tasks.append(A2aTask(actor.identity, assistant, context, run_id))
            del self.a2a_tasks[:-60]

    @operation("a2a.tasks", 1)
    def op_a2a_tasks(self) -> None:
        """A2A `tasks/get`: one's own task answers its run; another user's task (as it is, as
        a bare run id with its context, or its run under one's own thread id) or a made-up one
        is refused."""
        actor = self.actor()
        mine = [task for task in self.a2a_tasks if task.owner == actor.identity]
        theirs = [
            task
            for task in self.a2a_tasks
            if task.owner != actor.identity and (task.thread_id not in self.model.threads or self.model.threads[task.thread_id].owner == task.owner)
        ]
        roll = self.rng.random()
        if roll < 0.45 and mine:
            task = self.rng.choice(mine)
            reply = self.a2a(actor, task.assistant, "get", lambda: {"id": task.task_id, "historyLength": 2})
            thread = self.model.threads.get(task.thread_id)
            current = thread is not None and thread.owner == actor.identity and task.run_id in thread.runs and task.run_id not in thread.maybe_gone_runs
            if not current or not self.expect_status(reply, 200, "A2A tasks/get of one's own task", {task.thread_id, task.run_id}):
                return
            found = a2a_task((reply.json() or {}).get("result"))
            self.check(
                found is not None and found.get("id") == task.task_id and found.get("contextId") == task.thread_id,
                "a2a",
                "A2A tasks/get of one's own task",
                task.task_id,
                reply.brief(),
                {task.thread_id, task.run_id},
                reply,
            )
            return
        if roll < 0.9 and theirs:
            task = self.rng.choice(theirs)
            own = self.model.threads_of(actor.identity)
            forms = [({"id": task.task_id}, task.assistant), ({"id": task.run_id, "contextId": task.thread_id}, task.assistant), ({"id": task.task_id}, "echo")]
            if own:
                forms.append(({"id": f"{self.rng.choice(own).thread_id}:{task.run_id}"}, task.assistant))
            params, assistant = self.rng.choice(forms)
            subject = {task.thread_id, task.run_id}
        else:
            params, assistant, subject = {"id": f"{self.new_id()}:{self.new_id()}"}, "echo", set()
        reply = self.a2a(actor, assistant, "get", lambda: params)
        self.check(self.rpc_refused(reply), "not-denied", "A2A tasks/get of a task that is not the caller's must be refused", "a JSON-RPC error", reply.brief(), subject, reply)

    # --- operations: credentials and malformed input ---------------------------------------

    ROUTES = (
        ("POST", "/threads"),
        ("POST", "/threads/search"),
        ("POST", "/threads/count"),
        ("POST", "/threads/prune"),
        ("GET", "/threads/{thread}"),
        ("PATCH", "/threads/{thread}"),
        ("DELETE", "/threads/{thread}"),
        ("POST", "/threads/{thread}/copy"),
        ("GET", "/threads/{thread}/state"),
        ("POST", "/threads/{thread}/state"),
        ("GET", "/threads/{thread}/state/{checkpoint}"),
        ("POST", "/threads/{thread}/state/checkpoint"),
        ("GET", "/threads/{thread}/history"),
        ("POST", "/threads/{thread}/history"),
        ("GET", "/threads/{thread}/stream"),
        ("POST", "/threads/{thread}/runs"),
        ("GET", "/threads/{thread}/runs"),
        ("POST", "/threads/{thread}/runs/stream"),
        ("POST", "/threads/{thread}/runs/wait"),
        ("GET", "/threads/{thread}/runs/{run}"),
        ("DELETE", "/threads/{thread}/runs/{run}"),
        ("GET", "/threads/{thread}/runs/{run}/join"),
        ("GET", "/threads/{thread}/runs/{run}/stream"),
        ("POST", "/threads/{thread}/runs/{run}/cancel"),
        ("POST", "/threads/{thread}/runs/crons"),
        ("POST", "/runs"),
        ("POST", "/runs/stream"),
        ("POST", "/runs/wait"),
        ("POST", "/runs/batch"),
        ("POST", "/runs/cancel"),
        ("POST", "/runs/crons"),
        ("POST", "/runs/crons/search"),
        ("POST", "/runs/crons/count"),
        ("GET", "/runs/crons/{cron}"),
        ("PATCH", "/runs/crons/{cron}"),
        ("DELETE", "/runs/crons/{cron}"),
        ("POST", "/assistants"),
        ("POST", "/assistants/search"),
        ("POST", "/assistants/count"),
        ("GET", "/assistants/{assistant}"),
        ("PATCH", "/assistants/{assistant}"),
        ("DELETE", "/assistants/{assistant}"),
        ("GET", "/assistants/{assistant}/graph"),
        ("GET", "/assistants/{assistant}/schemas"),
        ("GET", "/assistants/{assistant}/subgraphs"),
        ("POST", "/assistants/{assistant}/versions"),
        ("POST", "/assistants/{assistant}/latest"),
        ("PUT", "/store/items"),
        ("GET", "/store/items?namespace={user}.mem&key=k0"),
        ("DELETE", "/store/items"),
        ("POST", "/store/items/search"),
        ("POST", "/store/namespaces"),
        ("GET", "/nonexistent"),
        ("PUT", "/threads"),
        ("GET", "/threads/{thread}/storage"),
        ("GET", "/metrics"),
        ("GET", "/custom/me"),
        ("GET", "/custom/threads/{thread}"),
        ("POST", "/custom/me"),
        ("POST", "/threads/{thread}/commands"),
        ("POST", "/threads/{thread}/stream/events"),
        ("GET", "/threads/{thread}/stream/events"),
        ("POST", "/mcp"),
        ("GET", "/mcp"),
        ("DELETE", "/mcp"),
        ("GET", "/a2a/{assistant}"),
        ("POST", "/a2a/{assistant}"),
        ("GET", "/a2a/{assistant}/.well-known/agent-card.json"),
        ("GET", "/.well-known/agent-card.json?assistant_id={assistant}"),
    )

    def route_id(self, kind: str) -> str:
        """An id for a route template: a real one of anybody's, a random one, or malformed."""
        roll = self.rng.random()
        if roll < 0.3:
            return self.rng.choice(["not-a-uuid", "0", "%2E%2E", "x" * 40, "00000000-0000-0000-0000-00000000000g"])
        pools = {
            "thread": list(self.model.threads),
            "assistant": list(self.model.assistants) + [system_assistant_id(g) for g in GRAPHS] + list(GRAPHS),
            "cron": list(self.model.crons),
            "run": [run for thread in self.model.threads.values() for run in thread.runs],
            "checkpoint": [t.checkpoint_id for t in self.model.threads.values() if t.checkpoint_id],
        }
        pool = pools.get(kind, [])
        return self.rng.choice(pool) if pool and roll < 0.75 else self.new_id()

    @operation("auth.unauthenticated", 4)
    def op_unauthenticated(self) -> None:
        """Any protected route, any ids (even malformed) and bodies, without valid
        credentials: 401 before anything else."""
        credential = self.rng.choice(BAD_CREDENTIALS)
        method, template = self.rng.choice(self.ROUTES)
        victim = self.rng.choice(self.model.users).identity
        path = template.format(
            thread=self.route_id("thread"),
            run=self.route_id("run"),
            assistant=self.route_id("assistant"),
            cron=self.route_id("cron"),
            checkpoint=self.route_id("checkpoint"),
            user=victim,
        )
        kwargs: dict[str, Any] = {}
        roll = self.rng.random()
        if method in ("POST", "PUT", "PATCH", "DELETE") and roll < 0.5:
            kwargs["json_body"] = {
                "assistant_id": "echo",
                "input": {"messages": [{"role": "human", "content": "hello"}]},
                "metadata": {"owner": victim},
                "schedule": NEVER_SCHEDULE,
                "namespace": [victim, "mem"],
                "key": "k0",
                "value": {"v": 1},
                "namespace_prefix": [victim],
                "thread_ids": [self.route_id("thread")],
                "status": "all",
                "graph_id": "echo",
                "version": 1,
                "limit": 10,
            }
        elif method in ("POST", "PUT", "PATCH", "DELETE") and roll < 0.8:
            kwargs["content"] = self.rng.choice([b"{not json", b"[]", b"null", b'{"metadata": []}'])
        reply = self.api.call(credential, method, path, **kwargs)
        self.expect_status(reply, 401, f"{credential.label} on {method} {template}", set())

    @operation("auth.public", 0.5)
    def op_public(self) -> None:
        credential = self.rng.choice(BAD_CREDENTIALS)
        path = self.rng.choice(PUBLIC_PATHS)
        reply = self.api.call(credential, "GET", path)
        self.expect_status(reply, 200, f"the public route {path} with {credential.label}", set())

    def malformed_cases(self, actor: User) -> list[tuple[str, str, dict, set[int] | None]]:
        """(method, path, request arguments, allowed statuses or None for any 4xx)."""
        mine = self.model.threads_of(actor.identity)
        thread = self.rng.choice(mine).thread_id if mine else self.new_id()
        own = [a for a in self.model.assistants_of(actor.identity) if not a.public]
        assistant = self.rng.choice(own).assistant_id if own else self.new_id()
        crons = self.model.crons_of(actor.identity)
        cron = self.rng.choice(crons).cron_id if crons else self.new_id()
        me = actor.identity
        return [
            ("POST", "/threads", {"content": b"{not json"}, {422}),
            ("POST", "/threads", {"json_body": {"metadata": []}}, {422}),
            ("POST", "/threads", {"json_body": {"thread_id": "nope"}}, {422}),
            ("POST", "/threads", {"json_body": {"if_exists": "maybe"}}, {422}),
            ("POST", "/threads", {"content": b"[1, 2]"}, {422}),
            ("GET", "/threads/not-a-uuid", {}, {422}),
            ("PATCH", f"/threads/{thread}", {"json_body": {"metadata": "x"}}, {422}),
            ("POST", "/threads/search", {"json_body": {"limit": "ten"}}, {422}),
            ("POST", "/threads/search", {"json_body": {"status": "sleeping"}}, {422}),
            ("POST", "/threads/search", {"json_body": {"sort_by": "owner"}}, {422}),
            ("POST", "/threads/prune", {"json_body": {"thread_ids": ["x"]}}, {422}),
            ("POST", "/threads/prune", {"json_body": {}}, {422}),
            ("POST", "/threads/not-a-uuid/copy", {}, {400, 422}),
            ("POST", f"/threads/{thread}/runs", {"json_body": {}}, {422}),
            ("POST", f"/threads/{thread}/runs/wait", {"json_body": {"assistant_id": "nope"}}, {422}),
            ("POST", f"/threads/{thread}/runs", {"json_body": {"assistant_id": "echo", "checkpoint_id": "zzz"}}, {422}),
            ("POST", f"/threads/{thread}/runs", {"json_body": {"assistant_id": "echo", "multitask_strategy": "later"}}, {422}),
            ("POST", f"/threads/{thread}/runs/stream", {"json_body": {"assistant_id": "echo", "stream_mode": "bogus"}}, {422}),
            ("POST", "/runs/wait", {"json_body": {"assistant_id": "echo", "command": {"resume": 1}}}, {400}),
            ("POST", "/runs/wait", {"json_body": {"assistant_id": "echo", "config": {"configurable": {"a": 1}}, "context": {"b": 2}}}, {400}),
            ("POST", "/runs", {"json_body": {"assistant_id": "echo", "webhook": "not a url"}}, {422}),
            ("POST", "/runs", {"json_body": {"assistant_id": "echo", "input": {"messages": []}, "on_completion": "later"}}, {422}),
            ("POST", "/runs/batch", {"json_body": []}, {422}),
            ("POST", "/runs/batch", {"json_body": {"assistant_id": "echo"}}, {422}),
            ("POST", "/runs/cancel", {"json_body": {}}, {422}),
            ("POST", "/runs/cancel", {"json_body": {"status": "all", "thread_id": thread, "run_ids": []}}, {422}),
            ("POST", "/runs/cancel", {"json_body": {"status": "sleeping"}}, {422}),
            ("GET", f"/threads/{thread}/runs/not-a-uuid", {}, {422}),
            ("GET", f"/threads/{thread}/runs", {"params": {"limit": "abc"}}, {422}),
            ("POST", f"/threads/{thread}/history", {"json_body": {"limit": "x"}}, {422}),
            ("POST", f"/threads/{thread}/state/checkpoint", {"json_body": {}}, {422}),
            ("POST", "/assistants", {"json_body": {}}, {422}),
            ("POST", "/assistants", {"json_body": {"graph_id": "ghost"}}, {404}),
            ("POST", "/assistants", {"json_body": {"graph_id": "echo", "assistant_id": "x"}}, {422}),
            ("POST", "/assistants", {"json_body": {"graph_id": "echo", "config": {"configurable": {"a": 1}}, "context": {"b": 1}}}, {400}),
            ("GET", "/assistants/not-a-uuid", {}, {404, 422}),
            ("GET", f"/assistants/{assistant}/graph", {"params": {"xray": "-1"}}, {404, 422}),
            ("POST", f"/assistants/{assistant}/latest", {"json_body": {"version": "x"}}, {422}),
            ("POST", "/assistants/search", {"json_body": {"limit": "x"}}, {422}),
            ("POST", "/runs/crons", {"json_body": {"assistant_id": "echo", "schedule": "61 * * * *"}}, {422}),
            ("POST", "/runs/crons", {"json_body": {"assistant_id": "echo", "schedule": "* * * * *", "timezone": "Mars/Olympus"}}, {422}),
            ("POST", "/runs/crons", {"json_body": {}}, {422}),
            ("PATCH", f"/runs/crons/{cron}", {"json_body": {}}, {400, 404}),
            ("GET", "/runs/crons/not-a-uuid", {}, {422}),
            ("PUT", "/store/items", {"json_body": {"namespace": [], "key": "k", "value": {}}}, {400, 403}),
            ("PUT", "/store/items", {"json_body": {"namespace": [me], "key": "k", "value": 3}}, None),
            ("PUT", "/store/items", {"json_body": {"namespace": [me, ""], "key": "k", "value": {}}}, {422}),
            ("GET", "/store/items", {"params": {"namespace": me}}, None),
            ("GET", "/store/items", {"params": {"key": "k"}}, None),
            ("DELETE", "/store/items", {"json_body": {"namespace": [me]}}, None),
            ("POST", "/store/items/search", {"json_body": {"namespace_prefix": me}}, {422}),
            ("POST", "/store/namespaces", {"json_body": {"max_depth": "x"}}, {422}),
            ("GET", "/nonexistent", {}, {404}),
            ("PUT", "/threads", {}, {405}),
            ("POST", f"/threads/{thread}/commands", {"json_body": {"method": "run.start"}}, {400}),
            ("POST", f"/threads/{thread}/commands", {"content": b"{not json"}, {400, 422}),
            ("POST", "/threads/not-a-uuid/commands", {"json_body": {"id": 1, "method": "agent.getTree"}}, {422}),
            ("POST", f"/threads/{thread}/stream/events", {"json_body": {"channels": ["nope"]}}, {422}),
            ("POST", f"/threads/{thread}/stream/events", {"json_body": {}}, {422}),
            ("POST", "/mcp", {"content": b"{not json", "headers": self.MCP_HEADERS}, {400}),
            ("POST", "/mcp", {"json_body": [{"jsonrpc": "2.0", "id": 1, "method": "ping"}], "headers": self.MCP_HEADERS}, {400}),
            ("POST", "/mcp", {"json_body": {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}}, {400}),
            ("POST", "/a2a/echo", {"content": b"{not json"}, {200}),
            ("GET", "/.well-known/agent-card.json", {}, {422}),
        ]

    @operation("input.malformed", 4)
    def op_malformed(self) -> None:
        """Malformed input from a valid user: a 4xx with a JSON detail, never a 5xx."""
        actor = self.actor()
        method, path, kwargs, allowed = self.rng.choice(self.malformed_cases(actor))
        reply = self.api.call(actor, method, path, **kwargs)
        if allowed is None:
            self.check(400 <= reply.status < 500, "malformed", f"malformed input to {method} {path}", "a 4xx", reply.brief(), set(), reply)
        else:
            self.expect_status(reply, allowed, f"malformed input to {method} {path}", set())

    # --- the delete / re-create race -------------------------------------------------------

    @operation("race.delete_recreate", 0.25)
    def op_race(self) -> None:
        """A deletes its thread while a run of theirs still executes on it; B creates a thread
        with the same id: B's thread shows only B's data, before and after B runs on it."""
        first = self.actor()
        second = self.other(first)
        if len(self.model.threads_of(second.identity)) >= Model.THREAD_CAP:
            return
        thread_id = self.new_id()
        canary = self.canaries.new(first.identity)
        reply = self.api.call(first, "POST", "/threads", json_body={"thread_id": thread_id, "metadata": {"tag": canary}})
        if not self.expect_status(reply, 200, "creating a thread", {thread_id}):
            return
        thread = self.model.add_thread(ThreadModel(thread_id, first.identity, metadata={"tag": canary, "owner": first.identity}, reserved=True))
        run = self.start_background(first, thread, sleep=0.5)
        if run is None:
            return
        self.wait_running(first, run)
        deleted = self.api.call(first, "DELETE", f"/threads/{thread_id}")
        if not self.expect_status(deleted, 204, "deleting one's thread with a run in flight", {thread_id}):
            return
        self.model.drop_thread(thread_id)
        tag = self.canaries.new(second.identity)
        created = self.api.call(second, "POST", "/threads", json_body={"thread_id": thread_id, "metadata": {"tag": tag}})
        if not self.expect_status(created, 200, "creating a thread with the id of a deleted one", {thread_id}):
            return
        fresh = self.model.add_thread(ThreadModel(thread_id, second.identity, metadata={"tag": tag, "owner": second.identity}))
        self.check_empty_thread(second, fresh)
        time.sleep(0.7)  # the deleted thread's run would be over by now
        self.check_empty_thread(second, fresh)
        own = self.canaries.new(second.identity)
        body = self.run_body(second, "echo", "echo", own, forged=[], victim=None, stateful=True)
        ran = self.api.call(second, "POST", f"/threads/{thread_id}/runs/wait", json_body=body)
        if self.expect_status(ran, 200, "running on one's re-created thread", {thread_id}):
            plan = {"graph": "echo", "resolved": system_assistant_id("echo"), "forged": [], "canary": own, "key": None}
            self.record_thread_run(second, fresh, ran, "wait", plan)
            texts = message_texts(ran.json())
            self.check(
                texts == [own, f"echo: {own}"],
                "foreign-history",
                "a re-created thread's first run met earlier messages",
                [own, f"echo: {own}"],
                texts,
                {thread_id},
                ran,
            )
        self.thread_reading(fresh)
        self.api.call(second, "GET", f"/threads/{thread_id}/stream", headers={"Last-Event-ID": "0"}, stream_seconds=0.25)
        gone = self.api.call(first, "GET", f"/threads/{thread_id}")
        self.expect_status(gone, 404, "the first owner reading the re-created thread", {thread_id})

    def wait_running(self, owner: User, run: RunModel, seconds: float = 3.0) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            reply = self.api.call(owner, "GET", f"/threads/{run.thread_id}/runs/{run.run_id}")
            if reply.status != 200 or (reply.json() or {}).get("status") != "pending":
                return
            time.sleep(0.02)

    # --- crons that fire -------------------------------------------------------------------

    def create_firing_crons(self) -> None:
        """Two crons due at the next minute, each forging another owner: a stateless one (its
        run makes a kept thread) and one on a thread of its creator."""
        users = self.model.users
        self.create_firing_cron(users[0], users[1], stateless=True)
        self.create_firing_cron(users[2], users[3], stateless=False)

    def create_firing_cron(self, creator: User, forged: User, *, stateless: bool) -> None:
        tag = self.canaries.new(creator.identity)
        canary = self.canaries.new(creator.identity)
        body: dict[str, Any] = {
            "assistant_id": "echo",
            "schedule": "* * * * *",
            "input": {"messages": [{"role": "human", "content": canary}]},
            "metadata": {"cron_tag": tag, "owner": forged.identity},
        }
        thread_id = None
        if stateless:
            body["on_run_completed"] = "keep"
            path = "/runs/crons"
        else:
            thread_id = self.new_id()
            reply = self.api.call(creator, "POST", "/threads", json_body={"thread_id": thread_id, "metadata": {"tag": tag}})
            if not self.expect_status(reply, 200, "creating a thread for a cron", {thread_id}):
                return
            self.model.add_thread(ThreadModel(thread_id, creator.identity, metadata={"tag": tag, "owner": creator.identity}, reserved=True))
            path = f"/threads/{thread_id}/runs/crons"
        reply = self.api.call(creator, "POST", path, json_body=body)
        if not self.expect_status(reply, 200, "creating a cron that fires every minute", {tag}):
            return
        created = reply.json() or {}
        cron = CronModel(
            str(created.get("cron_id")),
            creator.identity,
            thread_id,
            system_assistant_id("echo"),
            {"cron_tag": tag, "owner": creator.identity},
            "* * * * *",
            firing=True,
            tag=tag,
            canary=canary,
            forged_owner=forged.identity,
            next_run=parse_time(created.get("next_run_date")),
        )
        self.check_cron_body(creator, created, cron, reply)
        self.model.crons[cron.cron_id] = cron
        self.cron_tags[tag] = creator.identity

    def check_firing_crons(self, final: bool) -> None:
        """Firing crons past their time: deleted by their creator, then their runs checked."""
        for cron in [c for c in self.model.crons.values() if c.firing]:
            due = (cron.next_run or time.time()) + 3
            if time.time() < due:
                if not final:
                    continue
                time.sleep(max(0.0, due - time.time()))
            creator = User(cron.owner)
            self.wait_for_firing(creator, cron)
            reply = self.api.call(creator, "DELETE", f"/runs/crons/{cron.cron_id}")
            self.expect_status(reply, 204, "deleting one's firing cron", {cron.cron_id})
            self.model.drop_cron(cron.cron_id)
            time.sleep(1.5)  # a firing decided just before the delete lands
            if cron.thread_id is None:
                self.check_stateless_firing(creator, cron)
            else:
                self.check_thread_firing(creator, cron)

    def wait_for_firing(self, creator: User, cron: CronModel, limit: float = 60.0) -> None:
        """Until the cron's `next_run_date` moved past the time it was due (it fired), or
        `limit` seconds: the cron loop fires due crons one after another, so with hundreds of
        crons due in the same minute one may fire seconds late (latency, not a finding)."""
        deadline = time.time() + limit
        while time.time() < deadline:
            reply = self.api.call(creator, "GET", f"/runs/crons/{cron.cron_id}")
            body = reply.json() if reply.status == 200 and isinstance(reply.json(), dict) else {}
            moved = parse_time(body.get("next_run_date"))
            if reply.status != 200 or cron.next_run is None or (moved is not None and moved > cron.next_run):
                return
            time.sleep(0.5)

    def check_stateless_firing(self, creator: User, cron: CronModel) -> None:
        subject = {cron.cron_id, cron.tag or ""}
        reply = self.api.call(creator, "POST", "/threads/search", json_body={"metadata": {"cron_tag": cron.tag}, "limit": 100})
        rows = reply.json() if reply.status == 200 and isinstance(reply.json(), list) else []
        self.check(
            bool(rows) or cron.tag in self.model.gone_cron_tags,  # its owner found and deleted it
            "cron-thread",
            f"the thread {creator.identity}'s cron made is not theirs (forged owner {cron.forged_owner})",
            f"a thread of {creator.identity} with cron_tag {cron.tag}",
            "none",
            subject,
            reply,
        )
        for row in rows:
            thread_id = str(row.get("thread_id"))
            thread = self.model.threads.get(thread_id) or self.model.add_thread(
                ThreadModel(thread_id, creator.identity, metadata=row.get("metadata"), history=None, runs_known=False)
            )
            self.check(
                (row.get("metadata") or {}).get("owner") == creator.identity,
                "cron-thread",
                "a cron's thread has another owner",
                creator.identity,
                row.get("metadata"),
                subject | {thread_id},
                reply,
            )
            self.check_seen_entries(creator, row.get("values"), thread, reply)
        for other in self.model.users:
            if other == creator:
                continue
            theirs = self.api.call(other, "POST", "/threads/search", json_body={"metadata": {"cron_tag": cron.tag}, "limit": 100})
            self.check(
                theirs.status == 200 and theirs.json() == [],
                "cron-thread",
                f"{other.identity} sees the thread of {creator.identity}'s cron",
                [],
                theirs.brief(),
                subject,
                theirs,
            )

    def check_thread_firing(self, creator: User, cron: CronModel) -> None:
        thread = self.model.threads.get(cron.thread_id or "")
        if thread is None:
            return
        subject = {cron.cron_id, thread.thread_id}
        reply = self.api.call(creator, "GET", f"/threads/{thread.thread_id}/runs", params={"limit": 100})
        runs = [run for run in (reply.json() if isinstance(reply.json(), list) else []) if isinstance(run, dict)]
        fired = [run for run in runs if (((run.get("kwargs") or {}).get("config") or {}).get("configurable") or {}).get("cron_id") == cron.cron_id]
        self.check(
            bool(fired),
            "cron-run",
            f"{creator.identity}'s cron on their thread did not fire",
            "a run with its cron_id",
            [run.get("run_id") for run in runs],
            subject,
            reply,
        )
        for run in fired:
            record = RunModel(str(run.get("run_id")), thread.thread_id, creator.identity, cron.canary or "", "echo")
            thread.runs[record.run_id] = record
            self.check_run_record(creator, run, thread.thread_id, reply)
            owner = (run.get("metadata") or {}).get("owner")
            self.check(owner == creator.identity, "cron-owner", "a cron's run carries a forged owner", creator.identity, owner, subject, reply)
            thread.active.append(record)
        self.settle(thread)
        thread.metadata = thread.history = None  # the cron's runs changed both: learned again
        thread.reserved = False

    # --- the hunt --------------------------------------------------------------------------

    def step(self) -> str:
        name = self.rng.choices(self.names, self.weights)[0]
        started = time.monotonic()
        with contextlib.suppress(OperationAborted):
            OPERATIONS[name][1](self)
        self.seconds[name] += time.monotonic() - started
        self.stats[name] += 1
        self.operations_done += 1
        return name

    def start(self) -> None:
        if self.firing_crons:
            self.create_firing_crons()

    def periodic(self) -> None:
        self.check_firing_crons(final=False)
        pending = any(cron.firing for cron in self.model.crons.values())
        if self.firing_every and not pending and self.operations_done % self.firing_every < 100:
            self.create_firing_crons()
        reply = self.api.call(self.model.users[0], "GET", "/ok")
        self.expect_status(reply, 200, "/ok", set())

    def run(self, operations: int, stop: threading.Event | None = None) -> None:
        """`operations` random operations (fewer if `stop` is set), then `finish()`."""
        self.start()
        for done in range(operations):
            if stop is not None and stop.is_set():
                break
            self.step()
            if done % 100 == 99:
                self.periodic()
        self.finish()

    def finish(self) -> None:
        """Settles every run, checks due crons (waiting for them if needed), then every
        user's whole view once more."""
        for run in list(self.model.transient.values()):
            self.settle_run(run)
        for thread in list(self.model.threads.values()):
            self.settle(thread)
        self.check_firing_crons(final=True)
        for user in self.model.users:
            _body, sure, maybe, _exact = self.thread_search_plan(user, "all")
            reply = self.api.call(user, "POST", "/threads/search", json_body={"limit": 1000})
            if self.expect_status(reply, 200, "searching one's threads", set()):
                self.check_listed_threads(user, reply.json() if isinstance(reply.json(), list) else [], sure, maybe, reply, exact=True)
            self.store_reading(user.identity)
        for thread in list(self.model.threads.values()):
            self.thread_reading(thread)
        for assistant in list(self.model.assistants.values()):
            self.assistant_reading(assistant)
        for cron in list(self.model.crons.values()):
            self.cron_reading(cron)
        self.periodic()

    def close(self) -> None:
        self.api.close()


def parse_time(text: Any) -> float | None:
    if not isinstance(text, str):
        return None
    from datetime import datetime

    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


@dataclasses.dataclass
class HuntResult:
    operations: int
    requests: int
    seconds: float
    stats: Counter
    violations: Violations
    memory_kib: dict[str, int]
    base_url: str
    server_alive: bool
    server_log_tail: str
    spent: Counter = dataclasses.field(default_factory=Counter)  # seconds per operation

    def summary(self) -> str:
        rate = self.operations / self.seconds if self.seconds else 0.0
        lines = [
            f"operations: {self.operations} ({self.requests} requests) in {self.seconds:.1f} s: {rate:.1f} ops/s",
            f"violations: {self.violations.total}",
            f"server: {'alive' if self.server_alive else 'DEAD'}; memory: "
            + ", ".join(f"{name} {value / 1024:.0f} MiB" for name, value in sorted(self.memory_kib.items())),
            "per operation: " + ", ".join(f"{name} {count}" for name, count in sorted(self.stats.items())),
            "slowest (s): " + ", ".join(f"{name} {seconds:.1f}" for name, seconds in self.spent.most_common(8)),
        ]
        return "\n".join(lines)


def hunt(
    binary: str,
    *,
    seed: int,
    operations: int,
    workers: int = 1,
    log_level: str | None = None,
    progress: Callable[[int, int, Violations, dict], None] | None = None,
    progress_every: float = 10.0,
    keep_trace: int | None = None,
    firing_every: int | None = None,
    trace_folder: Path | None = None,
    on_violation: Callable[[Violation], None] | None = None,
    only: tuple[str, ...] | None = None,
) -> HuntResult:
    """Starts a server, runs `workers` hunters (each its own users and model) for
    `operations` operations in all, stops the server, returns the figures. `trace_folder`:
    where each worker's exchanges are written (`hunter-trace-<worker>.txt`); `on_violation`:
    told of each distinct violation when it is found; `only`: the operations whose names start
    with one of these prefixes (all of them by default)."""
    server = ServerProcess(binary, workers, log_level=log_level)
    try:
        violations = Violations(on_new=on_violation)
        everyone = {identity for worker in range(workers) for identity in identities_for(worker)}
        firing = only is None or any("crons".startswith(prefix) or prefix.startswith("crons") for prefix in only)  # a focused hunt fires crons only if it is about them
        hunters = [
            Hunter(server.url, seed=seed, worker=worker, violations=violations, trace_keep=keep_trace, all_identities=everyone, firing_every=firing_every, only=only, firing_crons=firing)
            for worker in range(workers)
        ]
        shares = [operations // workers + (1 if worker < operations % workers else 0) for worker in range(workers)]
        seconds, peak, alive, errors = run_workers(server, hunters, shares, violations, progress, progress_every)
        report_server_problems(server, violations, errors)
        stats: Counter = Counter()
        spent: Counter = Counter()
        for hunter in hunters:
            stats.update(hunter.stats)
            spent.update(hunter.seconds)
            if trace_folder is not None:
                hunter.trace.dump(trace_folder / f"hunter-trace-{hunter.worker}.txt")
        done = sum(hunter.operations_done for hunter in hunters)
        requests = sum(hunter.api.requests for hunter in hunters)
        return HuntResult(done, requests, seconds, stats, violations, peak, server.url, alive, server.output()[-4000:], spent)
    finally:
        server.stop()
        server.remove()


def run_workers(
    server: ServerProcess,
    hunters: list[Hunter],
    shares: list[int],
    violations: Violations,
    progress: Callable[[int, int, Violations, dict], None] | None,
    progress_every: float,
) -> tuple[float, dict[str, int], bool, list[BaseException]]:
    """Runs each hunter in its own thread until all are done (or one failed, or Ctrl-C), then
    stops the server. Returns (seconds, peak memory, whether the server was alive, errors)."""
    errors: list[BaseException] = []
    stop = threading.Event()
    interrupted = threading.Event()
    peak: dict[str, int] = {}

    def work(hunter: Hunter, share: int) -> None:
        try:
            hunter.run(share, stop)
        except BaseException as error:  # noqa: BLE001 - reported by the caller
            if interrupted.is_set() and isinstance(error, ServerGone):
                return  # the hunt was being stopped: not the server's doing
            errors.append(error)
            stop.set()

    started = time.monotonic()
    threads = [threading.Thread(target=work, args=(hunter, share), daemon=True) for hunter, share in zip(hunters, shares)]
    for thread in threads:
        thread.start()
    try:
        while any(thread.is_alive() for thread in threads):
            for thread in threads:
                thread.join(timeout=progress_every / max(1, len(threads)))
            peak = server.memory_kib() or peak
            if progress is not None:
                progress(sum(hunter.operations_done for hunter in hunters), sum(shares), violations, peak)
    except KeyboardInterrupt:
        interrupted.set()
        stop.set()
        # Each worker ends its operation and settles its model; a second signal does not cut
        # that short (closing their clients under them would look like a dead server).
        while any(thread.is_alive() for thread in threads):
            try:
                for thread in threads:
                    thread.join()
            except KeyboardInterrupt:
                continue
    finally:
        seconds = time.monotonic() - started
        peak = server.memory_kib() or peak
        alive = server.alive()
        for hunter in hunters:
            hunter.close()
        server.stop()
    return seconds, peak, alive, errors


def report_server_problems(server: ServerProcess, violations: Violations, errors: list[BaseException]) -> None:
    """A corrupt database and a server that stopped answering are violations; any other
    error of a worker is a bug of the hunter and is raised."""
    for name, problem in server.database_problems().items():
        found = Violation("database-corrupt", f"the server's {name} is corrupt after the hunt", "PRAGMA integrity_check: ok", problem, set(), -1, -1, [], 0)
        violations.add(found, frozenset({name}))
    for error in errors:
        if not isinstance(error, ServerGone):
            raise error
        violations.add(Violation("server-gone", str(error), "the server keeps answering", server.output()[-1500:], set(), -1, -1, [], 0), frozenset({"gone"}))
