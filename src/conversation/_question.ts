/**
 * What a message asks, before it is asked: a voice note heard (its transcript
 * made once, saved, and echoed to the person), and a question typed in
 * pieces joined into one. Private helper of `handler.ts`.
 *
 * @module
 */
import {
  expiresAtOf,
  type InboundMedium,
  type Lease,
  messageKey,
  type MessageRecord,
  placeOf,
  questionOf,
  queueKey,
  queuePrefix,
} from "../jobs/mod.ts";
import { describeError, type Logger, maskPhone } from "../log.ts";
import { expireAt } from "../storage/mod.ts";
import { MediaError, transcriptEcho, type WhatsAppSender } from "../whatsapp/mod.ts";
import { parseCommand } from "./commands.ts";
import { REPLIES } from "./_replies.ts";

/** Turns a voice note into text: fetches the medium and transcribes it. */
export type Hear = (medium: InboundMedium, signal: AbortSignal) => Promise<string>;

/** What preparing a question needs. */
export interface QuestionDeps {
  kv: Deno.Kv;
  sender: WhatsAppSender;
  log: Logger;
  /** Unset: voice notes get the "text only" reply, as before transcription existed. */
  hear?: Hear;
  /** How long a voice note may take to be fetched and transcribed. */
  hearTimeoutMs: number;
  /** Pieces that arrive within this of the previous one are joined; 0 = never. */
  mergeWindowMs: number;
  maxSmsChars: number;
  now: () => number;
  /** Waits `ms`; tests pass a clock of their own. */
  sleep?: (ms: number) => Promise<void>;
}

/** What preparing came to. */
export type Prepared =
  /** Ask `record` (its `question` set), with `extra` in the commit that starts asking. */
  | { record: MessageRecord; extra: (op: Deno.AtomicOperation) => Deno.AtomicOperation }
  /** The voice note could not be heard: reply `text`; `failure` set when it is a dead letter. */
  | { reply: string; failure?: string; transient: boolean; reason: string }
  | "lost";

/** Pieces joined into one question at most, and the longest a join may wait. */
const MAX_PIECES = 10;
const MAX_WAIT_FACTOR = 4;

/** The first audio medium of a message that has no text of its own. */
export function voiceNoteOf(record: MessageRecord): InboundMedium | undefined {
  if (record.refusal || record.body.trim() !== "") return undefined;
  return record.media?.find((medium) => medium.contentType.startsWith("audio/"));
}

/**
 * Prepares the question of `head`, the message at the head of its lane, not
 * asked yet: waits for pieces typed after it (each within the merge window
 * of the one before), hears the voice notes among them, echoes each
 * transcript, and returns the head with its question and the writes that
 * mark the joined pieces answered by it.
 *
 * @example
 * ```ts
 * const prepared = await prepareQuestion(deps, lease, record, save);
 * ```
 */
export async function prepareQuestion(
  deps: QuestionDeps,
  lease: Lease,
  head: MessageRecord,
  save: (record: MessageRecord) => Promise<boolean>,
): Promise<Prepared> {
  // The head's voice note is heard while the window waits for its pieces:
  // the window then costs a voice note nothing beyond the transcription.
  const headHeard = hear(deps, lease, head, save);
  headHeard.catch(() => {}); // awaited below; handled here should gathering throw first
  const pieces = gathers(deps, head) ? await gather(deps, head) : [head];
  const heard: MessageRecord[] = [];
  const heardNow = new Set<string>();
  for (const [i, piece] of pieces.entries()) {
    const result = await (i === 0 ? headHeard : hear(deps, lease, piece, save));
    if (result === "lost") return "lost";
    if ("reply" in result) {
      // The head's own failure is its reply; a later piece's stays for its own turn.
      if (i === 0) return result;
      break;
    }
    heard.push(result.record);
    if (result.now) heardNow.add(piece.messageSid);
  }
  for (const piece of heard) {
    if (!lease.held()) return "lost";
    await echo(deps, piece, !heardNow.has(piece.messageSid));
  }
  const [first, ...joined] = heard;
  const question = heard.map((piece) => questionOf(piece)).join("\n");
  const record: MessageRecord = {
    ...first,
    question: question === first.body ? undefined : question,
    merged: joined.length > 0 ? joined.map((piece) => piece.messageSid) : undefined,
    echo: first.echo && { ...first.echo, sent: true },
  };
  if (joined.length > 0) {
    deps.log.info("question.joined", {
      message_sid: head.messageSid,
      from: maskPhone(head.phone),
      pieces: heard.length,
    });
  }
  return {
    record,
    extra(op) {
      for (const piece of joined) {
        const key = messageKey(piece.messageSid);
        const done: MessageRecord = {
          ...piece,
          state: "answered",
          outcome: "merged",
          mergedInto: head.messageSid,
          echo: piece.echo && { ...piece.echo, sent: true },
          savedAt: deps.now(),
        };
        expireAt(op.set(key, done), key, expiresAtOf(piece));
        op.delete(queueKey(piece.phone, placeOf(piece), piece.messageSid));
      }
      return op;
    },
  };
}

/**
 * Whether preparing `head` waits (for the pieces typed after it, or for its
 * transcript): time in which AYD's side can get ready.
 */
export function waitsBeforeAsking(deps: QuestionDeps, head: MessageRecord): boolean {
  const toHear = deps.hear !== undefined && voiceNoteOf(head) !== undefined &&
    head.transcript === undefined;
  return toHear || gathers(deps, head);
}

/** Whether `head` waits for pieces: the window is on, and it is a fresh piece itself. */
function gathers(deps: QuestionDeps, head: MessageRecord): boolean {
  const fresh = head.attempt === 0 && !head.merged && !head.mergedInto;
  return deps.mergeWindowMs > 0 && fresh && joinable(deps, head);
}

/**
 * A message that may be a piece of a longer question: text that is not a
 * command, or a voice note that is (or was) heard. A medium without text
 * that cannot be heard (no `TRANSCRIBE_URL`, a photo, a sticker) has no
 * words to add: it keeps its own turn and its own reply.
 */
function joinable(deps: Pick<QuestionDeps, "hear">, record: MessageRecord): boolean {
  if (record.refusal || record.state !== "queued" || record.attempt > 0) return false;
  if (record.body.trim() !== "") return !parseCommand(record.body);
  if (voiceNoteOf(record) === undefined) return false;
  return record.transcript !== undefined || deps.hear !== undefined;
}

/**
 * The head and the pieces that follow it: each arrived within the window of
 * the one before, none a command or refused. Waits until the window after
 * the last piece has passed (at most a few windows in all).
 */
async function gather(deps: QuestionDeps, head: MessageRecord): Promise<MessageRecord[]> {
  const sleep = deps.sleep ?? ((ms: number) => new Promise((r) => setTimeout(r, ms)));
  const deadline = deps.now() + deps.mergeWindowMs * MAX_WAIT_FACTOR;
  let pieces = [head];
  while (true) {
    const last = pieces.at(-1)!;
    const wait = Math.min(last.receivedAt + deps.mergeWindowMs, deadline) - deps.now();
    if (wait > 0) await sleep(wait);
    const next = await followers(deps, head);
    if (next.length + 1 <= pieces.length || deps.now() >= deadline) {
      return [head, ...next];
    }
    pieces = [head, ...next];
  }
}

/** The messages after `head` in its lane that join it, in order. */
async function followers(deps: QuestionDeps, head: MessageRecord) {
  const { kv, mergeWindowMs: windowMs } = deps;
  const entries = await Array.fromAsync(
    kv.list<string>({ prefix: queuePrefix(head.phone) }, { limit: MAX_PIECES }),
  );
  const sids = entries.map((entry) => entry.value).filter((sid) => sid !== head.messageSid);
  const records: MessageRecord[] = [];
  // A KV Connect server reads at most 10 keys at once.
  for (let i = 0; i < sids.length; i += 10) {
    const found = await kv.getMany<MessageRecord[]>(sids.slice(i, i + 10).map(messageKey));
    for (const entry of found) if (entry.value) records.push(entry.value);
  }
  const joined: MessageRecord[] = [];
  let previous = head;
  for (const record of records) {
    if (!joinable(deps, record) || record.receivedAt - previous.receivedAt > windowMs) break;
    joined.push(record);
    previous = record;
  }
  return joined;
}

/** A piece with its transcript when it is a voice note (made now, or before a restart). */
async function hear(
  deps: QuestionDeps,
  lease: Lease,
  piece: MessageRecord,
  save: (record: MessageRecord) => Promise<boolean>,
): Promise<{ record: MessageRecord; now: boolean } | Exclude<Prepared, { record: MessageRecord }>> {
  const medium = voiceNoteOf(piece);
  if (!medium || !deps.hear || piece.transcript !== undefined) {
    return { record: withQuestion(piece), now: false };
  }
  const fields = { message_sid: piece.messageSid, from: maskPhone(piece.phone) };
  const started = deps.now();
  let transcript: string;
  try {
    transcript = (await deps.hear(medium, AbortSignal.timeout(deps.hearTimeoutMs))).trim();
    if (transcript === "") throw new Error("the transcript is empty");
  } catch (error) {
    const reason = describeError(error);
    const kind = (error as { kind?: string }).kind ?? "empty";
    const transient = (error as { transient?: boolean }).transient === true;
    deps.log.warn("voice.failed", { ...fields, kind, reason });
    const tooLong = error instanceof MediaError && error.kind === "too_large";
    return {
      reply: tooLong ? REPLIES.voiceTooLong : REPLIES.voiceUnclear,
      failure: transient ? reason : undefined,
      transient,
      reason,
    };
  }
  deps.log.info("voice.heard", {
    ...fields,
    chars: transcript.length,
    duration_ms: deps.now() - started,
  });
  // Saved before anything is done with it: a restart never transcribes it again.
  const record = withQuestion({ ...piece, transcript, echo: { since: deps.now(), sent: false } });
  if (!lease.held() || !await save(record)) return "lost";
  return { record, now: true };
}

const withQuestion = (piece: MessageRecord): MessageRecord =>
  piece.transcript === undefined ? piece : { ...piece, question: piece.transcript };

/**
 * Shows the person what was understood (`🎤 _…_`) once: a run that finds the
 * echo started by an earlier one (`resumed`) asks Twilio's list first. Best
 * effort: a failed echo is logged and the question is asked anyway.
 */
async function echo(deps: QuestionDeps, piece: MessageRecord, resumed: boolean) {
  if (piece.transcript === undefined || !piece.echo || piece.echo.sent) return;
  const body = transcriptEcho(piece.transcript, deps.maxSmsChars);
  try {
    const found = resumed
      ? await deps.sender.findSent({ to: piece.phone, body, since: piece.echo.since })
        .catch(() => undefined)
      : undefined;
    if (!found) await deps.sender.send({ to: piece.phone, body });
  } catch (error) {
    deps.log.warn("voice.echo_failed", {
      message_sid: piece.messageSid,
      from: maskPhone(piece.phone),
      reason: describeError(error),
    });
  }
}
