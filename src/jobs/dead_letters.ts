/**
 * Dead letters: messages whose job ended without an answer, kept with their
 * story under `["dead_letters", MessageSid]` for as long as the message:
 * every failed attempt (first cause first, see `attempts.ts`), and the
 * apologies the user received for it.
 *
 * A retry puts the message back in line with that story. When the user was
 * told already, a retry that fails **the same way** (the same kind of
 * failure as the first cause: AYD again, Twilio again…) does not message
 * them again; one that fails another way gets that failure's reply, unless
 * it is word for word one they received for this message already. A retry
 * whose own answer went out in part still gets the notice that the rest was
 * lost. See `docs/dead-letters.md`.
 *
 * @module
 */
import {
  deadLetterKey,
  enqueueMessage,
  type InboundMessage,
  type JobBackend,
  type LaneTrigger,
  messageKey,
  type MessageRecord,
  numberKey,
  type NumberState,
} from "./jobs.ts";
import { failuresKey } from "./runner.ts";
import {
  type AttemptHistory,
  FAILURE_LABELS,
  type FailureKind,
  failureKindOf,
  firstCause,
} from "./attempts.ts";

/** A job that ended without answering its message. */
export interface DeadLetter {
  messageSid: string;
  phone: string;
  /** The summary: the first cause's text. */
  reason: string;
  /** Attempts over every run, retries included. */
  attempts: number;
  failedAt: number;
  /** When the message first arrived (absent in dead letters of earlier versions). */
  receivedAt?: number;
  /** Every failed attempt, first cause first (absent in dead letters of earlier versions). */
  history?: AttemptHistory;
  /**
   * The apologies the user received for this message, oldest first; empty:
   * none reached them. Absent in dead letters of earlier versions (not known).
   */
  told?: string[];
  /** How often it was retried from the dead letters before. */
  retries?: number;
}

/**
 * The dead letter of `record`, which failed for good at `failedAt`;
 * `delivered` is the apology that went out to the user in this run, if one
 * did. Its summary is the first cause of the record's history.
 *
 * @example
 * ```ts
 * const letter = deadLetterOf(record, record, Date.now(), "Sorry, something went wrong. Please try again.");
 * ```
 */
export function deadLetterOf(
  message: { messageSid: string; phone: string },
  record: MessageRecord | undefined,
  failedAt: number,
  delivered?: string,
): DeadLetter {
  const before = record?.retried;
  const told = [...(before?.told ?? [])];
  if (delivered !== undefined && !told.includes(delivered)) told.push(delivered);
  return {
    messageSid: message.messageSid,
    phone: message.phone,
    reason: firstCause(record?.history)?.error ?? record?.lastError ?? "unknown",
    attempts: (before?.attemptsBefore ?? 0) + (record?.attempt ?? 0),
    failedAt,
    receivedAt: before?.receivedAt ?? record?.receivedAt,
    history: record?.history,
    told,
    retries: before ? before.round : 0,
  };
}

/**
 * A dead letter's history; one of an earlier version, which kept only its
 * reason, gets that reason as its one note.
 *
 * @example
 * ```ts
 * historyOf(letter).notes[0].error; // the first cause
 * ```
 */
export function historyOf(letter: DeadLetter): AttemptHistory {
  if (letter.history && letter.history.notes.length > 0) return letter.history;
  const note = {
    round: letter.retries ?? 0,
    attempt: letter.attempts,
    at: letter.failedAt,
    kind: failureKindOf(letter.reason),
    error: letter.reason,
  };
  return { notes: [note], omitted: 0 };
}

/**
 * Whether the reply `text` to a failure of `kind` is not sent: the message
 * was retried from its dead letter, the user received an apology for it
 * already, nothing of this run's answer reached them, and it failed the
 * same way as the first cause or would tell them word for word what they
 * were told.
 *
 * @example
 * ```ts
 * if (apologyWithheld(record, "ayd", REPLIES.failure)) return finishQuietly();
 * ```
 */
export function apologyWithheld(record: MessageRecord, kind: FailureKind, text: string): boolean {
  const told = record.retried?.told ?? [];
  if (told.length === 0 || (record.sentParts ?? 0) > 0) return false;
  return kind === firstCause(record.history)?.kind || told.includes(text);
}

/**
 * Every dead letter, oldest first.
 *
 * @example
 * ```ts
 * for (const letter of await listDeadLetters(kv)) console.log(letter.messageSid, letter.reason);
 * ```
 */
export async function listDeadLetters(kv: Deno.Kv): Promise<DeadLetter[]> {
  const letters = await Array.fromAsync(kv.list<DeadLetter>({ prefix: ["dead_letters"] }));
  return letters.map((entry) => entry.value).sort((a, b) => a.failedAt - b.failedAt);
}

/**
 * The message records of `letters`, by `MessageSid` (absent: expired), read
 * ten at a time (a KV Connect server reads at most ten keys at once).
 *
 * @example
 * ```ts
 * const records = await recordsOf(kv, letters);
 * retryPlan(letters[0], records.get(letters[0].messageSid));
 * ```
 */
export async function recordsOf(
  kv: Deno.Kv,
  letters: readonly DeadLetter[],
): Promise<Map<string, MessageRecord>> {
  const records = new Map<string, MessageRecord>();
  for (let i = 0; i < letters.length; i += 10) {
    const keys = letters.slice(i, i + 10).map((letter) => messageKey(letter.messageSid));
    for (const entry of await kv.getMany<MessageRecord[]>(keys)) {
      if (entry.value) records.set(entry.value.messageSid, entry.value);
    }
  }
  return records;
}

/**
 * What retrying `letter` will do, for an operator about to press the
 * button: what is asked again, what the user has received, and what they
 * get if it fails again. `record` is its message's record (undefined:
 * expired, so it cannot be retried).
 *
 * @example
 * ```ts
 * retryPlan(letter, record);
 * // "Asks AYD again the question received at 2026-12-01 10:00:00 UTC. The user already received
 * //  the apology ("Sorry, something went wrong. Please try again."): if it fails the same way
 * //  (AYD again), they are not messaged again; …"
 * ```
 */
export function retryPlan(letter: DeadLetter, record: MessageRecord | undefined): string {
  if (!record) {
    return "Cannot be retried: its message is no longer stored (messages are kept 7 days).";
  }
  const received = utc(letter.receivedAt ?? record.retried?.receivedAt ?? record.receivedAt);
  const cause = firstCause(historyOf(letter));
  const what = record.refusal
    ? `Does not ask AYD (the number ${
      record.refusal.kind === "denied" ? "may not ask" : "was over its rate limit"
    }): sends the notice for the message received at ${received} only if none went out in its window`
    : isUnheardVoiceNote(record)
    ? `Transcribes the voice note received at ${received} again and asks AYD`
    : `Asks AYD again the ${
      record.transcript !== undefined ? "voice note's transcript" : "question"
    } received at ${received}${
      record.merged ? ` (${record.merged.length + 1} pieces joined)` : ""
    }`;
  const told = letter.told;
  const success = "if it succeeds, they get the answer.";
  if (told === undefined) {
    return `${what}. This dead letter, kept by an earlier version, does not say whether the ` +
      `user was told: if it fails, they get an apology; ${success}`;
  }
  if (told.length === 0) {
    return `${what}. No apology reached the user: if it fails, they get one; ${success}`;
  }
  const how = cause ? ` (${FAILURE_LABELS[cause.kind]} again)` : "";
  return `${what}. The user already received the apology ("${told.at(-1)}"): if it fails the ` +
    `same way${how}, they are not messaged again; if it fails another way, they get that ` +
    `failure's reply unless they have it already; ${success}`;
}

function isUnheardVoiceNote(record: MessageRecord): boolean {
  return record.body.trim() === "" && record.transcript === undefined &&
    (record.media ?? []).some((medium) => medium.contentType.startsWith("audio/"));
}

/** A time as the console and the task show it. */
const utc = (at: number) => new Date(at).toISOString().replace("T", " ").slice(0, 19) + " UTC";

/** What retrying a dead letter came to. */
export type RetryOutcome = "queued" | "not_found" | "message_expired" | "changed";

/**
 * Puts a dead letter's message back at the end of its sender's lane, as if
 * it had just arrived (a fresh retry budget), with its story: what was
 * already made of it (a voice note's transcript, pieces joined), its
 * history, and the apologies its user received. Removes the dead letter.
 * A running bridge picks it up at once (same process) or at its next
 * sweep, within a minute.
 *
 * @example
 * ```ts
 * await retryDeadLetter(kv, "SM…", { backend: "kv-queue" }); // "queued"
 * ```
 */
export async function retryDeadLetter(
  kv: Deno.Kv,
  messageSid: string,
  options: { backend: JobBackend; now?: number },
): Promise<RetryOutcome> {
  const [letter, record] = await kv.getMany<[DeadLetter, MessageRecord]>([
    deadLetterKey(messageSid),
    messageKey(messageSid),
  ]);
  if (!letter.value) return "not_found";
  if (!record.value) return "message_expired";
  const message = retriedMessage(letter.value, record.value, options.now ?? Date.now());
  const number = await kv.get<NumberState>(numberKey(message.phone));
  const op = enqueueMessage(
    kv.atomic().check(letter).delete(deadLetterKey(messageSid)).delete(failuresKey(messageSid)),
    message,
    number,
  ).check(record);
  if (options.backend === "kv-queue") {
    op.enqueue({ kind: "lane", phone: message.phone } satisfies LaneTrigger);
  }
  return (await op.commit()).ok ? "queued" : "changed";
}

/** The message a retry enqueues: arrived `now`, with what it carries from before. */
function retriedMessage(
  letter: DeadLetter,
  record: MessageRecord,
  now: number,
): InboundMessage & Partial<MessageRecord> {
  const { messageSid, phone, body, numMedia, media, refusal } = record;
  return {
    messageSid,
    phone,
    body,
    numMedia,
    media,
    refusal,
    receivedAt: now,
    question: record.question,
    transcript: record.transcript,
    echo: record.echo && { ...record.echo, sent: true },
    merged: record.merged,
    // The retry's spans continue the message's trace.
    trace: record.trace,
    history: historyOf(letter),
    retried: {
      round: (letter.retries ?? 0) + 1,
      receivedAt: letter.receivedAt ?? record.retried?.receivedAt ?? record.receivedAt,
      attemptsBefore: letter.attempts,
      told: letter.told ?? [],
    },
  };
}
