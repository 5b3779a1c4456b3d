/**
 * What a failed request to Twilio says about the message it carried. Private
 * helper of `twilio_client.ts`.
 *
 * @module
 */
import { maskPhone } from "../log.ts";
import { LookupIncomplete } from "./_sent_lookup.ts";

/**
 * - `rejected`: Twilio answered and refused for good (a 4xx other than 429).
 * - `not_sent`: certainly not accepted, but worth trying again: a 429, or a
 *   request that never left (the connection could not be made).
 * - `unknown`: it may have been accepted: a timeout, a reset, a 5xx, an
 *   answer cut short or unreadable.
 */
export type SendOutcome = "rejected" | "not_sent" | "unknown";

/**
 * Classifies the error twilio-node's `create` rejected with.
 *
 * @example
 * ```ts
 * classifyFailure({ status: 429, code: 20429 }); // "not_sent"
 * classifyFailure(new DOMException("…", "TimeoutError")); // "unknown"
 * ```
 */
export function classifyFailure(error: unknown): SendOutcome {
  const status = (error as { status?: unknown } | undefined)?.status;
  if (typeof status === "number") {
    if (status === 429) return "not_sent";
    // A 5xx may come from a proxy in front of a server that did the work.
    return status >= 400 && status < 500 ? "rejected" : "unknown";
  }
  return neverLeft(error) ? "not_sent" : "unknown";
}

/**
 * A `fetch` that failed before a byte of the request was written: refused,
 * or failing while connecting. Deno reports every failure of that phase (DNS,
 * TCP connect, TLS handshake) as `client error (Connect)` in the error's
 * `cause`; a failure after the request went out is `(SendRequest)` or a body
 * error, and a timeout is a `TimeoutError`, which may strike at any phase.
 *
 * @example
 * ```ts
 * neverLeft(new TypeError("fetch failed", {
 *   cause: new Error("… client error (Connect): tcp connect error: Connection refused"),
 * })); // true
 * ```
 */
export function neverLeft(error: unknown): boolean {
  if (!(error instanceof TypeError)) return false;
  const cause = error.cause instanceof Error ? error.cause.message : "";
  return /client error \(Connect\)|connection refused|ECONNREFUSED/i.test(
    `${error.message} ${cause}`,
  );
}

/**
 * A short reason safe to log: no URL (a list request's carries the user's
 * number), no message text.
 *
 * @example
 * ```ts
 * failureReason({ status: 500, code: 20500 }); // "answered 500 (error 20500)"
 * ```
 */
export function failureReason(error: unknown): string {
  const { status, code } = (error ?? {}) as { status?: unknown; code?: unknown };
  if (typeof status === "number") return `answered ${status}${code ? ` (error ${code})` : ""}`;
  if (error instanceof DOMException && error.name === "TimeoutError") return "timed out";
  if (neverLeft(error)) return "could not connect";
  if (error instanceof SyntaxError) return "unreadable answer";
  if (error instanceof TypeError) return "network error";
  if (error instanceof LookupIncomplete) return error.message;
  return error instanceof Error ? error.name : "unknown error";
}

/** Twilio error codes that point at one setting. */
const SETTING_FOR_CODE: Record<number, string> = {
  20003: "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN",
  21606: "TWILIO_FROM_NUMBER",
  63007: "TWILIO_FROM_NUMBER",
};

/**
 * What Twilio said about a refused request, for a log line: its own
 * message (twilio-node puts the answer's `message` there), phone numbers
 * masked, on one line of at most 160 characters, and which setting to check
 * when the error code names one; "" when Twilio said nothing.
 *
 * @example
 * ```ts
 * twilioSays({ status: 401, code: 20003, message: "Authenticate" });
 * // ": Authenticate (check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN)"
 * ```
 */
export function twilioSays(error: unknown): string {
  const { message, code } = (error ?? {}) as { message?: unknown; code?: unknown };
  let said = typeof message === "string" && !message.startsWith("[HTTP ") ? message : "";
  said = said.replace(/\+?\d{7,}/g, maskPhone).replace(/\s+/g, " ").trim();
  if (said.length > 160) said = said.slice(0, 159) + "…";
  const setting = typeof code === "number" ? SETTING_FOR_CODE[code] : undefined;
  return (said && `: ${said}`) + (setting ? ` (check ${setting})` : "");
}
