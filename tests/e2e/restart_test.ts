/** `main.ts` stopped gracefully, or killed, and started again on the same KV. */
import assert from "node:assert/strict";
import type { AydMode } from "../../src/config.ts";
import { REPLIES } from "../../src/conversation/answer.ts";
import { type FakeAyd, startFakeAyd } from "../fakes/fake_ayd.ts";
import { type FakeTwilio, startFakeTwilio } from "../fakes/fake_twilio.ts";
import { formatAnswer } from "../../src/whatsapp/format.ts";
import {
  ACCOUNT_SID,
  API_KEY,
  AUTH_TOKEN,
  CHAT_ID,
  CHAT_MODE_BACKEND,
  postForm,
  sign,
  type TestBackend,
  testEnv,
  testEverySetting,
  testKv,
  waitFor,
  whatsAppParams,
  words,
} from "../_helpers.ts";
import { LONG_REPORT } from "../fixtures/ayd_answers.ts";
import { freePort, startMain } from "../_process.ts";

const USER = "whatsapp:+15551234567";

async function withServices(
  backend: TestBackend,
  mode: AydMode,
  fn: (ctx: {
    ayd: FakeAyd;
    twilio: FakeTwilio;
    env: Record<string, string>;
    send: (url: string, body: string) => Promise<void>;
  }) => Promise<void>,
) {
  await using ayd = await startFakeAyd({ apiKey: API_KEY, chatId: CHAT_ID });
  await using twilio = await startFakeTwilio({ accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN });
  const dir = await Deno.makeTempDir();
  await using kv = await testKv(backend, dir);
  const env = testEnv({
    AYD_BASE_URL: ayd.url,
    TWILIO_API_BASE_URL: twilio.url,
    AYD_MODE: mode,
    ...kv.env,
    JOB_LEASE_MS: "1000",
    PORT: String(freePort()),
    LOG_LEVEL: "info",
  });
  const send = async (url: string, body: string) => {
    const params = whatsAppParams({ Body: body });
    const response = await postForm(url, params, { "x-twilio-signature": sign(params) });
    assert.equal(response.status, 200);
    await response.body?.cancel();
  };
  try {
    await fn({ ayd, twilio, env, send });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

testEverySetting(
  "shutdown - SIGTERM lets the answer under way finish; the next waits in KV",
  async (backend, mode) => {
    await withServices(backend, mode, async ({ ayd, twilio, env, send }) => {
      ayd.onAsk(({ question }) =>
        question === "slow"
          ? { kind: "answer", text: "slow answer ".repeat(20).trim(), chunkDelayMs: 15 }
          : { kind: "answer", text: `a-${question}` }
      );
      {
        await using main = await startMain(env);
        await send(main.url, "slow");
        await send(main.url, "queued behind");
        await waitFor(() => ayd.asks.length === 1, "the slow ask to start");
        assert.equal((await main.stop("SIGTERM")).code, 0);
        assert.match(main.output(), /"event":"service\.stopped"/);
      }
      assert.deepEqual(twilio.messages.map((m) => m.body), ["slow answer ".repeat(20).trim()]);
      assert.equal(ayd.asks.length, 1, "no new job started during shutdown");

      await using again = await startMain(env);
      const replies = await twilio.waitForMessages(USER, 2);
      assert.equal(replies[1].body, "a-queued behind");
      assert.equal((await again.stop("SIGTERM")).code, 0);
    });
  },
);

testEverySetting(
  "crash - killed mid-reply after part 2 of 4, restarted: parts 3 and 4 follow",
  async (backend, mode) => {
    await withServices(backend, mode, async ({ ayd, twilio, env, send }) => {
      const paragraphs = [1, 2, 3, 4].map((n) => `Paragraph ${n}: ` + "late order data ".repeat(5));
      const answer = paragraphs.map((p) => p.trim()).join("\n\n");
      ayd.onAsk(() => ({ kind: "answer", text: answer }));
      // Parts 1 and 2 go through; part 3's send hangs until the process dies.
      twilio.holdAttempt(3);
      const crashEnv = { ...env, MAX_SMS_CHARS: "100" };
      {
        await using main = await startMain(crashEnv);
        await send(main.url, "long question");
        await waitFor(() => twilio.attempts === 3, "part 3's send to start");
        main.kill("SIGKILL");
        assert.notEqual(await main.exited, 0);
      }
      assert.equal(twilio.messages.length, 2);

      await using again = await startMain(crashEnv);
      const replies = await twilio.waitForMessages(USER, 4);
      assert.equal(replies.length, 4, "no part twice");
      assert.deepEqual(words(replies.map((r) => r.body).join(" ")), words(answer));
      assert.equal(ayd.asks.length, 1, "the answer was saved before the crash");
      assert.equal((await again.stop("SIGTERM")).code, 0);
    });
  },
);

testEverySetting(
  "crash - killed while AYD streams, after part 1 went out: restarted, a notice, no repeat",
  async (backend, mode) => {
    await withServices(backend, mode, async ({ ayd, twilio, env, send }) => {
      // The stream stops after part 1 is complete and never resumes.
      ayd.onAsk(() => ({
        kind: "answer",
        text: LONG_REPORT,
        pause: { afterChars: 1800, until: new Promise<void>(() => {}) },
      }));
      {
        await using main = await startMain(env);
        await send(main.url, "long question");
        await twilio.waitForMessages(USER, 1);
        // Killed once the sent part is on record; the test of a kill before
        // that, while Twilio holds its answer, is below.
        await waitFor(() => main.output().includes('"event":"reply.part_sent"'), "part 1 saved");
        main.kill("SIGKILL");
        assert.notEqual(await main.exited, 0);
      }
      await using again = await startMain(env);
      const replies = await twilio.waitForMessages(USER, 2);
      assert.equal(replies[1].body, REPLIES.cutShort);
      assert.equal(ayd.asks.length, 1, "part 1 is not asked for, or sent, again");
      assert.equal((await again.stop("SIGTERM")).code, 0);
      assert.equal(twilio.messages.length, 2);
    });
  },
);

testEverySetting(
  "crash - killed while Twilio holds its answer to part 3 it already took: part 3 is found in its list, not sent again",
  async (backend, mode) => {
    await withServices(backend, mode, async ({ ayd, twilio, env, send }) => {
      const paragraphs = [1, 2, 3, 4].map((n) => `Paragraph ${n}: ` + "late order data ".repeat(5));
      const answer = paragraphs.map((p) => p.trim()).join("\n\n");
      ayd.onAsk(() => ({ kind: "answer", text: answer }));
      // Twilio creates part 3, then never answers: the send under way at the kill.
      twilio.answerLate(3);
      const crashEnv = { ...env, MAX_SMS_CHARS: "100" };
      {
        await using main = await startMain(crashEnv);
        await send(main.url, "long question");
        await waitFor(() => twilio.messages.length === 3, "part 3 to reach Twilio");
        main.kill("SIGKILL");
        assert.notEqual(await main.exited, 0);
      }
      assert.equal(twilio.lookups, 0, "no look-up on the normal path");

      await using again = await startMain(crashEnv);
      const replies = await twilio.waitForMessages(USER, 4);
      assert.equal((await again.stop("SIGTERM")).code, 0);
      assert.equal(twilio.messages.length, 4, "part 3 once, then part 4");
      assert.deepEqual(words(replies.map((r) => r.body).join(" ")), words(answer));
      assert.ok(twilio.lookups >= 1, "the restarted process asked Twilio first");
      assert.match(again.output(), /"event":"reply\.recovered"/);
    });
  },
);

testEverySetting(
  "crash - killed while Twilio holds its answer to the first streamed part: found, so a notice instead of a second ask",
  async (backend, mode) => {
    await withServices(backend, mode, async ({ ayd, twilio, env, send }) => {
      ayd.onAsk(() => ({
        kind: "answer",
        text: LONG_REPORT,
        pause: { afterChars: 1800, until: new Promise<void>(() => {}) },
      }));
      twilio.answerLate(1); // part 1 is created; its 201 never comes
      {
        await using main = await startMain(env);
        await send(main.url, "long question");
        await twilio.waitForMessages(USER, 1);
        main.kill("SIGKILL");
        assert.notEqual(await main.exited, 0);
      }
      await using again = await startMain(env);
      const replies = await twilio.waitForMessages(USER, 2);
      assert.equal((await again.stop("SIGTERM")).code, 0);
      assert.equal(replies[1].body, REPLIES.cutShort);
      assert.equal(twilio.messages.length, 2, "part 1 was not sent again");
      assert.equal(ayd.asks.length, 1, "nor asked for again");
    });
  },
);

Deno.test(
  "crash - chat mode: killed while AYD streams, before any part went out: the answer is read from the chat's history, not asked again",
  async () => {
    await withServices(CHAT_MODE_BACKEND, "chat", async ({ ayd, twilio, env, send }) => {
      // AYD has written the answer; its stream to the bridge stalls for good.
      ayd.onAsk(() => ({
        kind: "answer",
        text: "Twelve orders shipped late, nine of them to Lyon.",
        pause: { afterChars: 5, until: new Promise<void>(() => {}) },
        recorded: "now",
      }));
      {
        await using main = await startMain(env);
        await send(main.url, "late orders?");
        await waitFor(() => ayd.asks.length === 1, "the ask to reach AYD");
        main.kill("SIGKILL");
        assert.notEqual(await main.exited, 0);
      }
      assert.equal(twilio.messages.length, 0);
      await using again = await startMain(env);
      const [reply] = await twilio.waitForMessages(USER, 1);
      assert.equal(reply.body, "Twelve orders shipped late, nine of them to Lyon.");
      assert.equal(ayd.asks.length, 1, "asked once: the answer came from the history");
      assert.equal((await again.stop("SIGTERM")).code, 0);
      assert.match(again.output(), /"event":"ask\.recovered"/);
      assert.equal(twilio.messages.length, 1);
    });
  },
);

Deno.test(
  "crash - chat mode: killed after part 1 went out, the answer in the history: the other parts follow from it, no notice",
  async () => {
    await withServices(CHAT_MODE_BACKEND, "chat", async ({ ayd, twilio, env, send }) => {
      ayd.onAsk(() => ({
        kind: "answer",
        text: LONG_REPORT,
        pause: { afterChars: 1800, until: new Promise<void>(() => {}) },
        recorded: "now",
      }));
      const expected = formatAnswer(LONG_REPORT, 1600).map((part) => part.trimEnd());
      {
        await using main = await startMain(env);
        await send(main.url, "long question");
        await twilio.waitForMessages(USER, 1);
        await waitFor(() => main.output().includes('"event":"reply.part_sent"'), "part 1 saved");
        main.kill("SIGKILL");
        assert.notEqual(await main.exited, 0);
      }
      await using again = await startMain(env);
      const replies = await twilio.waitForMessages(USER, expected.length);
      assert.equal((await again.stop("SIGTERM")).code, 0);
      assert.deepEqual(replies.map((r) => r.body), expected, "every part once, in order");
      assert.equal(twilio.messages.length, expected.length, "no notice, no part twice");
      assert.equal(ayd.asks.length, 1);
    });
  },
);
