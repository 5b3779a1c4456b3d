/**
 * The doctor's KV lines: the database opens, takes a write and gives it
 * back, and which job backend that KV implies. The KV stays open for the
 * public URL check, which looks for the running bridge's heartbeat in it.
 *
 * @module
 */
import type { Config } from "../config.ts";
import { describeKvLocation, isRemote, kvOpenError, openKv } from "../storage/mod.ts";
import type { CheckLine } from "./report.ts";

/** How long opening KV, and each read or write, may take (a KV Connect client waits forever). */
export const KV_CHECK_TIMEOUT_MS = 10_000;

const area = "KV";

/**
 * Opens KV and tries it; `kv` is the open database when it worked.
 *
 * @example
 * ```ts
 * const { lines, kv } = await checkKv(config);
 * kv?.close();
 * ```
 */
export async function checkKv(
  config: Config,
  deps: { timeoutMs?: number; backendForced?: boolean } = {},
): Promise<{ lines: CheckLine[]; kv?: Deno.Kv }> {
  const ms = deps.timeoutMs ?? KV_CHECK_TIMEOUT_MS;
  const where = describeKvLocation(config.kvPath);
  let kv: Deno.Kv;
  try {
    kv = await deadline(openKv(config.kvPath, { attempts: 2, delayMs: 250 }), ms, "opening it");
  } catch (error) {
    const [text, fix] = kvOpenError(config.kvPath, error).split("\n");
    return { lines: [{ status: "fail", area, text: text.replace(/^Cannot/, "cannot"), fix }] };
  }
  const key = ["doctor", crypto.randomUUID()];
  const value = { writtenAt: Date.now() };
  let step = "a write";
  try {
    await deadline(kv.set(key, value), ms, step);
    step = "a read";
    const read = await deadline(kv.get<typeof value>(key), ms, step);
    step = "a delete";
    await deadline(kv.delete(key), ms, step);
    if (read.value?.writtenAt !== value.writtenAt) {
      throw new Worded("a read gave back something other than what was written");
    }
  } catch (error) {
    kv.close();
    // As kvOpenError does: a URL's query is left out of what KV Connect's errors quote.
    const reason = String((error as Error)?.message ?? error).replace(/\?[^\s'"]*/g, "");
    return {
      lines: [{
        status: "fail",
        area,
        text: `${where} opens, but ${
          error instanceof Worded ? reason : `${step} failed: ${reason}`
        }`,
        fix: isRemote(config.kvPath)
          ? "check DENO_KV_URL and DENO_KV_ACCESS_TOKEN, and that the server is up"
          : "check that the file and its folder are writable and the disk is not full " +
            "(df -h), or set DENO_KV_PATH to another path",
      }],
    };
  }
  const memory = config.kvPath === ":memory:"
    ? " (in memory: nothing survives a restart, and no other process sees it)"
    : "";
  return {
    kv,
    lines: [
      { status: "pass", area, text: `${where} opens, takes a write and reads it back${memory}` },
      { status: "pass", area, text: backendText(config, deps.backendForced ?? false) },
    ],
  };
}

function backendText(config: Config, forced: boolean): string {
  const chosen = forced ? "set by JOB_BACKEND" : undefined;
  if (config.jobBackend === "kv-queue") {
    return `job backend kv-queue (${chosen ?? "a local KV: its own queue carries retries"})`;
  }
  const why = chosen ??
    (isRemote(config.kvPath) ? "KV Connect has no queues" : "Deno Deploy's KV has no queues");
  return `job backend outbox (${why}; the every-minute sweep and timers carry retries)`;
}

/** A failure already in the doctor's words: a step that took too long, a wrong read. */
class Worded extends Error {}

/** `work`, or a rejection naming `what` once `ms` pass. */
function deadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Worded(`${what} took over ${ms / 1000} s`)), ms);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}
