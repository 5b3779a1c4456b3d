/**
 * The sandbox's HTTP routes, mounted at `/sandbox` only by the sandbox:
 * the chat page, sending as a test number (a signed webhook to the bridge's
 * real `/whatsapp`), the live chat stream, and the demo chart.
 *
 * @module
 */
import { Hono } from "hono";
import { streamSSE } from "hono/streaming";
import { revenueChartSvg } from "./demo_answers.ts";
import type { ChatHub, Numbered } from "./hub.ts";
import { sandboxPage } from "./page.ts";
import { postSigned, randomSid } from "./signed_post.ts";

/** What the routes need; all of it is passed in. */
export interface SandboxRouteDeps {
  hub: ChatHub;
  accountSid: string;
  authToken: string;
  /** The bridge's WhatsApp number, bare E.164. */
  fromNumber: string;
  /** `TWILIO_WEBHOOK_URL`: what the signature covers. */
  webhookUrl: string;
  /** Where the bridge listens, known once it started. */
  bridgeUrl: () => string;
  /** Offer the demo AYD's topics in the page. */
  demo: boolean;
}

const E164 = /^\+[1-9]\d{6,14}$/;
/** WhatsApp's own limit on a message. */
const MAX_TEXT_CHARS = 4096;

/**
 * Creates the routes, to be mounted at `/sandbox`.
 *
 * @example
 * ```ts
 * startBridge(config, { kv, log, routes: { "/sandbox": createSandboxRoutes(deps) } });
 * ```
 */
export function createSandboxRoutes(deps: SandboxRouteDeps): Hono {
  const app = new Hono();

  app.get("/", (c) => c.html(sandboxPage({ demo: deps.demo })));

  app.post("/send", async (c) => {
    // JSON only: a cross-site form cannot post it without a CORS preflight.
    if (!c.req.header("content-type")?.startsWith("application/json")) {
      return c.text("Unsupported Media Type: expected application/json", 415);
    }
    const { phone, text } = await c.req.json().catch(() => ({}));
    if (typeof phone !== "string" || !E164.test(phone)) {
      return c.text("Bad Request: phone must be E.164, e.g. +15550100001", 400);
    }
    if (typeof text !== "string" || text.trim() === "" || text.length > MAX_TEXT_CHARS) {
      return c.text(`Bad Request: text must have 1 to ${MAX_TEXT_CHARS} characters`, 400);
    }
    const messageSid = randomSid("SM");
    deps.hub.publish(phone, {
      kind: "inbound",
      id: messageSid,
      text,
      at: Date.now(),
      status: "sending",
    });
    const webhookStatus = await postSigned({
      target: `${deps.bridgeUrl()}/whatsapp`,
      signedUrl: deps.webhookUrl,
      authToken: deps.authToken,
      params: inboundForm(deps, messageSid, phone, text),
    }).then(async (response) => {
      await response.body?.cancel();
      return response.status;
    }, () => 0);
    const ok = webhookStatus === 200;
    const status = ok ? "delivered" : `failed (webhook answered ${webhookStatus || "nothing"})`;
    deps.hub.publish(phone, { kind: "status", id: messageSid, status, at: Date.now() });
    return c.json({ messageSid, webhookStatus }, ok ? 200 : 502);
  });

  app.get("/events", (c) => {
    const phone = c.req.query("phone") ?? "";
    if (!E164.test(phone)) return c.text("Bad Request: phone must be E.164", 400);
    // A reconnecting EventSource sends the last id it saw; replay from there.
    const after = Number(c.req.header("last-event-id")) || 0;
    return streamSSE(c, async (stream) => {
      const queue: Numbered[] = [];
      let open = true;
      let wake = () => {};
      const unsubscribe = deps.hub.subscribe(phone, after, (event) => {
        if (event) queue.push(event);
        else open = false;
        wake();
      });
      stream.onAbort(() => {
        open = false;
        wake();
      });
      try {
        while (open) {
          const event = queue.shift();
          if (event) {
            await stream.writeSSE({ id: String(event.seq), data: JSON.stringify(event) });
          } else {
            await new Promise<void>((resolve) => wake = resolve);
          }
        }
      } finally {
        unsubscribe();
      }
    });
  });

  app.get(
    "/charts/revenue.svg",
    (c) => c.body(revenueChartSvg(), 200, { "content-type": "image/svg+xml; charset=utf-8" }),
  );

  return app;
}

/** The form Twilio posts for an inbound WhatsApp text. */
function inboundForm(
  deps: SandboxRouteDeps,
  messageSid: string,
  phone: string,
  text: string,
): Record<string, string> {
  return {
    AccountSid: deps.accountSid,
    ApiVersion: "2010-04-01",
    Body: text,
    From: `whatsapp:${phone}`,
    MessageSid: messageSid,
    MessageType: "text",
    NumMedia: "0",
    NumSegments: "1",
    ProfileName: "Sandbox tester",
    SmsMessageSid: messageSid,
    SmsSid: messageSid,
    SmsStatus: "received",
    To: `whatsapp:${deps.fromNumber}`,
    WaId: phone.slice(1),
  };
}
