# Sourced by compare.sh and scale.sh: installs what the benchmarks need (idempotent) and sets
#   GRAPHWARD_BIN  the release binary (built here unless BENCH_NO_BUILD=1)
#   REF_VENV       bench/.venv-ref: the reference langgraph-cli[inmem], pinned to the versions of
#                  perf-baseline.md; graphward runs on the same venv (VIRTUAL_ENV), so both
#                  servers load the same langgraph and the same app code.
# Knobs: GRAPHWARD_PYTHON (a CPython 3.11 with a shared libpython), BENCH_REF_REQUIREMENTS.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)

# wrk (Debian's package).
if ! command -v wrk >/dev/null 2>&1; then
    echo "bench: installing wrk (apt-get)" >&2
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk >/dev/null
fi

# The CPython graphward embeds (same rule as scripts/env.sh, without touching the repo's .venv).
python_candidate=${GRAPHWARD_PYTHON:-$(command -v python3.11 || command -v python3)}
PYO3_PYTHON=$("$python_candidate" -c 'import sys; print(sys.executable)')
if ! "$PYO3_PYTHON" -c 'import sys, sysconfig; sys.exit(0 if sys.version_info[:2] == (3, 11) and sysconfig.get_config_var("Py_ENABLE_SHARED") else 1)'; then
    echo "bench: $PYO3_PYTHON is not a CPython 3.11 with a shared libpython; set GRAPHWARD_PYTHON" >&2
    exit 2
fi
export PYO3_PYTHON

# The reference in its own venv.
REF_VENV="$BENCH_DIR/.venv-ref"
ref_requirements=${BENCH_REF_REQUIREMENTS:-$BENCH_DIR/requirements-ref.txt}
if [ ! -x "$REF_VENV/bin/langgraph" ] || ! cmp -s "$ref_requirements" "$REF_VENV/.bench-requirements"; then
    echo "bench: preparing $REF_VENV from $ref_requirements" >&2
    "$PYO3_PYTHON" -m venv "$REF_VENV"
    "$REF_VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$ref_requirements"
    cp "$ref_requirements" "$REF_VENV/.bench-requirements"
fi

# graphward, release build.
GRAPHWARD_BIN="${CARGO_TARGET_DIR:-$REPO_DIR/target}/release/graphward"
if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
    echo "bench: cargo build --release" >&2
    (cd "$REPO_DIR" && cargo build --release --locked --quiet)
fi
if [ ! -x "$GRAPHWARD_BIN" ]; then
    echo "bench: $GRAPHWARD_BIN is missing" >&2
    exit 2
fi
mkdir -p "$BENCH_DIR/out"
