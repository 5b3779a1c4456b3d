/**
 * Posting a form as Twilio does: signed with the account's auth token over
 * the public URL and every parameter, so the bridge's real checks apply.
 *
 * @module
 */
import { getExpectedTwilioSignature } from "twilio/lib/webhooks/webhooks.js";

/**
 * Posts `params` to `target`, signed for `signedUrl` (the URL Twilio is
 * configured with, which the bridge verifies against).
 *
 * @example
 * ```ts
 * await postSigned({
 *   target: "http://127.0.0.1:8000/whatsapp",
 *   signedUrl: "http://127.0.0.1:8000/whatsapp",
 *   authToken,
 *   params: { MessageSid: "SM…", From: "whatsapp:+15550100001", Body: "hi" },
 * });
 * ```
 */
export function postSigned(options: {
  target: string;
  signedUrl: string;
  authToken: string;
  params: Record<string, string>;
}): Promise<Response> {
  return fetch(options.target, {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      "x-twilio-signature": getExpectedTwilioSignature(
        options.authToken,
        options.signedUrl,
        options.params,
      ),
    },
    body: new URLSearchParams(options.params),
  });
}

/**
 * A random Twilio-style SID: `prefix` and 32 hex digits.
 *
 * @example
 * ```ts
 * randomSid("SM"); // "SM3f9c…" (34 characters)
 * ```
 */
export function randomSid(prefix: string): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return prefix + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
