/**
 * Long answers on WhatsApp: formatted, within the limit, and the first part
 * delivered while AYD is still writing the rest.
 */
import assert from "node:assert/strict";
import { REPLIES } from "../../src/conversation/answer.ts";
import { formatAnswer } from "../../src/whatsapp/format.ts";
import { logEvents, startTestBridge, testEverySetting, waitFor, words } from "../_helpers.ts";
import { ALL_ANSWERS, LONG_REPORT } from "../fixtures/ayd_answers.ts";

const USER = "whatsapp:+15551234567";

testEverySetting(
  "stream - part 1 reaches WhatsApp while AYD is still writing",
  async (backend, mode) => {
    await using t = await startTestBridge({ backend, mode });
    const { promise: release, resolve } = Promise.withResolvers<void>();
    // Stop the stream once part 1 is complete and part 2 has begun.
    t.ayd.onAsk(() => ({
      kind: "answer",
      text: LONG_REPORT,
      pause: { afterChars: 1800, until: release },
    }));
    await t.sendWhatsApp({ From: USER });
    const [first] = await t.twilio.waitForMessages(USER, 1);
    const expected = formatAnswer(LONG_REPORT, 1600).map((part) => part.trimEnd());
    assert.equal(first.body, expected[0]);
    assert.equal(logEvents(t.logs, "ask.finished").length, 0, "AYD has not finished the answer");
    resolve();
    const all = await t.twilio.waitForMessages(USER, expected.length);
    assert.deepEqual(all.map((m) => m.body), expected);
    await waitFor(() => logEvents(t.logs, "job.finished").length === 1, "the job to end");
    assert.equal(t.twilio.messages.length, expected.length, "no part twice");
  },
);

testEverySetting(
  "stream - real answers arrive formatted, within the limit, complete",
  async (backend, mode) => {
    await using t = await startTestBridge({ backend, mode, env: { MAX_SMS_CHARS: "700" } });
    const answers = Object.entries(ALL_ANSWERS);
    t.ayd.onAsk(({ question }) => ({ kind: "answer", text: ALL_ANSWERS[question] }));
    for (const [i, [name]] of answers.entries()) {
      await t.sendWhatsApp({ From: `whatsapp:+1555000${1000 + i}`, Body: name });
    }
    await waitFor(() => logEvents(t.logs, "job.finished").length === answers.length, "every job");
    for (const [i, [name, answer]] of answers.entries()) {
      const bodies = t.twilio.messages.filter((m) => m.to === `whatsapp:+1555000${1000 + i}`)
        .map((m) => m.body);
      const expected = formatAnswer(answer, 700);
      assert.equal(bodies.length, expected.length, name);
      for (const body of bodies) {
        assert.ok(body.length <= 700, `${name}: ${body.length}`);
        assert.ok(!body.includes("**"), `${name}: raw **`);
        assert.ok(!/^\s*\|.*\|\s*$/m.test(body), `${name}: table pipes`);
      }
      const code = (text: string) => text.split("\n").filter((l) => l !== "```").join("\n");
      assert.deepEqual(words(code(bodies.join("\n"))), words(code(expected.join("\n"))), name);
    }
  },
);

testEverySetting(
  "stream - cut after part 1 went out: a notice, no second question, a dead letter",
  async (backend, mode) => {
    await using t = await startTestBridge({
      backend,
      mode,
      // A retry would be allowed: it must not be used once the user has part 1.
      env: { JOB_RETRY_BUDGET_MS: "60000" },
    });
    // 25 characters a delta: 80 deltas end well inside part 2.
    t.ayd.onAsk(() => ({ kind: "cut", text: LONG_REPORT, afterDeltas: 80 }));
    await t.sendWhatsApp({ From: USER });
    const replies = await t.twilio.waitForMessages(USER, 2);
    assert.equal(replies[0].body, formatAnswer(LONG_REPORT, 1600)[0].trimEnd());
    assert.equal(replies[1].body, REPLIES.cutShort);
    await waitFor(() => logEvents(t.logs, "job.finished").length === 1, "the job to end");
    assert.equal(t.ayd.asks.length, 1);
    const [finished] = logEvents(t.logs, "job.finished");
    assert.equal(finished.state, "failed");
    assert.match(String(finished.reason), /answer cut after 1 parts/);
  },
);

testEverySetting("stream - PART_MARKERS=count numbers parts as they go", async (backend, mode) => {
  await using t = await startTestBridge({ backend, mode, env: { PART_MARKERS: "count" } });
  t.ayd.onAsk(() => ({ kind: "answer", text: LONG_REPORT }));
  await t.sendWhatsApp({ From: USER });
  const replies = await t.twilio.waitForMessages(USER, 2);
  assert.match(replies[0].body, /\n\(1\)$/);
  assert.match(replies[1].body, /\n\(2\/2\)$/);
  assert.ok(replies.every((m) => m.body.length <= 1600));
});

testEverySetting(
  "stream - PART_MARKERS=total holds the parts for the total",
  async (backend, mode) => {
    await using t = await startTestBridge({ backend, mode, env: { PART_MARKERS: "total" } });
    t.ayd.onAsk(() => ({ kind: "answer", text: LONG_REPORT }));
    await t.sendWhatsApp({ From: USER });
    const replies = await t.twilio.waitForMessages(USER, 2);
    assert.match(replies[0].body, /\n\(1\/2\)$/);
    assert.match(replies[1].body, /\n\(2\/2\)$/);
    await waitFor(() => logEvents(t.logs, "job.finished").length === 1, "the job to end");
    assert.equal(logEvents(t.logs, "reply.streamed").length, 0, "nothing went out early");
  },
);

testEverySetting(
  "stream - a short answer is one message without a marker",
  async (backend, mode) => {
    await using t = await startTestBridge({ backend, mode, env: { PART_MARKERS: "total" } });
    t.ayd.onAsk(() => ({ kind: "answer", text: "**37** late orders." }));
    await t.sendWhatsApp({ From: USER });
    const [reply] = await t.twilio.waitForMessages(USER, 1);
    assert.equal(reply.body, "*37* late orders.");
  },
);

testEverySetting(
  "stream - a failed early send is retried after the answer",
  async (backend, mode) => {
    await using t = await startTestBridge({ backend, mode, env: { JOB_RETRY_BUDGET_MS: "60000" } });
    // Part 1's send fails for good while streaming (the client's own retries
    // included); the delivery after the answer sends it again, then part 2.
    t.twilio.failNext(...Array.from({ length: 4 }, () => ({ status: 503, code: 20500 })));
    t.ayd.onAsk(() => ({ kind: "answer", text: LONG_REPORT }));
    await t.sendWhatsApp({ From: USER });
    const replies = await t.twilio.waitForMessages(USER, 2);
    assert.deepEqual(
      replies.map((m) => m.body),
      formatAnswer(LONG_REPORT, 1600).map((p) => p.trimEnd()),
    );
    assert.equal(t.ayd.asks.length, 1);
    assert.ok(logEvents(t.logs, "reply.failed").some((e) => e.streaming === true));
  },
);

testEverySetting(
  "stream - an answer the Markdown parser fails on still arrives",
  async (backend, mode) => {
    await using t = await startTestBridge({ backend, mode });
    // marked 18.2.1 throws on this nesting; the user must get the answer anyway.
    const answer = "Orders by region:\n\n- [\n  >*\n<\n\nTotal: 1,204";
    t.ayd.onAsk(() => ({ kind: "answer", text: answer }));
    await t.sendWhatsApp({ From: USER });
    await waitFor(() => logEvents(t.logs, "job.finished").length === 1, "the job to end");
    const bodies = t.twilio.messages.map((m) => m.body);
    assert.deepEqual(words(bodies.join("\n")), words(answer));
    assert.equal(logEvents(t.logs, "job.finished")[0].state, "answered");
    assert.equal(logEvents(t.logs, "format.fallback").length, 1);
    assert.equal(t.ayd.asks.length, 1);
  },
);

testEverySetting(
  "stream - an endless streamed answer: 19 parts early, the 20th says it was cut",
  async (backend, mode) => {
    await using t = await startTestBridge({ backend, mode, env: { MAX_SMS_CHARS: "200" } });
    const answer = Array.from({ length: 400 }, (_, i) => `Row ${i}: late orders by region.`)
      .join("\n\n");
    const { promise: release, resolve } = Promise.withResolvers<void>();
    // Paused far past part 19: the early parts stop there, the rest waits for the end.
    t.ayd.onAsk(() => ({
      kind: "answer",
      text: answer,
      pause: { afterChars: 6000, until: release },
    }));
    await t.sendWhatsApp({ From: USER });
    await t.twilio.waitForMessages(USER, 19);
    assert.equal(logEvents(t.logs, "ask.finished").length, 0, "19 parts while AYD still writes");
    resolve();
    await waitFor(() => logEvents(t.logs, "job.finished").length === 1, "the job to end");
    const bodies = t.twilio.messages.map((m) => m.body);
    assert.equal(bodies.length, 20);
    for (const body of bodies) assert.ok(body.length <= 200, `${body.length}`);
    assert.match(bodies[0], /^Row 0: /);
    assert.match(bodies[19], /… \(answer cut: too long for WhatsApp\)$/);
    assert.equal(logEvents(t.logs, "reply.streamed")[0]?.parts, 19);
  },
);
