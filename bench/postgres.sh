#!/usr/bin/env bash
# The benchmarks with graphward on Postgres: starts a throw-away cluster (scripts/postgres.sh),
# runs one harness against it and stops the cluster. Other arguments and BENCH_* knobs pass
# through.
#
#   bench/postgres.sh compare    # bench/compare.sh, graphward `serve --workers ${BENCH_WORKERS:-2}`
#                                # on a fresh database per server, e.g. BENCH_ONLY=runs_c8
#   BENCH_WORKERS=1 bench/postgres.sh compare   # one process: the CRUD routes on Postgres
#   bench/postgres.sh scale      # bench/scale.sh: 1,000,000 threads in a Postgres database
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
harness=${1:-compare}
shift || true
cluster=$(mktemp -d /tmp/graphward-bench-pg-XXXXXX)
trap '"$repo/scripts/postgres.sh" stop "$cluster"' EXIT
uri=$("$repo/scripts/postgres.sh" start "$cluster")
case "$harness" in
compare)
    BENCH_OUT="${BENCH_OUT:-$repo/bench/out/postgres}" "$repo/bench/compare.sh" --graphward-postgres "$uri" --graphward-workers "${BENCH_WORKERS:-2}" "$@"
    ;;
scale)
    psql -q "$uri" -c "CREATE DATABASE scale"
    BENCH_OUT="${BENCH_OUT:-$repo/bench/out/postgres}" "$repo/bench/scale.sh" --postgres "${uri%/*}/scale" "$@"
    ;;
*)
    echo "usage: bench/postgres.sh compare|scale [args]" >&2
    exit 2
    ;;
esac
