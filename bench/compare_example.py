"""Does the full example app (examples/full) answer the same on graphward and on the reference?

    /tmp/ref-venv/bin/python bench/compare_example.py [--ref-venv DIR] [--graphward BIN]

The venv is the reference's (`bench/requirements-ref.txt` + fastapi); graphward runs on it too
(`VIRTUAL_ENV`), so both load the same langgraph, langgraph_sdk and FastAPI. The script copies
`examples/full` into one temp folder per server, starts `langgraph dev --no-browser
--no-reload` and `graphward dev --no-browser --no-reload` on free ports of 127.0.0.1, waits for
`GET /ok`, plays one scripted scenario (two users, the official `langgraph_sdk` client and
`httpx`) against each, and prints a table: each step's status and the answer fields that
matter, with ids and timestamps replaced by placeholders, and `same` / `DIFFERENT`.

The reference refuses a FastAPI app with `@app.on_event(...)` hooks ("Cannot merge lifespans
with on_startup or on_shutdown"). When the example's `webapp.py` has one and the reference
does not start, the failure is printed and the scenario is played again on copies whose
startup hook is rewritten as a `lifespan=` context manager (the same behaviour, the form both
servers accept), so the rest of the app is still compared. Nothing leaves 127.0.0.1; not part
of CI (`GRAPHWARD_BIN` overrides `--graphward`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

import httpx
from langgraph_sdk import get_client

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl  # noqa: E402

EXAMPLE = bl.REPO / "examples" / "full"
ALICE = {"Authorization": "Bearer alice-token"}
BOB = {"Authorization": "Bearer bob-token"}
NOBODY: dict[str, str] = {}
START_TIMEOUT = 90.0

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?")
# Keys whose values are ids or times a server picks: never compared.
VOLATILE = {"thread_id", "assistant_id", "run_id", "checkpoint_id", "parent_checkpoint_id", "created_at", "updated_at", "version"}

ON_EVENT_HOOK = '''app = FastAPI()
STARTED = {"lifespan": False}


@app.on_event("startup")
async def started():
    STARTED["lifespan"] = True
'''
LIFESPAN_HOOK = '''STARTED = {"lifespan": False}


@contextlib.asynccontextmanager
async def lifespan(app):
    STARTED["lifespan"] = True
    yield


app = FastAPI(lifespan=lifespan)
'''


def normalize(value: Any) -> Any:
    """Ids and timestamps become placeholders; volatile keys are dropped."""
    if isinstance(value, dict):
        return {key: normalize(item) for key, item in value.items() if key not in VOLATILE}
    if isinstance(value, list):
        return [normalize(item) for item in value]
    if isinstance(value, str):
        return TIMESTAMP.sub("<ts>", UUID.sub("<id>", value))
    return value


def body_of(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text[:200]


def failure(error: BaseException) -> dict:
    """An exception as an outcome: the HTTP status and detail if it is an HTTP error."""
    response = getattr(error, "response", None)
    if isinstance(response, httpx.Response):
        body = body_of(response)
        detail = body.get("detail") if isinstance(body, dict) else body
        return {"status": response.status_code, "detail": detail}
    return {"error": type(error).__name__, "message": str(error)[:200]}


class Scenario:
    """The steps, in order, against one server. Each step returns a dict (its outcome); state
    created by one step (assistants, threads) is kept for the later ones."""

    def __init__(self, url: str):
        self.url = url
        self.http = httpx.AsyncClient(base_url=url, timeout=60)
        self.alice = get_client(url=url, headers=ALICE)
        self.bob = get_client(url=url, headers=BOB)
        self.ids: dict[str, str] = {}
        self.outcomes: list[tuple[str, dict]] = []

    async def step(self, name: str, action: Callable[[], Awaitable[dict]]) -> None:
        try:
            outcome = await action()
        except Exception as error:  # noqa: BLE001 - every failure is an outcome to compare
            outcome = failure(error)
        self.outcomes.append((name, normalize(outcome)))

    async def get(self, path: str, headers: dict, **kwargs) -> dict:
        response = await self.http.get(path, headers=headers, **kwargs)
        return {"status": response.status_code, "body": body_of(response)}

    async def countdown(self, headers: dict) -> dict:
        """The streamed lines, and whether the first arrived well before the last (streaming,
        not a buffered answer: the app sleeps 50 ms between lines)."""
        async with self.http.stream("GET", "/countdown?start=3", headers=headers) as response:
            if response.status_code != 200:
                await response.aread()
                return {"status": response.status_code, "body": body_of(response)}
            first_at, lines = None, []
            async for line in response.aiter_lines():
                if line:
                    first_at = first_at or time.monotonic()
                    lines.append(line)
            streamed = first_at is not None and time.monotonic() - first_at >= 0.08
            return {"status": 200, "content-type": response.headers.get("content-type"), "lines": lines, "streamed": streamed}

    async def run(self) -> list[tuple[str, dict]]:
        try:
            await self.custom_routes()
            await self.api_routes()
            await self.config_factories()
            await self.runtime_factory()
            await self.store_and_ttl()
            await self.isolation()
        finally:
            await self.http.aclose()
        return self.outcomes

    async def custom_routes(self) -> None:
        s = self.step
        for who, headers in (("no token", NOBODY), ("wrong token", {"Authorization": "Bearer nope"}), ("alice", ALICE), ("bob", BOB)):
            await s(f"GET /hello ({who})", lambda h=headers: self.get("/hello", h))
        for who, headers in (("no token", NOBODY), ("alice", ALICE), ("bob", BOB)):
            await s(f"POST /echo/some%20name?a=1&a=2 ({who})", lambda h=headers: self.echo(h))
        for who, headers in (("no token", NOBODY), ("alice", ALICE), ("bob", BOB)):
            await s(f"GET /countdown?start=3 streamed ({who})", lambda h=headers: self.countdown(h))
        await s("GET /countdown?start=x (alice)", lambda: self.validation_error())
        await s("GET /echo/x wrong method (bob)", lambda: self.get("/echo/x", BOB))
        await s("GET /echo/x wrong method (no token)", lambda: self.get("/echo/x", NOBODY))
        await s("GET /nowhere (bob)", lambda: self.get("/nowhere", BOB))
        await s("GET /nowhere (no token)", lambda: self.get("/nowhere", NOBODY))

    async def echo(self, headers: dict) -> dict:
        response = await self.http.post("/echo/some%20name?a=1&a=2", headers=headers, json={"k": [1, 2]})
        return {"status": response.status_code, "body": body_of(response)}

    async def validation_error(self) -> dict:
        response = await self.http.get("/countdown?start=x", headers=ALICE)
        body = body_of(response)
        errors = body.get("detail") if isinstance(body, dict) else None
        if isinstance(errors, list):
            return {"status": response.status_code, "errors": [{"type": e.get("type"), "loc": e.get("loc")} for e in errors]}
        return {"status": response.status_code, "body": body}

    async def api_routes(self) -> None:
        s = self.step

        async def ok() -> dict:
            response = await self.http.get("/ok")
            return {"status": response.status_code, "body": body_of(response)}

        async def create(headers: dict) -> dict:
            response = await self.http.post("/threads", headers=headers, json={})
            body = body_of(response)
            if response.status_code == 200:
                self.ids["raw_thread"] = body["thread_id"]
                return {"status": 200, "metadata": body.get("metadata"), "status_field": body.get("status"), "values": body.get("values")}
            return {"status": response.status_code, "body": body}

        await s("GET /ok", ok)
        await s("POST /threads (no token)", lambda: create(NOBODY))
        await s("POST /threads (alice)", lambda: create(ALICE))
        await s("GET /threads/{alice's} (bob)", lambda: self.thread_get(BOB))
        await s("GET /threads/{alice's} (alice)", lambda: self.thread_get(ALICE))

    async def thread_get(self, headers: dict) -> dict:
        response = await self.http.get(f"/threads/{self.ids.get('raw_thread', 'missing')}", headers=headers)
        body = body_of(response)
        if response.status_code == 200:
            return {"status": 200, "metadata": body.get("metadata")}
        return {"status": response.status_code, "body": body}

    async def config_factories(self) -> None:
        s, alice = self.step, self.alice

        async def make(style: str) -> dict:
            made = await alice.assistants.create("assistant", config={"configurable": {"style": style}}, name=style)
            self.ids[style] = made["assistant_id"]
            return {"graph_id": made["graph_id"], "name": made["name"], "config": made["config"], "metadata": made["metadata"]}

        async def thread() -> dict:
            made = await alice.threads.create()
            self.ids["style_thread"] = made["thread_id"]
            return {"metadata": made["metadata"]}

        async def schemas() -> dict:
            answer = await alice.assistants.get_schemas(self.ids["polite"])
            state = answer.get("state_schema") or {}
            return {"graph_id": answer["graph_id"], "keys": sorted(answer), "state_title": state.get("title"), "state_fields": sorted(state.get("properties", {})),
                    "null_schemas": sorted(key for key, value in answer.items() if value is None)}

        async def state() -> dict:
            answer = await alice.threads.get_state(self.ids["style_thread"])
            return {"values": answer["values"], "next": answer["next"]}

        await s("assistants.create assistant style=shout", lambda: make("shout"))
        await s("assistants.create assistant style=polite", lambda: make("polite"))
        await s("threads.create (alice)", thread)
        await s("runs.wait thread, shout", lambda: alice.runs.wait(self.ids["style_thread"], self.ids["shout"], input={"question": "hi"}))
        await s("runs.wait stateless, polite", lambda: alice.runs.wait(None, self.ids["polite"], input={"question": "hi"}))
        await s("runs.wait stateless, 'assistant' + run config style=plain",
                lambda: alice.runs.wait(None, "assistant", input={"question": "hi"}, config={"configurable": {"style": "plain"}}))
        await s("runs.wait stateless, 'assistant' (no style)", lambda: alice.runs.wait(None, "assistant", input={"question": "hi"}))
        await s("get_graph(shout) node ids", lambda: self.node_ids(self.ids["shout"]))
        await s("get_schemas(polite)", schemas)
        await s("threads.get_state after shout run", state)

    async def node_ids(self, assistant_id: str) -> dict:
        graph = await self.alice.assistants.get_graph(assistant_id)
        return {"nodes": sorted(node["id"] for node in graph["nodes"]), "edges": sorted(f"{e['source']}->{e['target']}" for e in graph["edges"])}

    async def runtime_factory(self) -> None:
        s, alice, bob = self.step, self.alice, self.bob

        async def research(label: str) -> dict:
            made = await alice.threads.create()
            self.ids[label] = made["thread_id"]
            return await alice.runs.wait(made["thread_id"], "researcher", input={"question": "tides"})

        async def state() -> dict:
            answer = await alice.threads.get_state(self.ids["research_2"])
            return {"values": answer["values"], "next": answer["next"], "source": answer["metadata"].get("source"), "step": answer["metadata"].get("step")}

        async def history() -> dict:
            answer = await alice.threads.get_history(self.ids["research_2"])
            return {"length": len(answer), "entries": [{"next": h["next"], "source": h["metadata"].get("source"), "step": h["metadata"].get("step"), "answer": h["values"].get("answer")} for h in answer]}

        async def mine() -> dict:
            made = await alice.assistants.create("researcher", name="mine")
            self.ids["mine"] = made["assistant_id"]
            return {"graph_id": made["graph_id"], "name": made["name"], "metadata": made["metadata"]}

        async def update() -> dict:
            answer = await alice.threads.update_state(self.ids["research_2"], {"question": "edited"}, as_node="research")
            checkpoint = answer.get("checkpoint") if isinstance(answer, dict) else None
            return {"keys": sorted(answer), "checkpoint_keys": sorted(checkpoint) if isinstance(checkpoint, dict) else checkpoint}

        await s("researcher runs.wait, alice thread 1", lambda: research("research_1"))
        await s("researcher runs.wait, alice thread 2", lambda: research("research_2"))
        await s("researcher runs.wait stateless (bob)", lambda: bob.runs.wait(None, "researcher", input={"question": "moons"}))
        await s("threads.get_state researcher thread", state)
        await s("threads.get_history researcher thread", history)
        await s("assistants.create researcher 'mine'", mine)
        await s("get_graph(mine) node ids", lambda: self.node_ids(self.ids["mine"]))
        await s("threads.update_state as_node=research", update)
        await s("threads.get_state after update", state)

    async def store_and_ttl(self) -> None:
        """`store.index` (the example's local embedding), `store.ttl` and `checkpointer.ttl`."""
        s, alice, bob = self.step, self.alice, self.bob

        async def put_notes() -> dict:
            await alice.store.put_item(["alice", "notes"], "fruit", {"text": "apples and pears in the orchard"})
            await alice.store.put_item(["alice", "notes"], "boats", {"text": "sailing boats on the lake"})
            await bob.store.put_item(["bob", "notes"], "fruit", {"text": "apples apples apples"})
            return {"put": 3}

        async def search(client, prefix: list[str], query: str | None) -> dict:
            found = (await client.store.search_items(prefix, query=query))["items"]
            return {"items": [{"key": item["key"], "namespace": item["namespace"], "scored": item.get("score") is not None} for item in found]}

        async def thread_ttl() -> dict:
            made = await alice.threads.create()
            shown = await alice.threads.get(made["thread_id"], include=["ttl"])
            ttl = shown.get("ttl")
            return {"ttl": {key: ttl.get(key) for key in ("strategy", "ttl_minutes")} if isinstance(ttl, dict) else ttl}

        await s("store.put_item x3 (alice, alice, bob)", put_notes)
        await s("store.search_items query='apples orchard' (alice)", lambda: search(alice, ["alice"], "apples orchard"))
        await s("store.search_items no query (alice)", lambda: search(alice, ["alice"], None))
        await s("store.search_items alice's prefix with query (bob)", lambda: search(bob, ["alice"], "apples"))
        await s("threads.create + get include=ttl (alice)", thread_ttl)

    async def isolation(self) -> None:
        s, alice, bob = self.step, self.alice, self.bob

        async def names(client) -> dict:
            found = await client.assistants.search(limit=100)
            return {"assistants": sorted(f"{a['graph_id']}:{a['name']}:{(a.get('metadata') or {}).get('owner')}" for a in found)}

        async def threads(client) -> dict:
            found = await client.threads.search(limit=100)
            owners: dict[str, int] = {}
            for thread in found:
                owner = str((thread.get("metadata") or {}).get("owner"))
                owners[owner] = owners.get(owner, 0) + 1
            return {"count": len(found), "owners": owners}

        await s("runs.wait stateless, alice's shout assistant (bob)", lambda: bob.runs.wait(None, self.ids["shout"], input={"question": "hi"}))
        await s("assistants.get alice's shout (bob)", lambda: bob.assistants.get(self.ids["shout"]))
        await s("runs.wait on alice's thread (bob)", lambda: bob.runs.wait(self.ids["style_thread"], "assistant", input={"question": "hi"}))
        await s("threads.get_state alice's thread (bob)", lambda: bob.threads.get_state(self.ids["style_thread"]))
        await s("assistants.search (bob)", lambda: names(bob))
        await s("threads.search (bob)", lambda: threads(bob))
        await s("assistants.search (alice)", lambda: names(alice))
        await s("threads.search (alice)", lambda: threads(alice))


def server(kind: str, app: Path, ref_venv: Path, graphward: Path, logs: Path) -> bl.Server:
    port = bl.free_port()
    env = dict(os.environ)
    env["VIRTUAL_ENV"] = str(ref_venv)
    env["PATH"] = f"{ref_venv / 'bin'}:{env.get('PATH', '')}"
    env.pop("PYTHONHOME", None)
    if kind == "reference":
        env.update({"LANGGRAPH_CLI_NO_ANALYTICS": "1", "LANGSMITH_TRACING": "false", "LANGCHAIN_TRACING_V2": "false"})
        cmd = [str(ref_venv / "bin" / "langgraph"), "dev", "--no-browser", "--no-reload", "--host", bl.HOST, "--port", str(port), "--config", str(app / "langgraph.json")]
    else:
        cmd = [str(graphward), "dev", "--no-browser", "--no-reload", "--host", bl.HOST, "--port", str(port), "--config", str(app / "langgraph.json")]
    return bl.Server(kind, f"{kind}-{app.name}", cmd, port, env, app, logs / f"{kind}-{app.name}.log")


def copy_app(work: Path, name: str, lifespan: bool) -> Path:
    folder = work / name
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns(".graphward", ".langgraph_api", "__pycache__", "*.db*"))
    if lifespan:
        webapp = folder / "webapp.py"
        source = webapp.read_text()
        webapp.write_text("import contextlib\n" + source.replace(ON_EVENT_HOOK, LIFESPAN_HOOK))
    return folder


def failure_excerpt(log: Path, lines: int = 3) -> str:
    """The last lines of a log that says why a server did not start (its exception)."""
    text = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return "\n".join(text[-lines:])


async def play(url: str) -> list[tuple[str, dict]]:
    return await Scenario(url).run()


def round_(work: Path, label: str, lifespan: bool, args) -> tuple[dict[str, list[tuple[str, dict]] | str], dict[str, float]]:
    """Starts both servers on fresh copies, plays the scenario on each (one at a time), stops them.
    Returns each server's outcomes, or the reason it did not start."""
    results: dict[str, list[tuple[str, dict]] | str] = {}
    startup: dict[str, float] = {}
    servers = {kind: server(kind, copy_app(work, f"{label}-{kind}", lifespan), args.ref_venv, args.graphward, work / "logs") for kind in ("reference", "graphward")}
    try:
        for kind, srv in servers.items():
            try:
                startup[kind] = srv.start(START_TIMEOUT)
            except bl.StartError as error:
                results[kind] = f"did not start: {error}\n{failure_excerpt(srv.log)}"
        for kind, srv in servers.items():
            if kind not in results:
                results[kind] = asyncio.run(play(f"http://{bl.HOST}:{srv.port}"))
    finally:
        for srv in servers.values():
            srv.stop()
    return results, startup


def cell(outcome: dict) -> str:
    return json.dumps(outcome, sort_keys=True, separators=(", ", ": "), ensure_ascii=False)


def table(results: dict[str, list[tuple[str, dict]] | str]) -> tuple[str, int]:
    """The side-by-side table; a step that is the same on both prints its outcome once."""
    ref, gw = results["reference"], results["graphward"]
    out: list[str] = []
    if isinstance(ref, str) or isinstance(gw, str):
        for kind in ("reference", "graphward"):
            value = results[kind]
            if isinstance(value, str):
                out.append(f"{kind}: {value}")
            else:
                out.append(f"{kind}: started; its outcomes alone (nothing to compare with):")
                width = max(len(name) for name, _ in value) + 2
                out.extend(f"  {name.ljust(width)}{cell(outcome)}" for name, outcome in value)
        return "\n".join(out), 1
    different = 0
    width = max(len(name) for name, _ in ref) + 2
    out.append(f"{'step'.ljust(width)}  verdict    outcome")
    out.append("-" * (width + 60))
    for (name, left), (_, right) in zip(ref, gw):
        if left == right:
            out.append(f"{name.ljust(width)}  same       {cell(left)}")
        else:
            different += 1
            out.append(f"{name.ljust(width)}  DIFFERENT  reference: {cell(left)}")
            out.append(f"{''.ljust(width)}             graphward: {cell(right)}")
    return "\n".join(out), different


def versions(ref_venv: Path, graphward: Path) -> str:
    import subprocess

    code = "import importlib.metadata as m; print(', '.join(f'{p} {m.version(p)}' for p in ('langgraph-cli', 'langgraph-api', 'langgraph-runtime-inmem', 'langgraph', 'langgraph-sdk', 'fastapi', 'starlette', 'uvicorn')))"
    packages = subprocess.run([str(ref_venv / "bin" / "python"), "-c", code], capture_output=True, text=True, timeout=60).stdout.strip()
    built = subprocess.run([str(graphward), "--version"], capture_output=True, text=True, timeout=60).stdout.strip()
    return f"{built} ({graphward}); reference venv {ref_venv}: {packages}; Python {sys.version.split()[0]}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ref-venv", type=Path, default=Path("/tmp/ref-venv"))
    parser.add_argument("--graphward", type=Path, default=Path(os.environ.get("GRAPHWARD_BIN", "/tmp/gw-compare/graphward")))
    parser.add_argument("--keep", action="store_true", help="keep the temp folders (app copies and server logs)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gw-example-compare-"))
    print(f"versions: {versions(args.ref_venv, args.graphward)}")
    print(f"work folder: {work}\n")
    total = 0
    try:
        results, startup = round_(work, "as-is", False, args)
        print("== examples/full as it is in the repo")
        print(f"time to first /ok 200 (ms): {json.dumps({k: round(v) for k, v in startup.items()})}")
        text, different = table(results)
        print(text + "\n")
        total += different
        webapp = (EXAMPLE / "webapp.py").read_text()
        if isinstance(results["reference"], str) and ON_EVENT_HOOK in webapp:
            results, startup = round_(work, "lifespan", True, args)
            print("== examples/full with webapp.py's @app.on_event('startup') rewritten as FastAPI(lifespan=...)")
            print(f"time to first /ok 200 (ms): {json.dumps({k: round(v) for k, v in startup.items()})}")
            text, different = table(results)
            print(text + "\n")
            total += different
        print(f"{total} DIFFERENT (a server that did not start counts as one)")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
