"""Type catalogue of graphward's stand-in for ``langgraph_sdk.auth.types``.

Mirrors the names user ``auth.py`` files reference (at runtime or in annotations).
Every TypedDict here is an ordinary ``dict`` at runtime. This module is only used
when the real ``langgraph-sdk`` distribution is not importable.
"""

# Annotations stay unevaluated (strings), as in the SDK, so that TypedDict
# introspection (``__annotations__``, ``__required_keys__``) looks the same.
from __future__ import annotations

import typing
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

try:  # not guaranteed to be installed next to the server
    import typing_extensions
except ImportError:  # pragma: no cover - depends on the environment
    typing_extensions = typing  # type: ignore[assignment]

T = typing.TypeVar("T")

# --------------------------------------------------------------------------
# Literal aliases
# --------------------------------------------------------------------------

RunStatus = typing.Literal["pending", "error", "success", "timeout", "interrupted"]
"""Lifecycle state of a run."""

MultitaskStrategy = typing.Literal["reject", "rollback", "interrupt", "enqueue"]
"""What to do with a new run while the thread already has one in flight."""

OnConflictBehavior = typing.Literal["raise", "do_nothing"]
"""Behaviour when creating something whose id already exists."""

IfNotExists = typing.Literal["create", "reject"]
"""Behaviour when a run targets a thread that does not exist."""

ThreadStatus = typing.Literal["idle", "busy", "interrupted", "error"]
"""State of a thread."""

MetadataInput = dict[str, typing.Any]
"""Free-form metadata mapping."""

# --------------------------------------------------------------------------
# Handler related aliases
# --------------------------------------------------------------------------

FilterType = (
    dict[
        str,
        str
        | dict[typing.Literal["$eq", "$contains"], str]
        | dict[typing.Literal["$contains"], list[str]],
    ]
    | dict[str, str]
)
"""Filter returned by an authorization handler: field -> value or operator dict."""

HandlerResult = None | bool | FilterType
"""Allowed results of an authorization handler (None/True allow, False deny)."""

Handler = Callable[..., Awaitable[HandlerResult]]
"""An async authorization handler called as ``handler(ctx=..., value=...)``."""


# --------------------------------------------------------------------------
# Users
# --------------------------------------------------------------------------


@typing.runtime_checkable
class MinimalUser(typing.Protocol):
    """Smallest user shape: anything with an ``identity``."""

    @property
    def identity(self) -> str: ...


class MinimalUserDict(typing.TypedDict, total=False):
    """Mapping form of a user that an authenticate function may return."""

    identity: typing_extensions.Required[str]
    display_name: str
    is_authenticated: bool
    permissions: Sequence[str]


@typing.runtime_checkable
class BaseUser(typing.Protocol):
    """Full user interface seen by authorization handlers."""

    @property
    def is_authenticated(self) -> bool: ...

    @property
    def display_name(self) -> str: ...

    @property
    def identity(self) -> str: ...

    @property
    def permissions(self) -> Sequence[str]: ...

    def __getitem__(self, key): ...

    def __contains__(self, key): ...

    def __iter__(self): ...


class StudioUser:
    """User injected for requests coming from LangGraph Studio (local dev)."""

    __slots__ = ("_is_authenticated", "_permissions", "username")

    def __init__(self, username: str, is_authenticated: bool = False) -> None:
        self.username = username
        self._is_authenticated = is_authenticated
        self._permissions = ["authenticated"] if is_authenticated else []

    @property
    def is_authenticated(self) -> bool:
        return self._is_authenticated

    @property
    def display_name(self) -> str:
        return self.username

    @property
    def identity(self) -> str:
        return self.username

    @property
    def permissions(self) -> Sequence[str]:
        return self._permissions


Authenticator = Callable[
    ...,
    Awaitable[
        MinimalUser
        | str
        | BaseUser
        | MinimalUserDict
        | typing.Mapping[str, typing.Any],
    ],
]
"""An authenticate function: returns a user (object, identity string or mapping)."""


# --------------------------------------------------------------------------
# Contexts
# --------------------------------------------------------------------------


@dataclass(slots=True)
class BaseAuthContext:
    """Identity information shared by every authorization call."""

    permissions: Sequence[str]
    user: BaseUser


@typing.final
@dataclass(slots=True)
class AuthContext(BaseAuthContext):
    """Context handed to authorization handlers (identity + what is accessed)."""

    resource: typing.Literal["runs", "threads", "crons", "assistants", "store"]
    action: typing.Literal[
        "create",
        "read",
        "update",
        "delete",
        "search",
        "create_run",
        "put",
        "get",
        "list_namespaces",
    ]


# --------------------------------------------------------------------------
# Values passed to handlers (declared fields; plain dicts at runtime)
# --------------------------------------------------------------------------


class ThreadTTL(typing.TypedDict, total=False):
    """Time-to-live settings of a thread."""

    strategy: typing.Literal["delete"]
    ttl: int  # minutes


class ThreadsCreate(typing.TypedDict, total=False):
    """Value for ``threads.create``."""

    thread_id: UUID
    metadata: MetadataInput
    if_exists: OnConflictBehavior
    ttl: ThreadTTL


class ThreadsRead(typing.TypedDict, total=False):
    """Value for ``threads.read``."""

    thread_id: UUID
    run_id: UUID | None


class ThreadsUpdate(typing.TypedDict, total=False):
    """Value for ``threads.update``."""

    thread_id: UUID
    metadata: MetadataInput
    action: typing.Literal["interrupt", "rollback"] | None


class ThreadsDelete(typing.TypedDict, total=False):
    """Value for ``threads.delete``."""

    thread_id: UUID
    run_id: UUID | None


class ThreadsSearch(typing.TypedDict, total=False):
    """Value for ``threads.search``."""

    metadata: MetadataInput
    values: MetadataInput
    status: ThreadStatus | None
    limit: int
    offset: int
    ids: Sequence[UUID] | None
    thread_id: UUID | None


class RunsCreate(typing.TypedDict, total=False):
    """Value for ``threads.create_run``."""

    assistant_id: UUID | None
    thread_id: UUID | None
    run_id: UUID | None
    status: RunStatus | None
    metadata: MetadataInput
    prevent_insert_if_inflight: bool
    multitask_strategy: MultitaskStrategy
    if_not_exists: IfNotExists
    after_seconds: int
    kwargs: dict[str, typing.Any]
    action: typing.Literal["interrupt", "rollback"] | None


class AssistantsCreate(typing.TypedDict, total=False):
    """Value for ``assistants.create``."""

    assistant_id: UUID
    graph_id: str
    config: dict[str, typing.Any]
    context: dict[str, typing.Any]
    metadata: MetadataInput
    if_exists: OnConflictBehavior
    name: str


class AssistantsRead(typing.TypedDict, total=False):
    """Value for ``assistants.read``."""

    assistant_id: UUID
    metadata: MetadataInput


class AssistantsUpdate(typing.TypedDict, total=False):
    """Value for ``assistants.update``."""

    assistant_id: UUID
    graph_id: str | None
    config: dict[str, typing.Any]
    context: dict[str, typing.Any]
    metadata: MetadataInput
    name: str | None
    version: int | None


class AssistantsDelete(typing.TypedDict):
    """Value for ``assistants.delete``."""

    assistant_id: UUID


class AssistantsSearch(typing.TypedDict):
    """Value for ``assistants.search``."""

    graph_id: str | None
    metadata: MetadataInput
    limit: int
    offset: int


class CronsCreate(typing.TypedDict, total=False):
    """Value for ``crons.create``."""

    payload: dict[str, typing.Any]
    schedule: str
    cron_id: UUID | None
    thread_id: UUID | None
    user_id: str | None
    end_time: datetime | None


class CronsDelete(typing.TypedDict):
    """Value for ``crons.delete``."""

    cron_id: UUID


class CronsRead(typing.TypedDict):
    """Value for ``crons.read``."""

    cron_id: UUID


class CronsUpdate(typing.TypedDict, total=False):
    """Value for ``crons.update``."""

    cron_id: UUID
    payload: dict[str, typing.Any] | None
    schedule: str | None


class CronsSearch(typing.TypedDict, total=False):
    """Value for ``crons.search``."""

    assistant_id: UUID | None
    thread_id: UUID | None
    limit: int
    offset: int


class StoreGet(typing.TypedDict):
    """Value for ``store.get``."""

    namespace: tuple[str, ...]
    key: str


class StoreSearch(typing.TypedDict):
    """Value for ``store.search``."""

    namespace: tuple[str, ...]
    filter: dict[str, typing.Any] | None
    limit: int
    offset: int
    query: str | None


class StoreListNamespaces(typing.TypedDict):
    """Value for ``store.list_namespaces``."""

    namespace: tuple[str, ...] | None
    suffix: tuple[str, ...] | None
    max_depth: int | None
    limit: int
    offset: int


class StorePut(typing.TypedDict):
    """Value for ``store.put``."""

    namespace: tuple[str, ...]
    key: str
    value: dict[str, typing.Any] | None
    index: typing.Literal[False] | list[str] | None


class StoreDelete(typing.TypedDict):
    """Value for ``store.delete``."""

    namespace: tuple[str, ...]
    key: str


# --------------------------------------------------------------------------
# Annotation helpers: ``on.<resource>.<action>.value``
# --------------------------------------------------------------------------


def _leaf(qualname: str, value: typing.Any) -> type:
    """Build one leaf of the ``on`` tree: a bare class holding ``value``."""
    attrs = {"value": value, "__module__": __name__, "__qualname__": qualname}
    return type(qualname.rpartition(".")[2], (), attrs)


class on:
    """Namespace of value types for annotating authorization handlers.

    e.g. ``async def h(ctx: AuthContext, value: on.threads.create.value)``.
    """

    value = dict[str, typing.Any]

    class threads:
        value = (
            ThreadsCreate | ThreadsRead | ThreadsUpdate | ThreadsDelete | ThreadsSearch
        )
        create = _leaf("on.threads.create", ThreadsCreate)
        create_run = _leaf("on.threads.create_run", RunsCreate)
        read = _leaf("on.threads.read", ThreadsRead)
        update = _leaf("on.threads.update", ThreadsUpdate)
        delete = _leaf("on.threads.delete", ThreadsDelete)
        search = _leaf("on.threads.search", ThreadsSearch)

    class assistants:
        value = (
            AssistantsCreate
            | AssistantsRead
            | AssistantsUpdate
            | AssistantsDelete
            | AssistantsSearch
        )
        create = _leaf("on.assistants.create", AssistantsCreate)
        read = _leaf("on.assistants.read", AssistantsRead)
        update = _leaf("on.assistants.update", AssistantsUpdate)
        delete = _leaf("on.assistants.delete", AssistantsDelete)
        search = _leaf("on.assistants.search", AssistantsSearch)

    class crons:
        value = CronsCreate | CronsRead | CronsUpdate | CronsDelete | CronsSearch
        create = _leaf("on.crons.create", CronsCreate)
        read = _leaf("on.crons.read", CronsRead)
        update = _leaf("on.crons.update", CronsUpdate)
        delete = _leaf("on.crons.delete", CronsDelete)
        search = _leaf("on.crons.search", CronsSearch)

    class store:
        value = StoreGet | StoreSearch | StoreListNamespaces | StorePut | StoreDelete
        put = _leaf("on.store.put", StorePut)
        get = _leaf("on.store.get", StoreGet)
        search = _leaf("on.store.search", StoreSearch)
        delete = _leaf("on.store.delete", StoreDelete)
        list_namespaces = _leaf("on.store.list_namespaces", StoreListNamespaces)


del _leaf

__all__ = [
    "AssistantsCreate",
    "AssistantsDelete",
    "AssistantsRead",
    "AssistantsSearch",
    "AssistantsUpdate",
    "MetadataInput",
    "RunsCreate",
    "StoreDelete",
    "StoreGet",
    "StoreListNamespaces",
    "StorePut",
    "StoreSearch",
    "ThreadsCreate",
    "ThreadsDelete",
    "ThreadsRead",
    "ThreadsSearch",
    "ThreadsUpdate",
    "on",
]
