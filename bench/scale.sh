#!/usr/bin/env bash
# graphward alone with 1,000,000 threads in its database: owner-filtered POST /threads/search and
# GET /threads/{id} at c=1 and c=32, p50/p99 latency. Installs what it needs (same as
# compare.sh), builds graphward (release), prints the table, writes bench/out/scale.json.
#
#   bench/scale.sh                                               # full (~10 min incl. the bulk insert)
#   BENCH_SECONDS=3 BENCH_WARMUP=1 BENCH_RUNS=1 bench/scale.sh   # quick
#   SCALE_REUSE=1 ...                                            # keep the last 1M database
#
# See bench/README.md for every knob.
set -euo pipefail
source "$(dirname "$0")/setup.sh"
cd "$BENCH_DIR"
exec "$REF_VENV/bin/python" scale.py --venv "$REF_VENV" --graphward "$GRAPHWARD_BIN" --app "$REPO_DIR" \
    --out "${BENCH_OUT:-$BENCH_DIR/out}/scale.json" "$@"
