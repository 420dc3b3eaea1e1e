"""The multi-user leak hunter (`hunter.py`) as a test: one seeded run of a few thousand random
operations of four users against the built binary, on the hunter's own app. Any violation
fails the test, listing each with the `curl` commands that replay it.

`HUNTER_SEED` (default 1) and `HUNTER_OPS` (default 3000) choose the run (`HUNTER_ONLY`, a
comma-separated list of operation name prefixes such as `protocol,mcp,a2a`, focuses it on
those operations); the whole report
and every request of the run are also written to the test's temporary folder
(`hunter-report.txt`, `hunter-trace-0.txt`).
"""

from __future__ import annotations

import os

import hunter
from conftest import REPO

SHOWN_IN_FULL = 15


def test_users_never_see_or_change_each_others_data(tmp_path):
    binary = os.environ.get("GRAPHWARD_BIN") or str(REPO / "target" / "debug" / "graphward")
    seed = int(os.environ.get("HUNTER_SEED", "1"))
    operations = int(os.environ.get("HUNTER_OPS", "3000"))
    only = tuple(filter(None, os.environ.get("HUNTER_ONLY", "").split(","))) or None
    result = hunter.hunt(binary, seed=seed, operations=operations, trace_folder=tmp_path, only=only)
    report = tmp_path / "hunter-report.txt"
    report.write_text(f"{result.summary()}\n\n{result.violations.report(result.base_url)}\n\nserver log (tail):\n{result.server_log_tail}\n")
    print(result.summary())
    assert result.server_alive, f"the server died during the hunt (seed {seed}):\n{result.server_log_tail}"
    assert result.violations.total == 0, (
        f"HUNTER_SEED={seed} HUNTER_OPS={operations}: {result.summary()}\nfull report: {report}\n\n"
        f"{result.violations.report(result.base_url, full=SHOWN_IN_FULL)}"
    )
