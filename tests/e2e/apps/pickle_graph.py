"""A graph whose state holds an object only pickle can serialize (a plain class instance:
msgpack refuses it), for `checkpointer.serde.pickle_fallback`."""

from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph


class Box:
    def __init__(self, value):
        self.value = value


class State(TypedDict, total=False):
    n: int
    box: Any
    unboxed: int


def pack(state: State) -> dict:
    return {"box": Box(state["n"] * 2)}


def unpack(state: State) -> dict:
    return {"unboxed": state["box"].value}


builder = StateGraph(State)
builder.add_node("pack", pack)
builder.add_node("unpack", unpack)
builder.add_edge(START, "pack")
builder.add_edge("pack", "unpack")
builder.add_edge("unpack", END)
graph = builder.compile()
