"""The Python side of graphward, compiled into the binary.

Rust calls the functions of this module on the interpreter thread, which owns the one asyncio
loop. Nothing here blocks: work that may wait is a coroutine driven by that loop.

Entry points used by Rust (src/python/):
  setup(...)           prepare sys.path, the user's environment and `env`, before user imports
  install_shim(...)    register the embedded langgraph_sdk when the real one is not importable
  load_graphs(specs)   import every graph of langgraph.json (coroutine)
  submit(obj, reply)   the async bridge: run one call as a Task, report its result through `reply`
  continue_task(...)   finish as a Task a coroutine whose first step Rust already ran
  load_embeddings(...) load `store.index.embed` at start-up
  embed_documents(t)   the vectors of a put's texts (coroutine); embed_query(q) likewise
"""

from __future__ import annotations

import asyncio
import contextlib
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


# The stand-in's sources, kept also when the real SDK is used (its `runtime` module fills in
# for an SDK older than `ServerRuntime`).
_SHIM_SOURCES = {}


def install_shim(sources):
    """Registers the embedded `langgraph_sdk` unless the real package is importable.

    Returns "real" or "shim", for the start-up log.
    """
    _SHIM_SOURCES.update(sources)
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


def jsonable(value):
    """`value` as plain JSON data (through the encoder, with `str` for anything else)."""
    import json

    return json.loads(json.dumps(value, default=str))


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


# --------------------------------------------------------------------------------------------
# The store's embeddings (`store.index.embed`)


EMBEDDINGS = None
"""LangChain `Embeddings` for `store.index` (None without an index); the graphs' store uses it too."""


def load_embeddings(raw, file, module_name, attribute, provider):
    """Loads `store.index.embed`: a function `texts -> vectors` (sync or async), a LangChain
    `Embeddings` object, or (`provider`) a `provider:model` string for LangChain's
    `init_embeddings`. Wrapped the way LangGraph's own stores wrap it."""
    global EMBEDDINGS
    key = "store.index.embed"
    try:
        from langgraph.store.base.embed import ensure_embeddings
    except ImportError as error:
        raise StartupError(f"`{key}`: semantic search needs langgraph in the app's environment: {describe_error(error)}") from None
    if provider:
        try:
            EMBEDDINGS = ensure_embeddings(raw)
        except ImportError as error:
            package = raw.split(":", 1)[0].replace("_", "-")
            raise StartupError(
                f"`{key}`: `{raw}` is built by LangChain's init_embeddings, which needs `pip install langchain langchain-{package}`: {describe_error(error)}"
            ) from None
        except BaseException as error:  # noqa: BLE001 - becomes a start-up error
            raise StartupError(f"`{key}`: cannot build `{raw}`: {describe_error(error)}") from None
        return
    target = load_object(key, raw, file, module_name, attribute)
    is_embeddings = all(hasattr(target, name) for name in ("embed_documents", "embed_query"))
    if not is_embeddings and not callable(target):
        raise StartupError(f"`{key}`: `{raw}` is {type(target).__name__}, not a function `texts -> list of vectors` or a LangChain Embeddings object")
    try:
        EMBEDDINGS = ensure_embeddings(target)
    except BaseException as error:  # noqa: BLE001 - becomes a start-up error
        raise StartupError(f"`{key}`: `{raw}` cannot be used as embeddings: {describe_error(error)}") from None


def vectors(found, count):
    """Plain lists of floats (numpy arrays and the like are converted), one per text."""
    found = [[float(component) for component in vector] for vector in found]
    if len(found) != count:
        raise ValueError(f"the embeddings returned {len(found)} vectors for {count} texts")
    return found


async def embed_documents(texts):
    """The vectors of `texts` (a put's indexed fields), in one call of the embeddings."""
    return vectors(await EMBEDDINGS.aembed_documents(list(texts)), len(texts))


async def embed_query(text):
    """The vector of a search's query."""
    return vectors([await EMBEDDINGS.aembed_query(text)], 1)[0]


def _is_compiled_graph(obj):
    return hasattr(obj, "astream") and hasattr(obj, "get_graph") and hasattr(obj, "aget_state")


class _Factory:
    """A graph factory of `langgraph.json`, called for each use of its graph, as the reference
    does: with that use's config (a parameter named `config` or of any other annotation) and/or
    a `langgraph_sdk.runtime.ServerRuntime` (a parameter annotated with it, or named `runtime`
    without annotation). What it returns may be a compiled graph, a StateGraph, an awaitable
    of one, or a (async) context manager yielding one, entered for the duration of the use."""

    def __init__(self, function, attribute):
        self.function = function
        self.attribute = attribute
        self.parameters = []
        try:
            signature = inspect.signature(function)
        except (TypeError, ValueError):
            return
        for parameter in signature.parameters.values():
            if parameter.kind not in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD) or parameter.default is not parameter.empty:
                continue
            annotation = parameter.annotation
            text = "" if annotation is parameter.empty else (annotation if isinstance(annotation, str) else str(annotation))
            wants_runtime = "ServerRuntime" in text or "_ExecutionRuntime" in text or "_ReadRuntime" in text or (not text and parameter.name == "runtime")
            self.parameters.append("runtime" if wants_runtime else "config")

    @property
    def takes_runtime(self):
        return "runtime" in self.parameters

    @contextlib.asynccontextmanager
    async def build(self, access, config, user, context):
        runtime = _server_runtime(access, user, context) if self.takes_runtime else None
        arguments = [runtime if kind == "runtime" else config for kind in self.parameters]
        result = self.function(*arguments)
        if inspect.isawaitable(result):
            result = await result
        if hasattr(result, "__aenter__"):
            async with result as graph:
                yield self._checked(graph)
        elif hasattr(result, "__enter__") and not _is_compiled_graph(result):
            with result as graph:
                yield self._checked(graph)
        else:
            yield self._checked(result)

    def _checked(self, made):
        if hasattr(made, "compile") and hasattr(made, "add_node"):
            made = made.compile()
        if not _is_compiled_graph(made):
            raise TypeError(f"graph factory `{self.attribute}` returned {type(made).__name__}, not a compiled graph")
        return made


class _Graph:
    """One graph of `langgraph.json`: a compiled graph, or a factory with the graph its
    start-up check built (the template introspection falls back to nothing: every use builds)."""

    __slots__ = ("factory", "graph")

    def __init__(self, graph, factory=None):
        self.graph = graph
        self.factory = factory


def _runtime_classes():
    """(execution, read) runtime classes: the installed SDK's, else the stand-in's."""
    try:
        from langgraph_sdk import runtime
    except ImportError:  # an SDK older than ServerRuntime: the stand-in's module, privately
        runtime = sys.modules.get("graphward_sdk_runtime")
        if runtime is None:
            runtime = types.ModuleType("graphward_sdk_runtime")
            exec(compile(_SHIM_SOURCES["langgraph_sdk.runtime"][1], "<graphward>/langgraph_sdk/runtime.py", "exec"), runtime.__dict__)  # noqa: S102
            sys.modules["graphward_sdk_runtime"] = runtime
    return runtime._ExecutionRuntime, runtime._ReadRuntime


def _server_runtime(access, user, context):
    execution, read = _runtime_classes()
    runner = sys.modules.get("graphward_runner")
    store = getattr(runner, "STORE", None)
    if access == "threads.create_run":
        return execution(access_context=access, user=user, store=store, context=context)
    return read(access_context=access, user=user, store=store)


def user_object(user):
    """The user a graph sees (`langgraph_auth_user`, `ServerRuntime.user`): the auth host's
    user proxy (attribute and mapping access both work), rebuilt from the identity Rust keeps."""
    if not user:
        return None
    auth = sys.modules.get("graphward_auth")
    if auth is None:
        return dict(user)
    return auth._wrap_user(dict(user))


_IDENTITY_KEYS = ("langgraph_auth_user", "langgraph_auth_user_id", "langgraph_auth_permissions")


@contextlib.asynccontextmanager
async def use_graph(graph_id, access, config=None, user=None, context=None):
    """The graph `graph_id` for one use (`access`: the ServerRuntime access context): the
    compiled graph, or what its factory builds for this config, user and run context (a
    context-manager factory's resources stay open until the use ends)."""
    entry = _GRAPHS[graph_id]
    if entry.factory is None:
        yield entry.graph
        return
    config = dict(config or {})
    # The identity keys are the server's: whatever a stored config holds (an assistant's, a
    # thread's), the factory sees the user of this use.
    configurable = {key: value for key, value in (config.get("configurable") or {}).items() if key not in _IDENTITY_KEYS}
    configurable["langgraph_auth_user"] = user_object(user)
    if user:
        configurable["langgraph_auth_user_id"] = user.get("identity")
        configurable["langgraph_auth_permissions"] = list(user.get("permissions") or [])
    config["configurable"] = configurable
    async with entry.factory.build(access, config, user_object(user), context) as graph:
        yield graph


async def _resolve_graph(key, obj, attribute):
    """A compiled graph, a StateGraph (compiled here) or a factory (checked once here with an
    empty config; called again for every use)."""
    if _is_compiled_graph(obj):
        return _Graph(obj)
    if hasattr(obj, "compile") and hasattr(obj, "add_node"):
        return _Graph(obj.compile())
    if callable(obj) and not isinstance(obj, type):
        factory = _Factory(obj, attribute)
        if factory.takes_runtime:
            # A factory that asks for the runtime may need a user (`ensure_user`), which
            # start-up does not have: it is first called by its first use.
            return _Graph(None, factory)
        try:
            async with factory.build("assistants.read", {"configurable": {}}, None, None) as graph:
                return _Graph(graph, factory)
        except StartupError:
            raise
        except BaseException as error:  # noqa: BLE001 - becomes a start-up error
            raise StartupError(f"`{key}`: graph factory `{attribute}` failed: {describe_error(error)}") from error
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
        entry = await _resolve_graph(key, obj, attribute)
        _GRAPHS[graph_id] = entry
        name = getattr(entry.graph, "name", None) if entry.graph is not None else None
        loaded.append({"graph_id": graph_id, "name": str(name or "LangGraph")})
    return loaded


def _is_user_module(module, roots):
    """Whether `module` is the app's own code (under the config folder or a local dependency),
    which a reload imports again; installed packages (a venv inside the app folder included)
    and graphward's own modules are not."""
    file = getattr(module, "__file__", None)
    if not isinstance(file, str) or file.startswith("<"):
        return False
    path = os.path.abspath(file)
    parts = path.split(os.sep)
    if "site-packages" in parts or "dist-packages" in parts:
        return False
    for prefix in {sys.prefix, sys.base_prefix, os.environ.get("VIRTUAL_ENV") or sys.prefix}:
        if path.startswith(os.path.abspath(prefix) + os.sep):
            return False
    return any(path.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


async def reload(roots, graph_specs, auth_spec, app_spec):
    """Imports the app's code again (`dev` hot reload): the graphs, `auth.path` and `http.app`,
    from fresh modules. Everything is imported and checked before anything is swapped in; on
    any error the old code keeps serving (and the old modules are restored) and the error is
    raised as one line. Runs already executing keep the graph object they started with.
    Returns the graphs' names and the app's routes."""
    saved = dict(sys.modules)
    for name, module in list(sys.modules.items()):
        if name.startswith("graphward_user.") or (not name.startswith("graphward_") and _is_user_module(module, roots)):
            del sys.modules[name]
    importlib.invalidate_caches()
    try:
        graphs = {}
        for graph_id, raw, file, module_name, attribute in graph_specs:
            key = f"graphs.{graph_id}"
            graphs[graph_id] = await _resolve_graph(key, load_object(key, raw, file, module_name, attribute), attribute)
        auth_host = None
        if auth_spec is not None:
            auth_host = sys.modules["graphward_auth"].load_auth(*auth_spec)
        prepared_app = None
        if app_spec is not None:
            prepared_app = await sys.modules["graphward_asgi"].prepare_app(*app_spec)
    except BaseException:
        for name in [name for name in sys.modules if name not in saved]:
            del sys.modules[name]
        sys.modules.update(saved)
        raise
    # Swapped in together, between two steps of the loop: a request sees the old code or the new.
    _GRAPHS.clear()
    _GRAPHS.update(graphs)
    if auth_host is not None:
        sys.modules["graphward_auth"].install(auth_host)
    app = sys.modules["graphward_asgi"].install(prepared_app) if prepared_app is not None else None
    names = [str(getattr(entry.graph, "name", None) or "LangGraph") if entry.graph is not None else "LangGraph" for entry in graphs.values()]
    return {"graphs": names, "app": app}


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


def _introspected(graph_id, use):
    """The graph for an introspection (`assistants.read`): `use` holds the assistant's config
    and the caller's user, which a factory builds it for."""
    use = use or {}
    return use_graph(graph_id, "assistants.read", use.get("config"), use.get("user"))


async def graph_json(graph_id, xray, use=None):
    """The drawable graph: `Graph.to_json()` without the `id` of each node's `data`; `None`
    when the graph cannot be drawn."""
    async with _introspected(graph_id, use) as graph:
        try:
            drawable = graph.get_graph(xray=xray)
            data = drawable.to_json()
        except Exception:  # noqa: BLE001 - any failure means "not drawable"
            return None
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
    """The state as a JSON schema: one field per state channel (default `None`), typed by the
    channel's update type (`Any` where pydantic cannot describe it). Built from the compiled graph's
    channels rather than the state class, which pydantic refuses for a `typing.TypedDict` on
    Python < 3.12."""
    from typing import Any

    from pydantic import create_model

    builder = getattr(graph, "builder", None)
    names = [name for name in (getattr(builder, "channels", None) or {}) if not name.startswith("_")]
    if not names:
        return None
    channels = getattr(graph, "channels", {}) or {}
    fields = {}
    for name in names:
        update = getattr(channels.get(name), "UpdateType", Any)
        fields[name] = (update, None)
    title = graph.get_name("state") if hasattr(graph, "get_name") else "State"
    try:
        return create_model(title, **fields).model_json_schema()
    except Exception:  # noqa: BLE001 - a type pydantic cannot describe: every field untyped
        return create_model(title, **{name: (Any, None) for name in names}).model_json_schema()


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


async def graph_schemas(graph_id, use=None):
    async with _introspected(graph_id, use) as graph:
        return {"graph_id": graph_id, **_schemas_of(graph)}


async def graph_subgraphs(graph_id, namespace, recurse, use=None):
    found = {}
    async with _introspected(graph_id, use) as graph:
        try:
            for name, subgraph in graph.get_subgraphs(namespace=namespace, recurse=recurse):
                found[name] = _schemas_of(subgraph)
        except (ValueError, KeyError):
            return {}
    return found
