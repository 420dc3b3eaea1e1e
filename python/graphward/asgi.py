"""The user's `http.app` (an ASGI app: Starlette, FastAPI, …), served beside the API.

Rust (src/server/custom.rs) decides which requests are the app's, authenticates them when
`http.enable_custom_route_auth` is set, and calls `serve` with the request; the response's
start and body chunks go back through `sink` as the app sends them (streaming responses
stream). The app's lifespan runs once at start-up.

Loaded by Rust as module `graphward_asgi`, after `graphward_host`.
"""

from __future__ import annotations

import asyncio
import logging

import graphward_host

log = logging.getLogger("graphward.http")

APP = None
# The lifespan task and the queue the app's lifespan receives from (None: no lifespan).
_LIFESPAN = None


def _inspect_routes(app):
    """The app's routes as `(path, methods, prefix)` for Rust's matcher, or None when the app
    does not expose Starlette-style routes (then it only gets what the API does not serve)."""
    routes = getattr(app, "routes", None)
    if routes is None:
        router = getattr(app, "router", None)
        routes = getattr(router, "routes", None)
    if routes is None:
        return None
    found = []
    for route in routes:
        path = getattr(route, "path", None)
        if not isinstance(path, str):
            continue
        kind = type(route).__name__
        if kind == "Mount" or (hasattr(route, "app") and hasattr(route, "routes") and not hasattr(route, "endpoint")):
            found.append({"path": path or "/", "methods": None, "prefix": True})
        elif kind in ("WebSocketRoute",) or (hasattr(route, "endpoint") and getattr(route, "methods", "absent") == "absent" and kind.startswith("WebSocket")):
            continue
        else:
            methods = getattr(route, "methods", None)
            found.append({"path": path, "methods": sorted(methods) if methods else None, "prefix": False})
    return found


async def load_app(key, raw, file, module_name, attribute):
    """Imports `http.app`, runs its lifespan's start-up and serves it; returns its routes (see
    above) and the names of its middleware (which wrap its own routes only)."""
    prepared = await prepare_app(key, raw, file, module_name, attribute)
    return install(prepared)


async def prepare_app(key, raw, file, module_name, attribute):
    """Imports `http.app` and starts its lifespan, without serving it yet (a reload swaps it in
    only once everything it reloads is ready)."""
    app = graphward_host.load_object(key, raw, file, module_name, attribute)
    if not callable(app):
        raise graphward_host.StartupError(f"`{key}`: `{attribute}` is a {type(app).__name__}, not an ASGI app (e.g. `app = FastAPI()`)")
    lifespan = await _start_lifespan(key, app)
    return app, lifespan


def install(prepared):
    """Serves a prepared app from now on; the previous app's lifespan is told to shut down."""
    global APP, _LIFESPAN
    app, lifespan = prepared
    previous = _LIFESPAN
    APP, _LIFESPAN = app, lifespan
    if previous is not None:
        previous[1].put_nowait({"type": "lifespan.shutdown"})
    middleware = [getattr(getattr(entry, "cls", None), "__name__", type(entry).__name__) for entry in getattr(app, "user_middleware", None) or ()]
    return {"routes": _inspect_routes(app), "middleware": middleware, "openapi_paths": _openapi_paths(app)}


def _openapi_paths(app):
    """The `paths` of the app's own OpenAPI document (FastAPI), merged into `/openapi.json`."""
    produce = getattr(app, "openapi", None)
    if not callable(produce):
        return None
    try:
        paths = produce().get("paths")
    except Exception as error:  # noqa: BLE001 - an app whose document fails is served without it
        log.warning("http.app's OpenAPI document failed: %s", graphward_host.describe_error(error))
        return None
    return graphward_host.jsonable(paths) if isinstance(paths, dict) else None


async def _start_lifespan(key, app):
    """ASGI lifespan start-up; an app that does not speak lifespan (raises at once) is fine.
    Returns (task, inbox) of the running lifespan."""
    inbox = asyncio.Queue()
    started = asyncio.get_running_loop().create_future()

    async def receive():
        return await inbox.get()

    async def send(message):
        kind = message.get("type")
        if kind == "lifespan.startup.complete" and not started.done():
            started.set_result(None)
        elif kind == "lifespan.startup.failed" and not started.done():
            started.set_exception(graphward_host.StartupError(f"`{key}`: the app's start-up failed: {message.get('message', '')}"))

    async def run():
        try:
            await app({"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}, receive, send)
        except Exception as error:  # noqa: BLE001 - apps without lifespan support raise here
            if not started.done():
                log.debug("http.app has no lifespan: %s", graphward_host.describe_error(error))
                started.set_result(None)
        if not started.done():
            started.set_result(None)

    await inbox.put({"type": "lifespan.startup"})
    task = asyncio.get_running_loop().create_task(run())
    await started
    return task, inbox


async def shutdown():
    """Lifespan shut-down of the app being served (server stop): waits up to 5 s for it."""
    global _LIFESPAN
    lifespan, _LIFESPAN = _LIFESPAN, None
    if lifespan is None:
        return
    task, inbox = lifespan
    inbox.put_nowait({"type": "lifespan.shutdown"})
    try:
        await asyncio.wait_for(asyncio.shield(task), 5)
    except (asyncio.TimeoutError, Exception) as error:  # noqa: BLE001 - logged; the server stops anyway
        log.warning("http.app's shut-down did not finish: %s", graphward_host.describe_error(error))


def _user_scope(user):
    """`scope["user"]` and `scope["auth"]` as Starlette's AuthenticationMiddleware sets them."""
    permissions = list((user or {}).get("permissions") or [])
    try:
        from starlette.authentication import AuthCredentials, UnauthenticatedUser
    except ImportError:
        AuthCredentials = None  # noqa: N806
        UnauthenticatedUser = None  # noqa: N806
    if user:
        principal = graphward_host.user_object(user)
    elif UnauthenticatedUser is not None:
        principal = UnauthenticatedUser()
    else:
        principal = None
    credentials = AuthCredentials(permissions) if AuthCredentials is not None else permissions
    return principal, credentials


# Response bytes sent by the app and not yet taken by the client, above which its `send` waits.
_SEND_WINDOW = 1 << 20

# Request bodies still arriving, by body id: the chunks Rust feeds (`feed`), a few at a time, so
# a client sends no faster than the app reads.
_BODIES = {}


async def feed(body_id, chunk, more):
    """One more chunk of a request body; False once the request is over (stop feeding)."""
    queue = _BODIES.get(body_id)
    if queue is None:
        return False
    await queue.put((bytes(chunk), bool(more)))
    return True


def serve(request, body, sink):
    """Runs one HTTP request through the app (the coroutine to await). `request`: method, path,
    raw_path, query, headers ([name, value] byte pairs), root_path, client, server, user (dict
    or None), body_id (set when more of the body follows `body`, through `feed`).
    `sink.start(status, headers)` and `sink.body(bytes)` receive the response. The body's queue
    is registered here, before any chunk can be fed."""
    body_id = request.get("body_id")
    queue = None
    if body_id is not None:
        queue = asyncio.Queue(maxsize=4)
        _BODIES[body_id] = queue
    return _serve(request, body, queue, body_id, sink)


async def _serve(request, body, queue, body_id, sink):
    try:
        await _run(request, body, queue, sink)
    finally:
        if body_id is not None:
            _BODIES.pop(body_id, None)


async def _run(request, body, queue, sink):
    principal, credentials = _user_scope(request.get("user"))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": request["method"],
        "scheme": "http",
        "path": request["path"],
        "raw_path": request["raw_path"],
        "query_string": request["query"],
        "root_path": request["root_path"],
        "headers": [(bytes(name), bytes(value)) for name, value in request["headers"]],
        "client": tuple(request["client"]) if request.get("client") else None,
        "server": tuple(request["server"]) if request.get("server") else None,
        "state": {},
        "user": principal,
        "auth": credentials,
    }
    delivered = False
    ended = queue is None

    async def receive():
        nonlocal delivered, ended
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": bytes(body), "more_body": not ended}
        if not ended:
            chunk, more = await queue.get()
            ended = not more
            return {"type": "http.request", "body": chunk, "more_body": more}
        # The request has no more body; the next message is the client leaving, which Rust
        # signals by cancelling this call.
        await asyncio.get_running_loop().create_future()

    started = False
    finished = False

    async def send(message):
        nonlocal started, finished
        kind = message.get("type")
        if kind == "http.response.start":
            started = True
            sink.start(int(message["status"]), [(bytes(name), bytes(value)) for name, value in message.get("headers") or ()])
        elif kind == "http.response.body" and not finished:
            chunk = message.get("body") or b""
            if chunk:
                sink.body(bytes(chunk))
            if not message.get("more_body", False):
                finished = True
                sink.finish()
            # Backpressure: while the client has not taken what was sent, the app waits.
            pause = 0.001
            while sink.pending() > _SEND_WINDOW:
                await asyncio.sleep(pause)
                pause = min(pause * 2, 0.05)

    await APP(scope, receive, send)
    if not started:
        raise RuntimeError("the app returned without sending a response")
    if not finished:
        raise RuntimeError("the app returned before the end of its response")
