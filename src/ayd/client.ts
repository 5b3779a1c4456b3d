/**
 * The AskYourDatabase client: opening a per-user chat session and asking a
 * question over its Server-Sent Events stream.
 *
 * @module
 */
import { createParser } from "eventsource-parser";
import { parseSetCookie } from "set-cookie-parser";
import { maskPhone } from "../log.ts";
import { readText } from "./_read_text.ts";

/** How to reach AYD. `fetch` is injectable for tests and instrumentation. */
export interface AydOptions {
  baseUrl: string;
  apiKey: string;
  chatId: string;
  fetch?: typeof fetch;
}

/** An AYD conversation token and when it stops working (Unix ms). */
export interface AydToken {
  token: string;
  expiresAt: number;
}

/** What one answer stream carried. */
export interface AydAnswer {
  text: string;
  imageUrls: string[];
}

/**
 * Why a call to AYD failed: `unauthorized` (401, the token expired),
 * `http` (another status), `network` (no answer, or a cut stream),
 * `timeout`, or `protocol` (an answer of the wrong shape).
 */
export class AydError extends Error {
  override name = "AydError";
  constructor(
    readonly kind: "unauthorized" | "http" | "network" | "timeout" | "protocol",
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

/** How long a token lives when AYD's cookie does not say. */
export const DEFAULT_TOKEN_TTL_MS = 7 * 24 * 60 * 60 * 1000;
const MAX_REDIRECTS = 5;

/**
 * Opens an AYD chat session for a WhatsApp user: asks for a one-time login
 * URL, then follows its redirects by hand (fetch hides the cookies of
 * redirect hops) until a hop sets the `accessToken` cookie.
 *
 * @example
 * ```ts
 * const { token, expiresAt } = await createAydSession(options, "+15551234567", { now: Date.now() });
 * ```
 */
export async function createAydSession(
  options: AydOptions,
  phone: string,
  context: { now: number; signal?: AbortSignal },
): Promise<AydToken> {
  const fetchFn = options.fetch ?? fetch;
  const digits = phone.replace(/\D/g, "");
  const response = await call(() =>
    fetchFn(`${options.baseUrl}/api/chatbot/v2/session`, {
      method: "POST",
      headers: {
        "authorization": `Bearer ${options.apiKey}`,
        "content-type": "application/json",
      },
      body: JSON.stringify({
        chatbotid: options.chatId,
        name: `WhatsApp User ${phone}`,
        email: `wa${digits}@example.com`,
      }),
      signal: context.signal,
    }), context.signal);
  if (!response.ok) throw await httpError("session", response, [options.apiKey]);
  const { url } = await readJson(response, context.signal) as { url?: unknown };
  if (typeof url !== "string" || url === "") {
    throw new AydError("protocol", "session answer has no url");
  }

  let next = new URL(url, options.baseUrl);
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const hopResponse = await call(
      () => fetchFn(next, { redirect: "manual", signal: context.signal }),
      context.signal,
    );
    await hopResponse.body?.cancel();
    const token = accessTokenFrom(hopResponse.headers, context.now);
    if (token) return token;
    const location = hopResponse.headers.get("location");
    const redirects = hopResponse.status >= 300 && hopResponse.status < 400;
    if (!redirects || !location) {
      throw new AydError(
        hopResponse.ok ? "protocol" : "http",
        `session callback answered ${hopResponse.status} without an accessToken cookie`,
        hopResponse.status,
      );
    }
    next = new URL(location, next);
  }
  throw new AydError("protocol", "session callback redirected too often");
}

/** Reads `accessToken` from a hop's `Set-Cookie` headers, with its lifetime. */
function accessTokenFrom(headers: Headers, now: number): AydToken | undefined {
  const cookie = parseSetCookie(headers.getSetCookie(), { decodeValues: false })
    .find((c) => c.name === "accessToken" && c.value !== "");
  if (!cookie) return undefined;
  let expiresAt = now + DEFAULT_TOKEN_TTL_MS;
  if (cookie.maxAge !== undefined && Number.isFinite(cookie.maxAge)) {
    expiresAt = now + cookie.maxAge * 1000;
  } else if (cookie.expires && !Number.isNaN(cookie.expires.getTime())) {
    expiresAt = cookie.expires.getTime();
  }
  return { token: cookie.value, expiresAt };
}

/**
 * Asks `question` in the conversation of `token` and reads the whole answer
 * stream: text deltas are concatenated, chart URLs collected; SQL, status
 * and unknown events and lines that are not JSON are skipped. The answer
 * ends when the connection closes or at `data: [DONE]`, whichever is first.
 * `onText` sees each text delta as it arrives. Throws
 * {@linkcode AydError} with kind `unauthorized` on 401.
 *
 * @example
 * ```ts
 * const answer = await askAyd(options, token, "How many orders shipped late?");
 * console.log(answer.text);
 * ```
 */
export async function askAyd(
  options: AydOptions,
  token: string,
  question: string,
  signal?: AbortSignal,
  onText?: (delta: string) => void,
): Promise<AydAnswer> {
  const fetchFn = options.fetch ?? fetch;
  const response = await call(() =>
    fetchFn(`${options.baseUrl}/api/ask?debug=false`, {
      method: "POST",
      headers: {
        "x-ayd-access-token": token,
        "content-type": "application/json",
        "accept": "text/event-stream",
      },
      body: JSON.stringify({
        question,
        fileUrls: [],
        botid: options.chatId,
        debug: false,
      }),
      signal,
    }), signal);
  if (response.status === 401) {
    await response.body?.cancel();
    throw new AydError("unauthorized", "ask answered 401", 401);
  }
  if (!response.ok || !response.body) throw await httpError("ask", response, [token]);

  const answer: AydAnswer = { text: "", imageUrls: [] };
  let over = false;
  const parser = createParser({
    onEvent({ data }) {
      if (over) return;
      // `[DONE]` ends the answer even when the connection stays open (a proxy's keep-alive).
      if (data.trim() === "[DONE]") return void (over = true);
      const event = parseEvent(data);
      if (event?.isText && typeof event.content === "string") {
        answer.text += event.content;
        onText?.(event.content);
      } else if (event?.isImage && typeof event.url === "string") {
        const url = chartUrl(event.url, options.baseUrl);
        if (url) answer.imageUrls.push(url);
      }
    },
  });
  await call(async () => {
    try {
      await readText(response.body!, (text) => {
        parser.feed(text);
        if (over) throw END_OF_ANSWER; // cancels the rest of the stream
      });
    } catch (error) {
      if (error !== END_OF_ANSWER) throw error;
    }
  }, signal);
  // AYD ends by closing the connection; a last event may lack its blank line.
  if (!over) parser.feed("\n\n");
  return answer;
}

/** Thrown from inside the stream reader to stop at `[DONE]`. */
const END_OF_ANSWER = new Error("end of answer");

/** A chart's absolute http(s) URL (Twilio fetches it), or undefined. */
function chartUrl(raw: string, baseUrl: string): string | undefined {
  try {
    const url = new URL(raw, baseUrl);
    return url.protocol === "https:" || url.protocol === "http:" ? url.href : undefined;
  } catch {
    return undefined;
  }
}

function parseEvent(data: string): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(data);
    return typeof value === "object" && value !== null ? value : undefined;
  } catch {
    return undefined; // `[DONE]` and other non-JSON lines
  }
}

/** Runs a network step, turning aborts and transport errors into AydError. */
async function call<T>(step: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  try {
    return await step();
  } catch (error) {
    if (error instanceof AydError) throw error;
    if (signal?.aborted) throw new AydError("timeout", "AYD did not answer in time");
    throw new AydError("network", `AYD unreachable: ${(error as Error).message}`);
  }
}

async function readJson(response: Response, signal?: AbortSignal): Promise<unknown> {
  const text = await call(() => response.text(), signal);
  try {
    return JSON.parse(text);
  } catch {
    throw new AydError("protocol", "answer is not JSON");
  }
}

/**
 * An AydError for an unexpected status that carries AYD's own words (its
 * JSON `error` or `message`, else a short plain-text body), cut short,
 * without the `secrets` the request carried or a phone number, and with the
 * variable to check when the answer points at one.
 */
async function httpError(step: string, response: Response, secrets: string[]): Promise<AydError> {
  const said = await aydSays(response, secrets);
  const hint = /chat ?bot|botid/i.test(said)
    ? " (check ASKYOURDATABASE_CHAT_ID)"
    : step === "session" && (response.status === 401 || response.status === 403)
    ? " (check ASKYOURDATABASE_API_KEY)"
    : "";
  return new AydError(
    "http",
    `${step} answered ${response.status}${said && `: ${said}`}${hint}`,
    response.status,
  );
}

/** What an error answer says, in at most 160 characters of one line; "" when nothing readable. */
async function aydSays(response: Response, secrets: string[]): Promise<string> {
  let text: string;
  try {
    text = await readLimited(response, 4_096);
  } catch {
    return "";
  }
  let said = "";
  try {
    const body = JSON.parse(text);
    const field = body?.error ?? body?.message;
    said = typeof field === "string"
      ? field
      : typeof field?.message === "string"
      ? field.message
      : "";
  } catch {
    const plain = /^text\/plain/i.test(response.headers.get("content-type") ?? "");
    said = plain ? text : ""; // an HTML error page says nothing useful in a log line
  }
  for (const secret of secrets) if (secret) said = said.replaceAll(secret, "…");
  // The session's name and email hold the user's number.
  said = said.replace(/\+?\d{7,}/g, maskPhone).replace(/\s+/g, " ").trim();
  return said.length > 160 ? said.slice(0, 159) + "…" : said;
}

/** The start of a body as text, at most `limit` bytes; the rest is not read. */
async function readLimited(response: Response, limit: number): Promise<string> {
  if (!response.body) return "";
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < limit) {
      const { value, done } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.length;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.length;
  }
  return new TextDecoder().decode(bytes.subarray(0, limit));
}
