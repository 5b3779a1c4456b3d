/** The ordering and lease logic, raced on purpose. */
import assert from "node:assert/strict";
import {
  acquireLease,
  addToLane,
  headOfLane,
  laneKey,
  type Lease,
  leaseKey,
  pendingLanes,
} from "../../src/jobs/lanes.ts";
import { openTestKv } from "../_kv.ts";
import { silentLogger } from "../../src/log.ts";
import { createLaneRunner, type Disposition } from "../../src/jobs/runner.ts";
import { messageKey, type MessageRecord, newRecord } from "../../src/jobs/jobs.ts";

const PHONE = "+15551234567";

function isLease(value: Lease | { heldUntil: number }): value is Lease {
  return !("heldUntil" in value);
}

async function arrive(kv: Deno.Kv, sid: string, receivedAt: number, phone = PHONE) {
  const message = { messageSid: sid, phone, body: sid, numMedia: 0, receivedAt };
  await addToLane(kv.atomic().set(messageKey(sid), newRecord(message)), message).commit();
}

Deno.test("lanes - messages wait in arrival order", async () => {
  using kv = await openTestKv();
  await arrive(kv, "SM2", 2000);
  await arrive(kv, "SM1", 1000);
  await arrive(kv, "SM3", 3000);
  assert.equal((await headOfLane(kv, PHONE))?.messageSid, "SM1");
  assert.deepEqual(await Array.fromAsync(pendingLanes(kv)), [PHONE]);
});

Deno.test("lease - two workers for one number: exactly one gets the lane", async () => {
  using kv = await openTestKv();
  const results = await Promise.all(
    ["a", "b", "c"].map((owner) => acquireLease(kv, PHONE, { owner, ttlMs: 5_000 })),
  );
  const held = results.filter(isLease);
  assert.equal(held.length, 1);
  for (const busy of results.filter((r) => !isLease(r))) {
    assert.ok((busy as { heldUntil: number }).heldUntil > Date.now());
  }
  await held[0].release();
});

Deno.test("lease - a message arriving while the lease is released makes the release fail", async () => {
  using kv = await openTestKv();
  await arrive(kv, "SM1", 1000);
  const lease = await acquireLease(kv, PHONE, { owner: "a", ttlMs: 5_000 });
  assert.ok(isLease(lease));
  await kv.delete(["queue", PHONE, 1000, "SM1"]);
  const seenEmpty = await kv.get(laneKey(PHONE));
  await arrive(kv, "SM2", 2000); // lands between the look and the release
  assert.equal(await lease.release(seenEmpty), false, "the holder must look again");
  assert.ok(lease.held(), "and it still holds the lane");
  assert.equal((await headOfLane(kv, PHONE))?.messageSid, "SM2");
  const nowEmpty = await kv.get(laneKey(PHONE));
  await kv.delete(["queue", PHONE, 2000, "SM2"]);
  assert.equal(await lease.release(nowEmpty), true);
  assert.equal((await kv.get(laneKey(PHONE))).value, null, "an empty lane is unmarked");
  assert.equal((await kv.get(leaseKey(PHONE))).value, null);
});

Deno.test("lease - one that expires under a slow job is taken over, and the slow job is fenced off", async () => {
  using kv = await openTestKv();
  let clock = 1_000_000;
  const now = () => clock;
  const slow = await acquireLease(kv, PHONE, { owner: "slow", ttlMs: 60_000, now });
  assert.ok(isLease(slow));
  clock += 61_000; // the slow worker froze past its lease
  assert.equal(slow.held(), false, "the slow worker knows its time ran out");
  const fresh = await acquireLease(kv, PHONE, { owner: "fresh", ttlMs: 60_000, now });
  assert.ok(isLease(fresh), "an expired lease can be taken");
  const wrote = await slow.commit((op) => op.set(["progress"], "from the slow job"));
  assert.equal(wrote, false, "the old holder's commits are refused");
  assert.equal((await kv.get(["progress"])).value, null);
  assert.equal(await fresh.commit((op) => op.set(["progress"], "fresh")), true);
  await slow.release();
  await fresh.release();
});

Deno.test("lease - the holder renews it while a job runs longer than its lifetime", async () => {
  using kv = await openTestKv();
  const lease = await acquireLease(kv, PHONE, { owner: "a", ttlMs: 300 });
  assert.ok(isLease(lease));
  const first = (await kv.get<{ until: number }>(leaseKey(PHONE))).value!.until;
  await new Promise((resolve) => setTimeout(resolve, 450));
  const later = (await kv.get<{ until: number }>(leaseKey(PHONE))).value!.until;
  assert.ok(later > first, "the heartbeat moved the expiry on");
  assert.ok(lease.held());
  const other = await acquireLease(kv, PHONE, { owner: "b", ttlMs: 300 });
  assert.ok(!isLease(other), "nobody else can take it meanwhile");
  await lease.release();
});

Deno.test("runner - one number's messages are handled one at a time, in order, across two runners", async () => {
  using kv = await openTestKv();
  for (let i = 1; i <= 6; i++) await arrive(kv, `SM${i}`, i * 1000);
  const handled: string[] = [];
  let inFlight = 0;
  let overlap = false;
  const handle = async (record: MessageRecord, lease: Lease): Promise<Disposition> => {
    inFlight++;
    overlap ||= inFlight > 1;
    await new Promise((resolve) => setTimeout(resolve, 5));
    handled.push(record.messageSid);
    inFlight--;
    const done = { ...record, state: "answered" as const };
    await lease.commit((op) =>
      op.set(messageKey(record.messageSid), done)
        .delete(["queue", record.phone, record.receivedAt, record.messageSid])
    );
    return "done";
  };
  const retries: number[] = [];
  const runner = (owner: string) =>
    createLaneRunner({
      kv,
      handle,
      schedule: (_phone, delay) => {
        retries.push(delay);
        return Promise.resolve();
      },
      concurrency: 4,
      leaseMs: 5_000,
      owner,
      log: silentLogger,
    });
  const [a, b] = [runner("a"), runner("b")];
  await Promise.all([a.drain(PHONE), b.drain(PHONE), a.drain(PHONE)]);
  assert.deepEqual(handled, ["SM1", "SM2", "SM3", "SM4", "SM5", "SM6"]);
  assert.equal(overlap, false);
  assert.equal(retries.length, 1, "the runner that lost the race looks again after the lease");
  assert.equal((await kv.get(laneKey(PHONE))).value, null);
  await a.stop(100);
  await b.stop(100);
});

Deno.test("runner - a message waiting for its retry holds back the ones behind it", async () => {
  using kv = await openTestKv();
  await arrive(kv, "SM1", 1000);
  await arrive(kv, "SM2", 2000);
  const retryAt = Date.now() + 60_000;
  await kv.set(messageKey("SM1"), {
    ...(await kv.get<MessageRecord>(messageKey("SM1"))).value!,
    nextAttemptAt: retryAt,
  });
  const scheduled: number[] = [];
  const handled: string[] = [];
  const runner = createLaneRunner({
    kv,
    handle: (record) => {
      handled.push(record.messageSid);
      return Promise.resolve("done");
    },
    schedule: (_phone, delay) => {
      scheduled.push(delay);
      return Promise.resolve();
    },
    concurrency: 1,
    leaseMs: 5_000,
    owner: "a",
    log: silentLogger,
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
  for (const [i, phone] of phones.entries()) await arrive(kv, `SM${i}`, 1000, phone);
  let inFlight = 0;
  let peak = 0;
  const runner = createLaneRunner({
    kv,
    handle: async (record, lease) => {
      peak = Math.max(peak, ++inFlight);
      await new Promise((resolve) => setTimeout(resolve, 20));
      inFlight--;
      await lease.commit((op) =>
        op.delete(["queue", record.phone, record.receivedAt, record.messageSid])
      );
      return "done";
    },
    schedule: () => Promise.resolve(),
    concurrency: 3,
    leaseMs: 5_000,
    owner: "a",
    log: silentLogger,
  });
  await runner.sweep();
  assert.equal(peak, 3);
  assert.deepEqual(await Array.fromAsync(pendingLanes(kv)), []);
  await runner.stop(100);
});

Deno.test("runner - a trigger that fires while a run lets go of its lane is not lost", async () => {
  using kv = await openTestKv();
  await arrive(kv, "SM1", 1000);
  let calls = 0;
  const runner: ReturnType<typeof createLaneRunner> = createLaneRunner({
    kv,
    handle: async (record, lease) => {
      if (++calls === 1) return { retryAt: Date.now() }; // due at once
      await lease.commit((op) =>
        op.delete(["queue", record.phone, record.receivedAt, record.messageSid])
      );
      return "done";
    },
    // The retry fires before the first run has released the lease.
    schedule: (phone) => {
      runner.drain(phone);
      return Promise.resolve();
    },
    concurrency: 2,
    leaseMs: 5_000,
    owner: "a",
    log: silentLogger,
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
  await arrive(kv, "SM1", 1000);
  const { promise: release, resolve } = Promise.withResolvers<void>();
  const { promise: started, resolve: start } = Promise.withResolvers<void>();
  const runner = createLaneRunner({
    kv: counted,
    handle: async (record, lease) => {
      start();
      await release;
      await lease.commit((op) =>
        op.delete(["queue", record.phone, record.receivedAt, record.messageSid])
          .set(messageKey(record.messageSid), { ...record, state: "answered" })
      );
      return "done";
    },
    schedule: () => Promise.resolve(),
    concurrency: 1,
    leaseMs: 5_000,
    owner: "a",
    log: silentLogger,
  });
  const run = runner.drain(PHONE);
  await started;
  // What a queue message or an in-process start does for a message that arrived meanwhile.
  await arrive(kv, "SM2", 2000);
  const again = runner.drain(PHONE);
  resolve();
  await Promise.all([run, again]);
  // One slot: another number's run starts only after any re-run of this one ended.
  await runner.drain("+15557654321");
  assert.equal(await headOfLane(kv, PHONE), undefined, "SM2 was answered by the same run");
  // Looks: before SM1, before SM2, and the empty lane it let go of. A second run would add more.
  assert.equal(laneLooks, 3);
});
