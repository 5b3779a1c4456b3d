/**
 * The doctor's public URL lines, fetched from where the doctor runs, along
 * the path Twilio takes: `GET` the `/health` beside `TWILIO_WEBHOOK_URL`
 * must answer as this bridge (its `instance` has a heartbeat in this
 * configuration's KV, so a proxy that points at another server, or at a
 * bridge on another KV, is caught), and an unsigned `POST` to the webhook
 * and status callback URLs must reach the bridge's signature check (`403`).
 * It cannot show that Twilio's servers reach the URL: a firewall that lets
 * only this machine in passes here.
 *
 * @module
 */
import type { Config } from "../config.ts";
import type { WorkerValue } from "../jobs/mod.ts";
import { describeKvLocation } from "../storage/mod.ts";
import { redactUrl, statusCallbackUrl } from "../webhook/mod.ts";
import type { CheckLine } from "./report.ts";

/** How long each request to the public URL may take. */
export const PUBLIC_URL_TIMEOUT_MS = 10_000;

/** What the bridge answers an unsigned webhook: how the doctor knows it reached the check. */
const SIGNATURE_REFUSAL = "Forbidden: invalid Twilio signature";

const area = "public URL";

/**
 * The `/health` beside a webhook URL: same origin and folder, no query.
 *
 * @example
 * ```ts
 * healthUrlBeside("https://bridge.example.com/bot/whatsapp?x=1#rc=2");
 * // "https://bridge.example.com/bot/health"
 * ```
 */
export function healthUrlBeside(webhookUrl: string): string {
  const url = new URL(webhookUrl.split("#", 1)[0]);
  url.search = "";
  url.pathname = url.pathname.replace(/\/+$/, "");
  return new URL("health", url).href;
}

/**
 * Runs the public URL checks. `kv` is this configuration's KV (absent when
 * it did not open), where the running bridge's heartbeat should be.
 *
 * @example
 * ```ts
 * const lines = await checkPublicUrl(config, { kv });
 * ```
 */
export async function checkPublicUrl(
  config: Config,
  deps: { kv?: Deno.Kv; fetch?: typeof fetch; timeoutMs?: number; recheckAfterMs?: number },
): Promise<CheckLine[]> {
  const get = (url: string, init: RequestInit = {}) =>
    request(deps.fetch ?? fetch, url, init, deps.timeoutMs ?? PUBLIC_URL_TIMEOUT_MS);
  const health = healthUrlBeside(config.twilioWebhookUrl);
  const status = statusCallbackUrl(config.twilioWebhookUrl, config.twilioStatusCallbackUrl);
  const recheckAfterMs = deps.recheckAfterMs ?? Math.ceil(config.jobLeaseMs / 3) + 200;
  const [identity, webhook, callbacks] = await Promise.all([
    get(health, { headers: { accept: "application/json" } })
      .then((answer) => healthLine(health, answer, config, { kv: deps.kv, recheckAfterMs })),
    signedRouteLine("TWILIO_WEBHOOK_URL", config.twilioWebhookUrl, get),
    signedRouteLine("status callbacks", status, get),
  ]);
  return [identity, webhook, callbacks];
}

type Answer = { response: Response; body: string } | { error: string };

async function request(
  fetchFn: typeof fetch,
  raw: string,
  init: RequestInit,
  ms: number,
): Promise<Answer> {
  // fetch refuses a URL with credentials in it; Twilio sends them as Basic auth.
  const url = new URL(raw.split("#", 1)[0]);
  const headers = new Headers(init.headers);
  if (url.username || url.password) {
    const user = decodeURIComponent(url.username);
    headers.set("authorization", `Basic ${btoa(`${user}:${decodeURIComponent(url.password)}`)}`);
    url.username = url.password = "";
  }
  try {
    const response = await fetchFn(url, {
      ...init,
      headers,
      redirect: "manual",
      signal: AbortSignal.timeout(ms),
    });
    return { response, body: (await response.text()).slice(0, 2_000) };
  } catch (error) {
    if (error instanceof DOMException && error.name === "TimeoutError") {
      return { error: `no answer within ${ms / 1000} s` };
    }
    const cause = (error as Error)?.cause instanceof Error
      ? (error as Error).cause as Error
      : error;
    return { error: shortReason(String((cause as Error)?.message ?? cause)) };
  }
}

/** The gist of a network error, without the URL it may repeat. */
function shortReason(message: string): string {
  if (/refused/i.test(message)) return "connection refused";
  if (/dns|lookup|resolve|not known/i.test(message)) return "the host name does not resolve";
  if (/certificate|tls|ssl/i.test(message)) return "the TLS certificate is not accepted";
  if (/reset|closed/i.test(message)) return "the connection was closed";
  return "no connection";
}

const EXPOSE_FIX = (config: Config) =>
  `start the bridge (deno task start) and expose port ${config.port} at ` +
  `${new URL(config.twilioWebhookUrl).origin} (a reverse proxy, a tunnel such as ` +
  `ngrok http ${config.port}, …), then run the doctor again`;

async function healthLine(
  url: string,
  answer: Answer,
  config: Config,
  deps: { kv?: Deno.Kv; recheckAfterMs: number },
): Promise<CheckLine> {
  const shown = redactUrl(url);
  const fail = (text: string, fix: string): CheckLine => ({ status: "fail", area, text, fix });
  if ("error" in answer) {
    return fail(`${shown} cannot be reached from here (${answer.error})`, EXPOSE_FIX(config));
  }
  const { response, body } = answer;
  if (response.status >= 300 && response.status < 400) {
    return fail(
      `${shown} redirects (${response.status} to ${
        redactUrl(response.headers.get("location") ?? "?")
      })`,
      "Twilio's webhook must not be redirected (the signature covers the URL Twilio called): " +
        "set TWILIO_WEBHOOK_URL, and the webhook in Twilio, to the URL it redirects to",
    );
  }
  let health: { status?: unknown; instance?: unknown; reason?: unknown };
  try {
    health = JSON.parse(body);
  } catch {
    health = {};
  }
  if (typeof health.instance !== "string" || typeof health.status !== "string") {
    const type = response.headers.get("content-type")?.split(";", 1)[0] ?? "no content type";
    return fail(
      `${shown} answers ${response.status} (${type}), but not as this bridge`,
      `the host or proxy at ${new URL(url).origin} sends requests to another server: ` +
        `point it at this bridge (port ${config.port})`,
    );
  }
  const instance = health.instance;
  const short = `${instance.slice(0, 8)}…`;
  if (health.status !== "ok") {
    return fail(
      `${shown} is a bridge (instance ${short}), but it reports ${health.status}` +
        (typeof health.reason === "string" ? `: ${health.reason}` : ""),
      "its KV cannot be written: see the bridge's log (storage.failing) and its disk or " +
        "KV Connect server",
    );
  }
  if (!deps.kv) {
    return {
      status: "skip",
      area,
      text: `${shown} is a bridge (instance ${short}); whether it is this one could not be ` +
        "checked, since KV did not open (see above)",
    };
  }
  if (config.kvPath === ":memory:") {
    return {
      status: "skip",
      area,
      text: `${shown} is a bridge (instance ${short}); whether it is this one cannot be checked ` +
        "with DENO_KV_PATH=:memory:, which no other process sees",
    };
  }
  const where = describeKvLocation(config.kvPath);
  // A bridge that has just started may not have written its first heartbeat yet.
  if (await heartbeatOf(deps.kv, instance, deps.recheckAfterMs)) {
    return {
      status: "pass",
      area,
      text: `${shown} answers as this bridge (instance ${short}, whose heartbeat is in ${where})`,
    };
  }
  return fail(
    `${shown} answers as a bridge (instance ${short}) with no heartbeat in ${where}`,
    "the URL reaches another deployment of the bridge, or one on another KV: point the proxy " +
      "at this one, or give the doctor that bridge's configuration (DENO_KV_PATH, DENO_KV_URL)",
  );
}

async function heartbeatOf(kv: Deno.Kv, instance: string, recheckAfterMs: number) {
  for (let look = 0; look < 2; look++) {
    if (look > 0) await new Promise((resolve) => setTimeout(resolve, recheckAfterMs));
    // Every process's heartbeat, `workerKey(id)`.
    for await (const entry of kv.list<WorkerValue>({ prefix: ["workers"] }, { limit: 1_000 })) {
      if (entry.value?.instance === instance) return true;
    }
  }
  return false;
}

async function signedRouteLine(
  name: string,
  url: string,
  get: (url: string, init: RequestInit) => Promise<Answer>,
): Promise<CheckLine> {
  const shown = redactUrl(url.split("#", 1)[0]);
  const answer = await get(url, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: "",
  });
  const what = name === "TWILIO_WEBHOOK_URL" ? "TWILIO_WEBHOOK_URL" : "the status callback URL";
  const variable = name === "TWILIO_WEBHOOK_URL"
    ? "TWILIO_WEBHOOK_URL"
    : "TWILIO_STATUS_CALLBACK_URL";
  if ("error" in answer) {
    return {
      status: "fail",
      area,
      text: `POST ${shown} cannot be reached from here (${answer.error})`,
      fix:
        `the same host as /health? then the proxy does not pass this path; else check ${variable}`,
    };
  }
  const { response, body } = answer;
  if (response.status === 403 && body.startsWith(SIGNATURE_REFUSAL)) {
    return {
      status: "pass",
      area,
      text: `POST ${shown} reaches the bridge's signature check (an unsigned one gets 403)`,
    };
  }
  const got = response.status >= 300 && response.status < 400
    ? `${response.status}, a redirect to ${redactUrl(response.headers.get("location") ?? "?")}`
    : `${response.status}`;
  return {
    status: "fail",
    area,
    text: `POST ${shown} answers ${got}, not the bridge's 403 for an unsigned request`,
    fix: response.status === 404
      ? `${what} does not name the bridge's route (/whatsapp, /twilio/status) behind the proxy: ` +
        `fix its path in ${variable}, or the proxy's rules`
      : `the proxy sends ${what} somewhere else than this bridge, or changes the request: ` +
        "check its rules for this path",
  };
}
