/**
 * A fake Twilio REST API for tests: a real HTTP server on 127.0.0.1 that accepts
 * `POST /2010-04-01/Accounts/{AccountSid}/Messages.json` (form-encoded, Basic auth), lists
 * messages at `GET` of the same path, and takes the WhatsApp typing indicator
 * `POST /v2/Indicators/Typing.json`; it answers with Twilio's JSON shapes and records what it
 * received. For `deno task doctor` it also serves the Account resource
 * (`GET /2010-04-01/Accounts/{AccountSid}.json`), the account's phone numbers
 * (`GET …/IncomingPhoneNumbers.json?PhoneNumber=`) and its WhatsApp senders
 * (`GET /v2/Channels/Senders?Channel=whatsapp`, the Senders API). Inbound media live at
 * `GET …/Messages/{MM…}/Media/{ME…}`: Basic auth, then a redirect to a second server standing
 * for Twilio's media host, which fails the test (at `close`) if Twilio's credentials ever
 * reach it.
 *
 * @module
 */
import { type MediaCdn, type MediaCdnBehaviour, startMediaCdn } from "./_media_cdn.ts";

export type { MediaCdn, MediaCdnBehaviour };

/** A message the fake accepted (answered 201). */
export interface SentMessage {
  sid: string;
  to: string;
  from: string;
  body: string;
  mediaUrls: string[];
  statusCallback?: string;
}

/**
 * A scripted failure for one Messages.json request; `status: 0` drops the
 * response body.
 */
export interface TwilioFailure {
  status: number;
  code: number;
  message?: string;
  /** Seconds, sent as a `Retry-After` header. */
  retryAfter?: number;
}

/** A typing-indicator request the fake accepted. */
export interface TypingIndicator {
  messageId: string;
  channel: string;
}

/** The Account resource's fields the fake lets a test set. */
export interface FakeAccount {
  /** `active` (default), `suspended` or `closed`. */
  status: string;
  /** `Full` (default) or `Trial`. */
  type: string;
  friendlyName: string;
}

/** One of the account's phone numbers (IncomingPhoneNumbers). */
export interface FakeIncomingNumber {
  phoneNumber: string;
  /** The number's SMS webhook, `sms_url`. */
  smsUrl?: string;
}

/** One of the account's WhatsApp senders (Senders API). */
export interface FakeWhatsAppSender {
  /** `whatsapp:+E164`. */
  senderId: string;
  /** Default `ONLINE`. */
  status?: string;
  /** `webhook.callback_url`: where incoming messages go. */
  callbackUrl?: string;
}

/** Options for {@link startFakeTwilio}. */
export interface FakeTwilioOptions {
  accountSid: string;
  authToken: string;
  /** Twilio's clock, which stamps `date_created`; the real clock by default. */
  now?: () => Date;
  /** How a media URL redirects to the media host (default 307, as Twilio does). */
  mediaRedirectStatus?: 301 | 302 | 303 | 307 | 308;
}

/** A running fake Twilio server. */
export interface FakeTwilio extends AsyncDisposable {
  /** Base URL, `http://127.0.0.1:<port>` (serves both api. and messaging. hosts' paths). */
  url: string;
  /** Accepted messages, in order. */
  messages: SentMessage[];
  /** Accepted typing indicators, in order. */
  typing: TypingIndicator[];
  /** The Account resource, as later fetches see it; change its fields freely. */
  account: FakeAccount;
  /** The account's phone numbers; push or remove freely. */
  incomingNumbers: FakeIncomingNumber[];
  /** The account's WhatsApp senders; push or remove freely. */
  whatsappSenders: FakeWhatsAppSender[];
  /** Makes the Senders API answer `status` (403, 404, …; 0 = serve the list again). */
  failSenders(status: number): void;
  /**
   * Makes the Account resource answer `status` (500, 503, …) to authenticated fetches, with
   * Twilio's JSON error; 0 serves the account again.
   */
  failAccount(status: number): void;
  /** Every Messages.json create (POST), including rejected and failed ones. */
  readonly attempts: number;
  /** Every Messages.json list request (GET), including rejected and failed ones. */
  readonly lookups: number;
  /** Queue failures (FIFO); each later authenticated Messages.json request consumes one. */
  failNext(...responses: TwilioFailure[]): void;
  /** Asks `pick` for a failure on every create the `failNext` queue leaves alone. */
  faults(pick: (() => TwilioFailure | undefined) | null): void;
  /** Queue failures (FIFO) for list requests; each later authenticated one consumes one. */
  failList(...responses: TwilioFailure[]): void;
  /** Makes the typing endpoint answer `status` (0 = succeed again). */
  failTyping(status: number): void;
  /** Leaves the `n`th create (1-based, as counted by `attempts`) unanswered until close. */
  holdAttempt(n: number): void;
  /**
   * Accepts the `n`th create (1-based) but holds its 201 for `ms`, or until close when `ms`
   * is left out: Twilio during a latency incident, answering after the client gave up.
   */
  answerLate(n: number, ms?: number): void;
  /** Leaves the `n`th list request (1-based, as counted by `lookups`) unanswered until close. */
  holdLookup(n: number): void;
  /** Resolves with the messages to `to` once at least `count` were accepted. */
  waitForMessages(to: string, count: number, timeoutMs?: number): Promise<SentMessage[]>;
  /**
   * Keeps a medium as Twilio keeps an inbound one and gives its URL, for `MediaUrl0`:
   * `{url}/2010-04-01/Accounts/{sid}/Messages/MM…/Media/ME…`.
   */
  addMedia(bytes: Uint8Array, contentType: string): string;
  /** Requests for a medium on the API host, authenticated or not. */
  readonly mediaRequests: number;
  /** The host media URLs redirect to; `mediaHost.behave(…)` makes it slow, failing or chunked. */
  mediaHost: MediaCdn;
  /**
   * Rejects pending waits, clears timers and shuts both servers down; then rejects if any
   * request brought an `Authorization` header to the media host (clear
   * `mediaHost.violations` in a test that provokes one on purpose).
   */
  close(): Promise<void>;
}

/** Error used to drop a response on purpose; the server's onError stays quiet about it. */
class FakeConnectionDrop extends Error {}

interface Waiter {
  to: string;
  count: number;
  resolve(messages: SentMessage[]): void;
  reject(err: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

const E164_WHATSAPP = /^whatsapp:\+[1-9]\d{6,14}$/;

function randomHex(bytes: number): string {
  const buf = crypto.getRandomValues(new Uint8Array(bytes));
  return Array.from(buf, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Twilio's JSON error body. */
export function twilioError(
  status: number,
  code: number,
  message: string,
  headers: Record<string, string> = {},
): Response {
  const body = { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status };
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

function rfc2822(date: Date): string {
  return date.toUTCString().replace("GMT", "+0000");
}

/** A response whose body errors at once: the client sees a broken connection. */
function droppedResponse(): Response {
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      c.error(new FakeConnectionDrop("fake Twilio dropped the connection"));
    },
  });
  return new Response(body, { headers: { "content-type": "application/json" } });
}

/** A message as the fake keeps it: what was sent, and when Twilio created it. */
interface Stored {
  message: SentMessage;
  created: Date;
}

/** The Message resource, as Twilio returns it on create and in the list. */
function messageResource(accountSid: string, { message: m, created }: Stored) {
  // Nothing is ever delivered here, so a message stays `queued` with no `date_sent`.
  const now = rfc2822(created);
  const uri = `/2010-04-01/Accounts/${accountSid}/Messages/${m.sid}`;
  return {
    account_sid: accountSid,
    api_version: "2010-04-01",
    body: m.body,
    date_created: now,
    date_updated: now,
    date_sent: null,
    direction: "outbound-api",
    error_code: null,
    error_message: null,
    from: m.from,
    messaging_service_sid: null,
    num_media: String(m.mediaUrls.length),
    num_segments: "1",
    price: null,
    price_unit: "USD",
    sid: m.sid,
    status: "queued",
    subresource_uris: { media: `${uri}/Media.json` },
    to: m.to,
    uri: `${uri}.json`,
  };
}

/** The failure's response: Twilio's error body, or a body that breaks off. */
function failureResponse(failure: TwilioFailure): Response {
  if (failure.status === 0) return droppedResponse();
  const headers: Record<string, string> = failure.retryAfter === undefined
    ? {}
    : { "retry-after": String(failure.retryAfter) };
  const message = failure.message ?? `Fake failure ${failure.code}`;
  return twilioError(failure.status, failure.code, message, headers);
}

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

/** The list's filters, in the order Twilio writes them into its paging URIs. */
const LIST_FILTERS = ["To", "From", "DateSent", "DateSent<", "DateSent>"];

/**
 * One page of the Messages list, as Twilio serves it: filtered by `To` and `From`, newest
 * first, `PageSize` (default 50, 1–1000) at a time, paged by the `PageToken` in
 * `next_page_uri` (`PA` + the last SID shown) or `previous_page_uri` (`PB` + the first).
 */
function messagePage(accountSid: string, stored: Stored[], query: URLSearchParams): Response {
  const pageSize = query.has("PageSize") ? Number(query.get("PageSize")) : 50;
  if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 1000) {
    return twilioError(400, 20001, "PageSize must be between 1 and 1000");
  }
  const page = Number(query.get("Page") ?? 0);
  const filters = new URLSearchParams();
  for (const name of LIST_FILTERS) {
    for (const value of query.getAll(name)) filters.append(name, value);
  }
  const wanted = (s: Stored) =>
    (!query.has("To") || s.message.to === query.get("To")) &&
    (!query.has("From") || s.message.from === query.get("From")) &&
    // Only a sent message has a sent date, and nothing here is ever sent.
    !LIST_FILTERS.slice(2).some((name) => query.has(name));
  const newestFirst = stored.filter(wanted).reverse()
    .sort((a, b) => b.created.getTime() - a.created.getTime());
  let items: Stored[];
  const token = query.get("PageToken");
  if (token) {
    const at = newestFirst.findIndex((s) => s.message.sid === token.slice(2));
    if (at < 0 || !/^P[AB]/.test(token)) return twilioError(400, 21481, "Invalid PageToken");
    items = token.startsWith("PA")
      ? newestFirst.slice(at + 1, at + 1 + pageSize)
      : newestFirst.slice(Math.max(0, at - pageSize), at);
  } else {
    items = newestFirst.slice(0, pageSize);
  }
  const base = `/2010-04-01/Accounts/${accountSid}/Messages.json`;
  const uri = (pageNumber: number, pageToken?: string) => {
    const params = new URLSearchParams(filters);
    params.set("PageSize", String(pageSize));
    params.set("Page", String(pageNumber));
    if (pageToken) params.set("PageToken", pageToken);
    return `${base}?${params}`;
  };
  const last = items.at(-1);
  const more = last !== undefined && newestFirst.indexOf(last) < newestFirst.length - 1;
  const start = page * pageSize;
  return json({
    end: items.length === 0 ? start : start + items.length - 1,
    first_page_uri: uri(0),
    messages: items.map((s) => messageResource(accountSid, s)),
    next_page_uri: more ? uri(page + 1, `PA${last.message.sid}`) : null,
    page,
    page_size: pageSize,
    previous_page_uri: page > 0 && items.length > 0
      ? uri(page - 1, `PB${items[0].message.sid}`)
      : null,
    start,
    uri: uri(page, token ?? undefined),
  });
}

/** Starts a fake Twilio server on a random port of 127.0.0.1. */
export function startFakeTwilio(opts: FakeTwilioOptions): Promise<FakeTwilio> {
  const now = opts.now ?? (() => new Date());
  const messages: SentMessage[] = [];
  const stored: Stored[] = [];
  const typing: TypingIndicator[] = [];
  const failures: TwilioFailure[] = [];
  const listFailures: TwilioFailure[] = [];
  const waiters = new Set<Waiter>();
  const held = new Set<() => void>();
  const late = new Map<number, number | undefined>();
  let attempts = 0;
  let lookups = 0;
  let holdAttempt = 0;
  let holdLookup = 0;
  let typingFailure = 0;
  let randomFault: (() => TwilioFailure | undefined) | null = null;
  const expectedAuth = `Basic ${btoa(`${opts.accountSid}:${opts.authToken}`)}`;
  const mediaHost = startMediaCdn();
  const media = new Map<string, string>();
  let mediaRequests = 0;

  function authenticated(req: Request): boolean {
    return req.headers.get("authorization") === expectedAuth;
  }

  function unauthorized(): Response {
    return twilioError(401, 20003, "Authenticate");
  }

  function notFound(path: string): Response {
    return twilioError(404, 20404, `The requested resource ${path} was not found`);
  }

  function settleWaiters(): void {
    for (const w of [...waiters]) {
      const mine = messages.filter((m) => m.to === w.to);
      if (mine.length < w.count) continue;
      clearTimeout(w.timer);
      waiters.delete(w);
      w.resolve(mine);
    }
  }

  async function createMessage(req: Request, sid: string, path: string): Promise<Response> {
    attempts++;
    const form = new URLSearchParams(await req.text());
    if (!authenticated(req)) return unauthorized();
    if (sid !== opts.accountSid) return notFound(path);
    // A send in flight when the sender's process dies: never answered.
    if (attempts === holdAttempt) return hold(() => twilioError(503, 20503, "Held request"));
    const failure = failures.shift() ?? randomFault?.();
    if (failure) return failureResponse(failure);
    const to = form.get("To");
    const from = form.get("From");
    const body = form.get("Body") ?? "";
    const mediaUrls = form.getAll("MediaUrl");
    if (!to) return twilioError(400, 21604, "A 'To' phone number is required.");
    if (!from) return twilioError(400, 21603, "A 'From' phone number is required.");
    if (!E164_WHATSAPP.test(to)) return twilioError(400, 21211, `Invalid 'To' Phone Number: ${to}`);
    if (!E164_WHATSAPP.test(from)) return twilioError(400, 21212, `Invalid From Number: ${from}`);
    if (!body && mediaUrls.length === 0) {
      return twilioError(400, 21602, "Message body is required.");
    }
    if (body.length > 1600) {
      return twilioError(
        400,
        21617,
        "The concatenated message body exceeds the 1600 character limit.",
      );
    }
    const msg: SentMessage = { sid: `SM${randomHex(16)}`, to, from, body, mediaUrls };
    const statusCallback = form.get("StatusCallback");
    if (statusCallback) msg.statusCallback = statusCallback;
    const record = { message: msg, created: now() };
    messages.push(msg);
    stored.push(record);
    settleWaiters();
    const created = () => json(messageResource(opts.accountSid, record), 201);
    return late.has(attempts) ? hold(created, late.get(attempts)) : created();
  }

  /** Answers with `respond()` after `ms`, or when the fake closes. */
  function hold(respond: () => Response, ms?: number): Promise<Response> {
    return new Promise<Response>((resolve) => {
      const release = () => {
        clearTimeout(timer);
        held.delete(release);
        resolve(respond());
      };
      const timer = ms === undefined ? undefined : setTimeout(release, ms);
      held.add(release);
    });
  }

  function listMessages(req: Request, sid: string, path: string): Response | Promise<Response> {
    lookups++;
    if (!authenticated(req)) return unauthorized();
    if (sid !== opts.accountSid) return notFound(path);
    if (lookups === holdLookup) return hold(() => twilioError(503, 20503, "Held request"));
    const failure = listFailures.shift();
    if (failure) return failureResponse(failure);
    return messagePage(opts.accountSid, stored, new URL(req.url).searchParams);
  }

  async function typingIndicator(req: Request): Promise<Response> {
    const form = new URLSearchParams(await req.text());
    if (!authenticated(req)) return unauthorized();
    const messageId = form.get("messageId");
    const channel = form.get("channel");
    if (!messageId) return twilioError(400, 20001, "Missing required parameter messageId");
    if (channel !== "whatsapp") {
      return twilioError(400, 20001, "Invalid channel, expected whatsapp");
    }
    if (typingFailure) return twilioError(typingFailure, 20001, "Typing indicator refused");
    typing.push({ messageId, channel });
    return new Response(JSON.stringify({ success: true }), {
      headers: { "content-type": "application/json" },
    });
  }

  const account: FakeAccount = { status: "active", type: "Full", friendlyName: "My first account" };
  const incomingNumbers: FakeIncomingNumber[] = [];
  const whatsappSenders: FakeWhatsAppSender[] = [];
  let sendersFailure = 0;
  let accountFailure = 0;

  /** The Account resource; like Twilio's, it carries the auth token. */
  function fetchAccount(req: Request, sid: string, path: string): Response {
    if (!authenticated(req)) return unauthorized();
    if (sid !== opts.accountSid) return notFound(path);
    if (accountFailure) return twilioError(accountFailure, 20500, "Internal Server Error");
    const date = rfc2822(new Date(Date.UTC(2024, 0, 15)));
    const base = `/2010-04-01/Accounts/${sid}`;
    return json({
      auth_token: opts.authToken,
      date_created: date,
      date_updated: date,
      friendly_name: account.friendlyName,
      owner_account_sid: sid,
      sid,
      status: account.status,
      subresource_uris: {
        incoming_phone_numbers: `${base}/IncomingPhoneNumbers.json`,
        messages: `${base}/Messages.json`,
      },
      type: account.type,
      uri: `${base}.json`,
    });
  }

  /** One page of the account's phone numbers, filtered by `PhoneNumber` as Twilio does. */
  function listIncomingNumbers(req: Request, sid: string, path: string): Response {
    if (!authenticated(req)) return unauthorized();
    if (sid !== opts.accountSid) return notFound(path);
    const query = new URL(req.url).searchParams;
    const wanted = query.get("PhoneNumber");
    const pageSize = Number(query.get("PageSize") ?? 50);
    const found = incomingNumbers.filter((n) => wanted === null || n.phoneNumber === wanted)
      .slice(0, pageSize);
    const uri = `${path}?${query}`;
    return json({
      end: Math.max(0, found.length - 1),
      first_page_uri: uri,
      incoming_phone_numbers: found.map((n, i) => ({
        account_sid: sid,
        capabilities: { fax: false, mms: true, sms: true, voice: true },
        friendly_name: n.phoneNumber,
        phone_number: n.phoneNumber,
        sid: `PN${String(i).padStart(32, "0")}`,
        sms_method: "POST",
        sms_url: n.smsUrl ?? "",
        status: "in-use",
        uri: `/2010-04-01/Accounts/${sid}/IncomingPhoneNumbers/PN${
          String(i).padStart(32, "0")
        }.json`,
      })),
      next_page_uri: null,
      page: 0,
      page_size: pageSize,
      previous_page_uri: null,
      start: 0,
      uri,
    });
  }

  /** The Senders API's list: `Channel` is required; `meta.key` names the list. */
  function listSenders(req: Request): Response {
    if (!authenticated(req)) return unauthorized();
    if (sendersFailure) return twilioError(sendersFailure, 20403, "Senders API not available");
    const query = new URL(req.url).searchParams;
    const channel = query.get("Channel");
    if (!channel) return twilioError(400, 20001, "Missing required parameter Channel");
    const pageSize = Number(query.get("PageSize") ?? 20);
    const senders = channel.toLowerCase() === "whatsapp" ? whatsappSenders.slice(0, pageSize) : [];
    const url = `https://messaging.twilio.com/v2/Channels/Senders?${query}`;
    return json({
      senders: senders.map((sender, i) => ({
        sid: `XE${String(i).padStart(32, "0")}`,
        status: sender.status ?? "ONLINE",
        sender_id: sender.senderId,
        configuration: { waba_id: "1234567890" },
        webhook: {
          callback_url: sender.callbackUrl ?? null,
          callback_method: "POST",
          fallback_url: null,
          fallback_method: null,
          status_callback_url: null,
          status_callback_method: null,
        },
        profile: { name: account.friendlyName },
        url: `https://messaging.twilio.com/v2/Channels/Senders/XE${String(i).padStart(32, "0")}`,
      })),
      meta: {
        page: 0,
        page_size: pageSize,
        first_page_url: url,
        previous_page_url: null,
        url,
        next_page_url: null,
        key: "senders",
      },
    });
  }

  /** Twilio's answer to a media URL: the short-lived URL of its media host. */
  function getMedia(req: Request, sid: string, path: string): Response {
    mediaRequests++;
    if (!authenticated(req)) return unauthorized();
    const location = sid === opts.accountSid ? media.get(path) : undefined;
    if (!location) return notFound(path);
    const status = opts.mediaRedirectStatus ?? 307;
    return new Response(null, { status, headers: { location } });
  }

  function route(req: Request): Response | Promise<Response> {
    const path = new URL(req.url).pathname;
    const medium = path.match(/^\/2010-04-01\/Accounts\/([^/]+)\/Messages\/[^/]+\/Media\/[^/]+$/);
    if (req.method === "GET" && medium) return getMedia(req, decodeURIComponent(medium[1]), path);
    const accountPath = path.match(/^\/2010-04-01\/Accounts\/([^/]+)\.json$/);
    if (req.method === "GET" && accountPath) {
      return fetchAccount(req, decodeURIComponent(accountPath[1]), path);
    }
    const numbersPath = path.match(/^\/2010-04-01\/Accounts\/([^/]+)\/IncomingPhoneNumbers\.json$/);
    if (req.method === "GET" && numbersPath) {
      return listIncomingNumbers(req, decodeURIComponent(numbersPath[1]), path);
    }
    if (req.method === "GET" && path === "/v2/Channels/Senders") return listSenders(req);
    const m = path.match(/^\/2010-04-01\/Accounts\/([^/]+)\/Messages\.json$/);
    if (req.method === "POST" && m) return createMessage(req, decodeURIComponent(m[1]), path);
    if (req.method === "GET" && m) return listMessages(req, decodeURIComponent(m[1]), path);
    if (req.method === "POST" && path === "/v2/Indicators/Typing.json") {
      return typingIndicator(req);
    }
    return notFound(path);
  }

  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen() {},
    onError(err) {
      if (!(err instanceof FakeConnectionDrop)) console.error("fake Twilio handler error:", err);
      return twilioError(500, 20500, "Internal Server Error");
    },
  }, route);

  const url = `http://127.0.0.1:${server.addr.port}`;
  return Promise.resolve({
    url,
    messages,
    typing,
    mediaHost,
    get mediaRequests() {
      return mediaRequests;
    },
    addMedia(bytes, contentType) {
      const path = `/2010-04-01/Accounts/${opts.accountSid}/Messages/MM${randomHex(16)}/Media/ME${
        randomHex(16)
      }`;
      media.set(path, mediaHost.store(bytes, contentType));
      return url + path;
    },
    account,
    incomingNumbers,
    whatsappSenders,
    failSenders(status) {
      sendersFailure = status;
    },
    failAccount(status) {
      accountFailure = status;
    },
    get attempts() {
      return attempts;
    },
    get lookups() {
      return lookups;
    },
    faults(pick) {
      randomFault = pick;
    },
    failTyping(status) {
      typingFailure = status;
    },
    holdAttempt(n) {
      holdAttempt = n;
    },
    answerLate(n, ms) {
      late.set(n, ms);
    },
    holdLookup(n) {
      holdLookup = n;
    },
    failNext(...responses) {
      failures.push(...responses);
    },
    failList(...responses) {
      listFailures.push(...responses);
    },
    waitForMessages(to, count, timeoutMs = 10_000) {
      return new Promise<SentMessage[]>((resolve, reject) => {
        const waiter: Waiter = {
          to,
          count,
          resolve,
          reject,
          timer: setTimeout(() => {
            waiters.delete(waiter);
            const got = messages.map((m) => `  ${m.to}: ${JSON.stringify(m.body)}`).join("\n");
            reject(
              new Error(
                `fake Twilio: timed out after ${timeoutMs} ms waiting for ${count} message(s) ` +
                  `to ${to}; received ${messages.length} in total:\n${got || "  (none)"}`,
              ),
            );
          }, timeoutMs),
        };
        waiters.add(waiter);
        settleWaiters();
      });
    },
    async close() {
      for (const release of [...held]) release();
      for (const w of waiters) {
        clearTimeout(w.timer);
        w.reject(new Error(`fake Twilio closed while waiting for messages to ${w.to}`));
      }
      waiters.clear();
      await Promise.all([server.shutdown(), mediaHost.close()]);
      if (mediaHost.violations.length > 0) {
        throw new Error(
          `fake Twilio: credentials reached the media host:\n  ${
            mediaHost.violations.join("\n  ")
          }`,
        );
      }
    },
    [Symbol.asyncDispose]() {
      return this.close();
    },
  });
}
