/**
 * Fault injection: 200 messages from 20 numbers through `main.ts` over real
 * HTTP and a real KV file, while the fakes fail at random and the process is
 * killed (SIGKILL) and restarted mid-run. The seed is printed; replay a run
 * with `FAULT_SEED=<seed> deno task test`. In chat mode no question is asked
 * twice: what the kill cut off is read from the chat's history.
 */
import assert from "node:assert/strict";
import { REPLIES } from "../../src/conversation/answer.ts";
import { startFakeAyd } from "../fakes/fake_ayd.ts";
import { startFakeTwilio } from "../fakes/fake_twilio.ts";
import {
  ACCOUNT_SID,
  API_KEY,
  AUTH_TOKEN,
  BACKENDS,
  CHAT_ID,
  postForm,
  sign,
  testEnv,
  testEverySetting,
  testKv,
  waitFor,
  whatsAppParams,
} from "../_helpers.ts";
import { freePort, type MainProcess, startMain } from "../_process.ts";
import { seeded } from "../_random.ts";

const NUMBERS = 20;
const PER_NUMBER = 10;
const KILL_AFTER_ANSWERS = 60;
const SEED = Number(Deno.env.get("FAULT_SEED") ?? Math.floor(Math.random() * 2 ** 31));

/** Posts like Twilio: the same signed form again until it is acknowledged. */
async function deliver(url: string, params: Record<string, string>) {
  const deadline = Date.now() + 60_000;
  while (true) {
    try {
      const response = await postForm(url, params, { "x-twilio-signature": sign(params) });
      await response.body?.cancel();
      if (response.status === 200) return;
      throw new Error(`webhook answered ${response.status}`);
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

testEverySetting(
  "faults - 200 messages, random upstream failures and a SIGKILL: each answered once, in order",
  async (backend, mode) => {
    const seed = SEED + BACKENDS.indexOf(backend) + (mode === "chat" ? BACKENDS.length : 0);
    const setting = mode === "chat" ? `${backend}, chat mode` : backend;
    console.log(`fault test seed ${seed} [${setting}] (replay: FAULT_SEED=${SEED})`);
    const random = seeded(seed);
    const faults = {
      ayd500: 0,
      ayd429: 0,
      aydCut: 0,
      aydSlow: 0,
      twilio503: 0,
      twilio429: 0,
      twilioReset: 0,
    };
    /** Once the killed process is gone; every ask before it came from that process. */
    let deadAt = Infinity;
    /** When each ask that got a whole answer started, per question. */
    const answeredAsks = new Map<string, number[]>();

    await using ayd = await startFakeAyd({ apiKey: API_KEY, chatId: CHAT_ID });
    await using twilio = await startFakeTwilio({ accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN });
    ayd.onAsk(({ question }) => {
      const roll = random();
      if (roll < 0.06) return faults.ayd500++, { kind: "status", status: 500 };
      if (roll < 0.10) return faults.ayd429++, { kind: "status", status: 429 };
      if (roll < 0.15) {
        return faults.aydCut++, { kind: "cut", text: `A:${question} ` + "x".repeat(80) };
      }
      const slow = roll < 0.22;
      if (slow) faults.aydSlow++;
      answeredAsks.set(question, [...answeredAsks.get(question) ?? [], Date.now()]);
      return { kind: "answer", text: `A:${question}`, chunkDelayMs: slow ? 25 : 0 };
    });
    twilio.faults(() => {
      const roll = random();
      if (roll < 0.05) return faults.twilio503++, { status: 503, code: 20503 };
      if (roll < 0.08) return faults.twilio429++, { status: 429, code: 20429 };
      if (roll < 0.10) return faults.twilioReset++, { status: 0, code: 0 };
      return undefined;
    });

    const dir = await Deno.makeTempDir();
    await using store = await testKv(backend, dir);
    const env = testEnv({
      AYD_BASE_URL: ayd.url,
      TWILIO_API_BASE_URL: twilio.url,
      AYD_MODE: mode,
      ...store.env,
      JOB_LEASE_MS: "1000",
      JOB_RETRY_BUDGET_MS: "60000",
      JOB_RETRY_BASE_MS: "50",
      AYD_TIMEOUT_MS: "5000",
      PORT: String(freePort()),
      LOG_LEVEL: "info",
    });
    let main: MainProcess = await startMain(env);
    const url = main.url;
    const started = performance.now();
    try {
      const answers = () =>
        new Set(twilio.messages.map((m) => m.body).filter((b) => b.startsWith("A:")));

      const senders = Array.from({ length: NUMBERS }, async (_, n) => {
        const from = `whatsapp:+1555000${String(n).padStart(4, "0")}`;
        for (let i = 0; i < PER_NUMBER; i++) {
          await deliver(url, whatsAppParams({ From: from, Body: `n${n}-m${i}` }));
        }
      });
      const crash = (async () => {
        await waitFor(
          () => answers().size >= KILL_AFTER_ANSWERS,
          "answers before the kill",
          60_000,
        );
        main.kill("SIGKILL");
        await main.exited;
        deadAt = Date.now();
        main = await startMain(env);
      })();
      await Promise.all([...senders, crash]);
      await waitFor(() => answers().size === NUMBERS * PER_NUMBER, "every answer", 120_000);
      const drainMs = Math.round(performance.now() - started);
      assert.equal((await main.stop("SIGTERM")).code, 0);
      const recovered = main.output().split('"event":"ask.recovered"').length - 1;

      // Each number got its answers in the order it asked.
      for (let n = 0; n < NUMBERS; n++) {
        const to = `whatsapp:+1555000${String(n).padStart(4, "0")}`;
        const seen = [...new Set(twilio.messages.filter((m) => m.to === to).map((m) => m.body))];
        assert.deepEqual(seen, Array.from({ length: PER_NUMBER }, (_, i) => `A:n${n}-m${i}`));
      }
      // Not even a send under way at the kill goes out twice: the restarted
      // process looks for it in Twilio's Message list before sending it again.
      const duplicateReplies = twilio.messages.length -
        new Set(twilio.messages.map((m) => m.body)).size;
      assert.equal(duplicateReplies, 0, `${duplicateReplies} duplicate replies`);
      // AYD is asked a question again only if the kill cut its answer off,
      // and in chat mode not even then: the answer is in the chat's history.
      let reasked = 0;
      for (const [question, starts] of answeredAsks) {
        for (const start of starts.slice(0, -1)) {
          assert.ok(start < deadAt, `${question} was asked again after the restart`);
          reasked++;
        }
      }
      if (mode === "chat") assert.equal(reasked, 0, `${reasked} questions asked twice`);
      assert.ok(!twilio.messages.some((m) => m.body === REPLIES.failure), "no apology needed");

      using kv = await Deno.openKv(store.server?.url ?? `${dir}/bridge.kv`);
      const count = async (prefix: Deno.KvKey) =>
        (await Array.fromAsync(kv.list({ prefix }))).length;
      assert.equal(await count(["queue"]), 0, "no job left pending");
      assert.equal(await count(["lanes"]), 0, "no lane left marked");
      assert.equal(await count(["dead_letters"]), 0, "no dead letters: the budget was never spent");

      const injected = Object.values(faults).reduce((a, b) => a + b, 0);
      console.log(
        `[${setting}] ${NUMBERS * PER_NUMBER} messages from ${NUMBERS} numbers; ` +
          `${injected} faults injected ${JSON.stringify(faults)} + 1 SIGKILL; ` +
          `duplicate replies ${duplicateReplies}; questions asked again because the kill cut them off ${reasked}; ` +
          `answers read from the chat's history ${recovered}; ` +
          `drained in ${drainMs} ms`,
      );
    } finally {
      await main[Symbol.asyncDispose]();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
