/**
 * Finding, in a chat's history, the answer to a question whose asking was
 * interrupted (the process died while AYD answered, or before the answer was
 * saved): AYD keeps it, so it can be delivered instead of asked for twice.
 *
 * The question is found by its position, not by its text alone: before each
 * ask the bridge notes the chat's newest message (the anchor). Only messages
 * after the anchor can belong to the interrupted question, since a number's
 * questions are asked one at a time; among them the question is the first
 * user message with its text, and its answer the newest assistant message
 * after it. A question asked twice on purpose therefore never gets the first
 * asking's answer.
 *
 * @module
 */
import { type AydMessage, HISTORY_PAGE_SIZE } from "./chat.ts";

/** Where a question stands in a chat: the newest message before it, `null` for an empty chat. */
export interface ChatPosition {
  chatid: string;
  anchor: string | null;
}

/** What the history says about a question. */
export type RecordedAnswer =
  | { kind: "answered"; content: string; messageId: string }
  /** The question is there, no answer after it (AYD failed, or still writes). */
  | { kind: "unanswered" }
  /** No such question after the anchor: it never reached AYD. */
  | { kind: "not_asked" }
  /** The history does not reach back to the anchor, or cannot be paged. */
  | { kind: "unknown"; reason: string };

/** Reads one page of history, newest first, before an ISO time when given. */
export type ReadPage = (before?: string) => Promise<AydMessage[]>;

/** Pages read at most (200 messages): a number's own question is never that far back. */
export const MAX_HISTORY_PAGES = 10;

/**
 * Reads the history back to `position`'s anchor and says what became of
 * `question` after it. Pages are read with `timestamp` set just past the
 * oldest message seen, so that messages sharing its millisecond are not
 * skipped, and repeated ones are told apart by id. Throws what `read` throws.
 *
 * @example
 * ```ts
 * const found = await findRecordedAnswer((before) => readAydMessages(options, chatid, { before }), { chatid, anchor }, question);
 * if (found.kind === "answered") deliver(found.content);
 * ```
 */
export async function findRecordedAnswer(
  read: ReadPage,
  position: ChatPosition,
  question: string,
): Promise<RecordedAnswer> {
  const newestFirst: AydMessage[] = [];
  const seen = new Set<string>();
  let before: string | undefined;
  let strict = false;
  // With no anchor (the chat was empty), the whole chat is after it.
  let reachedAnchor = false;
  for (let page = 0; page < MAX_HISTORY_PAGES; page++) {
    const messages = await read(before);
    let fresh = 0;
    for (const message of messages) {
      if (message.id === position.anchor) {
        reachedAnchor = true;
        break;
      }
      if (seen.has(message.id)) continue;
      seen.add(message.id);
      newestFirst.push(message);
      fresh++;
    }
    if (reachedAnchor) break;
    if (messages.length < HISTORY_PAGE_SIZE) {
      reachedAnchor = position.anchor === null; // the chat's first message was read
      break;
    }
    if (fresh === 0 && strict) {
      return { kind: "unknown", reason: "the history cannot be paged past one millisecond" };
    }
    // Just past the oldest, so that its millisecond's other messages come too;
    // strictly before it once a whole page of them came again.
    strict = fresh === 0;
    const oldest = messages.map((m) => m.createdat)
      .reduce((a, b) => Date.parse(b) < Date.parse(a) ? b : a);
    before = strict ? oldest : new Date(Date.parse(oldest) + 1).toISOString();
  }
  if (!reachedAnchor) {
    return { kind: "unknown", reason: "the history does not reach back to the question" };
  }
  return matchAnswer(newestFirst.reverse(), question);
}

/**
 * The rule itself, on the messages after the anchor, oldest first.
 *
 * @example
 * ```ts
 * matchAnswer([{ id: "1", role: "user", content: "q", createdat }, { id: "2", role: "assistant", content: "a", createdat }], "q");
 * // { kind: "answered", content: "a", messageId: "2" }
 * ```
 */
export function matchAnswer(afterAnchor: AydMessage[], question: string): RecordedAnswer {
  const asked = afterAnchor.findIndex((m) =>
    m.role === "user" && m.content !== null && m.content.trim() === question.trim()
  );
  if (asked < 0) return { kind: "not_asked" };
  for (let i = afterAnchor.length - 1; i > asked; i--) {
    const m = afterAnchor[i];
    if (m.role === "assistant" && !m.issql && m.content !== null && m.content.trim() !== "") {
      return { kind: "answered", content: m.content, messageId: m.id };
    }
  }
  return { kind: "unanswered" };
}
