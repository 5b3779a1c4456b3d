/**
 * A Twilio stand-in for the sandbox: a real HTTP server on 127.0.0.1 that
 * speaks Twilio's Messages API and typing indicator endpoint, shows each
 * message in the sandbox chat instead of sending it, and reports delivery
 * back to the bridge's `/twilio/status` as signed status callbacks. Voice
 * notes sent from the page are its inbound media, served as Twilio serves
 * them (Basic auth, then a redirect to another host).
 *
 * @module
 */
import { type CaptureMedia, startCaptureMedia, twilioError } from "./capture_media.ts";
import type { ChatHub } from "./hub.ts";
import { postSigned, randomSid } from "./signed_post.ts";

/** A running Twilio stand-in. */
export interface CaptureTwilio {
  /** Base URL for `TWILIO_API_BASE_URL`. */
  url: string;
  /** Inbound media (voice notes), served under `url` as Twilio serves them. */
  media: CaptureMedia;
  /** Stops pending status callbacks and the servers. */
  close(): Promise<void>;
}

/** What it needs. */
export interface CaptureTwilioOptions {
  accountSid: string;
  authToken: string;
  hub: ChatHub;
  /** Milliseconds between "sent" and "delivered" (default 150). */
  deliveryDelayMs?: number;
}

/** Twilio's limit on a message body. */
const MAX_BODY_CHARS = 1600;

/**
 * Starts the stand-in on a free port of 127.0.0.1.
 *
 * @example
 * ```ts
 * const twilio = startCaptureTwilio({ accountSid, authToken, hub: createChatHub() });
 * // TWILIO_API_BASE_URL = twilio.url
 * ```
 */
export function startCaptureTwilio(options: CaptureTwilioOptions): CaptureTwilio {
  const timers = new Set<ReturnType<typeof setTimeout>>();
  let closed = false;
  const auth = `Basic ${btoa(`${options.accountSid}:${options.authToken}`)}`;
  const delay = options.deliveryDelayMs ?? 150;
  const media = startCaptureMedia(options);

  async function createMessage(req: Request, accountSid: string): Promise<Response> {
    if (req.headers.get("authorization") !== auth) return twilioError(401, 20003, "Authenticate");
    if (accountSid !== options.accountSid) return twilioError(404, 20404, "Not found");
    const form = new URLSearchParams(await req.text());
    const to = form.get("To") ?? "";
    const body = form.get("Body") ?? "";
    const mediaUrls = form.getAll("MediaUrl");
    if (!/^whatsapp:\+\d{7,15}$/.test(to)) return twilioError(400, 21211, "Invalid 'To'");
    if (!body && mediaUrls.length === 0) return twilioError(400, 21602, "Body is required");
    if (body.length > MAX_BODY_CHARS) {
      return twilioError(400, 21617, "The message body exceeds the 1600 character limit");
    }
    const sid = randomSid("SM");
    const phone = to.slice("whatsapp:".length);
    options.hub.publish(phone, {
      kind: "reply",
      id: sid,
      body,
      mediaUrls,
      at: Date.now(),
      status: "queued",
    });
    const callback = form.get("StatusCallback");
    if (callback) {
      const report = (status: string) =>
        reportStatus(callback, { sid, phone, from: form.get("From") ?? "", status });
      later(delay / 3, () => report("sent").then(() => later(delay, () => report("delivered"))));
    }
    return Response.json(
      { sid, account_sid: accountSid, to, from: form.get("From"), body, status: "queued" },
      { status: 201 },
    );
  }

  /** Posts a signed status callback; the chat shows the status once the bridge took it. */
  async function reportStatus(
    callbackUrl: string,
    m: { sid: string; phone: string; from: string; status: string },
  ) {
    const params = {
      AccountSid: options.accountSid,
      ApiVersion: "2010-04-01",
      ChannelPrefix: "whatsapp",
      From: m.from,
      MessageSid: m.sid,
      MessageStatus: m.status,
      SmsSid: m.sid,
      SmsStatus: m.status,
      To: `whatsapp:${m.phone}`,
    };
    const status = await postSigned({
      target: callbackUrl,
      signedUrl: callbackUrl,
      authToken: options.authToken,
      params,
    }).then(async (response) => {
      await response.body?.cancel();
      return response.ok ? m.status : `${m.status} (status callback answered ${response.status})`;
    }).catch(() => `${m.status} (status callback unreachable)`);
    options.hub.publish(m.phone, { kind: "status", id: m.sid, status, at: Date.now() });
  }

  async function typing(req: Request): Promise<Response> {
    if (req.headers.get("authorization") !== auth) return twilioError(401, 20003, "Authenticate");
    const form = new URLSearchParams(await req.text());
    const messageId = form.get("messageId") ?? "";
    const phone = options.hub.phoneOf(messageId);
    if (form.get("channel") !== "whatsapp" || !phone) {
      return twilioError(400, 20001, "Invalid messageId or channel");
    }
    // Twilio's typing indicator also marks the inbound message read.
    options.hub.publish(phone, { kind: "status", id: messageId, status: "read", at: Date.now() });
    options.hub.publish(phone, { kind: "typing", id: messageId, at: Date.now() });
    return Response.json({ success: true });
  }

  function later(ms: number, run: () => unknown) {
    if (closed) return;
    const timer = setTimeout(() => {
      timers.delete(timer);
      run();
    }, ms);
    timers.add(timer);
  }

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const medium = media.serve(req);
    if (medium) return medium;
    const path = new URL(req.url).pathname;
    const messages = path.match(/^\/2010-04-01\/Accounts\/([^/]+)\/Messages\.json$/);
    if (req.method === "POST" && messages) return createMessage(req, messages[1]);
    if (req.method === "POST" && path === "/v2/Indicators/Typing.json") return typing(req);
    return twilioError(404, 20404, `The requested resource ${path} was not found`);
  });

  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    media,
    async close() {
      closed = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      await Promise.all([server.shutdown(), media.close()]);
    },
  };
}
