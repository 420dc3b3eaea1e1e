// Streaming test: creates and streams a run through the official JS client
// (@langchain/langgraph-sdk `client.runs.stream`), then re-joins the finished run with
// `client.runs.joinStream` and `Last-Event-ID` (spec runs.md §4.2, §4.6, §5).
//
// Usage: node stream.mjs <server-url>
//
// The server must run the repo's example app (langgraph.json at the root, auth in
// examples/auth.py): graph `agent` echoes the last human message as `echo: <text>`, tokens
// `user1-token` / `user2-token`, a user's threads are invisible to other users, bad tokens
// get 401.
//
// Prints one line per check ("ok - ..." / "not ok - ..."); a failing check skips the rest of
// its section. Exits non-zero when any check failed.

import assert from "node:assert/strict";
import { Client } from "@langchain/langgraph-sdk";
import { abortSection, check, finish, section } from "./harness.mjs";

const apiUrl = process.argv[2];
if (!apiUrl) {
  console.error("usage: node stream.mjs <server-url>");
  process.exit(2);
}

const client = (token) => new Client({ apiUrl, defaultHeaders: { Authorization: `Bearer ${token}` } });
const alice = client("user1-token");
const bob = client("user2-token");
const intruder = client("not-a-token");

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const INPUT = { messages: [{ role: "human", content: "hi" }] };

/** Drains a stream into `{event, data, id}` chunks. */
async function collect(stream) {
  const chunks = [];
  for await (const { event, data, id } of stream) chunks.push({ event, data, id });
  return chunks;
}

/**
 * Drains a stream that must fail with HTTP `status`: either the request throws an HTTP error
 * with that status, or the stream carries an `error` event whose message mentions it.
 * Returns a description of what happened.
 */
async function streamFailsWith(stream, status) {
  let chunks;
  try {
    chunks = await collect(stream);
  } catch (error) {
    assert.equal(error?.status, status, `expected HTTP ${status}, got: ${error?.message ?? error}`);
    return `request threw HTTP ${error.status}`;
  }
  const errors = chunks.filter((c) => c.event === "error");
  assert.ok(
    errors.some((c) => JSON.stringify(c.data).includes(String(status))),
    `expected an HTTP ${status} error or an error event carrying ${status}, got chunks ${JSON.stringify(chunks)}`,
  );
  assert.equal(chunks.at(-1).event, "error", `the error event must be last: ${JSON.stringify(chunks)}`);
  return `200 stream, events ${JSON.stringify(chunks.map((c) => c.event))}, error ${JSON.stringify(errors[0].data)}`;
}

const contents = (values) => (values?.messages ?? []).map((m) => m.content);
const summary = (chunks) => JSON.stringify(chunks.map((c) => [c.event, c.id]));

let thread;
let runId;
let chunks = [];

await section("runs.stream", async () => {
  let created;
  await check("runs.stream (values+updates, resumable) yields metadata, values, updates, values", async () => {
    thread = await alice.threads.create();
    assert.match(thread.thread_id, UUID);
    chunks = await collect(
      alice.runs.stream(thread.thread_id, "agent", {
        input: INPUT,
        streamMode: ["values", "updates"],
        streamResumable: true,
        onRunCreated: (meta) => {
          created = meta;
        },
      }),
    );
    assert.deepEqual(
      chunks.map((c) => c.event),
      ["metadata", "values", "updates", "values"],
      `chunks: ${JSON.stringify(chunks)}`,
    );
  });
  await check("onRunCreated reports the run and thread ids; metadata carries the run id", async () => {
    assert.ok(created, "onRunCreated was not called (no usable Content-Location header?)");
    assert.match(created.run_id, UUID);
    assert.equal(created.thread_id, thread.thread_id);
    runId = created.run_id;
    assert.deepEqual(chunks[0].data, { run_id: runId, attempt: 1 });
  });
  await check("every chunk of a resumable run has a distinct id", async () => {
    for (const chunk of chunks) {
      assert.equal(typeof chunk.id, "string", `chunk without id: ${JSON.stringify(chunk)}`);
      assert.notEqual(chunk.id, "", `chunk with empty id: ${JSON.stringify(chunk)}`);
    }
    assert.equal(new Set(chunks.map((c) => c.id)).size, chunks.length, `duplicate ids: ${summary(chunks)}`);
    return `ids ${JSON.stringify(chunks.map((c) => c.id))}`;
  });
  await check("the chunks carry the input, the node update and the final values", async () => {
    assert.deepEqual(contents(chunks[1].data), ["hi"], `first values: ${JSON.stringify(chunks[1].data)}`);
    assert.deepEqual(Object.keys(chunks[2].data), ["respond"], `updates: ${JSON.stringify(chunks[2].data)}`);
    assert.deepEqual(contents(chunks[2].data.respond), ["echo: hi"], `updates: ${JSON.stringify(chunks[2].data)}`);
    assert.deepEqual(contents(chunks[3].data), ["hi", "echo: hi"], `final values: ${JSON.stringify(chunks[3].data)}`);
  });
  await check("the run is successful after the stream closed", async () => {
    const run = await alice.runs.get(thread.thread_id, runId);
    assert.equal(run.run_id, runId);
    assert.equal(run.status, "success");
  });
});

await section("runs.joinStream (Last-Event-ID)", async () => {
  if (!runId) throw abortSection;
  await check("lastEventId = metadata id replays exactly the later events (same ids and data)", async () => {
    const replay = await collect(alice.runs.joinStream(thread.thread_id, runId, { lastEventId: chunks[0].id }));
    assert.deepEqual(replay, chunks.slice(1), `replayed ${summary(replay)}, expected ${summary(chunks.slice(1))}`);
  });
  await check("lastEventId = id of the updates event replays only the final values", async () => {
    const replay = await collect(alice.runs.joinStream(thread.thread_id, runId, { lastEventId: chunks[2].id }));
    assert.deepEqual(replay, chunks.slice(3), `replayed ${summary(replay)}, expected ${summary(chunks.slice(3))}`);
  });
  await check('lastEventId "-1" replays everything from metadata', async () => {
    const replay = await collect(alice.runs.joinStream(thread.thread_id, runId, { lastEventId: "-1" }));
    assert.deepEqual(replay, chunks, `replayed ${summary(replay)}, expected ${summary(chunks)}`);
  });
  await check("lastEventId = last id replays nothing", async () => {
    const replay = await collect(alice.runs.joinStream(thread.thread_id, runId, { lastEventId: chunks.at(-1).id }));
    assert.deepEqual(replay, [], `replayed ${JSON.stringify(replay)}`);
  });
  await check("without lastEventId, joining the finished run yields an empty stream", async () => {
    const replay = await collect(alice.runs.joinStream(thread.thread_id, runId));
    assert.deepEqual(replay, [], `got ${JSON.stringify(replay)}`);
  });
  await check("streamMode \"updates\" filters the replay to updates events", async () => {
    const replay = await collect(
      alice.runs.joinStream(thread.thread_id, runId, { lastEventId: "-1", streamMode: "updates" }),
    );
    // The spec (§4.6) does not say whether the run's `metadata` event passes the filter.
    const rest = replay.filter((c) => c.event !== "metadata");
    assert.deepEqual(rest, chunks.filter((c) => c.event === "updates"), `replayed ${summary(replay)}`);
    return `events ${JSON.stringify(replay.map((c) => c.event))}`;
  });
});

await section("authorization", async () => {
  if (!runId) throw abortSection;
  await check("user2 joinStream on user1's run fails with 404", async () =>
    streamFailsWith(bob.runs.joinStream(thread.thread_id, runId, { lastEventId: "-1" }), 404),
  );
  await check("a bad token: joinStream fails with 401", async () =>
    streamFailsWith(intruder.runs.joinStream(thread.thread_id, runId, { lastEventId: "-1" }), 401),
  );
  await check("a bad token: runs.stream fails with 401", async () =>
    streamFailsWith(intruder.runs.stream(thread.thread_id, "agent", { input: INPUT, streamMode: ["values"] }), 401),
  );
});

await section("runs.wait and messages-tuple", async () => {
  if (!thread) throw abortSection;
  await check("runs.wait on the thread returns the final values", async () => {
    const values = await alice.runs.wait(thread.thread_id, "agent", {
      input: { messages: [{ role: "human", content: "again" }] },
    });
    assert.deepEqual(contents(values), ["hi", "echo: hi", "again", "echo: again"], `got ${JSON.stringify(values)}`);
  });
  await check('runs.stream with streamMode "messages-tuple" starts with metadata and ends cleanly', async () => {
    let created;
    const parts = await collect(
      alice.runs.stream(thread.thread_id, "agent", {
        input: { messages: [{ role: "human", content: "tuple" }] },
        streamMode: "messages-tuple",
        onRunCreated: (meta) => {
          created = meta;
        },
      }),
    );
    const events = parts.map((c) => c.event);
    assert.equal(events[0], "metadata", `events: ${JSON.stringify(parts)}`);
    assert.equal(parts[0].data.run_id, created?.run_id);
    const unexpected = events.slice(1).filter((e) => e !== "messages" && e !== "end");
    assert.deepEqual(unexpected, [], `unexpected events: ${JSON.stringify(parts)}`);
    for (const part of parts.filter((c) => c.event === "messages")) {
      assert.ok(Array.isArray(part.data) && part.data.length === 2, `messages data must be [chunk, metadata]: ${JSON.stringify(part.data)}`);
    }
    const run = await alice.runs.get(thread.thread_id, created.run_id);
    assert.equal(run.status, "success");
    const texts = parts.filter((c) => c.event === "messages").map((c) => c.data[0]?.content);
    return `events ${JSON.stringify(events)}${texts.length ? `, message contents ${JSON.stringify(texts)}` : ""}`;
  });
});

finish();
