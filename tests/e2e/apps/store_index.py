"""The app of tests/e2e/test_store_index.py: a deterministic local embedding (hashed bag of
words, 64 dimensions: texts sharing words point the same way) and a graph that uses the
store's semantic search and ttl from a node."""

import hashlib
from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.store.base import BaseStore

DIMS = 64


def _vector(text: str) -> list[float]:
    vector = [0.0] * DIMS
    for word in text.lower().split():
        vector[int(hashlib.sha256(word.encode()).hexdigest(), 16) % DIMS] += 1.0
    return vector


def embed(texts: list[str]) -> list[list[float]]:
    """`store.index.embed`: a plain sync function `texts -> vectors`."""
    return [_vector(text) for text in texts]


class State(TypedDict, total=False):
    namespace: list[str]
    query: str
    put: dict
    out: Any


async def search(state: State, *, store: BaseStore) -> State:
    namespace = tuple(state["namespace"])
    if "put" in state:
        put = state["put"]
        await store.aput(namespace, put["key"], put["value"], index=put.get("index"), ttl=put.get("ttl"))
    found = await store.asearch(namespace, query=state.get("query"), limit=state.get("limit", 10))
    return {"out": [[item.key, item.score] for item in found]}


def search_sync(state: State, *, store: BaseStore) -> State:
    """The same from a sync node (LangGraph runs it in a worker thread: the store's sync
    `batch`, and the sync embedding)."""
    namespace = tuple(state["namespace"])
    if "put" in state:
        put = state["put"]
        store.put(namespace, put["key"], put["value"], index=put.get("index"), ttl=put.get("ttl"))
    found = store.search(namespace, query=state.get("query"), limit=state.get("limit", 10))
    return {"out": [[item.key, item.score] for item in found]}


builder = StateGraph(State)
builder.add_node("search", search)
builder.add_edge(START, "search")
builder.add_edge("search", END)
graph = builder.compile()

sync_builder = StateGraph(State)
sync_builder.add_node("search", search_sync)
sync_builder.add_edge(START, "search")
sync_builder.add_edge("search", END)
sync_graph = sync_builder.compile()
