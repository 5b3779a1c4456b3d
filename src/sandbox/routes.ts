/**
 * The sandbox's HTTP routes, mounted at `/sandbox` only by the sandbox:
 * the chat page, sending as a test number (a signed webhook to the bridge's
 * real `/whatsapp`), a voice note (kept as the Twilio stand-in's media and
 * announced in the webhook as Twilio announces one), the live chat stream,
 * and the demo chart.
 *
 * @module
 */
import { type Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { streamSSE } from "hono/streaming";
import type { CaptureMedia } from "./capture_media.ts";
import { revenueChartSvg } from "./demo_answers.ts";
import type { ChatEvent, ChatHub, Numbered, VoiceNote } from "./hub.ts";
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
  /** The Twilio stand-in's media, where voice notes are kept. */
  media: CaptureMedia;
  /** The Twilio stand-in's base URL (`TWILIO_API_BASE_URL`): media URLs point there. */
  twilioUrl: string;
}

const E164 = /^\+[1-9]\d{6,14}$/;
/** WhatsApp's own limit on a message. */
const MAX_TEXT_CHARS = 4096;
/** Twilio's cap on a WhatsApp medium. */
const MAX_VOICE_BYTES = 16 * 1024 * 1024;
const MEDIUM_ID = /^ME[0-9a-f]{32}$/;

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
    return deliver(
      c,
      deps,
      { phone, messageSid, text },
      inboundForm(deps, messageSid, phone, text),
    );
  });

  // The recording (or picked file) itself is the body: an audio/* type is
  // not one a cross-site form can send, so no preflight-free post gets here.
  app.post(
    "/voice",
    bodyLimit({
      maxSize: MAX_VOICE_BYTES,
      onError: (c) =>
        c.text("Payload Too Large: a voice note is at most 16 MB (Twilio's cap)", 413),
    }),
    async (c) => {
      const type = (c.req.header("content-type") ?? "").split(";")[0].trim().toLowerCase();
      if (!/^audio\/[\w.+-]+$/.test(type)) {
        return c.text("Unsupported Media Type: expected an audio/* body", 415);
      }
      const phone = c.req.query("phone") ?? "";
      if (!E164.test(phone)) return c.text("Bad Request: phone must be E.164", 400);
      const bytes = new Uint8Array(await c.req.arrayBuffer());
      if (bytes.length === 0) return c.text("Bad Request: the voice note is empty", 400);
      const duration = Number(c.req.query("durationMs"));
      const durationMs = Number.isInteger(duration) && duration > 0 ? duration : undefined;
      const messageSid = randomSid("MM");
      const { path, id } = deps.media.add(messageSid, { bytes, contentType: type });
      const voice = { src: `/sandbox/media/${id}`, contentType: type, durationMs };
      return deliver(c, deps, { phone, messageSid, text: "", voice }, {
        ...inboundForm(deps, messageSid, phone, ""),
        MessageType: "audio",
        NumMedia: "1",
        MediaContentType0: type,
        MediaUrl0: deps.twilioUrl + path,
      });
    },
  );

  app.get("/media/:id", (c) => {
    const id = c.req.param("id");
    const medium = MEDIUM_ID.test(id) ? deps.media.get(id) : undefined;
    if (!medium) return c.text("Not Found", 404);
    return c.body(medium.bytes, 200, { "content-type": medium.contentType });
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

/**
 * Shows an inbound message in the chat, posts its signed webhook to the
 * bridge's real `/whatsapp`, and shows how that went.
 */
async function deliver(
  c: Context,
  deps: SandboxRouteDeps,
  message: { phone: string; messageSid: string; text: string; voice?: VoiceNote },
  params: Record<string, string>,
): Promise<Response> {
  const { phone, messageSid } = message;
  const inbound: ChatEvent = {
    kind: "inbound",
    id: messageSid,
    text: message.text,
    at: Date.now(),
    status: "sending",
  };
  deps.hub.publish(phone, message.voice ? { ...inbound, voice: message.voice } : inbound);
  const webhookStatus = await postSigned({
    target: `${deps.bridgeUrl()}/whatsapp`,
    signedUrl: deps.webhookUrl,
    authToken: deps.authToken,
    params,
  }).then(async (response) => {
    await response.body?.cancel();
    return response.status;
  }, () => 0);
  const ok = webhookStatus === 200;
  const status = ok ? "delivered" : `failed (webhook answered ${webhookStatus || "nothing"})`;
  deps.hub.publish(phone, { kind: "status", id: messageSid, status, at: Date.now() });
  return c.json({ messageSid, webhookStatus }, ok ? 200 : 502);
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
