#!/usr/bin/env bash
# Builds graphward and starts the dev server on the example app (langgraph.json at the repo
# root, embedded state, no other service). Extra arguments go to `graphward dev`, e.g.
# `scripts/dev.sh --port 8123`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo build --release --locked
exec target/release/graphward dev --no-browser --config langgraph.json "$@"
