/** What the WhatsApp user receives when AYD or Twilio fail. */
import assert from "node:assert/strict";
import { REPLIES } from "../../src/conversation/answer.ts";
import {
  type DeadLetter,
  deadLetterKey,
  messageKey,
  type MessageRecord,
} from "../../src/jobs/mod.ts";
import {
  API_KEY,
  logEvents,
  startTestBridge,
  testEveryBackend,
  testEverySetting,
  waitFor,
} from "../_helpers.ts";
import { type FaultyKv, faultyKv } from "../_faulty_kv.ts";

const USER = "whatsapp:+15551234567";

async function deadLetters(kv: Deno.Kv): Promise<DeadLetter[]> {
  return (await Array.fromAsync(kv.list<DeadLetter>({ prefix: ["dead_letters"] })))
    .map((e) => e.value);
}

testEverySetting(
  "failure - AYD too slow: the timeout text, and a dead letter",
  async (backend, mode) => {
    await using t = await startTestBridge({ backend, mode, env: { AYD_TIMEOUT_MS: "1000" } });
    t.ayd.onAsk(() => ({ kind: "hang" }));
    await t.sendWhatsApp();
    const [reply] = await t.twilio.waitForMessages(USER, 1);
    assert.equal(reply.body, REPLIES.timeout);
    await waitFor(async () => (await deadLetters(t.kv)).length === 1, "the dead letter");
    assert.match((await deadLetters(t.kv))[0].reason, /did not answer in time/);
  },
);

testEverySetting("failure - AYD answers 500: the generic apology", async (backend, mode) => {
  await using t = await startTestBridge({ backend, mode });
  t.ayd.onAsk(() => ({ kind: "status", status: 500 }));
  await t.sendWhatsApp();
  const [reply] = await t.twilio.waitForMessages(USER, 1);
  assert.equal(reply.body, REPLIES.failure);
});

testEverySetting(
  "failure - AYD cuts the stream mid-answer: the generic apology",
  async (backend, mode) => {
    await using t = await startTestBridge({ backend, mode });
    t.ayd.onAsk(() => ({ kind: "cut", text: "The answer is forty-" + "two ".repeat(50) }));
    await t.sendWhatsApp();
    const [reply] = await t.twilio.waitForMessages(USER, 1);
    assert.equal(reply.body, REPLIES.failure);
  },
);

testEverySetting("failure - AYD unreachable: the no-session text", async (backend, mode) => {
  await using t = await startTestBridge({
    backend,
    mode,
    env: { AYD_BASE_URL: "http://127.0.0.1:9" },
  });
  await t.sendWhatsApp();
  const [reply] = await t.twilio.waitForMessages(USER, 1);
  assert.equal(reply.body, REPLIES.noSession);
});

testEveryBackend(
  "failure - AYD refuses to open a session: the no-session text",
  async (backend) => {
    await using t = await startTestBridge({ backend });
    t.ayd.failSessions(503);
    await t.sendWhatsApp();
    const [reply] = await t.twilio.waitForMessages(USER, 1);
    assert.equal(reply.body, REPLIES.noSession);
    assert.equal(t.ayd.asks.length, 0);
  },
);

testEveryBackend(
  "failure - the session callback sets no cookie: the no-session text",
  async (backend) => {
    await using t = await startTestBridge({ backend, ayd: { noCookie: true } });
    await t.sendWhatsApp();
    const [reply] = await t.twilio.waitForMessages(USER, 1);
    assert.equal(reply.body, REPLIES.noSession);
  },
);

testEveryBackend("failure - renewal after a 401 fails: the conversation text", async (backend) => {
  await using t = await startTestBridge({ backend });
  await t.sendWhatsApp({ Body: "first" });
  await t.twilio.waitForMessages(USER, 1);
  t.ayd.expireToken(t.ayd.sessions[0].token);
  t.ayd.failSessions(500);
  await t.sendWhatsApp({ Body: "second" });
  const replies = await t.twilio.waitForMessages(USER, 2);
  assert.equal(replies[1].body, REPLIES.renewalFailed);
});

testEveryBackend(
  "failure - a renewed token refused again: the conversation text, no loop",
  async (backend) => {
    await using t = await startTestBridge({ backend });
    t.ayd.onAsk(() => ({ kind: "status", status: 401 }));
    await t.sendWhatsApp();
    const [reply] = await t.twilio.waitForMessages(USER, 1);
    assert.equal(reply.body, REPLIES.renewalFailed);
    assert.equal(t.ayd.asks.length, 2, "asked once, renewed once, asked once more");
  },
);

testEverySetting("twilio - 429 then 201 delivers exactly one reply", async (backend, mode) => {
  await using t = await startTestBridge({ backend, mode });
  t.twilio.failNext({ status: 429, code: 20429, message: "Too Many Requests" });
  await t.sendWhatsApp({ Body: "rate limited" });
  const [reply] = await t.twilio.waitForMessages(USER, 1);
  assert.equal(reply.body, "Answer to: rate limited");
  assert.equal(t.twilio.attempts, 2);
  assert.equal(t.twilio.messages.length, 1);
});

testEverySetting(
  "twilio - 5xx until the retries run out: one apology and a dead letter",
  async (backend, mode) => {
    await using t = await startTestBridge({ backend, mode });
    t.twilio.failNext(...Array(4).fill({ status: 503, code: 20503 }));
    await t.sendWhatsApp();
    const [reply] = await t.twilio.waitForMessages(USER, 1);
    assert.equal(reply.body, REPLIES.failure);
    await waitFor(async () => (await deadLetters(t.kv)).length === 1, "the dead letter");
    const [letter] = await deadLetters(t.kv);
    assert.match(letter.reason, /Twilio answered 503/);
    const record = await t.kv.get<MessageRecord>(messageKey(letter.messageSid));
    assert.equal(record.value?.state, "failed");
    assert.equal(t.twilio.attempts, 5, "four tries of the answer, then the apology");
  },
);

testEverySetting(
  "twilio - a permanent 4xx is not retried; the user still hears back",
  async (backend, mode) => {
    await using t = await startTestBridge({ backend, mode });
    t.twilio.failNext({ status: 400, code: 21211, message: "Invalid 'To' Phone Number" });
    await t.sendWhatsApp();
    const [reply] = await t.twilio.waitForMessages(USER, 1);
    assert.equal(reply.body, REPLIES.failure);
    assert.equal(t.twilio.attempts, 2, "one refused send, one apology");
    await waitFor(async () => (await deadLetters(t.kv)).length === 1, "the dead letter");
    assert.match((await deadLetters(t.kv))[0].reason, /21211/);
  },
);

testEverySetting(
  "twilio - when even the apology fails, the job is a dead letter and nothing loops",
  async (backend, mode) => {
    await using t = await startTestBridge({ backend, mode });
    t.twilio.failNext(...Array(8).fill({ status: 400, code: 63016 }));
    const sid = "SM" + "e".repeat(32);
    await t.sendWhatsApp({ MessageSid: sid });
    await waitFor(
      async () => (await t.kv.get(deadLetterKey(sid))).value !== null,
      "the dead letter",
    );
    assert.equal(t.twilio.messages.length, 0);
    assert.equal(t.twilio.attempts, 2);
  },
);

testEverySetting(
  "twilio - a reply Twilio took but answered too late reaches the user once",
  async (backend, mode) => {
    await using t = await startTestBridge({ backend, mode, twilioTimeoutMs: 300 });
    // Twilio creates the message, then answers only after the bridge gave up waiting.
    t.twilio.answerLate(1, 1_500);
    await t.sendWhatsApp({ Body: "slow twilio" });
    const [reply] = await t.twilio.waitForMessages(USER, 1);
    assert.equal(reply.body, "Answer to: slow twilio");
    await waitFor(
      () => t.logs.some((line) => line.includes('"event":"job.finished"')),
      "the job to end",
    );
    assert.equal(t.twilio.messages.length, 1, "found in Twilio's list, not sent again");
    assert.ok(t.twilio.lookups >= 1);
  },
);

testEverySetting(
  "failure - a job whose progress cannot be saved is given up after five runs: one apology, a dead letter",
  async (backend, mode) => {
    const faulty: { kv?: FaultyKv } = {};
    await using t = await startTestBridge({
      backend,
      mode,
      wrapKv: (kv) => (faulty.kv = faultyKv(kv)).kv,
    });
    // Saving the record as it starts asking fails, as a value over KV's limit would.
    faulty.kv!.fault(({ sets }) =>
      sets.some(({ key, value }) =>
          key[0] === "messages" && (value as MessageRecord).state === "asking"
        )
        ? new TypeError("Value too large (max 65536 bytes)")
        : undefined
    );
    await t.sendWhatsApp({ MessageSid: "SM" + "6".repeat(32), Body: "cannot be saved" });
    const [reply] = await t.twilio.waitForMessages(USER, 1);
    assert.equal(reply.body, REPLIES.failure);
    await waitFor(async () => (await deadLetters(t.kv)).length === 1, "the dead letter");
    const [letter] = await deadLetters(t.kv);
    assert.match(letter.reason, /^gave up after 5 failed runs: TypeError: Value too large/);
    assert.equal(faulty.kv!.refused, 5);
    assert.equal(t.ayd.asks.length, 0);
    // Nothing more goes out: before, the apology came again every 30 s.
    await t.sendWhatsApp({ Body: "next question" });
    faulty.kv!.fault(null);
    const replies = await t.twilio.waitForMessages(USER, 2);
    assert.equal(replies[1].body, "Answer to: next question");
    assert.equal(t.twilio.messages.length, 2);
  },
);

Deno.test("failure - a wrong chatbot ID is a warning with AYD's words, and so is the failed job", async () => {
  await using t = await startTestBridge({ env: { ASKYOURDATABASE_CHAT_ID: "no-such-bot" } });
  await t.sendWhatsApp();
  const [reply] = await t.twilio.waitForMessages(USER, 1);
  assert.equal(reply.body, REPLIES.noSession);
  await waitFor(() => logEvents(t.logs, "job.finished").length === 1, "job.finished");
  const [asked] = logEvents(t.logs, "ask.finished");
  assert.equal(asked.level, "warn");
  assert.equal(
    asked.reason,
    "AydError: session answered 400: Chatbot not found (check ASKYOURDATABASE_CHAT_ID)",
  );
  const [job] = logEvents(t.logs, "job.finished");
  assert.equal(job.level, "warn");
  assert.equal(job.state, "failed");
  assert.doesNotMatch(t.logs.join("\n"), new RegExp(API_KEY));
});

Deno.test("failure - an answer that worked is logged at info, not as a warning", async () => {
  await using t = await startTestBridge();
  await t.sendWhatsApp();
  await t.twilio.waitForMessages(USER, 1);
  await waitFor(() => logEvents(t.logs, "job.finished").length === 1, "job.finished");
  assert.equal(logEvents(t.logs, "ask.finished")[0].level, "info");
  assert.equal(logEvents(t.logs, "job.finished")[0].level, "info");
});

Deno.test("twilio - a refused send is logged with Twilio's message and code, and the setting to check", async () => {
  await using t = await startTestBridge();
  t.twilio.failNext({
    status: 400,
    code: 63007,
    message: "Twilio could not find a Channel with the specified From address",
  });
  await t.sendWhatsApp();
  await waitFor(() => logEvents(t.logs, "job.finished").length === 1, "job.finished");
  const [failed] = logEvents(t.logs, "reply.failed");
  assert.ok(failed.level === "warn" || failed.level === "error", `level ${failed.level}`);
  assert.equal(
    failed.reason,
    "TwilioSendError: Twilio answered 400 (error 63007): Twilio could not find a Channel " +
      "with the specified From address (check TWILIO_FROM_NUMBER)",
  );
  assert.equal(logEvents(t.logs, "job.finished")[0].level, "warn");
});
