/**
 * Encoded keys as KV orders them: byte by byte, a prefix before anything
 * longer. The protocol carries keys already encoded, so this order is the
 * whole story (the encoding puts its type tags first, which orders parts of
 * different types).
 *
 * @module
 */

/**
 * Negative, zero or positive as `a` sorts before, with or after `b`.
 *
 * @example
 * ```ts
 * compareKeys(new Uint8Array([2, 97, 0]), new Uint8Array([2, 98, 0])); // < 0
 * ```
 */
export function compareKeys(a: Uint8Array, b: Uint8Array): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    if (a[i] !== b[i]) return a[i] - b[i];
  }
  return a.length - b.length;
}

/**
 * A sorted array's insertion point for `key`: the index of the first element
 * whose key is not before it.
 *
 * @example
 * ```ts
 * lowerBound([{ key: a }, { key: c }], b); // 1
 * ```
 */
export function lowerBound(sorted: readonly { key: Uint8Array }[], key: Uint8Array): number {
  let [low, high] = [0, sorted.length];
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (compareKeys(sorted[middle].key, key) < 0) low = middle + 1;
    else high = middle;
  }
  return low;
}

/**
 * Lower-case hex, as the client shows versionstamps.
 *
 * @example
 * ```ts
 * hex(new Uint8Array([0, 255])); // "00ff"
 * ```
 */
export function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}
