// Smoke test: drives threads, assistants and the store of a running graphward through the
// official JS client (@langchain/langgraph-sdk), authenticated with an `Authorization` header.
//
// Usage: node smoke.mjs <server-url>
//
// The server must run the repo's example app (langgraph.json at the root, auth in
// examples/auth.py) on fresh state: tokens `user1-token` / `user2-token`, everything a user
// creates is stamped with `metadata.owner` and hidden from other users (404), store
// namespaces must start with the user's id (403 otherwise), bad tokens get 401.
//
// Prints one line per check ("ok - ..." / "not ok - ..."); a failing check skips the rest of
// its section. Exits non-zero when any check failed.

import assert from "node:assert/strict";
import { Client } from "@langchain/langgraph-sdk";
import { check, finish, section } from "./harness.mjs";

const apiUrl = process.argv[2];
if (!apiUrl) {
  console.error("usage: node smoke.mjs <server-url>");
  process.exit(2);
}

const client = (token) => new Client({ apiUrl, defaultHeaders: { Authorization: `Bearer ${token}` } });
const alice = client("user1-token");
const bob = client("user2-token");
const intruder = client("not-a-token");
const anonymous = new Client({ apiUrl });

// uuid5(6ba7b821-9dad-11d1-80b4-00c04fd430c8, "agent"): the example graph's system assistant.
const SYSTEM_ASSISTANT = "fe096781-5601-53d2-b2f6-0d3403f7e9ca";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Awaits a call that must fail with an HTTP error of `status`; returns the error. */
async function rejectsWith(promise, status) {
  let result;
  try {
    result = await promise;
  } catch (error) {
    assert.equal(error?.status, status, `expected HTTP ${status}, got: ${error?.message ?? error}`);
    return error;
  }
  assert.fail(`expected HTTP ${status}, but the call succeeded with ${JSON.stringify(result)}`);
}

await section("threads", async () => {
  let mine;
  let theirs;
  let copy;
  await check("threads.create stamps the owner into metadata", async () => {
    mine = await alice.threads.create({ metadata: { topic: "js-smoke" } });
    assert.match(mine.thread_id, UUID);
    assert.deepEqual(mine.metadata, { topic: "js-smoke", owner: "user1" });
    assert.equal(mine.status, "idle");
    assert.equal(mine.values, null);
    theirs = await bob.threads.create({ metadata: { topic: "js-smoke" } });
    assert.deepEqual(theirs.metadata, { topic: "js-smoke", owner: "user2" });
  });
  await check("threads.get returns the thread", async () => {
    const got = await alice.threads.get(mine.thread_id);
    assert.equal(got.thread_id, mine.thread_id);
    assert.deepEqual(got.metadata, mine.metadata);
    assert.equal(got.created_at, mine.created_at);
  });
  await check("threads.search finds only the caller's threads", async () => {
    const all = await alice.threads.search();
    assert.deepEqual(all.map((t) => t.thread_id), [mine.thread_id]);
    const filtered = await alice.threads.search({ metadata: { topic: "js-smoke" }, limit: 5 });
    assert.deepEqual(filtered.map((t) => t.thread_id), [mine.thread_id]);
    assert.deepEqual(await alice.threads.search({ metadata: { topic: "other" } }), []);
    assert.equal(await alice.threads.count(), 1);
  });
  await check("threads.update merges metadata", async () => {
    const updated = await alice.threads.update(mine.thread_id, { metadata: { extra: 1 } });
    assert.equal(updated.thread_id, mine.thread_id);
    assert.deepEqual(updated.metadata, { topic: "js-smoke", owner: "user1", extra: 1 });
    const got = await alice.threads.get(mine.thread_id);
    assert.deepEqual(got.metadata, updated.metadata);
  });
  await check("threads.copy creates a new thread with the same metadata", async () => {
    copy = await alice.threads.copy(mine.thread_id);
    assert.match(copy.thread_id, UUID);
    assert.notEqual(copy.thread_id, mine.thread_id);
    assert.deepEqual(copy.metadata, { topic: "js-smoke", owner: "user1", extra: 1 });
    assert.equal(copy.status, "idle");
    assert.equal((await alice.threads.get(copy.thread_id)).thread_id, copy.thread_id);
    assert.equal(await alice.threads.count(), 2);
  });
  await check("user2 cannot see user1's thread (404)", async () => {
    await rejectsWith(bob.threads.get(mine.thread_id), 404);
    await rejectsWith(bob.threads.update(mine.thread_id, { metadata: { hijacked: true } }), 404);
    await rejectsWith(bob.threads.delete(mine.thread_id), 404);
    const bobs = await bob.threads.search();
    assert.deepEqual(bobs.map((t) => t.thread_id), [theirs.thread_id]);
    assert.deepEqual((await alice.threads.get(mine.thread_id)).metadata, { topic: "js-smoke", owner: "user1", extra: 1 });
  });
  await check("threads.delete removes the thread (then 404)", async () => {
    assert.equal(await alice.threads.delete(copy.thread_id), undefined);
    await alice.threads.delete(mine.thread_id);
    await rejectsWith(alice.threads.get(mine.thread_id), 404);
    await rejectsWith(alice.threads.get(copy.thread_id), 404);
    assert.deepEqual(await alice.threads.search(), []);
    await bob.threads.delete(theirs.thread_id);
  });
});

await section("assistants", async () => {
  let assistant;
  await check("assistants.search hides the system assistant", async () => {
    const found = await alice.assistants.search();
    assert.ok(Array.isArray(found), `expected an array, got ${JSON.stringify(found)}`);
    assert.deepEqual(found, []);
    await rejectsWith(alice.assistants.get(SYSTEM_ASSISTANT), 404);
  });
  await check("assistants.create (graphId agent) stamps the owner", async () => {
    assistant = await alice.assistants.create({
      graphId: "agent",
      name: "js-smoke",
      metadata: { team: "a" },
      config: { tags: ["smoke"] },
    });
    assert.match(assistant.assistant_id, UUID);
    assert.equal(assistant.graph_id, "agent");
    assert.equal(assistant.name, "js-smoke");
    assert.deepEqual(assistant.metadata, { team: "a", owner: "user1" });
    assert.deepEqual(assistant.config.tags, ["smoke"]);
    assert.equal(assistant.version, 1);
    assert.equal(assistant.description, null);
  });
  await check("assistants.get returns the assistant", async () => {
    const got = await alice.assistants.get(assistant.assistant_id);
    assert.deepEqual(got, assistant);
    const found = await alice.assistants.search({ graphId: "agent" });
    assert.deepEqual(found.map((a) => a.assistant_id), [assistant.assistant_id]);
  });
  await check("user2 cannot see user1's assistant (404)", async () => {
    await rejectsWith(bob.assistants.get(assistant.assistant_id), 404);
    assert.deepEqual(await bob.assistants.search(), []);
  });
  await check("assistants.update creates version 2 and merges metadata", async () => {
    const updated = await alice.assistants.update(assistant.assistant_id, {
      name: "js-smoke-2",
      description: "updated by the JS smoke test",
      metadata: { extra: true },
    });
    assert.equal(updated.assistant_id, assistant.assistant_id);
    assert.equal(updated.version, 2);
    assert.equal(updated.name, "js-smoke-2");
    assert.equal(updated.description, "updated by the JS smoke test");
    assert.deepEqual(updated.metadata, { team: "a", owner: "user1", extra: true });
    assert.equal((await alice.assistants.get(assistant.assistant_id)).version, 2);
  });
  await check("assistants.getVersions lists versions newest first", async () => {
    const versions = await alice.assistants.getVersions(assistant.assistant_id);
    assert.deepEqual(versions.map((v) => v.version), [2, 1]);
    assert.deepEqual(versions.map((v) => v.name), ["js-smoke-2", "js-smoke"]);
    assert.ok(versions.every((v) => v.assistant_id === assistant.assistant_id && v.graph_id === "agent"));
  });
  await check("assistants.delete removes the assistant (then 404)", async () => {
    await rejectsWith(bob.assistants.delete(assistant.assistant_id), 404);
    assert.equal(await alice.assistants.delete(assistant.assistant_id), undefined);
    await rejectsWith(alice.assistants.get(assistant.assistant_id), 404);
    assert.deepEqual(await alice.assistants.search(), []);
  });
});

await section("store", async () => {
  await check("store.putItem into the user's namespace", async () => {
    assert.equal(await alice.store.putItem(["user1", "prefs"], "theme", { color: "dark", n: 1 }), undefined);
    assert.equal(await alice.store.putItem(["user1", "notes"], "n1", { text: "hello" }), undefined);
  });
  await check("store.getItem returns the item", async () => {
    const item = await alice.store.getItem(["user1", "prefs"], "theme");
    assert.deepEqual(item.namespace, ["user1", "prefs"]);
    assert.equal(item.key, "theme");
    assert.deepEqual(item.value, { color: "dark", n: 1 });
    assert.equal(typeof item.created_at, "string");
    assert.equal(typeof item.updated_at, "string");
    assert.equal(await alice.store.getItem(["user1", "prefs"], "missing"), null);
  });
  await check("store.searchItems by prefix and filter", async () => {
    const { items } = await alice.store.searchItems(["user1"]);
    assert.deepEqual(items.map((i) => i.key).sort(), ["n1", "theme"]);
    assert.ok(items.every((i) => "score" in i), `every search item should carry score: ${JSON.stringify(items)}`);
    const filtered = await alice.store.searchItems(["user1"], { filter: { color: "dark" } });
    assert.deepEqual(filtered.items.map((i) => i.key), ["theme"]);
  });
  await check("store.listNamespaces under the user's prefix", async () => {
    const { namespaces } = await alice.store.listNamespaces({ prefix: ["user1"] });
    assert.deepEqual(namespaces, [["user1", "notes"], ["user1", "prefs"]]);
    const shallow = await alice.store.listNamespaces({ prefix: ["user1"], maxDepth: 1 });
    assert.deepEqual(shallow.namespaces, [["user1"]]);
  });
  await check("user2 cannot touch user1's namespace (403)", async () => {
    await rejectsWith(bob.store.getItem(["user1", "prefs"], "theme"), 403);
    await rejectsWith(bob.store.putItem(["user1", "prefs"], "theme", { color: "light" }), 403);
    await rejectsWith(bob.store.searchItems(["user1"]), 403);
    await rejectsWith(bob.store.deleteItem(["user1", "prefs"], "theme"), 403);
  });
  await check("store.deleteItem removes the item", async () => {
    assert.equal(await alice.store.deleteItem(["user1", "prefs"], "theme"), undefined);
    assert.equal(await alice.store.getItem(["user1", "prefs"], "theme"), null);
    await alice.store.deleteItem(["user1", "notes"], "n1");
    assert.deepEqual((await alice.store.searchItems(["user1"])).items, []);
  });
});

await section("authentication", async () => {
  await check("a bad token gets 401", async () => {
    await rejectsWith(intruder.threads.create({ metadata: { topic: "x" } }), 401);
    await rejectsWith(intruder.threads.search(), 401);
    await rejectsWith(intruder.assistants.search(), 401);
    await rejectsWith(intruder.store.getItem(["user1", "prefs"], "theme"), 401);
  });
  await check("no Authorization header gets 401", async () => {
    await rejectsWith(anonymous.threads.search(), 401);
  });
});

finish();
