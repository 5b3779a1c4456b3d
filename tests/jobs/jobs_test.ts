/** Accepting messages: one commit decides a message's place, whatever the clocks say. */
import assert from "node:assert/strict";
import {
  createJobs,
  headOfLane,
  type InboundMessage,
  numberKey,
  type NumberState,
  queuePrefix,
  readNumberState,
} from "../../src/jobs/mod.ts";
import { openTestKv } from "../_kv.ts";

const PHONE = "+15551234567";
const message = (sid: string, receivedAt: number): InboundMessage => ({
  messageSid: sid,
  phone: PHONE,
  body: sid,
  numMedia: 0,
  receivedAt,
});

const lane = async (kv: Deno.Kv) =>
  (await Array.fromAsync(kv.list<string>({ prefix: queuePrefix(PHONE) }))).map((e) => e.value);

Deno.test("order - places follow the accepting commits, not the timestamps taken before them", async () => {
  using kv = await openTestKv();
  const jobs = createJobs(kv, "outbox");
  const now = Date.now();
  // Stamped later but committed first (another instance, a re-admit, a clock stepping back).
  const first = message("SM-first", now + 5_000);
  const second = message("SM-second", now);
  assert.equal(await jobs.submit(first, { number: await readNumberState(kv, PHONE) }), "queued");
  assert.equal(await jobs.submit(second, { number: await readNumberState(kv, PHONE) }), "queued");
  assert.deepEqual(await lane(kv), ["SM-first", "SM-second"]);
  assert.equal((await headOfLane(kv, PHONE))?.messageSid, "SM-first");
  jobs.close();
});

Deno.test("order - a message submitted with the number's state read before another's commit must decide again", async () => {
  using kv = await openTestKv();
  const jobs = createJobs(kv, "outbox");
  const number = await readNumberState(kv, PHONE);
  assert.equal(await jobs.submit(message("SM1", 1), { number }), "queued");
  assert.equal(await jobs.submit(message("SM2", 2), { number }), "conflict");
  assert.equal(await jobs.submit(message("SM1", 1), { number }), "duplicate");
  const fresh = await readNumberState(kv, PHONE);
  assert.equal(await jobs.submit(message("SM2", 2), { number: fresh }), "queued");
  assert.deepEqual(await lane(kv), ["SM1", "SM2"]);
  jobs.close();
});

Deno.test("order - places never fall below the arrival time, so lanes keyed by arrival keep their order", async () => {
  using kv = await openTestKv();
  const jobs = createJobs(kv, "outbox");
  const now = Date.now();
  // What a version keyed by arrival time left waiting.
  await kv.set(["queue", PHONE, now - 1_000, "SM-old"], "SM-old");
  await jobs.submit(message("SM-new", now), { number: await readNumberState(kv, PHONE) });
  assert.deepEqual(await lane(kv), ["SM-old", "SM-new"]);
  const state = (await kv.get<NumberState>(numberKey(PHONE))).value!;
  assert.equal(state.seq, now);
  jobs.close();
});
