/**
 * The inbound side of Twilio: signature verification and turning the form
 * Twilio posts into an {@linkcode InboundMessage}.
 *
 * @module
 */
import { validateRequest } from "twilio/lib/webhooks/webhooks.js";
import type { InboundMedium, InboundMessage } from "../jobs/mod.ts";

/** The answer Twilio expects from a messaging webhook that replies later. */
export const EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>';

/**
 * TwiML that has Twilio reply `text` to the sender itself.
 *
 * @example
 * ```ts
 * replyTwiml("Back soon & then some");
 * // '<?xml version="1.0" encoding="UTF-8"?><Response><Message>Back soon &amp; then some</Message></Response>'
 * ```
 */
export function replyTwiml(text: string): string {
  const escaped = text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  return `<?xml version="1.0" encoding="UTF-8"?><Response><Message>${escaped}</Message></Response>`;
}

/** Form parameters; a name Twilio repeats (it never should) holds a list. */
export type FormParams = Record<string, string | string[]>;

/**
 * Parses an `application/x-www-form-urlencoded` body keeping every parameter,
 * since the signature covers all of them, including ones Twilio adds later.
 *
 * @example
 * ```ts
 * parseForm("Body=hi&From=whatsapp%3A%2B15551234567");
 * // { Body: "hi", From: "whatsapp:+15551234567" }
 * ```
 */
export function parseForm(body: string): FormParams {
  const params: FormParams = {};
  for (const [name, value] of new URLSearchParams(body)) {
    const seen = params[name];
    if (seen === undefined) params[name] = value;
    else if (Array.isArray(seen)) seen.push(value);
    else params[name] = [seen, value];
  }
  return params;
}

/**
 * Checks `X-Twilio-Signature` against the URL Twilio was configured to call.
 * A `#…` fragment (Twilio's connection overrides) is not part of what Twilio
 * signs; the URL is tried with and without its default port.
 *
 * @example
 * ```ts
 * isValidTwilioSignature({
 *   authToken: "12345",
 *   url: "https://example.com/myapp.php?foo=1&bar=2",
 *   signature: "L/OH5YylLD5NRKLltdqwSvS0BnU=",
 *   params: { CallSid: "CA1234567890ABCDE", Caller: "+14158675310", Digits: "1234", From: "+14158675310", To: "+18005551212" },
 * }); // true
 * ```
 */
export function isValidTwilioSignature(input: {
  authToken: string;
  url: string;
  signature: string | undefined;
  params: FormParams;
}): boolean {
  if (!input.signature) return false;
  const url = input.url.split("#", 1)[0];
  try {
    return validateRequest(input.authToken, input.signature, url, input.params);
  } catch {
    return false;
  }
}

/** Why a signed request is still not a message to answer. */
export type InboundProblem =
  | { status: 400; reason: "missing_message_sid" | "missing_from" | "repeated_field" }
  | { status: 403; reason: "wrong_account" }
  | { status: 200; reason: "not_whatsapp" };

/**
 * The longest question kept: four times what WhatsApp lets a person send, so
 * that a message's record stays far below KV's 64 KiB value limit whatever
 * its job adds to it.
 */
export const MAX_BODY_CHARS = 16_384;

/** Twilio's are `SM`/`MM` + 32 hex; any short token is accepted as a key. */
const MESSAGE_SID = /^[A-Za-z0-9_-]{1,64}$/;
const WHATSAPP_FROM = /^whatsapp:(\+[1-9]\d{6,14})$/;

/**
 * Turns verified form parameters into an inbound message, or says why not.
 * A sender that is not a WhatsApp number is acknowledged but not answered.
 * The media Twilio announced are kept (`media`, absent when none), so a
 * voice note can be fetched and transcribed by its job.
 *
 * @example
 * ```ts
 * const result = toInboundMessage(params, { accountSid: "AC…", now: Date.now() });
 * if ("messageSid" in result) console.log(result.phone);
 * ```
 */
export function toInboundMessage(
  params: FormParams,
  context: { accountSid: string; now: number },
): InboundMessage | InboundProblem {
  const fields = ["MessageSid", "From", "AccountSid", "Body", "NumMedia"];
  if (fields.some((name) => Array.isArray(params[name]))) {
    return { status: 400, reason: "repeated_field" };
  }
  const field = (name: string) => (params[name] as string | undefined) ?? "";
  if (!MESSAGE_SID.test(field("MessageSid"))) {
    return { status: 400, reason: "missing_message_sid" };
  }
  if (field("From") === "") return { status: 400, reason: "missing_from" };
  if (field("AccountSid") !== context.accountSid) {
    return { status: 403, reason: "wrong_account" };
  }
  const phone = WHATSAPP_FROM.exec(field("From"))?.[1];
  if (!phone) return { status: 200, reason: "not_whatsapp" };
  const numMedia = Number.parseInt(field("NumMedia"), 10) || 0;
  const media = mediaOf(params, numMedia);
  return {
    messageSid: field("MessageSid"),
    phone,
    // WhatsApp caps a message at 4,096 characters; a longer Body did not come
    // from it, and keeping it whole could push the job's record past KV's limit.
    body: field("Body").slice(0, MAX_BODY_CHARS),
    numMedia,
    ...(media.length > 0 ? { media } : {}),
    receivedAt: context.now,
  };
}

/**
 * The most media kept from one message. WhatsApp sends one per message and
 * Twilio's MMS at most 10; the cap keeps a forged form from growing the record.
 */
export const MAX_MEDIA = 10;
const MAX_MEDIA_URL_CHARS = 2_048;
/** `type/subtype`, optionally with parameters (RFC 9110 media type). */
const MEDIA_TYPE = /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+(\s*;.*)?$/;

/**
 * `MediaUrlN` and `MediaContentTypeN` for N below `NumMedia` (at most
 * {@linkcode MAX_MEDIA}). A medium whose URL is not http(s) is dropped; one
 * without a readable type is kept as `application/octet-stream`.
 */
function mediaOf(params: FormParams, numMedia: number): InboundMedium[] {
  const media: InboundMedium[] = [];
  for (let n = 0; n < Math.min(numMedia, MAX_MEDIA); n++) {
    const url = params[`MediaUrl${n}`];
    const type = params[`MediaContentType${n}`];
    if (typeof url !== "string" || !isHttpUrl(url)) continue;
    const contentType = typeof type === "string" ? type.trim().toLowerCase() : "";
    media.push({
      url,
      contentType: MEDIA_TYPE.test(contentType) && contentType.length <= 255
        ? contentType
        : "application/octet-stream",
    });
  }
  return media;
}

function isHttpUrl(value: string): boolean {
  if (value.length > MAX_MEDIA_URL_CHARS) return false;
  try {
    const { protocol } = new URL(value);
    return protocol === "https:" || protocol === "http:";
  } catch {
    return false;
  }
}
