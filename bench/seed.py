"""Seeds one server through the official Python client, exactly as perf-baseline.md §3:
1,000 threads for user1 and 1,000 for user2 (16 concurrent creates, metadata {"i": i}; the
app's auth handler stamps metadata.owner), 64 threads for runs (user1, {"purpose": "runs"}) and
one store item (("user1","notes"), "k", {"v": 1}).

    python seed.py URL OUTDIR [--per-user 1000] [--run-threads 64]

Writes OUTDIR/seed.json ({"get_thread_id", "run_threads_file", "counts", "seconds"}) and
OUTDIR/run_threads.txt. Bounded: gives up after --timeout seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

from langgraph_sdk import get_client
from langgraph_sdk.errors import APIStatusError

USERS = ("user1", "user2")


async def seed(url: str, outdir: Path, per_user: int, run_threads: int, concurrency: int) -> dict:
    started = time.monotonic()
    clients = {user: get_client(url=url, headers={"Authorization": f"Bearer {user}-token"}) for user in USERS}
    gate = asyncio.Semaphore(concurrency)
    created: dict[str, list[str]] = {user: [] for user in USERS}

    retried: list[str] = []

    async def retrying(what: str, call):
        """Retries a 5xx answer (up to 10 times) so that seeding completes; every retry is
        counted and reported (seed.json "retried_5xx"), since it is a server bug."""
        for attempt in range(10):
            try:
                return await call()
            except APIStatusError as error:
                if error.status_code < 500 or attempt == 9:
                    raise
                retried.append(f"{what}: {error.status_code} {str(error)[:200]}")
                await asyncio.sleep(0.01 * (attempt + 1))

    async def make(user: str, index: int) -> None:
        async with gate:
            thread = await retrying("POST /threads", lambda: clients[user].threads.create(metadata={"i": index}))
            created[user].append(thread["thread_id"])

    await asyncio.gather(*(make(user, index) for user in USERS for index in range(per_user)))
    c1 = clients["user1"]
    runs = []
    for _ in range(run_threads):
        runs.append((await retrying("POST /threads", lambda: c1.threads.create(metadata={"purpose": "runs"})))["thread_id"])
    await retrying("PUT /store/items", lambda: c1.store.put_item(("user1", "notes"), "k", {"v": 1}))

    # Sanity checks of what the server now holds (owner filter applied by the app's auth).
    counts = {}
    for user in USERS:
        try:
            counts[user] = await clients[user].threads.count()
        except Exception as error:  # noqa: BLE001 - reported, not fatal
            counts[user] = f"error: {error}"
    item = await c1.store.get_item(("user1", "notes"), "k")
    get_thread_id = created["user1"][len(created["user1"]) // 2]
    got = await c1.threads.get(get_thread_id)
    checks = {
        "store_item_value": item and item.get("value"),
        "get_thread_owner": (got.get("metadata") or {}).get("owner"),
    }
    (outdir / "run_threads.txt").write_text("\n".join(runs) + "\n")
    result = {
        "get_thread_id": get_thread_id,
        "run_threads_file": str(outdir / "run_threads.txt"),
        "counts": counts,
        "expected_counts": {"user1": per_user + run_threads, "user2": per_user},
        "checks": checks,
        "retried_5xx": len(retried),
        "retried_5xx_examples": sorted(set(retried))[:5],
        "seconds": round(time.monotonic() - started, 2),
    }
    (outdir / "seed.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--per-user", type=int, default=1000)
    parser.add_argument("--run-threads", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    args.outdir.mkdir(parents=True, exist_ok=True)
    result = asyncio.run(asyncio.wait_for(seed(args.url, args.outdir, args.per_user, args.run_threads, args.concurrency), args.timeout))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
