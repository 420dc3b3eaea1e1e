"""A second policy for the end-to-end tests: per resource/action handlers, `$contains` and
`$or` filters, and a store handler that rewrites the namespace."""

from langgraph_sdk import Auth

TOKENS = {"alice-token": "alice", "bob-token": "bob"}

auth = Auth()


@auth.authenticate
async def authenticate(headers: dict) -> Auth.types.MinimalUserDict:
    token = headers.get(b"authorization", b"").decode().removeprefix("Bearer ")
    if token not in TOKENS:
        raise Auth.exceptions.HTTPException(status_code=401, detail="Invalid token")
    return {"identity": TOKENS[token], "permissions": ["write"]}


@auth.on.threads.create
async def stamp_members(ctx: Auth.types.AuthContext, value: Auth.types.on.threads.create.value):
    value["metadata"].setdefault("members", [ctx.user.identity])


@auth.on.threads.read
@auth.on.threads.update
@auth.on.threads.delete
@auth.on.threads.search
async def members_only(ctx: Auth.types.AuthContext, value: dict):
    return {"members": {"$contains": ctx.user.identity}}


@auth.on.assistants
async def makers_and_system(ctx: Auth.types.AuthContext, value: dict):
    if ctx.action in ("create", "update"):
        value["metadata"]["maker"] = ctx.user.identity
    return {"$or": [{"maker": ctx.user.identity}, {"created_by": "system"}]}


@auth.on.store
async def own_namespace(ctx: Auth.types.AuthContext, value: dict):
    value["namespace"] = (ctx.user.identity, *(value.get("namespace") or ()))
