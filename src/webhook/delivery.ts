/**
 * What became of the messages we sent: Twilio's status callbacks, kept per
 * message under `["deliveries", MessageSid]`, newest state only.
 *
 * @module
 */
import { count } from "../jobs/mod.ts";
import { expireAt } from "../storage/mod.ts";

/** The latest known state of one outbound message. */
export interface Delivery {
  status: string;
  errorCode?: number;
  updatedAt: number;
}

/** Twilio's error for a WhatsApp message outside the 24-hour session window. */
export const OUTSIDE_WINDOW = 63016;

const RANK: Record<string, number> = {
  accepted: 0,
  scheduled: 0,
  queued: 0,
  sending: 1,
  sent: 2,
  delivered: 3,
  undelivered: 3,
  failed: 3,
  read: 4,
};

/** How long delivery states are kept. */
const DELIVERY_TTL_MS = 7 * 24 * 60 * 60 * 1000;

export const deliveryKey = (sid: string): Deno.KvKey => ["deliveries", sid];

/** The status callback URL: configured, or `twilio/status` next to the webhook. */
export function statusCallbackUrl(webhookUrl: string, configured?: string): string {
  if (configured) return configured;
  const url = new URL("twilio/status", webhookUrl.split("#", 1)[0]);
  url.search = "";
  return url.href;
}

/**
 * Records a status event unless it is stale (an earlier state arriving
 * late) or repeated; returns whether it was applied. Failures are counted
 * per error code in the hourly stats.
 *
 * @example
 * ```ts
 * await recordDelivery(kv, { messageSid: "SM…", status: "delivered" }, Date.now()); // true
 * ```
 */
export async function recordDelivery(
  kv: Deno.Kv,
  event: { messageSid: string; status: string; errorCode?: number },
  now: number,
): Promise<boolean> {
  const rank = RANK[event.status] ?? -1;
  if (rank < 0) return false;
  for (let attempt = 0; attempt < 5; attempt++) {
    const current = await kv.get<Delivery>(deliveryKey(event.messageSid));
    if (current.value && (RANK[current.value.status] ?? -1) >= rank) return false;
    const delivery: Delivery = { status: event.status, errorCode: event.errorCode, updatedAt: now };
    const key = deliveryKey(event.messageSid);
    const op = expireAt(kv.atomic().check(current).set(key, delivery), key, now + DELIVERY_TTL_MS);
    if (isFailure(event.status)) count(op, `delivery_failed:${event.errorCode ?? 0}`, now);
    if ((await op.commit()).ok) return true;
  }
  return false;
}

/** Whether a status means the message did not arrive. */
export function isFailure(status: string): boolean {
  return status === "failed" || status === "undelivered";
}
