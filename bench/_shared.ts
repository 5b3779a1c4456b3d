/** Shared pieces of the benchmarks: fakes, the service as a process, figures. */
import { startFakeAyd } from "../tests/fakes/fake_ayd.ts";
import { startFakeTwilio } from "../tests/fakes/fake_twilio.ts";
import { startKvConnectServer } from "../tests/fakes/kv_connect/mod.ts";
import {
  ACCOUNT_SID,
  API_KEY,
  AUTH_TOKEN,
  CHAT_ID,
  sign,
  testEnv,
  whatsAppParams,
} from "../tests/_helpers.ts";

export { ACCOUNT_SID, API_KEY, AUTH_TOKEN, CHAT_ID };

/**
 * The KV Connect test server (`tests/fakes/kv_connect/`), with the
 * environment that points the service at it: a remote KV whose round trips
 * and commits can be counted.
 */
export async function startRemoteKv() {
  const token = "bench-kv-connect-token";
  const server = await startKvConnectServer({ token });
  return {
    server,
    env: { DENO_KV_URL: server.url, DENO_KV_ACCESS_TOKEN: token },
    [Symbol.asyncDispose]: () => server.close(),
  };
}

/** Fake AYD and Twilio on loopback. */
export async function startFakes() {
  const ayd = await startFakeAyd({ apiKey: API_KEY, chatId: CHAT_ID, noise: false });
  const twilio = await startFakeTwilio({ accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN });
  return {
    ayd,
    twilio,
    async [Symbol.asyncDispose]() {
      await ayd.close();
      await twilio.close();
    },
  };
}

/**
 * The service's environment for a benchmark, on a fresh KV file. With
 * `shipped`, the job settings are the shipped defaults (`WORKER_CONCURRENCY`,
 * `JOB_LEASE_MS`, the typing indicator on, `MERGE_WINDOW_MS`); otherwise
 * 256 lanes at once, no typing indicator and no merge window, as the older
 * benchmarks were measured.
 */
export function benchEnv(
  dir: string,
  fakes: { ayd: { url: string }; twilio: { url: string } },
  extra: Record<string, string> = {},
  options: { shipped?: boolean } = {},
) {
  const env = testEnv({
    AYD_BASE_URL: fakes.ayd.url,
    TWILIO_API_BASE_URL: fakes.twilio.url,
    DENO_KV_PATH: `${dir}/bridge.kv`,
    LOG_LEVEL: "info",
    JOB_RETRY_BUDGET_MS: "60000",
    RATE_LIMIT_PER_MINUTE: "100000",
    RATE_LIMIT_PER_DAY: "10000000",
    ...!options.shipped && { TYPING_INDICATOR: "false", WORKER_CONCURRENCY: "256" },
    ...extra,
  });
  // The tests' environment asks each message alone; shipped, pieces are joined.
  if (options.shipped && !("MERGE_WINDOW_MS" in extra)) delete env.MERGE_WINDOW_MS;
  return env;
}

/**
 * A realistic answer of about `chars` characters whose every paragraph
 * starts with `A:<question>`, so each WhatsApp part names its question.
 */
export function answerText(question: string, chars: number): string {
  const paragraph = (i: number) =>
    `A:${question} ¶${i} Late orders by region last week: north 42 (3.1 days on average), ` +
    `south 17 (1.4 days), east 29, west 8. Most were held at the carrier's hub.`;
  const count = Math.max(1, Math.round(chars / (paragraph(0).length + 2)));
  return Array.from({ length: count }, (_, i) => paragraph(i)).join("\n\n");
}

/**
 * Fake AYD behaviour for `text` streamed over about `ms`: one SSE event per
 * 64-byte network write (about what a token stream looks like), evenly spaced.
 */
export function streamedOver(text: string, ms: number, onEnd?: () => void) {
  const chunkBytes = 64;
  const chunks = Math.ceil((new TextEncoder().encode(text).length * 2.5 + 200) / chunkBytes);
  // The first write goes out at once; the delays come between writes.
  const chunkDelayMs = ms / Math.max(1, chunks - 1);
  return { kind: "answer" as const, text, chunkBytes, chunkDelayMs, onEnd };
}

/** The question a reply part answers (`A:<question> …`), or undefined for other texts. */
export const questionOf = (body: string): string | undefined =>
  body.startsWith("A:") ? body.slice(2, body.indexOf(" ")) : undefined;

/**
 * Records, as fake Twilio accepts them, when each question's reply parts
 * arrive, and counts bodies accepted more than once.
 */
export function watchReplies(twilio: { messages: { body: string; to: string }[] }) {
  const first = new Map<string, number>();
  const last = new Map<string, number>();
  const parts = new Map<string, number>();
  const bodies = new Map<string, number>();
  const order: { to: string; question?: string }[] = [];
  const push = twilio.messages.push.bind(twilio.messages);
  twilio.messages.push = (...items) => {
    const now = performance.now();
    for (const item of items) {
      const q = questionOf(item.body);
      order.push({ to: item.to, question: q });
      bodies.set(item.body, (bodies.get(item.body) ?? 0) + 1);
      if (q === undefined) continue;
      if (!first.has(q)) first.set(q, now);
      last.set(q, now);
      parts.set(q, (parts.get(q) ?? 0) + 1);
    }
    return push(...items);
  };
  return {
    /** First and latest part of each question at Twilio (performance.now()). */
    first,
    last,
    parts,
    /** Every accepted message, in order: its recipient and question. */
    order,
    /** Bodies accepted more than once, counted once per extra copy. */
    duplicates: () => [...bodies.values()].reduce((n, c) => n + c - 1, 0),
    /** Accepted messages that answer no question (apologies, notices). */
    others: () => order.filter((m) => m.question === undefined).length,
  };
}

/**
 * What one durable KV commit costs on the disk under `dir` right now (ms,
 * the median of `count` in a row): the bridge commits several times per
 * message, so a slow disk (fsync) shows in every figure that follows.
 */
export async function commitCost(dir: string, count = 200): Promise<number> {
  const path = `${dir}/probe.kv`;
  const kv = await Deno.openKv(path);
  const times: number[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const t0 = performance.now();
      await kv.atomic().check({ key: ["probe", i], versionstamp: null }).set(["probe", i], i)
        .commit();
      times.push(performance.now() - t0);
    }
  } finally {
    kv.close();
    for (const suffix of ["", "-wal", "-shm"]) await Deno.remove(path + suffix).catch(() => {});
  }
  return summarize(times).p50;
}

/** `count` signed webhook requests, prepared before any clock starts. */
export function signedRequests(count: number, numbers: number, body = (i: number) => `q${i}`) {
  return Array.from({ length: count }, (_, i) => {
    const from = `whatsapp:+1555${String(i % numbers).padStart(7, "0")}`;
    const params = whatsAppParams({ From: from, Body: body(i) });
    return { params, body: new URLSearchParams(params).toString(), signature: sign(params) };
  });
}

/** Posts one prepared webhook; resolves with its status. */
export async function post(
  url: string,
  request: { body: string; signature: string },
): Promise<number> {
  const response = await fetch(`${url}/whatsapp`, {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      "x-twilio-signature": request.signature,
    },
    body: request.body,
  });
  await response.body?.cancel();
  return response.status;
}

/** Runs `requests` through `send` with `concurrency` in flight; latencies in ms. */
export async function load<T>(
  requests: T[],
  concurrency: number,
  send: (request: T) => Promise<number>,
) {
  const latencies: number[] = [];
  let errors = 0;
  let next = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < requests.length) {
      const request = requests[next++];
      const t0 = performance.now();
      try {
        if (await send(request) !== 200) errors++;
      } catch {
        errors++;
      }
      latencies.push(performance.now() - t0);
    }
  }));
  const seconds = (performance.now() - started) / 1000;
  return {
    requests: requests.length,
    perSecond: requests.length / seconds,
    errors,
    ...summarize(latencies),
  };
}

/** p50, p99 and max of `values`. */
export function summarize(values: number[]) {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) =>
    sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : NaN;
  return { p50: at(0.5), p99: at(0.99), max: sorted.at(-1) ?? NaN };
}

/** Prints a table with a title. */
export function table(title: string, rows: Record<string, string | number>[]) {
  console.log(`\n${title}`);
  console.table(rows.map((row) =>
    Object.fromEntries(
      Object.entries(row).map(([k, v]) => [k, typeof v === "number" ? round(v) : v]),
    )
  ));
}

export function round(value: number): number {
  return Number.isFinite(value) ? Math.round(value * 10) / 10 : value;
}

/** Waits until `condition` holds, polling, up to `timeoutMs`. */
export async function until(condition: () => boolean, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
