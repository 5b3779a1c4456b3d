/**
 * Dead letters that tell the story, through the real app: every failed
 * attempt kept (first cause first, bounded), and a retry that fails the way
 * the user was told of already does not message them again.
 */
import assert from "node:assert/strict";
import { REPLIES } from "../../src/conversation/answer.ts";
import {
  type DeadLetter,
  deadLetterKey,
  HISTORY_FIRST,
  HISTORY_LAST,
  messageKey,
  type MessageRecord,
  retryDeadLetter,
} from "../../src/jobs/mod.ts";
import {
  jobBackendOf,
  logEvents,
  startTestBridge,
  type TestBackend,
  type TestBridge,
  testEveryBackend,
  waitFor,
} from "../_helpers.ts";

const USER = "whatsapp:+15551234567";
/** Room for every retry a job may make (10 attempts at 1 ms doubling take well under a second). */
const RETRYING = { JOB_RETRY_BUDGET_MS: "60000", JOB_RETRY_BASE_MS: "1" };

/** The dead letter of `sid` once it has been retried `retries` times before. */
async function deadLetter(t: TestBridge, sid: string, retries = 0): Promise<DeadLetter> {
  let letter: DeadLetter | null = null;
  await waitFor(async () => {
    letter = (await t.kv.get<DeadLetter>(deadLetterKey(sid))).value;
    return letter !== null && (letter.retries ?? 0) === retries;
  }, `the dead letter of ${sid} after ${retries} retries`);
  return letter!;
}

/** Retries `sid` as the task and the console do, and runs the sweep a running bridge runs. */
async function retry(t: TestBridge, backend: TestBackend, sid: string) {
  assert.equal(await retryDeadLetter(t.kv, sid, { backend: jobBackendOf(backend) }), "queued");
  await t.bridge.sweep();
}

const summary = (letter: DeadLetter) =>
  letter.history!.notes.map((note) => `${note.round}/${note.attempt} ${note.kind}`);

testEveryBackend(
  "dead letters - an AYD outage then a failed apology: AYD is the first cause, Twilio's failures follow",
  async (backend) => {
    await using t = await startTestBridge({ backend, env: RETRYING });
    t.ayd.onAsk(() => ({ kind: "status", status: t.ayd.asks.length <= 2 ? 503 : 400 }));
    t.twilio.failNext(
      // The apology's send and its three retries in place: Twilio is away, the job waits…
      ...Array(4).fill({ status: 503, code: 20503, message: "unavailable" }),
      // … and then refuses it for good.
      { status: 400, code: 63016, message: "outside the allowed window" },
    );
    const sid = "SM" + "0".repeat(32);
    await t.sendWhatsApp({ MessageSid: sid });

    const letter = await deadLetter(t, sid);
    assert.match(letter.reason, /^AydError: ask answered 503/);
    assert.deepEqual(summary(letter), [
      "0/1 ayd",
      "0/2 ayd",
      "0/3 ayd",
      "0/3 twilio",
      "0/4 twilio",
    ]);
    const errors = letter.history!.notes.map((note) => note.error);
    assert.match(errors[2], /ask answered 400/);
    assert.match(errors[3], /Twilio answered 503/);
    assert.match(errors[4], /63016/);
    assert.deepEqual(letter.told, []);
    assert.equal(t.twilio.messages.length, 0);
  },
);

testEveryBackend(
  "dead letters - the story stays bounded: the first attempts and the last ones, however many",
  async (backend) => {
    await using t = await startTestBridge({ backend, env: RETRYING });
    t.ayd.onAsk(() => ({ kind: "status", status: 503 }));
    // The apology's send and its three retries in place: Twilio is down too.
    t.twilio.failNext(...Array(4).fill({ status: 503, code: 20503, message: "unavailable" }));
    const sid = "SM" + "a".repeat(32);
    await t.sendWhatsApp({ MessageSid: sid, Body: "revenue?" });

    const letter = await deadLetter(t, sid);
    assert.match(letter.reason, /^AydError: ask answered 503/, "the summary is the first cause");
    assert.equal(t.ayd.asks.length, 10);
    assert.equal(letter.attempts, 10);
    const notes = letter.history!.notes;
    assert.equal(notes.length, HISTORY_FIRST + HISTORY_LAST, "bounded");
    assert.equal(letter.history!.omitted, 1, "eleven failures, one not kept");
    assert.deepEqual(notes.slice(0, 3).map((n) => `${n.attempt} ${n.kind}`), [
      "1 ayd",
      "2 ayd",
      "3 ayd",
    ]);
    assert.deepEqual(notes.slice(-2).map((n) => `${n.attempt} ${n.kind}`), [
      "10 ayd",
      "10 twilio",
    ]);
    assert.match(notes.at(-1)!.error, /Twilio answered 503/);
    assert.ok(notes.every((note, i) => i === 0 || note.at >= notes[i - 1].at), "in order");
    assert.deepEqual(letter.told, [], "no apology reached the user");
    assert.equal(t.twilio.messages.length, 0);
    assert.doesNotMatch(JSON.stringify(letter.history), /revenue|15551234567/);

    // Not told yet: a retry that fails the same way now gets the apology out.
    await retry(t, backend, sid);
    const [apology] = await t.twilio.waitForMessages(USER, 1);
    assert.equal(apology.body, REPLIES.failure);
    const again = await deadLetter(t, sid, 1);
    assert.match(again.reason, /^AydError: ask answered 503/, "still the first cause");
    assert.deepEqual(again.told, [REPLIES.failure]);
    assert.equal(again.attempts, 20);
    assert.equal(again.history!.notes.length, HISTORY_FIRST + HISTORY_LAST);
    assert.equal(again.history!.omitted, 11);
    assert.deepEqual(summary(again).slice(0, 3), ["0/1 ayd", "0/2 ayd", "0/3 ayd"]);
    assert.deepEqual(summary(again).slice(-1), ["1/10 ayd"]);
    assert.equal(t.twilio.messages.length, 1);
  },
);

testEveryBackend(
  "dead letters - a retry that fails the same way sends no second apology; one that succeeds answers once",
  async (backend) => {
    await using t = await startTestBridge({ backend });
    t.ayd.onAsk(() => ({ kind: "status", status: 500 }));
    const sid = "SM" + "b".repeat(32);
    await t.sendWhatsApp({ MessageSid: sid, Body: "later please" });
    const [apology] = await t.twilio.waitForMessages(USER, 1);
    assert.equal(apology.body, REPLIES.failure);
    assert.deepEqual((await deadLetter(t, sid)).told, [REPLIES.failure]);

    await retry(t, backend, sid);
    const quiet = await deadLetter(t, sid, 1);
    assert.equal(t.ayd.asks.length, 2, "AYD was asked again");
    assert.equal(t.twilio.attempts, 1, "nothing more was sent to the user");
    assert.equal(t.twilio.messages.length, 1);
    assert.match(quiet.reason, /^AydError: ask answered 500/);
    assert.deepEqual(summary(quiet), ["0/1 ayd", "1/1 ayd"]);
    assert.equal(quiet.history!.notes[1].quiet, true);
    assert.deepEqual(quiet.told, [REPLIES.failure], "the user still has that one apology");
    assert.equal(quiet.attempts, 2);
    const finished = logEvents(t.logs, "job.finished").filter((e) => e.message_sid === sid);
    assert.deepEqual(finished.map((e) => e.apology_withheld), [undefined, true]);

    t.ayd.onAsk(null);
    await retry(t, backend, sid);
    const replies = await t.twilio.waitForMessages(USER, 2);
    assert.equal(replies[1].body, "Answer to: later please");
    await waitFor(async () => {
      const record = (await t.kv.get<MessageRecord>(messageKey(sid))).value;
      return record?.state === "answered";
    }, "the answer recorded");
    assert.equal((await t.kv.get(deadLetterKey(sid))).value, null);
    assert.equal(t.twilio.messages.length, 2, "the answer once, after the one apology");
  },
);

Deno.test("dead letters - a retry that fails another way with the apology the user has sends nothing", async () => {
  await using t = await startTestBridge();
  t.ayd.onAsk(() => ({ kind: "status", status: 500 }));
  const sid = "SM" + "c".repeat(32);
  await t.sendWhatsApp({ MessageSid: sid });
  await t.twilio.waitForMessages(USER, 1);
  await deadLetter(t, sid);

  // AYD answers now, but Twilio refuses the answer: the apology would be word for word the first.
  t.ayd.onAsk(null);
  t.twilio.failNext({ status: 400, code: 21211, message: "Invalid 'To' Phone Number" });
  await retry(t, "kv-queue", sid);
  const letter = await deadLetter(t, sid, 1);
  assert.equal(t.twilio.attempts, 2, "the refused answer, and no apology after it");
  assert.equal(t.twilio.messages.length, 1);
  assert.deepEqual(summary(letter), ["0/1 ayd", "1/1 twilio"]);
  assert.equal(letter.history!.notes[1].quiet, true);
  assert.match(letter.history!.notes[1].error, /21211/);
});

Deno.test("dead letters - a retry that fails another way, with news for the user, sends that failure's reply once", async () => {
  await using t = await startTestBridge();
  // First Twilio refuses the answer; the apology goes out.
  t.twilio.failNext({ status: 400, code: 21211, message: "Invalid 'To' Phone Number" });
  const sid = "SM" + "d".repeat(32);
  await t.sendWhatsApp({ MessageSid: sid });
  const [apology] = await t.twilio.waitForMessages(USER, 1);
  assert.equal(apology.body, REPLIES.failure);
  const first = await deadLetter(t, sid);
  assert.match(first.reason, /^TwilioSendError: .*21211/);

  // Then AYD keeps refusing the session's token: not Twilio, and not what the user was told.
  t.ayd.onAsk(() => ({ kind: "status", status: 401 }));
  await retry(t, "kv-queue", sid);
  const replies = await t.twilio.waitForMessages(USER, 2);
  assert.equal(replies[1].body, REPLIES.renewalFailed);
  const letter = await deadLetter(t, sid, 1);
  assert.deepEqual(summary(letter), ["0/1 twilio", "1/1 ayd"]);
  assert.match(letter.reason, /21211/, "the first cause stays the summary");
  assert.deepEqual(letter.told, [REPLIES.failure, REPLIES.renewalFailed]);
  assert.equal(t.twilio.messages.length, 2);
});
