"""A small echo graph: replies to the last message with its text, so runs need no model."""

from typing import Annotated, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages


class State(TypedDict):
    messages: Annotated[list, add_messages]


def respond(state: State) -> dict:
    last = state["messages"][-1] if state["messages"] else None
    text = getattr(last, "content", "") if last is not None else ""
    return {"messages": [{"role": "ai", "content": f"echo: {text}"}]}


builder = StateGraph(State)
builder.add_node("respond", respond)
builder.add_edge(START, "respond")
builder.add_edge("respond", END)

graph = builder.compile()
