// The v3 event-streaming protocol through the official JS client (`client.threads.stream`,
// over SSE and over a WebSocket): a run of the example assistant on a new thread, its values
// and output, and another user's refusal.
//
// The WebSocket transport refuses a client with `defaultHeaders` (a browser socket cannot send
// headers); a Node app authenticates its socket through `webSocketFactory`, as here. Node 20
// and 21 need `--experimental-websocket` for the global `WebSocket` (test_js_client.py passes
// it).
//
// Usage: node event_stream.mjs <server-url>   (the repo's example app; see stream.mjs)

import assert from "node:assert/strict";
import { Client } from "@langchain/langgraph-sdk";
import { check, finish, section } from "./harness.mjs";

const apiUrl = process.argv[2];
if (!apiUrl) {
  console.error("usage: node event_stream.mjs <server-url>");
  process.exit(2);
}

const client = (token) => new Client({ apiUrl, defaultHeaders: { Authorization: `Bearer ${token}` } });
const alice = client("user1-token");
const bob = client("user2-token");
const INPUT = { messages: [{ role: "human", content: "hi" }] };
const texts = (values) => values.messages.map((message) => message.content);

await section("threads.stream over SSE", async () => {
  const thread = alice.threads.stream({ assistantId: "agent" });
  let snapshots = [];
  await check("run.start answers with the run id", async () => {
    const started = await thread.run.start({ input: INPUT });
    assert.match(started.run_id, /^[0-9a-f-]{36}$/);
  });
  await check("values stream the run's states and output resolves", async () => {
    for await (const snapshot of thread.values) snapshots.push(snapshot);
    const output = await thread.output;
    assert.deepEqual(texts(output), ["hi", "echo: hi"]);
    assert.deepEqual(texts(snapshots.at(-1)), ["hi", "echo: hi"]);
    return `${snapshots.length} snapshots`;
  });
  await check("the thread is the caller's", async () => {
    const state = await alice.threads.getState(thread.threadId);
    assert.deepEqual(texts(state.values), ["hi", "echo: hi"]);
  });
  await check("another user cannot start a run on it or read its events", async () => {
    const intruder = bob.threads.stream(thread.threadId, { assistantId: "agent" });
    await assert.rejects(intruder.run.start({ input: INPUT }), (error) => String(error?.status ?? error?.message).includes("404"));
    await intruder.close();
    const response = await fetch(`${apiUrl}/threads/${thread.threadId}/stream/events`, {
      method: "POST",
      headers: { Authorization: "Bearer user2-token", "content-type": "application/json" },
      body: JSON.stringify({ channels: ["values", "lifecycle"] }),
    });
    assert.equal(response.status, 404);
    const runs = await alice.runs.list(thread.threadId);
    assert.equal(runs.length, 1);
  });
  await thread.close();
});

const socketAs = (token) => (url) => new WebSocket(url, { headers: { Authorization: `Bearer ${token}` } });
const bare = new Client({ apiUrl });

await section("threads.stream over a WebSocket", async () => {
  const thread = bare.threads.stream({ assistantId: "agent", transport: "websocket", webSocketFactory: socketAs("user1-token") });
  await check("run.start on a new thread answers with the run id", async () => {
    const started = await thread.run.start({ input: INPUT });
    assert.match(started.run_id, /^[0-9a-f-]{36}$/);
  });
  await check("values stream the run's states and output resolves", async () => {
    const snapshots = [];
    for await (const snapshot of thread.values) snapshots.push(snapshot);
    assert.deepEqual(texts(await thread.output), ["hi", "echo: hi"]);
    assert.deepEqual(texts(snapshots.at(-1)), ["hi", "echo: hi"]);
    return `${snapshots.length} snapshots`;
  });
  await check("the new thread is the caller's", async () => {
    assert.deepEqual(texts((await alice.threads.getState(thread.threadId)).values), ["hi", "echo: hi"]);
    await assert.rejects(bob.threads.getState(thread.threadId), (error) => error?.status === 404);
  });
  const handshake = (headers) =>
    new Promise((resolve) => {
      const url = `${apiUrl.replace(/^http/, "ws")}/threads/${thread.threadId}/stream/events`;
      const socket = new WebSocket(url, { headers });
      const timer = setTimeout(() => resolve("no answer"), 10_000);
      socket.addEventListener("open", () => { clearTimeout(timer); socket.close(); resolve("open"); });
      socket.addEventListener("error", () => { clearTimeout(timer); resolve("refused"); });
    });
  await check("another user's socket on it is refused, and a socket without credentials", async () => {
    assert.equal(await handshake({ Authorization: "Bearer user2-token" }), "refused");
    assert.equal(await handshake({}), "refused");
    assert.equal(await handshake({ Authorization: "Bearer user1-token" }), "open");
    assert.equal((await alice.runs.list(thread.threadId)).length, 1);
  });
  await thread.close();
});

finish();
