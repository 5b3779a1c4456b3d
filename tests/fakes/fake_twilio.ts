/**
 * A fake Twilio REST API for tests: a real HTTP server on 127.0.0.1 that accepts
 * `POST /2010-04-01/Accounts/{AccountSid}/Messages.json` (form-encoded, Basic auth) and the
 * WhatsApp typing indicator `POST /v2/Indicators/Typing.json`, answers with Twilio's JSON
 * shapes and records what it received.
 *
 * @module
 */

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

/** Options for {@link startFakeTwilio}. */
export interface FakeTwilioOptions {
  accountSid: string;
  authToken: string;
}

/** A running fake Twilio server. */
export interface FakeTwilio extends AsyncDisposable {
  /** Base URL, `http://127.0.0.1:<port>` (serves both api. and messaging. hosts' paths). */
  url: string;
  /** Accepted messages, in order. */
  messages: SentMessage[];
  /** Accepted typing indicators, in order. */
  typing: TypingIndicator[];
  /** Every Messages.json request, including rejected and failed ones. */
  readonly attempts: number;
  /** Queue failures (FIFO); each later authenticated Messages.json request consumes one. */
  failNext(...responses: TwilioFailure[]): void;
  /** Asks `pick` for a failure on every request the `failNext` queue leaves alone. */
  faults(pick: (() => TwilioFailure | undefined) | null): void;
  /** Makes the typing endpoint answer `status` (0 = succeed again). */
  failTyping(status: number): void;
  /** Leaves the `n`th Messages.json request (1-based) unanswered until close. */
  holdAttempt(n: number): void;
  /** Resolves with the messages to `to` once at least `count` were accepted. */
  waitForMessages(to: string, count: number, timeoutMs?: number): Promise<SentMessage[]>;
  /** Rejects pending waits, clears timers and shuts the server down. */
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

/** The Message resource Twilio returns on success. */
function messageResource(accountSid: string, m: SentMessage): Record<string, unknown> {
  const now = rfc2822(new Date());
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

/** Starts a fake Twilio server on a random port of 127.0.0.1. */
export function startFakeTwilio(opts: FakeTwilioOptions): Promise<FakeTwilio> {
  const messages: SentMessage[] = [];
  const typing: TypingIndicator[] = [];
  const failures: TwilioFailure[] = [];
  const waiters = new Set<Waiter>();
  const held = new Set<() => void>();
  let attempts = 0;
  let holdAttempt = 0;
  let typingFailure = 0;
  let randomFault: (() => TwilioFailure | undefined) | null = null;
  const expectedAuth = `Basic ${btoa(`${opts.accountSid}:${opts.authToken}`)}`;

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
    if (attempts === holdAttempt) {
      // A send in flight when the sender's process dies: never answered.
      return new Promise<Response>((resolve) => {
        const release = () => resolve(twilioError(503, 20503, "Held request released"));
        held.add(release);
      });
    }
    const failure = failures.shift() ?? randomFault?.();
    if (failure) {
      if (failure.status === 0) return droppedResponse();
      const headers: Record<string, string> = failure.retryAfter === undefined
        ? {}
        : { "retry-after": String(failure.retryAfter) };
      const message = failure.message ?? `Fake failure ${failure.code}`;
      return twilioError(failure.status, failure.code, message, headers);
    }
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
    messages.push(msg);
    settleWaiters();
    return new Response(JSON.stringify(messageResource(opts.accountSid, msg)), {
      status: 201,
      headers: { "content-type": "application/json" },
    });
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

  function route(req: Request): Response | Promise<Response> {
    const path = new URL(req.url).pathname;
    const m = path.match(/^\/2010-04-01\/Accounts\/([^/]+)\/Messages\.json$/);
    if (req.method === "POST" && m) return createMessage(req, decodeURIComponent(m[1]), path);
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

  return Promise.resolve({
    url: `http://127.0.0.1:${server.addr.port}`,
    messages,
    typing,
    get attempts() {
      return attempts;
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
    failNext(...responses) {
      failures.push(...responses);
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
      await server.shutdown();
    },
    [Symbol.asyncDispose]() {
      return this.close();
    },
  });
}
