/**
 * Chat mode: a question whose asking was interrupted is looked up in the
 * chat's history before it is asked again. What an interrupted run leaves in
 * KV is written by hand (a record "asking" in a chat, its lane held by a
 * process without a heartbeat), with the history the fake AYD holds.
 */
import assert from "node:assert/strict";
import { REPLIES } from "../../src/conversation/answer.ts";
import { chatKey } from "../../src/ayd/chats.ts";
import { replyPartKey } from "../../src/conversation/handler.ts";
import { messageKey, type MessageRecord, newRecord } from "../../src/jobs/mod.ts";
import { addToLane, leaseKey } from "../../src/jobs/lanes.ts";
import {
  CHAT_MODE_BACKEND,
  logEvents,
  startTestBridge,
  type TestBridge,
  waitFor,
} from "../_helpers.ts";
import { type FaultyKv, faultyKv } from "../_faulty_kv.ts";

const USER = "whatsapp:+15551234567";
const PHONE = "+15551234567";

/**
 * A chat of the number with `history` in it, and a message "asking" in it
 * as a dead process left it: anchored after the history's first `anchoredAt`
 * messages (`null`: the chat was empty; undefined: unknown).
 */
async function interruptedAsk(
  t: TestBridge,
  question: string,
  history: ["user" | "assistant", string][],
  anchoredAt: number | null | undefined,
  /** Parts that went out while AYD was still writing, before the process died. */
  sent: string[] = [],
) {
  const created = await fetch(`${t.ayd.url}/api/chatbot/newChat`, {
    method: "POST",
    headers: { authorization: `Bearer ${t.config.aydApiKey}`, "content-type": "application/json" },
    body: JSON.stringify({ botid: t.config.aydChatId }),
  });
  const { chatid } = await created.json();
  const messages = history.map(([role, content]) => t.ayd.addMessage(chatid, { role, content }));
  const anchor = anchoredAt === null || anchoredAt === undefined
    ? anchoredAt
    : messages[anchoredAt - 1].id;
  const now = Date.now();
  const message = {
    messageSid: "SM" + "8".repeat(32),
    phone: PHONE,
    body: question,
    numMedia: 0,
    receivedAt: now,
  };
  const record: MessageRecord = {
    ...newRecord(message, now),
    state: "asking",
    attempt: 1,
    askedIn: anchor === undefined ? { chatid } : { chatid, anchor },
    ...sent.length > 0 && { sentParts: sent.length },
  };
  const op = t.kv.atomic();
  sent.forEach((body, i) => op.set(replyPartKey(message.messageSid, i), { body }));
  await addToLane(
    op
      .set(messageKey(message.messageSid), record)
      .set(chatKey(PHONE), { chatid, createdAt: now })
      .set(leaseKey(PHONE), { owner: "dead-process", takenAt: now }),
    { phone: PHONE, seq: now, messageSid: message.messageSid, touchedAt: now },
  ).commit();
  await t.bridge.sweep();
  return { chatid, sid: message.messageSid };
}

const startChatBridge = (options: Parameters<typeof startTestBridge>[0] = {}) =>
  startTestBridge({ backend: CHAT_MODE_BACKEND, mode: "chat", ...options });

async function settled(t: TestBridge) {
  await waitFor(
    async () => (await Array.fromAsync(t.kv.list({ prefix: ["queue"] }))).length === 0,
    "the job to end",
  );
}

Deno.test("recovery - the answer AYD recorded after the interrupted question is delivered, not asked for", async () => {
  await using t = await startChatBridge();
  await interruptedAsk(t, "late orders?", [
    ["user", "earlier question"],
    ["assistant", "earlier answer"],
    ["user", "late orders?"],
    ["assistant", "**12** orders shipped late."],
  ], 2);
  const [reply] = await t.twilio.waitForMessages(USER, 1);
  assert.equal(reply.body, "*12* orders shipped late.", "formatted as any answer");
  assert.equal(t.ayd.asks.length, 0);
  await settled(t);
  assert.equal(logEvents(t.logs, "ask.recovered").length, 1);
  assert.equal(t.twilio.messages.length, 1);
});

Deno.test("recovery - the same question asked again on purpose gets a new answer, not the last one", async () => {
  await using t = await startChatBridge();
  // Asked and answered before; asked again, and interrupted before it reached AYD.
  await interruptedAsk(t, "sales today?", [
    ["user", "sales today?"],
    ["assistant", "100 EUR so far"],
  ], 2);
  const [reply] = await t.twilio.waitForMessages(USER, 1);
  assert.equal(reply.body, "Answer to: sales today?");
  assert.equal(t.ayd.asks.length, 1);
  assert.equal(logEvents(t.logs, "ask.not_recovered")[0].found, "not_asked");
});

Deno.test("recovery - a history that ends with the question is asked again", async () => {
  await using t = await startChatBridge();
  await interruptedAsk(t, "late orders?", [
    ["user", "q0"],
    ["assistant", "a0"],
    ["user", "late orders?"],
  ], 2);
  const [reply] = await t.twilio.waitForMessages(USER, 1);
  assert.equal(reply.body, "Answer to: late orders?");
  assert.equal(t.ayd.asks.length, 1);
  assert.equal(logEvents(t.logs, "ask.not_recovered")[0].found, "unanswered");
});

Deno.test("recovery - an empty chat, or one whose anchor is unknown, is asked again", async () => {
  await using t = await startChatBridge();
  await interruptedAsk(t, "late orders?", [], null);
  await t.twilio.waitForMessages(USER, 1);
  assert.equal(t.ayd.asks.length, 1);
  await settled(t);

  await using u = await startChatBridge();
  await interruptedAsk(
    u,
    "late orders?",
    [["user", "late orders?"], ["assistant", "12"]],
    undefined,
  );
  const [reply] = await u.twilio.waitForMessages(USER, 1);
  assert.equal(reply.body, "Answer to: late orders?", "without an anchor, no guess");
  assert.equal(logEvents(u.logs, "ask.not_recovered")[0].reason, "no anchor");
});

Deno.test("recovery - a question pages of history back is still found by its place", async () => {
  await using t = await startChatBridge();
  const noise = Array.from({ length: 22 }, (_, i) =>
    [
      ["user", `other ${i}`],
      ["assistant", `reply ${i}`],
    ] as ["user" | "assistant", string][]).flat();
  await interruptedAsk(t, "late orders?", [
    ["user", "q0"],
    ["assistant", "a0"],
    ["user", "late orders?"],
    ...noise,
    ["assistant", "12 late"],
  ], 2);
  const [reply] = await t.twilio.waitForMessages(USER, 1);
  assert.equal(reply.body, "12 late");
  assert.equal(t.ayd.asks.length, 0);
  assert.ok(t.ayd.historyReads >= 3, `${t.ayd.historyReads} pages`);
});

Deno.test("recovery - a history that cannot be read is asked again", async () => {
  await using t = await startChatBridge();
  t.ayd.failHistory(502);
  await interruptedAsk(t, "late orders?", [["user", "late orders?"], ["assistant", "12"]], null);
  const [reply] = await t.twilio.waitForMessages(USER, 1);
  assert.equal(reply.body, "Answer to: late orders?");
  assert.equal(logEvents(t.logs, "history.failed").length >= 1, true);
});

Deno.test("recovery - an answer streamed whole but not saved (the save failed) is read back, not asked again", async () => {
  const faulty: { kv?: FaultyKv } = {};
  await using t = await startChatBridge({ wrapKv: (kv) => (faulty.kv = faultyKv(kv)).kv });
  let refusals = 0;
  // The save of the finished answer fails once, as if the process had died then.
  faulty.kv!.fault(({ sets }) =>
    refusals === 0 &&
      sets.some(({ key, value }) =>
        key[0] === "messages" && (value as MessageRecord).state === "replying"
      )
      ? (refusals++, new TypeError("database or disk is full"))
      : undefined
  );
  await t.sendWhatsApp({ Body: "late orders?" });
  const [reply] = await t.twilio.waitForMessages(USER, 1);
  assert.equal(reply.body, "Answer to: late orders?");
  assert.equal(refusals, 1);
  assert.equal(t.ayd.asks.length, 1, "AYD was asked once");
  await settled(t);
  assert.equal(logEvents(t.logs, "ask.recovered").length, 1);
  assert.equal(t.twilio.messages.length, 1);
  assert.ok(!t.twilio.messages.some((m) => m.body === REPLIES.failure));
});

Deno.test("recovery - parts sent before the crash that are not the recorded answer's end in the notice, not a mix", async () => {
  await using t = await startChatBridge({ env: { MAX_SMS_CHARS: "60" } });
  const answer = "First paragraph of the answer, long enough.\n\nSecond paragraph, also long.";
  await interruptedAsk(
    t,
    "late orders?",
    [
      ["user", "q0"],
      ["assistant", "a0"],
      ["user", "late orders?"],
      ["assistant", answer],
    ],
    2,
    ["Something else went out first."],
  );
  const [reply] = await t.twilio.waitForMessages(USER, 1);
  assert.equal(reply.body, REPLIES.cutShort);
  assert.equal(t.ayd.asks.length, 0);
  assert.equal(logEvents(t.logs, "ask.not_recovered")[0].reason, "parts sent differ");

  await using u = await startChatBridge({ env: { MAX_SMS_CHARS: "60" } });
  await interruptedAsk(u, "late orders?", [["user", "late orders?"], ["assistant", answer]], null, [
    "First paragraph of the answer, long enough.",
  ]);
  const [rest] = await u.twilio.waitForMessages(USER, 1);
  assert.equal(rest.body, "Second paragraph, also long.", "the rest, after the part that matched");
});
