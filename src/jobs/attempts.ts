/**
 * The story of a message that failed: each failed attempt's reason, which
 * service failed and in its own words, first cause first. Kept on the
 * message's record as it goes and copied into its dead letter, bounded (the
 * first {@linkcode HISTORY_FIRST} and the last {@linkcode HISTORY_LAST}
 * notes) so that a record retried for days cannot outgrow KV's value limit.
 *
 * @module
 */
import { maskNumbersIn } from "../log.ts";

/** What failed: the service, or the bridge itself. */
export type FailureKind = "ayd" | "twilio" | "transcription" | "storage" | "bridge";

/** How an operator reads each {@linkcode FailureKind}. */
export const FAILURE_LABELS: Record<FailureKind, string> = {
  ayd: "AYD",
  twilio: "Twilio",
  transcription: "transcription",
  storage: "storage",
  bridge: "the bridge",
};

/** One failed attempt. */
export interface AttemptNote {
  /** 0: the message's own run; n: its nth retry from the dead letters. */
  round: number;
  /** The attempt of that run that failed (1 = the first). */
  attempt: number;
  /** When it failed (Unix ms). */
  at: number;
  kind: FailureKind;
  /** The service's own error text, log-safe: no query strings, numbers masked. */
  error: string;
  /** A retry's failure the user was not told of: it failed the way they were told of already. */
  quiet?: boolean;
}

/** The notes kept, and how many were dropped between the first ones and the rest. */
export interface AttemptHistory {
  notes: AttemptNote[];
  /** Notes dropped after the first {@linkcode HISTORY_FIRST}. */
  omitted: number;
}

/** Notes always kept from the start of the story: its first cause among them. */
export const HISTORY_FIRST = 3;
/** Notes kept from its end. */
export const HISTORY_LAST = 7;

/**
 * `history` with `note` at its end; past {@linkcode HISTORY_FIRST} +
 * {@linkcode HISTORY_LAST} notes the oldest note after the first ones goes.
 *
 * @example
 * ```ts
 * const history = addNote(undefined, { round: 0, attempt: 1, at: Date.now(), kind: "ayd", error: "AydError: ask answered 500" });
 * ```
 */
export function addNote(history: AttemptHistory | undefined, note: AttemptNote): AttemptHistory {
  const notes = [...(history?.notes ?? []), { ...note, error: maskNumbersIn(note.error) }];
  let omitted = history?.omitted ?? 0;
  if (notes.length > HISTORY_FIRST + HISTORY_LAST) {
    notes.splice(HISTORY_FIRST, 1);
    omitted++;
  }
  return { notes, omitted };
}

/**
 * The first cause: the first failure of the story.
 *
 * @example
 * ```ts
 * firstCause(letter.history)?.kind; // "ayd"
 * ```
 */
export function firstCause(history: AttemptHistory | undefined): AttemptNote | undefined {
  return history?.notes[0];
}

/** What KV says when it refuses an operation itself (a value or commit over its limits). */
const KV_REFUSAL =
  /\b(value|key|mutation size|key size|read size) too large\b|too many (mutations|checks)/i;

/**
 * The kind of failure an error (or its description) is: by the error's
 * name (`AydError`, `TwilioSendError`, `SpeechError`, `MediaError`), KV's
 * refusals are storage, anything else is the bridge's own.
 *
 * @example
 * ```ts
 * failureKindOf(new TypeError("Value too large (max 65536 bytes)")); // "storage"
 * failureKindOf("AydError: ask answered 500"); // "ayd"
 * ```
 */
export function failureKindOf(error: unknown): FailureKind {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  if (/\bAydError\b/.test(text)) return "ayd";
  if (/\bTwilioSendError\b/.test(text)) return "twilio";
  if (/\b(SpeechError|MediaError)\b/.test(text)) return "transcription";
  if (KV_REFUSAL.test(text)) return "storage";
  return "bridge";
}
