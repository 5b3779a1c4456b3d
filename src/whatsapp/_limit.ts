/**
 * A bound on how many calls run at once. Private helper of `twilio_client.ts`.
 *
 * @module
 */

/**
 * Runs at most `max` of the given calls at a time; the others wait in order.
 *
 * @example
 * ```ts
 * const limit = createLimit(2);
 * await Promise.all(urls.map((url) => limit(() => fetch(url))));
 * ```
 */
export function createLimit(max: number): <T>(call: () => Promise<T>) => Promise<T> {
  let free = max;
  const waiting: (() => void)[] = [];
  return async (call) => {
    if (free > 0) free--;
    else await new Promise<void>((resolve) => waiting.push(resolve));
    try {
      return await call();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else free++;
    }
  };
}
