/**
 * Who may ask, and how often: the allowlist and per-number rate limits,
 * counted in KV so every instance shares them.
 *
 * Counters: `["rate", phone]` → the current minute's and day's counts, in
 * fixed UTC windows; one key, so admitting a message costs one read and one
 * write (a webhook's commit is the bridge's scarcest resource). A message that
 * is let through counts; a refused one does not.
 *
 * @module
 */
import type { Refusal } from "../jobs/mod.ts";

/** The admission rules. */
export interface Policy {
  /** `+E164` numbers allowed to ask; undefined = everyone. */
  allowedNumbers: ReadonlySet<string> | undefined;
  perMinute: number;
  perDay: number;
}

/** The decision, and what to add to the accepting commit. */
export interface Admission {
  refusal: Refusal | undefined;
  /** Adds the counter updates, checked against the values read. */
  count(op: Deno.AtomicOperation): Deno.AtomicOperation;
}

const WINDOWS = { minute: 60_000, day: 86_400_000 } as const;

/** The KV key of one number's counters. */
export const rateKey = (phone: string): Deno.KvKey => ["rate", phone];

/** One number's counts, each for the window it was counted in. */
export interface RateCounts {
  minute: { window: number; count: number };
  day: { window: number; count: number };
}

/**
 * Decides whether a message from `phone` is asked. Reads the counters; the
 * caller commits {@linkcode Admission.count} with the message, and decides
 * again if that commit loses a race.
 *
 * @example
 * ```ts
 * const { refusal, count } = await admit(kv, "+15551234567", Date.now(), policy);
 * ```
 */
export async function admit(
  kv: Deno.Kv,
  phone: string,
  now: number,
  policy: Policy,
): Promise<Admission> {
  if (policy.allowedNumbers && !policy.allowedNumbers.has(phone)) {
    return { refusal: { kind: "denied" }, count: (op) => op };
  }
  const entry = await kv.get<RateCounts>(rateKey(phone));
  const current = (window: "minute" | "day") => {
    const index = Math.floor(now / WINDOWS[window]);
    const stored = entry.value?.[window];
    return { window: index, count: stored?.window === index ? stored.count : 0 };
  };
  const minute = current("minute");
  const day = current("day");
  const limits = [["minute", minute, policy.perMinute], ["day", day, policy.perDay]] as const;
  for (const [window, counted, limit] of limits) {
    if (counted.count >= limit) {
      const until = (counted.window + 1) * WINDOWS[window];
      return { refusal: { kind: "rate_limited", window, until }, count: (op) => op };
    }
  }
  return {
    refusal: undefined,
    count: (op) =>
      op.check(entry).set(
        entry.key,
        {
          minute: { window: minute.window, count: minute.count + 1 },
          day: { window: day.window, count: day.count + 1 },
        } satisfies RateCounts,
        { expireIn: 2 * WINDOWS.day },
      ),
  };
}

/**
 * Parses `ALLOWED_NUMBERS`: comma-separated `+E164` (spaces and a
 * `whatsapp:` prefix tolerated). Returns the bad entries too.
 *
 * @example
 * ```ts
 * parseAllowedNumbers("+15551234567, whatsapp:+4915112345678");
 * // { numbers: Set { "+15551234567", "+4915112345678" }, invalid: [] }
 * ```
 */
export function parseAllowedNumbers(raw: string): { numbers: Set<string>; invalid: string[] } {
  const numbers = new Set<string>();
  const invalid: string[] = [];
  for (const item of raw.split(",").map((s) => s.trim()).filter(Boolean)) {
    const number = item.replace(/^whatsapp:/i, "").replace(/[\s-]/g, "");
    if (/^\+[1-9]\d{6,14}$/.test(number)) numbers.add(number);
    else invalid.push(item);
  }
  return { numbers, invalid };
}
