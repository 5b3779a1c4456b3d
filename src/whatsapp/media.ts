/**
 * Fetching the media of an inbound message (a voice note) from Twilio.
 * Twilio's media URLs live on its API host and may need the account's Basic
 * auth; Twilio answers them with a redirect to a short-lived URL on another
 * host. The credentials go to Twilio's API host only, over https: never
 * along a redirect, never to a URL on another host, which is refused before
 * any request. The size is capped from `Content-Length` and again while the
 * body streams.
 *
 * @module
 */
import { describeError } from "../log.ts";

/** Twilio's own cap on a WhatsApp medium: 16 MB. */
export const MAX_MEDIA_BYTES = 16 * 1024 * 1024;
/** How long a whole fetch may take when the caller gives no signal of its own. */
export const MEDIA_TIMEOUT_MS = 30_000;
/** Twilio redirects once; a few more hops are allowed for the media host's own. */
const MAX_REDIRECTS = 5;
const TWILIO_API_ORIGIN = "https://api.twilio.com";

/** How to fetch; `fetch` is injectable for instrumentation. */
export interface TwilioMediaOptions {
  accountSid: string;
  authToken: string;
  /** `TWILIO_API_BASE_URL`: its origin replaces `https://api.twilio.com` (test doubles). */
  apiBaseUrl?: string;
  fetch?: typeof fetch;
  /** Larger media are refused (default {@linkcode MAX_MEDIA_BYTES}). */
  maxBytes?: number;
  /** Ends the fetch (a timeout); default {@linkcode MEDIA_TIMEOUT_MS}. */
  signal?: AbortSignal;
}

/** A fetched medium. */
export interface TwilioMedia {
  bytes: Uint8Array<ArrayBuffer>;
  /** The media host's `Content-Type`, or `application/octet-stream`. */
  contentType: string;
}

/**
 * Why a medium could not be fetched: `foreign_host` (not Twilio's API host:
 * no request made), `too_large`, `http` (an error status), `redirect` (too
 * many hops, or one to a non-http(s) or downgraded URL), `network`, or
 * `timeout`. Messages never hold a URL's query.
 */
export class MediaError extends Error {
  override name = "MediaError";
  constructor(
    readonly kind: "foreign_host" | "too_large" | "http" | "redirect" | "network" | "timeout",
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }

  /** Worth trying again later: no answer, 429 or 5xx. */
  get transient(): boolean {
    if (this.kind === "network" || this.kind === "timeout") return true;
    return this.kind === "http" && (this.status === 429 || (this.status ?? 0) >= 500);
  }
}

/**
 * Whether `url` is on Twilio's API host (`apiBaseUrl`'s origin when set):
 * the only place Twilio's credentials may go.
 *
 * @example
 * ```ts
 * isTwilioApiUrl("https://api.twilio.com/2010-04-01/Accounts/AC…/Messages/MM…/Media/ME…"); // true
 * isTwilioApiUrl("http://api.twilio.com/2010-04-01/…"); // false: not over https
 * isTwilioApiUrl("https://api.twilio.com.evil.example/…"); // false
 * ```
 */
export function isTwilioApiUrl(url: string, apiBaseUrl?: string): boolean {
  try {
    return new URL(url).origin === (apiBaseUrl ? new URL(apiBaseUrl).origin : TWILIO_API_ORIGIN);
  } catch {
    return false;
  }
}

/**
 * Fetches a medium Twilio announced (`MediaUrlN`): with Basic auth from
 * Twilio's API host, then follows its redirects by hand without credentials.
 * Throws {@linkcode MediaError}.
 *
 * @example
 * ```ts
 * const { bytes, contentType } = await fetchTwilioMedia(message.media[0].url, {
 *   accountSid: config.twilioAccountSid,
 *   authToken: config.twilioAuthToken,
 *   apiBaseUrl: config.twilioApiBaseUrl,
 *   signal: AbortSignal.timeout(30_000),
 * });
 * ```
 */
export async function fetchTwilioMedia(
  url: string,
  options: TwilioMediaOptions,
): Promise<TwilioMedia> {
  if (!isTwilioApiUrl(url, options.apiBaseUrl)) {
    throw new MediaError("foreign_host", "media URL is not on Twilio's API host: not fetched");
  }
  const fetchFn = options.fetch ?? fetch;
  const maxBytes = options.maxBytes ?? MAX_MEDIA_BYTES;
  const signal = options.signal ?? AbortSignal.timeout(MEDIA_TIMEOUT_MS);
  const credentials = btoa(`${options.accountSid}:${options.authToken}`);
  let next = new URL(url);
  let headers: HeadersInit = { authorization: `Basic ${credentials}` };
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const response = await call(
      () => fetchFn(next, { headers, redirect: "manual", signal }),
      signal,
    );
    // Whatever comes next is not the URL the credentials were meant for.
    headers = {};
    if (response.status >= 300 && response.status < 400) {
      await response.body?.cancel();
      next = redirectTarget(response, next);
      continue;
    }
    if (!response.ok) {
      await response.body?.cancel();
      const where = hop === 0 ? "Twilio" : "the media host";
      throw new MediaError("http", `${where} answered ${response.status}`, response.status);
    }
    const bytes = await call(() => readCapped(response, maxBytes), signal);
    return {
      bytes,
      contentType: response.headers.get("content-type")?.trim() || "application/octet-stream",
    };
  }
  throw new MediaError("redirect", `media redirected more than ${MAX_REDIRECTS} times`);
}

/** Where a redirect points; refused when it leaves http(s) or drops https. */
function redirectTarget(response: Response, from: URL): URL {
  const location = response.headers.get("location");
  if (!location) {
    throw new MediaError("redirect", `a ${response.status} without a Location`, response.status);
  }
  let target: URL;
  try {
    target = new URL(location, from);
  } catch {
    throw new MediaError("redirect", "a redirect to an unreadable Location", response.status);
  }
  const downgrade = from.protocol === "https:" && target.protocol !== "https:";
  if (downgrade || !["https:", "http:"].includes(target.protocol)) {
    throw new MediaError("redirect", `a redirect to ${target.protocol} refused`, response.status);
  }
  return target;
}

/** The body, refused past `maxBytes` whether announced or counted. */
async function readCapped(response: Response, maxBytes: number): Promise<Uint8Array<ArrayBuffer>> {
  const announced = Number(response.headers.get("content-length") ?? NaN);
  if (announced > maxBytes) {
    await response.body?.cancel();
    throw tooLarge(maxBytes);
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  if (response.body) {
    const reader = response.body.getReader();
    try {
      for (let read = await reader.read(); !read.done; read = await reader.read()) {
        total += read.value.length;
        if (total > maxBytes) {
          await reader.cancel();
          throw tooLarge(maxBytes);
        }
        chunks.push(read.value);
      }
    } finally {
      reader.releaseLock();
    }
  }
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.length;
  }
  return bytes;
}

function tooLarge(maxBytes: number): MediaError {
  return new MediaError("too_large", `medium larger than ${maxBytes} bytes`);
}

/** Runs a network step, turning aborts and transport errors into MediaError. */
async function call<T>(step: () => Promise<T>, signal: AbortSignal): Promise<T> {
  try {
    return await step();
  } catch (error) {
    if (error instanceof MediaError) throw error;
    if (signal.aborted) throw new MediaError("timeout", "media did not arrive in time");
    // describeError cuts the query: a media host's URL is signed there.
    throw new MediaError("network", `media unreachable: ${describeError(error)}`);
  }
}
