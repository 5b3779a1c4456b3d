import assert from "node:assert/strict";
import { costOf, createGroupCommit } from "../../src/jobs/_group_commit.ts";
import { logEvents, startTestBridge, testEveryBackend, waitFor } from "../_helpers.ts";
import { openTestKv } from "../_kv.ts";

/** A KV whose commits are counted. */
async function countingKv() {
  const kv = await openTestKv();
  const counter = { commits: 0 };
  const counted = new Proxy(kv, {
    get(target, name) {
      if (name !== "atomic") {
        const value = Reflect.get(target, name);
        return typeof value === "function" ? value.bind(target) : value;
      }
      return () => {
        const op = target.atomic();
        const commit = op.commit.bind(op);
        op.commit = () => (counter.commits++, commit());
        return op;
      };
    },
  });
  return { kv, counted: counted as Deno.Kv, counter };
}

Deno.test("group commit - operations that arrive together share commits", async () => {
  const { kv, counted, counter } = await countingKv();
  const group = createGroupCommit(counted);
  const results = await Promise.all(
    Array.from({ length: 40 }, (_, i) => group.commit((op) => op.set(["k", i], i), [`k${i}`])),
  );
  assert.ok(results.every((r) => r.ok));
  assert.ok(counter.commits < 40, `${counter.commits} commits for 40 operations`);
  const stored = await Array.fromAsync(kv.list<number>({ prefix: ["k"] }));
  assert.equal(stored.length, 40);
  kv.close();
});

Deno.test("group commit - one alone is committed at once, alone", async () => {
  const { kv, counted, counter } = await countingKv();
  const group = createGroupCommit(counted);
  assert.ok((await group.commit((op) => op.set(["a"], 1), ["a"])).ok);
  assert.equal(counter.commits, 1);
  kv.close();
});

Deno.test("group commit - two operations on one key never share a commit", async () => {
  const { kv, counted } = await countingKv();
  const group = createGroupCommit(counted);
  // Twilio retrying a message while the first delivery is being committed.
  const claim = () =>
    group.commit((op) => op.check({ key: ["sid"], versionstamp: null }).set(["sid"], 1), ["SM1"]);
  const results = await Promise.all([claim(), claim(), claim()]);
  assert.deepEqual(results.map((r) => r.ok).sort(), [false, false, true]);
  kv.close();
});

Deno.test("group commit - a failed check fails its own operation only", async () => {
  const { kv, counted } = await countingKv();
  await kv.set(["taken"], true);
  const group = createGroupCommit(counted);
  const results = await Promise.all(Array.from({ length: 6 }, (_, i) =>
    group.commit(
      (op) =>
        i === 3
          ? op.check({ key: ["taken"], versionstamp: null }).set(["x", i], i)
          : op.set(["x", i], i),
      [`x${i}`],
    )));
  assert.deepEqual(results.map((r) => r.ok), [true, true, true, false, true, true]);
  assert.equal((await kv.get(["x", 3])).versionstamp, null);
  kv.close();
});

Deno.test("group commit - an operation that throws rejects its caller only", async () => {
  const { kv, counted } = await countingKv();
  const group = createGroupCommit(counted);
  const results = await Promise.allSettled([
    group.commit((op) => op.set(["ok", 1], 1), ["1"]),
    group.commit(() => {
      throw new Error("broken operation");
    }, ["2"]),
    group.commit((op) => op.set(["ok", 3], 3), ["3"]),
  ]);
  assert.deepEqual(results.map((r) => r.status), ["fulfilled", "rejected", "fulfilled"]);
  assert.ok((await kv.get(["ok", 3])).versionstamp);
  kv.close();
});

Deno.test("group commit - a group holds at most 10 checks, the most a denokv server allows", async () => {
  const kv = await openTestKv();
  const checksPerCommit: number[] = [];
  const counted = new Proxy(kv, {
    get(target, name) {
      if (name !== "atomic") {
        const value = Reflect.get(target, name);
        return typeof value === "function" ? value.bind(target) : value;
      }
      return () => {
        const op = target.atomic();
        let checks = 0;
        const check = op.check.bind(op);
        op.check = (...c) => (checks += c.length, check(...c));
        const commit = op.commit.bind(op);
        op.commit = () => (checksPerCommit.push(checks), commit());
        return op;
      };
    },
  });
  const group = createGroupCommit(counted);
  // Operations shaped like the webhook's: two checks each.
  const results = await Promise.all(Array.from({ length: 23 }, (_, i) =>
    group.commit(
      (op) =>
        op.check({ key: ["m", i], versionstamp: null }, { key: ["n", i], versionstamp: null })
          .set(["m", i], i).set(["n", i], i),
      [`m${i}`],
    )));
  assert.ok(results.every((r) => r.ok), "none refused, even over KV Connect");
  assert.ok(checksPerCommit.every((n) => n <= 10), `checks per commit: ${checksPerCommit}`);
  assert.ok(checksPerCommit.some((n) => n === 10), "and groups are filled up to the limit");
  kv.close();
});

Deno.test("group commit - what an operation costs is measured, not guessed", () => {
  const small = costOf((op) =>
    op.check({ key: ["a"], versionstamp: null }).set(["a"], { x: 1 }).sum(["n"], 1n).enqueue("t")
  );
  assert.equal(small.checks, 1);
  assert.equal(small.mutations, 3, "a set, a sum and an enqueue");
  const large = costOf((op) => op.set(["a"], "x".repeat(10_000)));
  assert.ok(large.bytes > 10_000 && small.bytes < 1_000, `${small.bytes} and ${large.bytes} bytes`);
});

testEveryBackend(
  "webhook - a burst of retries of one message is answered once",
  async (backend) => {
    await using t = await startTestBridge({ backend });
    t.ayd.onAsk(({ question }) => ({ kind: "answer", text: `answer to ${question}` }));
    const sid = "SM" + "b".repeat(32);
    const responses = await Promise.all([
      ...Array.from({ length: 5 }, () => t.sendWhatsApp({ MessageSid: sid, Body: "retried" })),
      ...Array.from(
        { length: 10 },
        (_, i) =>
          t.sendWhatsApp({ From: `whatsapp:+1555100${String(i).padStart(4, "0")}`, Body: `q${i}` }),
      ),
    ]);
    assert.ok(responses.every((r) => r.status === 200));
    await Promise.all(responses.map((r) => r.body?.cancel()));
    await waitFor(() => logEvents(t.logs, "job.finished").length === 11, "11 answers");
    assert.equal(t.twilio.messages.filter((m) => m.body === "answer to retried").length, 1);
    assert.equal(logEvents(t.logs, "webhook.duplicate").length, 4);
  },
);
