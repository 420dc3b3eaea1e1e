"""The example's own HTTP routes, served beside the LangGraph API (`http.app`). With
`enable_custom_route_auth` they are authenticated by auth.py like the API: `request.user` is
the caller."""

import asyncio
import contextlib

from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse

STARTED = {"lifespan": False}


@contextlib.asynccontextmanager
async def lifespan(app):
    STARTED["lifespan"] = True
    yield


app = FastAPI(lifespan=lifespan)


@app.get("/hello")
async def hello(request: Request):
    return {"hello": request.user.identity, "permissions": list(request.auth.scopes), "started": STARTED["lifespan"]}


@app.post("/echo/{name}")
async def echo(name: str, request: Request):
    return {"name": name, "body": await request.json(), "query": dict(request.query_params)}


@app.get("/countdown")
async def countdown(start: int = 3):
    async def numbers():
        for number in range(start, 0, -1):
            yield f"{number}\n"
            await asyncio.sleep(0.05)
        yield "liftoff\n"

    return StreamingResponse(numbers(), media_type="text/plain")
