/**
 * Importing the Flask app's `ayd_sessions.csv` into KV: every bad row named
 * at its real line, nothing written while any row is bad (unless asked), and
 * a dry run that shows what would change.
 *
 * @module
 */
import { parse } from "csv-parse/sync";
import { expireAt } from "../storage/mod.ts";
import { type AydSession, sessionKey } from "./sessions.ts";
import { CSV_COLUMNS, type CsvSession, parseIsoLocal } from "./sessions_csv.ts";

/** Something about one row, at its 1-based line in the file. */
export interface LineNote {
  line: number;
  reason: string;
}

/**
 * What an import did, or would do when nothing was written: the counts are
 * the same either way.
 */
export interface ImportReport {
  imported: number;
  expired: number;
  /** Numbers whose session in KV is as new or newer, and stays. */
  unchanged: number;
  /** Rows of a number that appears again with a later expiry. */
  superseded: number;
  invalid: LineNote[];
  /** Values the import had to make up, such as an unreadable `created_at`. */
  replaced: LineNote[];
  /** False for a dry run, and when a row was bad and `skipInvalid` not set. */
  written: boolean;
}

/** How to import. */
export interface ImportOptions {
  now: number;
  /** Import the good rows even when some are bad (they are still reported). */
  skipInvalid?: boolean;
  /** Check the file and KV, write nothing. */
  dryRun?: boolean;
}

const E164 = /^\+[1-9]\d{6,14}$/;
const WEEK_MS = 7 * 86_400_000;

/**
 * Imports an old app's file into KV. Expired rows are skipped, the latest
 * expiry wins for a number that appears twice, and a session already in KV
 * that is as new or newer is kept, so importing twice changes nothing.
 * While any row is bad nothing is written, unless `skipInvalid`.
 *
 * @example
 * ```ts
 * const report = await importSessionsCsv(kv, await Deno.readTextFile("ayd_sessions.csv"), {
 *   now: Date.now(),
 * });
 * if (!report.written) console.error(report.invalid);
 * ```
 */
export async function importSessionsCsv(
  kv: Deno.Kv,
  text: string,
  options: ImportOptions,
): Promise<ImportReport> {
  const { sessions, invalid, replaced } = readSessionsCsv(text);
  const written = !options.dryRun && (invalid.length === 0 || options.skipInvalid === true);
  const report: ImportReport = {
    imported: 0,
    expired: 0,
    unchanged: 0,
    superseded: 0,
    invalid,
    replaced,
    written,
  };
  const best = new Map<string, CsvSession>();
  for (const row of sessions) {
    if (row.expiresAt <= options.now) {
      report.expired++;
      continue;
    }
    const seen = best.get(row.phone);
    if (seen) report.superseded++;
    if (!seen || row.expiresAt > seen.expiresAt) best.set(row.phone, row);
  }
  for (const session of best.values()) {
    report[await store(kv, session, options.now, written)]++;
  }
  return report;
}

/**
 * The sessions a file holds, each bad row with its line and why, and each
 * value that had to be made up. A file that lost its header line is read
 * in the old app's column order.
 *
 * @example
 * ```ts
 * const { sessions, invalid } = readSessionsCsv(text);
 * ```
 */
export function readSessionsCsv(
  text: string,
): { sessions: CsvSession[]; invalid: LineNote[]; replaced: LineNote[] } {
  const { records, broken } = parseRecords(text);
  const invalid = [...broken];
  const replaced: LineNote[] = [];
  let columns: readonly string[] = CSV_COLUMNS;
  const first = records[0]?.fields.map((f) => f.trim().toLowerCase());
  if (first && CSV_COLUMNS.every((c) => first.includes(c))) {
    columns = first;
    records.shift();
  }
  const sessions: CsvSession[] = [];
  for (const { fields, line } of records) {
    const row = readRow(fields, columns);
    if (typeof row === "string") {
      invalid.push({ line, reason: row });
      continue;
    }
    if (row.createdAt === undefined) {
      const given = fields[columns.indexOf("created_at")].trim();
      replaced.push({
        line,
        reason:
          `${given === "" ? "created_at is empty" : `created_at ${quote(given)} is not a time`}` +
          " like 2025-07-25T01:12:45: the session counts as created 7 days before it expires",
      });
    }
    sessions.push({ ...row, createdAt: row.createdAt ?? row.expiresAt - WEEK_MS });
  }
  invalid.sort((a, b) => a.line - b.line);
  return { sessions, invalid, replaced };
}

/**
 * The file's records, each with the line it starts on. A row the CSV
 * parser cannot read (an unclosed quote swallows the rest of the file) is
 * reported at its first line, and reading goes on at the next line.
 */
function parseRecords(text: string): {
  records: { fields: string[]; line: number }[];
  broken: LineNote[];
} {
  // csv-parse counts a CRLF inside quotes as two lines, so lines are counted here, by offset.
  const bytes = new TextEncoder().encode(text);
  const lineStarts = lineStartsOf(bytes);
  const lineAt = (offset: number) => {
    let [low, high] = [0, lineStarts.length]; // the count of line starts at or before offset
    while (low < high) {
      const middle = (low + high) >> 1;
      if (lineStarts[middle] <= offset) low = middle + 1;
      else high = middle;
    }
    return low;
  };
  const records: { fields: string[]; line: number }[] = [];
  const broken: LineNote[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    let end = offset; // where the last record read ends, line break included
    const base = offset;
    try {
      parse(bytes.subarray(base), {
        bom: base === 0,
        relax_column_count: true,
        skip_empty_lines: true,
        record_delimiter: ["\r\n", "\n", "\r"],
        on_record: (fields: string[], context) => {
          records.push({ fields, line: lineAt(skipLineBreaks(bytes, end)) });
          end = base + context.bytes;
          return null; // kept above, with its line
        },
      });
      return { records, broken };
    } catch (error) {
      const start = skipLineBreaks(bytes, end);
      broken.push({ line: lineAt(start), reason: unreadable(error) });
      offset = lineStarts.find((s) => s > start) ?? bytes.length;
    }
  }
  return { records, broken };
}

/** Where each line begins; CRLF, LF and CR each end a line. */
function lineStartsOf(bytes: Uint8Array): number[] {
  const starts = [0];
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] === 0x0d && bytes[i + 1] === 0x0a) i++;
    if (bytes[i] === 0x0a || bytes[i] === 0x0d) starts.push(i + 1);
  }
  return starts;
}

function skipLineBreaks(bytes: Uint8Array, offset: number): number {
  while (bytes[offset] === 0x0a || bytes[offset] === 0x0d) offset++;
  return offset;
}

function unreadable(error: unknown): string {
  const code = (error as { code?: string }).code;
  if (code === "CSV_QUOTE_NOT_CLOSED") {
    return "a quoted field starts on this line and its closing quote is missing";
  }
  if (code === "CSV_INVALID_CLOSING_QUOTE") {
    return 'a quote inside a field: quote the whole field and double the quote ("")';
  }
  return `unreadable CSV (${code ?? (error as Error).message})`;
}

/** A row as a session (`createdAt` undefined when unreadable), or why it is bad. */
function readRow(
  record: string[],
  columns: readonly string[],
): (Omit<CsvSession, "createdAt"> & { createdAt?: number }) | string {
  if (record.length !== columns.length) {
    return `expected ${columns.length} columns, found ${record.length}`;
  }
  const field = (name: string) => record[columns.indexOf(name)].trim();
  const phone = field("phone_number").replace(/^whatsapp:/, "");
  if (!E164.test(phone)) return "phone_number is not +E164";
  const token = field("session_id");
  if (token === "") return "session_id is empty";
  const expiresText = field("expires_at");
  const seconds = Number(expiresText);
  if (expiresText === "" || !Number.isFinite(seconds)) return "expires_at is not a number";
  const createdText = field("created_at");
  const createdAt = parseIsoLocal(createdText);
  return {
    phone,
    token,
    expiresAt: seconds * 1000,
    createdAt,
    source: {
      expiresAt: expiresText,
      createdAt: createdAt === undefined ? undefined : createdText,
    },
  };
}

/** A value for a message, cut short: the operator sees what the file holds. */
function quote(value: string): string {
  return JSON.stringify(value.length > 40 ? value.slice(0, 39) + "…" : value);
}

/** Stores `session` unless KV has one as new; with `write` false, only says which it would be. */
async function store(
  kv: Deno.Kv,
  session: CsvSession,
  now: number,
  write: boolean,
): Promise<"imported" | "unchanged"> {
  const { phone, ...value } = session;
  for (let attempt = 0; attempt < 5; attempt++) {
    const current = await kv.get<AydSession>(sessionKey(phone));
    const live = current.value && current.value.expiresAt > now ? current.value : undefined;
    if (live && live.expiresAt >= value.expiresAt) return "unchanged";
    if (!write) return "imported";
    const op = kv.atomic().check(current).set(sessionKey(phone), value);
    const result = await expireAt(op, sessionKey(phone), value.expiresAt).commit();
    if (result.ok) return "imported";
  }
  return "unchanged";
}
