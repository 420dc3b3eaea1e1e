"""`/mcp` and `/a2a/{assistant_id}` as their official clients use them — the `mcp` package's
streamable-HTTP client and the `a2a-sdk` client — on the repo's example app, whose handlers
give each user their own assistants and threads. Two users throughout: what one of them may
reach through these protocols is exactly what the REST API lets them reach, a context or task
id naming the other's thread is answered like one that does not exist, and nothing of the
other's is read or written."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import httpx2
import pytest
from a2a.client import ClientConfig, create_client
from a2a.client.card_resolver import parse_agent_card
from a2a.client.errors import A2AClientError
from a2a.types import GetTaskRequest, Message, Part, Role, SendMessageRequest, TaskState
from a2a.utils.errors import InvalidParamsError
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

ALICE = {"Authorization": "Bearer user1-token"}
BOB = {"Authorization": "Bearer user2-token"}


@pytest.fixture(scope="module")
def apps(example_server):
    """One assistant of each user (distinct names, so each is one MCP tool) and a thread of
    Alice's with a conversation on it."""
    rest = {who: httpx.Client(base_url=example_server.url, headers=headers, timeout=60) for who, headers in (("alice", ALICE), ("bob", BOB))}
    suffix = uuid.uuid4().hex[:8]
    alice = rest["alice"].post("/assistants", json={"graph_id": "agent", "name": f"alice-helper-{suffix}", "description": "Alice's echo"}).raise_for_status().json()
    bob = rest["bob"].post("/assistants", json={"graph_id": "agent", "name": f"bob helper {suffix}"}).raise_for_status().json()
    thread = rest["alice"].post("/threads", json={}).raise_for_status().json()
    rest["alice"].post(f"/threads/{thread['thread_id']}/runs/wait", json={"assistant_id": alice["assistant_id"], "input": {"messages": [{"role": "human", "content": "secret"}]}}).raise_for_status()
    yield {"url": example_server.url, "rest": rest, "alice": alice, "bob": bob, "thread": thread["thread_id"], "suffix": suffix}
    for client in rest.values():
        client.close()


# ---------------------------------------------------------------------------------------------
# MCP


def innermost(error: BaseException) -> BaseException:
    """The one error a client's task groups wrapped `error` around."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error


async def mcp_session(url: str, headers: dict[str, str], work):
    """Runs `work(session)` in an initialized MCP session over streamable HTTP; an error is
    raised as itself, not in the client's exception groups."""
    try:
        async with httpx2.AsyncClient(headers=headers, timeout=60) as http, streamable_http_client(f"{url}/mcp", http_client=http) as streams:
            async with ClientSession(streams[0], streams[1]) as session:
                await session.initialize()
                return await work(session)
    except BaseExceptionGroup as group:
        raise innermost(group) from group


def tool_names(url: str, headers: dict[str, str]) -> set[str]:
    async def work(session):
        return {tool.name for tool in (await session.list_tools()).tools}

    return asyncio.run(mcp_session(url, headers, work))


def call_tool(url: str, headers: dict[str, str], name: str, arguments: dict):
    async def work(session):
        return await session.call_tool(name, arguments)

    return asyncio.run(mcp_session(url, headers, work))


def test_mcp_lists_each_users_own_assistants_as_tools(apps):
    alice_tools = tool_names(apps["url"], ALICE)
    bob_tools = tool_names(apps["url"], BOB)
    alice_tool, bob_tool = apps["alice"]["name"], f"bob_helper_{apps['suffix']}"
    assert alice_tool in alice_tools and bob_tool not in alice_tools
    assert bob_tool in bob_tools and alice_tool not in bob_tools


def test_mcp_calls_the_users_assistant(apps):
    result = call_tool(apps["url"], ALICE, apps["alice"]["name"], {"messages": [{"role": "human", "content": "hi"}]})
    assert not result.is_error
    assert [message["content"] for message in result.structured_content["messages"]] == ["hi", "echo: hi"]


def test_mcp_refuses_another_users_tool_and_runs_nothing(apps):
    runs_before = len(apps["rest"]["alice"].post("/threads/search", json={"limit": 1000}).json())
    with pytest.raises(MCPError, match="Unknown tool"):
        call_tool(apps["url"], BOB, apps["alice"]["name"], {"messages": [{"role": "human", "content": "hi"}]})
    assert len(apps["rest"]["alice"].post("/threads/search", json={"limit": 1000}).json()) == runs_before
    assert apps["rest"]["bob"].post("/threads/search", json={"metadata": {"assistant_id": apps["alice"]["assistant_id"]}}).json() == []


def test_mcp_without_credentials_is_refused(apps):
    with pytest.raises(MCPError):  # the client reports the HTTP 401 as an error response
        tool_names(apps["url"], {})
    answer = httpx.post(f"{apps['url']}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, headers={"Accept": "application/json, text/event-stream"})
    assert answer.status_code == 401 and "detail" in answer.json()


# ---------------------------------------------------------------------------------------------
# A2A


def text_message(text: str, context_id: str | None = None) -> SendMessageRequest:
    message = Message(role=Role.ROLE_USER, parts=[Part(text=text)], message_id=str(uuid.uuid4()))
    if context_id:
        message.context_id = context_id
    return SendMessageRequest(message=message)


VERSIONS = ["1.0", "0.3"]


async def a2a_call(url: str, assistant_id: str, headers: dict[str, str], work, version: str = "1.0"):
    """Resolves the agent card of `assistant_id` as the caller and runs `work(client)` on a
    client of protocol `version`: 1.0 as the card advertises first, 0.3 as a client that only
    reads the card's 0.3 fields (`url`, `protocolVersion`) sees it."""
    async with httpx.AsyncClient(headers=headers, timeout=60) as http:
        config = ClientConfig(httpx_client=http, streaming=False)
        if version == "1.0":
            client = await create_client(f"{url}/a2a/{assistant_id}", client_config=config, resolver_http_kwargs={"headers": headers})
        else:
            card = (await http.get(f"{url}/a2a/{assistant_id}/.well-known/agent-card.json")).raise_for_status().json()
            del card["supportedInterfaces"]
            client = await create_client(parse_agent_card(card), client_config=config)
        return await work(client)


def send(url: str, assistant_id: str, headers: dict[str, str], text: str, context_id: str | None = None, version: str = "1.0"):
    async def work(client):
        tasks = [event.task async for event in client.send_message(text_message(text, context_id))]
        assert len(tasks) == 1
        return tasks[0]

    return asyncio.run(a2a_call(url, assistant_id, headers, work, version))


def texts(task) -> list[str]:
    return [part.text for message in task.history for part in message.parts]


@pytest.mark.parametrize("version", VERSIONS)
def test_a2a_card_and_conversation(apps, version):
    first = send(apps["url"], apps["alice"]["assistant_id"], ALICE, "hello", version=version)
    assert first.status.state == TaskState.TASK_STATE_COMPLETED
    assert texts(first) == ["hello", "echo: hello"]
    assert [part.text for part in first.artifacts[0].parts] == ["echo: hello"]
    # The context is a thread of Alice's: the REST API shows the same conversation.
    state = apps["rest"]["alice"].get(f"/threads/{first.context_id}/state").raise_for_status().json()
    assert [message["content"] for message in state["values"]["messages"]] == ["hello", "echo: hello"]

    follow_up = send(apps["url"], apps["alice"]["assistant_id"], ALICE, "again", context_id=first.context_id, version=version)
    assert follow_up.context_id == first.context_id
    assert texts(follow_up) == ["hello", "echo: hello", "again", "echo: again"]

    async def read_back(client):
        return await client.get_task(GetTaskRequest(id=follow_up.id))

    task = asyncio.run(a2a_call(apps["url"], apps["alice"]["assistant_id"], ALICE, read_back, version))
    assert task.status.state == TaskState.TASK_STATE_COMPLETED and texts(task) == texts(follow_up)


def test_a2a_card_is_the_callers_assistant(apps):
    url, alice_id = apps["url"], apps["alice"]["assistant_id"]
    card = httpx.get(f"{url}/a2a/{alice_id}", headers=ALICE).raise_for_status().json()
    assert card["name"] == apps["alice"]["name"] and card["description"] == "Alice's echo"
    for path in (f"/a2a/{alice_id}", f"/a2a/{alice_id}/.well-known/agent-card.json", f"/.well-known/agent-card.json?assistant_id={alice_id}"):
        assert httpx.get(f"{url}{path}", headers=BOB).status_code == 404, path
        answer = httpx.get(f"{url}{path}")
        assert answer.status_code == 401 and "detail" in answer.json(), path
    with pytest.raises(A2AClientError):
        send(url, alice_id, BOB, "hello")


def conversation(apps) -> tuple[list[str], int]:
    """Alice's thread as she sees it: its messages and how many runs it has."""
    alice, thread = apps["rest"]["alice"], apps["thread"]
    messages = [message["content"] for message in alice.get(f"/threads/{thread}/state").raise_for_status().json()["values"]["messages"]]
    return messages, len(alice.get(f"/threads/{thread}/runs").raise_for_status().json())


def rpc(apps, assistant_id: str, headers: dict[str, str], method: str, params: dict) -> dict:
    body = {"jsonrpc": "2.0", "id": 7, "method": method, "params": params}
    return httpx.post(f"{apps['url']}/a2a/{assistant_id}", json=body, headers={**headers, "Accept": "application/json"}, timeout=60).json()


@pytest.mark.parametrize("version", VERSIONS)
def test_a2a_context_naming_another_users_thread_is_not_found(apps, version):
    before = conversation(apps)
    bob_id = apps["bob"]["assistant_id"]
    with pytest.raises(InvalidParamsError) as refused:
        send(apps["url"], bob_id, BOB, "let me in", context_id=apps["thread"], version=version)
    assert "secret" not in str(refused.value)
    for method, message in (
        ("message/send", {"role": "user", "messageId": "m", "contextId": apps["thread"], "parts": [{"kind": "text", "text": "let me in"}]}),
        ("SendMessage", {"role": "ROLE_USER", "messageId": "m", "contextId": apps["thread"], "parts": [{"text": "let me in"}]}),
    ):
        answer = rpc(apps, bob_id, BOB, method, {"message": message})
        assert "error" in answer and "secret" not in str(answer), method
    assert conversation(apps) == before
    assert apps["rest"]["bob"].get(f"/threads/{apps['thread']}").status_code == 404


def test_a2a_task_of_another_user_is_not_found(apps):
    alice_id, bob_id = apps["alice"]["assistant_id"], apps["bob"]["assistant_id"]
    runs = apps["rest"]["alice"].get(f"/threads/{apps['thread']}/runs").raise_for_status().json()
    task_id = f"{apps['thread']}:{runs[0]['run_id']}"
    own = rpc(apps, alice_id, ALICE, "tasks/get", {"id": task_id})
    assert own["result"]["id"] == task_id and "secret" in str(own["result"]["history"])
    assert rpc(apps, alice_id, ALICE, "GetTask", {"id": task_id})["result"]["status"]["state"] == "TASK_STATE_COMPLETED"
    for assistant_id in (alice_id, bob_id):
        for method in ("tasks/get", "GetTask"):
            for params in ({"id": task_id}, {"id": runs[0]["run_id"], "contextId": apps["thread"]}):
                answer = rpc(apps, assistant_id, BOB, method, params)
                assert "error" in answer and "secret" not in str(answer), (assistant_id, method, params)
    # Bob's own assistant and a task id of his shape, on Alice's thread: still not found.
    missing = rpc(apps, bob_id, BOB, "tasks/get", {"id": f"{apps['thread']}:{uuid.uuid4()}"})
    assert missing["error"]["code"] == rpc(apps, bob_id, BOB, "tasks/get", {"id": task_id})["error"]["code"]


def test_a2a_without_credentials_is_refused(apps):
    answer = httpx.post(f"{apps['url']}/a2a/{apps['alice']['assistant_id']}", json={"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {}})
    assert answer.status_code == 401 and "detail" in answer.json()
