/**
 * What a message gets back: AYD's answer in the sender's conversation, a
 * command's reply, or a note that only text is understood. Failures become
 * the Flask app's user-facing texts, marked transient when a retry may help.
 *
 * @module
 */
import { type AydAnswer, AydError, type SessionStore } from "../ayd/mod.ts";
import { COMMAND_REPLIES, parseCommand } from "./commands.ts";
import type { MessageRecord } from "../jobs/mod.ts";
import { describeError, type Logger } from "../log.ts";
import { expireAt } from "../storage/mod.ts";

/** What users read when there is no answer to give. */
export const REPLIES = {
  empty: "I processed your request but have no specific response to share.",
  noSession: "Sorry, I couldn't establish a conversation session. Please try again.",
  renewalFailed: "Sorry, I'm having trouble maintaining our conversation. Please try again.",
  timeout: "Sorry, the request took too long. Please try again.",
  failure: "Sorry, something went wrong. Please try again.",
  cutShort: "Sorry, the rest of this answer was lost on the way. Please ask again.",
  notText:
    "I can only read text messages, not photos, voice notes, stickers, locations or contacts. " +
    'Please type your question, for example: "How many orders shipped late last week?"',
} as const;

/**
 * The notice for a refused message, at most one per number and window
 * (a day for the allowlist, the limit's window for rate limits); otherwise
 * nothing is sent.
 */
async function refusalNotice(
  kv: Deno.Kv,
  record: MessageRecord,
  deniedReply: string,
): Promise<Reply> {
  const refusal = record.refusal!;
  const window = refusal.kind === "denied"
    ? Math.floor(record.receivedAt / 86_400_000)
    : refusal.until;
  const key = ["notices", record.phone, refusal.kind, window];
  const claim = kv.atomic().check({ key, versionstamp: null }).set(key, true);
  const first = await expireAt(claim, key, record.receivedAt + 2 * 86_400_000).commit();
  const text = !first.ok ? "" : refusal.kind === "denied" ? deniedReply : rateLimitNotice(refusal);
  return { text, outcome: refusal.kind };
}

/** When to try again, in the sender-neutral time of UTC. */
export function rateLimitNotice(refusal: { window: "minute" | "day"; until: number }): string {
  const at = new Date(refusal.until).toISOString().slice(11, 16);
  return refusal.window === "minute"
    ? `You're sending questions faster than I can answer. Please try again after ${at} UTC.`
    : `You've reached today's limit of questions. Please try again after ${at} UTC tomorrow.`;
}

/** A reply to send, and how it came about. */
export interface Reply {
  text: string;
  outcome: NonNullable<MessageRecord["outcome"]>;
  /** Charts AYD drew, sent as media after the text. */
  imageUrls?: string[];
  reason?: string;
  /** A failure that may pass if tried again later. */
  transient?: boolean;
}

/** What answering needs. */
export interface AnswerDeps {
  kv: Deno.Kv;
  /** For numbers not allowed, at most once a day; "" = silence. */
  deniedReply: string;
  sessions: SessionStore;
  /** Asks AYD; `onText` sees the answer's Markdown as it streams in. */
  ask: (
    token: string,
    question: string,
    signal: AbortSignal,
    onText?: (delta: string) => void,
  ) => Promise<AydAnswer>;
  log: Logger;
  aydTimeoutMs: number;
}

/**
 * The reply to one message. An AYD answer's text is Markdown, and `onText`
 * sees it as it streams in; every other reply is WhatsApp text.
 *
 * @example
 * ```ts
 * const reply = await composeReply(deps, record, { message_sid: record.messageSid });
 * ```
 */
export async function composeReply(
  deps: AnswerDeps,
  record: MessageRecord,
  fields: Record<string, string | number>,
  onText?: (delta: string) => void,
): Promise<Reply> {
  if (record.refusal) return await refusalNotice(deps.kv, record, deps.deniedReply);
  if (record.body.trim() === "") return { text: REPLIES.notText, outcome: "not_text" };
  const command = parseCommand(record.body);
  if (command === "reset") await deps.sessions.drop(record.phone);
  if (command) return { text: COMMAND_REPLIES[command], outcome: "command" };
  return await askAyd(deps, record, fields, onText);
}

/** Asks AYD within the time budget, renewing an expired session once. */
async function askAyd(
  deps: AnswerDeps,
  record: MessageRecord,
  fields: Record<string, string | number>,
  onText?: (delta: string) => void,
): Promise<Reply> {
  const started = performance.now();
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), deps.aydTimeoutMs);
  const { signal } = controller;
  const fail = (error: unknown, text: string): Reply => ({
    text: error instanceof AydError && error.kind === "timeout" ? REPLIES.timeout : text,
    outcome: "failed",
    reason: describeError(error),
    transient: isTransient(error),
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
      answer = await deps.ask(session.token, record.body, signal, onText);
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
        // A 401 comes before any text, so `onText` has seen nothing yet.
        answer = await deps.ask(session.token, record.body, signal, onText);
      } catch (retryError) {
        const refusedAgain = retryError instanceof AydError && retryError.kind === "unauthorized";
        return fail(retryError, refusedAgain ? REPLIES.renewalFailed : REPLIES.failure);
      }
    }
    const text = answer.text.trim();
    if (text === "") return { text: REPLIES.empty, outcome: "empty", imageUrls: answer.imageUrls };
    return { text, outcome: "answered", imageUrls: answer.imageUrls };
  })().finally(() => clearTimeout(timer));
  // A failed ask is usually a setting (key, chatbot) or AYD itself: worth a warning.
  const logAt = reply.outcome === "failed" ? deps.log.warn : deps.log.info;
  logAt("ask.finished", {
    ...fields,
    outcome: reply.outcome,
    duration_ms: Math.round(performance.now() - started),
    reason: reply.reason,
  });
  return reply;
}

/** Timeouts, network trouble, 429 and 5xx may pass; other answers will not. */
function isTransient(error: unknown): boolean {
  if (!(error instanceof AydError)) return false;
  if (error.kind === "timeout" || error.kind === "network") return true;
  return error.kind === "http" && (error.status === 429 || (error.status ?? 0) >= 500);
}
