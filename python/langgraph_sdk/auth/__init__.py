"""graphward's stand-in for the ``langgraph_sdk.auth`` API.

The server registers this package only when the real ``langgraph-sdk`` cannot be
imported, so that a user's ``auth.py`` written against ``langgraph_sdk.Auth`` still
loads. Behaviour (attribute names, registration keys, error messages) follows
langgraph-sdk 0.4.14; see spec/auth.md section 2.

All registration goes through two shared routines: ``_validate_handler`` (signature
checks) and ``_register_handler`` (stores one handler under one key).
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Sequence

from . import exceptions, types

__all__ = ["Auth", "exceptions", "is_studio_user", "types"]

HandlerT = typing.TypeVar("HandlerT", bound=Callable[..., typing.Any])

_ANY = "*"


# ---------------------------------------------------------------------------
# Shared validation and registration
# ---------------------------------------------------------------------------


def _validate_handler(fn: typing.Any) -> None:
    """Reject handlers the server could not call as ``await fn(ctx=..., value=...)``."""
    label = getattr(fn, "__name__", fn)
    if not inspect.iscoroutinefunction(fn):
        raise ValueError(
            f"Auth handler '{label}' must be an async function. Add 'async' before"
            " 'def' to make it asynchronous and ensure any IO operations are"
            " non-blocking."
        )
    params = inspect.signature(fn).parameters
    if "ctx" not in params:
        raise ValueError(
            f"Auth handler '{label}' must have a 'ctx: AuthContext' parameter."
            " Update the function signature to include this required parameter."
        )
    if "value" not in params:
        # The doubled space and the missing one before "Update" are deliberate:
        # they reproduce the SDK's message byte for byte.
        raise ValueError(
            f"Auth handler '{label}' must have a 'value' parameter.  The value"
            " contains the mutable data being sent to the endpoint.Update the"
            " function signature to include this required parameter."
        )


def _register_handler(
    auth: Auth, resource: str | None, action: str | None, fn: HandlerT
) -> HandlerT:
    """Validate ``fn`` and store it for ``(resource, action)``.

    Empty / ``None`` parts mean ``"*"``; ``("*", "*")`` is the global handler.
    """
    _validate_handler(fn)
    key = (resource or _ANY, action or _ANY)
    if key == (_ANY, _ANY):
        if auth._global_handlers:
            raise ValueError("Global handler already set.")
        auth._global_handlers.append(fn)
    else:
        if key in auth._handlers:
            raise ValueError(f"types.Handler already set for {key[0]}, {key[1]}.")
        auth._handlers[key] = [fn]
    return fn


def _loose_list(names: typing.Any) -> list:
    """Normalise ``resources``/``actions`` of the generic and store forms.

    Like the SDK these forms do no type checking: anything iterable is accepted and
    a non-iterable fails with Python's own ``TypeError`` from ``list()``.
    """
    if names is None:
        return [_ANY]
    if isinstance(names, str):
        return [names]
    return list(names)


def _strict_list(names: typing.Any, what: str, default: list) -> list:
    """Normalise ``resources``/``actions`` of a resource-specific decorator."""
    if names is None:
        return list(default)
    if isinstance(names, str):
        return [names]
    if isinstance(names, Sequence):
        return list(names)
    raise TypeError(f"{what} must be a string or sequence of strings")


# ---------------------------------------------------------------------------
# Per-action decorators: ``auth.on.threads.create``, ``auth.on.store.put`` ...
# ---------------------------------------------------------------------------


class _ActionDecorator:
    """Registers a handler under one fixed ``(resource, action)`` key."""

    def __init__(self, auth: Auth, action: str, value: typing.Any) -> None:
        self.auth = auth
        self.action = action
        self.value = value

    def _key_resource(self) -> str:
        raise NotImplementedError

    def __call__(self, fn: HandlerT) -> HandlerT:
        return _register_handler(self.auth, self._key_resource(), self.action, fn)


class _ResourceActionOn(_ActionDecorator):
    """``auth.on.<threads|assistants|crons>.<action>``."""

    def __init__(
        self, auth: Auth, resource: str, action: str, value: typing.Any
    ) -> None:
        super().__init__(auth, action, value)
        self.resource = resource

    def _key_resource(self) -> str:
        return self.resource


class _StoreActionOn(_ActionDecorator):
    """``auth.on.store.<action>`` (carries no ``resource`` attribute, like the SDK)."""

    def _key_resource(self) -> str:
        return "store"


# ---------------------------------------------------------------------------
# Resource namespaces: ``auth.on.threads`` / ``assistants`` / ``crons``
# ---------------------------------------------------------------------------


class _ResourceOn:
    """Decorator namespace for one resource with validated action names.

    Subclasses only declare data: the value types (``value``, ``Create`` ...) and
    ``_ACTIONS``, a tuple of ``(action name, attribute holding its value type)``.
    """

    _ACTIONS: typing.ClassVar[tuple[tuple[str, str], ...]] = (
        ("create", "Create"),
        ("read", "Read"),
        ("update", "Update"),
        ("delete", "Delete"),
        ("search", "Search"),
    )

    value: typing.Any
    Create: typing.Any
    Read: typing.Any
    Update: typing.Any
    Delete: typing.Any
    Search: typing.Any

    def __init__(self, auth: Auth, resource: str) -> None:
        self.auth = auth
        self.resource = resource
        for action, type_attr in self._ACTIONS:
            decorator = _ResourceActionOn(
                auth, resource, action, getattr(self, type_attr)
            )
            setattr(self, action, decorator)

    def _valid_actions(self) -> set[str]:
        return {action for action, _ in self._ACTIONS}

    def __call__(
        self,
        fn: typing.Any = None,
        *,
        resources: str | Sequence[str] | None = None,
        actions: str | Sequence[str] | None = None,
    ) -> typing.Any:
        def decorator(handler: HandlerT) -> HandlerT:
            # Order of checks follows the SDK (the handler comes first).
            _validate_handler(handler)
            resource_list = _strict_list(resources, "resources", [self.resource])
            if resource_list != [self.resource]:
                raise ValueError(
                    f"Resource-specific decorator for {self.resource!r} cannot"
                    f" register handlers for {resource_list!r}. Use @auth.on(...)"
                    " for other or multiple resources."
                )
            action_list = _strict_list(actions, "actions", [_ANY])
            if not action_list:
                raise ValueError("actions must not be empty")
            if any(not isinstance(a, str) for a in action_list):
                raise TypeError("actions must be a string or sequence of strings")
            if actions is not None:
                # An explicit "*" is not a valid action name here either.
                unknown = set(action_list) - self._valid_actions()
                if unknown:
                    raise ValueError(
                        f"Invalid action(s) for {self.resource}: "
                        + ", ".join(sorted(unknown))
                    )
            if len(set(action_list)) != len(action_list):
                raise ValueError("actions must not contain duplicates")
            # All-or-nothing: refuse before storing anything.
            for action in action_list:
                if (self.resource, action) in self.auth._handlers:
                    raise ValueError(
                        f"types.Handler already set for {self.resource}, {action}."
                    )
            for action in action_list:
                _register_handler(self.auth, self.resource, action, handler)
            return handler

        if fn is not None:
            return decorator(fn)
        return decorator


class _AssistantsOn(_ResourceOn):
    value = (
        types.AssistantsCreate
        | types.AssistantsRead
        | types.AssistantsUpdate
        | types.AssistantsDelete
        | types.AssistantsSearch
    )
    Create = types.AssistantsCreate
    Read = types.AssistantsRead
    Update = types.AssistantsUpdate
    Delete = types.AssistantsDelete
    Search = types.AssistantsSearch


class _ThreadsOn(_ResourceOn):
    _ACTIONS = _ResourceOn._ACTIONS + (("create_run", "CreateRun"),)

    # Unlike ``types.on.threads.value`` this union includes RunsCreate (as in the SDK).
    value = (
        types.ThreadsCreate
        | types.ThreadsRead
        | types.ThreadsUpdate
        | types.ThreadsDelete
        | types.ThreadsSearch
        | types.RunsCreate
    )
    Create = types.ThreadsCreate
    Read = types.ThreadsRead
    Update = types.ThreadsUpdate
    Delete = types.ThreadsDelete
    Search = types.ThreadsSearch
    CreateRun = types.RunsCreate


class _CronsOn(_ResourceOn):
    # The SDK wraps this one in ``type[...]`` (the other namespaces hold a bare
    # union); reproduced for fidelity.
    value = type[
        types.CronsCreate
        | types.CronsRead
        | types.CronsUpdate
        | types.CronsDelete
        | types.CronsSearch
    ]
    Create = types.CronsCreate
    Read = types.CronsRead
    Update = types.CronsUpdate
    Delete = types.CronsDelete
    Search = types.CronsSearch


# ---------------------------------------------------------------------------
# Store namespace: ``auth.on.store``
# ---------------------------------------------------------------------------


class _StoreOn:
    """Decorator namespace for the store. Action names are not validated."""

    _ACTIONS: typing.ClassVar[tuple[tuple[str, typing.Any], ...]] = (
        ("put", types.StorePut),
        ("get", types.StoreGet),
        ("search", types.StoreSearch),
        ("delete", types.StoreDelete),
        ("list_namespaces", types.StoreListNamespaces),
    )

    def __init__(self, auth: Auth) -> None:
        self._auth = auth
        for action, value_type in self._ACTIONS:
            setattr(self, action, _StoreActionOn(auth, action, value_type))

    def __call__(
        self,
        fn: typing.Any = None,
        *,
        actions: str | Sequence[str] | None = None,
    ) -> typing.Any:
        if fn is not None:
            return _register_handler(self._auth, "store", None, fn)

        def decorator(handler: HandlerT) -> HandlerT:
            for action in _loose_list(actions):
                _register_handler(self._auth, "store", action, handler)
            return handler

        return decorator


# ---------------------------------------------------------------------------
# ``auth.on``
# ---------------------------------------------------------------------------


class _On:
    """Entry point of authorization registration (``auth.on``).

    ``@auth.on`` registers the global handler; ``@auth.on(resources=..., actions=...)``
    registers every combination (any strings accepted); ``auth.on.<resource>`` gives
    the resource-specific namespaces. Runs are authorized as ``threads``.
    """

    # "runs" is a slot that is never filled, so ``auth.on.runs`` raises
    # AttributeError exactly as with the SDK.
    __slots__ = ("_auth", "assistants", "crons", "runs", "store", "threads", "value")

    def __init__(self, auth: Auth) -> None:
        self._auth = auth
        self.assistants = _AssistantsOn(auth, "assistants")
        self.threads = _ThreadsOn(auth, "threads")
        self.crons = _CronsOn(auth, "crons")
        self.store = _StoreOn(auth)
        self.value = dict[str, typing.Any]

    def __call__(
        self,
        fn: typing.Any = None,
        *,
        resources: str | Sequence[str] | None = None,
        actions: str | Sequence[str] | None = None,
    ) -> typing.Any:
        if fn is not None:
            return _register_handler(self._auth, None, None, fn)

        def decorator(handler: HandlerT) -> HandlerT:
            # Registered one pair at a time: a failing pair leaves earlier ones in
            # place (SDK behaviour).
            resource_list = _loose_list(resources)
            action_list = _loose_list(actions)
            for resource in resource_list:
                for action in action_list:
                    _register_handler(self._auth, resource, action, handler)
            return handler

        return decorator


# ---------------------------------------------------------------------------
# Auth
# ---------------------------------------------------------------------------


class Auth:
    """Holds a deployment's custom authentication and authorization handlers.

    ``@auth.authenticate`` registers the function that turns a request into a user;
    ``@auth.on...`` registers authorization handlers (see ``_On``). The server reads
    ``_authenticate_handler``, ``_handlers``, ``_global_handlers`` and
    ``_handler_cache`` directly.
    """

    __slots__ = (
        "_authenticate_handler",
        "_global_handlers",
        "_handler_cache",
        "_handlers",
        "on",
    )

    types = types
    exceptions = exceptions

    def __init__(self) -> None:
        self._authenticate_handler: typing.Any = None
        self._handlers: dict[tuple[str, str], list[typing.Any]] = {}
        self._global_handlers: list[typing.Any] = []
        self._handler_cache: dict[tuple[str, str], typing.Any] = {}
        self.on = _On(self)

    def authenticate(self, fn: HandlerT) -> HandlerT:
        """Register the authenticate function (once). ``fn`` is not inspected."""
        current = self._authenticate_handler
        if current is not None:
            raise ValueError(f"Authentication handler already set as {current}.")
        self._authenticate_handler = fn
        return fn


def is_studio_user(user: typing.Any) -> bool:
    """True for the Studio user, in object form or mapping form."""
    if isinstance(user, types.StudioUser):
        return True
    return isinstance(user, dict) and user.get("kind") == "StudioUser"
