"""`langgraph.json` → `store.index` (semantic search) and `store.ttl` (item expiry), through
the official client and from a graph's own `store`, with two users under a namespace-
rewriting auth handler (tests/e2e/apps/member_auth.py) and on one app without auth."""

from __future__ import annotations

import json
import shutil
import time

import httpx
import pytest
from langgraph_sdk import get_sync_client

from conftest import REPO, Server

APPS = REPO / "tests" / "e2e" / "apps"
ALICE = {"Authorization": "Bearer alice-token"}
BOB = {"Authorization": "Bearer bob-token"}
STORE = {
    "index": {"embed": "./store_index.py:embed", "dims": 64, "fields": ["text", "meta.title"]},
    "ttl": {"refresh_on_read": False, "sweep_interval_minutes": 1},
}


# A store handler that filters item values instead of rewriting namespaces.
OWNER_FILTER_AUTH = """
from langgraph_sdk import Auth

auth = Auth()

@auth.authenticate
async def authenticate(authorization: str | None):
    if authorization not in ("Bearer alice-token", "Bearer bob-token"):
        raise Auth.exceptions.HTTPException(status_code=401, detail="Invalid token")
    return {"identity": authorization.split()[1].removesuffix("-token")}

@auth.on.store()
async def by_owner_field(ctx, value):
    return {"owner": ctx.user.identity}
"""


def write_app(folder, *, auth: bool | str, store=STORE):
    shutil.copy(APPS / "store_index.py", folder / "store_index.py")
    config = {"graphs": {"search": "./store_index.py:graph", "search_sync": "./store_index.py:sync_graph"}, "store": store}
    if auth == "owner-filter":
        (folder / "owner_auth.py").write_text(OWNER_FILTER_AUTH)
        config["auth"] = {"path": "./owner_auth.py:auth"}
    elif auth:
        shutil.copy(APPS / "member_auth.py", folder / "member_auth.py")
        config["auth"] = {"path": "./member_auth.py:auth"}
    (folder / "langgraph.json").write_text(json.dumps(config))
    return folder / "langgraph.json"


@pytest.fixture(scope="module")
def open_app(tmp_path_factory):
    server = Server(write_app(tmp_path_factory.mktemp("store-index-open"), auth=False))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def auth_app(tmp_path_factory):
    server = Server(write_app(tmp_path_factory.mktemp("store-index-auth"), auth=True))
    yield server
    server.stop()


DOCS = {
    "cats": {"text": "cats purr and chase mice", "kind": "pet"},
    "dogs": {"text": "dogs bark and chase balls", "kind": "pet"},
    "stocks": {"text": "stocks rise and bonds fall", "kind": "money"},
    "titled": {"meta": {"title": "mice and cheese"}, "kind": "food"},
}


def seed(client, namespace):
    for key, value in DOCS.items():
        client.store.put_item(namespace, key, value)
    client.store.put_item(namespace, "unindexed", {"text": "cats cats cats purr mice", "kind": "pet"}, index=False)


def test_query_ranks_by_similarity_with_scores(open_app):
    client = get_sync_client(url=open_app.url)
    seed(client, ["rank"])
    found = client.store.search_items(["rank"], query="cats purr mice")["items"]
    keys = [item["key"] for item in found]
    assert keys[0] == "cats", keys
    assert keys.index("titled") < keys.index("stocks"), "the configured field meta.title is embedded"
    scored = [item for item in found if item["key"] != "unindexed"]
    assert all(isinstance(item["score"], float) for item in scored)
    assert [item["score"] for item in scored] == sorted((item["score"] for item in scored), reverse=True)
    assert scored[0]["score"] > 0.7 and next(item for item in found if item["key"] == "stocks")["score"] < 0.3
    # `index: false`: stored and found, never ranked: after every scored item, without a score.
    assert keys[-1] == "unindexed" and found[-1]["score"] is None
    # Without a query: no scores, newest first.
    plain = client.store.search_items(["rank"])["items"]
    assert [item["key"] for item in plain][0] == "unindexed" and all(item["score"] is None for item in plain)


def test_limit_offset_and_filter_apply_with_the_query(open_app):
    client = get_sync_client(url=open_app.url)
    seed(client, ["paged"])
    ranked = [item["key"] for item in client.store.search_items(["paged"], query="chase mice", limit=10)["items"]]
    page = [item["key"] for item in client.store.search_items(["paged"], query="chase mice", limit=2, offset=1)["items"]]
    assert page == ranked[1:3]
    pets = client.store.search_items(["paged"], query="bark balls", filter={"kind": "pet"})["items"]
    assert [item["key"] for item in pets] == ["dogs", "cats", "unindexed"]
    assert client.store.search_items(["paged"], query="bark", filter={"kind": "nothing"})["items"] == []
    # The namespace prefix still applies: another namespace's best match is not found.
    client.store.put_item(["elsewhere"], "bark", {"text": "bark bark balls dogs"})
    assert "bark" not in [item["key"] for item in client.store.search_items(["paged"], query="bark balls dogs")["items"]]


def test_a_put_can_name_its_own_fields(open_app):
    client = get_sync_client(url=open_app.url)
    client.store.put_item(["own"], "a", {"text": "stocks bonds", "note": "whales sing"}, index=["note"])
    client.store.put_item(["own"], "b", {"text": "whales sing", "note": "stocks"})
    found = client.store.search_items(["own"], query="whales sing")["items"]
    assert [round(item["score"], 3) for item in found] == [1.0, 1.0]
    client.store.put_item(["own"], "a", {"text": "stocks bonds", "note": "whales sing"})
    found = client.store.search_items(["own"], query="whales sing")["items"]
    assert [item["key"] for item in found] == ["b", "a"] and found[1]["score"] < 0.1, "a re-put re-embeds with the default fields"
    bad = httpx.put(f"{open_app.url}/store/items", json={"namespace": ["own"], "key": "c", "value": {}, "index": "text"})
    assert bad.status_code == 422, bad.text


def test_a_graph_searches_by_query_and_puts_embedded(open_app):
    client = get_sync_client(url=open_app.url)
    seed(client, ["graph"])
    out = client.runs.wait(None, "search", input={"namespace": ["graph"], "query": "stocks bonds"})["out"]
    assert out[0][0] == "stocks" and abs(out[0][1] - 2 / 10**0.5) < 1e-6, "cosine of the two word-count vectors"
    assert out[-1] == ["unindexed", None]
    # A graph's put is embedded too, and HTTP ranks it.
    put = {"key": "from-graph", "value": {"text": "volcanoes erupt lava"}}
    out = client.runs.wait(None, "search", input={"namespace": ["graph"], "query": "lava volcanoes", "put": put})["out"]
    assert out[0][0] == "from-graph" and out[0][1] > 0.7
    http = client.store.search_items(["graph"], query="erupt lava")["items"]
    assert http[0]["key"] == "from-graph"
    # index=False from a graph: not ranked.
    put = {"key": "quiet", "value": {"text": "lava lava lava"}, "index": False}
    out = client.runs.wait(None, "search", input={"namespace": ["graph"], "query": "lava", "put": put})["out"]
    scored = [key for key, score in out if score is not None]
    assert out[len(scored):] == [["quiet", None], ["unindexed", None]], "the unscored come last, newest first"
    assert out[0][0] == "from-graph"


def test_a_sync_graph_node_uses_the_index_too(open_app):
    client = get_sync_client(url=open_app.url)
    put = {"key": "sync-put", "value": {"text": "glaciers calve icebergs"}, "ttl": 5}
    out = client.runs.wait(None, "search_sync", input={"namespace": ["sync"], "query": "icebergs glaciers", "put": put})["out"]
    assert out[0][0] == "sync-put" and out[0][1] > 0.7
    assert client.store.search_items(["sync"], query="calve")["items"][0]["key"] == "sync-put"


def test_items_expire_and_refresh(open_app):
    client = get_sync_client(url=open_app.url)
    client.store.put_item(["ttl"], "short", {"text": "soon gone"}, ttl=0.02)
    client.store.put_item(["ttl", "sub"], "short", {"text": "soon gone"}, ttl=0.02)
    client.store.put_item(["ttl"], "kept", {"text": "stays"}, ttl=0.05)
    client.store.put_item(["ttl"], "forever", {"text": "stays"})
    assert client.store.get_item(["ttl"], "short")["value"] == {"text": "soon gone"}
    time.sleep(1.5)
    # Gone for every read at once, before any sweep.
    assert client.store.get_item(["ttl"], "short") is None
    assert sorted(item["key"] for item in client.store.search_items(["ttl"], query="soon gone")["items"]) == ["forever", "kept"]
    assert client.store.list_namespaces(prefix=["ttl"])["namespaces"] == [["ttl"]]
    # refresh_on_read is false in this app: a plain read does not extend `kept` (3 s)...
    client.store.put_item(["ttl"], "kept", {"text": "stays"}, ttl=0.05)
    time.sleep(1.0)
    assert client.store.get_item(["ttl"], "kept") is not None
    # ...a read with refresh_ttl=true restarts its 3 s from now.
    assert client.store.get_item(["ttl"], "kept", refresh_ttl=True) is not None
    time.sleep(2.3)
    assert client.store.get_item(["ttl"], "kept") is not None, "refreshed 2.3 s ago, 3.3 s after its put"
    assert client.store.search_items(["ttl"], refresh_ttl=True)["items"]
    time.sleep(1.5)
    assert client.store.get_item(["ttl"], "kept") is not None, "the search refreshed it"
    time.sleep(2.0)
    assert client.store.get_item(["ttl"], "kept") is None
    assert client.store.get_item(["ttl"], "forever") is not None
    bad = httpx.put(f"{open_app.url}/store/items", json={"namespace": ["ttl"], "key": "x", "value": {}, "ttl": -1})
    assert bad.status_code == 422, bad.text


def test_a_query_never_reaches_another_users_items(auth_app):
    alice = get_sync_client(url=auth_app.url, headers=ALICE)
    bob = get_sync_client(url=auth_app.url, headers=BOB)
    # The handler puts every namespace under the caller's identity.
    alice.store.put_item(["notes"], "secret", {"text": "alice launch codes rocket"})
    bob.store.put_item(["notes"], "mine", {"text": "bob grocery list"})
    # Bob's best match for alice's words is his own item; alice's is never found, whatever he names.
    for prefix in (["notes"], [], ["alice"], ["alice", "notes"]):
        found = bob.store.search_items(prefix, query="alice launch codes rocket", limit=100)["items"]
        assert all(item["namespace"][0] == "bob" for item in found), (prefix, found)
        assert "secret" not in [item["key"] for item in found]
    found = alice.store.search_items(["notes"], query="launch codes")["items"]
    assert [(item["namespace"], item["key"]) for item in found] == [(["alice", "notes"], "secret")]
    assert found[0]["score"] > 0.5
    assert httpx.post(f"{auth_app.url}/store/items/search", json={"namespace_prefix": [], "query": "rocket"}).status_code == 401


def test_a_query_never_ranks_items_the_handler_filters_out(tmp_path):
    server = Server(write_app(tmp_path, auth="owner-filter"))
    try:
        alice = get_sync_client(url=server.url, headers=ALICE)
        bob = get_sync_client(url=server.url, headers=BOB)
        alice.store.put_item(["shared"], "secret", {"owner": "alice", "text": "alice launch codes rocket"})
        bob.store.put_item(["shared"], "mine", {"owner": "bob", "text": "bob grocery list"})
        for prefix in (["shared"], []):
            found = bob.store.search_items(prefix, query="alice launch codes rocket", limit=100)["items"]
            assert [item["key"] for item in found] == ["mine"], found
            found = bob.store.search_items(prefix, query="alice launch codes rocket", filter={"owner": "alice"})["items"]
            assert found == [], "the request's filter cannot widen the handler's"
        found = alice.store.search_items(["shared"], query="rocket")["items"]
        assert [item["key"] for item in found] == ["secret"] and found[0]["score"] > 0.4
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("embed", "dims", "expected"),
    [
        ("./store_index.py:missing", 64, "store_index.py has no attribute `missing`; check the name after the `:`"),
        ("./store_index.py:DIMS", 64, "`store.index.embed`: `./store_index.py:DIMS` is int, not a function"),
        ("openai:text-embedding-3-small", 64, "`store.index.embed`: cannot build `openai:text-embedding-3-small`: ValueError: Could not load embeddings"),
        ("./store_index.py:embed", -3, "`store.index.dims`: must be a positive whole number"),
    ],
)
def test_bad_store_config_is_one_startup_line(tmp_path, embed, dims, expected):
    config = write_app(tmp_path, auth=False, store={"index": {"embed": embed, "dims": dims}})
    with pytest.raises(RuntimeError) as failure:
        Server(config)
    lines = [line for line in str(failure.value).splitlines() if expected in line]
    assert len(lines) == 1, str(failure.value)


def test_wrong_dims_fail_the_put_not_the_store(tmp_path):
    config = write_app(tmp_path, auth=False, store={"index": {"embed": "./store_index.py:embed", "dims": 8}})
    server = Server(config)
    try:
        response = httpx.put(f"{server.url}/store/items", json={"namespace": ["d"], "key": "k", "value": {"text": "x"}})
        assert response.status_code == 500
        assert httpx.put(f"{server.url}/store/items", json={"namespace": ["d"], "key": "k", "value": {"text": "x"}, "index": False}).status_code == 204
        assert httpx.get(f"{server.url}/store/items", params={"namespace": "d", "key": "k"}).json()["value"] == {"text": "x"}
        assert "vector of 64 numbers; `store.index.dims` is 8" in server.output()
    finally:
        server.stop()
