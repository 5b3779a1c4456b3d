/**
 * The AskYourDatabase client in session mode (the Flask app's protocol):
 * opening a per-user chat session through the embed widget's one-time login
 * URL and asking a question with its access token over Server-Sent Events.
 *
 * @module
 */
import { parseSetCookie } from "set-cookie-parser";
import { type AydAnswer, readAnswerStream } from "./_answer_stream.ts";
import { AydError, call, httpError, readJson } from "./_http.ts";
import { type AydIdentity, defaultIdentity } from "./identity.ts";

export { AydError } from "./_http.ts";
export type { AydAnswer } from "./_answer_stream.ts";

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

/** How long a token lives when AYD's cookie does not say. */
export const DEFAULT_TOKEN_TTL_MS = 7 * 24 * 60 * 60 * 1000;
const MAX_REDIRECTS = 5;

/**
 * Opens an AYD chat session for a WhatsApp user: asks for a one-time login
 * URL, then follows its redirects by hand (fetch hides the cookies of
 * redirect hops) until a hop sets the `accessToken` cookie. The session is
 * opened as `identity` (its `properties` sent when there are any), else as
 * the made-up "WhatsApp User +…".
 *
 * @example
 * ```ts
 * const { token, expiresAt } = await createAydSession(options, "+15551234567", { now: Date.now() });
 * ```
 */
export async function createAydSession(
  options: AydOptions,
  phone: string,
  context: { now: number; signal?: AbortSignal; identity?: AydIdentity },
): Promise<AydToken> {
  const fetchFn = options.fetch ?? fetch;
  const { name, email, properties } = context.identity ?? defaultIdentity(phone);
  const response = await call(() =>
    fetchFn(`${options.baseUrl}/api/chatbot/v2/session`, {
      method: "POST",
      headers: {
        "authorization": `Bearer ${options.apiKey}`,
        "content-type": "application/json",
      },
      body: JSON.stringify({ chatbotid: options.chatId, name, email, properties }),
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
  if (!response.ok || !response.body) throw await httpError("ask", response, [token]);
  return await readAnswerStream(response.body, options.baseUrl, signal, onText);
}
