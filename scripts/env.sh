# Sourced by the scripts: finds the CPython that graphward embeds and prepares `.venv`.
#
# - GRAPHWARD_PYTHON: the CPython 3.11 to build against (default: `python3.11` on PATH). It
#   must be built with a shared libpython (pyenv: PYTHON_CONFIGURE_OPTS=--enable-shared).
# - `.venv` (next to langgraph.json) gets the pinned packages of tests/e2e/requirements.txt:
#   the example app's `langgraph`, and the clients the end-to-end tests use.

python_candidate=${GRAPHWARD_PYTHON:-$(command -v python3.11 || command -v python3)}
PYO3_PYTHON=$("$python_candidate" -c 'import sys; print(sys.executable)')
if ! "$PYO3_PYTHON" -c 'import sys, sysconfig; sys.exit(0 if sys.version_info[:2] == (3, 11) and sysconfig.get_config_var("Py_ENABLE_SHARED") else 1)'; then
    echo "error: $PYO3_PYTHON is not a CPython 3.11 with a shared libpython; set GRAPHWARD_PYTHON" >&2
    exit 2
fi
export PYO3_PYTHON

requirements=tests/e2e/requirements.txt
stamp=.venv/.graphward-requirements
if [ ! -x .venv/bin/python ] || ! cmp -s "$requirements" "$stamp"; then
    echo "Preparing .venv from $requirements" >&2
    "$PYO3_PYTHON" -m venv .venv
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$stamp"
fi
