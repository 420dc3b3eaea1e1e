"""Token auth for the example: each token is one user; every user sees only their own
threads, runs, crons, assistants and store items (metadata `owner`)."""

from langgraph_sdk import Auth

TOKENS = {"alice-token": "alice", "bob-token": "bob"}

auth = Auth()


@auth.authenticate
async def authenticate(authorization: str | None):
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or token not in TOKENS:
        raise Auth.exceptions.HTTPException(status_code=401, detail="Invalid or missing token")
    return {"identity": TOKENS[token], "permissions": ["read", "write"]}


@auth.on
async def owner_only(ctx: Auth.types.AuthContext, value: dict):
    metadata = value.setdefault("metadata", {}) if isinstance(value, dict) else None
    if metadata is not None:
        metadata["owner"] = ctx.user.identity
    return {"owner": ctx.user.identity}


@auth.on.store()
async def own_namespace(ctx: Auth.types.AuthContext, value: dict):
    namespace = tuple(value.get("namespace") or ())
    if not namespace or namespace[0] != ctx.user.identity:
        raise Auth.exceptions.HTTPException(status_code=403, detail="Store namespaces start with your identity")
