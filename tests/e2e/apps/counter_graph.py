"""A graph of two steps that count: every run leaves several checkpoints (input, each step),
for the checkpointer tests (TTL sweeps, pruning to the latest checkpoint)."""

from typing import TypedDict

from langgraph.graph import END, START, StateGraph


class State(TypedDict):
    count: int


def first(state: State) -> dict:
    return {"count": state.get("count", 0) + 1}


def second(state: State) -> dict:
    return {"count": state["count"] + 1}


builder = StateGraph(State)
builder.add_node("first", first)
builder.add_node("second", second)
builder.add_edge(START, "first")
builder.add_edge("first", "second")
builder.add_edge("second", END)
graph = builder.compile()
