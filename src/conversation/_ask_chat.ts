/**
 * Asking in chat mode, AYD's documented API: the number's chat (created for
 * its person), the API key and `chatid` on the ask, the person's context
 * variables as `properties`. A 401 or 403 is a configuration problem: the
 * usual apology, no retry, and `/health` says so. A 404 (AYD no longer knows
 * the chat) starts a new chat, once. Private helper of `answer.ts`.
 *
 * @module
 */
import { AydError, type ChatInUse } from "../ayd/mod.ts";
import { describeError } from "../log.ts";
import { questionOf } from "../jobs/mod.ts";
import type { AskContext, AskedIn, BeforeAsk, ChatMode } from "./answer.ts";
import { answered, failed, isRefusal, REPLIES, type Reply } from "./_replies.ts";
import { chatProperties } from "./_identity.ts";

/**
 * Asks in the number's chat. Before the question goes out, `beforeAsk`
 * saves where it is asked: the chat and its newest message (read from the
 * history; a chat just created has none), so that an interrupted ask can be
 * found again.
 */
export async function askInChat(
  context: AskContext,
  mode: ChatMode,
  beforeAsk?: BeforeAsk,
): Promise<Reply> {
  const { record, signal, fields, log, onText } = context;
  const asker = context.who.asker;
  /** A refusal of the API key or chatbot: the usual apology, no retry, and /health says so. */
  const refusal = (step: string, error: unknown): Reply | undefined => {
    const chatbotUnknown = step === "newChat" && error instanceof AydError && error.status === 404;
    if (!isRefusal(error) && !chatbotUnknown) return undefined;
    mode.refusals.refused(step, (error as AydError).status ?? 401);
    return failed(error, REPLIES.failure, false);
  };
  let chat: ChatInUse;
  try {
    chat = await mode.chats.getOrCreate(record.phone, signal, asker);
  } catch (error) {
    return refusal("newChat", error) ?? failed(error, REPLIES.noSession);
  }
  const properties = chatProperties(asker);
  for (let renewed = false;; renewed = true) {
    const askedIn: AskedIn = { chatid: chat.chatid };
    if (chat.created) askedIn.anchor = null;
    else {
      const anchor = await newestMessage(context, mode, chat.chatid);
      if (anchor !== undefined) askedIn.anchor = anchor;
    }
    if (beforeAsk && !await beforeAsk(askedIn)) {
      return { text: "", outcome: "failed", reason: "lease lost", lost: true };
    }
    try {
      log.info("ask.started", fields);
      const answer = await mode.ask(
        { chatid: chat.chatid, properties },
        questionOf(record),
        signal,
        onText,
      );
      mode.refusals.accepted();
      return answered(answer);
    } catch (error) {
      const refused = refusal("ask", error);
      if (refused) return refused;
      const gone = error instanceof AydError && error.status === 404;
      if (!gone) return failed(error, REPLIES.failure);
      // A new chat's 404 is not about the chat: do not loop.
      if (renewed) return failed(error, REPLIES.renewalFailed, false);
    }
    log.info("chat.renewing", fields);
    try {
      chat = await mode.chats.replace(record.phone, chat.chatid, signal, asker);
    } catch (error) {
      return refusal("newChat", error) ?? failed(error, REPLIES.renewalFailed);
    }
  }
}

/**
 * The id of the chat's newest message, `null` for an empty chat, or
 * undefined when the history cannot be read (then an interrupted ask is
 * asked again rather than guessed).
 */
async function newestMessage(
  context: AskContext,
  mode: ChatMode,
  chatid: string,
): Promise<string | null | undefined> {
  try {
    const [newest] = await mode.history(chatid, undefined, context.signal);
    return newest?.id ?? null;
  } catch (error) {
    context.log.warn("history.failed", { ...context.fields, reason: describeError(error) });
    return undefined;
  }
}
