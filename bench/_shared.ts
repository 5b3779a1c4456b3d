/** Shared pieces of the benchmarks: fakes, the service as a process, figures. */
import { startFakeAyd } from "../tests/fakes/fake_ayd.ts";
import { startFakeTwilio } from "../tests/fakes/fake_twilio.ts";
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

/** The service's environment for a benchmark, on a fresh KV file. */
export function benchEnv(
  dir: string,
  fakes: { ayd: { url: string }; twilio: { url: string } },
  extra: Record<string, string> = {},
) {
  return testEnv({
    AYD_BASE_URL: fakes.ayd.url,
    TWILIO_API_BASE_URL: fakes.twilio.url,
    DENO_KV_PATH: `${dir}/bridge.kv`,
    LOG_LEVEL: "info",
    JOB_RETRY_BUDGET_MS: "60000",
    RATE_LIMIT_PER_MINUTE: "100000",
    RATE_LIMIT_PER_DAY: "10000000",
    TYPING_INDICATOR: "false",
    WORKER_CONCURRENCY: "256",
    ...extra,
  });
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
