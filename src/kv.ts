/**
 * Opening Deno KV the same way for the service and for the tasks.
 *
 * @module
 */
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";

/** The KV file used when `DENO_KV_PATH` is unset, inside the project folder. */
export const DEFAULT_KV_PATH = fileURLToPath(new URL("../data/bridge.kv", import.meta.url));

/**
 * Where KV lives: `DENO_KV_URL` (KV Connect, e.g. a Deno Deploy database;
 * `DENO_KV_ACCESS_TOKEN` authenticates), else `DENO_KV_PATH`, else the
 * platform's KV on Deno Deploy, else {@linkcode DEFAULT_KV_PATH}.
 *
 * @example
 * ```ts
 * resolveKvLocation({ DENO_KV_PATH: ":memory:" }); // ":memory:"
 * ```
 */
export function resolveKvLocation(env: Record<string, string | undefined>): string | undefined {
  const url = env.DENO_KV_URL?.trim();
  if (url) return url;
  const path = env.DENO_KV_PATH?.trim();
  if (path) return path;
  return env.DENO_DEPLOY ? undefined : DEFAULT_KV_PATH;
}

/**
 * Opens KV at `location`, creating a local file's folder first, with
 * {@linkcode retryWhenLocked} around it.
 *
 * @example
 * ```ts
 * const kv = await openKv(resolveKvLocation(Deno.env.toObject()));
 * ```
 */
export async function openKv(location: string | undefined): Promise<Deno.Kv> {
  const isFile = location !== undefined && location !== ":memory:" && !/^https?:/.test(location);
  if (isFile) await Deno.mkdir(dirname(location), { recursive: true });
  return retryWhenLocked(await Deno.openKv(location));
}

/** A plain start-up message for a KV that would not open. */
export function kvOpenError(location: string | undefined, error: unknown): string {
  return `Cannot open the Deno KV database at ${location ?? "the platform default"}: ${
    (error as Error).message
  }\nSet DENO_KV_PATH to a writable file path (or :memory:), then start again.`;
}

const RETRIED = new Set(["get", "getMany", "set", "delete", "enqueue"]);
const LOCKED = /database is locked|SQLITE_BUSY/i;

/**
 * Wraps `kv` so that reads, writes and atomic commits that fail because the
 * local SQLite file is busy (several processes or handles on one
 * `DENO_KV_PATH`) are retried a few times. A commit that failed that way was
 * not applied, so trying again is safe.
 *
 * @example
 * ```ts
 * const kv = retryWhenLocked(await Deno.openKv("data/bridge.kv"));
 * ```
 */
export function retryWhenLocked(kv: Deno.Kv): Deno.Kv {
  return new Proxy(kv, {
    get(target, property) {
      const value = Reflect.get(target, property, target);
      if (property === "atomic") return () => retryingAtomic(target.atomic());
      if (typeof value !== "function") return value;
      if (RETRIED.has(property as string)) {
        return (...args: unknown[]) => whileLocked(() => value.apply(target, args));
      }
      return value.bind(target);
    },
  });
}

function retryingAtomic(op: Deno.AtomicOperation): Deno.AtomicOperation {
  const proxy: Deno.AtomicOperation = new Proxy(op, {
    get(target, property) {
      const value = Reflect.get(target, property, target);
      if (property === "commit") return () => whileLocked(() => target.commit());
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        const result = value.apply(target, args);
        return result === target ? proxy : result;
      };
    },
  });
  return proxy;
}

async function whileLocked<T>(step: () => Promise<T>): Promise<T> {
  for (let attempt = 1;; attempt++) {
    try {
      return await step();
    } catch (error) {
      if (attempt >= 8 || !LOCKED.test(String((error as Error)?.message))) throw error;
      await new Promise((resolve) => setTimeout(resolve, 5 * 2 ** attempt * Math.random()));
    }
  }
}

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
