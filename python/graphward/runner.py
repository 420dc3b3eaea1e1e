"""Graph execution and thread state, on the interpreter's asyncio loop.

Rust (src/runs/) builds each run's config and calls `run(spec, emit)`; every stream chunk is
serialized here to compact JSON and handed to `emit(event_name, json_text)`. Thread state,
history and updates go through the graph's own `aget_state` / `aget_state_history` /
`aupdate_state` with the server's checkpointer.

Loaded by Rust as module `graphward_runner`, after `graphward_host`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import datetime
import decimal
import enum
import inspect
import json
import logging
import sys
import types
import uuid

import graphward_host

log = logging.getLogger("graphward.runner")

CHECKPOINTER = None
CHECKPOINTER_KIND = "none"
# The store graphs see: the same items as the HTTP /store API (None without langgraph).
STORE = None

# Exception types whose text is shown to clients; others become a fixed message (spec runs.md §5.2).
_USER_FACING = {
    "ValueError", "TypeError", "KeyError", "AttributeError", "RuntimeError", "RecursionError",
    "GraphRecursionError", "TimeoutError", "InvalidUpdateError", "EmptyInputError", "GraphInterrupt",
    "ParentCommand", "HTTPException", "CancelledError", "UserInterrupt", "NotImplementedError",
    "AssertionError", "IndexError", "ZeroDivisionError",
}


# --------------------------------------------------------------------------------------------
# Setup


async def setup(target, store=None, saver_source=None, serde=None, custom=None):
    """Opens the checkpointer. `target` is `{"sqlite": path}`: graphward's own SQLite saver
    (`saver.py`, compiled here from `saver_source`) on that file, or an in-memory saver if this
    LangGraph has no `BaseCheckpointSaver` to build it on; or `{"postgres": uri}`:
    langgraph-checkpoint-postgres's saver (`postgres_saver.py`) in that database, which must
    open (no fallback: the replicas share it). Returns its kind. `store` is graphward's own
    store (Rust, the one `/store` serves), which graphs read and write. `serde` is
    `checkpointer.serde` of langgraph.json (`pickle_fallback`, `allowed_json_modules`): the
    options of the savers' `JsonPlusSerializer` (None: the savers' default serializer).
    `custom` is `checkpointer.path` as (raw, file, module, attribute): the user's own saver,
    used instead of graphward's (`target` then only names where graphward's would be)."""
    global CHECKPOINTER, CHECKPOINTER_KIND, STORE
    if store is not None:
        STORE = _make_store(store)
    if custom is not None:
        CHECKPOINTER, CHECKPOINTER_KIND = await _open_custom(*custom), "custom"
        return CHECKPOINTER_KIND
    serde = _serializer(serde)
    if "postgres" in target:
        try:
            saver = _load_saver(saver_source, "graphward_postgres_saver", "postgres_saver.py")
        except ImportError as error:
            raise RuntimeError(
                f"checkpoints on Postgres need langgraph-checkpoint-postgres and psycopg in the app's environment "
                f"(pip install langgraph-checkpoint-postgres 'psycopg[binary]' psycopg-pool): {graphward_host.describe_error(error)}"
            ) from None
        CHECKPOINTER, CHECKPOINTER_KIND = await saver.open(target["postgres"], serde=serde), "postgres"
        return CHECKPOINTER_KIND
    try:
        saver = _load_saver(saver_source, "graphward_saver", "saver.py")
    except ImportError as error:
        log.warning("cannot build graphward's checkpointer (%s); checkpoints stay in memory", graphward_host.describe_error(error))
        try:
            from langgraph.checkpoint.memory import InMemorySaver
        except ImportError:
            CHECKPOINTER, CHECKPOINTER_KIND = None, "none"
            return CHECKPOINTER_KIND
        CHECKPOINTER, CHECKPOINTER_KIND = InMemorySaver(serde=serde), "memory"
        return CHECKPOINTER_KIND
    CHECKPOINTER, CHECKPOINTER_KIND = saver.SqliteCheckpointer(target["sqlite"], serde=serde), "sqlite"
    return CHECKPOINTER_KIND


# What `checkpointer.path` entered (an async context manager's exit), left by `stop`.
_CUSTOM_EXIT = contextlib.AsyncExitStack()
_CUSTOM_ENTERED = False


async def _open_custom(raw, file, module_name, attribute):
    """The saver `checkpointer.path` names: a `BaseCheckpointSaver` instance, a class or
    function (sync or async) returning one, or an (async) context manager yielding one (the
    form the reference documents), entered here and left by `close`."""
    from langgraph.checkpoint.base import BaseCheckpointSaver

    global _CUSTOM_ENTERED
    found = graphward_host.load_object("checkpointer.path", raw, file, module_name, attribute)
    candidate = found
    if inspect.isclass(candidate) or (not isinstance(candidate, BaseCheckpointSaver) and callable(candidate) and not hasattr(candidate, "__aenter__")):
        candidate = candidate()
    if inspect.isawaitable(candidate):
        candidate = await candidate
    if not isinstance(candidate, BaseCheckpointSaver):
        if hasattr(candidate, "__aenter__"):
            candidate = await _CUSTOM_EXIT.enter_async_context(candidate)
            _CUSTOM_ENTERED = True
        elif hasattr(candidate, "__enter__"):
            candidate = _CUSTOM_EXIT.enter_context(candidate)
            _CUSTOM_ENTERED = True
    if not isinstance(candidate, BaseCheckpointSaver):
        raise RuntimeError(
            f"checkpointer.path: `{raw}` gave {type(candidate).__name__}, not a BaseCheckpointSaver; point it at a saver, "
            "a function returning one, or an @asynccontextmanager function yielding one"
        )
    return candidate


def stop(event_loop):
    """Stops the loop (the process is ending), first leaving what `checkpointer.path` entered,
    for at most 3 s."""
    if not _CUSTOM_ENTERED:
        event_loop.stop()
        return

    async def leave():
        try:
            await asyncio.wait_for(_CUSTOM_EXIT.aclose(), 3)
        except BaseException as error:  # noqa: BLE001 - logged; the loop stops regardless
            log.warning("cannot close the checkpointer of checkpointer.path: %s", graphward_host.describe_error(error))
        finally:
            event_loop.stop()

    event_loop.create_task(leave())


def _serializer(options):
    """LangGraph's `JsonPlusSerializer` with `checkpointer.serde`'s options, or None."""
    if options is None:
        return None
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    allowed = options.get("allowed_json_modules")
    kwargs = {"pickle_fallback": bool(options.get("pickle_fallback"))}
    if allowed is not None:
        kwargs["allowed_json_modules"] = True if allowed is True else [tuple(path) for path in allowed]
    try:
        return JsonPlusSerializer(**kwargs)
    except TypeError as error:  # an older langgraph-checkpoint without these options
        raise RuntimeError(f"checkpointer.serde: this langgraph-checkpoint's JsonPlusSerializer does not take these options ({error}); upgrade langgraph-checkpoint") from None


def _load_saver(source, name, file):
    """graphward's saver module `name` (raises ImportError if its imports are missing)."""
    if source is None:
        raise ImportError("no saver source")
    filename = f"<graphward>/graphward/{file}"
    module = types.ModuleType(name)
    module.__file__ = filename
    sys.modules[name] = module
    try:
        exec(compile(source, filename, "exec"), module.__dict__)  # noqa: S102 - graphward's own module
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


# --------------------------------------------------------------------------------------------
# JSON, the way clients expect it


def _default(obj):
    if hasattr(obj, "model_dump") and callable(obj.model_dump):
        return obj.model_dump()
    if hasattr(obj, "dict") and callable(obj.dict) and hasattr(obj, "__fields__"):
        return obj.dict()
    type_name = type(obj).__name__
    if type_name == "Interrupt" and hasattr(obj, "value"):
        return {"value": obj.value, "id": getattr(obj, "id", None), "response_schema": getattr(obj, "response_schema", None)}
    if type_name == "Send" and hasattr(obj, "node"):
        return {"node": obj.node, "args": obj.arg}
    if type_name == "Command" and hasattr(obj, "goto"):
        return {key: getattr(obj, key) for key in ("graph", "update", "resume", "goto") if getattr(obj, key, None) not in (None, ())}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {field.name: getattr(obj, field.name) for field in dataclasses.fields(obj)}
    if isinstance(obj, tuple) and hasattr(obj, "_asdict"):
        return obj._asdict()
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    if isinstance(obj, (uuid.UUID, decimal.Decimal)):
        return str(obj) if isinstance(obj, uuid.UUID) else float(obj)
    if isinstance(obj, (datetime.datetime, datetime.date, datetime.time)):
        return obj.isoformat()
    if isinstance(obj, datetime.timedelta):
        return obj.total_seconds()
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, (bytes, bytearray)):
        return base64.b64encode(bytes(obj)).decode()
    if isinstance(obj, BaseException):
        return repr(obj)
    return repr(obj)


def dumps(obj):
    return json.dumps(obj, default=_default, separators=(",", ":"), ensure_ascii=False)


def jsonable(obj):
    """`obj` as plain JSON data (round-trip through the encoder)."""
    return json.loads(dumps(obj))


def _error_of(error):
    name = type(error).__name__
    message = str(error) if name in _USER_FACING else "An internal error occurred"
    return {"error": name, "message": message}


# --------------------------------------------------------------------------------------------
# Runs


@contextlib.asynccontextmanager
async def _graph_for(graph_id, with_checkpointer, access, config=None, user=None, context=None):
    """The graph for one use (see `graphward_host.use_graph`) with the server's checkpointer
    and store."""
    async with graphward_host.use_graph(graph_id, access, config, user, context) as graph:
        update = {"checkpointer": CHECKPOINTER if with_checkpointer else None}
        if STORE is not None:
            update["store"] = STORE
        yield graph.copy(update=update)


def _command(command):
    from langgraph.types import Command, Send

    goto = command.get("goto")
    if goto is not None:
        items = goto if isinstance(goto, list) else [goto]
        goto = [Send(item["node"], item.get("input")) if isinstance(item, dict) else item for item in items]
    update = command.get("update")
    if isinstance(update, list):
        update = [tuple(pair) for pair in update]
    kwargs = {}
    if "resume" in command:
        kwargs["resume"] = command["resume"]
    if update is not None:
        kwargs["update"] = update
    if goto:
        kwargs["goto"] = goto
    return Command(**kwargs)


async def run(spec, emit):
    """Runs one graph. `spec` (built by Rust): graph_id, input, command, config, context,
    stream_mode (requested modes), subgraphs, interrupt_before, interrupt_after, durability,
    checkpointer (bool), auth_user (dict or None).

    Emits every requested chunk; returns {"status", "error", "values_json" (the thread's values
    as JSON text), "interrupts", "has_next"} describing the thread afterwards."""
    requested = list(spec.get("stream_mode") or ["values"])
    modes = []
    for mode in requested:
        actual = "messages" if mode in ("messages-tuple", "messages") else mode
        if actual not in modes and actual != "events":
            modes.append(actual)
    if "values" not in modes:
        modes.append("values")
    # `updates` tells, through its `__interrupt__` chunk, whether the run stopped at an
    # interrupt or breakpoint; if it did not, the thread's state is the last `values` chunk.
    if "updates" not in modes:
        modes.append("updates")
    emitted = {("messages" if mode in ("messages-tuple", "messages") else mode) for mode in requested}
    with_checkpointer = bool(spec.get("checkpointer")) and CHECKPOINTER is not None
    config = spec.get("config") or {}
    if isinstance(config.get("run_id"), str):
        try:
            config["run_id"] = uuid.UUID(config["run_id"])
        except ValueError:
            config.pop("run_id")
    configurable = config.setdefault("configurable", {})
    configurable["langgraph_auth_user"] = graphward_host.user_object(spec.get("auth_user"))
    if spec.get("command") is not None:
        graph_input = _command(spec["command"])
    else:
        graph_input = spec.get("input")
    kwargs = {
        "stream_mode": modes,
        "subgraphs": bool(spec.get("subgraphs")),
        "interrupt_before": spec.get("interrupt_before"),
        "interrupt_after": spec.get("interrupt_after"),
    }
    if spec.get("durability"):
        kwargs["durability"] = spec["durability"]
    context = spec.get("context")
    if context:
        kwargs["context"] = context
    try:
        async with _graph_for(spec["graph_id"], with_checkpointer, "threads.create_run", config, spec.get("auth_user"), context) as graph:
            return await _execute(graph, graph_input, config, kwargs, requested, emitted, with_checkpointer, emit)
    except Exception as error:  # noqa: BLE001 - the factory failed (building or closing): the run's error
        log.warning("graph factory failed: %s", graphward_host.describe_error(error))
        failure = _error_of(error)
        emit("error", dumps(failure))
        return {"status": "error", "error": failure, "values_json": None, "interrupts": {}, "has_next": False}


async def _execute(graph, graph_input, config, kwargs, requested, emitted, with_checkpointer, emit):
    """Streams one run of `graph`; the run's summary (see `run`)."""
    last_values = None
    last_values_json = None
    interrupted = False
    legacy = _LegacyMessages(emit)
    outcome = {"status": "success", "error": None}
    def handle(item):
        nonlocal last_values, last_values_json, interrupted
        if kwargs["subgraphs"]:
            namespace, mode, chunk = item
        else:
            namespace, (mode, chunk) = (), item
        if mode == "values" and not namespace:
            last_values = chunk
        elif mode == "updates" and not namespace and isinstance(chunk, dict) and "__interrupt__" in chunk:
            interrupted = True
        suffix = ("|" + "|".join(namespace)) if namespace else ""
        if mode == "messages":
            if "messages-tuple" in requested:
                emit("messages" + suffix, dumps(chunk))
            if "messages" in requested:
                legacy.publish(chunk, suffix)
            return
        # Root `values` are always published (wait/join read them); streams filter to the
        # requested modes.
        if mode not in emitted and not (mode == "values" and not namespace):
            return
        text = dumps(chunk)
        if mode == "values" and not namespace:
            last_values_json = text
        emit(mode + suffix, text)

    try:
        if "events" in requested:
            # LangChain's event stream; the graph's own chunks arrive as the root's
            # `on_chain_stream` events.
            async for event in graph.astream_events(graph_input, config, version="v2", **kwargs):
                emit("events", dumps(event))
                if event.get("event") == "on_chain_stream" and not event.get("parent_ids"):
                    handle(event["data"]["chunk"])
        else:
            async for item in graph.astream(graph_input, config, **kwargs):
                handle(item)
    except asyncio.CancelledError:
        outcome = {"status": "interrupted", "error": {"error": "UserInterrupt", "message": "Run was cancelled"}}
        # Record the state reached so far, then let the cancellation finish.
        summary = await _summary(graph, config, with_checkpointer, last_values)
        summary.update(outcome)
        return summary
    except Exception as error:  # noqa: BLE001 - becomes the run's error
        log.warning("run failed: %s", graphward_host.describe_error(error))
        outcome = {"status": "error", "error": _error_of(error)}
        emit("error", dumps(outcome["error"]))
    if outcome["status"] == "success" and not interrupted and last_values_json is not None:
        # Ran to the end: nothing is next and the state is what was streamed last, so the
        # checkpoint is not loaded (and its whole history deserialized) a second time.
        # The values go back as the JSON text already made for the stream.
        summary = {"values_json": last_values_json, "interrupts": {}, "has_next": False}
    else:
        summary = await _summary(graph, config, with_checkpointer, last_values)
    summary.update(outcome)
    return summary


class _LegacyMessages:
    """The legacy `messages` stream mode: `messages/metadata` once per message id, then the
    accumulated message so far as `messages/partial` for each streamed chunk, or the whole
    message as `messages/complete` when it was not streamed."""

    def __init__(self, emit):
        self._emit = emit
        self._accumulated = {}
        self._announced = set()

    def publish(self, chunk, suffix):
        message, metadata = chunk
        message_id = getattr(message, "id", None)
        if message_id not in self._announced:
            self._announced.add(message_id)
            self._emit("messages/metadata" + suffix, dumps({message_id: {"metadata": metadata}}))
        try:
            from langchain_core.messages import BaseMessageChunk, message_chunk_to_message
        except ImportError:
            self._emit("messages/complete" + suffix, dumps([message]))
            return
        if isinstance(message, BaseMessageChunk):
            previous = self._accumulated.get(message_id)
            accumulated = message if previous is None else previous + message
            self._accumulated[message_id] = accumulated
            self._emit("messages/partial" + suffix, dumps([message_chunk_to_message(accumulated)]))
        else:
            self._emit("messages/complete" + suffix, dumps([message]))


async def settle(spec):
    """The thread's state now, as a run's summary without its status: for a run cancelled
    before it could make its own summary, and after a rollback removed a run's checkpoints."""
    with_checkpointer = bool(spec.get("checkpointer")) and CHECKPOINTER is not None
    config = spec.get("config") or {}
    async with _graph_for(spec["graph_id"], with_checkpointer, "threads.read", config, spec.get("auth_user")) as graph:
        return await _summary(graph, config, with_checkpointer, None)


async def _summary(graph, config, with_checkpointer, last_values):
    """Thread values (as JSON text), interrupts (task id -> list) and whether tasks remain."""
    fallback = {"values_json": dumps(last_values) if last_values is not None else None, "interrupts": {}, "has_next": False}
    if not with_checkpointer:
        return fallback
    # The thread's latest state, not the checkpoint a time-travel run started from.
    configurable = {key: value for key, value in (config.get("configurable") or {}).items() if key not in ("checkpoint_id", "checkpoint_map")}
    try:
        state = await graph.aget_state({**config, "configurable": configurable})
    except Exception:  # noqa: BLE001 - a run that never checkpointed
        return fallback
    interrupts = {}
    for task in state.tasks:
        if task.interrupts:
            interrupts[task.id] = [_interrupt(interrupt) for interrupt in task.interrupts]
    return {"values_json": dumps(state.values), "interrupts": interrupts, "has_next": bool(state.next)}


def _interrupt(interrupt):
    out = {"id": getattr(interrupt, "id", None), "value": jsonable(getattr(interrupt, "value", None))}
    schema = getattr(interrupt, "response_schema", None)
    if schema is not None:
        out["response_schema"] = jsonable(schema)
    return out


# --------------------------------------------------------------------------------------------
# Thread state


def _checkpoint(config):
    if not config:
        return None
    configurable = config.get("configurable", {})
    out = {
        "thread_id": configurable.get("thread_id"),
        "checkpoint_ns": configurable.get("checkpoint_ns", ""),
        "checkpoint_id": configurable.get("checkpoint_id"),
    }
    if configurable.get("checkpoint_map"):
        out["checkpoint_map"] = configurable["checkpoint_map"]
    return out


def _state(snapshot):
    """A StateSnapshot as the API's ThreadState."""
    checkpoint = _checkpoint(snapshot.config)
    parent = _checkpoint(snapshot.parent_config)
    metadata = dict(snapshot.metadata) if snapshot.metadata is not None else None
    if metadata is not None and metadata.get("checkpoint_ns") == "":
        metadata.pop("checkpoint_ns")
    tasks = []
    for task in snapshot.tasks:
        state = task.state
        task_state, task_checkpoint = None, None
        if state is not None and hasattr(state, "next") and hasattr(state, "config"):
            task_state = _state(state)
        elif state is not None:
            task_checkpoint = dict(state.get("configurable", {}))
        tasks.append({
            "id": task.id,
            "name": task.name,
            "path": jsonable(list(task.path)) if getattr(task, "path", None) else [],
            "error": repr(task.error) if task.error is not None else None,
            "interrupts": [_interrupt(interrupt) for interrupt in task.interrupts],
            "checkpoint": task_checkpoint,
            "state": task_state,
            "result": jsonable(task.result) if getattr(task, "result", None) is not None else None,
        })
    created_at = snapshot.created_at
    return {
        "values": jsonable(snapshot.values),
        "next": list(snapshot.next),
        "tasks": tasks,
        "checkpoint": checkpoint,
        "metadata": jsonable(metadata),
        "created_at": created_at,
        "parent_checkpoint": parent,
        "interrupts": [_interrupt(interrupt) for interrupt in snapshot.interrupts],
        "checkpoint_id": checkpoint["checkpoint_id"] if checkpoint else None,
        "parent_checkpoint_id": parent["checkpoint_id"] if parent else None,
    }


def empty_state():
    return {"values": {}, "next": [], "tasks": [], "metadata": None, "created_at": None, "checkpoint": None,
            "parent_checkpoint": None, "interrupts": [], "checkpoint_id": None, "parent_checkpoint_id": None}


async def get_state(graph_id, configurable, subgraphs, use=None):
    if CHECKPOINTER is None:
        return empty_state()
    async with _state_graph(graph_id, "threads.read", use) as graph:
        snapshot = await graph.aget_state({"configurable": configurable}, subgraphs=bool(subgraphs))
    if not snapshot.config:
        state = empty_state()
        if configurable.get("checkpoint_id"):
            state["checkpoint"] = {"checkpoint_id": configurable["checkpoint_id"], "thread_id": configurable.get("thread_id")}
        return state
    return _state(snapshot)


async def get_history(graph_id, configurable, limit, before, metadata_filter, use=None):
    if CHECKPOINTER is None:
        return []
    before_config = {"configurable": {"checkpoint_id": before}} if before else None
    states = []
    async with _state_graph(graph_id, "threads.read", use) as graph:
        async for snapshot in graph.aget_state_history({"configurable": configurable}, limit=limit, before=before_config, filter=metadata_filter or None):
            states.append(_state(snapshot))
    return states


class NodeNotFound(Exception):
    pass


async def update_state(graph_id, configurable, values, as_node, use=None):
    """Applies an update; returns the new checkpoint config and the thread summary."""
    async with _state_graph(graph_id, "threads.update", use) as graph:
        if as_node is not None and as_node not in graph.nodes:
            raise NodeNotFound(f"Node {as_node} does not exist")
        config = {"configurable": configurable}
        new_config = await graph.aupdate_state(config, values, as_node=as_node)
        summary = await _summary(graph, {"configurable": {"thread_id": configurable["thread_id"]}}, True, None)
    return {"checkpoint": _checkpoint(new_config), "summary": summary}


class InvalidUpdate(Exception):
    pass


async def bulk_update_state(graph_id, configurable, supersteps, use=None):
    """Applies supersteps (each a list of `{values, command, as_node}`) in order, as
    `abulk_update_state` does; returns the last checkpoint config and the thread summary. An
    update langgraph refuses (an unknown node, several updates as input) raises InvalidUpdate."""
    from langgraph.errors import InvalidUpdateError
    from langgraph.types import StateUpdate

    steps = []
    for superstep in supersteps:
        updates = []
        for update in superstep:
            command = update.get("command")
            values = _command(command) if command is not None else update.get("values")
            updates.append(StateUpdate(values, update["as_node"]))
        steps.append(updates)
    async with _state_graph(graph_id, "threads.update", use) as graph:
        # Every node is checked before anything is written (langgraph checks each superstep
        # as it comes to it).
        known = set(graph.nodes) | {"__input__", "__copy__", "__end__"}
        for updates in steps:
            for update in updates:
                if update.as_node not in known:
                    raise InvalidUpdate(f"Node {update.as_node} does not exist")
        config = {"configurable": configurable}
        try:
            new_config = await graph.abulk_update_state(config, steps)
        except InvalidUpdateError as error:
            raise InvalidUpdate(str(error)) from None
        summary = await _summary(graph, {"configurable": {"thread_id": configurable["thread_id"]}}, True, None)
    return {"checkpoint": _checkpoint(new_config), "summary": summary}


def _state_graph(graph_id, access, use):
    """The graph for a state read or update; `use` holds the config (the thread's assistant's)
    and user a factory builds it for."""
    use = use or {}
    return _graph_for(graph_id, True, access, use.get("config"), use.get("user"))


async def delete_threads(thread_ids):
    """Removes the checkpoints and pending writes of deleted threads."""
    if CHECKPOINTER is not None:
        for thread_id in thread_ids:
            await CHECKPOINTER.adelete_thread(thread_id)


async def copy_thread(source_id, target_id):
    """Copies every checkpoint and pending write of a thread (ids kept, thread id rewritten)."""
    if CHECKPOINTER is None:
        return
    try:
        await CHECKPOINTER.acopy_thread(source_id, target_id)
        return
    except (NotImplementedError, AttributeError):
        pass
    saved = [item async for item in CHECKPOINTER.alist({"configurable": {"thread_id": source_id}})]
    for item in sorted(saved, key=lambda item: item.checkpoint["id"]):
        source = item.config["configurable"]
        namespace = source.get("checkpoint_ns", "")
        parent = (item.parent_config or {}).get("configurable", {}).get("checkpoint_id")
        config = {"configurable": {"thread_id": target_id, "checkpoint_ns": namespace}}
        if parent:
            config["configurable"]["checkpoint_id"] = parent
        stored = await CHECKPOINTER.aput(config, item.checkpoint, item.metadata, item.checkpoint.get("channel_versions", {}))
        writes = {}
        for task_id, channel, value in item.pending_writes or ():
            writes.setdefault(task_id, []).append((channel, value))
        for task_id, task_writes in writes.items():
            await CHECKPOINTER.aput_writes(stored, task_writes, task_id)


async def keep_latest(thread_ids):
    """TTL `keep_latest`: each thread keeps only its latest checkpoints (the saver's `aprune`).
    A thread the saver cannot prune (a DeltaChannel graph, a saver without `aprune`) is
    logged and left as it is: trying again would not help."""
    if CHECKPOINTER is None:
        return
    for thread_id in thread_ids:
        try:
            await CHECKPOINTER.aprune([thread_id], strategy="keep_latest")
        except NotImplementedError as error:
            log.warning("cannot prune the checkpoints of thread %s to the latest: %s", thread_id, graphward_host.describe_error(error))


async def delete_for_runs(thread_id, run_ids):
    """Rollback: the checkpoints these runs wrote on their thread (not on copies of it)."""
    if CHECKPOINTER is None or not hasattr(CHECKPOINTER, "adelete_for_runs"):
        return
    try:
        try:
            await CHECKPOINTER.adelete_for_runs(run_ids, thread_id=thread_id)
        except TypeError:  # another saver's signature: no thread scope
            await CHECKPOINTER.adelete_for_runs(run_ids)
    except NotImplementedError:  # a saver of checkpointer.path without it: the checkpoints stay
        log.warning("the checkpointer cannot remove the checkpoints of runs %s on thread %s (no adelete_for_runs); they stay", run_ids, thread_id)


# --------------------------------------------------------------------------------------------
# The store graphs see (LangGraph BaseStore over graphward's store_items table)


def _make_store(native):
    """LangGraph's BaseStore over `native` (Rust, `python/store.rs`): the same implementation,
    rules and database as the HTTP `/store` API. Every namespace is checked there before any
    operation of a batch runs."""
    try:
        from langgraph.store.base import BaseStore, GetOp, Item, ListNamespacesOp, PutOp, SearchItem, SearchOp
    except ImportError:
        return None
    try:
        from langgraph.store.base import InvalidNamespaceError
    except ImportError:  # older langgraph
        InvalidNamespaceError = ValueError  # noqa: N806
    errors = {"namespace": InvalidNamespaceError, "filter": ValueError, "invalid": ValueError}

    def to_datetime(micros):
        return datetime.datetime.fromtimestamp(micros / 1_000_000, tz=datetime.timezone.utc)

    def labels(namespace):
        # Checked here as well as in Rust: the JSON encoder would turn a non-string label (a
        # UUID, any object's repr) into a string that names some other namespace.
        for label in namespace:
            if type(label) is not str:
                raise InvalidNamespaceError(f"Namespace label {label!r} must be a non-empty string without periods")
        return list(namespace)

    def key(op):
        if type(op.key) is not str:
            raise ValueError(f"Store keys must be strings, got {op.key!r}")
        return op.key

    def encode(op):
        if isinstance(op, GetOp):
            return {"op": "get", "namespace": labels(op.namespace), "key": key(op), "refresh_ttl": bool(getattr(op, "refresh_ttl", False))}
        if isinstance(op, PutOp):
            index = op.index if op.index is False or op.index is None else list(op.index)
            return {"op": "put", "namespace": labels(op.namespace), "key": key(op), "value": op.value, "index": index, "ttl": getattr(op, "ttl", None)}
        if isinstance(op, SearchOp):
            return {
                "op": "search",
                "namespace_prefix": labels(op.namespace_prefix),
                "filter": op.filter,
                "limit": op.limit,
                "offset": op.offset,
                "query": op.query,
                "refresh_ttl": bool(getattr(op, "refresh_ttl", False)),
            }
        if isinstance(op, ListNamespacesOp):
            conditions = [{"match_type": c.match_type, "path": labels(c.path)} for c in op.match_conditions or ()]
            return {"op": "list_namespaces", "conditions": conditions, "max_depth": op.max_depth, "limit": op.limit, "offset": op.offset}
        raise NotImplementedError(f"store operation {type(op).__name__}")

    def item(found, cls):
        fields = {"namespace": tuple(found["namespace"]), "key": found["key"], "value": found["value"], "created_at": to_datetime(found["created_at"]), "updated_at": to_datetime(found["updated_at"])}
        if cls is SearchItem:
            fields["score"] = found.get("score")
        return cls(**fields)

    def call(method, payload):
        kind, answer = method(payload)
        if kind != "ok":
            raise errors.get(kind, RuntimeError)(answer)
        return json.loads(answer)

    def plan(ops):
        """The operations as JSON and, per operation, the texts `store.index` embeds for it
        (a put's fields, a search's query; None when nothing is embedded)."""
        encoded = [encode(op) for op in ops]
        if graphward_host.EMBEDDINGS is None:
            return encoded, [None] * len(encoded)
        return encoded, call(native.plan, dumps(encoded))

    def attach(encoded, texts, documents, queries):
        """Puts each put's vectors and each search's query vector into its operation."""
        documents, queries = iter(documents), iter(queries)
        for operation, wanted in zip(encoded, texts):
            if wanted is None:
                continue
            if operation["op"] == "put":
                operation["vectors"] = [next(documents) for _ in wanted]
            else:
                operation["query_vector"] = next(queries)

    def document_texts(encoded, texts):
        return [text for operation, wanted in zip(encoded, texts) if wanted is not None and operation["op"] == "put" for text in wanted]

    def query_texts(encoded, texts):
        return [wanted[0] for operation, wanted in zip(encoded, texts) if wanted is not None and operation["op"] == "search"]

    def results(ops, encoded):
        found = []
        for op, result in zip(ops, call(native.batch, dumps(encoded))):
            if isinstance(op, GetOp):
                found.append(item(result, Item) if result else None)
            elif isinstance(op, SearchOp):
                found.append([item(each, SearchItem) for each in result])
            elif isinstance(op, ListNamespacesOp):
                found.append([tuple(labels) for labels in result])
            else:
                found.append(None)
        return found

    class GraphwardStore(BaseStore):
        """LangGraph's BaseStore over graphward's own store: items a graph writes are what
        `/store` serves, and the other way round. With `store.index`, puts are embedded here
        (one call for a batch's texts) and searches with a `query` ranked by it."""

        supports_ttl = True
        ttl_config = json.loads(native.ttl_config())

        def batch(self, ops):
            ops = list(ops)
            encoded, texts = plan(ops)
            embeddings = graphward_host.EMBEDDINGS
            documents = document_texts(encoded, texts)
            queries = query_texts(encoded, texts)
            document_vectors = graphward_host.vectors(embeddings.embed_documents(documents), len(documents)) if documents else []
            query_vectors = graphward_host.vectors([embeddings.embed_query(query) for query in queries], len(queries))
            attach(encoded, texts, document_vectors, query_vectors)
            return results(ops, encoded)

        async def abatch(self, ops):
            ops = list(ops)
            encoded, texts = plan(ops)
            documents = document_texts(encoded, texts)
            queries = query_texts(encoded, texts)
            document_vectors = await graphward_host.embed_documents(documents) if documents else []
            query_vectors = [await graphward_host.embed_query(query) for query in queries]
            attach(encoded, texts, document_vectors, query_vectors)
            return results(ops, encoded)

    return GraphwardStore()


# --------------------------------------------------------------------------------------------
# Webhooks


def _is_global(address):
    """Globally routable: the rule of `runs/webhook.rs` (`is_global`). IPv6 forms that carry an
    IPv4 address (mapped, compatible, NAT64, 6to4) are judged by it; Teredo is refused."""
    import ipaddress

    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address):
        packed = ip.packed
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif packed[:12] == bytes(12) and ip not in (ipaddress.IPv6Address("::"), ipaddress.IPv6Address("::1")):
            ip = ipaddress.IPv4Address(packed[12:])
        elif ip in ipaddress.IPv6Network("64:ff9b::/96"):
            ip = ipaddress.IPv4Address(packed[12:])
        elif ip.sixtofour is not None:
            ip = ip.sixtofour
        elif ip.teredo is not None:
            return False
    return ip.is_global and not ip.is_multicast


# Webhooks are sent from their own few threads, never the loop's default executor (which
# sync graph nodes use), and at most this many wait or run at once (more are dropped).
_WEBHOOK_POOL = None
_WEBHOOK_SLOTS = None
_WEBHOOK_DEADLINE = 30.0


def _webhook_pool():
    global _WEBHOOK_POOL, _WEBHOOK_SLOTS
    if _WEBHOOK_POOL is None:
        import concurrent.futures

        _WEBHOOK_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="graphward-webhook")
        _WEBHOOK_SLOTS = asyncio.Semaphore(256)
    return _WEBHOOK_POOL, _WEBHOOK_SLOTS


def _post_pinned(url, body, allow_private, headers=None):
    """POSTs `body` to `url` over one connection to one address, resolved once here: every
    resolved address must be global (unless `allow_private`), the request goes to the first,
    TLS still verifies the URL's host name, a redirect is an answer (never followed), only the
    status line and headers are read, and the whole exchange has one deadline. `headers`
    (`webhooks.headers` of langgraph.json) are sent too."""
    import http.client
    import socket
    import ssl
    import threading
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    host, scheme = parts.hostname, parts.scheme.lower()
    if not host or scheme not in ("http", "https") or parts.username is not None:
        return "blocked: not an http(s) URL without credentials"
    port = parts.port or (443 if scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as error:
        return f"cannot resolve {host}: {error}"
    if not infos:
        return f"cannot resolve {host}"
    if not allow_private and not all(_is_global(info[4][0]) for info in infos):
        return "blocked: the host resolves to a loopback, private or other non-global address"
    family, kind, protocol, _, address = infos[0]
    sock = socket.socket(family, kind, protocol)
    sock.settimeout(_WEBHOOK_DEADLINE)

    def cut_off():
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    deadline = threading.Timer(_WEBHOOK_DEADLINE, cut_off)
    deadline.start()
    try:
        sock.connect(address)
        if scheme == "https":
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
        connection = http.client.HTTPSConnection(host, port) if scheme == "https" else http.client.HTTPConnection(host, port)
        connection.sock = sock
        path = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
        connection.request("POST", path, body=body, headers={**(headers or {}), "content-type": "application/json", "host": parts.netloc})
        return connection.getresponse().status
    finally:
        deadline.cancel()
        sock.close()


async def send_webhook(url, payload, allow_private=False, headers=None):
    """POSTs the run's JSON to `url` with `headers` (see `_post_pinned`). Returns the HTTP
    status, or why not."""
    pool, slots = _webhook_pool()
    if slots.locked():
        log.warning("webhook to %s dropped: too many webhooks in flight", url)
        return "dropped: too many webhooks in flight"
    body = dumps(payload).encode()
    async with slots:
        try:
            outcome = await asyncio.get_running_loop().run_in_executor(pool, _post_pinned, url, body, allow_private, headers)
        except Exception as error:  # noqa: BLE001 - reported, never raised
            return graphward_host.describe_error(error)
    if isinstance(outcome, str) and outcome.startswith("blocked"):
        log.warning("webhook to %s skipped: %s", url, outcome)
    return outcome
