/**
 * Order, exactly-once and retries through the real app, under both job
 * backends.
 */
import assert from "node:assert/strict";
import { REPLIES } from "../../src/conversation/answer.ts";
import { replyPartKey } from "../../src/conversation/handler.ts";
import {
  type DeadLetter,
  deadLetterKey,
  messageKey,
  type MessageRecord,
  newRecord,
} from "../../src/jobs/mod.ts";
import { addToLane, laneKey, leaseKey } from "../../src/jobs/lanes.ts";
import { logEvents, startTestBridge, testEverySetting, waitFor } from "../_helpers.ts";

const ALICE = "whatsapp:+15551234567";
const BOB = "whatsapp:+15557654321";
const RETRYING = { JOB_RETRY_BUDGET_MS: "30000", JOB_RETRY_BASE_MS: "20" };

/** Where a message left by an earlier process waits: at its arrival, as before places existed. */
const lanePlace = (message: { phone: string; messageSid: string; receivedAt: number }) => ({
  ...message,
  seq: message.receivedAt,
  touchedAt: message.receivedAt,
});

testEverySetting(
  "order - three quick messages are answered in order, one at a time",
  async (backend, mode) => {
    await using t = await startTestBridge({ backend, mode });
    let running = 0;
    let overlapped = false;
    t.ayd.onAsk(async ({ question }) => {
      overlapped ||= ++running > 1;
      // The first question is the slowest; it must still be answered first.
      const delay = question === "q1" ? 150 : 10;
      await new Promise((resolve) => setTimeout(resolve, delay));
      running--;
      return { kind: "answer", text: `a-${question}` };
    });
    for (const body of ["q1", "q2", "q3"]) {
      const response = await t.sendWhatsApp({ Body: body });
      await response.body?.cancel();
    }
    const replies = await t.twilio.waitForMessages(ALICE, 3);
    assert.deepEqual(replies.map((r) => r.body), ["a-q1", "a-q2", "a-q3"]);
    assert.deepEqual(t.ayd.asks.map((a) => a.question), ["q1", "q2", "q3"]);
    assert.equal(overlapped, false, "one question at a time per number");
  },
);

testEverySetting("order - a slow number does not hold up another", async (backend, mode) => {
  await using t = await startTestBridge({ backend, mode });
  let releaseAlice = () => {};
  const aliceGate = new Promise<void>((resolve) => releaseAlice = resolve);
  t.ayd.onAsk(async ({ question }) => {
    if (question === "alice") await aliceGate;
    return { kind: "answer", text: `a-${question}` };
  });
  await (await t.sendWhatsApp({ Body: "alice" })).body?.cancel();
  await (await t.sendWhatsApp({ Body: "bob", From: BOB })).body?.cancel();
  const [bob] = await t.twilio.waitForMessages(BOB, 1);
  assert.equal(bob.body, "a-bob");
  assert.equal(t.twilio.messages.filter((m) => m.to === ALICE).length, 0);
  releaseAlice();
  await t.twilio.waitForMessages(ALICE, 1);
});

testEverySetting(
  "retry - AYD 5xx, then an answer: the user gets only the answer",
  async (backend, mode) => {
    await using t = await startTestBridge({ backend, mode, env: RETRYING });
    let calls = 0;
    t.ayd.onAsk(({ question }) =>
      ++calls <= 2 ? { kind: "status", status: 502 } : { kind: "answer", text: `a-${question}` }
    );
    await t.sendWhatsApp({ Body: "flaky" });
    const [reply] = await t.twilio.waitForMessages(ALICE, 1);
    assert.equal(reply.body, "a-flaky");
    assert.equal(t.ayd.asks.length, 3);
    assert.equal(logEvents(t.logs, "job.retry_scheduled").length, 2);
    await t.bridge.sweep();
    assert.equal(t.twilio.messages.length, 1, "no apology, no second reply");
  },
);

testEverySetting("retry - a stream cut mid-answer is asked again", async (backend, mode) => {
  await using t = await startTestBridge({ backend, mode, env: RETRYING });
  let calls = 0;
  t.ayd.onAsk(() =>
    ++calls === 1
      ? { kind: "cut", text: "The late orders are: 1001, 1002, 1003, 1004, 1005." }
      : { kind: "answer", text: "The late orders are: 1001, 1002, 1003, 1004, 1005." }
  );
  await t.sendWhatsApp();
  const [reply] = await t.twilio.waitForMessages(ALICE, 1);
  assert.equal(reply.body, "The late orders are: 1001, 1002, 1003, 1004, 1005.");
});

testEverySetting(
  "retry - Twilio down longer than one send's retries: delivered once, later",
  async (backend, mode) => {
    await using t = await startTestBridge({ backend, mode, env: RETRYING });
    t.twilio.failNext(...Array(6).fill({ status: 503, code: 20503 }));
    await t.sendWhatsApp({ Body: "patience" });
    const [reply] = await t.twilio.waitForMessages(ALICE, 1);
    assert.equal(reply.body, "Answer to: patience");
    assert.equal(t.twilio.attempts, 7);
    assert.equal(t.ayd.asks.length, 1, "the answer is kept, not asked again");
  },
);

testEverySetting(
  "retry - a spent budget ends in one apology and a dead letter with its reason",
  async (backend, mode) => {
    // A budget that leaves room for retries even on a slow machine: the
    // first attempt must end within it for a second one to start.
    await using t = await startTestBridge({
      backend,
      mode,
      env: { JOB_RETRY_BUDGET_MS: "1500", JOB_RETRY_BASE_MS: "20" },
    });
    t.ayd.onAsk(() => ({ kind: "status", status: 503 }));
    const sid = "SM" + "f".repeat(32);
    await t.sendWhatsApp({ MessageSid: sid });
    const [reply] = await t.twilio.waitForMessages(ALICE, 1);
    assert.equal(reply.body, REPLIES.failure);
    await waitFor(async () => (await t.kv.get(deadLetterKey(sid))).value !== null, "dead letter");
    const letter = (await t.kv.get<DeadLetter>(deadLetterKey(sid))).value!;
    assert.match(letter.reason, /ask answered 503/);
    assert.ok(letter.attempts > 1, `retried ${letter.attempts} times`);
    assert.equal(t.ayd.asks.length, letter.attempts);
    assert.equal(t.twilio.messages.length, 1);
  },
);

testEverySetting("retry - a permanent AYD refusal is not retried", async (backend, mode) => {
  await using t = await startTestBridge({ backend, mode, env: RETRYING });
  t.ayd.onAsk(() => ({ kind: "status", status: 400 }));
  await t.sendWhatsApp();
  const [reply] = await t.twilio.waitForMessages(ALICE, 1);
  assert.equal(reply.body, REPLIES.failure);
  assert.equal(t.ayd.asks.length, 1);
});

testEverySetting(
  "once - a redelivered or swept job of an answered message does nothing",
  async (backend, mode) => {
    await using t = await startTestBridge({ backend, mode });
    const sid = "SM" + "a".repeat(32);
    await t.sendWhatsApp({ MessageSid: sid });
    await t.twilio.waitForMessages(ALICE, 1);
    await waitFor(
      async () => (await t.kv.get<MessageRecord>(messageKey(sid))).value?.state === "answered",
      "the answered state",
    );
    // A stray trigger for the lane, as a queue redelivery would bring.
    if (backend === "kv-queue") await t.kv.enqueue({ kind: "lane", phone: "+15551234567" });
    await t.bridge.sweep();
    await (await t.sendWhatsApp({ Body: "next" })).body?.cancel();
    await t.twilio.waitForMessages(ALICE, 2);
    assert.equal(t.twilio.messages.length, 2);
    assert.equal(t.ayd.asks.length, 2);
  },
);

testEverySetting(
  "resume - a job stopped after part 2 of 4 sends parts 3 and 4 only",
  async (backend, mode) => {
    await using t = await startTestBridge({ backend, mode });
    // What a process that died after sending two parts leaves in KV.
    const now = Date.now();
    const message = {
      messageSid: "SM" + "b".repeat(32),
      phone: "+15551234567",
      body: "long question",
      numMedia: 0,
      receivedAt: now,
    };
    const record: MessageRecord = {
      ...newRecord(message, message.receivedAt),
      state: "replying",
      attempt: 1,
      parts: 4,
      sentParts: 2,
      outcome: "answered",
    };
    const op = t.kv.atomic().set(messageKey(message.messageSid), record)
      .set(leaseKey(message.phone), { owner: "dead-process", takenAt: now - 60_000 });
    for (let i = 0; i < 4; i++) {
      op.set(replyPartKey(message.messageSid, i), { body: `part ${i + 1}` });
    }
    await addToLane(op, lanePlace(message)).commit();

    await t.bridge.sweep();
    const replies = await t.twilio.waitForMessages(ALICE, 2);
    assert.deepEqual(replies.map((r) => r.body), ["part 3", "part 4"]);
    assert.equal(t.ayd.asks.length, 0, "the answer was known; AYD is not asked again");
    await waitFor(
      async () => (await t.kv.get(laneKey(message.phone))).value === null,
      "the lane to empty",
    );
    assert.deepEqual(await Array.fromAsync(t.kv.list({ prefix: ["reply_parts"] })), []);
  },
);

testEverySetting(
  "resume - a lane held by a process with no heartbeat is taken over at once",
  async (backend, mode) => {
    await using t = await startTestBridge({ backend, mode });
    const now = Date.now();
    const message = {
      messageSid: "SM" + "c".repeat(32),
      phone: "+15551234567",
      body: "asked before the crash",
      numMedia: 0,
      receivedAt: now,
    };
    const record: MessageRecord = {
      ...newRecord(message, message.receivedAt),
      state: "asking",
      attempt: 1,
    };
    await addToLane(
      t.kv.atomic().set(messageKey(message.messageSid), record)
        .set(leaseKey(message.phone), { owner: "dead-process", takenAt: now }),
      lanePlace(message),
    ).commit();
    await t.bridge.sweep();
    const [reply] = await t.twilio.waitForMessages(ALICE, 1);
    assert.equal(reply.body, "Answer to: asked before the crash");
    const saved = async () =>
      (await t.kv.get<MessageRecord>(messageKey(message.messageSid))).value!;
    await waitFor(async () => (await saved()).state === "answered", "the answered state");
    assert.equal((await saved()).attempt, 2, "the interrupted attempt counts");
  },
);

testEverySetting(
  "limits - an endless answer is cut at 20 parts, and says so",
  async (backend, mode) => {
    await using t = await startTestBridge({ backend, mode, env: { MAX_SMS_CHARS: "200" } });
    t.ayd.onAsk(() => ({
      kind: "answer",
      text: "Row of results. ".repeat(2_000),
      chunkBytes: 4096,
    }));
    await t.sendWhatsApp();
    const replies = await t.twilio.waitForMessages(ALICE, 20);
    await waitFor(
      async () => (await Array.fromAsync(t.kv.list({ prefix: ["queue"] }))).length === 0,
      "the job to end",
    );
    assert.equal(t.twilio.messages.length, 20);
    for (const reply of replies) assert.ok(reply.body.length <= 200);
    assert.match(replies[19].body, /… \(answer cut: too long for WhatsApp\)$/);
  },
);

testEverySetting(
  "limits - a message whose job keeps dying is given up with an apology",
  async (backend, mode) => {
    await using t = await startTestBridge({ backend, mode });
    const message = {
      messageSid: "SM" + "4".repeat(32),
      phone: "+15551234567",
      body: "the question that crashes the process",
      numMedia: 0,
      receivedAt: Date.now(),
    };
    await addToLane(
      t.kv.atomic().set(messageKey(message.messageSid), {
        ...newRecord(message, message.receivedAt),
        state: "asking",
        attempt: 10,
      }),
      lanePlace(message),
    ).commit();
    await t.bridge.sweep();
    const [reply] = await t.twilio.waitForMessages(ALICE, 1);
    assert.equal(reply.body, REPLIES.failure);
    assert.equal(t.ayd.asks.length, 0);
    await waitFor(
      async () => (await t.kv.get(deadLetterKey(message.messageSid))).value !== null,
      "dead letter",
    );
    const letter = (await t.kv.get<DeadLetter>(deadLetterKey(message.messageSid))).value!;
    assert.equal(letter.reason, "interrupted too many times");
  },
);
