"""The `webhooks` block of langgraph.json: the URL policy refuses a run's (or cron's) webhook
at creation with 422; `headers` (static and `${{ env.VAR }}`) go with every webhook POST.
The receiver is on 127.0.0.1, so the servers run with GRAPHWARD_WEBHOOK_ALLOW_PRIVATE=1 (the
policy applies on top of graphward's own address rules, never instead of them)."""

from __future__ import annotations

import http.server
import json
import threading
import time

import httpx
import pytest
from langgraph_sdk import get_sync_client

from conftest import REPO, Server, free_port

HI = {"messages": [{"role": "human", "content": "hi"}]}
AGENT = str(REPO / "examples" / "agent.py") + ":graph"


@pytest.fixture
def receiver():
    """A local HTTP server recording each POST's headers and JSON body."""
    received = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            received.append(({name.lower(): value for name, value in self.headers.items()}, body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    port = free_port()
    server = http.server.HTTPServer(("127.0.0.1", port), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield port, received
    server.shutdown()


def start(folder, webhooks: dict, env: dict | None = None) -> Server:
    (folder / "langgraph.json").write_text(json.dumps({"graphs": {"agent": AGENT}, "webhooks": webhooks}))
    return Server(folder / "langgraph.json", env={"GRAPHWARD_WEBHOOK_ALLOW_PRIVATE": "1", **(env or {})})


def refused(server: Server, thread_id: str, webhook: str) -> str:
    response = httpx.post(f"{server.url}/threads/{thread_id}/runs", json={"assistant_id": "agent", "input": HI, "webhook": webhook})
    assert response.status_code == 422, (webhook, response.status_code, response.text)
    return response.json()["detail"]


def test_policy_refuses_at_creation_and_headers_are_sent(tmp_path, receiver):
    port, received = receiver
    webhooks = {
        "url": {"allowed_domains": ["127.0.0.1"], "allowed_ports": [port], "max_url_length": 60},
        "headers": {"Authorization": "Bearer ${{ env.LG_WEBHOOK_TOKEN }}", "X-Static": "yes"},
    }
    server = start(tmp_path, webhooks, env={"LG_WEBHOOK_TOKEN": "secret-1"})
    try:
        client = get_sync_client(url=server.url)
        thread = client.threads.create()
        client.runs.wait(thread["thread_id"], "agent", input=HI, webhook=f"http://127.0.0.1:{port}/hook")
        deadline = time.monotonic() + 10
        while not received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert received, "webhook not called"
        headers, body = received[0]
        assert headers["authorization"] == "Bearer secret-1" and headers["x-static"] == "yes"
        assert headers["content-type"] == "application/json" and body["status"] == "success"

        assert "allowed_ports" in refused(server, thread["thread_id"], f"http://127.0.0.1:{port + 1}/hook")
        assert "allowed_domains" in refused(server, thread["thread_id"], f"http://localhost:{port}/hook")
        assert "characters" in refused(server, thread["thread_id"], f"http://127.0.0.1:{port}/" + "x" * 60)
        # Stateless runs and crons are held to the same policy; nothing was stored or sent.
        response = httpx.post(f"{server.url}/runs/wait", json={"assistant_id": "agent", "input": HI, "webhook": f"http://localhost:{port}/"})
        assert response.status_code == 422
        response = httpx.post(f"{server.url}/runs/crons", json={"assistant_id": "agent", "schedule": "0 0 * * *", "webhook": f"http://localhost:{port}/"})
        assert response.status_code == 422
        assert len(client.runs.list(thread["thread_id"])) == 1
        time.sleep(0.5)
        assert len(received) == 1
    finally:
        server.stop()


def test_require_https_and_disable_loopback(tmp_path):
    server = start(tmp_path, {"url": {"require_https": True, "disable_loopback": True}})
    try:
        thread = get_sync_client(url=server.url).threads.create()
        assert "https" in refused(server, thread["thread_id"], "http://127.0.0.1:9/hook")
        # A path on this server: allowed by GRAPHWARD_WEBHOOK_ALLOW_PRIVATE=1, refused by the policy.
        assert "disable_loopback" in refused(server, thread["thread_id"], "/threads")
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("webhooks", "expected"),
    [
        ({"headers": {"X": "${{ env.LG_WEBHOOK_NOT_SET_ANYWHERE }}"}}, "`webhooks.headers.X`: environment variable `LG_WEBHOOK_NOT_SET_ANYWHERE` is not set"),
        ({"headers": {"X": "${{ env.PATH }}"}}, "`webhooks.headers.X`: `PATH` does not start with `LG_WEBHOOK_`"),
        ({"url": {"allowed_ports": ["443"]}}, "`webhooks.url.allowed_ports[0]`: must be a port number"),
    ],
)
def test_bad_webhooks_config_is_one_line(tmp_path, webhooks, expected):
    with pytest.raises(RuntimeError) as failure:
        start(tmp_path, webhooks)
    assert expected in str(failure.value) and "langgraph.json" in str(failure.value)
