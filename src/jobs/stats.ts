/**
 * Operator statistics, kept in KV by the hour so every instance adds to the
 * same figures: `["stats", metric, hour]` counters and
 * `["answer_ms", hour, MessageSid]` answer times, both kept two days.
 *
 * @module
 */
import { expireAt } from "../storage/mod.ts";
import { countUpTo } from "./_count.ts";

const HOUR = 3_600_000;
const KEEP_MS = 2 * 24 * HOUR;

/** The counted events. */
export const METRICS = ["received", "answered", "failed", "denied", "rate_limited"] as const;

/** The KV key of one metric's counter for the hour of `now`. */
export const statsKey = (metric: string, now: number): Deno.KvKey => [
  "stats",
  metric,
  Math.floor(now / HOUR),
];

/**
 * Adds one to `metric` for this hour, inside `op`.
 *
 * @example
 * ```ts
 * await count(kv.atomic(), "received", Date.now()).commit();
 * ```
 */
export function count(op: Deno.AtomicOperation, metric: string, now: number) {
  return op.sum(statsKey(metric, now), 1n);
}

/** Records how long a message waited for its answer, inside `op`. */
export function recordAnswerTime(
  op: Deno.AtomicOperation,
  messageSid: string,
  ms: number,
  now: number,
): Deno.AtomicOperation {
  const key = ["answer_ms", Math.floor(now / HOUR), messageSid];
  return expireAt(op.set(key, ms), key, now + KEEP_MS);
}

/** The figures `GET /admin/stats` shows. */
export interface Stats {
  lastHour: Record<(typeof METRICS)[number], number>;
  lastDay: Record<(typeof METRICS)[number], number>;
  answerTimeMs: { p50: number | null; p95: number | null; samples: number };
  deliveryFailuresByErrorCode: Record<string, number>;
  /** Numbers with an AYD session (session mode) or chat (chat mode), counted up to 10,000. */
  sessions: number;
  chats: number;
  /** People in the directory, counted up to 10,000. */
  people: number;
  pendingJobs: number;
  deadLetters: number;
}

/**
 * Reads the statistics of the last hour (this and the previous clock hour)
 * and the last day (25 clock hours); answer times cover the last day.
 *
 * @example
 * ```ts
 * const stats = await readStats(kv, Date.now());
 * console.log(stats.lastHour.received);
 * ```
 */
export async function readStats(kv: Deno.Kv, now: number): Promise<Stats> {
  const hour = Math.floor(now / HOUR);
  const empty = () => Object.fromEntries(METRICS.map((m) => [m, 0])) as Stats["lastHour"];
  const lastHour = empty();
  const lastDay = empty();
  const failures: Record<string, number> = {};
  for await (const entry of kv.list<Deno.KvU64>({ prefix: ["stats"] })) {
    const [, metric, at] = entry.key as [string, string, number];
    if (at < hour - 24) {
      await kv.delete(entry.key); // counters cannot expire by themselves
      continue;
    }
    const value = Number(entry.value.value);
    if (metric.startsWith("delivery_failed:")) {
      const code = metric.slice("delivery_failed:".length);
      failures[code] = (failures[code] ?? 0) + value;
    } else if (metric in lastDay) {
      lastDay[metric as keyof Stats["lastDay"]] += value;
      if (at >= hour - 1) lastHour[metric as keyof Stats["lastHour"]] += value;
    }
  }
  const times = (await Array.fromAsync(
    kv.list<number>({ start: ["answer_ms", hour - 24], end: ["answer_ms", hour + 1] }),
  )).map((e) => e.value).sort((a, b) => a - b);
  const at = (q: number) =>
    times.length ? times[Math.min(times.length - 1, Math.floor(q * times.length))] : null;
  return {
    lastHour,
    lastDay,
    answerTimeMs: { p50: at(0.5), p95: at(0.95), samples: times.length },
    deliveryFailuresByErrorCode: failures,
    sessions: await countUpTo(kv, ["sessions"]),
    chats: await countUpTo(kv, ["chats"]),
    people: await countUpTo(kv, ["people"]),
    ...await countJobs(kv),
  };
}

/**
 * Messages waiting in lanes, and dead letters, each counted up to 10,000.
 *
 * @example
 * ```ts
 * const { pendingJobs, deadLetters } = await countJobs(kv);
 * ```
 */
export async function countJobs(
  kv: Deno.Kv,
): Promise<{ pendingJobs: number; deadLetters: number }> {
  const [pendingJobs, deadLetters] = await Promise.all([
    countUpTo(kv, ["queue"]),
    countUpTo(kv, ["dead_letters"]),
  ]);
  return { pendingJobs, deadLetters };
}
