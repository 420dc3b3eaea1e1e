// The v3 event-streaming protocol through the official JS client (`client.threads.stream`,
// SSE): a run of the example assistant, its values and output, and another user's refusal.
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

finish();
