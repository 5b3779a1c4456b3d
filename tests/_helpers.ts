/**
 * The end-to-end harness: the real bridge, composed as `main.ts` composes it,
 * on 127.0.0.1 with fake AYD and fake Twilio servers, and Twilio-signed
 * webhooks.
 */
import twilio from "twilio";
import { type Bridge, startBridge } from "../src/bridge.ts";
import { type AydMode, type Config, loadConfig } from "../src/config.ts";
import type { JobBackend } from "../src/jobs/jobs.ts";
import { openKv } from "../src/storage/mod.ts";
import { createLogger } from "../src/log.ts";
import { type FakeAyd, type FakeAydOptions, startFakeAyd } from "./fakes/fake_ayd.ts";
import { type FakeTwilio, startFakeTwilio } from "./fakes/fake_twilio.ts";
import { type KvConnectServer, startKvConnectServer } from "./fakes/kv_connect/mod.ts";

export const ACCOUNT_SID = "AC" + "5".repeat(32);
export const AUTH_TOKEN = "test-auth-token-0123456789abcdef";
export const FROM_NUMBER = "+14155238886";
export const WEBHOOK_URL = "https://bridge.example.com/whatsapp";
export const API_KEY = "ayd-test-api-key";
export const CHAT_ID = "chatbot-under-test";

/** The environment of a test bridge, before the fakes' URLs are added. */
export function testEnv(overrides: Record<string, string> = {}): Record<string, string> {
  return {
    TWILIO_ACCOUNT_SID: ACCOUNT_SID,
    TWILIO_AUTH_TOKEN: AUTH_TOKEN,
    TWILIO_FROM_NUMBER: FROM_NUMBER,
    TWILIO_WEBHOOK_URL: WEBHOOK_URL,
    ASKYOURDATABASE_API_KEY: API_KEY,
    ASKYOURDATABASE_CHAT_ID: CHAT_ID,
    HOST: "127.0.0.1",
    PORT: "0",
    DENO_KV_PATH: ":memory:",
    LOG_LEVEL: "debug",
    // Failures end at once unless a test gives the job a retry budget.
    JOB_RETRY_BUDGET_MS: "0",
    JOB_RETRY_BASE_MS: "20",
    // Limits are tested on purpose; elsewhere they must not get in the way.
    RATE_LIMIT_PER_MINUTE: "10000",
    // Each message is its own question unless a test joins pieces on purpose.
    MERGE_WINDOW_MS: "0",
    ...overrides,
  };
}

export interface TestBridge extends AsyncDisposable {
  url: string;
  bridge: Bridge;
  ayd: FakeAyd;
  twilio: FakeTwilio;
  kv: Deno.Kv;
  config: Config;
  /** Every JSON log line the bridge wrote. */
  logs: string[];
  /** Posts a correctly signed WhatsApp webhook; `params` override the defaults. */
  sendWhatsApp(params?: Record<string, string>): Promise<Response>;
}

let sequence = 0;

/** A fresh, valid `MessageSid`. */
export function newMessageSid(): string {
  const random = crypto.getRandomValues(new Uint8Array(12));
  const hex = [...random].map((b) => b.toString(16).padStart(2, "0")).join("");
  return "SM" + (++sequence).toString(16).padStart(8, "0") + hex;
}

/** The form Twilio posts for an inbound WhatsApp text, with its usual fields. */
export function whatsAppParams(overrides: Record<string, string> = {}): Record<string, string> {
  const sid = overrides.MessageSid ?? newMessageSid();
  const from = overrides.From ?? "whatsapp:+15551234567";
  return {
    SmsMessageSid: sid,
    NumMedia: "0",
    ProfileName: "Test User",
    MessageType: "text",
    SmsSid: sid,
    WaId: from.replace(/\D/g, ""),
    SmsStatus: "received",
    Body: "How many orders shipped late last week?",
    To: `whatsapp:${FROM_NUMBER}`,
    NumSegments: "1",
    ReferralNumMedia: "0",
    MessageSid: sid,
    AccountSid: ACCOUNT_SID,
    From: from,
    ApiVersion: "2010-04-01",
    ...overrides,
  };
}

/** A few bytes that start like WhatsApp's voice notes (Ogg with Opus). */
export const OGG_VOICE_NOTE = new TextEncoder().encode("OggS\0\u0002 opus voice note ".repeat(40));

/**
 * The webhook fields of a WhatsApp voice note: no text, one `audio/ogg`
 * medium at `mediaUrl` (fake Twilio's `addMedia`), and `overrides`.
 *
 * @example
 * ```ts
 * await t.sendWhatsApp(voiceNoteParams(t.twilio.addMedia(OGG_VOICE_NOTE, "audio/ogg")));
 * ```
 */
export function voiceNoteParams(
  mediaUrl: string,
  overrides: Record<string, string> = {},
): Record<string, string> {
  return {
    Body: "",
    NumMedia: "1",
    MediaUrl0: mediaUrl,
    MediaContentType0: "audio/ogg",
    MessageType: "audio",
    ...overrides,
  };
}

/** Signs like Twilio: HMAC-SHA1 over the URL and every sorted parameter. */
export function sign(params: Record<string, string>, url = WEBHOOK_URL, token = AUTH_TOKEN) {
  return twilio.getExpectedTwilioSignature(token, url, params);
}

/** Posts a form to `path` (the webhook by default) with the given headers. */
export function postForm(
  bridgeUrl: string,
  params: Record<string, string>,
  headers: Record<string, string> = {},
  path = "/whatsapp",
): Promise<Response> {
  return fetch(`${bridgeUrl}${path}`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams(params),
  });
}

/**
 * Starts fakes and the bridge. `env` overrides the test environment (the
 * fakes' URLs are filled in unless given); `ayd` sets fake AYD's options.
 */
export async function startTestBridge(
  options: {
    backend?: TestBackend;
    /** How the bridge reaches AYD (default `session`). */
    mode?: AydMode;
    env?: Record<string, string>;
    signUrl?: string;
    ayd?: Partial<FakeAydOptions>;
    /** How long the bridge waits for one Twilio request (default 15 s). */
    twilioTimeoutMs?: number;
    /** Wraps the bridge's KV, e.g. to inject storage faults. */
    wrapKv?: (kv: Deno.Kv) => Deno.Kv;
    /** A KV from {@linkcode testKv} to share with another bridge (default: a new one). */
    kv?: TestKv;
  } = {},
): Promise<TestBridge> {
  const ayd = await startFakeAyd({ apiKey: API_KEY, chatId: CHAT_ID, ...options.ayd });
  const fakeTwilio = await startFakeTwilio({ accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN });
  const owned = options.kv ? undefined : await testKv(options.backend ?? "kv-queue");
  const store = options.kv ?? owned!;
  const result = loadConfig(testEnv({
    AYD_BASE_URL: ayd.url,
    TWILIO_API_BASE_URL: fakeTwilio.url,
    AYD_MODE: options.mode ?? "session",
    ...store.env,
    ...options.env,
  }));
  if (!result.ok) throw new Error(result.problems.join("\n"));
  const kv = await openKv(result.config.kvPath);
  const logs: string[] = [];
  const bridge: Bridge = startBridge(result.config, {
    kv: options.wrapKv ? options.wrapKv(kv) : kv,
    log: createLogger({ level: "debug", write: (line) => logs.push(line) }),
    twilioRetry: { attempts: 4, baseDelayMs: 10, maxDelayMs: 50 },
    twilioTimeoutMs: options.twilioTimeoutMs,
  });
  return {
    url: bridge.url,
    bridge,
    ayd,
    twilio: fakeTwilio,
    kv,
    config: result.config,
    logs,
    sendWhatsApp(params = {}) {
      const form = whatsAppParams(params);
      return postForm(bridge.url, form, {
        "x-twilio-signature": sign(form, options.signUrl ?? WEBHOOK_URL),
      });
    },
    async [Symbol.asyncDispose]() {
      await bridge.close();
      await Promise.all([ayd.close(), fakeTwilio.close(), owned?.[Symbol.asyncDispose]()]);
    },
  };
}

/** Waits until `condition` holds, polling; fails with `what` after `timeoutMs`. */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The parsed log lines with the given event name. */
export function logEvents(logs: string[], event: string): Record<string, unknown>[] {
  return logs.map((line) => JSON.parse(line)).filter((entry) => entry.event === event);
}

/**
 * Where the end-to-end suite runs: the two job backends on a local KV, and
 * `outbox` on a remote KV over KV Connect (`kv-connect`: the test's own
 * server, `tests/fakes/kv_connect/`, which the real Deno client talks to).
 */
export type TestBackend = JobBackend | "kv-connect";

/** Every setting the end-to-end suite runs under. */
export const BACKENDS: readonly TestBackend[] = ["kv-queue", "outbox", "kv-connect"];

/** The token of every test KV Connect server (Deno's client reads it from the environment). */
export const KV_CONNECT_TOKEN = "test-kv-connect-token";

/** Registers `fn` once per setting of {@linkcode BACKENDS}, named in the test's name. */
export function testEveryBackend(name: string, fn: (backend: TestBackend) => Promise<void>) {
  for (const backend of BACKENDS) Deno.test(`${name} [${backend}]`, () => fn(backend));
}

/**
 * The backend chat mode runs on. The AYD mode and the job backend meet only
 * in the conversation handler, so chat mode runs once, not once per backend:
 * on `outbox`, the backend of Deno Deploy and KV Connect, where a crashed
 * process's lanes are found by sweeps.
 */
export const CHAT_MODE_BACKEND: TestBackend = "outbox";

/**
 * Registers `fn` for session mode on every backend (as
 * {@linkcode testEveryBackend}) and once more for chat mode on
 * {@linkcode CHAT_MODE_BACKEND}.
 */
export function testEverySetting(
  name: string,
  fn: (backend: TestBackend, mode: AydMode) => Promise<void>,
) {
  testEveryBackend(name, (backend) => fn(backend, "session"));
  Deno.test(`${name} [chat mode, ${CHAT_MODE_BACKEND}]`, () => fn(CHAT_MODE_BACKEND, "chat"));
}

/** How many times AYD was asked to open a conversation: sessions, or chats. */
export function conversationsOpened(t: TestBridge): number {
  return t.config.aydMode === "chat" ? t.ayd.chats.length : t.ayd.sessions.length;
}

/** A test's KV: the environment that points a bridge at it. */
export interface TestKv extends AsyncDisposable {
  env: Record<string, string>;
  /**
   * The KV Connect server, under `kv-connect`. Disposing the test KV fails
   * when it refused a request over a limit ({@linkcode assertNoLimitRefusals}).
   */
  server: KvConnectServer | undefined;
}

/** The job backend a setting runs. */
export const jobBackendOf = (backend: TestBackend): JobBackend =>
  backend === "kv-connect" ? "outbox" : backend;

/**
 * The KV of a test under `backend`: the environment that points the bridge
 * at it (a file in `dir`, or a KV Connect server started here), and what
 * stops it. `JOB_BACKEND` is left to the bridge's own choice over KV Connect.
 */
export async function testKv(backend: TestBackend, dir?: string): Promise<TestKv> {
  if (backend !== "kv-connect") {
    return {
      env: { JOB_BACKEND: backend, DENO_KV_PATH: dir ? `${dir}/bridge.kv` : ":memory:" },
      server: undefined,
      async [Symbol.asyncDispose]() {},
    };
  }
  const server = await startKvConnectServer({ token: KV_CONNECT_TOKEN });
  Deno.env.set("DENO_KV_ACCESS_TOKEN", KV_CONNECT_TOKEN);
  return {
    env: { DENO_KV_URL: server.url, DENO_KV_ACCESS_TOKEN: KV_CONNECT_TOKEN },
    server,
    async [Symbol.asyncDispose]() {
      await server.close();
      assertNoLimitRefusals(server.stats);
    },
  };
}

/**
 * Fails when the KV Connect server refused a request over one of denokv's
 * limits. The bridge would not fail visibly: a refused group commit is
 * retried member by member, so a group that outgrew 10 checks would pass
 * every other assertion. Failed checks (conflicts) are normal and are not
 * refusals.
 */
export function assertNoLimitRefusals(stats: KvConnectServer["stats"]): void {
  if (stats.limitRefusals === 0) return;
  throw new Error(
    `the KV Connect server refused ${stats.limitRefusals} request(s) over denokv's limits ` +
      `(refusals by reason: ${JSON.stringify(stats.refusals)})`,
  );
}

/**
 * The words of a text, for comparing what was sent with what was written:
 * parts are sent without the whitespace they were cut at.
 */
export function words(text: string): string[] {
  return text.split(/\s+/).filter((word) => word !== "");
}

/**
 * Makes `sid` a dead letter on `t`: AYD fails for good, the user gets the
 * apology, the job gives up. AYD answers normally again afterwards.
 */
export async function makeDeadLetter(t: TestBridge, sid: string, from = "whatsapp:+15551234567") {
  t.ayd.onAsk(() => ({ kind: "status", status: 500 }));
  await t.sendWhatsApp({ MessageSid: sid, Body: "later please", From: from });
  await t.twilio.waitForMessages(from, 1);
  await waitFor(async () => (await t.kv.get(["dead_letters", sid])).value !== null, "dead letter");
  t.ayd.onAsk(null);
}
