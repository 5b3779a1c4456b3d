/**
 * Who may ask, and how often: the allowlist (or, without one, the people
 * directory once it is not empty) and per-number rate limits, counted in KV
 * so every instance shares them.
 *
 * The counts (the current minute's and day's, in fixed UTC windows) live in
 * the number's state (`["numbers", phone]`, see `jobs.ts`), which the
 * accepting commit checks and rewrites anyway: admitting a message costs no
 * read or write of its own (a webhook's commit is the bridge's scarcest
 * resource). A message that is let through counts; a refused one does not.
 *
 * @module
 */
import type { Refusal } from "../jobs/mod.ts";

/** The admission rules. */
export interface Policy {
  /** `+E164` numbers allowed to ask; undefined = everyone, or the directory's people when it has any. */
  allowedNumbers: ReadonlySet<string> | undefined;
  perMinute: number;
  perDay: number;
}

/** The decision, and the counts to store with the message. */
export interface Admission {
  refusal: Refusal | undefined;
  /** The counts after this message: unchanged when it is refused. */
  counts: RateCounts | undefined;
}

const WINDOWS = { minute: 60_000, day: 86_400_000 } as const;

/** One number's counts, each for the window it was counted in. */
export interface RateCounts {
  minute: { window: number; count: number };
  day: { window: number; count: number };
}

/**
 * Decides whether a message from `phone`, arriving at `now`, is asked,
 * given the number's stored counts (`stored`, as read with its state) and
 * what the directory says (read in the same round trip): whether the number
 * is in it, and how many people it holds. Without `ALLOWED_NUMBERS`, a
 * directory that is not empty lists who may ask. The caller stores
 * {@linkcode Admission.counts} in the accepting commit, and decides again if
 * that commit loses a race.
 *
 * @example
 * ```ts
 * const { refusal, counts } = admit(state.value?.rate, "+15551234567", Date.now(), policy, { listed: true, size: 40 });
 * ```
 */
export function admit(
  stored: unknown,
  phone: string,
  now: number,
  policy: Policy,
  directory: { listed: boolean; size: number } = { listed: false, size: 0 },
): Admission {
  const previous = isRateCounts(stored) ? stored : undefined;
  const allowed = policy.allowedNumbers
    ? policy.allowedNumbers.has(phone)
    : directory.size === 0 || directory.listed;
  if (!allowed) return { refusal: { kind: "denied" }, counts: previous };
  const current = (window: "minute" | "day") => {
    const index = Math.floor(now / WINDOWS[window]);
    const counted = previous?.[window];
    return { window: index, count: counted?.window === index ? counted.count : 0 };
  };
  const minute = current("minute");
  const day = current("day");
  const limits = [["minute", minute, policy.perMinute], ["day", day, policy.perDay]] as const;
  for (const [window, counted, limit] of limits) {
    if (counted.count >= limit) {
      const until = (counted.window + 1) * WINDOWS[window];
      return { refusal: { kind: "rate_limited", window, until }, counts: previous };
    }
  }
  return {
    refusal: undefined,
    counts: {
      minute: { window: minute.window, count: minute.count + 1 },
      day: { window: day.window, count: day.count + 1 },
    },
  };
}

function isRateCounts(value: unknown): value is RateCounts {
  const counts = value as RateCounts | undefined;
  return typeof counts?.minute?.count === "number" && typeof counts?.day?.count === "number";
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
