"""Resource limits of a running graphward, measured from outside: peak RSS at idle and under
hostile clients, and what the server does with connections that never finish (or never
start) a request. A script, not a test: it prints figures and a markdown table.

    .venv/bin/python bench/limits.py [--binary target/release/graphward] [--header-timeout 2]
        [--idle-timeout 3] [--max-connections 64] [--bodies 4] [--body-mib 100] [--slow 50]
        [--extra 32] [--keepalive 8] [--json bench/out/limits.json]

It starts `graphward dev` on the example app (langgraph.json at the repo root) on a free
port with a fresh database, and measures, one after the other:

  idle        peak RSS after start-up and a few requests;
  big bodies  N concurrent unauthenticated `POST /threads`, each streaming a B MiB JSON body:
              each answer's status, time to it, bytes sent before it, and peak RSS;
  slow heads  N connections that send half a request's headers and stop: how many the
              server still holds over time and when (and how) it closed them;
  over cap    --max-connections kept-alive connections, then --extra more, each sending
              `GET /ok`: how many are served at once and when the rest are;
  keep-alive  idle kept-alive connections after one request: when the server closes them;
  stalled     requests (as user1) whose body stops: a small one, read before authentication,
              and one past the pre-auth limit, read after it: when the server gives up.

The limits are passed as environment variables (GRAPHWARD_HEADER_TIMEOUT,
GRAPHWARD_IDLE_TIMEOUT, GRAPHWARD_MAX_CONNECTIONS, GRAPHWARD_PREAUTH_BODY_LIMIT), so a binary
without those knobs ignores them and shows its unbounded behaviour. Peak RSS per phase is the
kernel's VmHWM after resetting it at the phase start (/proc/<pid>/clear_refs), and the largest
VmRSS sampled every 20 ms. Only 127.0.0.1 is contacted; every wait is bounded.
"""

from __future__ import annotations

import argparse
import http.client
import os
import select
import socket
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import benchlib as bl

MIB = 1024 * 1024
SEND_CHUNK = 256 * 1024
POLL = 0.02


# ---------------------------------------------------------------------------------------------
# Memory


def status_kb(pid: int, key: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


class PhaseMemory:
    """Peak RSS of one process over a `with` block: VmHWM (reset at entry when the kernel
    lets us) and the largest VmRSS sampled every POLL seconds."""

    def __init__(self, pid: int):
        self.pid = pid
        self.start_rss_kb: int | None = None
        self.max_rss_kb = 0
        self.hwm_kb: int | None = None
        self.hwm_reset = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.is_set():
            self.max_rss_kb = max(self.max_rss_kb, status_kb(self.pid, "VmRSS") or 0)
            self._done.wait(POLL)

    def __enter__(self) -> PhaseMemory:
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
            self.hwm_reset = True
        except OSError:
            pass
        self.start_rss_kb = status_kb(self.pid, "VmRSS")
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()
        self.max_rss_kb = max(self.max_rss_kb, status_kb(self.pid, "VmRSS") or 0)
        self.hwm_kb = status_kb(self.pid, "VmHWM")

    @property
    def peak_kb(self) -> int:
        """VmHWM since the phase began if it could be reset, else the largest sample (never
        below the RSS at the start: the kernel's RSS counters lag by a few pages)."""
        peak = self.hwm_kb if self.hwm_reset and self.hwm_kb else self.max_rss_kb
        return max(peak, self.start_rss_kb or 0)

    def report(self) -> dict:
        return {
            "start_rss_kb": self.start_rss_kb,
            "peak_rss_kb": self.peak_kb,
            "max_sampled_rss_kb": self.max_rss_kb,
            "vm_hwm_kb": self.hwm_kb,
            "hwm_reset": self.hwm_reset,
        }

    def __str__(self) -> str:
        return f"{mib(self.peak_kb)} (from {mib(self.start_rss_kb)})"


def mib(kb: int | None) -> str:
    return "-" if kb is None else f"{kb / 1024:.0f} MiB"


# ---------------------------------------------------------------------------------------------
# Connections


def connect(port: int, timeout: float = 5) -> socket.socket:
    sock = socket.create_connection((bl.HOST, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def request_head(method: str, path: str, headers: dict[str, str] | None = None, *, keep_alive: bool = True) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {bl.HOST}"] + [f"{name}: {value}" for name, value in (headers or {}).items()]
    if not keep_alive:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@dataclass
class Watched:
    """A connection we hold open and poll: when the server answered and when it closed it."""

    sock: socket.socket
    since: float
    answered_at: float | None = None
    closed_at: float | None = None
    received: bytes = b""

    def poll(self) -> None:
        """A non-blocking read: records the first bytes the server sends and its EOF/reset."""
        if self.closed_at is not None:
            return
        now = time.monotonic()
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            if self.answered_at is None:
                self.answered_at = now
            if len(self.received) < 4096:
                self.received += data[: 4096 - len(self.received)]
            return
        self.closed_at = now
        self.sock.close()

    @property
    def status(self) -> str:
        """The status code the server sent before closing ("" if it sent nothing)."""
        parts = self.received.split(b"\r\n", 1)[0].split()
        return parts[1].decode(errors="replace") if len(parts) > 1 else ""

    def close(self) -> None:
        if self.closed_at is None:
            self.sock.close()


def watch(conns: list[Watched], seconds: float, *, until=lambda conns: all(c.closed_at is not None for c in conns), checkpoints: tuple[float, ...] = ()) -> dict[float, int]:
    """Polls `conns` for up to `seconds` (or until `until` holds); returns how many were still
    open at each checkpoint (seconds since the start)."""
    start = time.monotonic()
    open_at: dict[float, int] = {}
    pending = sorted(checkpoints)
    while True:
        for conn in conns:
            conn.poll()
        elapsed = time.monotonic() - start
        while pending and elapsed >= pending[0]:
            open_at[pending.pop(0)] = sum(c.closed_at is None for c in conns)
        if elapsed >= seconds or until(conns):
            break
        time.sleep(POLL)
    for checkpoint in pending:  # stopped early: nothing changes any more
        open_at[checkpoint] = sum(c.closed_at is None for c in conns)
    return open_at


def spread(values: list[float], unit: str = "s") -> str:
    """`low–high unit (median m)` of a list of figures, or one figure when they are all equal;
    seconds below 1 s are shown in ms."""
    if not values:
        return "-"
    digits = 2
    if unit == "s" and max(values) < 1:
        values, unit, digits = [value * 1000 for value in values], "ms", 0
    low, high, middle = min(values), max(values), statistics.median(values)
    if round(high - low, digits) == 0:
        return f"{low:.{digits}f} {unit}"
    return f"{low:.{digits}f}–{high:.{digits}f} {unit} (median {middle:.{digits}f})"


def closed_after(conns: list[Watched]) -> list[float]:
    return [c.closed_at - c.since for c in conns if c.closed_at is not None]


def status_counts(statuses: list[str]) -> str:
    counts: dict[str, int] = {}
    for status in statuses:
        counts[status] = counts.get(status, 0) + 1
    return ", ".join(f"{status or 'no answer'} ×{count}" for status, count in sorted(counts.items()))


# ---------------------------------------------------------------------------------------------
# Phases: each returns its figures (a dict) and a one-line description of them.


@dataclass
class BodyResult:
    status: int | None = None
    seconds_to_answer: float | None = None
    bytes_sent: int = 0
    error: str | None = None


def json_body_chunks(size: int):
    """A valid JSON object of exactly `size` bytes, {"metadata":{"pad":"aaa…"}}, in chunks."""
    head, tail = b'{"metadata":{"pad":"', b'"}}'
    yield head
    left = size - len(head) - len(tail)
    filler = b"a" * SEND_CHUNK
    while left > 0:
        yield filler[: min(left, SEND_CHUNK)]
        left -= SEND_CHUNK
    yield tail


def stream_body(port: int, path: str, size: int, timeout: float) -> BodyResult:
    """One unauthenticated POST with a `size`-byte body, sent as fast as the server takes it;
    stops sending as soon as an answer is readable."""
    result = BodyResult()
    sock = connect(port, timeout)
    started = time.monotonic()
    try:
        sock.sendall(request_head("POST", path, {"Content-Type": "application/json", "Content-Length": str(size)}, keep_alive=False))
        sock.setblocking(False)
        for chunk in json_body_chunks(size):
            view = memoryview(chunk)
            while view:
                readable, writable, _ = select.select([sock], [sock], [], timeout)
                if readable or not writable:
                    break
                sent = sock.send(view)
                result.bytes_sent += sent
                view = view[sent:]
            if view:
                break
    except OSError as error:
        result.error = f"while sending: {error.__class__.__name__}"
    try:
        sock.settimeout(timeout)
        response = http.client.HTTPResponse(sock, method="POST")
        response.begin()
        result.status = response.status
        result.seconds_to_answer = time.monotonic() - started
    except (OSError, http.client.HTTPException) as error:
        result.error = (result.error + "; " if result.error else "") + f"no answer: {error.__class__.__name__}"
    finally:
        sock.close()
    return result


def big_bodies(args, port: int) -> tuple[dict, str]:
    size = int(args.body_mib * MIB)
    results = [BodyResult() for _ in range(args.bodies)]

    def run(index: int) -> None:
        try:
            results[index] = stream_body(port, args.body_path, size, args.body_timeout)
        except OSError as error:
            results[index] = BodyResult(error=f"connect: {error.__class__.__name__}")

    threads = [threading.Thread(target=run, args=(index,)) for index in range(args.bodies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(args.body_timeout + 30)
    answered = [r.seconds_to_answer for r in results if r.seconds_to_answer is not None]
    text = (
        f"{status_counts([str(r.status or '') for r in results])}, after {spread(answered)}, "
        f"having sent {spread([r.bytes_sent / MIB for r in results], unit='MiB')}"
    )
    errors = sorted({r.error for r in results if r.error})
    if errors:
        text += f"; {', '.join(errors)}"
    return {"results": [asdict(r) for r in results]}, text


def open_watched(port: int, count: int, payload: bytes) -> tuple[list[Watched], int]:
    """Opens up to `count` connections that each send `payload`; returns them and how many
    connects failed."""
    conns, failed = [], 0
    for _ in range(count):
        try:
            sock = connect(port)
            sock.sendall(payload)
            sock.setblocking(False)  # with a timeout set, even recv(MSG_DONTWAIT) waits for it
            conns.append(Watched(sock, time.monotonic()))
        except OSError:
            failed += 1
    return conns, failed


def answered_or_closed(conns: list[Watched]) -> bool:
    return all(c.answered_at is not None or c.closed_at is not None for c in conns)


def closing(conns: list[Watched], seconds: float) -> str:
    """How and when the server closed `conns` (and how many it still held after `seconds`)."""
    parts = []
    if closed := closed_after(conns):
        parts.append(f"closed after {spread(closed)} ({status_counts([c.status for c in conns if c.closed_at is not None])})")
    if still_open := sum(c.closed_at is None for c in conns):
        parts.append(f"{still_open} still open after {seconds:g} s")
    return "; ".join(parts)


def slow_heads(args, port: int) -> tuple[dict, str]:
    head = request_head("POST", "/threads", {"Content-Type": "application/json", "Content-Length": "2"})
    conns, failed = open_watched(port, args.slow, head[: len(head) // 2])
    checkpoints = tuple(sorted({1.0, args.header_timeout + 1}))
    open_at = watch(conns, args.slow_seconds, checkpoints=checkpoints)
    figures = {"connections": len(conns), "connect_failed": failed, "open_at": {f"{at:g}": n for at, n in open_at.items()}, "closed_after": closed_after(conns)}
    held = ", ".join(f"{n} held at {at:g} s" for at, n in open_at.items())
    text = f"{held}; {closing(conns, args.slow_seconds)}"
    for conn in conns:
        conn.close()
    return figures, text


def over_cap(args, port: int) -> tuple[dict, str]:
    ok = request_head("GET", "/ok")
    held, held_failed = open_watched(port, args.max_connections, ok)
    watch(held, 5, until=answered_or_closed)
    late, late_failed = open_watched(port, args.extra, ok)
    watch(late + held, args.cap_seconds, until=lambda _: answered_or_closed(late))
    waited = [c.answered_at - c.since for c in late if c.answered_at is not None]
    figures = {
        "held": len(held),
        "held_served": sum(c.answered_at is not None for c in held),
        "held_closed_after": closed_after(held),
        "extra": len(late),
        "extra_served_after": waited,
        "extra_closed_unanswered": sum(c.closed_at is not None and c.answered_at is None for c in late),
        "connect_failed": held_failed + late_failed,
    }
    text = (
        f"first {figures['held_served']}/{len(held)} served; of {len(late)} more, {sum(t <= 0.5 for t in waited)} served within 0.5 s, "
        f"{len(waited)} in all (after {spread(waited)})"
    )
    if figures["extra_closed_unanswered"]:
        text += f", {figures['extra_closed_unanswered']} closed unanswered"
    if figures["connect_failed"]:
        text += f"; {figures['connect_failed']} connects failed"
    for conn in held + late:
        conn.close()
    return figures, text


def keep_alive(args, port: int) -> tuple[dict, str]:
    conns, failed = open_watched(port, args.keepalive, request_head("GET", "/ok"))
    watch(conns, 5, until=answered_or_closed)
    for conn in conns:  # idle from the answer on
        conn.since, conn.received = conn.answered_at or conn.since, b""
    watch(conns, args.keepalive_seconds)
    text = closing(conns, args.keepalive_seconds)
    for conn in conns:
        conn.close()
    return {"connections": len(conns), "connect_failed": failed, "closed_after": closed_after(conns)}, text


def stalled_body(args, port: int, length: int, sent: int) -> tuple[dict, str]:
    """`--keepalive` authenticated requests announcing `length` body bytes that send `sent`."""
    head = request_head("POST", "/threads", {"Authorization": "Bearer user1-token", "Content-Type": "application/json", "Content-Length": str(length)})
    start = b'{"metadata":'
    conns, failed = open_watched(port, args.keepalive, head + start + b" " * (sent - len(start)))
    watch(conns, args.keepalive_seconds)
    text = closing(conns, args.keepalive_seconds)
    for conn in conns:
        conn.close()
    return {"connections": len(conns), "connect_failed": failed, "closed_after": closed_after(conns)}, text


def stalled_before_auth(args, port: int) -> tuple[dict, str]:
    """A small body (read before authentication) that stops half-way."""
    return stalled_body(args, port, length=100, sent=50)


def stalled_after_auth(args, port: int) -> tuple[dict, str]:
    """A body past the pre-auth limit (so authenticated) that stops after twice that limit."""
    return stalled_body(args, port, length=4 * args.preauth_body_limit, sent=2 * args.preauth_body_limit)


def idle(args, port: int) -> tuple[dict, str]:
    for _ in range(5):
        bl.request(port, "GET", "/ok")
        bl.request(port, "POST", "/threads/search", b"{}", token="user1-token")
    time.sleep(1)
    return {}, "start-up, then 10 requests"


# (key, label, phase)
PHASES = [
    ("idle", lambda args: "idle", idle),
    ("big_bodies", lambda args: f"{args.bodies} × {args.body_mib:g} MiB unauthenticated bodies", big_bodies),
    ("slow_heads", lambda args: f"{args.slow} half-sent request heads", slow_heads),
    ("over_cap", lambda args: f"{args.max_connections} + {args.extra} connections (cap {args.max_connections})", over_cap),
    ("keep_alive", lambda args: f"{args.keepalive} idle keep-alive connections", keep_alive),
    ("stalled_before_auth", lambda args: f"{args.keepalive} 100-byte bodies stalled after 50", stalled_before_auth),
    ("stalled_after_auth", lambda args: f"{args.keepalive} bodies stalled after {2 * args.preauth_body_limit // 1024} KiB (authenticated)", stalled_after_auth),
]


def run_phases(args, port: int, pid: int) -> tuple[dict, list[list[str]]]:
    """Runs every phase, printing each one's line as it ends; returns figures and table rows."""
    results, rows = {}, []
    for key, label, phase in PHASES:
        with PhaseMemory(pid) as memory:
            figures, text = phase(args, port)
        results[key] = {**figures, "memory": memory.report()}
        print(f"{label(args)}: {text}; peak RSS {memory}", flush=True)
        rows.append([label(args), text, str(memory)])
    return results, rows


# ---------------------------------------------------------------------------------------------
# Main


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", type=Path, default=bl.REPO / "target" / "debug" / "graphward", help="graphward binary (default: target/debug/graphward)")
    parser.add_argument("--config", type=Path, default=bl.REPO / "langgraph.json", help="the app (default: the example app)")
    parser.add_argument("--header-timeout", type=float, default=2, help="GRAPHWARD_HEADER_TIMEOUT for the server (s)")
    parser.add_argument("--idle-timeout", type=float, default=3, help="GRAPHWARD_IDLE_TIMEOUT for the server (s)")
    parser.add_argument("--max-connections", type=int, default=64, help="GRAPHWARD_MAX_CONNECTIONS for the server")
    parser.add_argument("--preauth-body-limit", type=int, default=65536, help="GRAPHWARD_PREAUTH_BODY_LIMIT for the server (bytes)")
    parser.add_argument("--bodies", type=int, default=4, help="concurrent unauthenticated big bodies")
    parser.add_argument("--body-mib", type=float, default=100, help="size of each big body (MiB)")
    parser.add_argument("--body-path", default="/threads", help="route the big bodies are POSTed to")
    parser.add_argument("--body-timeout", type=float, default=120, help="give up on a big body's answer after this (s)")
    parser.add_argument("--slow", type=int, default=50, help="connections that send half a request head")
    parser.add_argument("--slow-seconds", type=float, help="how long to watch them (default: 2 × header timeout + 3)")
    parser.add_argument("--extra", type=int, default=32, help="connections opened beyond the cap")
    parser.add_argument("--cap-seconds", type=float, help="how long the extra connections wait (default: header + idle timeout + 3)")
    parser.add_argument("--keepalive", type=int, default=8, help="idle keep-alive connections, and stalled bodies")
    parser.add_argument("--keepalive-seconds", type=float, help="how long to watch those (default: header + idle timeout + 3)")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    args = parser.parse_args()
    longest = args.header_timeout + args.idle_timeout + 3
    args.slow_seconds = args.slow_seconds or 2 * args.header_timeout + 3
    args.cap_seconds = args.cap_seconds or longest
    args.keepalive_seconds = args.keepalive_seconds or longest
    return args


def server_env(args, folder: Path) -> dict[str, str]:
    """The limits as env vars (ignored by a binary without them) and a fresh database."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GRAPHWARD_")}
    env.update(
        GRAPHWARD_HEADER_TIMEOUT=f"{args.header_timeout:g}",
        GRAPHWARD_IDLE_TIMEOUT=f"{args.idle_timeout:g}",
        GRAPHWARD_MAX_CONNECTIONS=str(args.max_connections),
        GRAPHWARD_PREAUTH_BODY_LIMIT=str(args.preauth_body_limit),
        GRAPHWARD_DATABASE=str(folder / "state.db"),
    )
    venv = args.config.resolve().parent / ".venv"
    if venv.is_dir():
        env["VIRTUAL_ENV"] = str(venv)
    return env


def main() -> int:
    args = parse_args()
    if not args.binary.exists():
        print(f"error: {args.binary} does not exist (cargo build, or pass --binary)", file=sys.stderr)
        return 2
    built = time.strftime("%Y-%m-%d %H:%M", time.localtime(args.binary.stat().st_mtime))
    settings = (
        f"`{args.binary.name}` built {built} (repo now at {bl.git_revision()}), header timeout {args.header_timeout:g} s, idle timeout {args.idle_timeout:g} s, "
        f"max connections {args.max_connections}, pre-auth body limit {args.preauth_body_limit} B"
    )
    print(f"{args.binary}: {settings}", flush=True)
    with tempfile.TemporaryDirectory(prefix="graphward-limits-") as tmp:
        folder = Path(tmp)
        port = bl.free_port()
        cmd = [str(args.binary), "dev", "--no-browser", "--host", bl.HOST, "--port", str(port), "--config", str(args.config.resolve())]
        server = bl.Server("graphward", "graphward", cmd, port, server_env(args, folder), folder, folder / "server.log")
        server.start(timeout=60)
        try:
            results, rows = run_phases(args, port, server.proc.pid)
        except Exception:
            print((folder / "server.log").read_text(errors="replace")[-3000:], file=sys.stderr)
            raise
        finally:
            alive = server.proc.poll() is None
            server.stop()
    results.update(settings=vars(args) | {"binary": str(args.binary), "config": str(args.config), "json": str(args.json)}, server_survived=alive)
    print(f"\n{settings}:\n")
    print(bl.render_table(["case", "result", "peak RSS (from)"], rows))
    if not alive:
        print("\nthe server died during the measurements", file=sys.stderr)
    if args.json:
        bl.write_json(args.json, results)
        print(f"\nwrote {args.json}")
    return 0 if alive else 1


if __name__ == "__main__":
    sys.exit(main())
