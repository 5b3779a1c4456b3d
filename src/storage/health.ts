/**
 * Whether KV can be written right now. A storage error (a full disk, a
 * locked file, a KV Connect server away) is told apart from an operation
 * that is itself wrong; the heartbeat every process writes anyway serves as
 * the probe, so knowing costs no write of its own.
 *
 * @module
 */
import { describeError } from "../log.ts";

const STORAGE_TROUBLE = new RegExp(
  [
    "database or disk is full",
    "disk I/O error",
    "database is locked",
    "SQLITE_(BUSY|FULL|IOERR|CANTOPEN|READONLY)",
    "readonly database",
    "unable to open database",
    // KV Connect: the server or the way to it
    "error sending request",
    "connection (refused|reset|closed)",
    "timed out",
    "unavailable",
    "bad gateway",
    "service unavailable",
    "gateway timeout",
  ].join("|"),
  "i",
);

/**
 * Whether `error` says the database could not be reached or written right
 * now (a full disk, a locked file, a KV Connect server away) rather than
 * that the operation itself is wrong (a value too large, a bug): the first
 * passes with time, so work is retried for as long as it lasts and never
 * given up for it.
 *
 * @example
 * ```ts
 * isStorageError(new TypeError("database or disk is full")); // true
 * isStorageError(new TypeError("Value too large (max 65536 bytes)")); // false
 * ```
 */
export function isStorageError(error: unknown): boolean {
  return error instanceof Error && STORAGE_TROUBLE.test(error.message);
}

/**
 * A short class of a storage error for logs: `disk_full`, `locked`,
 * `unreachable`, `timeout`, `io`, or `other` (never the error's text).
 *
 * @example
 * ```ts
 * storageErrorClass(new TypeError("database or disk is full")); // "disk_full"
 * ```
 */
export function storageErrorClass(error: unknown): string {
  const text = String((error as Error)?.message ?? error);
  if (/disk is full|SQLITE_FULL/i.test(text)) return "disk_full";
  if (/locked|SQLITE_BUSY/i.test(text)) return "locked";
  if (/timed? ?out/i.test(text)) return "timeout";
  if (/error sending request|connection|unavailable|gateway/i.test(text)) return "unreachable";
  if (/I\/O|IOERR|readonly|unable to open/i.test(text)) return "io";
  return "other";
}

/** What the process knows of its storage. */
export interface StorageHealth {
  /** Undefined while writes go through; else why the last one failed. */
  trouble(): string | undefined;
  /** A write failed with `error`; only a storage error counts. */
  failed(error: unknown): void;
  /** A write went through: the trouble, if any, is over. */
  succeeded(): void;
  /** Hears every change, with the new trouble (undefined = fine again); returns a remover. */
  onChange(listener: (trouble: string | undefined) => void): () => void;
}

/**
 * Creates the storage health of a process.
 *
 * @example
 * ```ts
 * const health = createStorageHealth();
 * health.onChange((trouble) => console.log(trouble ?? "writes work again"));
 * health.failed(new TypeError("database or disk is full"));
 * health.trouble(); // "TypeError: database or disk is full"
 * ```
 */
export function createStorageHealth(): StorageHealth {
  let trouble: string | undefined;
  const listeners = new Set<(trouble: string | undefined) => void>();
  const set = (next: string | undefined) => {
    if (next === trouble) return;
    const changed = (next === undefined) !== (trouble === undefined);
    trouble = next;
    if (changed) { for (const listener of listeners) listener(next); }
  };
  return {
    trouble: () => trouble,
    failed(error) {
      if (isStorageError(error)) set(describeError(error));
    },
    succeeded: () => set(undefined),
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

/**
 * Settles as `work` does, or rejects once `ms` have passed with an error
 * that counts as a storage error (`… (timed out)`). Deno's KV Connect client
 * retries a server that does not answer without end, so a call to it never
 * fails by itself: whoever must answer in time (the webhook, `/health`, the
 * console) bounds the wait. `work` itself goes on and may still land.
 *
 * @example
 * ```ts
 * const entry = await withinMs(kv.get(["k"]), 1_000, "KV did not answer a read");
 * ```
 */
export function withinMs<T>(work: Promise<T>, ms: number, what = "KV did not answer"): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms (timed out)`)), ms);
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}
