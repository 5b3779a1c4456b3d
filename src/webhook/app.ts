/**
 * The HTTP surface: Twilio's webhooks, the health check, and whatever other
 * routes the composition mounts (the admin API with `ADMIN_TOKEN`, the
 * sandbox's page).
 *
 * @module
 */
import { type Context, Hono, type MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { every } from "hono/combine";
import { methodNotAllowed } from "hono/method-not-allowed";
import { requestId } from "hono/request-id";
import { routePath } from "hono/route";
import { secureHeaders } from "hono/secure-headers";
import {
  count as countMetric,
  countJobs,
  type InboundMessage,
  type Jobs,
  numberKey,
  type NumberState,
} from "../jobs/mod.ts";
import { DIRECTORY_KEY, type DirectoryMeta, directorySize, personKey } from "../people/mod.ts";
import { describeError, type Logger, maskPhone, withFields } from "../log.ts";
import { storageErrorClass, type StorageHealth, withinMs } from "../storage/mod.ts";
import { noTelemetry, type Telemetry } from "../telemetry/mod.ts";
import { OUTSIDE_WINDOW, recordDelivery } from "./delivery.ts";
import { admit, type Policy } from "./policy.ts";
import {
  EMPTY_TWIML,
  type FormParams,
  isValidTwilioSignature,
  parseForm,
  replyTwiml,
  toInboundMessage,
} from "./twilio_request.ts";
import { createUrlHints, type HintedRoute, type UrlHint, type UrlHints } from "./url_hints.ts";

/** What a person hears when their message cannot be stored (KV cannot be written). */
export const STORE_FAILED_REPLY =
  "Sorry, I can't take questions right now. Please try again in a few minutes.";

/** A number hears {@linkcode STORE_FAILED_REPLY} at most this often (counted in memory). */
export const STORE_FAILED_REPLY_EVERY_MS = 10 * 60 * 1000;

/** How long the webhook waits for KV before giving up on storing a message; Twilio waits 15 s. */
export const STORE_DEADLINE_MS = 10_000;

/** How long `/health` reuses its counts of pending jobs and dead letters. */
export const HEALTH_COUNTS_MS = 5_000;

/**
 * How long `/health` waits for KV to count; a count that takes longer is
 * left to finish in the background, and the answer carries the last counts
 * (`countsStale`) or none. Monitors and load balancers give up after a few
 * seconds, and a KV Connect server that does not answer is waited for
 * without end by Deno's client.
 */
export const HEALTH_READ_MS = 1_000;

/** The largest webhook body accepted; Twilio's are a few KiB at most. */
export const MAX_WEBHOOK_BYTES = 64 * 1024;

/** What the routes need; all of it is passed in. */
export interface AppDeps {
  kv: Deno.Kv;
  jobs: Jobs;
  log: Logger;
  twilioAccountSid: string;
  twilioAuthToken: string;
  twilioWebhookUrl: string;
  /** The URL Twilio posts delivery statuses to (and signs). */
  statusCallbackUrl: string;
  policy: Policy;
  /** Hears of KV writes that fail; `/health` answers 503 while they do. */
  storage?: StorageHealth;
  /** How AYD is reached, shown by `/health`. */
  aydMode?: "session" | "chat";
  /** Why AYD refuses the bridge's credentials, if it does; `/health` answers 503 while it does. */
  aydProblem?: () => string | undefined;
  /** More routes by mount path: `/admin` with `ADMIN_TOKEN`, the sandbox's `/sandbox`. */
  routes?: Record<string, Hono>;
  /**
   * A random id of this process, not a secret: `/health` shows it and the
   * process's heartbeat in KV carries it, so `deno task doctor` can tell
   * this bridge from another server behind the same host.
   */
  instance?: string;
  /** Spans named by route, the trace carried with each message, webhook counts. */
  telemetry?: Telemetry;
  /** Where signature mismatches are explained; one of its own by default. */
  urlHints?: UrlHints;
  now?: () => number;
}

type Env = { Variables: { log: Logger; form: FormParams } };

/**
 * Creates the Hono app. `POST /whatsapp` answers as soon as the message is
 * durable in KV; it never waits on AYD or Twilio.
 *
 * @example
 * ```ts
 * Deno.serve(createApp(deps).fetch);
 * ```
 */
export function createApp(deps: AppDeps): Hono<Env> {
  const now = deps.now ?? Date.now;
  const hints = deps.urlHints ?? createUrlHints({ now });
  const telemetry = deps.telemetry ?? noTelemetry;
  const app = new Hono<Env>();
  if (telemetry.enabled) app.use(routeSpans(telemetry));
  app.use(secureHeaders());
  app.use(requestId());
  app.use(async (c, next) => {
    c.set("log", withFields(deps.log, { request_id: c.get("requestId") }));
    await next();
  });
  app.use(methodNotAllowed({
    app,
    onMethodNotAllowed: (c, methods) =>
      c.text("Method Not Allowed", 405, { Allow: methods.join(", ") }),
  }));

  app.post("/whatsapp", twilioForm(deps, hints, "webhook"), async (c) => {
    const log = c.get("log");
    const message = toInboundMessage(c.get("form"), {
      accountSid: deps.twilioAccountSid,
      now: now(),
    });
    if (!("messageSid" in message)) {
      telemetry.count("bridge.messages", { outcome: "rejected", reason: message.reason });
      log[message.status === 200 ? "info" : "warn"]("webhook.rejected", { reason: message.reason });
      return message.status === 200 ? twiml(c) : c.text(
        `${message.status === 400 ? "Bad Request" : "Forbidden"}: ${message.reason}`,
        message.status,
      );
    }
    const fields = { message_sid: message.messageSid, from: maskPhone(message.phone) };
    log.info("webhook.received", fields);
    let submitted: Awaited<ReturnType<typeof submit>>;
    try {
      const trace = telemetry.carrier();
      submitted = await withinMs(
        submit(deps, trace ? { ...message, trace } : message),
        STORE_DEADLINE_MS,
        "KV did not store the message",
      );
    } catch (error) {
      telemetry.count("bridge.messages", { outcome: "store_failed" });
      // Twilio does not retry a 5xx: answer 200 and tell the person instead.
      deps.storage?.failed(error);
      const apologize = apologies.due(message.phone, now());
      log.warn("webhook.store_failed", {
        message_sid: message.messageSid,
        reason: storageErrorClass(error),
        apologized: apologize,
      });
      return twiml(c, apologize ? STORE_FAILED_REPLY : undefined);
    }
    const { outcome, refusal } = submitted;
    telemetry.count("bridge.messages", {
      outcome: outcome === "duplicate" ? "duplicate" : refusal?.kind ?? "accepted",
    });
    if (outcome === "duplicate") log.info("webhook.duplicate", fields);
    else if (refusal) log.info(`webhook.${refusal.kind}`, fields);
    else log.info("webhook.enqueued", fields);
    return twiml(c);
  });

  app.post("/twilio/status", twilioForm(deps, hints, "status"), async (c) => {
    const log = c.get("log");
    const form = c.get("form");
    const field = (name: string) => typeof form[name] === "string" ? form[name] as string : "";
    if (field("AccountSid") !== deps.twilioAccountSid) {
      log.warn("status.rejected", { reason: "wrong_account" });
      return c.text("Forbidden: wrong_account", 403);
    }
    const messageSid = field("MessageSid");
    const status = field("MessageStatus").toLowerCase();
    if (!messageSid || !status) {
      return c.text("Bad Request: missing MessageSid or MessageStatus", 400);
    }
    const errorCode = Number.parseInt(field("ErrorCode"), 10) || undefined;
    const applied = await recordDelivery(deps.kv, { messageSid, status, errorCode }, now());
    const fields = { message_sid: messageSid, status, error_code: errorCode };
    if (!applied) log.debug("status.ignored", fields);
    else if (status === "failed" || status === "undelivered") {
      log.warn("delivery.failed", {
        ...fields,
        to: maskPhone(field("To")),
        outside_window: errorCode === OUTSIDE_WINDOW || undefined,
      });
    } else log.debug("status.recorded", fields);
    return c.body(null, 204);
  });

  // A monitor polling every few seconds must not make counting the busiest
  // reader, and a KV that does not answer must not hold the answer.
  const jobCounts = keptFresh(HEALTH_COUNTS_MS, () => countJobs(deps.kv), now);
  const apologies = oncePer(STORE_FAILED_REPLY_EVERY_MS);
  app.get("/health", async (c) => {
    const about = { instance: deps.instance, ...hintFields(hints.current()) };
    const trouble = deps.storage?.trouble();
    if (trouble) {
      return c.json(
        { status: "degraded", reason: trouble, jobBackend: deps.jobs.backend, ...about },
        503,
      );
    }
    const refused = deps.aydProblem?.();
    if (refused) {
      return c.json({
        status: "degraded",
        reason: "ayd_refused",
        hint: refused,
        jobBackend: deps.jobs.backend,
        aydMode: deps.aydMode,
      }, 503);
    }
    try {
      const counts = await jobCounts(HEALTH_READ_MS);
      return c.json({
        status: "ok",
        jobBackend: deps.jobs.backend,
        aydMode: deps.aydMode,
        ...counts.value,
        ...counts.stale && { countsStale: true },
        ...about,
      });
    } catch (error) {
      c.get("log").error("health.failed", { reason: describeError(error) });
      return c.json({ status: "unavailable", ...about }, 503);
    }
  });

  for (const [path, routes] of Object.entries(deps.routes ?? {})) app.route(path, routes);

  return withFallbacks(app, deps.log);
}

/**
 * Names each request's span by the route that served it (`POST /whatsapp`),
 * as OpenTelemetry's HTTP conventions ask; an unmatched path keeps the
 * method alone, so a scan of random paths cannot flood span names.
 */
function routeSpans(telemetry: Telemetry): MiddlewareHandler<Env> {
  return async (c, next) => {
    await next();
    const route = routePath(c, -1);
    if (c.res.status !== 404 && route && route !== "*" && route !== "/*") {
      telemetry.route(c.req.method, route);
    }
  };
}

/** Plain-text 404s, and 500s that are logged without details leaking out. */
function withFallbacks(app: Hono<Env>, log: Logger): Hono<Env> {
  app.notFound((c) => c.text("Not Found", 404));
  app.onError((error, c) => {
    // Set by the first middleware; a failure before it has the plain logger.
    (c.get("log") ?? log).error("request.failed", {
      path: c.req.path,
      reason: describeError(error),
    });
    return c.text("Internal Server Error", 500);
  });
  return app;
}

/** `/health`'s fields for the hints held: `webhookUrlHint`, `statusCallbackUrlHint`. */
function hintFields(hints: UrlHint[]): Record<string, string> {
  const names: Record<HintedRoute, string> = {
    webhook: "webhookUrlHint",
    status: "statusCallbackUrlHint",
  };
  return Object.fromEntries(hints.map((hint) => [names[hint.route], hint.signedFor]));
}

/**
 * The checks every Twilio callback passes: size, form encoding, and the
 * signature over the route's URL and every parameter. A failed signature is
 * explained when Twilio signed a URL a proxy can make of the configured one.
 */
function twilioForm(deps: AppDeps, hints: UrlHints, route: HintedRoute): MiddlewareHandler<Env> {
  const url = route === "webhook" ? deps.twilioWebhookUrl : deps.statusCallbackUrl;
  const telemetry = deps.telemetry ?? noTelemetry;
  const rejected = (reason: string) => {
    if (route === "webhook") telemetry.count("bridge.messages", { outcome: "rejected", reason });
  };
  const verify: MiddlewareHandler<Env> = async (c, next) => {
    const log = c.get("log");
    const type = c.req.header("content-type")?.split(";", 1)[0].trim().toLowerCase();
    if (type !== "application/x-www-form-urlencoded") {
      log.warn("webhook.rejected", { reason: "content_type" });
      rejected("content_type");
      return c.text("Unsupported Media Type: expected application/x-www-form-urlencoded", 415);
    }
    const params = parseForm(await c.req.text());
    const signature = c.req.header("x-twilio-signature");
    const signed = isValidTwilioSignature({
      authToken: deps.twilioAuthToken,
      url,
      signature,
      params,
    });
    if (!signed) {
      log.warn("webhook.rejected", { reason: "bad_signature" });
      rejected("bad_signature");
      const found = signature && hints.failed(route, {
        url: c.req.url,
        headers: c.req.raw.headers,
        configured: url,
        authToken: deps.twilioAuthToken,
        signature,
        params,
      });
      if (found && found.announce) {
        log.warn("webhook.url_mismatch", {
          route,
          variable: found.hint.variable,
          configured: found.hint.configured,
          signed_for: found.hint.signedFor,
          fix: `set ${found.hint.variable}=${found.hint.signedFor}`,
        });
      }
      return c.text("Forbidden: invalid Twilio signature", 403);
    }
    hints.passed(route);
    c.set("form", params);
    await next();
  };
  const limit = bodyLimit({
    maxSize: MAX_WEBHOOK_BYTES,
    onError: (c) => {
      (c.get("log") as Logger).warn("webhook.rejected", { reason: "too_large" });
      rejected("too_large");
      return c.text("Payload Too Large", 413);
    },
  });
  return every(limit, verify);
}

/**
 * Admits and submits a message; a refused one keeps no text and no media.
 * The number's state, its person and the directory's size are one read.
 * Losing a race on the number's state (another webhook for the same number
 * committed first) means reading it and deciding again: each lost race is
 * another's win, so this ends.
 */
async function submit(deps: AppDeps, message: InboundMessage) {
  while (true) {
    const [number, person, directory] = await deps.kv.getMany<
      [NumberState, unknown, DirectoryMeta]
    >(
      [numberKey(message.phone), personKey(message.phone), DIRECTORY_KEY],
    );
    const { refusal, counts } = admit(
      number.value?.rate,
      message.phone,
      message.receivedAt,
      deps.policy,
      { listed: person.versionstamp !== null, size: directorySize(directory.value) },
    );
    // A refused message keeps neither its text nor where its media are.
    const { media: _media, ...withoutMedia } = message;
    const accepted = refusal ? { ...withoutMedia, body: "", refusal } : message;
    const outcome = await deps.jobs.submit(accepted, {
      number,
      rate: counts,
      extra: (op) => {
        countMetric(op, "received", message.receivedAt);
        return refusal ? countMetric(op, refusal.kind, message.receivedAt) : op;
      },
    });
    if (outcome !== "conflict") return { outcome, refusal };
  }
}

/**
 * `load`'s result, reused for `ms` (a failure is not kept), and never waited
 * for longer than a caller's `waitMs`: a load still pending then is left to
 * finish (one at a time) and the caller gets the last value, marked stale,
 * or none. A load that fails rejects the callers waiting for it.
 */
function keptFresh<T extends object>(
  ms: number,
  load: () => Promise<T>,
  now: () => number,
): (waitMs: number) => Promise<{ value?: T; stale: boolean }> {
  let kept: { value: T; at: number } | undefined;
  let loading: Promise<T> | undefined;
  const refresh = () =>
    loading ??= load().then(
      (value) => (kept = { value, at: now() }, value),
    ).finally(() => loading = undefined);
  return async (waitMs) => {
    if (kept && now() - kept.at < ms) return { value: kept.value, stale: false };
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<undefined>((resolve) =>
      timer = setTimeout(() => resolve(undefined), waitMs)
    );
    try {
      const value = await Promise.race([refresh(), late]);
      return value === undefined ? { value: kept?.value, stale: true } : { value, stale: false };
    } finally {
      clearTimeout(timer);
    }
  };
}

/** Empty TwiML, or TwiML that replies `message` through Twilio itself (no KV or REST call). */
function twiml(c: Context<Env>, message?: string) {
  const body = message === undefined ? EMPTY_TWIML : replyTwiml(message);
  return c.body(body, 200, { "content-type": "text/xml; charset=utf-8" });
}

/** Remembers, in memory, when each number was last told something; at most once per `ms`. */
function oncePer(ms: number) {
  const last = new Map<string, number>();
  return {
    due(phone: string, now: number): boolean {
      const at = last.get(phone);
      if (at !== undefined && now - at < ms) return false;
      if (last.size >= 10_000) {
        for (const [key, value] of last) if (now - value >= ms) last.delete(key);
      }
      last.set(phone, now);
      return true;
    },
  };
}
