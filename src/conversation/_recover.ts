/**
 * Chat mode: the answer to a question whose asking was interrupted (the
 * process died while AYD answered, or before the answer was saved), read
 * from the chat's history, where AYD keeps it. Private helper of
 * `handler.ts`.
 *
 * @module
 */
import { findRecordedAnswer } from "../ayd/mod.ts";
import { type MessageRecord, questionOf } from "../jobs/mod.ts";
import { describeError } from "../log.ts";
import type { AnswerDeps } from "./answer.ts";

/**
 * The recorded answer's Markdown, or undefined when the question must be
 * asked again: the history shows it unanswered or not asked, cannot place
 * it, or cannot be read. Logs which.
 */
export async function recoverAnswer(
  deps: AnswerDeps,
  record: MessageRecord,
  fields: Record<string, string | number>,
): Promise<string | undefined> {
  if (deps.ayd.mode !== "chat" || !record.askedIn) return undefined;
  const { chatid, anchor } = record.askedIn;
  if (anchor === undefined) {
    deps.log.info("ask.not_recovered", { ...fields, found: "unknown", reason: "no anchor" });
    return undefined;
  }
  const history = deps.ayd.history;
  const signal = AbortSignal.timeout(deps.aydTimeoutMs);
  try {
    const found = await findRecordedAnswer(
      (before) => history(chatid, before, signal),
      { chatid, anchor },
      questionOf(record),
    );
    if (found.kind === "answered") {
      deps.log.info("ask.recovered", fields);
      return found.content;
    }
    deps.log.info("ask.not_recovered", {
      ...fields,
      found: found.kind,
      reason: found.kind === "unknown" ? found.reason : undefined,
    });
  } catch (error) {
    deps.log.warn("history.failed", { ...fields, reason: describeError(error) });
  }
  return undefined;
}
