/** The ordering, lease and runner logic, raced on purpose. */
import assert from "node:assert/strict";
import {
  acquireLease,
  addToLane,
  headOfLane,
  laneKey,
  type Lease,
  type LeaseBusy,
  leaseKey,
  pendingLanes,
} from "../../src/jobs/lanes.ts";
import { createPresence, type Presence } from "../../src/jobs/presence.ts";
import { silentLogger } from "../../src/log.ts";
import {
  createLaneRunner,
  type Disposition,
  failuresKey,
  type MessageHandler,
} from "../../src/jobs/runner.ts";
import { messageKey, type MessageRecord, newRecord } from "../../src/jobs/jobs.ts";
import { openTestKv } from "../_kv.ts";

const PHONE = "+15551234567";

function isLease(value: Lease | LeaseBusy): value is Lease {
  return !("heldBy" in value);
}

/** A message at place `seq` of its lane, as the accepting commit leaves it. */
async function arrive(kv: Deno.Kv, sid: string, seq: number, phone = PHONE) {
  const message = { messageSid: sid, phone, body: sid, numMedia: 0, receivedAt: seq };
  await addToLane(
    kv.atomic().set(messageKey(sid), newRecord(message, seq)),
    { phone, seq, messageSid: sid, touchedAt: seq },
  ).commit();
}

/** A process's presence, heartbeat written. */
async function presenceOn(kv: Deno.Kv): Promise<Presence> {
  const presence = createPresence({ kv, ttlMs: 5_000, log: silentLogger });
  assert.ok(await presence.beat());
  return presence;
}

/** Marks a record answered and takes it out of its lane, as the conversation handler does. */
function answer(record: MessageRecord, lease: Lease) {
  return lease.commit((op) =>
    op.set(messageKey(record.messageSid), { ...record, state: "answered" })
      .delete(["queue", record.phone, record.seq!, record.messageSid])
  );
}

/** A handler from a `handle` function; `abandon` records what was given up. */
function handler(
  handle: MessageHandler["handle"],
  abandoned: { sid: string; reason: string }[] = [],
): MessageHandler {
  return {
    handle,
    async abandon(item, reason, lease) {
      abandoned.push({ sid: item.messageSid, reason });
      await lease.commit((op) => op.delete(item.queueKey));
    },
  };
}

const runnerDeps = async (kv: Deno.Kv) => ({
  kv,
  presence: await presenceOn(kv),
  log: silentLogger,
  concurrency: 4,
});

Deno.test("lanes - messages wait in the order of their places", async () => {
  using kv = await openTestKv();
  await arrive(kv, "SM2", 2);
  await arrive(kv, "SM1", 1);
  await arrive(kv, "SM3", 3);
  assert.equal((await headOfLane(kv, PHONE))?.messageSid, "SM1");
  assert.deepEqual(await Array.fromAsync(pendingLanes(kv)), [PHONE]);
});

Deno.test("lease - two workers for one number: exactly one gets the lane", async () => {
  using kv = await openTestKv();
  const presences = await Promise.all([1, 2, 3].map(() => presenceOn(kv)));
  const results = await Promise.all(presences.map((p) => acquireLease(kv, PHONE, p)));
  const held = results.filter(isLease);
  assert.equal(held.length, 1);
  assert.equal(await held[0].release(), "released");
});

Deno.test("lease - a message arriving while the lease is released keeps the lane with its holder", async () => {
  using kv = await openTestKv();
  await arrive(kv, "SM1", 1);
  const lease = await acquireLease(kv, PHONE, await presenceOn(kv));
  assert.ok(isLease(lease));
  await kv.delete(["queue", PHONE, 1, "SM1"]);
  const seenEmpty = await kv.get(laneKey(PHONE));
  await arrive(kv, "SM2", 2); // lands between the look and the release
  assert.equal(await lease.release(seenEmpty), "work_arrived", "the holder must look again");
  assert.ok(lease.held(), "and it still holds the lane");
  assert.equal((await headOfLane(kv, PHONE))?.messageSid, "SM2");
  const nowEmpty = await kv.get(laneKey(PHONE));
  await kv.delete(["queue", PHONE, 2, "SM2"]);
  assert.equal(await lease.release(nowEmpty), "released");
  assert.equal((await kv.get(laneKey(PHONE))).value, null, "an empty lane is unmarked");
  assert.equal((await kv.get(leaseKey(PHONE))).value, null);
});

Deno.test("lease - taken by another, the holder learns it at its next commit", async () => {
  using kv = await openTestKv();
  const lease = await acquireLease(kv, PHONE, await presenceOn(kv));
  assert.ok(isLease(lease));
  await kv.set(leaseKey(PHONE), { owner: "someone else", takenAt: 0 });
  assert.equal(await lease.commit((op) => op.set(["progress"], 1)), false);
  assert.equal(lease.held(), false);
  assert.equal((await kv.get(["progress"])).value, null);
  assert.equal(await lease.release(), "lost");
});

Deno.test("runner - one number's messages are handled one at a time, in order, across two runners", async () => {
  using kv = await openTestKv();
  for (let i = 1; i <= 6; i++) await arrive(kv, `SM${i}`, i);
  const handled: string[] = [];
  let inFlight = 0;
  let overlap = false;
  const handle = async (record: MessageRecord, lease: Lease): Promise<Disposition> => {
    inFlight++;
    overlap ||= inFlight > 1;
    await new Promise((resolve) => setTimeout(resolve, 5));
    handled.push(record.messageSid);
    inFlight--;
    await answer(record, lease);
    return "done";
  };
  const scheduled: number[] = [];
  const runner = async () =>
    createLaneRunner({
      ...await runnerDeps(kv),
      handler: handler(handle),
      schedule: (_phone, delay) => {
        scheduled.push(delay);
        return Promise.resolve();
      },
    });
  const [a, b] = [await runner(), await runner()];
  await Promise.all([a.drain(PHONE), b.drain(PHONE), a.drain(PHONE)]);
  assert.deepEqual(handled, ["SM1", "SM2", "SM3", "SM4", "SM5", "SM6"]);
  assert.equal(overlap, false);
  assert.deepEqual(scheduled, [], "the runner that found the lane busy leaves it to its holder");
  assert.equal((await kv.get(laneKey(PHONE))).value, null);
  await a.stop(100);
  await b.stop(100);
});

Deno.test("runner - a message waiting for its retry holds back the ones behind it", async () => {
  using kv = await openTestKv();
  await arrive(kv, "SM1", 1);
  await arrive(kv, "SM2", 2);
  const retryAt = Date.now() + 60_000;
  await kv.set(messageKey("SM1"), {
    ...(await kv.get<MessageRecord>(messageKey("SM1"))).value!,
    nextAttemptAt: retryAt,
  });
  const scheduled: number[] = [];
  const handled: string[] = [];
  const runner = createLaneRunner({
    ...await runnerDeps(kv),
    handler: handler((record) => {
      handled.push(record.messageSid);
      return Promise.resolve("done");
    }),
    schedule: (_phone, delay) => {
      scheduled.push(delay);
      return Promise.resolve();
    },
  });
  await runner.drain(PHONE);
  assert.deepEqual(handled, []);
  assert.equal(scheduled.length, 1);
  assert.ok(scheduled[0] > 59_000 && scheduled[0] <= 60_000);
  assert.equal((await kv.get(leaseKey(PHONE))).value, null, "the lane is let go meanwhile");
  await runner.stop(100);
});

Deno.test("runner - different numbers run concurrently up to the bound", async () => {
  using kv = await openTestKv();
  const phones = Array.from({ length: 6 }, (_, i) => `+1555000000${i}`);
  for (const [i, phone] of phones.entries()) await arrive(kv, `SM${i}`, 1, phone);
  let inFlight = 0;
  let peak = 0;
  let done = 0;
  const runner = createLaneRunner({
    ...await runnerDeps(kv),
    concurrency: 3,
    handler: handler(async (record, lease) => {
      peak = Math.max(peak, ++inFlight);
      await new Promise((resolve) => setTimeout(resolve, 20));
      inFlight--;
      await answer(record, lease);
      done++;
      return "done";
    }),
    schedule: () => Promise.resolve(),
  });
  await runner.sweep();
  await Promise.all(phones.map((phone) => runner.drain(phone)));
  assert.equal(done, 6);
  assert.equal(peak, 3);
  assert.deepEqual(await Array.fromAsync(pendingLanes(kv)), []);
  await runner.stop(100);
});

Deno.test("runner - a sweep starts the lanes and returns while one of them is still busy", async () => {
  using kv = await openTestKv();
  await arrive(kv, "SM1", 1, "+15550000001");
  await arrive(kv, "SM2", 1, "+15550000002");
  const { promise: hold, resolve: letGo } = Promise.withResolvers<void>();
  const started: string[] = [];
  const runner = createLaneRunner({
    ...await runnerDeps(kv),
    handler: handler(async (record, lease) => {
      started.push(record.messageSid);
      if (record.messageSid === "SM1") await hold; // a long answer
      await answer(record, lease);
      return "done";
    }),
    schedule: () => Promise.resolve(),
  });
  // Before, the sweep waited for every lane it touched: the next cron run could not start.
  await runner.sweep();
  while (started.length < 2) await new Promise((resolve) => setTimeout(resolve, 1));
  assert.equal((await headOfLane(kv, "+15550000001"))?.messageSid, "SM1", "still being answered");
  letGo();
  await runner.drain("+15550000001");
  await runner.stop(1_000);
});

Deno.test("runner - a run whose lease was taken returns instead of looking again and again", async () => {
  using kv = await openTestKv();
  let lists = 0;
  const counting = new Proxy(kv, {
    get(target, property) {
      if (property === "list") lists++;
      const value = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  await arrive(kv, "SM1", 1);
  const runner = createLaneRunner({
    ...await runnerDeps(counting),
    handler: handler(async (record) => {
      // Declared dead meanwhile: another process now holds the lane.
      await kv.set(leaseKey(PHONE), { owner: "another process", takenAt: 0 });
      await kv.delete(["queue", PHONE, 1, record.messageSid]);
      return "done";
    }),
    schedule: () => Promise.resolve(),
  });
  await runner.drain(PHONE);
  assert.ok(lists <= 3, `the run ended after ${lists} looks at its lane`);
  await runner.stop(100);
});

Deno.test("runner - a message whose handling keeps throwing is given up after its budget, with a dead letter", async () => {
  using kv = await openTestKv();
  await arrive(kv, "SM1", 1);
  await arrive(kv, "SM2", 2);
  const abandoned: { sid: string; reason: string }[] = [];
  const handled: string[] = [];
  const retries: number[] = [];
  const runner: ReturnType<typeof createLaneRunner> = createLaneRunner({
    ...await runnerDeps(kv),
    failureBudget: 3,
    handler: handler(async (record, lease) => {
      handled.push(record.messageSid);
      if (record.messageSid === "SM1") throw new TypeError("Value too large (max 65536 bytes)");
      await answer(record, lease);
      return "done";
    }, abandoned),
    schedule: (phone, delay) => {
      retries.push(delay);
      queueMicrotask(() => runner.drain(phone)); // retries come due at once here
      return Promise.resolve();
    },
  });
  await runner.drain(PHONE);
  while (handled.at(-1) !== "SM2") await new Promise((resolve) => setTimeout(resolve, 1));
  await runner.stop(1_000);
  assert.deepEqual(handled, ["SM1", "SM1", "SM1", "SM2"], "three runs, then the next message");
  assert.equal(retries.length, 2, "retried with backoff within the budget");
  assert.deepEqual(abandoned.map((a) => a.sid), ["SM1"]);
  assert.match(abandoned[0].reason, /gave up after 3 failed runs: TypeError: Value too large/);
  assert.equal(await headOfLane(kv, PHONE), undefined);
  assert.equal((await kv.get<number>(failuresKey("SM1"))).value, 3);
});

Deno.test("runner - a message whose record expired while it waited is given up, not dropped", async () => {
  using kv = await openTestKv();
  await arrive(kv, "SM1", 1);
  await kv.delete(messageKey("SM1")); // what KV's expiry does after 7 days
  const abandoned: { sid: string; reason: string }[] = [];
  const runner = createLaneRunner({
    ...await runnerDeps(kv),
    handler: handler(() => Promise.reject(new Error("never called")), abandoned),
    schedule: () => Promise.resolve(),
  });
  await runner.drain(PHONE);
  await runner.stop(100);
  assert.deepEqual(abandoned, [{
    sid: "SM1",
    reason: "the message expired before it was answered",
  }]);
  assert.equal(await headOfLane(kv, PHONE), undefined);
});

Deno.test("runner - storage trouble is waited out, never counted against the message", async () => {
  using kv = await openTestKv();
  await arrive(kv, "SM1", 1);
  let calls = 0;
  const scheduled: number[] = [];
  const runner = createLaneRunner({
    ...await runnerDeps(kv),
    failureBudget: 1,
    handler: handler(() => {
      calls++;
      return Promise.reject(new TypeError("database or disk is full"));
    }),
    schedule: (_phone, delay) => {
      scheduled.push(delay);
      return Promise.resolve();
    },
  });
  for (let i = 0; i < 3; i++) await runner.drain(PHONE);
  await runner.stop(100);
  assert.equal(calls, 3);
  assert.equal(scheduled.length, 3, "each run looks again later");
  assert.ok(scheduled[2] > scheduled[0] / 2, "backing off");
  assert.equal((await kv.get(failuresKey("SM1"))).value, null, "no failure counted");
  assert.equal((await headOfLane(kv, PHONE))?.messageSid, "SM1", "still waiting");
});

Deno.test("runner - a trigger that fires while a run lets go of its lane is not lost", async () => {
  using kv = await openTestKv();
  await arrive(kv, "SM1", 1);
  let calls = 0;
  const runner: ReturnType<typeof createLaneRunner> = createLaneRunner({
    ...await runnerDeps(kv),
    handler: handler(async (record, lease) => {
      if (++calls === 1) return { retryAt: Date.now() }; // due at once
      await answer(record, lease);
      return "done";
    }),
    // The retry fires before the first run has released the lease.
    schedule: (phone) => {
      runner.drain(phone);
      return Promise.resolve();
    },
  });
  await runner.drain(PHONE);
  const deadline = Date.now() + 5_000;
  while (calls < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  await runner.stop(1_000);
  assert.equal(calls, 2, "the message was handled again without waiting for a sweep");
  assert.equal(await headOfLane(kv, PHONE), undefined);
});

Deno.test("runner - a trigger while the run is busy with a message costs no second run", async () => {
  using kv = await openTestKv();
  let laneLooks = 0;
  const counted = new Proxy(kv, {
    get(target, name) {
      const value = Reflect.get(target, name);
      if (name !== "get") return typeof value === "function" ? value.bind(target) : value;
      return (key: Deno.KvKey) => {
        if (key[0] === "lanes" && key[1] === PHONE) laneLooks++;
        return target.get(key);
      };
    },
  });
  await arrive(kv, "SM1", 1);
  const { promise: release, resolve } = Promise.withResolvers<void>();
  const { promise: started, resolve: start } = Promise.withResolvers<void>();
  const runner = createLaneRunner({
    ...await runnerDeps(counted),
    concurrency: 1,
    handler: handler(async (record, lease) => {
      start();
      await release;
      await answer(record, lease);
      return "done";
    }),
    schedule: () => Promise.resolve(),
  });
  const run = runner.drain(PHONE);
  await started;
  // What a queue message or an in-process start does for a message that arrived meanwhile.
  await arrive(kv, "SM2", 2);
  const again = runner.drain(PHONE);
  resolve();
  await Promise.all([run, again]);
  // One slot: another number's run starts only after any re-run of this one ended.
  await runner.drain("+15557654321");
  assert.equal(await headOfLane(kv, PHONE), undefined, "SM2 was answered by the same run");
  // Looks: before SM1, before SM2, and the empty lane it let go of. A second run would add more.
  assert.equal(laneLooks, 3);
});
