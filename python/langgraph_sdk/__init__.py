"""graphward's minimal stand-in for the ``langgraph_sdk`` package.

The server only registers this package when the real ``langgraph-sdk`` is not
importable. It provides the auth API (``Auth``) that a custom ``auth.py`` needs and
nothing else: the HTTP clients and the other SDK features require the real package.
"""

from .auth import Auth

__version__ = "0.4.14+graphward.shim"

# Marker the server (or a user) can check to tell the stand-in from the real SDK.
GRAPHWARD_SHIM = True

__all__ = ["Auth"]

# Public names of the real package that this stand-in deliberately lacks.
_REAL_SDK_ONLY = frozenset(
    {
        "DecryptResult",
        "Encryption",
        "EncryptionContext",
        "Priority",
        "PriorityContext",
        "PrioritySettings",
        "get_client",
        "get_sync_client",
    }
)


def __getattr__(name: str):
    if name in _REAL_SDK_ONLY:
        # ImportError (not AttributeError) so that ``from langgraph_sdk import
        # get_client`` fails with this explanation instead of a generic one.
        raise ImportError(
            f"langgraph_sdk.{name} is not available: graphward is using its built-in"
            " stand-in for langgraph_sdk, which only provides the auth API (Auth)."
            " Install the real langgraph-sdk package (pip install langgraph-sdk)"
            f" to use {name}.",
            name=name,
        )
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
