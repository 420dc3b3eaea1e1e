"""graphward's checkpointer (python/graphward/saver.py) against LangGraph's own savers: the same
graph histories as InMemorySaver, and databases shared both ways with langgraph-checkpoint-sqlite
(same tables and encodings)."""

from __future__ import annotations

import asyncio
import importlib.util
import operator
import sys
from typing import Annotated, TypedDict

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, Send, interrupt

from conftest import REPO


def load_saver():
    spec = importlib.util.spec_from_file_location("graphward_saver_under_test", REPO / "python" / "graphward" / "saver.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


SAVER = load_saver()


class State(TypedDict):
    log: Annotated[list, operator.add]
    answer: str


def plan(state: State):
    return [Send("work", {"log": [f"job {n}"], "answer": ""}) for n in range(3)]


def work(state: State) -> dict:
    return {"log": [f"done {state['log'][-1]}"]}


def ask(state: State) -> dict:
    return {"answer": interrupt({"question": "ok?"})}


def build(checkpointer):
    builder = StateGraph(State)
    builder.add_node("work", work)
    builder.add_node("ask", ask)
    builder.add_conditional_edges(START, plan, ["work"])
    builder.add_edge("work", "ask")
    builder.add_edge("ask", END)
    return builder.compile(checkpointer=checkpointer)


def plain(values: dict) -> dict:
    """Values with interrupts as their payloads (interrupt ids derive from checkpoint ids)."""
    return {key: [item.value for item in value] if key == "__interrupt__" else value for key, value in values.items()}


def scenario(graph, thread_id: str) -> list:
    """Fan-out, an interrupt, a resume, a state update and a fork; returns what a client sees."""
    config = {"configurable": {"thread_id": thread_id}}
    seen = [plain(graph.invoke({"log": ["start"], "answer": ""}, config))]
    state = graph.get_state(config)
    seen.append((state.values, state.next, [[i.value for i in task.interrupts] for task in state.tasks]))
    seen.append(graph.invoke(Command(resume="yes"), config))
    graph.update_state(config, {"log": ["edited"]})
    history = list(graph.get_state_history(config))
    seen.append([(snapshot.values, snapshot.next, snapshot.metadata.get("source"), snapshot.metadata.get("step")) for snapshot in history])
    seen.append([snapshot.metadata.get("step") for snapshot in graph.get_state_history(config, limit=2)])
    seen.append([snapshot.metadata.get("step") for snapshot in graph.get_state_history(config, filter={"source": "update"})])
    seen.append([snapshot.metadata.get("step") for snapshot in graph.get_state_history(config, before=history[1].config)])
    fork = history[3].config
    seen.append(plain(graph.invoke(None, fork)))
    return seen


def test_same_histories_as_in_memory(tmp_path):
    expected = scenario(build(InMemorySaver()), "t")
    saver = SAVER.SqliteCheckpointer(tmp_path / "cp.db")
    assert scenario(build(saver), "t") == expected
    # And after reopening the file (nothing kept in memory).
    reopened = build(SAVER.SqliteCheckpointer(tmp_path / "cp.db"))
    state = reopened.get_state({"configurable": {"thread_id": "t"}})
    assert state.values == {key: value for key, value in expected[-1].items() if key != "__interrupt__"} and state.next == ("ask",)


def test_async_methods(tmp_path):
    graph = build(SAVER.SqliteCheckpointer(tmp_path / "cp.db"))
    config = {"configurable": {"thread_id": "a"}}

    async def go():
        await graph.ainvoke({"log": ["start"], "answer": ""}, config)
        done = await graph.ainvoke(Command(resume="fine"), config)
        history = [snapshot async for snapshot in graph.aget_state_history(config)]
        return done, len(history)

    done, count = asyncio.run(go())
    assert done["answer"] == "fine" and count == len(list(graph.get_state_history(config)))


def test_delete_copy_and_delete_for_runs(tmp_path):
    saver = SAVER.SqliteCheckpointer(tmp_path / "cp.db")
    graph = build(saver)
    first = {"configurable": {"thread_id": "src", "run_id": "00000000-0000-0000-0000-000000000001"}}
    graph.invoke({"log": ["start"], "answer": ""}, first)
    before = list(graph.get_state_history({"configurable": {"thread_id": "src"}}))
    second = {"configurable": {"thread_id": "src", "run_id": "00000000-0000-0000-0000-000000000002"}}
    graph.invoke(Command(resume="yes"), second)

    saver.copy_thread("src", "dst")
    copied = list(graph.get_state_history({"configurable": {"thread_id": "dst"}}))
    original = list(graph.get_state_history({"configurable": {"thread_id": "src"}}))
    assert [s.values for s in copied] == [s.values for s in original]
    assert [s.config["configurable"]["checkpoint_id"] for s in copied] == [s.config["configurable"]["checkpoint_id"] for s in original]

    saver.delete_for_runs(["00000000-0000-0000-0000-000000000002"])
    after = list(graph.get_state_history({"configurable": {"thread_id": "src"}}))
    assert [s.config["configurable"]["checkpoint_id"] for s in after] == [s.config["configurable"]["checkpoint_id"] for s in before]

    saver.delete_thread("src")
    assert list(graph.get_state_history({"configurable": {"thread_id": "src"}})) == []
    # The copy keeps its checkpoints (a run's, carried over with their metadata, went with it).
    assert len(list(graph.get_state_history({"configurable": {"thread_id": "dst"}}))) == len(after)


def test_keep_latest_prunes_to_the_latest_checkpoint(tmp_path):
    """TTL `keep_latest`: the state and what comes next are unchanged, the history is the one
    latest checkpoint (without a parent), the thread goes on from it; other threads keep theirs."""
    saver = SAVER.SqliteCheckpointer(tmp_path / "cp.db")
    graph = build(saver)
    config = {"configurable": {"thread_id": "t"}}
    graph.invoke({"log": ["start"], "answer": ""}, config)
    graph.invoke({"log": ["start"], "answer": ""}, {"configurable": {"thread_id": "other"}})
    before = graph.get_state(config)
    assert len(list(graph.get_state_history(config))) > 2

    asyncio.run(saver.aprune(["t"], strategy="keep_latest"))
    after = graph.get_state(config)
    assert (after.values, after.next, [[i.value for i in task.interrupts] for task in after.tasks]) == (
        before.values, before.next, [[i.value for i in task.interrupts] for task in before.tasks])
    history = list(graph.get_state_history(config))
    assert len(history) == 1 and history[0].parent_config is None
    assert len(list(graph.get_state_history({"configurable": {"thread_id": "other"}}))) > 2
    assert graph.invoke(Command(resume="yes"), config)["answer"] == "yes"
    with pytest.raises(ValueError):
        saver.prune(["t"], strategy="archive")


@pytest.mark.parametrize("writer", ["package", "graphward"])
def test_databases_are_shared_with_langgraph_checkpoint_sqlite(tmp_path, writer):
    """A thread written by one saver is continued by the other (same tables, blobs, versions)."""
    import sqlite3

    path = tmp_path / "cp.db"
    package = SqliteSaver(sqlite3.connect(path, check_same_thread=False))
    package.setup()
    ours = SAVER.SqliteCheckpointer(path)
    first, second = (package, ours) if writer == "package" else (ours, package)
    config = {"configurable": {"thread_id": "shared"}}
    build(first).invoke({"log": ["start"], "answer": ""}, config)
    done = build(second).invoke(Command(resume="yes"), config)
    expected_graph = build(InMemorySaver())
    expected_graph.invoke({"log": ["start"], "answer": ""}, config)
    assert done == expected_graph.invoke(Command(resume="yes"), config)
    assert [s.values for s in build(first).get_state_history(config)] == [s.values for s in build(second).get_state_history(config)]
