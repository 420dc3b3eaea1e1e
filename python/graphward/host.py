"""The Python side of graphward, compiled into the binary.

Rust calls the functions of this module on the interpreter thread, which owns the one asyncio
loop. Nothing here blocks: work that may wait is a coroutine driven by that loop.

Entry points used by Rust (src/python/):
  setup(...)           prepare sys.path, the user's environment and `env`, before user imports
  install_shim(...)    register the embedded langgraph_sdk when the real one is not importable
  load_graphs(specs)   import every graph of langgraph.json (coroutine)
  submit(obj, reply)   the async bridge: run one call as a Task, report its result through `reply`
  continue_task(...)   finish as a Task a coroutine whose first step Rust already ran
"""

from __future__ import annotations

import asyncio
import contextvars
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import inspect
import os
import site
import sys
import traceback
import types


class StartupError(Exception):
    """A user-facing start-up failure; its message is printed as is, on one line."""


# --------------------------------------------------------------------------------------------
# Environment


def setup(config_dir, local_dependencies, venv, env):
    """Applies `env`, adds the user's venv and the app folders to `sys.path`.

    Returns a one-line description of the interpreter for the start-up log.
    """
    for name, value in env:
        os.environ[name] = value
    if venv:
        version = f"python{sys.version_info.major}.{sys.version_info.minor}"
        site_packages = os.path.join(venv, "lib", version, "site-packages")
        if not os.path.isdir(site_packages):
            lib = os.path.join(venv, "lib")
            found = sorted(os.listdir(lib)) if os.path.isdir(lib) else []
            raise StartupError(
                f"virtual environment {venv} has no {version} site-packages "
                f"(found: {', '.join(found) or 'nothing'}); graphward embeds Python "
                f"{sys.version_info.major}.{sys.version_info.minor}, so create the venv with that version"
            )
        # Like an activated venv: its packages win over the base interpreter's, which are
        # dropped unless the venv includes system site-packages (pyvenv.cfg).
        base_sites = set(site.getsitepackages() + [site.getusersitepackages()])
        include_system = False
        config_file = os.path.join(venv, "pyvenv.cfg")
        if os.path.isfile(config_file):
            with open(config_file, encoding="utf-8") as handle:
                for line in handle:
                    key, _, value = line.partition("=")
                    if key.strip() == "include-system-site-packages":
                        include_system = value.strip().lower() == "true"
        if not include_system:
            sys.path[:] = [entry for entry in sys.path if entry not in base_sites]
        before = list(sys.path)
        site.addsitedir(site_packages)
        added = [entry for entry in sys.path if entry not in before]
        first_base = next((index for index, entry in enumerate(before) if entry in base_sites), len(before))
        sys.path[:] = before[:first_base] + added + before[first_base:]
        python = os.path.join(venv, "bin", "python")
        if os.path.exists(python):
            sys.executable = python
    # The app folder and local dependencies come first, like the reference's working directory.
    for folder in reversed([config_dir, *local_dependencies]):
        if folder in sys.path:
            sys.path.remove(folder)
        sys.path.insert(0, folder)
    return f"Python {sys.version.split()[0]} ({sys.prefix})"


class _EmbeddedFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves modules whose source is compiled into the binary."""

    def __init__(self, sources):
        # name -> (is_package, source)
        self._sources = dict(sources)

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in self._sources:
            return None
        is_package, _ = self._sources[fullname]
        return importlib.machinery.ModuleSpec(
            fullname, self, origin=f"<graphward>/{fullname}", is_package=is_package
        )

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        is_package, source = self._sources[module.__name__]
        if is_package:
            module.__path__ = []
        code = compile(source, f"<graphward>/{module.__name__.replace('.', '/')}.py", "exec")
        exec(code, module.__dict__)


def install_shim(sources):
    """Registers the embedded `langgraph_sdk` unless the real package is importable.

    Returns "real" or "shim", for the start-up log.
    """
    try:
        real = importlib.util.find_spec("langgraph_sdk")
    except (ImportError, ValueError):
        real = None
    if real is not None:
        return "real"
    sys.meta_path.append(_EmbeddedFinder(sources))
    return "shim"


# --------------------------------------------------------------------------------------------
# The async bridge (see src/python/bridge.rs)


async def _resume(coro, yielded):
    return await _Continue(coro, yielded)


class _Continue:
    """An awaitable that continues a coroutine whose first step already ran."""

    __slots__ = ("_coro", "_yielded")

    def __init__(self, coro, yielded):
        self._coro = coro
        self._yielded = yielded

    def __await__(self):
        coro, yielded = self._coro, self._yielded
        while True:
            try:
                sent = yield yielded
            except BaseException as error:  # noqa: BLE001 - forwarded into the coroutine
                try:
                    yielded = coro.throw(error)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    yielded = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


# Tasks of suspended calls, by the caller's token, so Rust can cancel one that times out.
_TASKS = {}


def cancel(token):
    """Cancels the call with this token if it is still running (it then replies cancelled)."""
    task = _TASKS.pop(token, None)
    if task is not None:
        task.cancel()


def _finish(task, reply, token):
    _TASKS.pop(token, None)
    if task.cancelled():
        reply(False, asyncio.CancelledError())
        return
    error = task.exception()
    if error is None:
        reply(True, task.result())
    else:
        reply(False, error)


def _needs_task(error):
    """Errors of libraries that need a current Task (sniffio, anyio cancel scopes), which the
    eager first step does not have."""
    name = type(error).__name__
    text = str(error)
    return name == "AsyncLibraryNotFoundError" or (
        isinstance(error, RuntimeError) and ("current task" in text or "cancel scope" in text or "no running event loop" in text)
    )


def _as_task(coroutine, reply, token, context):
    loop = asyncio.get_running_loop()
    if sys.version_info >= (3, 11):
        task = loop.create_task(coroutine, context=context)
    else:
        # No `context=` before 3.11: a Task made inside `context` runs in a copy of it, which
        # holds every value the first step set (nothing else reads `context` afterwards).
        task = context.run(loop.create_task, coroutine)
    if token:
        _TASKS[token] = task
    task.add_done_callback(lambda done: _finish(done, reply, token))


def continue_task(coro, yielded, reply, token, context):
    """Finishes as a Task (in `context`) a coroutine whose first step Rust already ran."""
    _as_task(_resume(coro, yielded), reply, token, context)


def submit(obj, reply, token=0):
    """Runs one bridged call as a Task from the start, in a fresh contextvars context (the
    eager first step of short calls happens in Rust: bridge.rs `eager_job`). `reply(ok, value)`
    is called exactly once, on this thread; a non-coroutine `obj` is the result itself."""
    if not inspect.iscoroutine(obj):
        reply(True, obj)
        return
    _as_task(obj, reply, token, contextvars.Context())


def describe_error(error):
    """`Type: message`, one line, for logs and start-up errors."""
    if isinstance(error, StartupError):
        return str(error)
    message = str(error).strip().splitlines()
    text = f"{type(error).__name__}: {message[0]}" if message else type(error).__name__
    return text


def format_traceback(error):
    return "".join(traceback.format_exception(type(error), error, error.__traceback__))


# --------------------------------------------------------------------------------------------
# Graphs

_GRAPHS = {}


def _user_frame(error, filename):
    """`file.py:line` of the deepest frame of the traceback that is in the user's file."""
    if isinstance(error, SyntaxError) and error.filename:
        return f"{os.path.basename(error.filename)}:{error.lineno}"
    where = None
    for frame in traceback.extract_tb(error.__traceback__):
        if filename is None or os.path.abspath(frame.filename) == filename:
            where = f"{os.path.basename(frame.filename)}:{frame.lineno}"
    return where


def _register_parents(name):
    """Empty parent packages of a synthetic module name (`graphward_user`, …), so the module
    imports by its name: pickle (`checkpointer.serde.pickle_fallback`) finds a class defined
    in a graph file that way."""
    parts = name.split(".")
    for end in range(1, len(parts)):
        parent = ".".join(parts[:end])
        if parent not in sys.modules:
            package = types.ModuleType(parent)
            package.__path__ = []
            sys.modules[parent] = package


def load_object(key, raw, file, module_name, attribute):
    """Imports the module of a `langgraph.json` location and returns its attribute."""
    if file is not None:
        if not os.path.isfile(file):
            raise StartupError(f"`{key}`: file {file} not found")
        stem = os.path.splitext(os.path.basename(file))[0]
        synthetic = f"graphward_user.{key.replace('.', '_')}.{stem}"
        spec = importlib.util.spec_from_file_location(synthetic, file)
        if spec is None or spec.loader is None:
            raise StartupError(f"`{key}`: cannot load {file} as Python")
        module = importlib.util.module_from_spec(spec)
        sys.modules[synthetic] = module
        _register_parents(synthetic)
        try:
            spec.loader.exec_module(module)
        except BaseException as error:  # noqa: BLE001 - becomes a start-up error
            sys.modules.pop(synthetic, None)
            where = _user_frame(error, os.path.abspath(file))
            at = f" (at {where})" if where else ""
            raise StartupError(f"`{key}`: importing {raw.rsplit(':', 1)[0]} failed: {describe_error(error)}{at}") from error
    else:
        try:
            module = importlib.import_module(module_name)
        except BaseException as error:  # noqa: BLE001 - becomes a start-up error
            where = _user_frame(error, None)
            at = f" (at {where})" if where else ""
            raise StartupError(f"`{key}`: importing module {module_name} failed: {describe_error(error)}{at}") from error
    try:
        return getattr(module, attribute)
    except AttributeError:
        where = file if file is not None else module_name
        raise StartupError(f"`{key}`: {where} has no attribute `{attribute}`; check the name after the `:`") from None


def _is_compiled_graph(obj):
    return hasattr(obj, "astream") and hasattr(obj, "get_graph") and hasattr(obj, "aget_state")


async def _resolve_graph(key, obj, attribute):
    """A compiled graph, a StateGraph (compiled here) or a factory (called once to check it)."""
    if _is_compiled_graph(obj):
        return obj
    if hasattr(obj, "compile") and hasattr(obj, "add_node"):
        return obj.compile()
    if callable(obj) and not isinstance(obj, type):
        try:
            parameters = [
                p for p in inspect.signature(obj).parameters.values()
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
            ]
        except (TypeError, ValueError):
            parameters = []
        try:
            result = obj({"configurable": {}}) if parameters else obj()
            if inspect.isawaitable(result):
                result = await result
            if hasattr(result, "__aenter__"):
                async with result as graph:
                    made = graph
            elif hasattr(result, "__enter__") and not _is_compiled_graph(result):
                with result as graph:
                    made = graph
            else:
                made = result
        except StartupError:
            raise
        except BaseException as error:  # noqa: BLE001 - becomes a start-up error
            raise StartupError(f"`{key}`: graph factory `{attribute}` failed: {describe_error(error)}") from error
        if hasattr(made, "compile") and hasattr(made, "add_node"):
            made = made.compile()
        if not _is_compiled_graph(made):
            raise StartupError(f"`{key}`: graph factory `{attribute}` returned {type(made).__name__}, not a compiled graph")
        return made
    raise StartupError(
        f"`{key}`: `{attribute}` is a {type(obj).__name__}, not a compiled graph or a graph factory; "
        "point it at the result of `builder.compile()`"
    )


async def load_graphs(specs):
    """Imports every graph. `specs`: list of (graph_id, raw, file, module, attribute).

    Returns a list of dicts with `graph_id` and `name` (the compiled graph's name).
    """
    loaded = []
    for graph_id, raw, file, module_name, attribute in specs:
        key = f"graphs.{graph_id}"
        obj = load_object(key, raw, file, module_name, attribute)
        graph = await _resolve_graph(key, obj, attribute)
        _GRAPHS[graph_id] = (obj, graph)
        loaded.append({"graph_id": graph_id, "name": str(getattr(graph, "name", None) or "LangGraph")})
    return loaded


def versions():
    """Installed versions of the packages /info reports."""
    from importlib import metadata

    found = {}
    for package in ("langgraph", "langgraph-sdk"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    return found


# --------------------------------------------------------------------------------------------
# Graph introspection (/assistants/{id}/graph, /schemas, /subgraphs)


class GraphNotDrawable(Exception):
    """The graph cannot produce a drawable representation."""


def _compiled(graph_id):
    return _GRAPHS[graph_id][1]


def graph_json(graph_id, xray):
    """The drawable graph: `Graph.to_json()` without the `id` of each node's `data`."""
    graph = _compiled(graph_id)
    try:
        drawable = graph.get_graph(xray=xray)
        data = drawable.to_json()
    except Exception as error:  # noqa: BLE001 - any failure means "not drawable"
        raise GraphNotDrawable(describe_error(error)) from error
    for node in data.get("nodes", []):
        if isinstance(node.get("data"), dict):
            node["data"].pop("id", None)
    edges = []
    for edge in data.get("edges", []):
        edges.append({key: edge[key] for key in ("source", "target", "data", "conditional") if key in edge})
    data["edges"] = edges
    return data


def _schema(produce):
    try:
        schema = produce()
    except Exception:  # noqa: BLE001 - a schema the graph cannot produce is null
        return None
    return schema


def _state_schema(graph):
    builder = getattr(graph, "builder", None)
    state = getattr(builder, "state_schema", None) or getattr(builder, "schema", None)
    if state is None:
        return None
    from pydantic import TypeAdapter

    return TypeAdapter(state).json_schema()


def _config_schema(graph):
    """The schema of `configurable` only, without the server's own keys; `{}` when none."""
    full = graph.get_config_jsonschema()
    definitions = full.get("$defs", {})
    configurable = full.get("properties", {}).get("configurable")
    if not configurable:
        return {}
    reference = configurable.get("$ref") or next((item.get("$ref") for item in configurable.get("allOf", []) if "$ref" in item), None)
    if reference:
        configurable = definitions.get(reference.rsplit("/", 1)[-1], {})
    configurable = dict(configurable)
    properties = {
        key: value
        for key, value in (configurable.get("properties") or {}).items()
        if key not in ("thread_id", "checkpoint_id", "checkpoint_ns", "checkpoint_map") and not key.startswith("__")
    }
    if not properties:
        return {}
    configurable["properties"] = properties
    if definitions:
        configurable.setdefault("$defs", definitions)
    return configurable


def _schemas_of(graph):
    return {
        "input_schema": _schema(graph.get_input_jsonschema),
        "output_schema": _schema(graph.get_output_jsonschema),
        "state_schema": _schema(lambda: _state_schema(graph)),
        "config_schema": _schema(lambda: _config_schema(graph)),
        "context_schema": _schema(graph.get_context_jsonschema) if getattr(graph, "context_schema", None) is not None else None,
    }


def graph_schemas(graph_id):
    return {"graph_id": graph_id, **_schemas_of(_compiled(graph_id))}


def graph_subgraphs(graph_id, namespace, recurse):
    graph = _compiled(graph_id)
    found = {}
    try:
        for name, subgraph in graph.get_subgraphs(namespace=namespace, recurse=recurse):
            found[name] = _schemas_of(subgraph)
    except (ValueError, KeyError):
        return {}
    return found
