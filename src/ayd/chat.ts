/**
 * The AskYourDatabase client in chat mode, AYD's documented API for
 * integrations: every call carries `Authorization: Bearer <API key>`; a chat
 * is created with `POST /api/chatbot/newChat`, asked in with `POST /api/ask`
 * and its `chatid`, and its history read with `GET /api/chatbot/messages`.
 *
 * @module
 */
import { type AydAnswer, readAnswerStream } from "./_answer_stream.ts";
import { AydError, call, httpError, readJson } from "./_http.ts";
import type { AydOptions } from "./client.ts";

/** One message of a chat's history, as AYD lists it. */
export interface AydMessage {
  id: string;
  role: "user" | "assistant" | string;
  /** Null for SQL and system messages. */
  content: string | null;
  /** ISO time, e.g. `2024-01-15T10:30:00.000Z`. */
  createdat: string;
  issql?: boolean;
}

/** Messages AYD lists per page of history, newest first. */
export const HISTORY_PAGE_SIZE = 20;

const headers = (options: AydOptions, extra: Record<string, string> = {}) => ({
  "authorization": `Bearer ${options.apiKey}`,
  ...extra,
});

/**
 * Creates a chat in the chatbot and returns its `chatid`. Throws
 * {@linkcode AydError}: `unauthorized` on 401 (a refused API key), `http`
 * with the status otherwise (404: the chatbot is not found or not this key's).
 *
 * @example
 * ```ts
 * const chatid = await createAydChat(options);
 * ```
 */
export async function createAydChat(options: AydOptions, signal?: AbortSignal): Promise<string> {
  const fetchFn = options.fetch ?? fetch;
  const response = await call(() =>
    fetchFn(`${options.baseUrl}/api/chatbot/newChat`, {
      method: "POST",
      headers: headers(options, { "content-type": "application/json" }),
      body: JSON.stringify({ botid: options.chatId }),
      signal,
    }), signal);
  if (!response.ok) throw await httpError("newChat", response, [options.apiKey]);
  const { chatid } = await readJson(response, signal) as { chatid?: unknown };
  if (typeof chatid !== "string" && typeof chatid !== "number") {
    throw new AydError("protocol", "newChat answer has no chatid");
  }
  return String(chatid);
}

/**
 * Asks `question` in chat `chatid` with the API key, `properties` being the
 * asker's context variables, and reads the answer stream as session mode
 * does. Throws {@linkcode AydError}: `unauthorized` on 401, `http` with the
 * status otherwise (404: the chat is gone).
 *
 * @example
 * ```ts
 * const answer = await askAydChat(options, { chatid, properties: { region: "north" } }, "Late orders?");
 * ```
 */
export async function askAydChat(
  options: AydOptions,
  chat: { chatid: string; properties?: Record<string, unknown> },
  question: string,
  signal?: AbortSignal,
  onText?: (delta: string) => void,
): Promise<AydAnswer> {
  const fetchFn = options.fetch ?? fetch;
  const response = await call(() =>
    fetchFn(`${options.baseUrl}/api/ask`, {
      method: "POST",
      headers: headers(options, {
        "content-type": "application/json",
        "accept": "text/event-stream",
      }),
      body: JSON.stringify({
        question,
        botid: options.chatId,
        chatid: chat.chatid,
        properties: chat.properties,
        debug: false,
        fileUrls: [],
      }),
      signal,
    }), signal);
  if (!response.ok || !response.body) throw await httpError("ask", response, [options.apiKey]);
  return await readAnswerStream(response.body, options.baseUrl, signal, onText);
}

/**
 * One page of a chat's history: at most {@linkcode HISTORY_PAGE_SIZE}
 * messages, newest first, all created before `before` (an ISO time) when
 * given. Throws {@linkcode AydError}, `protocol` when the page is not a list
 * of messages.
 *
 * @example
 * ```ts
 * const newest = await readAydMessages(options, chatid);
 * const older = await readAydMessages(options, chatid, { before: newest.at(-1)!.createdat });
 * ```
 */
export async function readAydMessages(
  options: AydOptions,
  chatid: string,
  page: { before?: string; signal?: AbortSignal } = {},
): Promise<AydMessage[]> {
  const fetchFn = options.fetch ?? fetch;
  const query = new URLSearchParams({ botid: options.chatId, chatid });
  if (page.before !== undefined) query.set("timestamp", page.before);
  const response = await call(() =>
    fetchFn(`${options.baseUrl}/api/chatbot/messages?${query}`, {
      headers: headers(options, { "accept": "application/json" }),
      signal: page.signal,
    }), page.signal);
  if (!response.ok) throw await httpError("messages", response, [options.apiKey]);
  const list = await readJson(response, page.signal);
  if (!Array.isArray(list)) throw new AydError("protocol", "messages answer is not a list");
  return list.map(toMessage);
}

function toMessage(raw: unknown): AydMessage {
  const m = raw as Record<string, unknown> | null;
  const id = m?.id;
  const createdat = m?.createdat;
  if (
    (typeof id !== "string" && typeof id !== "number") ||
    typeof createdat !== "string" || Number.isNaN(Date.parse(createdat)) ||
    typeof m?.role !== "string"
  ) {
    throw new AydError("protocol", "a message of the history lacks its id, role or createdat");
  }
  return {
    id: String(id),
    role: m.role,
    content: typeof m.content === "string" ? m.content : null,
    createdat,
    issql: m.issql === true,
  };
}
