"""Custom auth for the example app, after the LangGraph docs' custom-auth example.

Each user owns what they create: the global handler stamps `metadata.owner` and returns a
filter so users only see their own threads, assistants and crons; store namespaces must
start with the user's identity.
"""

from langgraph_sdk import Auth

# A stand-in for a real identity provider: token -> user.
VALID_TOKENS = {
    "user1-token": {"id": "user1", "name": "Alice"},
    "user2-token": {"id": "user2", "name": "Bob"},
}

my_auth = Auth()


@my_auth.authenticate
async def get_current_user(authorization: str | None) -> Auth.types.MinimalUserDict:
    """Accepts `Authorization: Bearer <token>` for a token of VALID_TOKENS."""
    if not authorization:
        raise Auth.exceptions.HTTPException(status_code=401, detail="Invalid token")
    try:
        scheme, token = authorization.split(" ", 1)
    except ValueError:
        raise Auth.exceptions.HTTPException(status_code=401, detail="Invalid token")
    if scheme.lower() != "bearer" or token not in VALID_TOKENS:
        raise Auth.exceptions.HTTPException(status_code=401, detail="Invalid token")
    user = VALID_TOKENS[token]
    return {"identity": user["id"], "display_name": user["name"]}


@my_auth.on
async def add_owner(ctx: Auth.types.AuthContext, value: dict):
    """Stamps the owner on everything created and restricts every read to the owner."""
    filters = {"owner": ctx.user.identity}
    metadata = value.setdefault("metadata", {})
    metadata.update(filters)
    return filters


@my_auth.on.store()
async def authorize_store(ctx: Auth.types.AuthContext, value: dict):
    """A user may only touch store namespaces that start with their identity."""
    namespace: tuple = value["namespace"]
    assert namespace and namespace[0] == ctx.user.identity, "Not authorized"
