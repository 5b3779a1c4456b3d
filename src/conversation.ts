/**
 * Answering one message: ask AYD in the sender's conversation, then deliver
 * the reply part by part. Progress is written to KV under the lane's lease
 * at every step, so a restarted job neither asks again once it has the
 * answer nor resends the parts that went out. Every failure ends in a message
 * to the user, worded as the Flask app worded it.
 *
 * @module
 */
import { type AnswerDeps, composeReply, REPLIES } from "./answer.ts";
import { type Backoff, backoffDelay } from "./backoff.ts";
import { deadLetterKey, MESSAGE_TTL_MS, messageKey, type MessageRecord } from "./jobs.ts";
import { type Lease, queueKey } from "./lanes.ts";
import { describeError, maskPhone } from "./log.ts";
import { TwilioSendError, type WhatsAppSender } from "./twilio_client.ts";
import { count, recordAnswerTime } from "./stats.ts";
import { splitMessage } from "./whatsapp_format.ts";
import type { Disposition, MessageHandler } from "./worker.ts";

/** A job that ended without answering its message. */
export interface DeadLetter {
  messageSid: string;
  phone: string;
  reason: string;
  attempts: number;
  failedAt: number;
}

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
  now?: () => number;
}

/** A message to send: text, or one chart. */
export interface ReplyPart {
  body?: string;
  mediaUrl?: string;
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
 * const handle = createConversationHandler({ kv, sessions, ask, sender, log, maxSmsChars: 1600, aydTimeoutMs: 60_000, retry });
 * ```
 */
export function createConversationHandler(deps: ConversationDeps): MessageHandler {
  const now = deps.now ?? Date.now;
  const { kv, log } = deps;

  /** Saves `record` under the lease, with any extra mutations. */
  const save = (lease: Lease, record: MessageRecord, extra = (op: Deno.AtomicOperation) => op) =>
    lease.commit((op) =>
      extra(op.set(messageKey(record.messageSid), record, { expireIn: MESSAGE_TTL_MS }))
    );

  /** A later attempt, if the budget allows one. */
  function retryAt(record: MessageRecord): number | undefined {
    if (record.attempt >= deps.retry.maxAttempts) return undefined;
    const at = now() + backoffDelay(deps.retry, record.attempt);
    return at <= record.receivedAt + deps.retry.budgetMs ? at : undefined;
  }

  async function postpone(lease: Lease, record: MessageRecord, at: number, reason: string) {
    const next = { ...record, nextAttemptAt: at, lastError: reason };
    if (!await save(lease, next)) return "lost";
    log.warn("job.retry_scheduled", {
      ...fieldsOf(record),
      delay_ms: at - now(),
      reason,
    });
    return { retryAt: at };
  }

  async function finish(
    lease: Lease,
    record: MessageRecord,
    failure: string | undefined,
  ): Promise<Disposition> {
    const final: MessageRecord = {
      ...record,
      state: failure === undefined ? "answered" : "failed",
      lastError: failure ?? record.lastError,
    };
    const saved = await save(lease, final, (op) => {
      op.delete(queueKey(record.phone, record.receivedAt, record.messageSid));
      for (let i = 0; i < (record.parts ?? 0); i++) op.delete(replyPartKey(record.messageSid, i));
      if (failure === undefined) {
        if (record.outcome === "denied" || record.outcome === "rate_limited") return op;
        const waited = now() - record.receivedAt;
        return recordAnswerTime(count(op, "answered", now()), record.messageSid, waited, now());
      }
      count(op, "failed", now());
      const letter: DeadLetter = {
        messageSid: record.messageSid,
        phone: record.phone,
        reason: failure,
        attempts: record.attempt,
        failedAt: now(),
      };
      return op.set(deadLetterKey(record.messageSid), letter, { expireIn: MESSAGE_TTL_MS });
    });
    if (!saved) return "lost";
    log.info("job.finished", {
      ...fieldsOf(final),
      state: final.state,
      outcome: final.outcome,
      reason: failure,
    });
    return "done";
  }

  async function ask(lease: Lease, queued: MessageRecord): Promise<Disposition | MessageRecord> {
    if (queued.state === "asking" && queued.attempt >= deps.retry.maxAttempts) {
      // Interrupted that often, the message itself may be what kills the process.
      await apologize(deps, queued);
      return finish(lease, { ...queued, outcome: "failed" }, "interrupted too many times");
    }
    const record: MessageRecord = { ...queued, state: "asking", attempt: queued.attempt + 1 };
    if (!await save(lease, record)) return "lost";
    log.info("job.started", { ...fieldsOf(record), queued_ms: now() - record.receivedAt });

    const stopTyping = showTyping(deps, record);
    const reply = await composeReply(deps, record, fieldsOf(record)).finally(stopTyping);
    if (reply.outcome === "failed" && reply.transient) {
      const at = retryAt(record);
      if (at !== undefined) {
        return postpone(lease, { ...record, state: "queued" }, at, reply.reason!);
      }
    }
    const parts: ReplyPart[] = [
      ...limitParts(splitMessage(reply.text, deps.maxSmsChars), deps.maxSmsChars)
        .map((body) => ({ body })),
      ...(reply.imageUrls ?? []).map((mediaUrl) => ({ mediaUrl })),
    ];
    const replying: MessageRecord = {
      ...record,
      state: "replying",
      parts: parts.length,
      sentParts: 0,
      outcome: reply.outcome,
      lastError: reply.reason,
    };
    const saved = await save(lease, replying, (op) => {
      parts.forEach((part, i) => op.set(replyPartKey(record.messageSid, i), part));
      return op;
    });
    return saved ? replying : "lost";
  }

  async function deliver(lease: Lease, replying: MessageRecord): Promise<Disposition> {
    const prefix = ["reply_parts", replying.messageSid];
    const parts = (await Array.fromAsync(kv.list<ReplyPart>({ prefix }))).map((e) => e.value);
    let record = replying;
    for (let index = record.sentParts ?? 0; index < parts.length; index++) {
      if (!lease.held()) return "lost";
      try {
        const { body, mediaUrl } = parts[index];
        await deps.sender.send({ to: record.phone, body, mediaUrls: mediaUrl ? [mediaUrl] : [] });
      } catch (error) {
        const reason = describeError(error);
        log.error("reply.failed", { ...fieldsOf(record), part: index + 1, reason });
        const transient = error instanceof TwilioSendError && error.transient;
        const at = transient ? retryAt(record) : undefined;
        if (at !== undefined) {
          return postpone(lease, { ...record, attempt: record.attempt + 1 }, at, reason);
        }
        if (record.outcome !== "failed") await apologize(deps, record);
        return finish(lease, record, reason);
      }
      record = { ...record, sentParts: index + 1 };
      if (!await save(lease, record)) return "lost";
    }
    log.info("reply.sent", { ...fieldsOf(record), parts: parts.length, outcome: record.outcome });
    return finish(lease, record, record.outcome === "failed" ? record.lastError : undefined);
  }

  return async (record, lease) => {
    if (record.state === "replying") return deliver(lease, record);
    const asked = await ask(lease, record);
    return typeof asked === "object" && "state" in asked ? deliver(lease, asked) : asked;
  };
}

/** More parts than a person reads on a phone; also keeps one KV commit small. */
export const MAX_REPLY_PARTS = 20;
const CUT_NOTE = "\n\n… (answer cut: too long for WhatsApp)";

/** Keeps the first {@linkcode MAX_REPLY_PARTS} parts, saying so in the last. */
function limitParts(parts: string[], maxChars: number): string[] {
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

/** One last message so the user is never left in silence; best effort. */
async function apologize(deps: ConversationDeps, record: MessageRecord) {
  try {
    await deps.sender.send({ to: record.phone, body: REPLIES.failure });
  } catch (error) {
    deps.log.error("apology.failed", { ...fieldsOf(record), reason: describeError(error) });
  }
}
