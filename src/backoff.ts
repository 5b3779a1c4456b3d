/**
 * Exponential backoff with jitter, shared by every retry in the bridge.
 *
 * @module
 */

/** How retries are spaced: `baseMs`, doubling per attempt, at most `capMs`. */
export interface Backoff {
  baseMs: number;
  capMs: number;
}

/**
 * The wait before retry number `attempt` (1 = the first retry): between half
 * and all of `baseMs · 2^(attempt-1)`, capped, so that many clients failing
 * together do not come back together.
 *
 * @example
 * ```ts
 * backoffDelay({ baseMs: 500, capMs: 4_000 }, 3); // 1000–2000
 * ```
 */
export function backoffDelay(policy: Backoff, attempt: number, random = Math.random): number {
  const ceiling = Math.min(policy.capMs, policy.baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + random() * ceiling / 2);
}
