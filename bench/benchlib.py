"""Shared pieces of the benchmark harness: servers (start, time to first `GET /ok` 200, peak
RSS of the process tree, stop), wrk runs (warm-up + N measured runs, median and min-max),
HTTP probes and settings from the environment. Standard library only.

Only 127.0.0.1 is ever contacted; every wrk run and every wait is bounded in time.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
LUA = BENCH / "lua"
OUT = Path(os.environ.get("BENCH_OUT", BENCH / "out"))
HOST = "127.0.0.1"


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value not in (None, "") else default


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


@dataclass
class Settings:
    """Load settings (perf-baseline.md §3 by default: 3 s warm-up, 3 x 15 s, c=32, t=1)."""

    seconds: float = field(default_factory=lambda: env_float("BENCH_SECONDS", 15))
    runs_seconds: float = field(default_factory=lambda: env_float("BENCH_RUNS_SECONDS", 10))
    warmup: float = field(default_factory=lambda: env_float("BENCH_WARMUP", 3))
    runs: int = field(default_factory=lambda: env_int("BENCH_RUNS", 3))
    connections: int = field(default_factory=lambda: env_int("BENCH_CONNECTIONS", 32))
    threads: int = field(default_factory=lambda: env_int("BENCH_THREADS", 1))
    wrk_timeout: float = field(default_factory=lambda: env_float("BENCH_WRK_TIMEOUT", 10))

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def request(port: int, method: str, path: str, body: bytes | None = None, token: str | None = None, timeout: float = 10) -> tuple[int, bytes]:
    """One HTTP request to 127.0.0.1:port; returns (status, body)."""
    headers = {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if body is not None:
        headers["Content-Type"] = "application/json"
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------------
# Memory: VmHWM (peak resident set) of every process of a server's tree.


def _status_kb(pid: int, key: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError, ValueError):
        return None
    return None


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as handle:
                    out.extend(int(child) for child in handle.read().split())
            except (FileNotFoundError, ProcessLookupError):
                pass
    except (FileNotFoundError, ProcessLookupError):
        pass
    return out


def process_tree(root: int) -> list[int]:
    seen, stack = [], [root]
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.append(pid)
        stack.extend(_children(pid))
    return seen


class RssSampler(threading.Thread):
    """Samples the server's process tree every `interval` s. Peak RSS = the sum over the tree's
    processes of each one's VmHWM (the kernel's own high-water mark, so no spike between two
    samples is missed); `peak_tree_rss_kb` = the largest simultaneous sum of VmRSS seen."""

    def __init__(self, root: int, interval: float = 0.25):
        super().__init__(daemon=True)
        self.root, self.interval = root, interval
        self.hwm: dict[int, int] = {}
        self.names: dict[int, str] = {}
        self.peak_tree_rss_kb = 0
        self._stop_event = threading.Event()

    def sample(self) -> None:
        total = 0
        for pid in process_tree(self.root):
            hwm = _status_kb(pid, "VmHWM")
            rss = _status_kb(pid, "VmRSS")
            if hwm is not None:
                self.hwm[pid] = max(self.hwm.get(pid, 0), hwm)
                if pid not in self.names:
                    try:
                        self.names[pid] = Path(f"/proc/{pid}/comm").read_text().strip()
                    except OSError:
                        self.names[pid] = "?"
            total += rss or 0
        self.peak_tree_rss_kb = max(self.peak_tree_rss_kb, total)

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.sample()
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self.sample()
        self._stop_event.set()

    @property
    def peak_rss_kb(self) -> int:
        return sum(self.hwm.values())

    def report(self) -> dict:
        return {
            "peak_rss_kb": self.peak_rss_kb,
            "peak_tree_rss_kb": self.peak_tree_rss_kb,
            "processes": [{"pid": pid, "comm": self.names.get(pid, "?"), "vm_hwm_kb": kb} for pid, kb in sorted(self.hwm.items())],
        }


# ---------------------------------------------------------------------------------------------
# Servers


class StartError(RuntimeError):
    pass


class Server:
    """One server process (its own session/process group, log to a file)."""

    def __init__(self, kind: str, name: str, cmd: list[str], port: int, env: dict, cwd: Path, log: Path):
        self.kind, self.name, self.cmd, self.port, self.env, self.cwd, self.log = kind, name, cmd, port, env, cwd, log
        self.proc: subprocess.Popen | None = None
        self.sampler: RssSampler | None = None
        self.startup_ms: float | None = None
        self.memory: dict | None = None

    def start(self, timeout: float) -> float:
        """Starts the process and waits for the first `GET /ok` 200; returns the time to it (ms)."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log, "wb")
        started = time.monotonic()
        self.proc = subprocess.Popen(self.cmd, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        self.sampler = RssSampler(self.proc.pid)
        self.sampler.start()
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise StartError(f"{self.name} exited with {self.proc.returncode} before answering /ok; see {self.log}")
            try:
                status, _ = request(self.port, "GET", "/ok", timeout=1)
                if status == 200:
                    self.startup_ms = (time.monotonic() - started) * 1000
                    return self.startup_ms
            except OSError:
                pass
            time.sleep(0.01)
        self.stop()
        raise StartError(f"{self.name} did not answer GET /ok 200 within {timeout:.0f} s; see {self.log}")

    def stop(self) -> dict:
        """Stops the whole process group (SIGTERM, then SIGKILL after 15 s); returns memory figures."""
        if self.sampler is not None and self.memory is None:
            self.sampler.stop()
            self.memory = self.sampler.report()
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(5)
        # Children that outlived the leader (same process group).
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        return self.memory or {}


# ---------------------------------------------------------------------------------------------
# wrk


def wrk_version() -> str:
    try:
        out = subprocess.run(["wrk", "--version"], capture_output=True, text=True, timeout=10)
        return (out.stdout + out.stderr).splitlines()[0].strip()
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "?"


def wrk(script: str, url: str, connections: int, seconds: float, settings: Settings, env: dict | None = None, threads: int | None = None) -> dict:
    """One wrk run; returns the parsed RESULT line (rps, p50_ms, p90_ms, p99_ms, max_ms, n, non2xx, sockerr)."""
    threads = min(threads or settings.threads, connections)
    cmd = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", f"--timeout", f"{settings.wrk_timeout:g}s",
        "-s", str(LUA / script), url,
    ]
    run_env = dict(os.environ)
    run_env["BENCH_LUA_DIR"] = str(LUA)
    run_env.update(env or {})
    proc = subprocess.run(cmd, capture_output=True, text=True, env=run_env, timeout=seconds + settings.wrk_timeout + 30)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            result: dict = {}
            for part in line.split()[1:]:
                key, value = part.split("=", 1)
                result[key] = int(value) if key in ("n", "non2xx", "sockerr") else float(value)
            return result
    raise RuntimeError(f"wrk gave no RESULT line (exit {proc.returncode}): {proc.stdout[-500:]} {proc.stderr[-500:]}")


def summarize(runs: list[dict]) -> dict:
    """Median and min-max over measured runs."""
    if not runs:
        return {}

    def col(key):
        return [run[key] for run in runs]

    return {
        "rps": statistics.median(col("rps")),
        "rps_min": min(col("rps")),
        "rps_max": max(col("rps")),
        "p50_ms": statistics.median(col("p50_ms")),
        "p90_ms": statistics.median(col("p90_ms")),
        "p99_ms": statistics.median(col("p99_ms")),
        "p99_ms_min": min(col("p99_ms")),
        "p99_ms_max": max(col("p99_ms")),
        "max_ms": max(col("max_ms")),
        "requests": sum(col("n")),
        "non2xx": sum(col("non2xx")),
        "sockerr": sum(col("sockerr")),
        "runs": runs,
    }


def measure(script: str, url: str, connections: int, seconds: float, settings: Settings, env: dict | None = None, runs: int | None = None, warmup: bool = True) -> dict:
    """perf-baseline.md method: one warm-up run, then `runs` measured runs."""
    if warmup and settings.warmup > 0:
        wrk(script, url, connections, settings.warmup, settings, env)
    results = [wrk(script, url, connections, seconds, settings, env) for _ in range(runs or settings.runs)]
    return summarize(results)


# ---------------------------------------------------------------------------------------------
# Output helpers


def fmt_rate(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def render_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    line = lambda cells: "| " + " | ".join(str(cell).ljust(width) for cell, width in zip(cells, widths)) + " |"
    sep = "|" + "|".join("-" * (width + 2) for width in widths) + "|"
    return "\n".join([line(headers), sep] + [line(row) for row in rows])


def git_revision() -> str:
    try:
        rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "src", "python", "Cargo.toml", "Cargo.lock"], capture_output=True, text=True, timeout=10).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def machine_info() -> dict:
    info = {"nproc": os.cpu_count()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        info["mem_total_kb"] = _meminfo("MemTotal")
    except OSError:
        pass
    return info


def _meminfo(key: str) -> int | None:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return None


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def log_errors(path: Path, limit: int = 10) -> dict[str, int]:
    """Counts the distinct ERROR lines of a graphward log (timestamps and colours stripped)."""
    import re

    ansi = re.compile(r"\x1b\[[0-9;]*m")
    counts: dict[str, int] = {}
    try:
        with open(path, errors="replace") as handle:
            for line in handle:
                if "ERROR" not in line:
                    continue
                text = ansi.sub("", line).strip()
                text = text[text.index("ERROR"):][:200]
                counts[text] = counts.get(text, 0) + 1
    except OSError:
        return {}
    return dict(sorted(counts.items(), key=lambda item: -item[1])[:limit])


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


def fresh_dir(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path
