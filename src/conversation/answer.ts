/**
 * What a message gets back: AYD's answer in the sender's conversation, asked
 * as the person the directory says the number belongs to, a command's reply,
 * or a note that only text is understood. Failures become the Flask app's
 * user-facing texts, marked transient when a retry may help.
 *
 * @module
 */
import type { AydAnswer, AydMessage, AydRefusals, ChatStore, SessionStore } from "../ayd/mod.ts";
import { commandReply, parseCommand } from "./commands.ts";
import { type MessageRecord, questionOf } from "../jobs/mod.ts";
import type { Logger } from "../log.ts";
import { expireAt } from "../storage/mod.ts";
import { noTelemetry, type Telemetry } from "../telemetry/mod.ts";
import { whoAsks } from "./_identity.ts";
import { askInSession } from "./_ask_session.ts";
import { askInChat } from "./_ask_chat.ts";
import type { Reply } from "./_replies.ts";

export type { Reply } from "./_replies.ts";

export { REPLIES } from "./_replies.ts";
import { REPLIES } from "./_replies.ts";

/**
 * The notice for a refused message, at most one per number and window
 * (a day for the allowlist, the limit's window for rate limits); otherwise
 * nothing is sent.
 */
async function refusalNotice(
  kv: Deno.Kv,
  record: MessageRecord,
  deniedReply: string,
  refusal = record.refusal!,
): Promise<Reply> {
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

/** Session mode: the Flask app's widget sessions, each with its access token. */
export interface SessionMode {
  mode: "session";
  sessions: SessionStore;
  /** Asks AYD in the session of `token`; `onText` sees the answer's Markdown as it streams in. */
  ask: (
    token: string,
    question: string,
    signal: AbortSignal,
    onText?: (delta: string) => void,
  ) => Promise<AydAnswer>;
  refusals?: AydRefusals;
}

/** Chat mode: AYD's documented API, a chat per number and the API key on every call. */
export interface ChatMode {
  mode: "chat";
  chats: ChatStore;
  /** Asks in `chat.chatid` as `chat.properties`; `onText` sees the Markdown as it streams in. */
  ask: (
    chat: { chatid: string; properties?: Record<string, unknown> },
    question: string,
    signal: AbortSignal,
    onText?: (delta: string) => void,
  ) => Promise<AydAnswer>;
  /** One page of the chat's history, newest first, before an ISO time when given. */
  history: (chatid: string, before?: string, signal?: AbortSignal) => Promise<AydMessage[]>;
  refusals: AydRefusals;
}

/** Where a question is about to be asked in chat mode: the chat and its newest message then. */
export interface AskedIn {
  chatid: string;
  /** The newest message before the question; `null`: the chat was empty; absent: unknown. */
  anchor?: string | null;
}

/**
 * Called just before a question goes to AYD in chat mode, to save where it
 * is asked (so that an interrupted ask can be looked up in the history);
 * false = the lease is lost and it must not be asked.
 */
export type BeforeAsk = (askedIn: AskedIn) => Promise<boolean>;

/** What answering needs. */
export interface AnswerDeps {
  kv: Deno.Kv;
  /** For numbers not allowed, at most once a day; "" = silence. */
  deniedReply: string;
  ayd: SessionMode | ChatMode;
  /** `ALLOWED_NUMBERS` is unset: a directory that is not empty lists who may ask. */
  directoryGates: boolean;
  log: Logger;
  aydTimeoutMs: number;
  /** Spans for each ask and the answer's duration; nothing by default. */
  telemetry?: Telemetry;
}

/** What one ask works with, whichever the mode. */
export interface AskContext {
  record: MessageRecord;
  fields: Record<string, string | number>;
  signal: AbortSignal;
  who: Awaited<ReturnType<typeof whoAsks>>;
  log: Logger;
  onText?: (delta: string) => void;
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
  beforeAsk?: BeforeAsk,
): Promise<Reply> {
  if (record.refusal) return await refusalNotice(deps.kv, record, deps.deniedReply);
  const question = questionOf(record);
  if (question.trim() === "") return { text: REPLIES.notText, outcome: "not_text" };
  const command = parseCommand(question);
  if (command === "reset") await forget(deps.ayd, record.phone);
  if (command) return { text: commandReply(command, deps.ayd.mode), outcome: "command" };
  const who = await whoAsks(deps.kv, record.phone, { directoryGates: deps.directoryGates });
  if (who.refused) {
    // Admitted while listed, removed since: the person's access went with them.
    deps.log.info("ask.refused", { ...fields, reason: "not_in_directory" });
    return await refusalNotice(deps.kv, record, deps.deniedReply, { kind: "denied" });
  }
  return await askAyd(deps, record, fields, who, onText, beforeAsk);
}

/**
 * Opens the number's AYD session or chat ahead of its question, while the
 * question is still being put together (pieces awaited, a voice note
 * heard), so that asking starts at once when it is ready. Never rejects:
 * a failure here is met, and reported, by the ask itself.
 *
 * @example
 * ```ts
 * const warming = warmUp(deps, record);
 * const question = await prepare(record);
 * await warming;
 * ```
 */
export async function warmUp(deps: AnswerDeps, record: MessageRecord): Promise<void> {
  if (record.refusal || parseCommand(record.body)) return;
  try {
    const who = await whoAsks(deps.kv, record.phone, { directoryGates: deps.directoryGates });
    if (who.refused) return;
    const signal = AbortSignal.timeout(deps.aydTimeoutMs);
    await (deps.ayd.mode === "chat"
      ? deps.ayd.chats.getOrCreate(record.phone, signal, who.asker)
      : deps.ayd.sessions.getOrCreate(record.phone, signal, who.asker));
  } catch {
    // The ask opens it again, and says what went wrong.
  }
}

function forget(ayd: AnswerDeps["ayd"], phone: string): Promise<void> {
  return ayd.mode === "chat" ? ayd.chats.drop(phone) : ayd.sessions.drop(phone);
}

/**
 * Asks AYD within the time budget, in the number's session or chat, in a
 * span that records how long the first token and the whole answer took.
 */
function askAyd(
  deps: AnswerDeps,
  record: MessageRecord,
  fields: Record<string, string | number>,
  who: AskContext["who"],
  onText?: (delta: string) => void,
  beforeAsk?: BeforeAsk,
): Promise<Reply> {
  const telemetry = deps.telemetry ?? noTelemetry;
  return telemetry.span("ayd.ask", { "ayd.mode": deps.ayd.mode }, async (span) => {
    const started = performance.now();
    let firstToken: number | undefined;
    let chars = 0;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), deps.aydTimeoutMs);
    const context: AskContext = {
      record,
      fields,
      signal: controller.signal,
      who,
      log: deps.log,
      onText(delta) {
        firstToken ??= performance.now() - started;
        chars += delta.length;
        onText?.(delta);
      },
    };
    telemetry.conversations(1);
    const reply = await (deps.ayd.mode === "chat"
      ? askInChat(context, deps.ayd, beforeAsk)
      : askInSession(context, deps.ayd)).finally(() => {
        clearTimeout(timer);
        telemetry.conversations(-1);
      });
    if (reply.lost) {
      return reply;
    }
    const duration = Math.round(performance.now() - started);
    span.set({
      "ayd.outcome": reply.outcome,
      "ayd.time_to_first_token_ms": firstToken === undefined ? undefined : Math.round(firstToken),
      "ayd.answer_chars": chars,
    });
    if (reply.outcome === "failed") {
      span.fail(reply.transient ? "transient" : "failed");
    }
    telemetry.record("bridge.answer_duration", duration, { outcome: reply.outcome });
    // A failed ask is usually a setting (key, chatbot) or AYD itself: worth a warning.
    const logAt = reply.outcome === "failed" ? deps.log.warn : deps.log.info;
    logAt("ask.finished", {
      ...fields,
      outcome: reply.outcome,
      duration_ms: duration,
      reason: reply.reason,
    });
    return reply;
  });
}
