/**
 * What the operator console shows, read from the KV the bridge already
 * keeps; nothing here is written on the message path. Numbers are masked
 * and message text is never read out.
 *
 * @module
 */
import {
  type AttemptHistory,
  type DeadLetter,
  historyOf,
  listDeadLetters,
  type MessageRecord,
  readStats,
  recordsOf,
  retryPlan,
  type Stats,
} from "../jobs/mod.ts";
import { maskNumbersIn, maskPhone } from "../log.ts";
import { withinMs } from "../storage/mod.ts";

/** One recent job as the console lists it: no text, the number masked. */
export interface JobRow {
  messageSid: string;
  from: string;
  receivedAt: number;
  state: MessageRecord["state"];
  outcome?: MessageRecord["outcome"];
  attempts: number;
  parts?: number;
  sentParts?: number;
  lastError?: string;
}

/** The newest jobs, and how much of KV was read to find them. */
export interface RecentJobs {
  jobs: JobRow[];
  /** Message records read; every one of them when `complete`. */
  scanned: number;
  complete: boolean;
}

/** Records read at most to find the newest jobs; beyond it the list says so. */
export const SCAN_LIMIT = 10_000;

/**
 * The newest `limit` jobs by arrival. Message records are keyed by
 * `MessageSid`, not by time, so this reads them (up to `SCAN_LIMIT`, a week
 * of traffic for most bridges) rather than adding an index to every webhook.
 *
 * @example
 * ```ts
 * const { jobs } = await recentJobs(kv, 50);
 * jobs[0].from; // "+*******4567"
 * ```
 */
export async function recentJobs(kv: Deno.Kv, limit: number): Promise<RecentJobs> {
  const newest: JobRow[] = [];
  let scanned = 0;
  for await (const { value } of kv.list<MessageRecord>({ prefix: ["messages"] })) {
    if (++scanned > SCAN_LIMIT) break;
    newest.push(toRow(value));
    if (newest.length > limit * 2) trim(newest, limit);
  }
  trim(newest, limit);
  return { jobs: newest, scanned: Math.min(scanned, SCAN_LIMIT), complete: scanned <= SCAN_LIMIT };
}

function trim(rows: JobRow[], limit: number) {
  rows.sort((a, b) => b.receivedAt - a.receivedAt);
  rows.length = Math.min(rows.length, limit);
}

function toRow(record: MessageRecord): JobRow {
  return {
    messageSid: record.messageSid,
    from: maskPhone(record.phone),
    receivedAt: record.receivedAt,
    state: record.state,
    outcome: record.outcome,
    attempts: record.attempt,
    parts: record.parts,
    sentParts: record.sentParts,
    lastError: record.lastError && maskNumbersIn(record.lastError),
  };
}

/** A dead letter as the console lists it: its story, and what a retry will do. */
export interface DeadLetterRow {
  messageSid: string;
  from: string;
  /** The first cause. */
  reason: string;
  attempts: number;
  failedAt: number;
  /** When the message first arrived, when known. */
  receivedAt?: number;
  history: AttemptHistory;
  /** What pressing "Retry" does, in words. */
  retryPlan: string;
  /** False when its message expired: it cannot be retried. */
  retryable: boolean;
}

/**
 * Every dead letter, newest first, numbers masked (reasons too: Twilio's
 * error messages can quote the recipient), with its history and what a
 * retry will do.
 *
 * @example
 * ```ts
 * const letters = await deadLetterRows(kv);
 * ```
 */
export async function deadLetterRows(kv: Deno.Kv): Promise<DeadLetterRow[]> {
  const letters = await listDeadLetters(kv);
  const records = await recordsOf(kv, letters);
  return letters.map((letter) => deadLetterRow(letter, records.get(letter.messageSid)))
    .sort((a, b) => b.failedAt - a.failedAt);
}

function deadLetterRow(letter: DeadLetter, record: MessageRecord | undefined): DeadLetterRow {
  const history = historyOf(letter);
  return {
    messageSid: letter.messageSid,
    from: maskPhone(letter.phone),
    reason: maskNumbersIn(letter.reason),
    attempts: letter.attempts,
    failedAt: letter.failedAt,
    receivedAt: letter.receivedAt,
    history: {
      ...history,
      notes: history.notes.map((note) => ({ ...note, error: maskNumbersIn(note.error) })),
    },
    retryPlan: retryPlan(letter, record),
    retryable: record !== undefined,
  };
}

/** The overview: health as `GET /health` sees it, and the admin API's stats. */
export type Overview =
  | { ok: true; stats: Stats }
  | { ok: false };

/**
 * Reads the overview; `ok: false` when KV fails or does not answer within
 * `waitMs` (a KV Connect server that is away is waited for without end by
 * Deno's client, and the page must still answer).
 *
 * @example
 * ```ts
 * const overview = await readOverview(kv, Date.now(), 1_000);
 * if (overview.ok) console.log(overview.stats.sessions);
 * ```
 */
export async function readOverview(kv: Deno.Kv, now: number, waitMs: number): Promise<Overview> {
  const reading = readStats(kv, now);
  reading.catch(() => {}); // still running when the wait is over
  try {
    return { ok: true, stats: await withinMs(reading, waitMs) };
  } catch {
    return { ok: false };
  }
}
