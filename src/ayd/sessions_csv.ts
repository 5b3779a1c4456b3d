/**
 * `ayd_sessions.csv`, byte-compatible with the Flask app: Python's `csv`
 * "excel" dialect (CRLF, minimal quoting), header
 * `phone_number,session_id,expires_at,created_at`, `expires_at` as Python's
 * `str(float)` of Unix seconds, `created_at` as a naive local ISO time.
 *
 * @module
 */
import { stringify } from "csv-stringify/sync";
import type { AydSession } from "./sessions.ts";

/** The file's columns, in the old app's order. */
export const CSV_COLUMNS = ["phone_number", "session_id", "expires_at", "created_at"] as const;

/** A session as the CSV knows it; times are Unix milliseconds. */
export interface CsvSession extends AydSession {
  phone: string;
}

/**
 * Python's `str(float)` for a Unix time in seconds: the shortest text that
 * reads back as the same double (as JavaScript's), with `.0` when whole.
 *
 * @example
 * ```ts
 * pythonFloat(1753390365.7215357); // "1753390365.7215357"
 * pythonFloat(1753390365); // "1753390365.0"
 * ```
 */
export function pythonFloat(value: number): string {
  const text = String(value);
  return Number.isInteger(value) && Math.abs(value) < 1e16 ? `${text}.0` : text;
}

/**
 * Python's `datetime.fromtimestamp(t).isoformat()`: local time, no offset,
 * microseconds only when not zero.
 *
 * @example
 * ```ts
 * pythonIsoLocal(new Date(2025, 6, 25, 1, 12, 45, 123).getTime()); // "2025-07-25T01:12:45.123000"
 * ```
 */
export function pythonIsoLocal(ms: number): string {
  const d = new Date(ms);
  const pad = (n: number, width = 2) => String(n).padStart(width, "0");
  const base = `${pad(d.getFullYear(), 4)}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  const micros = Math.round((ms - Math.floor(ms / 1000) * 1000) * 1000);
  return micros === 0 ? base : `${base}.${pad(micros, 6)}`;
}

/** Reads a naive local ISO time (what `pythonIsoLocal` writes) into Unix ms. */
export function parseIsoLocal(text: string): number | undefined {
  const m = /^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?$/.exec(text.trim());
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac = ""] = m;
  const ms = new Date(+y, +mo - 1, +d, +h, +mi, +s).getTime();
  return Number.isNaN(ms) ? undefined : ms + Number(frac.padEnd(6, "0")) / 1000;
}

/**
 * One CSV line per session (CRLF, minimal quoting), the header first when
 * asked. Text kept from an imported file is written back as it was.
 */
export function csvLines(sessions: CsvSession[], withHeader: boolean): string {
  const rows: string[][] = withHeader ? [[...CSV_COLUMNS]] : [];
  for (const s of sessions) {
    rows.push([
      s.phone,
      s.token,
      s.source?.expiresAt ?? pythonFloat(s.expiresAt / 1000),
      s.source?.createdAt ?? pythonIsoLocal(s.createdAt),
    ]);
  }
  return rows.length === 0 ? "" : stringify(rows, {
    record_delimiter: "\r\n",
    // Python's QUOTE_MINIMAL also quotes fields holding a line break.
    quoted_match: /[\r\n]/,
  });
}

/** Every live session in KV, in phone-number order. */
export async function* liveSessions(kv: Deno.Kv, now: number): AsyncGenerator<CsvSession> {
  for await (const entry of kv.list<AydSession>({ prefix: ["sessions"] })) {
    if (entry.value.expiresAt > now) yield { ...entry.value, phone: entry.key[1] as string };
  }
}

/**
 * The whole file for the live sessions in KV.
 *
 * @example
 * ```ts
 * await Deno.writeTextFile("ayd_sessions.csv", await exportSessionsCsv(kv, { now: Date.now() }));
 * ```
 */
export async function exportSessionsCsv(kv: Deno.Kv, options: { now: number }): Promise<string> {
  return csvLines(await Array.fromAsync(liveSessions(kv, options.now)), true);
}

/**
 * The same file as a byte stream, written as sessions are read from KV, for
 * `GET /admin/sessions.csv`.
 */
export function exportSessionsCsvStream(
  kv: Deno.Kv,
  options: { now: number },
): ReadableStream<Uint8Array> {
  const sessions = liveSessions(kv, options.now);
  const encoder = new TextEncoder();
  let headerSent = false;
  return new ReadableStream({
    async pull(controller) {
      if (!headerSent) {
        headerSent = true;
        return controller.enqueue(encoder.encode(csvLines([], true)));
      }
      const next = await sessions.next();
      if (next.done) return controller.close();
      controller.enqueue(encoder.encode(csvLines([next.value], false)));
    },
    async cancel() {
      await sessions.return(undefined);
    },
  });
}
