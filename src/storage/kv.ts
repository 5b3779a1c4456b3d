/**
 * Opening Deno KV the same way for the service and for the tasks: a local
 * file, `:memory:`, or a remote database over KV Connect.
 *
 * @module
 */
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";

/** The KV file used when `DENO_KV_PATH` is unset, inside the project folder. */
export const DEFAULT_KV_PATH = fileURLToPath(new URL("../../data/bridge.kv", import.meta.url));

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
 * {@linkcode retryWhenLocked} around it. A KV Connect server that cannot be
 * reached or answers 5xx is tried again a few times (it may be starting);
 * a refused token fails at once.
 *
 * @example
 * ```ts
 * const kv = await openKv(resolveKvLocation(Deno.env.toObject()));
 * ```
 */
export async function openKv(
  location: string | undefined,
  retry: { attempts: number; delayMs: number } = { attempts: 5, delayMs: 500 },
): Promise<Deno.Kv> {
  if (isRemote(location)) {
    for (let attempt = 1;; attempt++) {
      try {
        return retryWhenLocked(await Deno.openKv(location));
      } catch (error) {
        const refused = /status 40[13]/.test(String((error as Error)?.message));
        if (refused || attempt >= retry.attempts) throw error;
        await new Promise((resolve) => setTimeout(resolve, retry.delayMs * 2 ** (attempt - 1)));
      }
    }
  }
  const isFile = location !== undefined && location !== ":memory:";
  if (isFile) await Deno.mkdir(dirname(location), { recursive: true });
  return retryWhenLocked(await Deno.openKv(location));
}

/** Whether `location` is a KV Connect URL (a remote database). */
export function isRemote(location: string | undefined): location is string {
  return location !== undefined && /^https?:/i.test(location);
}

/** `location` fit for a log or an error: a URL without credentials or query. */
export function describeKvLocation(location: string | undefined): string {
  if (location === undefined) return "the platform's KV";
  if (!isRemote(location)) return location;
  const url = new URL(location);
  url.username = url.password = url.search = "";
  return url.href;
}

/** A plain start-up message for a KV that would not open. */
export function kvOpenError(location: string | undefined, error: unknown): string {
  const reason = String((error as Error)?.message ?? error).replace(/\?[^\s'"]*/g, "");
  if (isRemote(location)) {
    const fix = /status 40[13]/.test(reason)
      ? "The server refused the access token: check DENO_KV_ACCESS_TOKEN (the --access-token " +
        "the denokv server was started with)."
      : "Check DENO_KV_URL (is the server up and reachable from here?) and DENO_KV_ACCESS_TOKEN.";
    return `Cannot open the KV Connect database at ${
      describeKvLocation(location)
    }: ${reason}\n${fix}`;
  }
  return `Cannot open the Deno KV database at ${describeKvLocation(location)}: ${reason}\n` +
    "Set DENO_KV_PATH to a writable file path (or :memory:), then start again.";
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
