/**
 * `ayd_sessions.csv`, byte-compatible with the Flask app: Python's `csv`
 * "excel" dialect (CRLF, minimal quoting), header
 * `phone_number,session_id,expires_at,created_at`, `expires_at` as Python's
 * `str(float)` of Unix seconds, `created_at` as a naive local ISO time.
 *
 * @module
 */
import { parse } from "csv-parse/sync";
import { stringify } from "csv-stringify/sync";
import { expireAt } from "../storage/mod.ts";
import { type AydSession, sessionKey } from "./sessions.ts";

/** The file's columns, in the old app's order. */
export const CSV_COLUMNS = ["phone_number", "session_id", "expires_at", "created_at"] as const;

/** A session as the CSV knows it; times are Unix milliseconds. */
export interface CsvSession extends AydSession {
  phone: string;
}

/** What an import did; `invalid` carries 1-based line numbers. */
export interface ImportReport {
  imported: number;
  expired: number;
  unchanged: number;
  /** Rows of a number that appears again with a later expiry. */
  superseded: number;
  invalid: { line: number; reason: string }[];
}

const E164 = /^\+[1-9]\d{6,14}$/;

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

/**
 * Imports an old app's file into KV. Expired and malformed rows are skipped
 * (malformed ones reported with their line), the latest expiry wins for a
 * number that appears twice, and a session already in KV that is as new or
 * newer is kept. Importing the same file twice changes nothing.
 *
 * @example
 * ```ts
 * const report = await importSessionsCsv(kv, await Deno.readTextFile("ayd_sessions.csv"), { now: Date.now() });
 * ```
 */
export async function importSessionsCsv(
  kv: Deno.Kv,
  text: string,
  options: { now: number },
): Promise<ImportReport> {
  const report: ImportReport = {
    imported: 0,
    expired: 0,
    unchanged: 0,
    superseded: 0,
    invalid: [],
  };
  let records: { record: string[]; info: { lines: number } }[];
  try {
    records = parse(text, {
      bom: true,
      info: true,
      relax_column_count: true,
      skip_empty_lines: true,
      record_delimiter: ["\r\n", "\n", "\r"],
    }) as unknown as typeof records; // `info: true` wraps each record
  } catch (error) {
    const line = (error as { lines?: number }).lines ?? 0;
    report.invalid.push({ line, reason: `unreadable CSV: ${(error as Error).message}` });
    return report;
  }
  // The old app could lose its header line; then the first row is data.
  let columns: readonly string[] = CSV_COLUMNS;
  const first = records[0]?.record.map((f) => f.trim().toLowerCase());
  if (first && CSV_COLUMNS.every((c) => first.includes(c))) {
    columns = first;
    records = records.slice(1);
  }

  const best = new Map<string, CsvSession>();
  for (const { record, info } of records) {
    const row = readRow(record, columns, info.lines);
    if ("reason" in row) {
      report.invalid.push(row);
    } else if (row.expiresAt <= options.now) {
      report.expired++;
    } else {
      const seen = best.get(row.phone);
      if (seen) report.superseded++;
      if (!seen || row.expiresAt > seen.expiresAt) best.set(row.phone, row);
    }
  }

  for (const session of best.values()) {
    const outcome = await store(kv, session, options.now);
    report[outcome]++;
  }
  return report;
}

function readRow(
  record: string[],
  columns: readonly string[],
  line: number,
): CsvSession | { line: number; reason: string } {
  if (record.length !== columns.length) {
    return { line, reason: `expected ${columns.length} columns, found ${record.length}` };
  }
  const field = (name: string) => record[columns.indexOf(name)].trim();
  const phone = field("phone_number").replace(/^whatsapp:/, "");
  if (!E164.test(phone)) return { line, reason: "phone_number is not +E164" };
  const token = field("session_id");
  if (token === "") return { line, reason: "session_id is empty" };
  const expiresText = field("expires_at");
  const seconds = Number(expiresText);
  if (expiresText === "" || !Number.isFinite(seconds)) {
    return { line, reason: "expires_at is not a number" };
  }
  const createdText = field("created_at");
  const createdAt = parseIsoLocal(createdText);
  return {
    phone,
    token,
    expiresAt: seconds * 1000,
    createdAt: createdAt ?? seconds * 1000 - 7 * 86_400_000,
    source: {
      expiresAt: expiresText,
      createdAt: createdAt === undefined ? undefined : createdText,
    },
  };
}

async function store(
  kv: Deno.Kv,
  session: CsvSession,
  now: number,
): Promise<"imported" | "unchanged"> {
  const { phone, ...value } = session;
  for (let attempt = 0; attempt < 5; attempt++) {
    const current = await kv.get<AydSession>(sessionKey(phone));
    const live = current.value && current.value.expiresAt > now ? current.value : undefined;
    if (live && live.expiresAt >= value.expiresAt) return "unchanged";
    const op = kv.atomic().check(current).set(sessionKey(phone), value);
    const result = await expireAt(op, sessionKey(phone), value.expiresAt).commit();
    if (result.ok) return "imported";
  }
  return "unchanged";
}
