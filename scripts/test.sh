#!/usr/bin/env bash
# The whole test suite: Rust unit and integration tests; then the wheel is built and installed
# into .venv, and the end-to-end pytest suite drives its `graphward` command with the official
# clients (the few tests of the binary's own venv handling run against the binary), once on
# SQLite and once on Postgres (a throw-away cluster this script starts and stops); then the
# wheel is installed and smoke-tested on every CPython 3.10-3.13 the machine has. Needs
# nothing running; picks free ports.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
export GRAPHWARD_TEST_VENV="$PWD/.venv"
# One throw-away Postgres cluster for the whole run: the storage suite's Postgres half, and
# the end-to-end suite's second pass.
postgres_dir=$(mktemp -d /tmp/graphward-test-pg-XXXXXX)
trap 'scripts/postgres.sh stop "$postgres_dir"' EXIT
GRAPHWARD_TEST_POSTGRES=$(scripts/postgres.sh start "$postgres_dir")
export GRAPHWARD_TEST_POSTGRES
cargo build --locked
cargo test --locked
target="${CARGO_TARGET_DIR:-$PWD/target}"
# The dev profile keeps debug assertions, which the failpoints of a few tests need.
rm -rf "$target/wheels-test"
.venv/bin/maturin build --locked --profile dev --interpreter "$PYO3_PYTHON" --out "$target/wheels-test"
wheel=$(ls "$target"/wheels-test/graphward-*.whl)
.venv/bin/python -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps "$wheel"
GRAPHWARD_BIN="$PWD/.venv/bin/graphward" .venv/bin/python -m pytest tests/e2e -q -m "not embedded"
# The same suite with every server on Postgres (a database per server), and the replica tests.
GRAPHWARD_E2E_POSTGRES="$GRAPHWARD_TEST_POSTGRES" GRAPHWARD_E2E_POSTGRES_DIR="$postgres_dir" GRAPHWARD_BIN="$PWD/.venv/bin/graphward" .venv/bin/python -m pytest tests/e2e -q -m "not embedded"
GRAPHWARD_BIN="$target/debug/graphward" .venv/bin/python -m pytest tests/e2e -q -m embedded
GRAPHWARD_WHEEL="$wheel" .venv/bin/python -m pytest tests/wheel -q
