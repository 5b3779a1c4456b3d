/**
 * Who may ask, and how often: the allowlist and per-number rate limits,
 * counted in KV so every instance shares them.
 *
 * Counters: `["rate", phone, "minute" | "day", windowIndex]` → number, in
 * fixed UTC windows. A message that is let through counts; a refused one
 * does not.
 *
 * @module
 */

/** The admission rules. */
export interface Policy {
  /** `+E164` numbers allowed to ask; undefined = everyone. */
  allowedNumbers: ReadonlySet<string> | undefined;
  perMinute: number;
  perDay: number;
}

/** Why a message is not asked: not on the list, or over a limit until `until`. */
export type Refusal =
  | { kind: "denied" }
  | { kind: "rate_limited"; window: "minute" | "day"; until: number };

/** The decision, and what to add to the accepting commit. */
export interface Admission {
  refusal: Refusal | undefined;
  /** Adds the counter updates, checked against the values read. */
  count(op: Deno.AtomicOperation): Deno.AtomicOperation;
}

const WINDOWS = { minute: 60_000, day: 86_400_000 } as const;

/** The KV key of one number's counter for one window. */
export const rateKey = (phone: string, window: "minute" | "day", now: number): Deno.KvKey => [
  "rate",
  phone,
  window,
  Math.floor(now / WINDOWS[window]),
];

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
  const keys = [rateKey(phone, "minute", now), rateKey(phone, "day", now)] as const;
  const [minute, day] = await kv.getMany<[number, number]>(keys);
  for (
    const [entry, window, limit] of [[minute, "minute", policy.perMinute], [
      day,
      "day",
      policy.perDay,
    ]] as const
  ) {
    if ((entry.value ?? 0) >= limit) {
      const size = WINDOWS[window];
      const until = (Math.floor(now / size) + 1) * size;
      return { refusal: { kind: "rate_limited", window, until }, count: (op) => op };
    }
  }
  return {
    refusal: undefined,
    count: (op) =>
      op.check(minute, day)
        .set(minute.key, (minute.value ?? 0) + 1, { expireIn: 2 * WINDOWS.minute })
        .set(day.key, (day.value ?? 0) + 1, { expireIn: 2 * WINDOWS.day }),
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
