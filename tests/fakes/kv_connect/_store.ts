/**
 * The fake server's database: encoded keys in byte order, each with its
 * value bytes, encoding, versionstamp and expiry, behaving as denokv's SQLite
 * backend does.
 *
 * - Versionstamps are denokv's: a 64-bit big-endian commit version followed
 *   by two zero bytes, the version growing by a random 1–9 per commit (so
 *   never assume consecutive values).
 * - Expired keys are collected before every request, in one step that
 *   advances the version by 1, as denokv's collector does. denokv collects on
 *   a timer, up to about a second late, and serves expired keys until then;
 *   here an expired key is never seen.
 *
 * @module
 */
import { compareKeys, hex, lowerBound } from "./_keys.ts";
import {
  type AtomicWrite,
  type Entry,
  MutationType,
  type ReadRange,
  type Value,
} from "./_proto.ts";
import { combine } from "./_sum.ts";

/** A stored key; `expireAt` is milliseconds since the epoch, or -1 for never. */
export interface Stored extends Entry {
  expireAt: number;
}

/** Called after each commit with the keys it changed (set, deleted or expired). */
export type CommitListener = (keys: Uint8Array[]) => void;

/** What {@linkcode createStore} returns. */
export interface Store {
  /** The ranges' entries, read from one snapshot. */
  read(ranges: ReadRange[]): Entry[][];
  /** The entry at `key`, if any (expired keys collected first). */
  get(key: Uint8Array): Stored | undefined;
  /**
   * Applies `write` when its checks pass: the new versionstamp, or null when
   * a check failed. Throws denokv's 400 `ApiError` (and applies nothing) for a
   * sum/min/max type mismatch.
   */
  write(write: AtomicWrite): Uint8Array | null;
  /** Calls `listener` after every commit; returns a function that stops it. */
  onCommit(listener: CommitListener): () => void;
  /** How many keys are stored. */
  readonly size: number;
}

/** Options for {@linkcode createStore}. */
export interface StoreOptions {
  /** The server's clock, for expiry. */
  now: () => number;
  /** In [0, 1), for the version increments. */
  random?: () => number;
}

/**
 * An empty in-memory store.
 *
 * @example
 * ```ts
 * const store = createStore({ now: Date.now });
 * store.write({ checks: [], mutations: [set], enqueues: [] }); // Uint8Array(10)
 * ```
 */
export function createStore({ now, random = Math.random }: StoreOptions): Store {
  const entries: Stored[] = [];
  const listeners = new Set<CommitListener>();
  let version = 0n;

  const find = (key: Uint8Array) => {
    const index = lowerBound(entries, key);
    const found = entries[index] && compareKeys(entries[index].key, key) === 0;
    return { index, found };
  };
  const notify = (keys: Uint8Array[]) => {
    for (const listener of listeners) listener(keys);
  };
  const collectExpired = () => {
    const time = now();
    const expired = entries.filter((entry) => entry.expireAt >= 0 && entry.expireAt <= time);
    if (expired.length === 0) return;
    for (const entry of expired) entries.splice(find(entry.key).index, 1);
    version += 1n;
    notify(expired.map((entry) => entry.key));
  };
  const lookup = (key: Uint8Array) => {
    const { index, found } = find(key);
    return found ? entries[index] : undefined;
  };

  return {
    get size() {
      return entries.length;
    },
    read(ranges) {
      collectExpired();
      return ranges.map(({ start, end, limit, reverse }) => {
        const [from, to] = [lowerBound(entries, start), lowerBound(entries, end)];
        const inRange = from < to ? entries.slice(from, to) : [];
        if (reverse) inRange.reverse();
        return inRange.slice(0, limit).map(({ key, value, encoding, versionstamp }) => ({
          key,
          value,
          encoding,
          versionstamp,
        }));
      });
    },
    get(key) {
      collectExpired();
      return lookup(key);
    },
    write({ checks, mutations }) {
      collectExpired();
      for (const check of checks) {
        const current = lookup(check.key)?.versionstamp;
        if ((current ? hex(current) : "") !== hex(check.versionstamp)) return null;
      }
      const next = version + BigInt(1 + Math.floor(random() * 9));
      const versionstamp = versionstampOf(next);
      const staged = new Map<string, { key: Uint8Array; entry: Stored | null }>();
      const current = (key: Uint8Array): Value | undefined => {
        const entry = staged.has(hex(key)) ? staged.get(hex(key))!.entry : lookup(key);
        return entry ? { data: entry.value, encoding: entry.encoding } : undefined;
      };
      const stage = (key: Uint8Array, value: Value | null, expireAt = -1) => {
        const entry = value &&
          { key, value: value.data, encoding: value.encoding, versionstamp, expireAt };
        staged.set(hex(key), { key, entry });
      };
      for (const mutation of mutations) {
        const { key, value, mutation_type: type, expire_at_ms: expireAt } = mutation;
        if (type === MutationType.SET) stage(key, value, expireAt > 0 ? expireAt : -1);
        else if (type === MutationType.DELETE) stage(key, null);
        else if (type === MutationType.SET_SUFFIX_VERSIONSTAMPED_KEY) {
          stage(suffixed(key, versionstamp), value, expireAt > 0 ? expireAt : -1);
        } else stage(key, combine(mutation, current(key)));
      }
      version = next;
      for (const { key, entry } of staged.values()) {
        const { index, found } = find(key);
        if (entry) entries.splice(index, found ? 1 : 0, entry);
        else if (found) entries.splice(index, 1);
      }
      notify([...staged.values()].map(({ key }) => key));
      return versionstamp;
    },
    onCommit(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

/** A commit version as denokv's versionstamp: 8 bytes big-endian, then 2 zero bytes. */
function versionstampOf(version: bigint): Uint8Array {
  const bytes = new Uint8Array(10);
  new DataView(bytes.buffer).setBigUint64(0, version, false);
  return bytes;
}

/** `key` with the versionstamp appended as a string key part (tag 0x02, 20 hex digits, 0x00). */
function suffixed(key: Uint8Array, versionstamp: Uint8Array): Uint8Array {
  const suffix = new TextEncoder().encode(hex(versionstamp));
  return Uint8Array.from([...key, 0x02, ...suffix, 0x00]);
}
