/**
 * The outbound side of Twilio: WhatsApp messages through the official
 * `twilio` package's REST resources, carried by `fetch` so the Twilio hosts
 * can be swapped for `TWILIO_API_BASE_URL` and transient failures retried
 * with backoff.
 *
 * Only the package's `Api` domain is loaded, not its `Twilio` client: that
 * client builds twilio-node's axios `RequestClient` even when given another,
 * and loading it costs about 13 MB of memory for code this bridge never runs.
 *
 * @module
 */
import type Api from "twilio/lib/rest/Api.d.ts";
import { backoffDelay } from "../backoff.ts";
import type RequestClient from "twilio/lib/base/RequestClient.d.ts";
import { createLimit } from "./_limit.ts";

/** A WhatsApp message to send; `to` is `+E164`. */
export interface OutboundMessage {
  to: string;
  body?: string;
  mediaUrls?: string[];
}

/** Sends WhatsApp messages, retrying what Twilio says may succeed later. */
export interface WhatsAppSender {
  /** Resolves with the Message SID; rejects with {@linkcode TwilioSendError}. */
  send(message: OutboundMessage): Promise<string>;
  /**
   * Shows "typing…" under the inbound message `messageSid` (and marks it
   * read) for up to 25 s; Twilio's public beta. Rejects when Twilio refuses.
   */
  typing(messageSid: string): Promise<void>;
}

/** A send that failed for good; `code` is Twilio's error code when known. */
export class TwilioSendError extends Error {
  override name = "TwilioSendError";
  constructor(
    message: string,
    readonly status: number | undefined,
    readonly code: number | undefined,
    readonly attempts: number,
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

const REQUEST_TIMEOUT_MS = 15_000;
const TYPING_URL = "https://messaging.twilio.com/v2/Indicators/Typing.json";

/**
 * Creates a sender from `whatsapp:` + `fromNumber`. The `twilio` package is
 * loaded on the first send, keeping it off the webhook's start-up path.
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
}): WhatsAppSender {
  const retry = options.retry ?? DEFAULT_RETRY;
  const sleep = options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  const rest = restClient(
    options.accountSid,
    options.authToken,
    fetchHttpClient(options.fetch ?? fetch, options.apiBaseUrl),
  );
  let messages: Promise<Api["account"]["messages"]> | undefined;
  const messageList = () =>
    messages ??= import("twilio/lib/rest/Api.js").then(({ default: ApiDomain }) =>
      (new ApiDomain(rest) as Api).account.messages
    );

  return {
    async send(message) {
      const list = await messageList();
      for (let attempt = 1;; attempt++) {
        try {
          const sent = await list.create({
            from: `whatsapp:${options.fromNumber}`,
            to: `whatsapp:${message.to}`,
            body: message.body,
            mediaUrl: message.mediaUrls,
            statusCallback: options.statusCallback,
          });
          return sent.sid;
        } catch (error) {
          const { status, code } = error as { status?: number; code?: number };
          const failure = new TwilioSendError(
            status === undefined
              ? `Twilio unreachable: ${(error as Error).message}`
              : `Twilio answered ${status}${code ? ` (error ${code})` : ""}`,
            status,
            code,
            attempt,
          );
          if (!failure.transient || attempt >= retry.attempts) throw failure;
          await sleep(
            backoffDelay({ baseMs: retry.baseDelayMs, capMs: retry.maxDelayMs }, attempt),
          );
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
        throw new TwilioSendError(
          `typing indicator answered ${response.statusCode}`,
          response.statusCode,
          undefined,
          1,
        );
      }
    },
  };
}

type RestRequest = Parameters<RequestClient["request"]>[0];

/**
 * What twilio-node's REST resources ask of a client: the account, and
 * requests sent with its credentials and the headers twilio-node's own client
 * adds (region and edge routing are not used here).
 */
function restClient(accountSid: string, authToken: string, http: RequestClient) {
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
 * to that base URL instead. At most `maxInFlight` requests run at once.
 */
export function fetchHttpClient(
  fetchFn: typeof fetch,
  apiBaseUrl?: string,
  maxInFlight = MAX_TWILIO_REQUESTS,
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
      signal: AbortSignal.timeout(opts.timeout ?? REQUEST_TIMEOUT_MS),
    });
    return {
      statusCode: response.status,
      body: await response.text(),
      headers: Object.fromEntries(response.headers),
    } as never;
  }
  return client as RequestClient;
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
