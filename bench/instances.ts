/**
 * Two instances on one KV file behind a round-robin balancer, with the
 * shipped defaults: numbers ask a few questions each, paced, answers take
 * 1–2 s, and one instance is SIGKILLed mid-burst while webhooks keep coming
 * (the balancer skips the dead one). The figure: the time from the kill
 * until every message is answered, against 15 s; duplicates (target 0) and
 * answers out of the order asked (must be 0), under each job backend.
 */
import { startBalancer } from "../tests/_balancer.ts";
import { startMain } from "../tests/_process.ts";
import {
  benchEnv,
  commitCost,
  post,
  signedRequests,
  startFakes,
  table,
  until,
  watchReplies,
} from "./_shared.ts";

const TARGET_DRAIN_S = 15;

/** 1–2 s, by question (`m<i>`). */
const answerMs = (question: string) => 1000 + (Number(question.slice(1)) * 397) % 1000;

export async function instances(options: {
  numbers: number;
  perNumber: number;
  /** Between one number's messages. */
  gapMs: number;
  backends: ("kv-queue" | "outbox")[];
}) {
  const rows = [];
  const total = options.numbers * options.perNumber;
  for (const backend of options.backends) {
    await using fakes = await startFakes();
    const dir = await Deno.makeTempDir();
    try {
      const asks = new Map<string, number>();
      fakes.ayd.onAsk(({ question }) => {
        asks.set(question, (asks.get(question) ?? 0) + 1);
        return {
          kind: "answer",
          text: `A:${question} ` + "late orders by region ".repeat(20),
          pause: {
            afterChars: 1,
            until: new Promise((resolve) => setTimeout(resolve, answerMs(question))),
          },
        };
      });
      const replies = watchReplies(fakes.twilio);
      const commitMs = await commitCost(dir);
      // Each message is a question of its own here (they come 750 ms apart,
      // inside the default merge window): the run counts answers per message.
      const env = () =>
        benchEnv(dir, fakes, { JOB_BACKEND: backend, PORT: "0", MERGE_WINDOW_MS: "0" }, {
          shipped: true,
        });
      const a = await startMain(env());
      await using b = await startMain(env());
      await using balancer = await startBalancer([a.url, b.url]);
      // Request i is message i / numbers of number i % numbers: in the order each number asks.
      const requests = signedRequests(total, options.numbers, (i) => `m${i}`);
      let killedAt = 0;
      let errors = 0;
      let acked = 0;
      try {
        const senders = Array.from({ length: options.numbers }, async (_, n) => {
          for (let k = 0; k < options.perNumber; k++) {
            if (k > 0) await new Promise((resolve) => setTimeout(resolve, options.gapMs));
            const request = requests[k * options.numbers + n];
            // Like Twilio: again on failure, until acknowledged.
            while ((await post(balancer.url, request).catch(() => 0)) !== 200) errors++;
            acked++;
          }
        });
        const crash = (async () => {
          // Mid-burst: half the webhooks are in, and the answers to the first are streaming.
          await until(() => acked >= total / 2, 120_000, "half the webhooks");
          a.kill("SIGKILL");
          await a.exited;
          killedAt = performance.now();
        })();
        await Promise.all([...senders, crash]);
        await until(() => replies.first.size >= total, 300_000, "every answer");
        const drainS = (Math.max(...replies.last.values()) - killedAt) / 1000;
        // Each number's answers in the order it asked: request index grows.
        let outOfOrder = 0;
        const lastSeen = new Map<string, number>();
        for (const { to, question } of replies.order) {
          if (question === undefined) continue;
          const index = Number(question.slice(1));
          if ((lastSeen.get(to) ?? -1) > index) outOfOrder++;
          lastSeen.set(to, index);
        }
        rows.push({
          backend,
          messages: total,
          numbers: options.numbers,
          "kill → all answered s": drainS,
          "target s": `≤ ${TARGET_DRAIN_S}`,
          duplicates: replies.duplicates(),
          "out of order": outOfOrder,
          met: drainS <= TARGET_DRAIN_S && replies.duplicates() === 0 && outOfOrder === 0
            ? "yes"
            : "no",
          "re-asks": [...asks.values()].reduce((n, c) => n + c - 1, 0),
          "skipped dead": balancer.skipped,
          "webhook retries": errors,
          "other messages": replies.others(),
          "KV commit ms": commitMs.toFixed(2),
        });
      } finally {
        await a[Symbol.asyncDispose]();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
  table(
    `Instances: 2 processes on one KV, ${total} messages (${options.numbers} numbers × ${options.perNumber}, ${options.gapMs} ms apart), answers 1–2 s, one SIGKILLed mid-burst (shipped defaults, MERGE_WINDOW_MS=0)`,
    rows,
  );
  return rows;
}

if (import.meta.main) {
  await instances({ numbers: 50, perNumber: 4, gapMs: 750, backends: ["kv-queue", "outbox"] });
}
