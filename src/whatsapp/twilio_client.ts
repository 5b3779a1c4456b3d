/**
 * The outbound side of Twilio: WhatsApp messages through the official
 * `twilio` package's REST resources, carried by `fetch` so the Twilio hosts
 * can be swapped for `TWILIO_API_BASE_URL` and transient failures retried
 * with backoff. A send that may have reached Twilio is looked up in its
 * Message list before it is tried again, since Twilio documents no
 * idempotency key for creating messages.
 *
 * Only the package's Message resource is loaded, not its `Twilio` client:
 * that client builds twilio-node's axios `RequestClient` even when given
 * another, and loading it costs about 13 MB of memory for code this bridge
 * never runs.
 *
 * @module
 */
import type Api from "twilio/lib/rest/Api.d.ts";
import { backoffDelay } from "../backoff.ts";
import { type Logger, maskPhone } from "../log.ts";
import type RequestClient from "twilio/lib/base/RequestClient.d.ts";
import { createLimit } from "./_limit.ts";
import { classifyFailure, failureReason, twilioSays } from "./_send_outcome.ts";
import { findSentIn, type SentQuery } from "./_sent_lookup.ts";

export type { SentQuery } from "./_sent_lookup.ts";

/** A WhatsApp message to send; `to` is `+E164`. */
export interface OutboundMessage {
  to: string;
  body?: string;
  mediaUrls?: string[];
}

/** Sends WhatsApp messages, retrying what Twilio says may succeed later. */
export interface WhatsAppSender {
  /**
   * Resolves with the Message SID; rejects with {@linkcode TwilioSendError}.
   * After an attempt whose outcome is unknown (timeout, reset, 5xx), the
   * message is looked up with {@linkcode WhatsAppSender.findSent} before any
   * further attempt, and a copy found there is the result.
   */
  send(message: OutboundMessage): Promise<string>;
  /**
   * Shows "typing…" under the inbound message `messageSid` (and marks it
   * read) for up to 25 s; Twilio's public beta. Rejects when Twilio refuses.
   */
  typing(messageSid: string): Promise<void>;
  /**
   * The SID of a message Twilio created from this sender to `query.to` with
   * exactly this body (empty when none) and as many media, at or after
   * `query.since` (allowing 2 s for clock skew); undefined when its Message
   * list has none. Rejects with {@linkcode TwilioSendError} when the list
   * cannot be read. For a part whose send may have reached Twilio before a
   * crash: look first, send only when this resolves undefined.
   *
   * @example
   * ```ts
   * const sid = await sender.findSent({ to: "+15551234567", body: part, since: startedAt });
   * if (sid === undefined) await sender.send({ to: "+15551234567", body: part });
   * ```
   */
  findSent(query: SentQuery): Promise<string | undefined>;
}

/** A send that failed for good; `code` is Twilio's error code when known. */
export class TwilioSendError extends Error {
  override name = "TwilioSendError";
  constructor(
    message: string,
    readonly status: number | undefined,
    readonly code: number | undefined,
    readonly attempts: number,
    /**
     * Set when an attempt may have reached Twilio and no copy was found yet:
     * when the first such attempt began (epoch ms). Pass it to `findSent` as
     * `since` before sending the message again.
     */
    readonly uncertainSince?: number,
  ) {
    super(message);
  }

  /** Worth trying again later: no answer, 429 or 5xx. */
  get transient(): boolean {
    return this.status === undefined || this.status === 429 || this.status >= 500;
  }
}

/** How persistently a send is retried. */
export interface RetryPolicy {
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

/** Four attempts over about four seconds. */
export const DEFAULT_RETRY: RetryPolicy = {
  attempts: 4,
  baseDelayMs: 500,
  maxDelayMs: 4_000,
};

/** How long a request to Twilio may take, answer included. */
export const REQUEST_TIMEOUT_MS = 15_000;
const TYPING_URL = "https://messaging.twilio.com/v2/Indicators/Typing.json";

/**
 * Creates a sender from `whatsapp:` + `fromNumber`. The `twilio` package is
 * loaded on the first send, keeping it off the webhook's start-up path.
 * `log` hears of look-ups (`twilio.send_found`, `twilio.lookup_failed`).
 *
 * @example
 * ```ts
 * const sender = createWhatsAppSender({
 *   accountSid: "AC…", authToken: "…", fromNumber: "+14155238886",
 * });
 * await sender.send({ to: "+15551234567", body: "Hello" });
 * ```
 */
export function createWhatsAppSender(options: {
  accountSid: string;
  authToken: string;
  fromNumber: string;
  apiBaseUrl?: string;
  /** Where Twilio reports each message's delivery status. */
  statusCallback?: string;
  fetch?: typeof fetch;
  retry?: RetryPolicy;
  sleep?: (ms: number) => Promise<void>;
  /** Per request; {@linkcode REQUEST_TIMEOUT_MS} by default. */
  requestTimeoutMs?: number;
  log?: Logger;
  now?: () => number;
}): WhatsAppSender {
  const retry = options.retry ?? DEFAULT_RETRY;
  const sleep = options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  const now = options.now ?? Date.now;
  const log = options.log;
  const from = `whatsapp:${options.fromNumber}`;
  const rest = twilioRestClient(
    options.accountSid,
    options.authToken,
    fetchHttpClient(
      options.fetch ?? fetch,
      options.apiBaseUrl,
      MAX_TWILIO_REQUESTS,
      options.requestTimeoutMs,
    ),
  );
  let messages: Promise<MessageList> | undefined;
  const messageList = () => messages ??= loadMessageList(rest);

  async function findSent(query: SentQuery): Promise<string | undefined> {
    try {
      return await findSentIn(await messageList(), from, query);
    } catch (error) {
      const { status, code } = error as { status?: number; code?: number };
      throw new TwilioSendError(`Twilio's message list: ${failureReason(error)}`, status, code, 1);
    }
  }

  /** Looks for a copy of `message`; a look-up that fails counts as none found. */
  async function lookUp(message: OutboundMessage, since: number, attempt: number) {
    const to = maskPhone(message.to);
    try {
      const sid = await findSent({ ...message, since });
      if (sid !== undefined) log?.info("twilio.send_found", { to, sid, attempt });
      return sid;
    } catch (error) {
      const { status, code, message: reason } = error as TwilioSendError;
      log?.warn("twilio.lookup_failed", { to, attempt, status, code, reason });
      return undefined;
    }
  }

  return {
    async send(message) {
      const list = await messageList();
      let uncertainSince: number | undefined;
      for (let attempt = 1;; attempt++) {
        const began = now();
        try {
          const sent = await list.create({
            from,
            to: `whatsapp:${message.to}`,
            body: message.body,
            mediaUrl: message.mediaUrls,
            statusCallback: options.statusCallback,
          });
          return sent.sid;
        } catch (error) {
          const outcome = classifyFailure(error);
          if (outcome === "unknown") uncertainSince ??= began;
          const { status, code } = error as { status?: number; code?: number };
          const failure = new TwilioSendError(
            status === undefined
              ? `Twilio unreachable: ${(error as Error).message}`
              : `Twilio answered ${status}${code ? ` (error ${code})` : ""}${twilioSays(error)}`,
            status,
            code,
            attempt,
            uncertainSince,
          );
          const again = outcome !== "rejected" && attempt < retry.attempts;
          if (!again && uncertainSince === undefined) throw failure;
          // The wait also gives a create Twilio is still working on time to show in its list.
          await sleep(
            backoffDelay({ baseMs: retry.baseDelayMs, capMs: retry.maxDelayMs }, attempt),
          );
          if (uncertainSince !== undefined) {
            const found = await lookUp(message, uncertainSince, attempt);
            if (found !== undefined) return found;
          }
          if (!again) throw failure;
        }
      }
    },
    async typing(messageSid) {
      const response = await rest.request({
        method: "post",
        uri: TYPING_URL,
        data: { messageId: messageSid, channel: "whatsapp" },
      });
      if (response.statusCode < 200 || response.statusCode >= 300) {
        const answer = parseJson(response.body);
        throw new TwilioSendError(
          `typing indicator answered ${response.statusCode}${twilioSays(answer)}`,
          response.statusCode,
          typeof answer?.code === "number" ? answer.code : undefined,
          1,
        );
      }
    },
    findSent,
  };
}

type MessageList = Api["account"]["messages"];

/**
 * The account's Message resource, as `Api.account.messages` builds it, from
 * its own module: the `Api` domain loads every resource of the 2010 API
 * (calls, conferences, recordings …) with it, about 4 MB more of memory.
 */
async function loadMessageList(rest: ReturnType<typeof twilioRestClient>): Promise<MessageList> {
  // CommonJS modules compiled from ES ones: the class is `exports.default`.
  const [{ default: { default: Domain } }, { default: { default: Version } }, message] =
    await Promise.all([
      import("twilio/lib/base/Domain.js"),
      import("twilio/lib/base/Version.js"),
      import("twilio/lib/rest/api/v2010/account/message.js"),
    ]);
  const domain = new Domain(rest as never, "https://api.twilio.com");
  return message.MessageListInstance(new Version(domain, "2010-04-01") as never, rest.accountSid);
}

type RestRequest = Parameters<RequestClient["request"]>[0];

/**
 * What twilio-node's REST resources ask of a client: the account, and
 * requests sent with its credentials and the headers twilio-node's own client
 * adds (region and edge routing are not used here).
 *
 * @example
 * ```ts
 * const rest = twilioRestClient("AC…", "token", fetchHttpClient(fetch));
 * const { default: ApiDomain } = await import("twilio/lib/rest/Api.js");
 * await (new ApiDomain(rest) as Api).account.fetch();
 * ```
 */
export function twilioRestClient(accountSid: string, authToken: string, http: RequestClient) {
  return {
    accountSid,
    request(opts: RestRequest) {
      const headers: Record<string, string> = {
        "User-Agent": USER_AGENT,
        "Accept-Charset": "utf-8",
        ...opts.headers as Record<string, string>,
      };
      if ((opts.method === "post" || opts.method === "put") && !headers["Content-Type"]) {
        headers["Content-Type"] = "application/x-www-form-urlencoded";
      }
      if (opts.method !== "delete" && !headers["Accept"]) headers["Accept"] = "application/json";
      return http.request({ ...opts, username: accountSid, password: authToken, headers });
    },
  };
}

const USER_AGENT = `twilio-node (deno/${Deno.version.deno} ${Deno.build.os} ${Deno.build.arch})`;

/**
 * Twilio requests in flight at once. Twilio queues what a sender cannot pass
 * on at once (about 80 WhatsApp messages a second), so more gains nothing,
 * while each open request holds a connection's memory: a burst of 1,000
 * finished answers would otherwise open 1,000 connections.
 */
export const MAX_TWILIO_REQUESTS = 32;

/**
 * A `fetch`-based stand-in for twilio-node's axios `RequestClient`. With
 * `apiBaseUrl`, requests for any `*.twilio.com` host keep their path but go
 * to that base URL instead. At most `maxInFlight` requests run at once, each
 * given `timeoutMs` (answer included) unless twilio-node asks for another.
 *
 * @example
 * ```ts
 * const http = fetchHttpClient(fetch, "http://127.0.0.1:8080", 4, 2_000);
 * ```
 */
export function fetchHttpClient(
  fetchFn: typeof fetch,
  apiBaseUrl?: string,
  maxInFlight = MAX_TWILIO_REQUESTS,
  timeoutMs = REQUEST_TIMEOUT_MS,
): RequestClient {
  const limit = createLimit(maxInFlight);
  const client: Pick<RequestClient, "request"> = {
    request: (opts) => limit(() => request(opts)),
  };
  async function request(opts: Parameters<RequestClient["request"]>[0]) {
    const url = new URL(opts.uri);
    const target = apiBaseUrl ? new URL(url.pathname + url.search, apiBaseUrl + "/") : url;
    const headers = new Headers(opts.headers as Record<string, string>);
    if (opts.username && opts.password) {
      headers.set("authorization", `Basic ${btoa(`${opts.username}:${opts.password}`)}`);
    }
    for (const [name, value] of Object.entries(opts.params ?? {})) {
      for (const item of [value].flat()) target.searchParams.append(name, String(item));
    }
    const response = await fetchFn(target, {
      method: opts.method.toUpperCase(),
      headers,
      body: opts.data ? formBody(opts.data as Record<string, unknown>) : undefined,
      redirect: opts.allowRedirects ? "follow" : "manual",
      signal: AbortSignal.timeout(opts.timeout ?? timeoutMs),
    });
    return {
      statusCode: response.status,
      body: await response.text(),
      headers: Object.fromEntries(response.headers),
    } as never;
  }
  return client as RequestClient;
}

function parseJson(text: unknown): { code?: unknown; message?: unknown } | undefined {
  try {
    return typeof text === "string" ? JSON.parse(text) : undefined;
  } catch {
    return undefined;
  }
}

/** Form-encodes like twilio-node: list values repeat their name. */
function formBody(data: Record<string, unknown>): URLSearchParams {
  const form = new URLSearchParams();
  for (const [name, value] of Object.entries(data)) {
    for (const item of [value].flat()) {
      if (item !== undefined && item !== null) form.append(name, String(item));
    }
  }
  return form;
}
