"""Graphs for the v3 event-streaming protocol tests: a model/tools loop that writes message
objects (so the `messages` and `tools` channels have something to carry) and a custom event."""

from typing import Annotated, TypedDict

from langchain_core.messages import AIMessage, ToolMessage
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages


class State(TypedDict):
    messages: Annotated[list, add_messages]


def model(state: State) -> dict:
    last = state["messages"][-1]
    if isinstance(last, ToolMessage):
        return {"messages": [AIMessage(content=f"done: {last.content}")]}
    get_stream_writer()({"name": "progress", "step": "model"})
    call = {"id": "call-1", "name": "lookup", "args": {"q": last.content}}
    return {"messages": [AIMessage(content="", tool_calls=[call])]}


def tools(state: State) -> dict:
    call = state["messages"][-1].tool_calls[0]
    return {"messages": [ToolMessage(content=f"found {call['args']['q']}", tool_call_id=call["id"])]}


def route(state: State) -> str:
    return "tools" if getattr(state["messages"][-1], "tool_calls", None) else END


builder = StateGraph(State)
builder.add_node("model", model)
builder.add_node("tools", tools)
builder.add_edge(START, "model")
builder.add_conditional_edges("model", route, ["tools", END])
builder.add_edge("tools", "model")
graph = builder.compile()
