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

/**
 * An encoded key read back into its parts, as Deno's client wrote it
 * (denokv's tuple encoding: 0x01 bytes, 0x02 string, 0x0c–0x1c integers
 * of up to 8 bytes as bigint, 0x21 number, 0x26/0x27 false/true), for
 * tests that pick requests by key. A part it cannot read ends the key.
 *
 * @example
 * ```ts
 * decodeKey(new Uint8Array([2, 97, 0, 0x21, 0xbf, 0xf0, 0, 0, 0, 0, 0, 0])); // ["a", 1]
 * ```
 */
export function decodeKey(bytes: Uint8Array): Deno.KvKey {
  const parts: Deno.KvKeyPart[] = [];
  let i = 0;
  const text = new TextDecoder();
  while (i < bytes.length) {
    const tag = bytes[i++];
    if (tag === 0x01 || tag === 0x02) {
      const out: number[] = [];
      while (i < bytes.length && !(bytes[i] === 0 && bytes[i + 1] !== 0xff)) {
        out.push(bytes[i]);
        i += bytes[i] === 0 ? 2 : 1; // 0x00 0xff is an escaped zero byte
      }
      i++;
      parts.push(tag === 0x02 ? text.decode(new Uint8Array(out)) : new Uint8Array(out));
    } else if (tag >= 0x0c && tag <= 0x1c) {
      const n = Math.abs(tag - 0x14);
      let value = 0n;
      for (let k = 0; k < n; k++) value = (value << 8n) | BigInt(bytes[i + k]);
      i += n;
      parts.push(tag < 0x14 ? value - ((1n << BigInt(8 * n)) - 1n) : value);
    } else if (tag === 0x21) {
      const b = bytes.slice(i, i + 8);
      if (b[0] & 0x80) b[0] ^= 0x80;
      else for (let k = 0; k < 8; k++) b[k] ^= 0xff;
      parts.push(new DataView(b.buffer).getFloat64(0, false));
      i += 8;
    } else if (tag === 0x26 || tag === 0x27) {
      parts.push(tag === 0x27);
    } else break;
  }
  return parts;
}
