/**
 * Several `main.ts` processes on one KV file: webhooks reach any of them
 * through a round-robin balancer, one is SIGKILLed (or SIGSTOPped) while its
 * lanes hold work, and the other finishes that work: every message answered
 * once, each number's answers in the order it asked.
 */
import assert from "node:assert/strict";
import type { AydMode } from "../../src/config.ts";
import { type FakeAyd, startFakeAyd } from "../fakes/fake_ayd.ts";
import { type FakeTwilio, startFakeTwilio } from "../fakes/fake_twilio.ts";
import {
  ACCOUNT_SID,
  API_KEY,
  AUTH_TOKEN,
  CHAT_ID,
  postForm,
  sign,
  type TestBackend,
  testEnv,
  testEverySetting,
  testKv,
  waitFor,
  whatsAppParams,
} from "../_helpers.ts";
import { startBalancer } from "../_balancer.ts";
import { freePort, type MainProcess, startMain } from "../_process.ts";
import type { LeaseValue } from "../../src/jobs/lanes.ts";
import type { WorkerValue } from "../../src/jobs/presence.ts";

/** What a test gets: the fakes, and the environment of one more bridge on the shared KV. */
interface Services {
  ayd: FakeAyd;
  twilio: FakeTwilio;
  env: () => Record<string, string>;
}

/** Fake AYD and Twilio, and the environment of bridges sharing one KV file. */
async function withServices(
  backend: TestBackend,
  mode: AydMode,
  leaseMs: number,
  fn: (services: Services) => Promise<void>,
) {
  await using ayd = await startFakeAyd({ apiKey: API_KEY, chatId: CHAT_ID, noise: false });
  await using twilio = await startFakeTwilio({ accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN });
  const dir = await Deno.makeTempDir();
  // Each process gets a port of its own, and all of them the same KV (a file, or KV Connect).
  await using kv = await testKv(backend, dir);
  const env = () =>
    testEnv({
      AYD_BASE_URL: ayd.url,
      TWILIO_API_BASE_URL: twilio.url,
      AYD_MODE: mode,
      ...kv.env,
      JOB_LEASE_MS: String(leaseMs),
      PORT: String(freePort()),
      LOG_LEVEL: "info",
    });
  try {
    await fn({ ayd, twilio, env });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

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

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The number of sender `n`. */
const numberOf = (n: number) => `+1555100${String(n).padStart(4, "0")}`;

/** The KV counts a finished run must leave at zero. */
async function leftovers(kv: Deno.Kv) {
  const count = async (prefix: Deno.KvKey) => (await Array.fromAsync(kv.list({ prefix }))).length;
  return {
    queue: await count(["queue"]),
    lanes: await count(["lanes"]),
    deadLetters: await count(["dead_letters"]),
  };
}

const NUMBERS = 15;
const PER_NUMBER = 8;
/** 200–470 ms, by question (`n3-m5`). */
const answerMs = (question: string) => {
  const [n, i] = question.match(/\d+/g)?.map(Number) ?? [0, 0];
  return 200 + ((n * 7 + i * 3) % 10) * 30;
};

testEverySetting(
  "instances - two processes behind a balancer, one SIGKILLed mid-burst: the other answers its lanes, each message once, in order",
  async (backend, mode) => {
    await withServices(backend, mode, 1_000, async ({ ayd, twilio, env }) => {
      ayd.onAsk(({ question }) => ({
        kind: "answer",
        text: `A:${question}`,
        // An answer takes a few hundred ms, so lanes hold work when the kill
        // comes; answers of different lengths keep the lanes out of step.
        pause: { afterChars: 1, until: sleep(answerMs(question)) },
      }));
      const envA = env();
      const kvPath = envA.DENO_KV_URL ?? envA.DENO_KV_PATH;
      const a = await startMain(envA);
      // Started after A is up, so its heartbeat says it started later.
      await using b = await startMain(env());
      await using balancer = await startBalancer([a.url, b.url]);
      using kv = await Deno.openKv(kvPath);

      /** Lanes of A that hold more than the message under way, so work is left for B. */
      const busyLanesOfA = async () => {
        const workers = await Array.fromAsync(kv.list<WorkerValue>({ prefix: ["workers"] }));
        if (workers.length < 2) return 0;
        workers.sort((x, y) => x.value.startedAt - y.value.startedAt);
        const idOfA = workers[0].key[1];
        let busy = 0;
        for await (const lease of kv.list<LeaseValue>({ prefix: ["leases"] })) {
          if (lease.value.owner !== idOfA) continue;
          const waiting = await Array.fromAsync(kv.list({ prefix: ["queue", lease.key[1]] }));
          if (waiting.length >= 2) busy++;
        }
        return busy;
      };

      let killedAt = 0;
      const killed = Promise.withResolvers<void>();
      const answers = () =>
        new Set(twilio.messages.map((m) => m.body).filter((b) => b.startsWith("A:")));
      try {
        // Each number asks in turn (the next once the last was acknowledged):
        // half before the kill, half after it, through the balancer.
        const senders = Array.from({ length: NUMBERS }, async (_, n) => {
          const from = `whatsapp:${numberOf(n)}`;
          for (let i = 0; i < PER_NUMBER; i++) {
            if (i === PER_NUMBER / 2) await killed.promise;
            await deliver(balancer.url, whatsAppParams({ From: from, Body: `n${n}-m${i}` }));
          }
        });
        const crash = (async () => {
          // Once answers flow, most lanes have one streaming, and A's hold more.
          const streaming = () => ayd.asks.length - answers().size;
          await waitFor(
            async () =>
              answers().size >= NUMBERS && streaming() >= NUMBERS - 3 &&
              (await busyLanesOfA()) > 0,
            "answers under way and work waiting on A's lanes",
            30_000,
          );
          a.kill("SIGKILL");
          assert.notEqual(await a.exited, 0);
          killedAt = performance.now();
          killed.resolve();
        })().catch((error) => {
          killed.reject(error);
          throw error;
        });
        await Promise.all([...senders, crash]);
        await waitFor(() => answers().size === NUMBERS * PER_NUMBER, "every answer", 60_000);
        const drainMs = Math.round(performance.now() - killedAt);
        // B called A dead: its reaper or a lane it wanted removed A's heartbeat.
        const workers = async () =>
          (await Array.fromAsync(kv.list({ prefix: ["workers"] }))).length;
        await waitFor(async () => (await workers()) === 1, "A's heartbeat to be removed");

        for (let n = 0; n < NUMBERS; n++) {
          const to = `whatsapp:${numberOf(n)}`;
          const got = twilio.messages.filter((m) => m.to === to).map((m) => m.body);
          const asked = Array.from({ length: PER_NUMBER }, (_, i) => `A:n${n}-m${i}`);
          assert.deepEqual(got, asked, `number ${n}: each answer once, in the order asked`);
        }
        assert.equal(twilio.messages.length, NUMBERS * PER_NUMBER, "no reply sent twice");
        // The last reply goes out before its lane is let go: wait for that.
        let left = await leftovers(kv);
        await waitFor(async () => {
          left = await leftovers(kv);
          return left.queue + left.lanes + left.deadLetters === 0;
        }, "every lane let go").catch(() => {});
        assert.deepEqual(left, { queue: 0, lanes: 0, deadLetters: 0 });
        const total = NUMBERS * PER_NUMBER;
        const reasked = ayd.asks.length - total;
        console.log(
          `[${backend}${
            mode === "chat" ? ", chat mode" : ""
          }] ${total} messages from ${NUMBERS} numbers, 2 processes, one SIGKILLed: ` +
            `duplicates 0, asked again ${reasked}, dead backend skipped ${balancer.skipped} ` +
            `times, last answer ${drainMs} ms after the kill`,
        );
        assert.equal((await b.stop("SIGTERM")).code, 0);
      } finally {
        await a[Symbol.asyncDispose]();
      }
    });
  },
);

const USER = "whatsapp:+15551234567";

testEverySetting(
  "instances - a process paused (SIGSTOP) past its lease: the other takes its lane and answers; resumed, it sends nothing under its old lease and works on",
  async (backend, mode) => {
    // A short lease: B calls A dead after 600 ms without a heartbeat.
    await withServices(backend, mode, 600, async ({ ayd, twilio, env }) => {
      const firstAsk = Promise.withResolvers<void>();
      let asksOfQ1 = 0;
      ayd.onAsk(({ question }) => {
        if (question !== "q1") return { kind: "answer", text: `A:${question}` };
        asksOfQ1++;
        // A's answer stalls before its first part until A has been paused and resumed.
        return asksOfQ1 === 1
          ? {
            kind: "answer",
            text: "A:q1 from ask 1",
            pause: { afterChars: 1, until: firstAsk.promise },
          }
          : { kind: "answer", text: `A:q1 from ask ${asksOfQ1}` };
      });
      await using first = await startMain(env());
      await using second = await startMain(env());
      const send = (url: string, body: string) =>
        deliver(url, whatsAppParams({ From: USER, Body: body }));
      const started = (p: MainProcess) => p.output().includes('"event":"job.started"');

      await send(first.url, "q1");
      // The process that took the lane (on kv-queue the other may win it
      // through the shared queue) is the one to pause: A; the other is B.
      await waitFor(() => asksOfQ1 === 1 && (started(first) || started(second)), "q1 asked");
      const [a, b] = started(first) ? [first, second] : [second, first];
      a.kill("SIGSTOP");
      // Queued behind q1 while A, which holds the lane, is paused.
      await send(b.url, "q2");
      // B calls A dead (its heartbeat stood still for the lease), sweeps
      // A's lane, asks q1 again (no part of it had gone out) and then q2.
      const replies = await twilio.waitForMessages(USER, 2, 20_000);
      assert.deepEqual(replies.map((m) => m.body), ["A:q1 from ask 2", "A:q2"]);
      // Taking A's lane took calling A dead, which removed A's heartbeat.
      const shared = env();
      using kv = await Deno.openKv(shared.DENO_KV_URL ?? shared.DENO_KV_PATH);
      assert.equal((await Array.fromAsync(kv.list({ prefix: ["workers"] }))).length, 1);

      // A resumes with its answer to q1 complete, but its heartbeat is stale
      // and its lease gone: it drops the answer and takes a new worker id.
      firstAsk.resolve();
      a.kill("SIGCONT");
      await waitFor(
        () => a.output().includes('"event":"lane.lease_lost"'),
        "A to see its lease gone",
      );
      await waitFor(() => a.output().includes('"event":"worker.new_id"'), "A to take a new id");
      assert.deepEqual(twilio.messages.map((m) => m.body), ["A:q1 from ask 2", "A:q2"]);

      // A, under its new id, answers again; nothing from before comes back.
      await send(a.url, "q3");
      await twilio.waitForMessages(USER, 3);
      assert.deepEqual(twilio.messages.map((m) => m.body), [
        "A:q1 from ask 2",
        "A:q2",
        "A:q3",
      ]);
      assert.equal(asksOfQ1, 2, "q1 asked by A, then once by B");
      for (const process of [a, b]) {
        assert.equal((await process.stop("SIGTERM")).code, 0);
      }
      assert.deepEqual(await leftovers(kv), { queue: 0, lanes: 0, deadLetters: 0 });
      assert.equal(twilio.messages.length, 3, "nothing sent after the checks either");
    });
  },
);
