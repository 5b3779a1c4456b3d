/** Heartbeats, takeover and fencing, raced on purpose with clocks under the test's control. */
import assert from "node:assert/strict";
import { acquireLease, type Lease, type LeaseBusy, leaseKey } from "../../src/jobs/lanes.ts";
import { createPresence, workerKey } from "../../src/jobs/presence.ts";
import { createLogger, silentLogger } from "../../src/log.ts";
import { openTestKv } from "../_kv.ts";

const PHONE = "+15551234567";
const TTL = 3_000;

/** A process's presence with its own monotonic clock. */
function processOn(kv: Deno.Kv, name: string, log = silentLogger) {
  const clock = { now: 0 };
  let ids = 0;
  const presence = createPresence({
    kv,
    ttlMs: TTL,
    log,
    clock: () => clock.now,
    newId: () => `${name}-${++ids}`,
  });
  return { presence, clock };
}

const isLease = (value: Lease | LeaseBusy): value is Lease => !("heldBy" in value);

Deno.test("presence - a worker seen unchanged for the TTL is dead; one that keeps beating is not", async () => {
  using kv = await openTestKv();
  const a = processOn(kv, "a");
  const b = processOn(kv, "b");
  assert.ok(await a.presence.beat());
  assert.deepEqual(await b.presence.liveness("a-1"), { alive: true, recheckInMs: TTL });
  b.clock.now += TTL - 1;
  assert.equal((await b.presence.liveness("a-1")).alive, true, "not yet: it may beat any moment");
  assert.ok(await a.presence.beat(), "a beats: what b saw is renewed");
  assert.equal((await b.presence.liveness("a-1")).alive, true, "b sees the new heartbeat");
  b.clock.now += TTL - 1;
  assert.equal((await b.presence.liveness("a-1")).alive, true);
  b.clock.now += 1;
  assert.equal((await b.presence.liveness("a-1")).alive, false, "silent for the whole TTL");
  assert.equal((await kv.get(workerKey("a-1"))).value, null, "its heartbeat is removed");
});

Deno.test("presence - a slow answer is never taken over while its process beats", async () => {
  using kv = await openTestKv();
  const a = processOn(kv, "a");
  const b = processOn(kv, "b");
  await a.presence.beat();
  const lease = await acquireLease(kv, PHONE, a.presence);
  assert.ok(isLease(lease));
  // 60 s of answer: a beats every third of the TTL, b tries to take the lane all along.
  for (let t = 0; t < 60_000; t += TTL / 3) {
    a.clock.now += TTL / 3;
    b.clock.now += TTL / 3;
    assert.ok(await a.presence.beat());
    assert.ok(lease.held(), "a may still act");
    const taken = await acquireLease(kv, PHONE, b.presence);
    assert.ok(!isLease(taken), `b took the lane of a live process at ${t} ms`);
  }
  assert.equal(await lease.release(), "released");
});

Deno.test("presence - of two takers of a dead worker's lane, exactly one wins", async () => {
  using kv = await openTestKv();
  const dead = processOn(kv, "dead");
  await dead.presence.beat();
  assert.ok(isLease(await acquireLease(kv, PHONE, dead.presence)));
  const takers = ["b", "c", "d"].map((name) => processOn(kv, name));
  for (const t of takers) {
    await t.presence.beat();
    assert.ok(!isLease(await acquireLease(kv, PHONE, t.presence)), "first seen: alive");
    t.clock.now += TTL;
  }
  const results = await Promise.all(takers.map((t) => acquireLease(kv, PHONE, t.presence)));
  assert.equal(results.filter(isLease).length, 1, "one lease, whoever got there first");
  const owner = (await kv.get<{ owner: string }>(leaseKey(PHONE))).value!.owner;
  assert.ok(["b-1", "c-1", "d-1"].includes(owner));
});

Deno.test("presence - a process that comes back after being declared dead writes nothing under its old lease", async () => {
  using kv = await openTestKv();
  const a = processOn(kv, "a");
  const b = processOn(kv, "b");
  await a.presence.beat();
  const old = await acquireLease(kv, PHONE, a.presence);
  assert.ok(isLease(old));
  await b.presence.beat();
  await b.presence.liveness("a-1");
  // a is paused (SIGSTOP): its clock runs on, it beats no more.
  a.clock.now += 10_000;
  b.clock.now += TTL;
  await b.presence.beat();
  const taken = await acquireLease(kv, PHONE, b.presence);
  assert.ok(isLease(taken), "b takes the lane of the silent process");
  // a resumes: its own clock says its heartbeat is old, so it does not act.
  assert.equal(old.held(), false);
  assert.equal(await old.commit((op) => op.set(["progress"], "from a")), false);
  assert.equal((await kv.get(["progress"])).value, null, "the old holder's commit was refused");
  assert.equal(await old.release(), "lost");
  // Its next heartbeat comes after the gap: a new id, and the old lease stays lost.
  assert.ok(await a.presence.beat());
  assert.equal(a.presence.id(), "a-2");
  assert.equal(old.held(), false);
  assert.ok(taken.held(), "b keeps the lane");
  assert.equal(await taken.commit((op) => op.set(["progress"], "from b")), true);
});

Deno.test("presence - a process whose heartbeat cannot be written stops acting before anyone may call it dead", async () => {
  using kv = await openTestKv();
  let failing = false;
  const flaky = new Proxy(kv, {
    get(target, property) {
      if (property === "atomic" && failing) {
        return () => ({
          check() {
            return this;
          },
          set() {
            return this;
          },
          commit: () => Promise.reject(new TypeError("database is locked")),
        });
      }
      const value = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  const lines: string[] = [];
  const a = processOn(flaky, "a", createLogger({ level: "warn", write: (l) => lines.push(l) }));
  const b = processOn(kv, "b");
  await a.presence.beat();
  const lease = await acquireLease(kv, PHONE, a.presence);
  assert.ok(isLease(lease));
  await b.presence.liveness("a-1");
  failing = true; // KV busy: a's heartbeats fail from now on
  let stoppedAt: number | undefined;
  for (let t = 0; t <= TTL; t += 100) {
    a.clock.now = t;
    b.clock.now = t;
    assert.equal(await a.presence.beat(), false);
    if (!lease.held()) stoppedAt ??= t;
    const alive = (await b.presence.liveness("a-1")).alive;
    if (!alive) {
      assert.ok(stoppedAt !== undefined && stoppedAt < t, "a stopped before b called it dead");
      break;
    }
  }
  assert.ok(stoppedAt !== undefined && stoppedAt <= (TTL * 2) / 3);
  assert.ok(lines.some((line) => line.includes('"event":"worker.heartbeat_failed"')));
});

Deno.test("presence - liveness does not read the wall clock, so a clock that jumps changes nothing", async () => {
  using kv = await openTestKv();
  let wall = Date.UTC(2026, 11, 1);
  const a = createPresence({ kv, ttlMs: TTL, log: silentLogger, now: () => wall, clock: () => 0 });
  const b = processOn(kv, "b");
  await a.beat();
  await b.presence.liveness(a.id());
  wall -= 3_600_000; // the wall clock steps back an hour
  await a.beat();
  b.clock.now += TTL;
  assert.equal((await b.presence.liveness(a.id())).alive, true, "a beat; nothing else matters");
  wall += 7_200_000; // and forward two
  assert.ok(a.fresh());
});

Deno.test("presence - leases under this process's own former id are taken back at once", async () => {
  using kv = await openTestKv();
  const a = processOn(kv, "a");
  await a.presence.beat();
  assert.ok(isLease(await acquireLease(kv, PHONE, a.presence)));
  a.clock.now += TTL; // a gap (an event loop stalled, say)
  assert.ok(await a.presence.beat());
  assert.equal(a.presence.id(), "a-2");
  const again = await acquireLease(kv, PHONE, a.presence);
  assert.ok(isLease(again), "no need to wait a TTL for one's own old id");
});

Deno.test("presence - reaping removes dead workers only, and a stopped process leaves no heartbeat", async () => {
  using kv = await openTestKv();
  const a = processOn(kv, "a");
  const b = processOn(kv, "b");
  const c = processOn(kv, "c");
  await Promise.all([a.presence.beat(), b.presence.beat(), c.presence.beat()]);
  assert.deepEqual(await a.presence.reap(), []);
  a.clock.now += TTL;
  await c.presence.beat(); // c lives, b went silent
  assert.deepEqual(await a.presence.reap(), ["b-1"]);
  await c.presence.stop();
  assert.equal((await kv.get(workerKey("c-1"))).value, null);
  assert.deepEqual(await a.presence.reap(), [], "nothing left to reap");
});
