/**
 * The worker: answers one inbound message by asking AYD in the sender's
 * conversation and replying on WhatsApp. Every failure ends in a message to
 * the user, worded as the Flask app worded it.
 *
 * @module
 */
import { type AydAnswer, AydError } from "./ayd.ts";
import {
  deadLetterKey,
  type JobHandler,
  MESSAGE_TTL_MS,
  messageKey,
  type MessageRecord,
} from "./jobs.ts";
import { describeError, type Logger, maskPhone } from "./log.ts";
import type { SessionStore } from "./sessions.ts";
import type { WhatsAppSender } from "./twilio_client.ts";
import { splitMessage } from "./whatsapp_format.ts";

/** What users read when there is no answer to give. */
export const REPLIES = {
  empty: "I processed your request but have no specific response to share.",
  noSession: "Sorry, I couldn't establish a conversation session. Please try again.",
  renewalFailed: "Sorry, I'm having trouble maintaining our conversation. Please try again.",
  timeout: "Sorry, the request took too long. Please try again.",
  failure: "Sorry, something went wrong. Please try again.",
  notText: "I can only answer questions sent as text. Please type your question.",
} as const;

/** A dead letter: a job that ended without answering its message. */
export interface DeadLetter {
  messageSid: string;
  reason: string;
  failedAt: number;
}

/** What the worker needs; all of it is passed in. */
export interface WorkerDeps {
  kv: Deno.Kv;
  sessions: SessionStore;
  ask: (token: string, question: string, signal: AbortSignal) => Promise<AydAnswer>;
  sender: WhatsAppSender;
  log: Logger;
  maxSmsChars: number;
  aydTimeoutMs: number;
  now?: () => number;
}

interface Reply {
  text: string;
  outcome: "answered" | "empty" | "failed" | "not_text";
  reason?: string;
}

/**
 * Creates the job handler. A job whose message is already answered or failed
 * is skipped, so a redelivered job does not reply twice.
 *
 * @example
 * ```ts
 * jobs.listen(createWorker({ kv, sessions, ask, sender, log, maxSmsChars: 1600, aydTimeoutMs: 60_000 }));
 * ```
 */
export function createWorker(deps: WorkerDeps): JobHandler {
  const now = deps.now ?? Date.now;
  return async (messageSid) => {
    const record = (await deps.kv.get<MessageRecord>(messageKey(messageSid))).value;
    if (!record) return deps.log.warn("job.missing", { message_sid: messageSid });
    if (record.state !== "queued") {
      return deps.log.info("job.skipped", { message_sid: messageSid, state: record.state });
    }
    const fields = { message_sid: messageSid, from: maskPhone(record.phone) };
    deps.log.info("job.started", { ...fields, queued_ms: now() - record.receivedAt });

    const reply = record.body.trim() === ""
      ? { text: REPLIES.notText, outcome: "not_text" as const }
      : await ask(deps, record, fields);
    let failure = reply.outcome === "failed" ? reply.reason : undefined;
    try {
      const parts = splitMessage(reply.text, deps.maxSmsChars);
      for (const body of parts) await deps.sender.send({ to: record.phone, body });
      deps.log.info("reply.sent", { ...fields, parts: parts.length, outcome: reply.outcome });
    } catch (error) {
      failure = describeError(error);
      deps.log.error("reply.failed", { ...fields, reason: failure });
      if (reply.outcome !== "failed") await apologize(deps, record.phone, fields);
    }

    const state = failure === undefined ? "answered" : "failed";
    const atomic = deps.kv.atomic()
      .set(messageKey(messageSid), { ...record, state }, { expireIn: MESSAGE_TTL_MS });
    if (failure !== undefined) {
      const letter: DeadLetter = { messageSid, reason: failure, failedAt: now() };
      atomic.set(deadLetterKey(messageSid), letter);
    }
    await atomic.commit();
    deps.log.info("job.finished", { ...fields, state });
  };
}

/** Asks AYD within the time budget, renewing an expired session once. */
async function ask(
  deps: WorkerDeps,
  record: MessageRecord,
  fields: Record<string, string>,
): Promise<Reply> {
  const started = performance.now();
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), deps.aydTimeoutMs);
  const { signal } = controller;
  const fail = (error: unknown, text: string): Reply => ({
    text: error instanceof AydError && error.kind === "timeout" ? REPLIES.timeout : text,
    outcome: "failed",
    reason: describeError(error),
  });
  const reply = await (async (): Promise<Reply> => {
    let session;
    try {
      session = await deps.sessions.getOrCreate(record.phone, signal);
    } catch (error) {
      return fail(error, REPLIES.noSession);
    }
    let answer: AydAnswer;
    try {
      deps.log.info("ask.started", fields);
      answer = await deps.ask(session.token, record.body, signal);
    } catch (error) {
      if (!(error instanceof AydError && error.kind === "unauthorized")) {
        return fail(error, REPLIES.failure);
      }
      deps.log.info("session.renewing", fields);
      try {
        session = await deps.sessions.renew(record.phone, session.token, signal);
      } catch (renewError) {
        return fail(renewError, REPLIES.renewalFailed);
      }
      try {
        answer = await deps.ask(session.token, record.body, signal);
      } catch (retryError) {
        const refusedAgain = retryError instanceof AydError && retryError.kind === "unauthorized";
        return fail(retryError, refusedAgain ? REPLIES.renewalFailed : REPLIES.failure);
      }
    }
    const text = answer.text.trim();
    return text === "" ? { text: REPLIES.empty, outcome: "empty" } : { text, outcome: "answered" };
  })().finally(() => clearTimeout(timer));
  deps.log.info("ask.finished", {
    ...fields,
    outcome: reply.outcome,
    duration_ms: Math.round(performance.now() - started),
    reason: reply.reason,
  });
  return reply;
}

/** One last message so the user is never left in silence; best effort. */
async function apologize(deps: WorkerDeps, phone: string, fields: Record<string, string>) {
  try {
    await deps.sender.send({ to: phone, body: REPLIES.failure });
  } catch (error) {
    deps.log.error("apology.failed", { ...fields, reason: describeError(error) });
  }
}
