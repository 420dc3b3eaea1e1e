"""graphward vs. the reference (`langgraph dev`, langgraph-cli[inmem]) on the same app, same data,
same load. Run through bench/compare.sh, which installs what this needs; see bench/README.md.

    python compare.py --ref-venv DIR --graphward BIN [--app DIR] [--out FILE]

Environment: BENCH_SECONDS, BENCH_RUNS_SECONDS, BENCH_WARMUP, BENCH_RUNS, BENCH_CONNECTIONS,
BENCH_CREATE_FRESH (1 = a fresh, freshly seeded server per measured POST /threads run, as in
perf-baseline.md; 0 = on the main servers, after every other route), BENCH_REF_RELOAD
(1 = run the reference with its file-watching reloader, i.e. without --no-reload),
BENCH_ONLY (comma-separated route keys, e.g. "search,get").
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import benchlib as bl

CRUD_RATIO, UNAUTH_RATIO = 30.0, 30.0
RUNS_C1_LATENCY_FRACTION, RUNS_C8_RATIO = 1 / 50, 4.0
AUTH_ADDED_US = 15.0

SEARCH_BODY = b'{"limit":10}'
RUN_BODY = b'{"assistant_id":"agent","input":{"messages":[{"role":"human","content":"hi"}]}}'

# Table order (the issue's). `crud`: the "30x and p99 below the reference's p50" targets apply.
ROUTES = [
    {"key": "search", "route": "POST /threads/search", "script": "search.lua", "path": "/threads/search", "probe": ("POST", SEARCH_BODY, "user1-token"), "expect": (200,), "crud": True},
    {"key": "create", "route": "POST /threads", "script": "create.lua", "path": "/threads", "probe": ("POST", b'{"metadata":{}}', "user1-token"), "expect": (200,), "crud": True},
    {"key": "get", "route": "GET /threads/{id}", "script": "get.lua", "path": "/threads/{tid}", "probe": ("GET", None, "user1-token"), "expect": (200,), "crud": True},
    {"key": "store_put", "route": "PUT /store/items", "script": "store_put.lua", "path": "/store/items",
     "probe": ("PUT", b'{"namespace":["user1","notes"],"key":"k","value":{"v":1}}', "user1-token"), "expect": (200, 204), "crud": True},
    {"key": "store_get", "route": "GET /store/items", "script": "get.lua", "path": "/store/items?namespace=user1.notes&key=k", "probe": ("GET", None, "user1-token"), "expect": (200,), "crud": True},
    {"key": "unauth", "route": "401 (POST /threads/search, bad token)", "script": "bad.lua", "path": "/threads/search", "probe": ("POST", SEARCH_BODY, "nope"), "expect": (401,),
     "env": {"BENCH_TOKEN": "nope"}, "expect_non2xx": True},
    {"key": "runs_c1", "route": "POST /threads/{id}/runs/wait", "script": "runs_wait.lua", "path": "/", "probe": ("POST", RUN_BODY, "user1-token"), "expect": (200,), "connections": 1, "runs": True},
    {"key": "runs_c8", "route": "POST /threads/{id}/runs/wait", "script": "runs_wait.lua", "path": "/", "probe": ("POST", RUN_BODY, "user1-token"), "expect": (200,), "connections": 8, "runs": True},
]
MEASURE_ORDER = ["search", "get", "store_get", "store_put", "unauth", "runs_c1", "runs_c8", "create"]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Harness:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.settings = bl.Settings()
        self.work = bl.fresh_dir(bl.OUT / "work")
        self.ref_venv = args.ref_venv.resolve()
        self.py = str(self.ref_venv / "bin" / "python")
        self.instances: dict[str, list[dict]] = {"reference": [], "graphward": []}
        self.counter = 0
        self.seed_info: dict[str, list] = {"reference": [], "graphward": []}
        self.auth: dict | None = None

    # -- servers -------------------------------------------------------------------------------

    def app_copy(self, name: str) -> Path:
        """A scratch copy of the app (langgraph.json + its local dependencies), so the reference's
        `.langgraph_api/` never lands in the repo and every start is from empty state."""
        dest = bl.fresh_dir(self.work / name)
        src = self.args.app.resolve()
        shutil.copy2(src / "langgraph.json", dest / "langgraph.json")
        config = json.loads((src / "langgraph.json").read_text())
        for dep in config.get("dependencies", []):
            if dep.startswith("."):
                path = (src / dep).resolve()
                if path.is_dir() and path != src:
                    shutil.copytree(path, dest / path.relative_to(src), ignore=shutil.ignore_patterns("__pycache__", ".langgraph_api"))
        return dest

    def make_server(self, kind: str, auth: bool = True) -> bl.Server:
        self.counter += 1
        name = f"{kind}-{self.counter}" + ("" if auth else "-noauth")
        app = self.app_copy(f"app-{name}")
        if not auth:
            config = json.loads((app / "langgraph.json").read_text())
            config.pop("auth", None)
            (app / "langgraph.json").write_text(json.dumps(config))
        port = bl.free_port()
        env = dict(os.environ)
        env["VIRTUAL_ENV"] = str(self.ref_venv)
        env["PATH"] = f"{self.ref_venv / 'bin'}:{env.get('PATH', '')}"
        env.pop("PYTHONHOME", None)
        if kind == "reference" and self.args.baseline:
            # Another graphward build in the reference's place: before/after a change, one run.
            cmd = [str(self.args.baseline), "dev", "--no-browser", "--host", bl.HOST, "--port", str(port), "--config", str(app / "langgraph.json"),
                   "--database", str(app / "state.db")]
        elif kind == "reference":
            env.update({"LANGGRAPH_CLI_NO_ANALYTICS": "1", "LANGSMITH_TRACING": "false", "LANGCHAIN_TRACING_V2": "false"})
            cmd = [str(self.ref_venv / "bin" / "langgraph"), "dev", "--no-browser", "--host", bl.HOST, "--port", str(port), "--config", str(app / "langgraph.json")]
            if os.environ.get("BENCH_REF_RELOAD", "0") != "1":
                cmd.append("--no-reload")
        elif self.args.graphward_postgres:
            # graphward on a fresh Postgres database of its own, `serve --workers N`.
            database = f"bench_{name.replace('-', '_')}_{os.getpid()}"
            subprocess.run(["psql", "-q", self.args.graphward_postgres, "-c", f"CREATE DATABASE {database}"], check=True, capture_output=True)
            env["DATABASE_URI"] = self.args.graphward_postgres.rsplit("/", 1)[0] + "/" + database
            cmd = [str(self.args.graphward), "serve", "--host", bl.HOST, "--port", str(port), "--config", str(app / "langgraph.json"),
                   "--workers", str(self.args.graphward_workers)]
        else:
            cmd = [str(self.args.graphward), "dev", "--no-browser", "--host", bl.HOST, "--port", str(port), "--config", str(app / "langgraph.json"),
                   "--database", str(app / "state.db")]
        return bl.Server(kind, name, cmd, port, env, app, self.work / "logs" / f"{name}.log")

    def start(self, kind: str) -> tuple[bl.Server, dict]:
        server = self.make_server(kind)
        timeout = 180 if kind == "reference" else 90
        startup = server.start(timeout)
        log(f"{server.name}: first GET /ok 200 after {startup:.0f} ms (port {server.port}); seeding")
        seed_dir = self.work / "seed" / server.name
        proc = subprocess.run([self.py, str(bl.BENCH / "seed.py"), f"http://{bl.HOST}:{server.port}", str(seed_dir)], capture_output=True, text=True, timeout=400)
        if proc.returncode != 0:
            server.stop()
            raise RuntimeError(f"seeding {server.name} failed: {proc.stderr[-2000:]}")
        seed = json.loads(proc.stdout.strip().splitlines()[-1])
        log(f"{server.name}: seeded in {seed['seconds']} s, counts {seed['counts']}"
            + (f", {seed['retried_5xx']} creates/puts retried after a 5xx: {seed['retried_5xx_examples'][:1]}" if seed.get("retried_5xx") else ""))
        self.seed_info[kind].append(seed)
        return server, seed

    def stop(self, server: bl.Server) -> None:
        memory = server.stop()
        errors = bl.log_errors(server.log) if server.kind == "graphward" else {}
        self.instances[server.kind].append({"name": server.name, "startup_ms": server.startup_ms, **memory, "log": str(server.log), "log_errors": errors})
        log(f"{server.name}: stopped; peak RSS {memory.get('peak_rss_kb', 0) / 1024:.1f} MiB")

    # -- one route on one server ---------------------------------------------------------------

    def probe(self, server: bl.Server, seed: dict, spec: dict) -> dict:
        method, body, token = spec["probe"]
        path = self.path(spec, seed)
        if spec.get("runs"):
            first = Path(seed["run_threads_file"]).read_text().split()[0]
            path = f"/threads/{first}/runs/wait"
        try:
            status, payload = bl.request(server.port, method, path, body, token, timeout=30)
        except OSError as error:
            return {"status": None, "ok": False, "body": str(error)}
        return {"status": status, "ok": status in spec["expect"], "body": payload[:300].decode("utf-8", "replace")}

    def fresh_run_threads(self, server: bl.Server, key: str, count: int = 64) -> Path:
        """New, empty run threads (user1) for one wrk run of a runs/wait row. The echo graph
        appends to a thread's messages on every run, so a run's cost grows with the runs before
        it on that thread: reusing threads would make the server that already ran more (at
        c=1 graphward runs ~100x more) pay for longer histories."""
        ids = []
        for _ in range(count):
            status, body = bl.request(server.port, "POST", "/threads", b'{"metadata":{"purpose":"runs"}}', "user1-token", timeout=30)
            if status != 200:
                raise RuntimeError(f"{server.name}: creating a run thread answered {status}: {body[:200]!r}")
            ids.append(json.loads(body)["thread_id"])
        path = self.work / "seed" / server.name / f"run_threads_{key}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(ids) + "\n")
        return path

    @staticmethod
    def path(spec: dict, seed: dict) -> str:
        return spec["path"].replace("{tid}", seed["get_thread_id"])

    def run_route(self, server: bl.Server, seed: dict, spec: dict, runs: int | None = None, warmup: bool = True) -> dict:
        probe = self.probe(server, seed, spec)
        if spec.get("runs") and server.kind == "graphward" and probe["status"] in (404, 405):
            log(f"{server.name}: {spec['key']}: {probe['status']} -> n/a (not implemented)")
            return {"status": "n/a (not implemented)", "probe": probe}
        conns = spec.get("connections", self.settings.connections)
        seconds = self.settings.runs_seconds if spec.get("runs") else self.settings.seconds
        env = dict(spec.get("env", {}))
        url = f"http://{bl.HOST}:{server.port}{self.path(spec, seed)}"
        log(f"{server.name}: {spec['key']} c={conns} ({seconds:g} s x {runs or self.settings.runs})")
        if spec.get("runs"):
            # Each wrk run (the warm-up too) on its own new threads: see fresh_run_threads.
            measured = []
            for index in range((1 if warmup and self.settings.warmup > 0 else 0) + (runs or self.settings.runs)):
                env["RUN_THREADS"] = str(self.fresh_run_threads(server, f"{spec['key']}_{index}"))
                if index == 0 and warmup and self.settings.warmup > 0:
                    bl.wrk(spec["script"], url, conns, self.settings.warmup, self.settings, env)
                else:
                    measured.append(bl.wrk(spec["script"], url, conns, seconds, self.settings, env))
            result = bl.summarize(measured)
        else:
            result = bl.measure(spec["script"], url, conns, seconds, self.settings, env, runs=runs, warmup=warmup)
        result["connections"] = conns
        return self.finish(spec, result, probe)

    @staticmethod
    def finish(spec: dict, summary: dict, probe: dict) -> dict:
        """Adds the probe, the count of unexpected answers (non-2xx on 2xx routes, 2xx on the 401
        route, socket errors, timeouts) and `ok_rps`: the rate of expected answers only, which is
        what the ratio uses (a server answering 500s fast must not look fast)."""
        for run in summary["runs"]:
            wrong = (run["n"] - run["non2xx"]) if spec.get("expect_non2xx") else run["non2xx"]
            run["unexpected"] = wrong + run["sockerr"]
            run["ok_rps"] = run["rps"] * max(0, run["n"] - run["unexpected"]) / run["n"] if run["n"] else 0.0
        summary["unexpected"] = sum(run["unexpected"] for run in summary["runs"])
        summary["ok_rps"] = statistics.median(run["ok_rps"] for run in summary["runs"])
        summary["probe"] = probe
        summary["status"] = "ok" if probe["ok"] else f"probe answered {probe['status']}: {probe['body'][:120]}"
        return summary

    # -- the Python round trip ------------------------------------------------------------------

    def auth_round_trip(self, server: bl.Server, seed: dict) -> dict:
        """What the Python auth round trip adds to one request at 1 client: `GET /threads/{id}`
        at c=1 on graphward with the app's auth against a second graphward on the same app
        without `auth` (no Python call), interleaved run by run; plus `graphward bench-auth`,
        the round trip alone, without HTTP."""
        plain = self.make_server("graphward", auth=False)
        plain.start(90)
        try:
            status, body = bl.request(plain.port, "POST", "/threads", b'{"metadata":{"owner":"user1"}}', None)
            if status != 200:
                raise RuntimeError(f"{plain.name}: POST /threads answered {status}")
            plain_tid = json.loads(body)["thread_id"]
            urls = {"auth": f"http://{bl.HOST}:{server.port}/threads/{seed['get_thread_id']}", "plain": f"http://{bl.HOST}:{plain.port}/threads/{plain_tid}"}
            runs: dict[str, list] = {"auth": [], "plain": []}
            for side, url in urls.items():
                bl.wrk("get.lua", url, 1, self.settings.warmup or 1, self.settings)
            for _ in range(self.settings.runs):
                for side, url in urls.items():
                    log(f"{server.name if side == 'auth' else plain.name}: GET /threads/{{id}} c=1 ({self.settings.seconds:g} s)")
                    runs[side].append(bl.wrk("get.lua", url, 1, self.settings.seconds, self.settings))
        finally:
            plain.stop()
        http = {side: bl.summarize(side_runs) for side, side_runs in runs.items()}
        added_p50 = (http["auth"]["p50_ms"] - http["plain"]["p50_ms"]) * 1000
        added_mean = (1 / http["auth"]["rps"] - 1 / http["plain"]["rps"]) * 1e6
        micro = self.bench_auth(server)
        log(f"auth round trip: +{added_p50:.0f} µs p50 at c=1 over HTTP; bench-auth: {micro.get('line', micro.get('error'))}")
        return {"http_c1": http, "added_p50_us": added_p50, "added_mean_us": added_mean, "bench_auth": micro}

    def bench_auth(self, server: bl.Server) -> dict:
        env = dict(os.environ)
        env["VIRTUAL_ENV"] = str(self.ref_venv)
        cmd = [str(self.args.graphward), "bench-auth", "--config", str(server.cwd / "langgraph.json")]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
        except subprocess.TimeoutExpired:
            return {"error": "bench-auth timed out"}
        line = next((line for line in proc.stdout.splitlines() if line.startswith("auth round trip:")), None)
        if line is None:
            return {"error": f"bench-auth failed (exit {proc.returncode}): {proc.stderr[-300:]}"}
        match = re.search(r"([\d.]+) µs per call sequential; (\d+) calls/s .*\(([\d.]+) µs/call amortised\)", line)
        if not match:
            return {"line": line}
        return {"line": line, "sequential_us": float(match[1]), "calls_per_s": int(match[2]), "amortised_us": float(match[3])}

    # -- the whole comparison ------------------------------------------------------------------

    def run(self) -> dict:
        only = [key for key in os.environ.get("BENCH_ONLY", "").split(",") if key]
        specs = {spec["key"]: spec for spec in ROUTES}
        order = [key for key in MEASURE_ORDER if not only or key in only]
        fresh_create = os.environ.get("BENCH_CREATE_FRESH", "1") == "1"
        results: dict[str, dict] = {key: {} for key in order}
        load_start = bl.loadavg()
        started = time.time()

        main_keys = [key for key in order if not (key == "create" and fresh_create)]
        if main_keys or "auth" in only:
            servers = {}
            try:
                for kind in ("reference", "graphward"):
                    servers[kind] = self.start(kind)
                # Interleaved: each route on the reference, then on graphward, both servers up.
                for key in main_keys:
                    for kind in ("reference", "graphward"):
                        server, seed = servers[kind]
                        results[key][kind] = self.run_route(server, seed, specs[key])
                if not only or "auth" in only:
                    self.auth = self.auth_round_trip(*servers["graphward"])
            finally:
                for server, _ in servers.values():
                    self.stop(server)

        if "create" in order and fresh_create:
            # POST /threads is O(n) in the reference's store: a fresh server, seeded the same, per run.
            runs = {"reference": [], "graphward": []}
            probes = {}
            for index in range(self.settings.runs):
                for kind in ("reference", "graphward"):
                    server, seed = self.start(kind)
                    try:
                        one = self.run_route(server, seed, specs["create"], runs=1)
                        runs[kind].extend(one["runs"])
                        probes[kind] = one["probe"]
                    finally:
                        self.stop(server)
            for kind in ("reference", "graphward"):
                summary = bl.summarize(runs[kind])
                summary.update({"connections": self.settings.connections, "fresh_server_per_run": True})
                results["create"][kind] = self.finish(specs["create"], summary, probes[kind])

        return self.report(results, load_start, time.time() - started)

    # -- report --------------------------------------------------------------------------------

    def server_summary(self, kind: str) -> dict:
        instances = self.instances[kind]
        startups = [inst["startup_ms"] for inst in instances if inst.get("startup_ms")]
        peaks = [inst.get("peak_rss_kb", 0) for inst in instances]
        return {
            "startup_ms": statistics.median(startups) if startups else None,
            "startup_ms_min": min(startups) if startups else None,
            "startup_ms_max": max(startups) if startups else None,
            "peak_rss_mib": max(peaks) / 1024 if peaks else None,
            "instances": instances,
            "seeding": self.seed_info[kind],
            "seeding_retried_5xx": sum(seed.get("retried_5xx", 0) for seed in self.seed_info[kind]),
        }

    def report(self, results: dict, load_start: str, elapsed: float) -> dict:
        servers = {kind: self.server_summary(kind) for kind in ("reference", "graphward")}
        rows, targets = [], []
        for spec in ROUTES:
            key = spec["key"]
            if key not in results:
                continue
            ref, gw = results[key].get("reference", {}), results[key].get("graphward", {})
            # Ratio of the rates of expected answers (equal to req/s when nothing went wrong).
            ratio = gw["ok_rps"] / ref["ok_rps"] if ref.get("ok_rps") and gw.get("ok_rps") else None
            row = {"key": key, "route": spec["route"], "concurrency": spec.get("connections", self.settings.connections),
                   "reference": ref, "graphward": gw, "ratio": ratio, "targets": {}}
            if spec.get("crud"):
                row["targets"][f"ratio >= {CRUD_RATIO:g}x"] = ratio is not None and ratio >= CRUD_RATIO
                row["targets"]["graphward p99 < reference p50"] = bool(gw.get("p99_ms") is not None and ref.get("p50_ms") is not None and gw["p99_ms"] < ref["p50_ms"])
            elif key == "unauth":
                row["targets"][f"ratio >= {UNAUTH_RATIO:g}x"] = ratio is not None and ratio >= UNAUTH_RATIO
            elif key == "runs_c1":
                row["targets"][f"graphward p50 <= reference p50 / {1 / RUNS_C1_LATENCY_FRACTION:g}"] = bool(
                    gw.get("p50_ms") is not None and ref.get("p50_ms") and gw["p50_ms"] <= ref["p50_ms"] * RUNS_C1_LATENCY_FRACTION)
            elif key == "runs_c8":
                row["targets"][f"ratio >= {RUNS_C8_RATIO:g}x"] = ratio is not None and ratio >= RUNS_C8_RATIO
            for name, passed in row["targets"].items():
                targets.append({"target": f"{spec['route']}: {name}", "pass": passed})
            rows.append(row)
        ref_rss, gw_rss = servers["reference"]["peak_rss_mib"], servers["graphward"]["peak_rss_mib"]
        targets.append({"target": "peak RSS: graphward < reference", "pass": bool(ref_rss and gw_rss and gw_rss < ref_rss)})
        if self.auth is not None:
            targets.append({"target": f"Python round trip adds <= {AUTH_ADDED_US:g} µs at 1 client (HTTP p50)", "pass": self.auth["added_p50_us"] <= AUTH_ADDED_US})

        versions = {}
        for package in ("langgraph-cli", "langgraph-api", "langgraph-runtime-inmem", "langgraph", "langgraph-sdk", "uvicorn", "starlette"):
            try:
                versions[package] = importlib.metadata.version(package)
            except importlib.metadata.PackageNotFoundError:
                versions[package] = None
        versions["python"] = sys.version.split()[0]
        versions["wrk"] = bl.wrk_version()
        versions["graphward"] = bl.git_revision()
        data = {
            "kind": "compare",
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "settings": {**self.settings.as_dict(), "create_fresh_server_per_run": os.environ.get("BENCH_CREATE_FRESH", "1") == "1",
                         "reference_reload": os.environ.get("BENCH_REF_RELOAD", "0") == "1"},
            "machine": bl.machine_info(),
            "loadavg": {"start": load_start, "end": bl.loadavg()},
            "elapsed_s": round(elapsed, 1),
            "versions": versions,
            "servers": servers,
            "rows": rows,
            "auth_round_trip": self.auth,
            "targets": targets,
            "baseline": str(self.args.baseline) if self.args.baseline else None,
            "graphward_storage": f"postgres, serve --workers {self.args.graphward_workers}" if self.args.graphward_postgres else "sqlite (dev)",
        }
        data["table"] = render(data)
        return data


def cell_rate(side: dict) -> str:
    if not side:
        return "-"
    if "rps" not in side:
        return side.get("status", "-")
    text = bl.fmt_rate(side["rps"])
    if len(side["runs"]) > 1:
        text += f" ({bl.fmt_rate(side['rps_min'])}–{bl.fmt_rate(side['rps_max'])})"
    if side.get("unexpected"):
        text += f", {bl.fmt_rate(side['ok_rps'])} ok"
    return text


def cell_lat(side: dict) -> str:
    if not side or "rps" not in side:
        return "n/a" if side else "-"
    return f"{bl.fmt_ms(side['p50_ms'])} / {bl.fmt_ms(side['p99_ms'])}"


def render(data: dict) -> str:
    headers = ["route", "c", "reference req/s", "graphward req/s", "ratio", "ref p50 / p99 ms", "gw p50 / p99 ms", "targets", "notes"]
    lines = []
    for row in data["rows"]:
        ref, gw = row["reference"], row["graphward"]
        notes = []
        for kind, side in (("ref", ref), ("gw", gw)):
            if side.get("status") not in (None, "ok") and not str(side.get("status")).startswith("n/a"):
                notes.append(f"{kind}: {side['status']}")
            if side.get("unexpected"):
                notes.append(f"{kind}: {side['unexpected']:,} of {side['requests']:,} answers unexpected ({100 * side['unexpected'] / side['requests']:.1f}%)")
        targets = " ".join("PASS" if passed else "FAIL" for passed in row["targets"].values()) or "-"
        lines.append([row["route"], str(row["concurrency"]), cell_rate(ref), cell_rate(gw),
                      f"{row['ratio']:.1f}x" if row["ratio"] else "n/a", cell_lat(ref), cell_lat(gw), targets, "; ".join(notes)])
    out = [bl.render_table(headers, lines), ""]
    if data.get("baseline"):
        out.insert(0, f"--baseline: the `reference` columns are graphward {data['baseline']} (targets do not apply)\n")
    out.insert(0, f"graphward storage: {data.get('graphward_storage', 'sqlite (dev)')}\n")
    ref, gw = data["servers"]["reference"], data["servers"]["graphward"]

    def mib(value):
        return f"{value:.1f} MiB" if value else "-"

    def startup(side):
        if not side["startup_ms"]:
            return "-"
        return f"{side['startup_ms']:.0f} ms ({side['startup_ms_min']:.0f}–{side['startup_ms_max']:.0f}, {len(side['instances'])} starts)"

    ratio = f"{ref['peak_rss_mib'] / gw['peak_rss_mib']:.1f}x smaller" if ref["peak_rss_mib"] and gw["peak_rss_mib"] else ""
    out.append(bl.render_table(["", "reference", "graphward", ""], [
        ["peak RSS (VmHWM, process tree)", mib(ref["peak_rss_mib"]), mib(gw["peak_rss_mib"]), ratio],
        ["time to first GET /ok 200 (median)", startup(ref), startup(gw), ""],
    ]))
    auth = data.get("auth_round_trip")
    if auth:
        with_auth, plain = auth["http_c1"]["auth"], auth["http_c1"]["plain"]
        micro = auth["bench_auth"]
        out.append("")
        out.append(bl.render_table(["Python auth round trip", "graphward, auth", "graphward, no auth", "added"], [
            ["GET /threads/{id} c=1, p50 / p99 ms", cell_lat(with_auth), cell_lat(plain), f"{auth['added_p50_us']:.0f} µs (p50), {auth['added_mean_us']:.0f} µs (mean)"],
            ["bench-auth (no HTTP)", micro.get("line", micro.get("error", "-")).removeprefix("auth round trip: "), "", ""],
        ]))
    for kind in ("reference", "graphward"):
        side = data["servers"][kind]
        if side.get("seeding_retried_5xx"):
            examples = sorted({e for seed in side["seeding"] for e in seed.get("retried_5xx_examples", [])})[:2]
            out.append(f"warning: seeding {kind} needed {side['seeding_retried_5xx']} retries after 5xx answers "
                       f"({len(side['seeding'])} seedings of 2,064 creates at 16 concurrent): {examples}")
        errors: dict[str, int] = {}
        for inst in side["instances"]:
            for line, count in (inst.get("log_errors") or {}).items():
                errors[line] = errors.get(line, 0) + count
        for line, count in sorted(errors.items(), key=lambda item: -item[1])[:3]:
            out.append(f"warning: {kind} log: {count:,} x {line}")
        bad = [f"{seed['counts']} != {seed['expected_counts']}" for seed in side["seeding"] if seed.get("counts") != seed.get("expected_counts")]
        if bad:
            out.append(f"warning: {kind} thread counts after seeding: {bad[:2]}")
    failed = [t["target"] for t in data["targets"] if not t["pass"]]
    out.append("")
    out.append(f"targets: {sum(t['pass'] for t in data['targets'])}/{len(data['targets'])} pass" + (f"; failing: {'; '.join(failed)}" if failed else ""))
    s = data["settings"]
    out.append(f"settings: wrk -t{s['threads']} -c{s['connections']}, {s['warmup']:g} s warm-up + {s['runs']} x {s['seconds']:g} s "
               f"(runs/wait {s['runs_seconds']:g} s); median (min–max) of runs; ratio = graphward / reference rate of expected answers; loadavg {data['loadavg']['start']} -> {data['loadavg']['end']}")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ref-venv", type=Path, required=True)
    parser.add_argument("--graphward", type=Path, required=True)
    parser.add_argument("--app", type=Path, default=bl.REPO)
    parser.add_argument("--out", type=Path, default=bl.OUT / "compare.json")
    parser.add_argument("--baseline", type=Path, help="a graphward binary to run in the reference's place (before/after a change)")
    parser.add_argument("--graphward-postgres", metavar="URI", help="run graphward on Postgres: a fresh database per server on this server URI (`serve`)")
    parser.add_argument("--graphward-workers", type=int, default=1, help="with --graphward-postgres: `serve --workers N`")
    args = parser.parse_args()
    data = Harness(args).run()
    bl.write_json(args.out, data)
    print(data["table"])
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
