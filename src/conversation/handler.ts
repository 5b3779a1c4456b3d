/**
 * Answering one message: ask AYD in the sender's conversation, then deliver
 * the reply part by part — the first parts while AYD is still writing the
 * rest. Progress is written to KV under the lane's lease at every step, so a
 * restarted job neither asks again once it has the answer (or once part of it
 * went out) nor resends the parts that went out. In chat mode an ask that
 * was interrupted first looks for its answer in the chat's history. Every failure ends in a
 * message to the user, worded as the Flask app worded it.
 *
 * @module
 */
import { type AnswerDeps, type AskedIn, composeReply, REPLIES, warmUp } from "./answer.ts";
import { recoverAnswer } from "./_recover.ts";
import { type Backoff, backoffDelay } from "../backoff.ts";
import {
  addNote,
  apologyWithheld,
  count,
  deadLetterKey,
  deadLetterOf,
  type Disposition,
  expiresAtOf,
  type FailureKind,
  failuresKey,
  type Lease,
  MESSAGE_TTL_MS,
  type MessageHandler,
  messageKey,
  type MessageRecord,
  placeOf,
  queueKey,
  recordAnswerTime,
} from "../jobs/mod.ts";
import { sendEarly } from "./_early_sends.ts";
import { type Hear, prepareQuestion, type QuestionDeps, waitsBeforeAsking } from "./_question.ts";
import { describeError, maskPhone } from "../log.ts";
import { noTelemetry, type Telemetry } from "../telemetry/mod.ts";
import {
  loadFormatting,
  type PartMarkers,
  TwilioSendError,
  type WhatsAppSender,
} from "../whatsapp/mod.ts";
import { expireAt } from "../storage/mod.ts";

/** How long and how often a message's job may be retried. */
export interface JobRetry extends Backoff {
  /** From acceptance; no retry starts after it. */
  budgetMs: number;
  maxAttempts: number;
}

/** What the handler needs; all of it is passed in. */
export interface ConversationDeps extends AnswerDeps {
  kv: Deno.Kv;
  sender: WhatsAppSender;
  maxSmsChars: number;
  retry: JobRetry;
  /** Show "typing…" while the answer is prepared. */
  typingIndicator: boolean;
  partMarkers: PartMarkers;
  /** Turns a voice note into text; unset = voice notes get the "text only" reply. */
  hear?: Hear;
  /** How long hearing one voice note may take (default 60 s). */
  hearTimeoutMs?: number;
  /** Pieces typed within this of each other are asked as one question; 0 = never (default). */
  mergeWindowMs?: number;
  now?: () => number;
}

/** A message to send: text, or one chart. */
export interface ReplyPart {
  body?: string;
  mediaUrl?: string;
}

/** A reply saved and about to be delivered, with its parts as saved. */
interface Replying {
  record: MessageRecord;
  parts: Map<number, ReplyPart>;
}

/** The KV key of one part of a reply waiting to go out. */
export const replyPartKey = (sid: string, index: number): Deno.KvKey => [
  "reply_parts",
  sid,
  index,
];

/**
 * Creates the handler for the message at the head of a lane.
 *
 * @example
 * ```ts
 * const handle = createConversationHandler({
 *   kv, ayd: { mode: "session", sessions, ask }, directoryGates: true, deniedReply: "",
 *   sender, log, maxSmsChars: 1600, aydTimeoutMs: 60_000, retry, typingIndicator: true, partMarkers: "none",
 * });
 * ```
 */
export function createConversationHandler(deps: ConversationDeps): MessageHandler {
  const now = deps.now ?? Date.now;
  const { kv, log } = deps;
  const telemetry = deps.telemetry ?? noTelemetry;
  /** The person's wait for the first part of the reply, from the webhook on. */
  const firstPart = (record: MessageRecord, index: number) => {
    if (index === 0) telemetry.record("bridge.first_part", now() - record.receivedAt);
  };
  const question: QuestionDeps = {
    kv,
    sender: deps.sender,
    log,
    hear: deps.hear,
    hearTimeoutMs: deps.hearTimeoutMs ?? 60_000,
    mergeWindowMs: deps.mergeWindowMs ?? 0,
    maxSmsChars: deps.maxSmsChars,
    now,
  };

  /** Saves `record` under the lease, with any extra mutations. */
  const save = (lease: Lease, record: MessageRecord, extra = (op: Deno.AtomicOperation) => op) =>
    lease.commit((op) => {
      const key = messageKey(record.messageSid);
      // The same index entry as at acceptance: records of earlier versions get theirs.
      const expiresAt = expiresAtOf(record);
      return extra(expireAt(op.set(key, { ...record, expiresAt, savedAt: now() }), key, expiresAt));
    });

  /** A later attempt, if the budget allows one. */
  function retryAt(record: MessageRecord): number | undefined {
    if (record.attempt >= deps.retry.maxAttempts) return undefined;
    const at = now() + backoffDelay(deps.retry, record.attempt);
    return at <= record.receivedAt + deps.retry.budgetMs ? at : undefined;
  }

  /** `record` with its failed attempt `attempt` (default: its last) noted in its history. */
  const noted = (
    record: MessageRecord,
    kind: FailureKind,
    error: string,
    attempt = record.attempt,
  ) => ({
    ...record,
    history: addNote(record.history, {
      round: record.retried?.round ?? 0,
      attempt,
      at: now(),
      kind,
      error,
    }),
  });

  async function postpone(
    lease: Lease,
    record: MessageRecord,
    at: number,
    reason: string,
    failed: { kind: FailureKind; attempt: number },
  ) {
    const next = {
      ...noted(record, failed.kind, reason, failed.attempt),
      nextAttemptAt: at,
      lastError: reason,
    };
    if (!await save(lease, next)) return "lost";
    telemetry.event("job.retry_scheduled", {
      "job.attempt": record.attempt,
      "retry.delay_ms": at - now(),
    });
    log.warn("job.retry_scheduled", {
      ...fieldsOf(record),
      delay_ms: at - now(),
      reason,
    });
    return { retryAt: at };
  }

  /**
   * The commit that takes a message out of its lane, answered or as a dead
   * letter (`delivered`: the apology that reached the user in this run).
   */
  function ending(record: MessageRecord, failure: string | undefined, delivered?: string) {
    const parts = record.parts ?? 0;
    return (op: Deno.AtomicOperation) => {
      op.delete(queueKey(record.phone, placeOf(record), record.messageSid))
        .delete(failuresKey(record.messageSid));
      for (let i = 0; i < parts; i++) op.delete(replyPartKey(record.messageSid, i));
      if (failure === undefined) {
        if (record.outcome === "denied" || record.outcome === "rate_limited") return op;
        const waited = now() - record.receivedAt;
        return recordAnswerTime(count(op, "answered", now()), record.messageSid, waited, now());
      }
      count(op, "failed", now());
      const letter = deadLetterOf(record, record, now(), delivered);
      const key = deadLetterKey(record.messageSid);
      return expireAt(op.set(key, letter), key, now() + MESSAGE_TTL_MS);
    };
  }

  /**
   * Ends the job: answered, or failed with `failure` as a dead letter;
   * `delivered` is the apology that reached the user, `withheld` says the
   * user was not told again (see {@linkcode apologyWithheld}).
   */
  async function finish(
    lease: Lease,
    record: MessageRecord,
    failure: string | undefined,
    told: { delivered?: string; withheld?: boolean } = {},
  ): Promise<Disposition> {
    const final: MessageRecord = {
      ...record,
      state: failure === undefined ? "answered" : "failed",
      lastError: failure ?? record.lastError,
    };
    if (!await save(lease, final, ending(final, failure, told.delivered))) return "lost";
    if (final.state === "failed") {
      telemetry.event("job.dead_letter", { "job.attempt": final.attempt });
    }
    telemetry.count("bridge.answers", { outcome: final.outcome, state: final.state });
    (final.state === "failed" ? log.warn : log.info)("job.finished", {
      ...fieldsOf(final),
      state: final.state,
      outcome: final.outcome,
      reason: failure,
      apology_withheld: told.withheld,
    });
    return "done";
  }

  /**
   * A retried message that failed the way its user was told of already:
   * a dead letter again, its last note marked quiet, and no message.
   */
  function endQuietly(lease: Lease, record: MessageRecord, failure: string) {
    const notes = record.history?.notes ?? [];
    const last = notes.at(-1);
    const history = last &&
      { ...record.history!, notes: [...notes.slice(0, -1), { ...last, quiet: true }] };
    const quiet: MessageRecord = { ...record, outcome: "failed", history, apology: undefined };
    return finish(lease, quiet, failure, { withheld: true });
  }

  /**
   * Makes `text` the last part the user gets (after the `sent` parts already
   * sent), for delivery like any reply: an apology goes out once, even when
   * the job stops right after sending it.
   */
  async function replyWith(
    lease: Lease,
    record: MessageRecord,
    text: string,
    failure: string,
    options: { deadLetter?: boolean; kind: FailureKind; attempt?: number },
  ): Promise<Disposition | Replying> {
    const sent = record.sentParts ?? 0;
    // A voice note that could not be made out is answered, not a failure of the bridge.
    const deadLetter = options.deadLetter ?? true;
    if (deadLetter) {
      record = noted(record, options.kind, failure, options.attempt);
      if (apologyWithheld(record, options.kind, text)) return endQuietly(lease, record, failure);
    }
    const replying: MessageRecord = {
      ...record,
      state: "replying",
      parts: sent + 1,
      sentParts: sent,
      outcome: deadLetter ? "failed" : "not_understood",
      lastError: deadLetter ? failure : undefined,
      apology: deadLetter ? text : undefined,
    };
    const kept = await save(lease, replying, (op) => {
      // Parts after this one (of an answer that could not be delivered) go.
      for (let i = sent + 1; i < (record.parts ?? 0); i++) {
        op.delete(replyPartKey(record.messageSid, i));
      }
      return op.set(replyPartKey(record.messageSid, sent), { body: text } satisfies ReplyPart);
    });
    return kept ? { record: replying, parts: new Map([[sent, { body: text }]]) } : "lost";
  }

  /**
   * Whether part `index`, saved before a send that may have reached Twilio
   * when the last run stopped, did: asked of Twilio's Message list. A
   * failed look-up is logged and counts as not sent (the part is resent).
   */
  async function reachedTwilio(record: MessageRecord, part: ReplyPart, index: number) {
    const since = record.sendingSince ?? record.savedAt;
    if (since === undefined) return false;
    try {
      const sid = await deps.sender.findSent({
        to: record.phone,
        body: part.body,
        mediaUrls: part.mediaUrl ? [part.mediaUrl] : [],
        since,
      });
      if (sid) log.info("reply.recovered", { ...fieldsOf(record), part: index + 1 });
      return sid !== undefined;
    } catch (error) {
      log.warn("reply.lookup_failed", { ...fieldsOf(record), reason: describeError(error) });
      return false;
    }
  }

  /** An interrupted ask whose last early part was saved: did it go out? */
  async function resumeAsking(queued: MessageRecord): Promise<MessageRecord> {
    const sent = queued.sentParts ?? 0;
    const pending = await kv.get<ReplyPart>(replyPartKey(queued.messageSid, sent));
    if (pending.value && await reachedTwilio(queued, pending.value, sent)) {
      return { ...queued, sentParts: sent + 1 };
    }
    return queued;
  }

  /**
   * Chat mode: an interrupted ask whose answer AYD recorded in the chat's
   * history gets that answer, formatted as if it had streamed, instead of
   * a second ask. When parts of it went out already, they must be the first
   * parts of the recorded answer, and the rest follows; otherwise (or when
   * nothing is recorded) undefined.
   */
  async function fromHistory(
    lease: Lease,
    queued: MessageRecord,
  ): Promise<Disposition | Replying | undefined> {
    const text = await recoverAnswer(deps, queued, fieldsOf(queued));
    if (text === undefined) return undefined;
    const { createPartStream, labelPart, MARKER_ROOM, splitMessage } = await loadFormatting();
    const room = deps.partMarkers === "none" ? deps.maxSmsChars : deps.maxSmsChars - MARKER_ROOM;
    const stream = createPartStream(
      room,
      (error) => log.warn("format.fallback", { ...fieldsOf(queued), reason: describeError(error) }),
      { maxParts: MAX_REPLY_PARTS },
    );
    let texts = [...stream.push(text), ...stream.end()];
    // An answer whose Markdown formats to nothing gets the empty answer's wording, as when streamed.
    if (texts.length === 0) texts = splitMessage(REPLIES.empty, room);
    texts = limitParts(texts, room, splitMessage);
    const parts = texts.map((t, i) => ({ body: labelPart(t, i, texts.length, deps.partMarkers) }));
    const sent = queued.sentParts ?? 0;
    for (let i = 0; i < sent; i++) {
      const earlier = await kv.get<ReplyPart>(replyPartKey(queued.messageSid, i));
      if (
        i >= texts.length ||
        earlier.value?.body !== labelPart(texts[i], i, undefined, deps.partMarkers)
      ) {
        log.info("ask.not_recovered", {
          ...fieldsOf(queued),
          found: "answered",
          reason: "parts sent differ",
        });
        return undefined;
      }
    }
    const { askedIn: _, ...rest } = queued;
    const replying: MessageRecord = {
      ...rest,
      state: "replying",
      parts: parts.length,
      sentParts: sent,
      outcome: "answered",
      lastError: undefined,
    };
    const saved = await save(lease, replying, (op) => {
      for (let i = sent; i < parts.length; i++) {
        op.set(replyPartKey(queued.messageSid, i), parts[i]);
      }
      return op;
    });
    return saved ? { record: replying, parts: new Map(parts.map((part, i) => [i, part])) } : "lost";
  }

  async function ask(lease: Lease, queued: MessageRecord): Promise<Disposition | Replying> {
    if (queued.state === "asking") queued = await resumeAsking(queued);
    if (queued.state === "asking" && queued.askedIn) {
      const recovered = await fromHistory(lease, queued);
      if (recovered) return recovered;
    }
    const alreadySent = queued.sentParts ?? 0;
    if (queued.state === "asking" && alreadySent > 0) {
      // Stopped mid-stream: asking again would repeat the parts the user has.
      return replyWith(lease, queued, REPLIES.cutShort, `interrupted after ${alreadySent} parts`, {
        kind: "bridge",
      });
    }
    if (queued.state === "asking" && queued.attempt >= deps.retry.maxAttempts) {
      // Interrupted that often, the message itself may be what kills the process.
      return replyWith(lease, queued, REPLIES.failure, "interrupted too many times", {
        kind: "bridge",
      });
    }
    // "typing…" from the start: a question typed in pieces waits for its next piece.
    const stopTyping = showTyping(deps, queued);
    try {
      return await askNow(lease, queued);
    } finally {
      stopTyping();
    }
  }

  /** Prepares the question (pieces joined, voice notes heard), then asks it. */
  async function askNow(lease: Lease, queued: MessageRecord): Promise<Disposition | Replying> {
    let extra = (op: Deno.AtomicOperation) => op;
    if (queued.state === "queued") {
      // The merge window and the transcription wait anyway: AYD's side gets ready meanwhile.
      const warming = waitsBeforeAsking(question, queued) ? warmUp(deps, queued) : undefined;
      const prepared = await prepareQuestion(question, lease, queued, (next) => save(lease, next));
      await warming;
      if (prepared === "lost") return "lost";
      if ("reply" in prepared) {
        const at = prepared.transient ? retryAt(queued) : undefined;
        const heard = { kind: "transcription" as const, attempt: queued.attempt + 1 };
        if (at !== undefined) {
          return postpone(lease, { ...queued, attempt: heard.attempt }, at, prepared.reason, heard);
        }
        return replyWith(lease, queued, prepared.reply, prepared.failure ?? prepared.reason, {
          deadLetter: prepared.failure !== undefined,
          ...heard,
        });
      }
      queued = prepared.record;
      extra = prepared.extra;
    }
    // A new attempt asks afresh: where an earlier one asked is no longer its question's place.
    const { askedIn: _, ...fresh } = queued;
    const record: MessageRecord = { ...fresh, state: "asking", attempt: queued.attempt + 1 };
    if (!await save(lease, record, extra)) return "lost";
    log.info("job.started", { ...fieldsOf(record), queued_ms: now() - record.receivedAt });
    if (record.attempt === 1) telemetry.record("bridge.queue_delay", now() - record.receivedAt);

    const { createPartStream, labelPart, MARKER_ROOM, splitMessage } = await loadFormatting();
    const room = deps.partMarkers === "none" ? deps.maxSmsChars : deps.maxSmsChars - MARKER_ROOM;
    const stream = createPartStream(
      room,
      (error) => log.warn("format.fallback", { ...fieldsOf(record), reason: describeError(error) }),
      // One part past the limit is enough for limitParts to add the "answer cut" note.
      { maxParts: MAX_REPLY_PARTS },
    );
    const streamed: string[] = [];
    const early = sendEarly(record, {
      lease,
      sender: deps.sender,
      log,
      label: (text, index) => labelPart(text, index, undefined, deps.partMarkers),
      markers: deps.partMarkers,
      // The last part kept may need the "answer cut" note.
      limit: MAX_REPLY_PARTS - 1,
      save: (next, extra) => save(lease, next, (op) => (extra?.(op), op)),
      keepPart: (op, index, body) =>
        op.set(replyPartKey(record.messageSid, index), { body } satisfies ReplyPart),
      onSent: (index) => firstPart(record, index),
    });
    // Saved in turn with the counts of early parts, so that later saves keep it.
    const beforeAsk = (askedIn: AskedIn) => early.saveInTurn(() => ({ ...record, askedIn }));
    const reply = await composeReply(deps, record, fieldsOf(record), (delta) => {
      for (const part of stream.push(delta)) early.offer(part, streamed.push(part) - 1);
    }, beforeAsk);
    early.stop();
    if (reply.lost) return (await early.settled(), "lost");

    // The reply's record: a failure is noted in its history.
    let replied = record;
    if (reply.outcome === "failed") {
      const { sent, lost } = await early.settled();
      if (lost) return "lost";
      if (sent > 0) {
        // Asking again would repeat what the user already has.
        const cut = { ...record, sentParts: sent };
        return replyWith(
          lease,
          cut,
          REPLIES.cutShort,
          `answer cut after ${sent} parts: ${reply.reason}`,
          { kind: "ayd" },
        );
      }
      const asked = { kind: "ayd" as const, attempt: record.attempt };
      const at = reply.transient ? retryAt(record) : undefined;
      if (at !== undefined) {
        return postpone(lease, { ...record, state: "queued" }, at, reply.reason!, asked);
      }
      replied = noted(record, asked.kind, reply.reason!);
      if (apologyWithheld(replied, asked.kind, reply.text)) {
        // Parts kept for early sends that did not go out go with the job.
        return endQuietly(lease, { ...replied, parts: streamed.length }, reply.reason!);
      }
    }
    // An AYD answer was formatted as it streamed; every other reply is WhatsApp text.
    let texts = reply.outcome === "answered" ? [...streamed, ...stream.end()] : [];
    if (texts.length === 0) {
      texts = splitMessage(reply.outcome === "answered" ? REPLIES.empty : reply.text, room);
    }
    texts = limitParts(texts, room, splitMessage);
    const parts: ReplyPart[] = [
      ...texts.map((text, i) => ({ body: labelPart(text, i, texts.length, deps.partMarkers) })),
      // Charts follow the text they belong to.
      ...(reply.imageUrls ?? []).map((mediaUrl) => ({ mediaUrl })),
    ];
    const replying: MessageRecord = {
      ...replied,
      state: "replying",
      parts: parts.length,
      outcome: reply.outcome,
      lastError: reply.reason,
      apology: reply.outcome === "failed" ? reply.text : undefined,
    };
    // The answer is durable before the send under way (if any) ends, so a
    // crash now resumes the delivery instead of cutting the answer short.
    const unsent = early.sent();
    const saved = await early.saveInTurn(() => replying, (op) => {
      for (let i = unsent; i < parts.length; i++) {
        op.set(replyPartKey(record.messageSid, i), parts[i]);
      }
    });
    const { sent, lost, uncertainSince } = await early.settled();
    if (!saved || lost) return "lost";
    if (sent > 0) log.info("reply.streamed", { ...fieldsOf(record), parts: sent });
    return {
      record: { ...replying, sentParts: sent, sendingSince: uncertainSince },
      parts: new Map(parts.map((part, i) => [i, part])),
    };
  }

  /** The parts of a reply as saved: known to the run that saved them, else read back. */
  async function savedParts(sid: string): Promise<Map<number, ReplyPart>> {
    const parts = new Map<number, ReplyPart>();
    for await (const entry of kv.list<ReplyPart>({ prefix: ["reply_parts", sid] })) {
      parts.set(entry.key[2] as number, entry.value);
    }
    return parts;
  }

  async function deliver(lease: Lease, reply: Replying, resumed: boolean): Promise<Disposition> {
    const { record: replying, parts } = reply;
    let record = replying;
    const total = record.parts ?? parts.size;
    for (let index = record.sentParts ?? 0; index < total; index++) {
      if (!lease.held()) return "lost";
      const part = parts.get(index);
      try {
        if (!part) throw new Error(`part ${index + 1} of the reply is missing from KV`);
        // The first part of a resumed delivery may have gone out as the last
        // run stopped, and one whose send failed uncertainly may have too.
        const unsure = index === (replying.sentParts ?? 0) &&
          (resumed || record.sendingSince !== undefined);
        if (!unsure || !await reachedTwilio(record, part, index)) {
          const { body, mediaUrl } = part;
          await deps.sender.send({ to: record.phone, body, mediaUrls: mediaUrl ? [mediaUrl] : [] });
          firstPart(record, index);
        }
      } catch (error) {
        const reason = describeError(error);
        log.error("reply.failed", { ...fieldsOf(record), part: index + 1, reason });
        const transient = error instanceof TwilioSendError && error.transient;
        const sending = {
          kind: part ? "twilio" as const : "storage" as const,
          attempt: record.attempt,
        };
        const at = transient ? retryAt(record) : undefined;
        if (at !== undefined) {
          const sendingSince = error instanceof TwilioSendError ? error.uncertainSince : undefined;
          return postpone(
            lease,
            { ...record, attempt: record.attempt + 1, sendingSince },
            at,
            reason,
            sending,
          );
        }
        if (record.outcome === "failed") {
          // The apology itself did not go out: noted after the cause it apologised for.
          return finish(lease, noted(record, sending.kind, reason), record.lastError ?? reason);
        }
        // The apology goes the way of any reply: saved, then sent once.
        const apology = await replyWith(
          lease,
          { ...record, sentParts: index },
          REPLIES.failure,
          reason,
          sending,
        );
        return typeof apology === "object" && "record" in apology
          ? deliver(lease, apology, false)
          : apology;
      }
      record = { ...record, sentParts: index + 1, sendingSince: undefined };
      // The last count goes with the finishing commit; a crash before it is
      // found out by the look-up on resume.
      if (index + 1 < total && !await save(lease, record)) return "lost";
    }
    log.info("reply.sent", { ...fieldsOf(record), parts: total, outcome: record.outcome });
    if (record.outcome !== "failed") return finish(lease, record, undefined);
    return finish(lease, record, record.lastError, { delivered: record.apology });
  }

  return withSpans(telemetry, {
    async handle(record, lease) {
      if (record.state === "replying") {
        return deliver(lease, { record, parts: await savedParts(record.messageSid) }, true);
      }
      const asked = await ask(lease, record);
      return typeof asked === "object" && "record" in asked ? deliver(lease, asked, false) : asked;
    },
    async abandon(item, reason, lease, kind) {
      const record = item.record && noted(item.record, kind, reason);
      const fields = { message_sid: item.messageSid, from: maskPhone(item.phone) };
      const letter = record ? deadLetterOf(item, record, now()) : {
        ...deadLetterOf(item, undefined, now()),
        reason,
        history: addNote(undefined, { round: 0, attempt: 0, at: now(), kind, error: reason }),
      };
      const key = deadLetterKey(item.messageSid);
      const takeOut = (op: Deno.AtomicOperation) => {
        op.delete(item.queueKey).delete(failuresKey(item.messageSid));
        for (let i = 0; i < (record?.parts ?? 0); i++) op.delete(replyPartKey(item.messageSid, i));
        return expireAt(count(op, "failed", now()).set(key, letter), key, now() + MESSAGE_TTL_MS);
      };
      const failed = record && { ...record, state: "failed" as const, outcome: "failed" as const };
      // The record itself may be what cannot be written (a value over KV's limit).
      const out = await lease.commit((op) =>
        failed ? takeOut(op).set(messageKey(item.messageSid), failed) : takeOut(op)
      ).catch(() => lease.commit(takeOut));
      if (!out) return;
      telemetry.event("job.dead_letter", { "job.attempt": letter.attempts });
      telemetry.count("bridge.answers", { outcome: "failed", state: "failed" });
      const withheld = record !== undefined && apologyWithheld(record, kind, REPLIES.failure);
      log.warn("job.abandoned", { ...fields, reason, apology_withheld: withheld || undefined });
      // Sent after the commit, so it goes out at most once.
      if (record?.refusal || withheld || !lease.held()) return;
      const to = { phone: item.phone, messageSid: item.messageSid };
      if (await notify(deps, to, REPLIES.failure)) {
        // Best effort, unless retried meanwhile: a retry that fails again then knows they were told.
        const told = { ...letter, told: [...new Set([...letter.told ?? [], REPLIES.failure])] };
        const current = await kv.get(key).catch(() => undefined);
        if (current?.value) {
          await lease.commit((op) => op.check(current).set(key, told)).catch(() => false);
        }
      }
    },
  });
}

/**
 * Runs each job, and each dead letter, in a span that is a child of the
 * webhook's, whichever process or restart runs it.
 */
function withSpans(telemetry: Telemetry, handler: MessageHandler): MessageHandler {
  if (!telemetry.enabled) return handler;
  return {
    handle: (record, lease) =>
      telemetry.span("message.job", {
        "job.state": record.state,
        "job.attempt": record.attempt,
        "job.merged": record.merged?.length,
      }, async (span) => {
        const disposition = await handler.handle(record, lease);
        span.set({ "job.result": typeof disposition === "string" ? disposition : "retry" });
        return disposition;
      }, record.trace),
    abandon: (item, reason, lease, kind) =>
      telemetry.span("message.abandon", { "failure.kind": kind }, (span) => {
        span.fail("dead letter");
        return handler.abandon(item, reason, lease, kind);
      }, item.record?.trace),
  };
}

/** More parts than a person reads on a phone; also keeps one KV commit small. */
export const MAX_REPLY_PARTS = 20;
const CUT_NOTE = "\n\n… (answer cut: too long for WhatsApp)";

/** Keeps the first {@linkcode MAX_REPLY_PARTS} parts, saying so in the last. */
function limitParts(
  parts: string[],
  maxChars: number,
  splitMessage: (text: string, maxChars: number) => string[],
): string[] {
  if (parts.length <= MAX_REPLY_PARTS) return parts;
  const kept = parts.slice(0, MAX_REPLY_PARTS);
  if (maxChars > 2 * CUT_NOTE.length) {
    const room = maxChars - CUT_NOTE.length;
    kept[MAX_REPLY_PARTS - 1] = splitMessage(kept[MAX_REPLY_PARTS - 1], room)[0].trimEnd() +
      CUT_NOTE;
  }
  return kept;
}

function fieldsOf(record: MessageRecord) {
  return {
    message_sid: record.messageSid,
    from: maskPhone(record.phone),
    attempt: record.attempt,
  };
}

/**
 * Shows "typing…" under the inbound message now and every 20 s (it lasts
 * 25 s) until stopped; failures are logged and otherwise ignored.
 */
function showTyping(deps: ConversationDeps, record: MessageRecord): () => void {
  if (!deps.typingIndicator) return () => {};
  const tick = () =>
    deps.sender.typing(record.messageSid).catch((error) =>
      deps.log.warn("typing.failed", { ...fieldsOf(record), reason: describeError(error) })
    );
  tick();
  const timer = setInterval(tick, TYPING_REFRESH_MS);
  return () => clearInterval(timer);
}

const TYPING_REFRESH_MS = 20_000;

/** One last message so the user is never left in silence; best effort: false when it failed. */
async function notify(
  deps: ConversationDeps,
  to: { phone: string; messageSid: string },
  body: string,
): Promise<boolean> {
  try {
    await deps.sender.send({ to: to.phone, body });
    return true;
  } catch (error) {
    deps.log.error("apology.failed", {
      message_sid: to.messageSid,
      from: maskPhone(to.phone),
      reason: describeError(error),
    });
    return false;
  }
}
