#!/usr/bin/env python3
"""The long leak hunt: `tests/e2e/hunter.py` for as many operations as you like.

    python bench/hunt.py --ops 1000000 --seed N [--binary target/release/graphward] [--workers K]

Starts its own graphward on the hunter's app (a temporary folder, a free port), runs K
workers — each with its own four users and its own model, all on the one server — for
`--ops` operations in all, prints progress every `--progress` seconds and the final figures
(operations, ops/s, violations, per-operation counts, the server's peak RSS from VmHWM).
Exit code 1 when there was a violation or the server died.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))

import hunter  # after the path is set


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run the multi-user leak hunter for a long time.")
    parser.add_argument("--ops", type=int, default=1_000_000, help="operations in all (default 1,000,000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--binary", default=str(REPO / "target" / "release" / "graphward"))
    parser.add_argument("--workers", type=int, default=4, help="concurrent clients, each its own users (default 4)")
    parser.add_argument("--progress", type=float, default=30.0, help="seconds between progress lines (default 30)")
    parser.add_argument("--report", type=Path, help="also write the whole violation report to this file")
    parser.add_argument("--log-level", default="warn", help="GRAPHWARD_LOG for the server (default warn)")
    parser.add_argument("--trace", type=int, default=50_000, help="exchanges each worker keeps for replays (default 50,000)")
    parser.add_argument("--firing-every", type=int, default=5_000, help="operations between two pairs of firing crons per worker")
    return parser.parse_args()


def mib(kib: int | None) -> str:
    return f"{(kib or 0) / 1024:.0f} MiB"


def interrupt(_signum, _frame) -> None:
    raise KeyboardInterrupt


def main() -> int:
    args = parse_args()
    # Stopped early by Ctrl-C, or by SIGINT/SIGTERM when started in the background (where a
    # shell leaves SIGINT ignored): the figures so far are still printed.
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    if not Path(args.binary).exists():
        print(f"no binary at {args.binary} (build it, or pass --binary)", file=sys.stderr)
        return 2
    started = time.monotonic()

    def progress(done: int, total: int, violations: hunter.Violations, memory: dict) -> None:
        elapsed = time.monotonic() - started
        rate = done / elapsed if elapsed else 0.0
        print(
            f"[{elapsed:8.0f} s] {done:>9,}/{total:,} ops  {rate:6.1f} ops/s  {violations.total} violations  "
            f"server RSS {mib(memory.get('VmRSS'))} (peak {mib(memory.get('VmHWM'))})"
            + (f"  [{', '.join(f'{kind}: {n}' for kind, n in sorted(violations.counts.items()))}]" if violations.total else ""),
            flush=True,
        )

    print(f"hunting: {args.ops:,} operations, seed {args.seed}, {args.workers} workers, {args.binary}", flush=True)
    result = hunter.hunt(
        args.binary,
        seed=args.seed,
        operations=args.ops,
        workers=args.workers,
        log_level=args.log_level,
        progress=progress,
        progress_every=args.progress,
        keep_trace=args.trace,
        firing_every=args.firing_every,
        on_violation=lambda found: print(f"  found [{found.kind}] {found.message} (request #{found.seq})", flush=True),
    )
    print()
    print(result.summary())
    print(f"server peak RSS (VmHWM): {mib(result.memory_kib.get('VmHWM'))}")
    if args.report:
        args.report.write_text(result.violations.report(result.base_url) + "\n")
        print(f"report: {args.report}")
    print()
    print(result.violations.report(result.base_url, full=10))
    if not result.server_alive:
        print(f"\nthe server died:\n{result.server_log_tail}")
    return 1 if result.violations.total or not result.server_alive else 0


if __name__ == "__main__":
    sys.exit(main())
