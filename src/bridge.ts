/**
 * Wires the parts together and serves them: the same composition for
 * `main.ts` and for the end-to-end tests.
 *
 * @module
 */
import { type AppDeps, createApp, createUrlHints, statusCallbackUrl } from "./webhook/mod.ts";
import {
  askAyd,
  askAydChat,
  type AydOptions,
  createAydChat,
  createAydRefusals,
  createAydSession,
  createChatStore,
  createSessionStore,
  readAydMessages,
} from "./ayd/mod.ts";
import type { Config } from "./config.ts";
import { type AnswerDeps, createConversationHandler, type Hear } from "./conversation/mod.ts";
import { DIRECTORY_KEY, type DirectoryMeta, directorySize } from "./people/mod.ts";
import { createGroupCommit, createJobs, createLaneRunner, createPresence } from "./jobs/mod.ts";
import { describeError, type Logger } from "./log.ts";
import {
  createWhatsAppSender,
  fetchTwilioMedia,
  type RetryPolicy,
  type WhatsAppSender,
} from "./whatsapp/mod.ts";
import { noTelemetry, type Telemetry } from "./telemetry/mod.ts";
import { transcribe } from "./speech/mod.ts";
import { adminRoutes } from "./console/mod.ts";
import { createStorageHealth, openKv, pruneExpired } from "./storage/mod.ts";

/** A running bridge. */
export interface Bridge {
  /** Where it listens, e.g. `http://127.0.0.1:5000`. */
  url: string;
  /** This process's id, shown by `/health` and carried by its heartbeat. */
  instance: string;
  /** Looks at every lane with work; what the cron job calls. */
  sweep(): Promise<void>;
  /** Deletes the keys whose time is up; a cron job calls it every 10 minutes. */
  prune(): Promise<void>;
  /**
   * Stops taking webhooks and new jobs, lets jobs under way finish within
   * `SHUTDOWN_GRACE_MS`, then closes the KV; the rest stays durable.
   */
  close(): Promise<void>;
}

/** What the start-up line says a first message logs, and what its absence means. */
export const FIRST_MESSAGE = "a first WhatsApp message logs webhook.received; " +
  "no line at all means Twilio calls another URL, and webhook.rejected with reason " +
  "bad_signature means TWILIO_WEBHOOK_URL is not exactly the URL set in Twilio";

/**
 * Where Twilio and a health check reach the service from outside: the
 * webhook URL to set in the Twilio Console (`TWILIO_WEBHOOK_URL` itself)
 * and `/health` beside it.
 *
 * @example
 * ```ts
 * publicUrls({ twilioWebhookUrl: "https://bridge.example.com/whatsapp" });
 * // { webhook: "https://bridge.example.com/whatsapp", health: "https://bridge.example.com/health" }
 * ```
 */
export function publicUrls(config: Pick<Config, "twilioWebhookUrl">): {
  webhook: string;
  health: string;
} {
  const health = new URL("health", config.twilioWebhookUrl.split("#", 1)[0]);
  health.search = "";
  return { webhook: config.twilioWebhookUrl, health: health.href };
}

/**
 * The start-up lines for a person at a terminal (the JSON line says the
 * same for machines): where it listens, the URL to paste into Twilio, the
 * health URL, and what a first message should log.
 *
 * @example
 * ```ts
 * if (Deno.stderr.isTerminal()) console.error(startupGuide(config, bridge.url));
 * ```
 */
export function startupGuide(
  config: Pick<Config, "twilioWebhookUrl" | "twilioFromNumber">,
  url: string,
): string {
  const { webhook, health } = publicUrls(config);
  return [
    `Listening on ${url}.`,
    `In the Twilio Console, set "When a message comes in" to ${webhook} (POST).`,
    `From outside, ${health} should answer {"status":"ok",…}.`,
    `Then send a WhatsApp message to ${config.twilioFromNumber}: it logs webhook.received. ` +
    "No line at all: Twilio calls another URL. webhook.rejected with reason bad_signature: " +
    "TWILIO_WEBHOOK_URL is not exactly the URL set in Twilio.",
  ].join("\n");
}

/**
 * Each send to Twilio (and each look-up of one) in a span of its own, inside
 * the message's trace; Deno's own span of the HTTP request nests in it.
 */
function tracedSender(telemetry: Telemetry, sender: WhatsAppSender): WhatsAppSender {
  if (!telemetry.enabled) return sender;
  return {
    send: (message) =>
      telemetry.span("twilio.send", {
        "twilio.media": (message.mediaUrls?.length ?? 0) > 0,
        "twilio.body_chars": message.body?.length ?? 0,
      }, () => sender.send(message)),
    typing: (sid) => sender.typing(sid),
    findSent: (query) =>
      telemetry.span("twilio.lookup", {}, async (span) => {
        const sid = await sender.findSent(query);
        span.set({ "twilio.found": sid !== undefined });
        return sid;
      }),
  };
}

/**
 * How a voice note becomes text, when `TRANSCRIBE_URL` is set: fetched from
 * Twilio (credentials only on Twilio's own API host), then transcribed.
 */
function hearVoiceNotes(config: Config, fetchFn?: typeof fetch): Hear | undefined {
  const transcription = config.transcription;
  if (!transcription) return undefined;
  return async (medium, signal) => {
    const audio = await fetchTwilioMedia(medium.url, {
      accountSid: config.twilioAccountSid,
      authToken: config.twilioAuthToken,
      apiBaseUrl: config.twilioApiBaseUrl,
      maxBytes: config.maxMediaBytes,
      fetch: fetchFn,
      signal,
    });
    // Twilio's media host may answer a generic type; the webhook said what it is.
    const contentType = audio.contentType.startsWith("audio/")
      ? audio.contentType
      : medium.contentType;
    const heard = await transcribe({ bytes: audio.bytes, contentType }, {
      ...transcription,
      fetch: fetchFn,
      signal,
    });
    return heard.text;
  };
}

/**
 * Without `ALLOWED_NUMBERS`, says at start-up who may ask: the directory's
 * people when it has any, else everyone (a warning).
 */
async function announceWhoMayAsk(kv: Deno.Kv, log: Logger) {
  try {
    const people = directorySize((await kv.get<DirectoryMeta>(DIRECTORY_KEY)).value);
    if (people > 0) {
      log.info("config.directory_only", {
        people,
        hint: "ALLOWED_NUMBERS is unset: only the people in the directory may ask",
      });
    } else {
      log.warn("config.everyone_allowed", {
        hint: "ALLOWED_NUMBERS is unset and the directory is empty: " +
          "anyone who knows the number can query your database",
      });
    }
  } catch (error) {
    log.warn("config.directory_unread", { reason: describeError(error) });
  }
}

/** The largest number of attempts a message's job gets. */
export const MAX_JOB_ATTEMPTS = 10;

/**
 * Starts the webhook server and the job worker on `kv`, which the bridge
 * then owns, and resumes whatever earlier runs left in KV.
 *
 * @example
 * ```ts
 * const kv = await Deno.openKv(config.kvPath);
 * const bridge = startBridge(config, { kv, log: createLogger({ level: "info" }) });
 * ```
 */
export function startBridge(
  config: Config,
  deps: {
    kv: Deno.Kv;
    log: Logger;
    fetch?: typeof fetch;
    twilioRetry?: RetryPolicy;
    /** How long one Twilio request may take (default 15 s); tests shorten it. */
    twilioTimeoutMs?: number;
    /** More routes by mount path; only the sandbox passes any. */
    routes?: AppDeps["routes"];
    /** OpenTelemetry when `OTEL_DENO=true` (see `loadTelemetry`); nothing by default. */
    telemetry?: Telemetry;
  },
): Bridge {
  const { kv, log } = deps;
  const telemetry = deps.telemetry ?? noTelemetry;
  const ayd: AydOptions = {
    baseUrl: config.aydBaseUrl,
    apiKey: config.aydApiKey,
    chatId: config.aydChatId,
    fetch: deps.fetch,
  };
  // What every part hears of failing writes: /health, the console, the queue.
  const storage = createStorageHealth();
  storage.onChange((trouble) => {
    if (trouble) return log.error("storage.failing", { reason: trouble });
    log.info("storage.recovered");
    void sweep(); // lanes that waited on storage errors go on now
  });
  // One group committer for the process: webhooks' and lanes' commits that
  // come together share one durable write.
  const commits = createGroupCommit(kv);
  const jobs = createJobs(kv, config.jobBackend, {
    openQueue: () => openKv(config.kvPath),
    health: storage,
    commits,
  });
  const statusCallback = statusCallbackUrl(config.twilioWebhookUrl, config.twilioStatusCallbackUrl);
  const refusals = createAydRefusals(log);
  const conversations: AnswerDeps["ayd"] = config.aydMode === "chat"
    ? {
      mode: "chat",
      chats: createChatStore(kv, { open: (signal) => createAydChat(ayd, signal) }),
      ask: (chat, question, signal, onText) => askAydChat(ayd, chat, question, signal, onText),
      history: (chatid, before, signal) => readAydMessages(ayd, chatid, { before, signal }),
      refusals,
    }
    : {
      mode: "session",
      sessions: createSessionStore(kv, {
        open: (phone, signal, identity) =>
          createAydSession(ayd, phone, { now: Date.now(), signal, identity }),
      }),
      ask: (token, question, signal, onText) => askAyd(ayd, token, question, signal, onText),
      refusals,
    };
  const sender = tracedSender(
    telemetry,
    createWhatsAppSender({
      accountSid: config.twilioAccountSid,
      authToken: config.twilioAuthToken,
      fromNumber: config.twilioFromNumber,
      apiBaseUrl: config.twilioApiBaseUrl,
      statusCallback,
      fetch: deps.fetch,
      retry: deps.twilioRetry,
      requestTimeoutMs: deps.twilioTimeoutMs,
      log,
    }),
  );
  // Not a secret: it lets `deno task doctor` tell this bridge from another server.
  const instance = crypto.randomUUID();
  const urlHints = createUrlHints();
  const presence = createPresence({
    kv,
    ttlMs: config.jobLeaseMs,
    log,
    health: storage,
    instance,
  });
  const runner = createLaneRunner({
    kv,
    log,
    schedule: jobs.schedule,
    concurrency: config.workerConcurrency,
    presence,
    commits,
    health: storage,
    retryBaseMs: config.jobRetryBaseMs,
    handler: createConversationHandler({
      kv,
      ayd: conversations,
      directoryGates: !config.allowedNumbers,
      sender,
      log,
      maxSmsChars: config.maxSmsChars,
      aydTimeoutMs: config.aydTimeoutMs,
      typingIndicator: config.typingIndicator,
      partMarkers: config.partMarkers,
      deniedReply: config.deniedReply,
      hear: hearVoiceNotes(config, deps.fetch),
      hearTimeoutMs: config.transcription?.timeoutMs,
      mergeWindowMs: config.mergeWindowMs,
      telemetry,
      retry: {
        budgetMs: config.jobRetryBudgetMs,
        baseMs: config.jobRetryBaseMs,
        capMs: Math.max(config.jobRetryBaseMs, 30_000),
        maxAttempts: MAX_JOB_ATTEMPTS,
      },
    }),
  });
  const listening = jobs.listen(runner.drain);
  const app = createApp({
    kv,
    jobs,
    log,
    twilioAccountSid: config.twilioAccountSid,
    twilioAuthToken: config.twilioAuthToken,
    twilioWebhookUrl: config.twilioWebhookUrl,
    statusCallbackUrl: statusCallback,
    storage,
    instance,
    urlHints,
    telemetry,
    aydMode: config.aydMode,
    aydProblem: refusals.problem,
    routes: {
      ...deps.routes,
      ...config.adminToken && {
        "/admin": adminRoutes({
          kv,
          log,
          token: config.adminToken,
          backend: jobs.backend,
          kick: (phone) => void runner.drain(phone),
          now: Date.now,
          storageTrouble: storage.trouble,
          urlHints: urlHints.current,
          aydMode: config.aydMode,
          aydProblem: refusals.problem,
          directoryGates: !config.allowedNumbers,
        }),
      },
    },
    policy: {
      allowedNumbers: config.allowedNumbers,
      perMinute: config.rateLimitPerMinute,
      perDay: config.rateLimitPerDay,
    },
  });
  const server = Deno.serve({
    hostname: config.host,
    port: config.port,
    onListen: () => {},
  }, app.fetch);
  const { hostname, port } = server.addr;
  const url = `http://${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`;
  const reachable = publicUrls(config);
  log.info("service.started", {
    url,
    job_backend: jobs.backend,
    ayd_mode: config.aydMode,
    webhook_url: reachable.webhook,
    health_url: reachable.health,
    first_message: FIRST_MESSAGE,
  });
  if (!config.allowedNumbers) void announceWhoMayAsk(kv, log);
  function sweep(): Promise<void> {
    return runner.sweep().catch((error) =>
      log.error("sweep.failed", { reason: describeError(error) })
    );
  }
  // Work that an earlier run (or a crash) left in KV starts again once this
  // process has a heartbeat; a worker found dead later frees its lanes.
  let closing = false;
  presence.beat().finally(() => {
    if (closing) return;
    sweep();
    presence.start(({ reaped }) => {
      if (reaped.length > 0) log.warn("worker.reaped", { workers: reaped.length });
      sweep();
    });
  });

  return {
    url,
    instance,
    sweep,
    async prune() {
      if (closing) return;
      try {
        const deleted = await pruneExpired(kv, Date.now());
        if (deleted > 0) log.info("expiry.pruned", { keys: deleted });
      } catch (error) {
        storage.failed(error);
        log.warn("expiry.failed", { reason: describeError(error) });
      }
    },
    async close() {
      closing = true;
      await server.shutdown();
      await runner.stop(config.shutdownGraceMs);
      await presence.stop();
      jobs.close();
      kv.close();
      await listening;
      log.info("service.stopped");
    },
  };
}
