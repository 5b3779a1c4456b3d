/**
 * Wires the parts together and serves them: the same composition for
 * `main.ts` and for the end-to-end tests.
 *
 * @module
 */
import { createApp } from "./app.ts";
import { askAyd, type AydOptions, createAydSession } from "./ayd.ts";
import type { Config } from "./config.ts";
import { createWorker } from "./conversation.ts";
import { createKvQueueJobs } from "./jobs.ts";
import type { Logger } from "./log.ts";
import { createSessionStore } from "./sessions.ts";
import { createWhatsAppSender, type RetryPolicy } from "./twilio_client.ts";

/** How long shutdown waits for jobs under way. */
export const SHUTDOWN_GRACE_MS = 10_000;

/** A running bridge. */
export interface Bridge {
  /** Where it listens, e.g. `http://127.0.0.1:5000`. */
  url: string;
  /** Stops serving, closes the KV and waits for the queue listener to end. */
  close(): Promise<void>;
}

/**
 * Starts the webhook server and the queue worker on `kv`, which the bridge
 * then owns.
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
  },
): Bridge {
  const { kv, log } = deps;
  const ayd: AydOptions = {
    baseUrl: config.aydBaseUrl,
    apiKey: config.aydApiKey,
    chatId: config.aydChatId,
    fetch: deps.fetch,
  };
  const jobs = createKvQueueJobs(kv);
  const sessions = createSessionStore(kv, {
    open: (phone, signal) => createAydSession(ayd, phone, { now: Date.now(), signal }),
  });
  const sender = createWhatsAppSender({
    accountSid: config.twilioAccountSid,
    authToken: config.twilioAuthToken,
    fromNumber: config.twilioFromNumber,
    apiBaseUrl: config.twilioApiBaseUrl,
    fetch: deps.fetch,
    retry: deps.twilioRetry,
  });
  const worker = createWorker({
    kv,
    sessions,
    ask: (token, question, signal) => askAyd(ayd, token, question, signal),
    sender,
    log,
    maxSmsChars: config.maxSmsChars,
    aydTimeoutMs: config.aydTimeoutMs,
  });
  const running = new Set<Promise<void>>();
  const listening = jobs.listen((messageSid) => {
    const job = worker(messageSid).finally(() => running.delete(job));
    running.add(job);
    return job;
  });
  const app = createApp({
    kv,
    jobs,
    log,
    twilioAccountSid: config.twilioAccountSid,
    twilioAuthToken: config.twilioAuthToken,
    twilioWebhookUrl: config.twilioWebhookUrl,
  });
  const server = Deno.serve({
    hostname: config.host,
    port: config.port,
    onListen: () => {},
  }, app.fetch);
  const { hostname, port } = server.addr;
  const url = `http://${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`;
  log.info("service.started", { url, job_backend: jobs.backend });

  return {
    url,
    async close() {
      await server.shutdown();
      // Jobs under way finish before KV closes; queued ones wait in KV.
      const deadline = Date.now() + SHUTDOWN_GRACE_MS;
      while (running.size > 0 && Date.now() < deadline) {
        await settleWithin([...running], deadline - Date.now());
      }
      kv.close();
      await listening;
      log.info("service.stopped");
    },
  };
}

/** Waits for `promises` to settle, or `ms` at most. */
async function settleWithin(promises: Promise<unknown>[], ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<void>((resolve) => timer = setTimeout(resolve, ms));
  await Promise.race([Promise.allSettled(promises), timeout]);
  clearTimeout(timer);
}
