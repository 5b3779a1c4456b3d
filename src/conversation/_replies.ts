/**
 * The texts users read when there is no answer to give, and how a failure
 * becomes one. Private helper of `answer.ts` and the two ways of asking.
 *
 * @module
 */
import { type AydAnswer, AydError } from "../ayd/mod.ts";
import type { MessageRecord } from "../jobs/mod.ts";
import { describeError } from "../log.ts";

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
  voiceUnclear: "I couldn't make out that voice note. Please try again or type your question.",
  voiceTooLong:
    "That voice note is too long for me. Please send a shorter one or type your question.",
} as const;

/** A reply to send, and how it came about. */
export interface Reply {
  text: string;
  outcome: NonNullable<MessageRecord["outcome"]>;
  /** Charts AYD drew, sent as media after the text. */
  imageUrls?: string[];
  reason?: string;
  /** A failure that may pass if tried again later. */
  transient?: boolean;
  /** The lane's lease went while asking: nothing may be sent or saved. */
  lost?: boolean;
}

/** A failure's reply: `text`, or the timeout's text when time ran out. */
export function failed(error: unknown, text: string, transient = isTransient(error)): Reply {
  return {
    text: error instanceof AydError && error.kind === "timeout" ? REPLIES.timeout : text,
    outcome: "failed",
    reason: describeError(error),
    transient,
  };
}

/** The reply to an answer AYD gave: its text, or the empty answer's wording. */
export function answered(answer: AydAnswer): Reply {
  const text = answer.text.trim();
  if (text === "") return { text: REPLIES.empty, outcome: "empty", imageUrls: answer.imageUrls };
  return { text, outcome: "answered", imageUrls: answer.imageUrls };
}

/** Timeouts, network trouble, 429 and 5xx may pass; other answers will not. */
export function isTransient(error: unknown): boolean {
  if (!(error instanceof AydError)) return false;
  if (error.kind === "timeout" || error.kind === "network") return true;
  return error.kind === "http" && (error.status === 429 || (error.status ?? 0) >= 500);
}

/** AYD refused the bridge's credentials (401 or 403): a configuration problem. */
export function isRefusal(error: unknown): error is AydError {
  return error instanceof AydError && (error.kind === "unauthorized" || error.status === 403);
}
