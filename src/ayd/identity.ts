/**
 * Who asks AYD: the identity its row-level access control sees. AYD calls
 * the session's `name`, `email` and `properties` "context variables"; a
 * number without a person in the directory asks as the made-up
 * "WhatsApp User +1555…" the Flask app used.
 *
 * @module
 */

/** A person as AYD sees them. */
export interface AydIdentity {
  name: string;
  email: string;
  /** More context variables; absent when the person has none. */
  properties?: Record<string, unknown>;
}

/**
 * An identity and a fingerprint of it, which a conversation stores so that
 * it is replaced once the identity changes. No asker (undefined) is the
 * made-up default identity, whose conversations carry no fingerprint.
 */
export interface Asker {
  identity: AydIdentity;
  fingerprint: string;
}

/**
 * The made-up identity of a number that is not in the directory, as the
 * Flask app sent it.
 *
 * @example
 * ```ts
 * defaultIdentity("+15551234567"); // { name: "WhatsApp User +15551234567", email: "wa15551234567@example.com" }
 * ```
 */
export function defaultIdentity(phone: string): AydIdentity {
  return { name: `WhatsApp User ${phone}`, email: `wa${phone.replace(/\D/g, "")}@example.com` };
}
