/**
 * Pipeline: N messages from M numbers through the real service with fake
 * AYD (answers streamed over a set time) and fake Twilio, under a job backend.
 * Queue delay = webhook acknowledged → AYD request started; delivery overhead
 * = AYD stream ended → Twilio request received for the last part; first part
 * = AYD's first byte → first WhatsApp message, beside the stream's own
 * duration (what it would be if parts waited for the end of the answer).
 */
import { formatAnswer } from "../src/whatsapp/format.ts";
import { startMain } from "../tests/_process.ts";
import {
  benchEnv,
  post,
  signedRequests,
  startFakes,
  startRemoteKv,
  summarize,
  table,
  until,
} from "./_shared.ts";

export async function pipeline(options: {
  messages: number;
  numbers: number;
  /** Arrival rate (messages per second), spread round-robin over the numbers. */
  rate: number;
  answerMs: number;
  answerChars: number;
  /** `kv-connect`: outbox on a remote KV, the KV Connect test server, with its round trips counted. */
  backends: ("kv-queue" | "outbox" | "kv-connect")[];
}) {
  const rows = [];
  for (const backend of options.backends) {
    await using fakes = await startFakes();
    const dir = await Deno.makeTempDir();
    try {
      const acked = new Map<string, number>();
      const askStarted = new Map<string, number>();
      const streamEnded = new Map<string, number>();
      // First and last part of each answer reaching Twilio, and parts so far.
      const delivered = new Map<string, number>();
      const completed = new Map<string, number>();
      const partsSeen = new Map<string, number>();
      // Paragraphs that each start with the question's tag (so every part
      // does) and differ (so a part sent twice is told from its neighbours).
      const paragraph = (q: string, i: number) =>
        `A:${q} ¶${i} ` + "late orders by region ".repeat(14).trim();
      const text = (q: string) => {
        const count = Math.max(1, Math.round(options.answerChars / (paragraph(q, 0).length + 2)));
        return Array.from({ length: count }, (_, i) => paragraph(q, i)).join("\n\n");
      };
      const expectedParts = formatAnswer(text("m0"), 1600).length;
      const chunkBytes = 64;
      fakes.ayd.onAsk(({ question }) => {
        // The fake writes its first bytes as it answers: AYD's first byte.
        askStarted.set(question, performance.now());
        const body = text(question);
        const chunks = Math.ceil((body.length * 2.5 + 200) / chunkBytes);
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
          const now = performance.now();
          if (!delivered.has(q)) delivered.set(q, now);
          partsSeen.set(q, (partsSeen.get(q) ?? 0) + 1);
          if (partsSeen.get(q) === expectedParts) completed.set(q, now);
          seenBodies.set(item.body, (seenBodies.get(item.body) ?? 0) + 1);
        }
        return originalPush(...items);
      };
      const remote = backend === "kv-connect" ? await startRemoteKv() : undefined;
      await using _remote = remote;
      const where = remote ? remote.env : { JOB_BACKEND: backend };
      await using service = await startMain(benchEnv(dir, fakes, where));
      const before = remote && { ...remote.server.stats };
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
      await until(() => completed.size >= options.messages, 300_000, "every answer");
      const seconds = (performance.now() - started) / 1000;
      const queueDelay = summarize([...askStarted].map(([q, t]) => t - (acked.get(q) ?? t)));
      const overhead = summarize([...completed].map(([q, t]) => t - (streamEnded.get(q) ?? t)));
      const firstPart = summarize([...delivered].map(([q, t]) => t - (askStarted.get(q) ?? t)));
      const stream = summarize(
        [...streamEnded].map(([q, t]) => t - (askStarted.get(q) ?? t)),
      );
      const duplicates = [...seenBodies.values()].reduce((n, c) => n + c - 1, 0);
      const perMessage = (n: number) => Math.round((n / options.messages) * 10) / 10;
      const kvCost: Record<string, number | string> = remote && before
        ? {
          "commits/msg": perMessage(remote.server.stats.commits - before.commits),
          "reads/msg": perMessage(remote.server.stats.snapshotReads - before.snapshotReads),
          "round trips/msg": perMessage(remote.server.stats.roundTrips - before.roundTrips),
        }
        : { "commits/msg": "", "reads/msg": "", "round trips/msg": "" };
      rows.push({
        backend,
        messages: options.messages,
        numbers: options.numbers,
        "answered/s": options.messages / seconds,
        "queue p50 ms": queueDelay.p50,
        "queue p99 ms": queueDelay.p99,
        "delivery p50 ms": overhead.p50,
        "delivery p99 ms": overhead.p99,
        parts: expectedParts,
        "first part p50 ms": firstPart.p50,
        "first part p99 ms": firstPart.p99,
        "stream p50 ms": stream.p50,
        duplicates,
        lost: options.messages - delivered.size,
        ...kvCost,
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
