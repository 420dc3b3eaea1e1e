#!/usr/bin/env bash
# bench/compare.sh with graphward on Postgres: starts a throw-away cluster (scripts/postgres.sh),
# runs the comparison with `serve --workers ${BENCH_WORKERS:-2}` on a fresh database per
# server, and stops the cluster. Other arguments and BENCH_* knobs pass through, e.g.
#
#   BENCH_ONLY=runs_c8 bench/postgres.sh          # runs/wait at 8 clients only
#   BENCH_WORKERS=1 bench/postgres.sh             # one process, the CRUD routes on Postgres
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cluster=$(mktemp -d /tmp/graphward-bench-pg-XXXXXX)
trap '"$repo/scripts/postgres.sh" stop "$cluster"' EXIT
uri=$("$repo/scripts/postgres.sh" start "$cluster")
BENCH_OUT="${BENCH_OUT:-$repo/bench/out/postgres}" "$repo/bench/compare.sh" --graphward-postgres "$uri" --graphward-workers "${BENCH_WORKERS:-2}" "$@"
