#!/usr/bin/env bash
# Builds graphward and starts the dev server on the example app (langgraph.json at the repo
# root, embedded state, no other service). Extra arguments go to `graphward dev`, e.g.
# `scripts/dev.sh --port 8123`, or `scripts/dev.sh --config examples/full/langgraph.json` for
# the full example.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo build --release --locked
config=(--config langgraph.json)
for arg in "$@"; do
    case "$arg" in --config|-c|--config=*) config=() ;; esac
done
exec target/release/graphward dev --no-browser "${config[@]}" "$@"
