/**
 * The error every AYD call fails with, and the helpers that turn transport
 * trouble, statuses and bodies into it. Private to `src/ayd/`.
 *
 * @module
 */
import { maskPhone } from "../log.ts";

/**
 * Why a call to AYD failed: `unauthorized` (401: an expired token in session
 * mode, a refused API key in chat mode), `http` (another status), `network`
 * (no answer, or a cut stream), `timeout`, or `protocol` (an answer of the
 * wrong shape).
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

/** Runs a network step, turning aborts and transport errors into AydError. */
export async function call<T>(step: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  try {
    return await step();
  } catch (error) {
    if (error instanceof AydError) throw error;
    if (signal?.aborted) throw new AydError("timeout", "AYD did not answer in time");
    throw new AydError("network", `AYD unreachable: ${(error as Error).message}`);
  }
}

/** The body as JSON, or a `protocol` error. */
export async function readJson(response: Response, signal?: AbortSignal): Promise<unknown> {
  const text = await call(() => response.text(), signal);
  try {
    return JSON.parse(text);
  } catch {
    throw new AydError("protocol", "answer is not JSON");
  }
}

/**
 * The error for a status that is not a success, carrying AYD's own words
 * (its JSON `error` or `message`, else a short plain-text body), cut short,
 * without the `secrets` the request carried or a phone number, and with the
 * variable to check when the answer points at one.
 */
export async function httpError(
  step: string,
  response: Response,
  secrets: string[],
): Promise<AydError> {
  const said = await aydSays(response, secrets);
  const hint = /chat ?bot|botid/i.test(said)
    ? " (check ASKYOURDATABASE_CHAT_ID)"
    : step !== "ask" && (response.status === 401 || response.status === 403)
    ? " (check ASKYOURDATABASE_API_KEY)"
    : "";
  const kind = response.status === 401 ? "unauthorized" : "http";
  return new AydError(
    kind,
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
