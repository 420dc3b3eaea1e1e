"""Semantic store search at scale: `POST /store/items/search` with a `query` over
STORE_ITEMS items (default 100,000) under one namespace prefix, every one a candidate
(graphward scores them all: no vector index, see ARCHITECTURE.md "The store's vectors").

    python bench/store_search.py --graphward target/release/graphward [--postgres URI]

The app is tests/e2e/apps/store_index.py (hashed bag of words, 64 dimensions). Items are
written straight into a schema graphward created (one transaction; their vectors computed by
the app's own embed function, in graphward's blob layout), then the server is restarted and
each of STORE_CLIENTS (default 1,8) concurrent clients sends searches for BENCH_SECONDS
(default 10) with a random three-word query; p50/p99 latency and the rate are printed, and
written to bench/out/store_search.json. Only 127.0.0.1 is contacted; every loop is bounded.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import sqlite3
import statistics
import struct
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl  # noqa: E402

APP = bl.REPO / "tests" / "e2e" / "apps" / "store_index.py"
WORDS = [f"w{n}" for n in range(2000)]


def load_embed():
    spec = importlib.util.spec_from_file_location("store_index_app", APP)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.embed, module.DIMS


def blob(vectors: list[list[float]], dims: int) -> bytes:
    """graphward's vector blob: u32 length, then every f32 (little-endian)."""
    return struct.pack(f"<I{dims * len(vectors)}f", dims, *(component for vector in vectors for component in vector))


def rows(total: int):
    embed, dims = load_embed()
    rng = random.Random(7)
    base = 1_700_000_000_000_000
    for index in range(total):
        text = " ".join(rng.choice(WORDS) for _ in range(8))
        value = json.dumps({"text": text, "n": index % 10}, separators=(",", ":"))
        yield f"docs.u{index % 10}", f"k{index}", value, base + index, blob(embed([text]), dims)


def seed_sqlite(db: Path, total: int) -> float:
    started = time.monotonic()
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO store_items (namespace, key, value, created_at, updated_at, vectors) VALUES (?, ?, ?, ?, ?, ?)",
        ((namespace, key, value, ts, ts, vectors) for namespace, key, value, ts, vectors in rows(total)),
    )
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return time.monotonic() - started


def seed_postgres(uri: str, total: int) -> float:
    import psycopg

    started = time.monotonic()
    with psycopg.connect(uri) as conn:
        conn.execute("DELETE FROM store_items")
        with conn.cursor() as cur, cur.copy("COPY store_items (namespace, key, value, created_at, updated_at, vectors) FROM STDIN") as copy:
            for namespace, key, value, ts, vectors in rows(total):
                copy.write_row((namespace, key, value, ts, ts, vectors))
        conn.commit()
        conn.autocommit = True
        conn.execute("ANALYZE store_items")
    return time.monotonic() - started


def load(port: int, clients: int, seconds: float) -> dict:
    """`clients` threads, each searching back to back until `seconds` pass."""
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(seed: int) -> None:
        rng = random.Random(seed)
        while time.monotonic() < deadline:
            body = json.dumps({"namespace_prefix": ["docs"], "query": " ".join(rng.choice(WORDS) for _ in range(3)), "limit": 10}).encode()
            started = time.monotonic()
            status, answer = bl.request(port, "POST", "/store/items/search", body, timeout=30)
            elapsed = (time.monotonic() - started) * 1000
            ok = status == 200 and len(json.loads(answer)["items"]) == 10
            with lock:
                latencies.append(elapsed) if ok else None
                failures[0] += 0 if ok else 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 60)
    elapsed = time.monotonic() - started
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else None  # noqa: E731
    return {"clients": clients, "n": len(latencies), "failed": failures[0], "rps": len(latencies) / elapsed, "p50_ms": pick(0.5), "p99_ms": pick(0.99), "mean_ms": statistics.fmean(latencies) if latencies else None}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--graphward", type=Path, required=True)
    parser.add_argument("--postgres", metavar="URI", help="an empty Postgres database instead of SQLite")
    parser.add_argument("--out", type=Path, default=bl.OUT / "store_search.json")
    args = parser.parse_args()
    total = bl.env_int("STORE_ITEMS", 100_000)
    seconds = bl.env_float("BENCH_SECONDS", 10)
    concurrencies = [int(c) for c in os.environ.get("STORE_CLIENTS", "1,8").split(",")]
    work = bl.fresh_dir(bl.OUT / "store-search")
    app = work / "app"
    app.mkdir()
    (app / "store_index.py").write_text(APP.read_text())
    config = {"graphs": {"search": "./store_index.py:graph"}, "store": {"index": {"embed": "./store_index.py:embed", "dims": 64, "fields": ["text"]}}}
    (app / "langgraph.json").write_text(json.dumps(config))
    db = work / "state.db"
    env = dict(os.environ)
    env.setdefault("VIRTUAL_ENV", sys.prefix)

    def server(name: str) -> bl.Server:
        port = bl.free_port()
        cmd = [str(args.graphward.resolve()), "dev", "--no-browser", "--host", bl.HOST, "--port", str(port), "--config", str(app / "langgraph.json")]
        if args.postgres:
            env["DATABASE_URI"] = args.postgres
        else:
            cmd += ["--database", str(db)]
        return bl.Server("graphward", name, cmd, port, env, app, work / f"{name}.log")

    schema = server("schema")
    schema.start(90)
    schema.stop()
    seeded = seed_postgres(args.postgres, total) if args.postgres else seed_sqlite(db, total)
    print(f"seeded {total:,} items in {seeded:.1f} s", flush=True)
    gw = server("search")
    gw.start(120)
    try:
        load(gw.port, 1, min(2.0, seconds))  # warm-up
        results = [load(gw.port, clients, seconds) for clients in concurrencies]
    finally:
        gw.stop()
    backend = "postgres" if args.postgres else "sqlite"
    print(f"store search with query, {total:,} items, {backend}, {seconds:g} s per row")
    print(bl.render_table(["clients", "p50", "p99", "req/s", "n", "failed"], [[str(r["clients"]), bl.fmt_ms(r["p50_ms"]), bl.fmt_ms(r["p99_ms"]), bl.fmt_rate(r["rps"]), str(r["n"]), str(r["failed"])] for r in results]))
    bl.write_json(args.out, {"items": total, "backend": backend, "seconds": seconds, "seed_seconds": round(seeded, 1), "results": results, "revision": bl.git_revision(), "machine": bl.machine_info()})


if __name__ == "__main__":
    main()
