"""graphward: a LangGraph API server that runs your langgraph.json, auth.py and graphs unchanged.

`graphward dev` (like `langgraph dev`) and `graphward serve` run inside this interpreter, so the
graphs and `auth.py` import exactly what this environment has installed.
"""

import sys


def main() -> int:
    """The `graphward` console script."""
    from graphward._native import main as run

    try:
        # `serve --workers` starts more processes of this command through this interpreter.
        return run(["graphward", *sys.argv[1:]], [sys.executable, "-m", "graphward"])
    except KeyboardInterrupt:
        # The server already stopped on the signal; Python raises it once the call returns.
        return 130
