/**
 * Writing `ayd_sessions.csv` to disk: atomically and owner-only (it holds
 * access tokens), on demand and on a schedule.
 *
 * @module
 */
import { dirname, join } from "node:path";
import { describeError, type Logger } from "../log.ts";
import { exportSessionsCsv } from "./sessions_csv.ts";

/**
 * Writes `text` to `path` through a temporary file in the same folder and a
 * rename, so readers never see half a file; mode 0600. With `overwrite:
 * false` an existing `path` is left as it was and the write fails with
 * `Deno.errors.AlreadyExists` (the file appears by a hard link, which never
 * replaces one).
 *
 * @example
 * ```ts
 * await writeFileAtomically("ayd_sessions.csv", csv, { overwrite: false });
 * ```
 */
export async function writeFileAtomically(
  path: string,
  text: string,
  options: { overwrite?: boolean } = {},
): Promise<void> {
  const temporary = join(dirname(path), `.${crypto.randomUUID()}.tmp`);
  try {
    await Deno.writeTextFile(temporary, text, { mode: 0o600 });
    await Deno.chmod(temporary, 0o600); // the umask may have widened it
    if (options.overwrite ?? true) return await Deno.rename(temporary, path);
    await linkNew(temporary, path);
  } catch (error) {
    await Deno.remove(temporary).catch(() => {});
    throw error;
  }
}

/** Moves `from` to `to` unless `to` exists; where links are not supported, checks, then renames. */
async function linkNew(from: string, to: string): Promise<void> {
  try {
    await Deno.link(from, to);
  } catch (error) {
    if (error instanceof Deno.errors.AlreadyExists) throw error;
    const exists = await Deno.lstat(to).then(() => true, () => false);
    if (exists) throw new Deno.errors.AlreadyExists(`${to} exists`);
    return await Deno.rename(from, to);
  }
  await Deno.remove(from);
}

/** Exports the live sessions in KV to `path`; resolves with how many. */
export async function exportSessionsFile(kv: Deno.Kv, path: string, now: number): Promise<number> {
  const csv = await exportSessionsCsv(kv, { now });
  await writeFileAtomically(path, csv);
  return csv.split("\r\n").length - 2;
}

/** A `Deno.cron`-shaped scheduler, injectable for tests. */
export type Cron = (name: string, schedule: string, handler: () => Promise<void>) => unknown;

/**
 * With `SESSIONS_CSV_PATH` set, registers a cron job that rewrites the file
 * every `everyMinutes`. Where the folder is not writable (Deno Deploy) it
 * warns once and registers nothing. Returns the export to run at shutdown,
 * or undefined.
 *
 * Synchronous, so that it can run at the top level of `main.ts` before any
 * `await`, as Deno Deploy requires of cron jobs.
 *
 * @example
 * ```ts
 * const exportNow = scheduleSessionsExport({ path, everyMinutes: 5, kv: () => kv, log, cron: Deno.cron });
 * ```
 */
export function scheduleSessionsExport(options: {
  path: string;
  everyMinutes: number;
  kv: () => Deno.Kv | undefined;
  log: Logger;
  cron: Cron;
}): (() => Promise<void>) | undefined {
  const { path, log } = options;
  const probe = join(dirname(path), `.${crypto.randomUUID()}.probe`);
  try {
    Deno.writeTextFileSync(probe, "");
    Deno.removeSync(probe);
  } catch (error) {
    log.warn("sessions_csv.not_writable", { path, reason: describeError(error) });
    return undefined;
  }
  const run = async () => {
    const kv = options.kv();
    if (!kv) return;
    try {
      const count = await exportSessionsFile(kv, path, Date.now());
      log.info("sessions_csv.exported", { path, sessions: count });
    } catch (error) {
      log.error("sessions_csv.failed", { path, reason: describeError(error) });
    }
  };
  options.cron("export ayd_sessions csv", cronEvery(options.everyMinutes), run);
  return run;
}

/** A cron schedule for every `minutes` minutes (hourly and daily beyond). */
export function cronEvery(minutes: number): string {
  if (minutes <= 1) return "* * * * *";
  if (minutes < 60) return `*/${minutes} * * * *`;
  const hours = Math.round(minutes / 60);
  return hours >= 24 ? "0 0 * * *" : `0 */${hours} * * *`;
}
