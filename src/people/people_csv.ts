/**
 * `people.csv`: the directory as a spreadsheet. Header
 * `phone_number,name,email,properties` (any order; `properties` may be left
 * out), UTF-8 with or without a BOM, RFC 4180 quoting as Excel and Python's
 * `csv` module write it, `properties` a JSON object. Exported the same way,
 * with CRLF line endings and minimal quoting, so an export imports back to
 * no change.
 *
 * @module
 */
import { parse } from "csv-parse/sync";
import { stringify } from "csv-stringify/sync";
import { checkPerson, type Person } from "./person.ts";
import {
  type DirectoryChange,
  type DirectoryChanges,
  directoryNumbers,
  listPeople,
  writeDirectory,
} from "./directory.ts";

/** The file's columns, in the order exports write them. */
export const PEOPLE_COLUMNS = ["phone_number", "name", "email", "properties"] as const;

/** A row that was not imported, with its 1-based line and why. */
export interface RowProblem {
  line: number;
  reason: string;
}

/** What an import did (or, with `dryRun`, would do). */
export interface PeopleImportReport extends DirectoryChanges {
  /** Data rows read. */
  rows: number;
  invalid: RowProblem[];
  dryRun: boolean;
  /** Set when the import changed nothing on purpose, saying why. */
  refused?: string;
}

/** The checked rows of a file: people by number, and the rows that are not. */
export interface ParsedPeople {
  people: Map<string, { line: number; person: Person }>;
  invalid: RowProblem[];
  rows: number;
}

/**
 * Reads and checks every row, one at a time as the parser reads it (no
 * array of all records is built: a 100,000-row file would hold it all). A
 * number that appears twice is not imported from either row (which one is
 * meant cannot be known, and properties decide what a person may see), and
 * both lines say so. `file` is the file's bytes or its text.
 *
 * @example
 * ```ts
 * const { people, invalid } = parsePeopleCsv("phone_number,name,email\r\n+15551234567,Ada,ada@example.com\r\n", Date.now());
 * ```
 */
export function parsePeopleCsv(file: string | Uint8Array, now: number): ParsedPeople {
  const bytes = typeof file === "string" ? new TextEncoder().encode(file) : file;
  const people = new Map<string, { line: number; person: Person }>();
  const invalid: RowProblem[] = [];
  const firstLine = new Map<string, number>();
  const duplicated = new Set<string>();
  const lineAt = lineFinder(bytes);
  let header: string[] | undefined;
  let headerProblem: string | undefined;
  let endOfPrevious = 0;
  let rows = 0;

  function take(record: string[], line: number) {
    if (!header) {
      header = record.map((field) => field.trim().toLowerCase());
      headerProblem = problemOf(header);
      return;
    }
    rows++;
    if (headerProblem) return;
    if (record.length !== header.length) {
      invalid.push({ line, reason: `expected ${header.length} columns, found ${record.length}` });
      return;
    }
    const field = (name: string) => header!.includes(name) ? record[header!.indexOf(name)] : "";
    const checked = checkPerson({
      phone: field("phone_number"),
      name: field("name"),
      email: field("email"),
      properties: field("properties"),
    }, now);
    if ("problems" in checked) {
      return void invalid.push({ line, reason: checked.problems.join("; ") });
    }
    const seen = firstLine.get(checked.phone);
    if (seen === undefined) {
      firstLine.set(checked.phone, line);
      return void people.set(checked.phone, { line, person: checked.person });
    }
    invalid.push({ line, reason: `phone_number is also on line ${seen}: neither row is imported` });
    if (!duplicated.has(checked.phone)) {
      invalid.push({ line: seen, reason: `phone_number appears again on line ${line}` });
    }
    duplicated.add(checked.phone);
    people.delete(checked.phone);
  }

  try {
    parse(bytes, {
      bom: true,
      relax_column_count: true,
      skip_empty_lines: true,
      record_delimiter: ["\r\n", "\n", "\r"],
      // Each record is checked here and dropped (null): nothing accumulates.
      on_record: (record: string[], context: { bytes: number }) => {
        take(record, lineAt(endOfPrevious));
        endOfPrevious = context.bytes;
        return null;
      },
    });
  } catch (error) {
    const line = (error as { lines?: number }).lines ?? 0;
    const reason = `unreadable CSV: ${(error as Error).message.replace(/^Invalid .*?: /, "")}`;
    return { people: new Map(), invalid: [{ line, reason }], rows: 0 };
  }
  if (headerProblem || !header) {
    return {
      people: new Map(),
      invalid: [{ line: 1, reason: headerProblem ?? problemOf([])! }],
      rows,
    };
  }
  invalid.sort((a, b) => a.line - b.line);
  return { people, invalid, rows };
}

/** What is wrong with the header line, if anything. */
function problemOf(header: string[]): string | undefined {
  const missing = ["phone_number", "name", "email"].filter((c) => !header.includes(c));
  if (missing.length === 0) return undefined;
  const hint = header.length === 1 && header[0].includes(";")
    ? " (the file is separated by semicolons: save it as CSV UTF-8, comma delimited)"
    : "";
  return `the first line must be the header ${PEOPLE_COLUMNS.join(",")}` +
    ` (missing ${missing.join(", ")})${hint}`;
}

/**
 * The line a record starts on, from where the record before it ended (in
 * bytes, as csv-parse counts): its own count of lines goes wrong inside
 * quoted fields that hold CRLF.
 */
function lineFinder(bytes: Uint8Array): (endOfPrevious: number) => number {
  const starts = [0];
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] === 13 && bytes[i + 1] === 10) i++;
    if (bytes[i] === 10 || bytes[i] === 13) starts.push(i + 1);
  }
  return (offset) => {
    // Blank lines before the record are skipped, as the parser skipped them.
    while (offset < bytes.length && (bytes[offset] === 10 || bytes[offset] === 13)) offset++;
    let low = 0;
    let high = starts.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >> 1;
      if (starts[mid] <= offset) low = mid;
      else high = mid - 1;
    }
    return low + 1;
  };
}

/**
 * Imports a file into the directory: new numbers are added, listed ones
 * updated, unchanged ones left alone, so importing twice changes nothing.
 * With `replace`, numbers missing from the file are removed too, but only
 * when every row is valid (a bad row must not remove its person). With
 * `dryRun`, nothing is written and the report says what would be. `file`
 * is the file's bytes or its text.
 *
 * @example
 * ```ts
 * const report = await importPeopleCsv(kv, await Deno.readTextFile("people.csv"), { now: Date.now() });
 * ```
 */
export async function importPeopleCsv(
  kv: Deno.Kv,
  file: string | Uint8Array,
  options: { now: number; replace?: boolean; dryRun?: boolean },
): Promise<PeopleImportReport> {
  const parsed = parsePeopleCsv(file, options.now);
  const dryRun = options.dryRun ?? false;
  const base = { rows: parsed.rows, invalid: parsed.invalid, dryRun };
  const nothing = { added: 0, updated: 0, unchanged: 0, removed: 0, missing: 0 };
  if (options.replace && parsed.invalid.length > 0) {
    const refused =
      "--replace needs every row to be valid: fix the rows above; nothing was changed";
    return { ...base, ...nothing, refused };
  }
  const changes: DirectoryChange[] = [];
  for (const [phone, { person }] of parsed.people) changes.push([phone, person]);
  if (options.replace) {
    for await (const phone of directoryNumbers(kv)) {
      if (!parsed.people.has(phone)) changes.push([phone, null]);
    }
  }
  return { ...base, ...await writeDirectory(kv, changes, { dryRun }) };
}

/**
 * CSV lines for people (CRLF, minimal quoting as Python's `csv` writes it),
 * the header first when asked.
 *
 * @example
 * ```ts
 * peopleCsvLines([{ phone: "+15551234567", name: "Ada", email: "ada@example.com", updatedAt: 0 }], true);
 * // "phone_number,name,email,properties\r\n+15551234567,Ada,ada@example.com,\r\n"
 * ```
 */
export function peopleCsvLines(
  people: (Person & { phone: string })[],
  withHeader: boolean,
): string {
  const rows: string[][] = withHeader ? [[...PEOPLE_COLUMNS]] : [];
  for (const p of people) {
    rows.push([p.phone, p.name, p.email, p.properties ? JSON.stringify(p.properties) : ""]);
  }
  return rows.length === 0 ? "" : stringify(rows, {
    record_delimiter: "\r\n",
    // Python's QUOTE_MINIMAL also quotes fields holding a line break.
    quoted_match: /[\r\n]/,
  });
}

/**
 * The whole directory as `people.csv`, read page by page.
 *
 * @example
 * ```ts
 * await Deno.writeTextFile("people.csv", await exportPeopleCsv(kv));
 * ```
 */
export async function exportPeopleCsv(kv: Deno.Kv): Promise<string> {
  const parts = [peopleCsvLines([], true)];
  for await (const page of pages(kv)) parts.push(peopleCsvLines(page, false));
  return parts.join("");
}

/**
 * The same file as a byte stream, a page of people at a time, for
 * `GET /admin/people.csv`.
 */
export function exportPeopleCsvStream(kv: Deno.Kv): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  const reading = pages(kv);
  let headerSent = false;
  return new ReadableStream({
    async pull(controller) {
      if (!headerSent) {
        headerSent = true;
        return controller.enqueue(encoder.encode(peopleCsvLines([], true)));
      }
      const next = await reading.next();
      if (next.done) return controller.close();
      controller.enqueue(encoder.encode(peopleCsvLines(next.value, false)));
    },
    async cancel() {
      await reading.return(undefined);
    },
  });
}

async function* pages(kv: Deno.Kv): AsyncGenerator<(Person & { phone: string })[]> {
  let after: string | undefined;
  do {
    const page = await listPeople(kv, { limit: 500, after });
    if (page.people.length > 0) yield page.people;
    after = page.next;
  } while (after !== undefined);
}
