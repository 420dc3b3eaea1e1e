"""`auth.openapi` of langgraph.json: its security schemes and requirements are in
`GET /openapi.json` (which stays public)."""

from __future__ import annotations

import json
import shutil

import httpx

from conftest import REPO, Server

OPENAPI = {
    "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "token"}},
    "security": [{"bearer": []}],
    "paths": {"/threads/{thread_id}": {"DELETE": [{"bearer": ["admin"]}]}},
}


def test_openapi_document_carries_the_auth_block(tmp_path):
    shutil.copy(REPO / "examples" / "agent.py", tmp_path / "agent.py")
    shutil.copy(REPO / "examples" / "auth.py", tmp_path / "auth.py")
    config = {"graphs": {"agent": "./agent.py:graph"}, "auth": {"path": "./auth.py:my_auth", "openapi": OPENAPI}}
    (tmp_path / "langgraph.json").write_text(json.dumps(config))
    server = Server(tmp_path / "langgraph.json")
    try:
        document = httpx.get(f"{server.url}/openapi.json").json()
        assert document["components"]["securitySchemes"] == OPENAPI["securitySchemes"]
        assert document["security"] == [{"bearer": []}]
        assert document["paths"]["/threads/{thread_id}"]["delete"]["security"] == [{"bearer": ["admin"]}]
        assert document["paths"]["/ok"]["get"]["security"] == []
        # Documenting it changes nothing about who may call: still 401 without a token.
        assert httpx.post(f"{server.url}/threads", json={}).status_code == 401
    finally:
        server.stop()
