"""The wheel as a user installs it: for each CPython 3.10–3.13 on the machine, a fresh venv
gets the wheel and `langgraph`, and `graphward dev` from that venv serves the example app.

scripts/test.sh builds the wheel once and names it in GRAPHWARD_WHEEL. The clients run here,
in the test venv; the server runs in the fresh one, on that venv's interpreter.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from langgraph.pregel.remote import RemoteGraph

REPO = Path(__file__).resolve().parents[2]
VERSIONS = ["3.10", "3.11", "3.12", "3.13"]
TOKEN = {"Authorization": "Bearer user1-token"}


def interpreter(version: str) -> str | None:
    """`python3.X` from pyenv's versions or PATH, if the machine has it."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    for candidate in sorted(pyenv.glob(f"{version}.*"), reverse=True):
        if (candidate / "bin" / "python3").exists():
            return str(candidate / "bin" / "python3")
    return shutil.which(f"python{version}")


def pinned(package: str) -> str:
    """The test suite's pin of `package` (tests/e2e/requirements.txt)."""
    text = (REPO / "tests" / "e2e" / "requirements.txt").read_text()
    match = re.search(rf"^{re.escape(package)}==\S+", text, re.MULTILINE)
    assert match, f"{package} is not pinned in tests/e2e/requirements.txt"
    return match.group(0)


@pytest.fixture(scope="module")
def wheel() -> Path:
    path = os.environ.get("GRAPHWARD_WHEEL")
    if not path:
        pytest.skip("GRAPHWARD_WHEEL is not set (scripts/test.sh builds the wheel and sets it)")
    return Path(path)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("version", VERSIONS)
def test_the_wheel_serves_the_example_app(wheel: Path, version: str, tmp_path: Path):
    python = interpreter(version)
    if python is None:
        pytest.skip(f"no CPython {version} on this machine")
    venv = tmp_path / "venv"
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, str(wheel), pinned("langgraph")], check=True)
    # The example app, copied: the server keeps its database next to langgraph.json.
    app = tmp_path / "app"
    app.mkdir()
    shutil.copy(REPO / "langgraph.json", app / "langgraph.json")
    shutil.copytree(REPO / "examples", app / "examples")
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key not in ("VIRTUAL_ENV", "PYTHONPATH", "GRAPHWARD_LOG")}
    log = open(tmp_path / "server.log", "w+")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [str(venv / "bin" / "graphward"), "dev", "--no-browser", "--port", str(port)], cwd=app, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(server, url, log)
        log.seek(0)
        started = log.read()
        assert f"Python {version}." in started, started
        assert f"Studio UI: https://smith.langchain.com/studio/?baseUrl={url}" in started, started

        remote = RemoteGraph("agent", url=url, headers=TOKEN)
        answer = asyncio.run(remote.ainvoke({"messages": [{"role": "user", "content": "hi"}]}))
        assert answer["messages"][-1]["content"] == "echo: hi", answer

        assert httpx.post(f"{url}/threads", json={}).status_code == 401
        item = {"namespace": ["user1", "notes"], "key": "k", "value": {"text": version}}
        assert httpx.put(f"{url}/store/items", json=item, headers=TOKEN).status_code == 204
        got = httpx.get(f"{url}/store/items", params={"namespace": "user1.notes", "key": "k"}, headers=TOKEN)
        assert (got.status_code, got.json()["value"]) == (200, {"text": version})
    finally:
        server.terminate()
        code = server.wait(timeout=30)
        log.seek(0)
        output = log.read()
        log.close()
    assert code == 0, output
    assert "shut down" in output, output

    # Commands that end on their own give the interpreter back: the process exits.
    check = subprocess.run([str(venv / "bin" / "graphward"), "check"], cwd=app, env=env, capture_output=True, text=True, timeout=60)
    assert check.returncode == 0 and f"OK (Python {version}." in check.stdout, check
    # (This one hung at exit before the interpreter thread was joined when its last handle went.)
    measured = subprocess.run([str(venv / "bin" / "graphward"), "bench-auth", "--calls", "200"], cwd=app, env=env, capture_output=True, text=True, timeout=60)
    assert measured.returncode == 0 and "auth round trip" in measured.stdout, measured
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "langgraph.json").write_text('{"graphs": {"agent": "./agent.py:graph"}}')
    (broken / "agent.py").write_text("raise RuntimeError('boom')\n")
    failed = subprocess.run([str(venv / "bin" / "graphward"), "dev", "--port", "0"], cwd=broken, env=env, capture_output=True, text=True, timeout=60)
    assert failed.returncode == 2 and "RuntimeError: boom" in failed.stderr, failed


def wait_ready(server: subprocess.Popen, url: str, log) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"graphward exited with {server.returncode}:\n{log.read()}")
        try:
            if httpx.get(f"{url}/ok", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    log.seek(0)
    raise RuntimeError(f"graphward did not answer /ok within 60 s:\n{log.read()}")
