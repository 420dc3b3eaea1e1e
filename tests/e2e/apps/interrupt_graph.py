"""A graph that asks for approval with `interrupt()`, for human-in-the-loop tests."""

from typing import Annotated, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.types import interrupt


class State(TypedDict):
    messages: Annotated[list, add_messages]


def ask(state: State) -> dict:
    answer = interrupt({"question": "approve?"})
    return {"messages": [{"role": "ai", "content": f"answer: {answer}"}]}


def fail(state: State) -> dict:
    raise ValueError("boom failure")


builder = StateGraph(State)
builder.add_node("ask", ask)
builder.add_edge(START, "ask")
builder.add_edge("ask", END)
graph = builder.compile()

failing = StateGraph(State)
failing.add_node("fail", fail)
failing.add_edge(START, "fail")
failing.add_edge("fail", END)
failing_graph = failing.compile()
