/** Seeded randomness for tests, so that a failing run can be replayed. */

/**
 * A small seeded generator (mulberry32): numbers in [0, 1).
 *
 * @example
 * ```ts
 * const random = seeded(42);
 * random(); // the same sequence for the same seed
 * ```
 */
export function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}
