/**
 * What the admin API and the operator console share to decide who is the
 * operator: the token compared in constant time, and one lockout per
 * address that failed bearer checks and failed sign-ins both count towards.
 *
 * @module
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { Context } from "hono";
import { getConnInfo } from "hono/deno";

/** Failed attempts from one address before it is locked out. */
export const MAX_FAILURES = 5;
/** How long failures are remembered, and a lockout lasts. */
export const LOCKOUT_MS = 10 * 60_000;

/** Failed attempts per address, in memory (each instance keeps its own). */
export interface Lockout {
  /** Seconds until `address` may try again, or `undefined` when it may now. */
  retryAfter(address: string): number | undefined;
  /** Counts a failure; returns how many `address` has had in this window. */
  fail(address: string): number;
  /** Forgets the failures of an address that got it right. */
  clear(address: string): void;
}

/**
 * Creates an empty lockout.
 *
 * @example
 * ```ts
 * const lockout = createLockout(Date.now);
 * if (lockout.retryAfter("127.0.0.1") === undefined) lockout.fail("127.0.0.1");
 * ```
 */
export function createLockout(now: () => number): Lockout {
  const failures = new Map<string, { count: number; since: number }>();
  const current = (address: string) => {
    const record = failures.get(address);
    if (record && now() - record.since > LOCKOUT_MS) failures.delete(address);
    return failures.get(address);
  };
  return {
    retryAfter(address) {
      const record = current(address);
      if (!record || record.count < MAX_FAILURES) return undefined;
      return Math.max(1, Math.ceil((record.since + LOCKOUT_MS - now()) / 1000));
    },
    fail(address) {
      const record = current(address);
      const count = (record?.count ?? 0) + 1;
      failures.set(address, { count, since: record?.since ?? now() });
      return count;
    },
    clear(address) {
      failures.delete(address);
    },
  };
}

/**
 * A check of a given token against the admin token. Both are hashed first,
 * so the comparison takes the same time whatever their lengths.
 *
 * @example
 * ```ts
 * const isAdminToken = tokenChecker(config.adminToken);
 * isAdminToken("guess"); // false
 * ```
 */
export function tokenChecker(token: string): (given: string) => boolean {
  const expected = sha256(token);
  return (given) => timingSafeEqual(sha256(given), expected);
}

/**
 * Compares two secrets in constant time.
 *
 * @example
 * ```ts
 * sameSecret(form.csrf, session.csrf);
 * ```
 */
export function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(sha256(a), sha256(b));
}

/**
 * The SHA-256 of a string, hex: how console session ids are stored, so that
 * whoever reads the KV cannot sign in with them.
 *
 * @example
 * ```ts
 * sha256Hex("abc").length; // 64
 * ```
 */
export function sha256Hex(value: string): string {
  return createHash("sha256").update(value).digest("hex");
}

function sha256(value: string): Uint8Array {
  return createHash("sha256").update(value).digest();
}

/**
 * The TCP peer of a request; behind a proxy, the proxy's address.
 *
 * @example
 * ```ts
 * lockout.fail(clientAddress(c));
 * ```
 */
export function clientAddress(c: Context): string {
  try {
    return getConnInfo(c).remote.address ?? "unknown";
  } catch {
    return "unknown";
  }
}
