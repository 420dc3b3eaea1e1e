#!/usr/bin/env bash
# graphward vs. the reference `langgraph dev` on the example app: installs wrk and the reference
# (bench/.venv-ref), builds graphward (release), seeds both servers with the same data, drives the
# same wrk load against each, prints the table and writes bench/out/compare.json.
#
#   bench/compare.sh                                   # full: 3 s warm-up + 3 x 15 s per route (~15 min)
#   BENCH_SECONDS=3 BENCH_RUNS_SECONDS=3 BENCH_WARMUP=1 BENCH_RUNS=1 bench/compare.sh   # quick (~3 min)
#
# See bench/README.md for every knob.
set -euo pipefail
source "$(dirname "$0")/setup.sh"
cd "$BENCH_DIR"
exec "$REF_VENV/bin/python" compare.py --ref-venv "$REF_VENV" --graphward "$GRAPHWARD_BIN" --app "$REPO_DIR" \
    --out "${BENCH_OUT:-$BENCH_DIR/out}/compare.json" "$@"
