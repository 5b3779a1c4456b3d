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
 * Opens KV at `location`, creating a local file's folder first.
 *
 * @example
 * ```ts
 * const kv = await openKv(resolveKvLocation(Deno.env.toObject()));
 * ```
 */
export async function openKv(location: string | undefined): Promise<Deno.Kv> {
  const isFile = location !== undefined && location !== ":memory:" && !/^https?:/.test(location);
  if (isFile) await Deno.mkdir(dirname(location), { recursive: true });
  return await Deno.openKv(location);
}

/** A plain start-up message for a KV that would not open. */
export function kvOpenError(location: string | undefined, error: unknown): string {
  return `Cannot open the Deno KV database at ${location ?? "the platform default"}: ${
    (error as Error).message
  }\nSet DENO_KV_PATH to a writable file path (or :memory:), then start again.`;
}
