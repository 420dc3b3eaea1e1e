"""`GET /metrics`: Prometheus text, authenticated; its auth counters move as requests are
allowed, filtered and denied, and `auth.cache` reports its hits."""

from __future__ import annotations

import json
import re

import httpx

AUTH = '''
from langgraph_sdk import Auth
auth = Auth()
TOKENS = {"alice-token": "alice", "bob-token": "bob"}

@auth.authenticate
async def authenticate(authorization: str | None):
    token = (authorization or "").removeprefix("Bearer ")
    if token not in TOKENS:
        raise Auth.exceptions.HTTPException(status_code=401, detail="no")
    return TOKENS[token]

@auth.on.threads.create
async def no_bob(ctx, value):
    if ctx.user.identity == "bob":
        raise Auth.exceptions.HTTPException(status_code=403, detail="not you")

@auth.on.threads.read
async def own_threads(ctx, value):
    return {"owner": ctx.user.identity}
'''

ALICE = {"Authorization": "Bearer alice-token"}
BOB = {"Authorization": "Bearer bob-token"}


def scrape(server) -> dict[str, float]:
    answer = httpx.get(f"{server.url}/metrics", headers=ALICE)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    series = {}
    for line in answer.text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            series[name] = float(value)
    return series


def decisions(series, resource, action, handler, decision):
    return series.get(f'graphward_auth_decisions_total{{resource="{resource}",action="{action}",handler="{handler}",decision="{decision}"}}', 0)


def test_metrics_count_requests_runs_and_auth_decisions(make_server):
    graph = (__import__("pathlib").Path(__file__).resolve().parents[2] / "examples" / "agent.py")
    server = make_server({
        "auth.py": AUTH,
        "langgraph.json": json.dumps({"graphs": {"agent": f"{graph}:graph"}, "auth": {"path": "./auth.py:auth", "cache": {"cache_keys": ["authorization"], "ttl_seconds": 60}}}),
    })
    assert httpx.get(f"{server.url}/metrics").status_code == 401
    before = scrape(server)
    thread = httpx.post(f"{server.url}/threads", headers=ALICE, json={})
    assert thread.status_code == 200
    assert httpx.post(f"{server.url}/threads", headers=BOB, json={}).status_code == 403
    assert httpx.post(f"{server.url}/threads", headers={"Authorization": "Bearer nope"}, json={}).status_code == 401
    assert httpx.get(f"{server.url}/threads/{thread.json()['thread_id']}", headers=ALICE).status_code in (200, 404)
    assert httpx.post(f"{server.url}/runs/wait", headers=ALICE, json={"assistant_id": "agent", "input": {"messages": []}}).status_code == 200
    after = scrape(server)
    assert decisions(after, "threads", "create", "no_bob", "allow") == decisions(before, "threads", "create", "no_bob", "allow") + 1
    assert decisions(after, "threads", "create", "no_bob", "deny") == decisions(before, "threads", "create", "no_bob", "deny") + 1
    assert decisions(after, "authenticate", "", "authenticate", "deny") >= decisions(before, "authenticate", "", "authenticate", "deny") + 1
    assert decisions(after, "threads", "read", "own_threads", "filter") >= 1
    assert after['graphward_http_requests_total{method="POST",route="/threads",status="403"}'] >= 1
    assert after['graphward_http_requests_total{method="POST",route="/runs/wait",status="200"}'] >= 1
    assert after['graphward_runs_total{status="success"}'] >= 1
    assert 'graphward_auth_duration_seconds_count{resource="threads",action="create"}' in after
    # Each handler's own latency: the allowing and the denying call of `no_bob`, authenticate's
    # first (uncached) calls.
    handler = 'graphward_auth_handler_duration_seconds_count{resource="threads",action="create",handler="no_bob"}'
    assert after[handler] == before.get(handler, 0) + 2
    assert after['graphward_auth_handler_duration_seconds_count{resource="authenticate",action="",handler="authenticate"}'] >= 2
    # The same token again and again: the cache answers.
    assert after["graphward_auth_cache_hits_total"] > before.get("graphward_auth_cache_hits_total", 0)
    assert any(re.match(r'graphward_http_request_duration_seconds_bucket\{method="POST",route="/threads",le="', name) for name in after)
