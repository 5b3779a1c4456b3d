/**
 * The sandbox: the real bridge (same routes, jobs, KV and formatting) with a
 * demo AYD (or the configured real one), a demo transcriber for voice notes
 * (or the configured real one) and a Twilio stand-in that shows replies in
 * the `/sandbox` chat page instead of sending them and serves the page's
 * voice notes as Twilio serves media. Throwaway Twilio credentials are made
 * up for each run.
 *
 * @module
 */
import { type Bridge, startBridge } from "../bridge.ts";
import { type Config, loadConfig } from "../config.ts";
import { openKv } from "../storage/mod.ts";
import { createLogger, type Logger, type LogLevel } from "../log.ts";
import { type CaptureTwilio, startCaptureTwilio } from "./capture_twilio.ts";
import { type DemoAyd, startDemoAyd } from "./demo_ayd.ts";
import { type DemoTranscriber, startDemoTranscriber } from "./demo_transcriber.ts";
import { type ChatHub, createChatHub } from "./hub.ts";
import { createSandboxRoutes } from "./routes.ts";
import { randomSid } from "./signed_post.ts";

/** How to start the sandbox. */
export interface SandboxOptions {
  /** Default 127.0.0.1: the sandbox has no authentication, keep it local. */
  host?: string;
  /** Default 8000; 0 picks a free port. */
  port?: number;
  /**
   * Ask the real AYD configured in this environment (`ASKYOURDATABASE_API_KEY`,
   * `ASKYOURDATABASE_CHAT_ID`, optional `AYD_BASE_URL`, `AYD_TIMEOUT_MS`,
   * `AYD_MODE`) instead of the demo, which speaks session mode only.
   */
  realAydEnv?: Record<string, string | undefined>;
  /**
   * Transcribe voice notes with the real service configured in this
   * environment (`TRANSCRIBE_URL`, optional `TRANSCRIBE_API_KEY`,
   * `TRANSCRIBE_MODEL`, `TRANSCRIBE_LANGUAGE`, `TRANSCRIBE_TIMEOUT_MS`)
   * instead of the demo.
   */
  realTranscriberEnv?: Record<string, string | undefined>;
  /** Default `:memory:`: each run starts with empty sessions and queues. */
  kvPath?: string;
  /**
   * Default `warn`: the terminal shows the URL, and what goes wrong (a wrong
   * AYD setting with `realAydEnv`) in the bridge's own log lines.
   */
  logLevel?: LogLevel;
  log?: Logger;
  /** The demo AYD's delay between text deltas (ms). */
  demoPaceMs?: number;
  /** The Twilio stand-in's delay before "delivered" (ms). */
  deliveryDelayMs?: number;
  /** Opens the operator console at `/admin`, as `ADMIN_TOKEN` does in a normal start. */
  adminToken?: string;
}

/** A running sandbox. */
export interface Sandbox extends AsyncDisposable {
  /** The chat page, e.g. `http://127.0.0.1:8000/sandbox`. */
  url: string;
  bridge: Bridge;
  config: Config;
  /** The bridge's KV (owned by the bridge). */
  kv: Deno.Kv;
  hub: ChatHub;
  /** Absent with a real AYD. */
  demoAyd?: DemoAyd;
  /** Absent with a real transcriber. */
  demoTranscriber?: DemoTranscriber;
  /** The Twilio stand-in (`config.twilioApiBaseUrl`), with the voice notes it keeps. */
  twilio: CaptureTwilio;
  close(): Promise<void>;
}

/**
 * The sandbox could not start because the environment lacks something
 * (only with `realAydEnv` or `realTranscriberEnv`); `problems` are
 * `loadConfig`'s lines.
 *
 * @example
 * ```ts
 * try {
 *   await startSandbox({ realAydEnv: Deno.env.toObject() });
 * } catch (error) {
 *   if (error instanceof SandboxConfigError) console.error(formatConfigProblems(error.problems));
 * }
 * ```
 */
export class SandboxConfigError extends Error {
  override name = "SandboxConfigError";
  constructor(readonly problems: string[]) {
    super(problems.join("\n"));
  }
}

const FROM_NUMBER = "+14155238886";
const AYD_VARIABLES = [
  "ASKYOURDATABASE_API_KEY",
  "ASKYOURDATABASE_CHAT_ID",
  "AYD_BASE_URL",
  "AYD_TIMEOUT_MS",
  "AYD_MODE",
];
const TRANSCRIBE_VARIABLES = [
  "TRANSCRIBE_URL",
  "TRANSCRIBE_API_KEY",
  "TRANSCRIBE_MODEL",
  "TRANSCRIBE_LANGUAGE",
  "TRANSCRIBE_TIMEOUT_MS",
];

/**
 * Starts the stand-ins and the bridge, which serves `/sandbox` too.
 *
 * @example
 * ```ts
 * const sandbox = await startSandbox({ port: 8000 });
 * console.log(`Sandbox ready: ${sandbox.url}`);
 * ```
 */
export async function startSandbox(options: SandboxOptions = {}): Promise<Sandbox> {
  const host = options.host ?? "127.0.0.1";
  const reserved = options.port === 0 ? reservePort(host) : undefined;
  const port = reserved?.port ?? options.port ?? 8000;
  const reachableHost = host === "0.0.0.0" ? "127.0.0.1" : host.includes(":") ? `[${host}]` : host;
  const publicUrl = `http://${reachableHost}:${port}`;
  const hub = createChatHub();
  const accountSid = "AC" + randomSid("").slice(0, 32);
  const authToken = randomSid("");
  const demoKey = randomSid("ayd-demo-");
  const sttKey = randomSid("stt-demo-");
  const realStt = options.realTranscriberEnv;
  const env: Record<string, string | undefined> = {
    TWILIO_ACCOUNT_SID: accountSid,
    TWILIO_AUTH_TOKEN: authToken,
    TWILIO_FROM_NUMBER: FROM_NUMBER,
    TWILIO_WEBHOOK_URL: `${publicUrl}/whatsapp`,
    HOST: host,
    PORT: String(port),
    DENO_KV_PATH: options.kvPath ?? ":memory:",
    LOG_LEVEL: options.logLevel ?? "warn",
    ASKYOURDATABASE_API_KEY: demoKey,
    ASKYOURDATABASE_CHAT_ID: "sandbox-demo",
    ADMIN_TOKEN: options.adminToken,
    ...(options.realAydEnv
      ? Object.fromEntries(AYD_VARIABLES.map((name) => [name, options.realAydEnv![name]]))
      : {}),
    ...(realStt
      ? Object.fromEntries(TRANSCRIBE_VARIABLES.map((name) => [name, realStt[name]]))
      : {}),
  };
  const loaded = loadConfig({ ...env, TWILIO_API_BASE_URL: "http://127.0.0.1" });
  if (!loaded.ok) {
    reserved?.release();
    throw new SandboxConfigError(loaded.problems);
  }
  if (realStt && !loaded.config.transcription) {
    reserved?.release();
    throw new SandboxConfigError([
      "TRANSCRIBE_URL is missing: set it to the base URL of an OpenAI-compatible transcription " +
      "service, e.g. https://api.openai.com (with TRANSCRIBE_API_KEY).",
    ]);
  }

  const twilio = startCaptureTwilio({
    accountSid,
    authToken,
    hub,
    deliveryDelayMs: options.deliveryDelayMs,
  });
  const demoAyd = options.realAydEnv ? undefined : startDemoAyd({
    apiKey: demoKey,
    chatId: "sandbox-demo",
    publicUrl: () => publicUrl,
    paceMs: options.demoPaceMs,
  });
  const demoTranscriber = realStt ? undefined : startDemoTranscriber({ apiKey: sttKey });
  const config: Config = {
    ...loaded.config,
    twilioApiBaseUrl: twilio.url,
    aydBaseUrl: demoAyd?.url ?? loaded.config.aydBaseUrl,
    transcription: demoTranscriber
      ? {
        url: demoTranscriber.url,
        apiKey: sttKey,
        model: "whisper-1",
        language: undefined,
        timeoutMs: 10_000,
      }
      : loaded.config.transcription,
  };
  const stopStandIns = () =>
    Promise.all([twilio.close(), demoAyd?.close(), demoTranscriber?.close()]);
  let bridge: Bridge | undefined;
  const routes = createSandboxRoutes({
    hub,
    accountSid,
    authToken,
    fromNumber: FROM_NUMBER,
    webhookUrl: config.twilioWebhookUrl,
    bridgeUrl: () => bridge?.url.replace("://0.0.0.0:", "://127.0.0.1:") ?? publicUrl,
    demo: demoAyd !== undefined,
    media: twilio.media,
    twilioUrl: twilio.url,
  });
  let kv: Deno.Kv | undefined;
  try {
    kv = await openKv(config.kvPath);
    const log = withoutAllowlistWarning(options.log ?? createLogger({ level: config.logLevel }));
    // Nothing runs between the release and the bridge's listen (startBridge does not wait).
    reserved?.release();
    bridge = startBridge(config, { kv, log, routes: { "/sandbox": routes } });
  } catch (error) {
    reserved?.release();
    kv?.close();
    await stopStandIns();
    throw error;
  }
  const started = bridge;
  const close = async () => {
    hub.close(); // ends the chat streams, which would hold the server open
    await started.close();
    await stopStandIns();
  };
  return {
    url: `${publicUrl}/sandbox`,
    bridge: started,
    config,
    kv: kv!,
    hub,
    demoAyd,
    demoTranscriber,
    twilio,
    close,
    [Symbol.asyncDispose]: close,
  };
}

/**
 * The bridge warns at start when anyone may ask; in the sandbox only its
 * own page can post signed messages, so the warning would be untrue.
 */
function withoutAllowlistWarning(log: Logger): Logger {
  return {
    ...log,
    warn: (event, fields) =>
      event === "config.everyone_allowed" ? undefined : log.warn(event, fields),
  };
}

/**
 * A free port, kept bound until `release`: the bridge must know its port
 * before it starts (signatures cover the URL), and the stand-ins started in
 * the meantime listen on port 0, which could otherwise hand them this one.
 */
function reservePort(hostname: string): { port: number; release(): void } {
  const listener = Deno.listen({ hostname, port: 0 });
  let bound = true;
  return {
    port: (listener.addr as Deno.NetAddr).port,
    release() {
      if (bound) listener.close();
      bound = false;
    },
  };
}
