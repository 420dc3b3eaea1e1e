"""The example's graphs, both built per use by factories, as `langgraph dev` does.

- `make_graph(config)`: the assistant's `configurable.style` picks the reply node, so two
  assistants of one graph answer differently.
- `researcher(runtime)`: an async context manager that declares `runtime: ServerRuntime`; it
  opens a (pretend) connection only when a run executes, and closes it after the run.
"""

from __future__ import annotations

import contextlib
import operator
from typing import Annotated, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph_sdk.runtime import ServerRuntime


class State(TypedDict, total=False):
    question: str
    answer: str
    log: Annotated[list, operator.add]


STYLES = {
    "plain": lambda text: text,
    "shout": lambda text: text.upper() + "!",
    "polite": lambda text: f"Kindly: {text}",
}


def make_graph(config):
    style = (config.get("configurable") or {}).get("style", "plain")
    transform = STYLES.get(style, STYLES["plain"])

    def reply(state: State):
        return {"answer": transform(state.get("question", "")), "log": [f"style={style}"]}

    builder = StateGraph(State)
    builder.add_node("reply", reply)
    builder.add_edge(START, "reply")
    builder.add_edge("reply", END)
    return builder.compile(name=f"assistant-{style}")


class Connection:
    """Stands in for an MCP session or a database connection the graph needs while it runs."""

    opened = 0
    closed = 0

    def __init__(self, owner):
        self.owner = owner
        self.open = True
        Connection.opened += 1

    def close(self):
        self.open = False
        Connection.closed += 1


@contextlib.asynccontextmanager
async def researcher(runtime: ServerRuntime):
    execution = runtime.execution_runtime
    connection = Connection(runtime.ensure_user().identity) if execution is not None else None

    def research(state: State):
        if connection is None or not connection.open:
            raise RuntimeError("the connection is not open while the run executes")
        in_use = Connection.opened - Connection.closed
        return {"answer": f"researched {state.get('question', '')!r} for {connection.owner}", "log": [runtime.access_context, f"open={in_use}"]}

    builder = StateGraph(State)
    builder.add_node("research", research)
    builder.add_edge(START, "research")
    builder.add_edge("research", END)
    try:
        yield builder.compile(name="researcher")
    finally:
        if connection is not None:
            connection.close()
