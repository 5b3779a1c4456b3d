/**
 * The HTTP surface: the Twilio webhook and the health check.
 *
 * @module
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { methodNotAllowed } from "hono/method-not-allowed";
import type { Jobs } from "./jobs.ts";
import { describeError, type Logger, maskPhone } from "./log.ts";
import { admit, type Policy } from "./policy.ts";
import {
  EMPTY_TWIML,
  type InboundMessage,
  isValidTwilioSignature,
  parseForm,
  toInboundMessage,
} from "./twilio_webhook.ts";

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
  policy: Policy;
  now?: () => number;
}

/**
 * Creates the Hono app. `POST /whatsapp` answers as soon as the message is
 * durable in KV; it never waits on AYD or Twilio.
 *
 * @example
 * ```ts
 * Deno.serve(createApp({ kv, jobs, log, twilioAccountSid, twilioAuthToken, twilioWebhookUrl }).fetch);
 * ```
 */
export function createApp(deps: AppDeps): Hono {
  const now = deps.now ?? Date.now;
  const app = new Hono();
  app.use(methodNotAllowed({
    app,
    onMethodNotAllowed: (c, methods) =>
      c.text("Method Not Allowed", 405, { Allow: methods.join(", ") }),
  }));

  app.post(
    "/whatsapp",
    bodyLimit({
      maxSize: MAX_WEBHOOK_BYTES,
      onError: (c) => {
        deps.log.warn("webhook.rejected", { reason: "too_large" });
        return c.text("Payload Too Large", 413);
      },
    }),
    async (c) => {
      const type = c.req.header("content-type")?.split(";", 1)[0].trim().toLowerCase();
      if (type !== "application/x-www-form-urlencoded") {
        deps.log.warn("webhook.rejected", { reason: "content_type" });
        return c.text("Unsupported Media Type: expected application/x-www-form-urlencoded", 415);
      }
      const params = parseForm(await c.req.text());
      const signed = isValidTwilioSignature({
        authToken: deps.twilioAuthToken,
        url: deps.twilioWebhookUrl,
        signature: c.req.header("x-twilio-signature"),
        params,
      });
      if (!signed) {
        deps.log.warn("webhook.rejected", { reason: "bad_signature" });
        return c.text("Forbidden: invalid Twilio signature", 403);
      }
      const message = toInboundMessage(params, {
        accountSid: deps.twilioAccountSid,
        now: now(),
      });
      if (!("messageSid" in message)) {
        const level = message.status === 200 ? "info" : "warn";
        deps.log[level]("webhook.rejected", { reason: message.reason });
        return message.status === 200 ? twiml(c.body.bind(c)) : c.text(
          `${message.status === 400 ? "Bad Request" : "Forbidden"}: ${message.reason}`,
          message.status,
        );
      }
      const fields = { message_sid: message.messageSid, from: maskPhone(message.phone) };
      deps.log.info("webhook.received", fields);
      const { outcome, refusal } = await submit(deps, message);
      if (outcome === "duplicate") deps.log.info("webhook.duplicate", fields);
      else if (refusal) deps.log.info(`webhook.${refusal.kind}`, fields);
      else deps.log.info("webhook.enqueued", fields);
      return twiml(c.body.bind(c));
    },
  );

  app.get("/health", async (c) => {
    try {
      const [pendingJobs, deadLetters] = await Promise.all([
        countUpTo(deps.kv, ["queue"]),
        countUpTo(deps.kv, ["dead_letters"]),
      ]);
      return c.json({ status: "ok", jobBackend: deps.jobs.backend, pendingJobs, deadLetters });
    } catch (error) {
      deps.log.error("health.failed", { reason: describeError(error) });
      return c.json({ status: "unavailable" }, 503);
    }
  });

  app.notFound((c) => c.text("Not Found", 404));
  app.onError((error, c) => {
    deps.log.error("request.failed", { path: c.req.path, reason: describeError(error) });
    return c.text("Internal Server Error", 500);
  });
  return app;
}

/**
 * Admits and submits a message; a refused one keeps no text. Losing a race
 * on the rate counters means deciding again with the new counts.
 */
async function submit(deps: AppDeps, message: InboundMessage) {
  for (let attempt = 1;; attempt++) {
    const { refusal, count } = await admit(deps.kv, message.phone, message.receivedAt, deps.policy);
    const accepted = refusal ? { ...message, body: "", refusal } : message;
    // After many lost races, accept uncounted rather than fail the webhook.
    const outcome = await deps.jobs.submit(accepted, attempt < 10 ? count : undefined);
    if (outcome !== "conflict") return { outcome, refusal };
  }
}

/** Counts keys under `prefix`, stopping at 10,000 to keep the check cheap. */
async function countUpTo(kv: Deno.Kv, prefix: Deno.KvKey): Promise<number> {
  let count = 0;
  for await (const _ of kv.list({ prefix }, { limit: 10_000 })) count++;
  return count;
}

function twiml(body: (data: string, status: 200, headers: Record<string, string>) => Response) {
  return body(EMPTY_TWIML, 200, { "content-type": "text/xml; charset=utf-8" });
}
