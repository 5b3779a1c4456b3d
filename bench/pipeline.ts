/**
 * Pipeline: N messages from M numbers through the real service with fake
 * AYD (answers streamed over a set time) and fake Twilio, under a job backend.
 * Queue delay = webhook acknowledged → AYD request started; delivery overhead
 * = AYD stream ended → Twilio request received.
 */
import { startMain } from "../tests/_process.ts";
import { benchEnv, post, signedRequests, startFakes, summarize, table, until } from "./_shared.ts";

export async function pipeline(options: {
  messages: number;
  numbers: number;
  /** Arrival rate (messages per second), spread round-robin over the numbers. */
  rate: number;
  answerMs: number;
  answerChars: number;
  backends: ("kv-queue" | "outbox")[];
}) {
  const rows = [];
  for (const backend of options.backends) {
    await using fakes = await startFakes();
    const dir = await Deno.makeTempDir();
    try {
      const acked = new Map<string, number>();
      const askStarted = new Map<string, number>();
      const streamEnded = new Map<string, number>();
      const delivered = new Map<string, number>();
      const text = (q: string) =>
        `A:${q} ` + "x".repeat(Math.max(0, options.answerChars - q.length - 3));
      const chunkBytes = 64;
      fakes.ayd.onAsk(({ question }) => {
        askStarted.set(question, performance.now());
        const body = text(question);
        const chunks = Math.ceil((body.length * 1.2 + 200) / chunkBytes);
        const delay = options.answerMs / chunks;
        return {
          kind: "answer",
          text: body,
          chunkBytes,
          chunkDelayMs: delay,
          onEnd: () => streamEnded.set(question, performance.now()),
        };
      });
      const seenBodies = new Map<string, number>();
      // Timestamps at the moment the fake records a send, without polling.
      const originalPush = fakes.twilio.messages.push.bind(fakes.twilio.messages);
      fakes.twilio.messages.push = (...items) => {
        for (const item of items) {
          const q = item.body.slice(2, item.body.indexOf(" "));
          if (!delivered.has(q)) delivered.set(q, performance.now());
          seenBodies.set(item.body, (seenBodies.get(item.body) ?? 0) + 1);
        }
        return originalPush(...items);
      };
      await using service = await startMain(benchEnv(dir, fakes, { JOB_BACKEND: backend }));
      const requests = signedRequests(options.messages, options.numbers, (i) => `m${i}`);
      const started = performance.now();
      // Open loop: messages arrive at `rate` whatever the service does.
      const sends: Promise<unknown>[] = [];
      for (const [i, request] of requests.entries()) {
        const due = started + (i * 1000) / options.rate;
        const wait = due - performance.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        sends.push(
          post(service.url, request).then(() => acked.set(request.params.Body, performance.now())),
        );
      }
      await Promise.all(sends);
      await until(() => delivered.size >= options.messages, 300_000, "every answer");
      const seconds = (performance.now() - started) / 1000;
      const queueDelay = summarize([...askStarted].map(([q, t]) => t - (acked.get(q) ?? t)));
      const overhead = summarize([...delivered].map(([q, t]) => t - (streamEnded.get(q) ?? t)));
      const duplicates = [...seenBodies.values()].reduce((n, c) => n + c - 1, 0);
      rows.push({
        backend,
        messages: options.messages,
        numbers: options.numbers,
        "answered/s": options.messages / seconds,
        "queue p50 ms": queueDelay.p50,
        "queue p99 ms": queueDelay.p99,
        "delivery p50 ms": overhead.p50,
        "delivery p99 ms": overhead.p99,
        duplicates,
        lost: options.messages - delivered.size,
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
  table(
    `Pipeline: ${options.messages} messages from ${options.numbers} numbers at ${options.rate}/s, answers of ${options.answerChars} chars streamed over ${options.answerMs} ms`,
    rows,
  );
  return rows;
}
