/**
 * Asking in session mode, as the Flask app did: the number's widget session
 * (opened as its person), its token on the ask, and one renewal when AYD
 * answers 401 (the token expired). Private helper of `answer.ts`.
 *
 * @module
 */
import { type AydAnswer, AydError } from "../ayd/mod.ts";
import { questionOf } from "../jobs/mod.ts";
import type { AskContext, SessionMode } from "./answer.ts";
import { answered, failed, isRefusal, REPLIES, type Reply } from "./_replies.ts";

/**
 * Asks in the number's session, opening it (or replacing it, when it was
 * opened as someone else) first.
 */
export async function askInSession(context: AskContext, mode: SessionMode): Promise<Reply> {
  const { record, signal, fields, log, onText } = context;
  const asker = context.who.asker;
  /** The session endpoint refused the API key: say so, do not retry. */
  const opening = (error: unknown, text: string) => {
    if (!isRefusal(error)) return failed(error, text);
    mode.refusals?.refused("session", error.status ?? 401);
    return failed(error, text, false);
  };
  let session;
  try {
    session = await mode.sessions.getOrCreate(record.phone, signal, asker);
  } catch (error) {
    return opening(error, REPLIES.noSession);
  }
  let answer: AydAnswer;
  try {
    log.info("ask.started", fields);
    answer = await mode.ask(session.token, questionOf(record), signal, onText);
  } catch (error) {
    if (!(error instanceof AydError && error.kind === "unauthorized")) {
      return failed(error, REPLIES.failure);
    }
    log.info("session.renewing", fields);
    try {
      session = await mode.sessions.renew(record.phone, session.token, signal, asker);
    } catch (renewError) {
      return opening(renewError, REPLIES.renewalFailed);
    }
    try {
      // A 401 comes before any text, so `onText` has seen nothing yet.
      answer = await mode.ask(session.token, questionOf(record), signal, onText);
    } catch (retryError) {
      const refusedAgain = retryError instanceof AydError && retryError.kind === "unauthorized";
      return failed(retryError, refusedAgain ? REPLIES.renewalFailed : REPLIES.failure);
    }
  }
  mode.refusals?.accepted();
  return answered(answer);
}
