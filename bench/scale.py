"""graphward alone at scale: owner-filtered `POST /threads/search` and `GET /threads/{id}` with
1,000,000 threads in its SQLite database, or with `--postgres URI` in that (empty) Postgres
database (the reference's in-memory runtime cannot hold that). Run through bench/scale.sh or
`bench/postgres.sh scale`; see bench/README.md.

    python scale.py --graphward BIN --venv DIR [--app DIR] [--out FILE] [--postgres URI]

1. graphward starts once on an empty database (so it creates its schema) and is stopped.
2. SCALE_THREADS threads (default 1,000,000) are bulk-inserted in one transaction (sqlite3, or
   psycopg's COPY then ANALYZE):
   metadata {"owner": ...} plus the matching `thread_meta` row, exactly what POST /threads with
   the example auth stores. Every SCALE_USER2_EVERY-th thread (default 2, i.e. half) is user2's,
   the rest user1's, interleaved in creation order.
3. graphward starts on that file (time to first GET /ok 200 and peak RSS are reported) and wrk
   drives: search as user1 and as user2 ({"limit":10}, newest first), and GET /threads/{id}
   round-robin over SCALE_GET_IDS (default 1,000) random user1 threads, each at c=1 and c=32
   (SCALE_CONNECTIONS), with the warm-up + BENCH_RUNS method of compare.py.

SCALE_REUSE=1 keeps an existing bench/out/scale/state.db of the same size and split (skips 1-2).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import sys
import time
import uuid
from pathlib import Path

import benchlib as bl


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def canonical_string(text: str) -> str:
    """Canonical text of a JSON string (src/storage/canonical.rs): its compact JSON form."""
    return json.dumps(text, ensure_ascii=False)


def thread_rows(rng: random.Random, total: int, user2_every: int, get_ids: int, counts: dict, sample: list[str]):
    """(thread_id, timestamp, owner) of the seeded threads, one per millisecond ending now;
    counts owners in `counts` and keeps a reservoir sample of user1's ids in `sample`."""
    base = int(time.time() * 1_000_000) - total * 1000
    for index in range(total):
        owner = "user2" if user2_every and index % user2_every == 0 else "user1"
        counts[owner] += 1
        thread_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        if owner == "user1":
            seen = counts["user1"]
            if len(sample) < get_ids:
                sample.append(thread_id)
            elif rng.randrange(seen) < get_ids:
                sample[rng.randrange(get_ids)] = thread_id
        yield thread_id, base + index * 1000, owner


def seed_database(db: Path, total: int, user2_every: int, get_ids: int, ids_file: Path) -> dict:
    """Bulk insert into a schema graphward created; one transaction."""
    started = time.monotonic()
    rng = random.Random(6)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA cache_size = -1048576")  # 1 GiB page cache for the load
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA temp_store = MEMORY")
    existing = conn.execute("SELECT COUNT(*) FROM threads").fetchone()[0]
    if existing:
        raise RuntimeError(f"{db} already holds {existing} threads")
    sample: list[str] = []
    counts = {"user1": 0, "user2": 0}
    conn.execute("BEGIN")
    batch: list[tuple] = []
    meta: list[tuple] = []
    insert_thread = 'INSERT INTO threads (thread_id, created_at, updated_at, state_updated_at, metadata, config, status, "values", interrupts, error) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, NULL)'
    insert_meta = "INSERT INTO thread_meta (thread_id, key, elem, canon) VALUES (?, 'owner', 0, ?)"
    for thread_id, ts, owner in thread_rows(rng, total, user2_every, get_ids, counts, sample):
        batch.append((thread_id, ts, ts, ts, json.dumps({"owner": owner}, separators=(",", ":")), "{}", "idle", "{}"))
        meta.append((thread_id, canonical_string(owner)))
        if len(batch) >= 50_000:
            conn.executemany(insert_thread, batch)
            conn.executemany(insert_meta, meta)
            batch.clear()
            meta.clear()
    if batch:
        conn.executemany(insert_thread, batch)
        conn.executemany(insert_meta, meta)
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    rng.shuffle(sample)
    ids_file.write_text("\n".join(sample) + "\n")
    info = {"threads": total, "counts": counts, "user2_every": user2_every, "seconds": round(time.monotonic() - started, 1)}
    (db.parent / "seed.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def seed_postgres(uri: str, total: int, user2_every: int, get_ids: int, ids_file: Path, stamp: Path) -> dict:
    """The same threads, copied into a Postgres schema graphward created; one transaction."""
    import psycopg

    started = time.monotonic()
    rng = random.Random(6)
    sample: list[str] = []
    counts = {"user1": 0, "user2": 0}
    with psycopg.connect(uri) as conn:
        if conn.execute("SELECT COUNT(*) FROM threads").fetchone()[0]:
            raise RuntimeError("the database already holds threads")
        # Two COPYs cannot interleave on one connection: threads first, then their metadata rows.
        owners: list[tuple[str, str]] = []
        with conn.cursor() as cur, cur.copy('COPY threads (thread_id, created_at, updated_at, state_updated_at, metadata, config, status, interrupts) FROM STDIN') as copy:
            for thread_id, ts, owner in thread_rows(rng, total, user2_every, get_ids, counts, sample):
                copy.write_row((thread_id, ts, ts, ts, json.dumps({"owner": owner}, separators=(",", ":")), "{}", "idle", "{}"))
                owners.append((thread_id, owner))
        with conn.cursor() as cur, cur.copy("COPY thread_meta (thread_id, key, elem, canon) FROM STDIN") as copy:
            for thread_id, owner in owners:
                copy.write_row((thread_id, "owner", 0, canonical_string(owner)))
        conn.commit()
        conn.autocommit = True
        conn.execute("ANALYZE threads")
        conn.execute("ANALYZE thread_meta")
    rng.shuffle(sample)
    ids_file.write_text("\n".join(sample) + "\n")
    info = {"threads": total, "counts": counts, "user2_every": user2_every, "seconds": round(time.monotonic() - started, 1), "backend": "postgres"}
    stamp.write_text(json.dumps(info, indent=2) + "\n")
    return info


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--graphward", type=Path, required=True)
    parser.add_argument("--venv", type=Path, required=True)
    parser.add_argument("--app", type=Path, default=bl.REPO)
    parser.add_argument("--out", type=Path, default=bl.OUT / "scale.json")
    parser.add_argument("--postgres", metavar="URI", help="graphward on this Postgres database (empty, or holding the last seed with SCALE_REUSE=1) instead of SQLite")
    args = parser.parse_args()
    settings = bl.Settings()
    total = bl.env_int("SCALE_THREADS", 1_000_000)
    user2_every = bl.env_int("SCALE_USER2_EVERY", 2)
    get_ids = bl.env_int("SCALE_GET_IDS", 1000)
    concurrencies = [int(c) for c in os.environ.get("SCALE_CONNECTIONS", "1,32").split(",")]
    work = bl.OUT / "scale"
    work.mkdir(parents=True, exist_ok=True)
    db, ids_file = work / "state.db", work / "get_ids.txt"
    load_start = bl.loadavg()
    started = time.time()

    env = dict(os.environ)
    env["VIRTUAL_ENV"] = str(args.venv.resolve())
    env.pop("PYTHONHOME", None)
    config = args.app.resolve() / "langgraph.json"

    def server(name: str) -> bl.Server:
        port = bl.free_port()
        cmd = [str(args.graphward), "dev", "--no-browser", "--host", bl.HOST, "--port", str(port), "--config", str(config)]
        if args.postgres:
            env["DATABASE_URI"] = args.postgres
        else:
            cmd += ["--database", str(db)]
        return bl.Server("graphward", name, cmd, port, env, args.app.resolve(), work / f"{name}.log")

    seed_info = None
    stamp = work / ("seed-postgres.json" if args.postgres else "seed.json")
    if args.postgres:
        ids_file = work / "get_ids-postgres.txt"
    if os.environ.get("SCALE_REUSE") == "1" and (args.postgres or db.exists()) and stamp.exists() and ids_file.exists():
        seed_info = json.loads(stamp.read_text())
        if seed_info.get("threads") != total or seed_info.get("user2_every") != user2_every:
            seed_info = None
        else:
            seed_info["reused"] = True
            log(f"reusing {db} ({total:,} threads)")
    if seed_info is None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        stamp.unlink(missing_ok=True)
        schema = server("graphward-schema")
        schema.start(90)
        schema.stop()
        log(f"schema created; inserting {total:,} threads (every {user2_every}th is user2's)")
        if args.postgres:
            seed_info = seed_postgres(args.postgres, total, user2_every, get_ids, ids_file, stamp)
        else:
            seed_info = seed_database(db, total, user2_every, get_ids, ids_file)
        log(f"inserted in {seed_info['seconds']} s: {seed_info['counts']}")
    if args.postgres:
        import psycopg

        with psycopg.connect(args.postgres) as conn:
            db_bytes = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    else:
        db_bytes = sum(Path(f"{db}{suffix}").stat().st_size for suffix in ("", "-wal") if Path(f"{db}{suffix}").exists())

    gw = server("graphward-scale")
    startup = gw.start(300)
    log(f"graphward on {total:,} threads: first GET /ok 200 after {startup:.0f} ms (port {gw.port})")
    rows, probes = [], {}
    try:
        first_id = ids_file.read_text().split()[0]
        for label, method, path, body, token in (
            ("search user1", "POST", "/threads/search", b'{"limit":10}', "user1-token"),
            ("search user2", "POST", "/threads/search", b'{"limit":10}', "user2-token"),
            ("get", "GET", f"/threads/{first_id}", None, "user1-token"),
            ("get as user2 (404)", "GET", f"/threads/{first_id}", None, "user2-token"),
        ):
            t0 = time.monotonic()
            status, payload = bl.request(gw.port, method, path, body, token, timeout=60)
            ms = (time.monotonic() - t0) * 1000
            probe = {"status": status, "first_request_ms": round(ms, 2)}
            try:
                parsed = json.loads(payload) if payload else None
            except ValueError:
                parsed = None
            if isinstance(parsed, list):
                owners = sorted({(item.get("metadata") or {}).get("owner") for item in parsed})
                probe.update({"items": len(parsed), "owners": owners})
            else:
                probe["body"] = payload[:200].decode("utf-8", "replace")
            probes[label] = probe
        log(f"probes: {probes}")

        routes = [
            ("POST /threads/search", "user1", "search.lua", "/threads/search", {"BENCH_TOKEN": "user1-token"}),
            ("POST /threads/search", "user2", "search.lua", "/threads/search", {"BENCH_TOKEN": "user2-token"}),
            ("GET /threads/{id}", "user1", "get_many.lua", "/", {"BENCH_TOKEN": "user1-token", "THREAD_IDS": str(ids_file)}),
        ]
        for route, user, script, path, extra in routes:
            for conns in concurrencies:
                log(f"{route} as {user} c={conns} ({settings.seconds:g} s x {settings.runs})")
                result = bl.measure(script, f"http://{bl.HOST}:{gw.port}{path}", conns, settings.seconds, settings, extra)
                rows.append({"route": route, "user": user, "concurrency": conns, **result})
    finally:
        memory = gw.stop()

    data = {
        "kind": "scale",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "settings": {**settings.as_dict(), "threads_total": total, "user2_every": user2_every, "get_ids": get_ids, "concurrencies": concurrencies},
        "machine": bl.machine_info(),
        "loadavg": {"start": load_start, "end": bl.loadavg()},
        "elapsed_s": round(time.time() - started, 1),
        "graphward": bl.git_revision(),
        "wrk": bl.wrk_version(),
        "database": {"path": "postgres" if args.postgres else str(db), "bytes": db_bytes, "seed": seed_info},
        "startup_ms": startup,
        "memory": memory,
        "peak_rss_mib": memory.get("peak_rss_kb", 0) / 1024,
        "probes": probes,
        "rows": rows,
        "log": str(gw.log),
        "log_errors": bl.log_errors(gw.log),
    }
    data["table"] = render(data)
    bl.write_json(args.out, data)
    print(data["table"])
    print(f"\nwrote {args.out}")


def render(data: dict) -> str:
    headers = ["route", "as", "c", "req/s", "p50 ms", "p99 ms", "p99 min–max", "max ms", "notes"]
    lines = []
    for row in data["rows"]:
        notes = []
        if row["non2xx"] or row["sockerr"]:
            notes.append(f"{row['non2xx']} non-2xx, {row['sockerr']} socket errors of {row['requests']}")
        rate = bl.fmt_rate(row["rps"]) + (f" ({bl.fmt_rate(row['rps_min'])}–{bl.fmt_rate(row['rps_max'])})" if len(row["runs"]) > 1 else "")
        lines.append([row["route"], row["user"], str(row["concurrency"]), rate, bl.fmt_ms(row["p50_ms"]), bl.fmt_ms(row["p99_ms"]),
                      f"{bl.fmt_ms(row['p99_ms_min'])}–{bl.fmt_ms(row['p99_ms_max'])}", bl.fmt_ms(row["max_ms"]), "; ".join(notes)])
    seed = data["database"]["seed"] or {}
    s = data["settings"]
    out = [bl.render_table(headers, lines), ""]
    out.append(f"threads: {s['threads_total']:,} ({seed.get('counts')}); database {data['database']['bytes'] / 2**20:.0f} MiB"
               + (f", bulk insert {seed.get('seconds')} s" if not seed.get("reused") else ", reused"))
    out.append(f"time to first GET /ok 200: {data['startup_ms']:.0f} ms; peak RSS (VmHWM): {data['peak_rss_mib']:.1f} MiB")
    out.append("first requests: " + "; ".join(f"{k}: {v['status']} in {v['first_request_ms']} ms" + (f", {v['items']} items owned by {v['owners']}" if "items" in v else "")
                                            for k, v in data["probes"].items()))
    for line, count in data["log_errors"].items():
        out.append(f"warning: graphward log: {count:,} x {line}")
    out.append(f"settings: wrk -t{s['threads']}, {s['warmup']:g} s warm-up + {s['runs']} x {s['seconds']:g} s; median (min–max) of runs; "
               f"loadavg {data['loadavg']['start']} -> {data['loadavg']['end']}")
    return "\n".join(out)


if __name__ == "__main__":
    main()
