/**
 * Pipeline: N messages from M numbers through the real service with fake
 * AYD (answers streamed over a set time) and fake Twilio, under a job backend.
 * Queue delay = webhook acknowledged → AYD request started; delivery overhead
 * = AYD stream ended → Twilio request received (short answers). Every
 * `longEvery`-th message gets a long answer streamed over `longMs`; its
 * first-part latency = AYD's first byte → first WhatsApp message, beside the
 * stream's own duration (what it would be if parts waited for the end).
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
  longEvery: number;
  longChars: number;
  longMs: number;
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
      // Numbers take turns, so `longEvery` must not divide `numbers`: one
      // number would get every long answer and hold its own lane for minutes.
      const isLong = (q: string) => Number(q.slice(1)) % options.longEvery === 0;
      // Paragraphs that each start with the question's tag (so every part
      // does) and differ (so a part sent twice is told from its neighbours).
      const paragraph = (q: string, i: number) =>
        `A:${q} ¶${i} ` + "late orders by region ".repeat(14).trim();
      const text = (q: string) => {
        const chars = isLong(q) ? options.longChars : options.answerChars;
        const count = Math.max(1, Math.round(chars / (paragraph(q, 0).length + 2)));
        return Array.from({ length: count }, (_, i) => paragraph(q, i)).join("\n\n");
      };
      const chunkBytes = 64;
      fakes.ayd.onAsk(({ question }) => {
        // The fake writes its first bytes as it answers: AYD's first byte.
        askStarted.set(question, performance.now());
        const body = text(question);
        const chunks = Math.ceil((body.length * 2.5 + 200) / chunkBytes);
        const delay = (isLong(question) ? options.longMs : options.answerMs) / chunks;
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
      const short = [...delivered].filter(([q]) => !isLong(q));
      const long = [...delivered].filter(([q]) => isLong(q));
      const overhead = summarize(short.map(([q, t]) => t - (streamEnded.get(q) ?? t)));
      const firstPart = summarize(long.map(([q, t]) => t - (askStarted.get(q) ?? t)));
      const streamMs = summarize(
        long.map(([q]) => (streamEnded.get(q) ?? 0) - (askStarted.get(q) ?? 0)),
      );
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
        "first part p50 ms": firstPart.p50,
        "first part p99 ms": firstPart.p99,
        "long stream p50 ms": streamMs.p50,
        duplicates,
        lost: options.messages - delivered.size,
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
  table(
    `Pipeline: ${options.messages} messages from ${options.numbers} numbers at ${options.rate}/s, answers of ${options.answerChars} chars streamed over ${options.answerMs} ms; every ${options.longEvery}th answer ${options.longChars} chars over ${options.longMs} ms`,
    rows,
  );
  return rows;
}
