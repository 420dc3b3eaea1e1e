"""``langgraph_sdk.runtime`` for graphward's stand-in SDK: what a graph factory that declares
``runtime: ServerRuntime`` receives. The same fields and behaviour as the real module's
(``access_context``, ``user``, ``store``, ``execution_runtime``, ``ensure_user``, and
``context`` when a run executes), so a factory written against the real SDK runs here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar, Union

ContextT = TypeVar("ContextT")

AccessContext = Literal["threads.create_run", "threads.update", "threads.read", "assistants.read"]

__all__ = ["AccessContext", "ServerRuntime"]


@dataclass(kw_only=True, frozen=True)
class _ServerRuntimeBase(Generic[ContextT]):
    access_context: AccessContext
    user: Any = field(default=None)
    store: Any = field(default=None)

    @property
    def execution_runtime(self):
        """This runtime when the graph is built to execute a run, else ``None``."""
        return self if isinstance(self, _ExecutionRuntime) else None

    def ensure_user(self):
        """The authenticated user; ``PermissionError`` when no custom auth is configured."""
        if self.user is None:
            raise PermissionError(f"No authenticated user available in access_context='{self.access_context}'")
        return self.user


@dataclass(kw_only=True, frozen=True)
class _ExecutionRuntime(_ServerRuntimeBase[ContextT]):
    context: Any = field(default=None)


@dataclass(kw_only=True, frozen=True)
class _ReadRuntime(_ServerRuntimeBase[ContextT]):
    pass


ServerRuntime = Union[_ExecutionRuntime, _ReadRuntime]
