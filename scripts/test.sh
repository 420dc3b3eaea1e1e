#!/usr/bin/env bash
# The whole test suite: Rust unit and integration tests, then the end-to-end pytest suite that
# drives the built binary with the official clients. Needs nothing running; picks free ports.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
export GRAPHWARD_TEST_VENV="$PWD/.venv"
cargo build --locked
cargo test --locked
GRAPHWARD_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/graphward" .venv/bin/python -m pytest tests/e2e -q
