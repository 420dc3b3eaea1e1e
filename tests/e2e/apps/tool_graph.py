"""A graph whose first node emits a tool call deterministically; a ToolNode runs it."""

from typing import Annotated, TypedDict

from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode


@tool
def shout(text: str) -> str:
    """Answers the text in capitals."""
    return text.upper()


class State(TypedDict):
    messages: Annotated[list, add_messages]


def call(state: State) -> dict:
    last = state["messages"][-1]
    if getattr(last, "type", "") == "tool":
        return {"messages": [AIMessage(content=f"done: {last.content}", id="ai-done")]}
    return {"messages": [AIMessage(content="", id="ai-call", tool_calls=[{"id": "call-1", "name": "shout", "args": {"text": last.content}}])]}


def route(state: State) -> str:
    last = state["messages"][-1]
    return "tools" if getattr(last, "tool_calls", None) else END


builder = StateGraph(State)
builder.add_node("call", call)
builder.add_node("tools", ToolNode([shout]))
builder.add_edge(START, "call")
builder.add_conditional_edges("call", route, ["tools", END])
builder.add_edge("tools", "call")
graph = builder.compile()
