/**
 * A fake AskYourDatabase (AYD) server for tests: a real HTTP server on 127.0.0.1 that speaks
 * AYD's wire formats (session creation, the one-time auth callback that sets the `accessToken`
 * cookie, and the `/api/ask` Server-Sent-Events stream, written in small chunks so that they
 * split mid-line, mid-JSON and mid-UTF-8 sequence), and AYD's documented API-key flow:
 * `POST /api/chatbot/newChat`, `/api/ask` with `Authorization: Bearer` and a `chatid`, and
 * `GET /api/chatbot/messages` (newest first, 20 a page, `timestamp` for older pages).
 *
 * Chats keep a history as AYD would: the question when the ask is accepted, the answer once it
 * is written (at once, or when a paused answer resumes; a cut or hanging answer never is), even
 * when the client has gone away meanwhile.
 *
 * @module
 */

/** What the fake does with one `/api/ask` request. */
export type AskBehavior =
  | {
    kind: "answer";
    /** Answer text, sent as `{"isText":true,"content":…}` deltas of 25 code points. */
    text: string;
    /** Image URLs, sent as `{"isImage":true,"url":…}` events after the text. */
    images?: string[];
    /** Called when the stream has been written out and closed (for benchmarks). */
    onEnd?: () => void;
    /** Stops the stream once `afterChars` of text went out, until `until` resolves. */
    pause?: { afterChars: number; until: Promise<void> };
    /** Bytes per network write (default: the fake's `chunkBytes`, 7). */
    chunkBytes?: number;
    /** Delay between network writes in ms (default: the fake's `chunkDelayMs`, 0). */
    chunkDelayMs?: number;
    /** Send a final `data: [DONE]` (default: the fake's `done`, false). */
    done?: boolean;
    /** Keep the connection open after the last event, as a proxy's keep-alive would. */
    holdOpen?: boolean;
    /** Send `{"isSomethingNew":true}` and `data: hello` (default: the fake's `noise`, true). */
    noise?: boolean;
    /**
     * Chats: when the answer goes into the chat's history: `now` (default), `on_resume` (the
     * default of a paused answer: AYD is still writing it) or `never`. `now` with a pause is an
     * answer AYD has written while its stream to the bridge stalls.
     */
    recorded?: "now" | "on_resume" | "never";
  }
  | { kind: "status"; status: number; body?: string; headers?: Record<string, string> }
  | { kind: "hang" }
  | { kind: "cut"; text: string; afterDeltas?: number };

/** One `/api/ask` request as the fake saw it. */
export interface FakeAydAsk {
  /** The `x-ayd-access-token` (session mode); "" for an API-key ask. */
  token: string;
  question: string;
  botid: string;
  fileUrls: unknown;
  debug: unknown;
  /** Query string without the leading `?`, e.g. `debug=false`. */
  query: string;
  /** API-key asks: the chat asked in, and the `properties` given. */
  chatid?: string;
  properties?: unknown;
  /** Whether the ask carried `Authorization: Bearer <the API key>`. */
  apiKey: boolean;
}

/** A session whose auth callback issued an access token. */
export interface FakeAydSession {
  name: string;
  email: string;
  chatbotid: string;
  token: string;
  /** The session's `properties`, when the request had any. */
  properties?: unknown;
}

/** A message of a chat's history, as `GET /api/chatbot/messages` lists it. */
export interface FakeAydMessage {
  id: string;
  chatid: string;
  chatbotid: string;
  role: "user" | "assistant";
  content: string;
  createdat: string;
  issql: boolean;
}

/** Options for {@link startFakeAyd}. */
export interface FakeAydOptions {
  apiKey: string;
  chatId: string;
  /** 1 (default): callback 302s and sets the cookie; 2: callback 307s to a second hop first. */
  callbackHops?: 1 | 2;
  /** `Max-Age` of the `accessToken` cookie (default 604800). */
  cookieMaxAgeSeconds?: number;
  /** When set, the cookie carries `Expires=<http date>` instead of `Max-Age`. */
  cookieExpires?: Date;
  /** When true, the callback sets no `accessToken` cookie (login failure). */
  noCookie?: boolean;
  /** Default bytes per network write for answers (default 7). */
  chunkBytes?: number;
  /** Default delay between network writes in ms (default 0). */
  chunkDelayMs?: number;
  /** Default for sending a final `data: [DONE]` (default false). */
  done?: boolean;
  /** Default for sending an unknown-flag event and a non-JSON `data: hello` (default true). */
  noise?: boolean;
}

/** Handler deciding the behaviour of each ask. */
export type AskHandler = (
  ask: { question: string; token: string; chatid?: string; properties?: unknown },
) => AskBehavior | Promise<AskBehavior>;

/** A running fake AYD server. */
export interface FakeAyd extends AsyncDisposable {
  /** Base URL, `http://127.0.0.1:<port>`. */
  url: string;
  /** Sessions whose callback issued a token, in order. */
  sessions: FakeAydSession[];
  /** Every ask that reached the handler (including ones answered 401/400). */
  asks: FakeAydAsk[];
  /** Script the asks; `null` restores the default (`Answer to: <question>`). */
  onAsk(handler: AskHandler | null): void;
  /** Make later asks with this token answer 401. */
  expireToken(token: string): void;
  /** Make the session endpoint answer this status (JSON error) until reset with `null`. */
  failSessions(status: number | null): void;
  /**
   * Make the session endpoint answer 200 with this JSON body instead of a login URL (an answer
   * of another shape, as from a changed API or another server) until reset with `null`.
   */
  answerSessionsWith(body: unknown): void;
  /** Every request, as `METHOD /path`, in order. */
  requests: string[];
  /** Chats created by `newChat`, in order. */
  chats: string[];
  /** A chat's history, oldest first (the live array: tests may add to it). */
  history(chatid: string): FakeAydMessage[];
  /** Adds a message to a chat's history (`createdat` defaults to now, after the last). */
  addMessage(
    chatid: string,
    message: { role: "user" | "assistant"; content: string; createdat?: string },
  ): FakeAydMessage;
  /** Make `newChat` answer this status (JSON error) until reset with `null`. */
  failNewChat(status: number | null): void;
  /** Make `newChat` answer 200 with this JSON body instead of a chat, until reset with `null`. */
  answerNewChatWith(body: unknown): void;
  /** Make the messages endpoint answer this status until reset with `null`. */
  failHistory(status: number | null): void;
  /** Forget a chat: asks in it answer 404, as for a chat AYD no longer knows. */
  forgetChat(chatid: string): void;
  /** Pages of history served so far. */
  historyReads: number;
  /** Abort open streams, clear timers and shut the server down. */
  close(): Promise<void>;
}

/** Error used to abort streams on purpose; the server's onError stays quiet about it. */
class FakeStreamAbort extends Error {}

/** A stream the fake can stop from `close()`. */
interface LiveStream {
  stop(): void;
}

const encoder = new TextEncoder();

function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

function randomHex(bytes: number): string {
  const buf = crypto.getRandomValues(new Uint8Array(bytes));
  return Array.from(buf, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Splits text into deltas of `size` code points (never breaks a surrogate pair). */
export function splitDeltas(text: string, size = 25): string[] {
  const points = Array.from(text);
  const out: string[] = [];
  for (let i = 0; i < points.length; i += size) out.push(points.slice(i, i + size).join(""));
  return out;
}

function sseData(data: unknown): string {
  return `data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`;
}

function preamble(): string {
  return sseData({ isExecutionStatus: true, status: "running", functionName: "query_database" }) +
    ": keep-alive\n\n" + sseData({ isSQL: true, sql: "SELECT 1", result: [] });
}

function splitBytes(bytes: Uint8Array, size: number): Uint8Array[] {
  const step = Math.max(1, Math.floor(size));
  const out: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += step) out.push(bytes.slice(i, i + step));
  return out;
}

/**
 * A body stream writing `chunks` with `delayMs` between them, then closing, erroring ("cut") or
 * hanging forever. It registers itself in `live` until it ends so `close()` can abort it.
 */
function chunkStream(
  chunks: Uint8Array[],
  delayMs: number,
  end: "close" | "error" | "hang",
  live: Set<LiveStream>,
  onEnd?: () => void,
  gate?: { index: number; until: Promise<void> },
): ReadableStream<Uint8Array> {
  let i = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let ctrl: ReadableStreamDefaultController<Uint8Array>;
  const entry: LiveStream = {
    stop() {
      clearTimeout(timer);
      live.delete(entry);
      try {
        ctrl.error(new FakeStreamAbort("fake AYD closed"));
      } catch { /* already closed */ }
    },
  };
  return new ReadableStream<Uint8Array>({
    start(c) {
      ctrl = c;
      live.add(entry);
    },
    async pull(c) {
      if (gate && i === gate.index) {
        const { until } = gate;
        gate = undefined;
        await until;
      }
      if (i >= chunks.length) {
        if (end === "hang") return new Promise<void>(() => {});
        live.delete(entry);
        if (end === "close") {
          c.close();
          onEnd?.();
        } else c.error(new FakeStreamAbort("fake AYD cut the stream"));
        return;
      }
      if (delayMs <= 0 || i === 0) {
        c.enqueue(chunks[i++]);
        return;
      }
      return new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          timer = undefined;
          c.enqueue(chunks[i++]);
          resolve();
        }, delayMs);
      });
    },
    cancel() {
      clearTimeout(timer);
      live.delete(entry);
    },
  });
}

/** Starts a fake AYD server on a random port of 127.0.0.1. */
export function startFakeAyd(opts: FakeAydOptions): Promise<FakeAyd> {
  const codes = new Map<
    string,
    { name: string; email: string; chatbotid: string; properties?: unknown }
  >();
  const tokens = new Map<string, { expired: boolean }>();
  const live = new Set<LiveStream>();
  const sessions: FakeAydSession[] = [];
  const asks: FakeAydAsk[] = [];
  let askHandler: AskHandler | null = null;
  let sessionFailure: number | null = null;
  let base = "";
  const requests: string[] = [];
  const chatIds: string[] = [];
  const histories = new Map<string, FakeAydMessage[]>();
  const forgotten = new Set<string>();
  let newChatFailure: number | null = null;
  let newChatAnswer: unknown = null;
  let sessionAnswer: unknown = null;
  let historyFailure: number | null = null;
  let historyReads = 0;
  let messages = 0;
  let lastCreated = 0;
  const hasApiKey = (req: Request) => req.headers.get("authorization") === `Bearer ${opts.apiKey}`;

  function addMessage(
    chatid: string,
    message: { role: "user" | "assistant"; content: string; createdat?: string },
  ): FakeAydMessage {
    const history = histories.get(chatid);
    if (!history) throw new Error(`fake AYD has no chat ${chatid}`);
    // Strictly increasing times unless a test gives its own.
    lastCreated = Math.max(Date.now(), lastCreated + 1);
    const stored: FakeAydMessage = {
      id: `msg_${++messages}`,
      chatid,
      chatbotid: opts.chatId,
      role: message.role,
      content: message.content,
      createdat: message.createdat ?? new Date(lastCreated).toISOString(),
      issql: false,
    };
    history.push(stored);
    return stored;
  }

  async function newChat(req: Request): Promise<Response> {
    if (!hasApiKey(req)) return json({ error: "Authentication failed" }, 401);
    if (newChatFailure !== null) return json({ error: "Fake newChat failure" }, newChatFailure);
    if (newChatAnswer !== null) return json(newChatAnswer);
    const body = await req.json().catch(() => ({}));
    if (typeof body?.botid !== "string" || body.botid === "") {
      return json({ error: "botid is required" }, 400);
    }
    if (body.botid !== opts.chatId) {
      return json({ error: "Chatbot not found or access denied" }, 404);
    }
    const chatid = `chat_${randomHex(8)}`;
    chatIds.push(chatid);
    histories.set(chatid, []);
    return json({ chatid });
  }

  function listMessages(req: Request, url: URL): Response {
    if (!hasApiKey(req)) return json({ error: "Authentication failed" }, 401);
    if (historyFailure !== null) return json({ error: "Fake history failure" }, historyFailure);
    const botid = url.searchParams.get("botid");
    const chatid = url.searchParams.get("chatid") ?? "";
    if (botid !== opts.chatId) return json({ error: "Chatbot not found or access denied" }, 404);
    const history = histories.get(chatid);
    if (!history || forgotten.has(chatid)) return json({ error: "Chat not found" }, 404);
    historyReads++;
    const timestamp = url.searchParams.get("timestamp");
    const before = timestamp === null ? Infinity : Date.parse(timestamp);
    const page = history.filter((m) => Date.parse(m.createdat) < before)
      .sort((a, b) => Date.parse(b.createdat) - Date.parse(a.createdat))
      .slice(0, 20);
    return json(page);
  }

  function sseResponse(body: ReadableStream<Uint8Array>): Response {
    return new Response(body, {
      headers: { "content-type": "text/event-stream", "cache-control": "no-cache" },
    });
  }

  async function createSession(req: Request): Promise<Response> {
    if (req.headers.get("authorization") !== `Bearer ${opts.apiKey}`) {
      return json({ error: "Unauthorized" }, 401);
    }
    if (sessionFailure !== null) return json({ error: "Fake session failure" }, sessionFailure);
    if (sessionAnswer !== null) return json(sessionAnswer);
    let body: Record<string, unknown>;
    try {
      body = await req.json();
    } catch {
      return json({ error: "Invalid JSON body" }, 400);
    }
    const { chatbotid, name, email, properties } = body ?? {};
    if (chatbotid !== opts.chatId) return json({ error: "Chatbot not found" }, 400);
    if (typeof name !== "string" || typeof email !== "string") {
      return json({ error: "name and email are required" }, 400);
    }
    const code = randomHex(16);
    codes.set(
      code,
      properties === undefined
        ? { name, email, chatbotid }
        : { name, email, chatbotid, properties },
    );
    return json({ url: `${base}/api/chatbot/auth/callback?code=${code}` });
  }

  /** Consumes a one-time code and sets the cookies (or 307s to the second hop). */
  function callback(code: string | null, finalHop: boolean): Response {
    const info = code === null ? undefined : codes.get(code);
    if (!info || code === null) return json({ error: "Invalid or expired code" }, 400);
    codes.delete(code);
    if (!finalHop) {
      const code2 = randomHex(16);
      codes.set(code2, info);
      return new Response(null, {
        status: 307,
        headers: { location: `/api/chatbot/auth/finish?code2=${code2}` },
      });
    }
    const headers = new Headers({ location: "/chatbot" });
    headers.append("set-cookie", "theme=light; Path=/");
    if (!opts.noCookie) {
      const token = `tok_${randomHex(12)}`;
      tokens.set(token, { expired: false });
      sessions.push({ ...info, token });
      const life = opts.cookieExpires
        ? `Expires=${opts.cookieExpires.toUTCString()}`
        : `Max-Age=${opts.cookieMaxAgeSeconds ?? 604800}`;
      headers.append(
        "set-cookie",
        `accessToken=${token}; Path=/; ${life}; HttpOnly; Secure; SameSite=Lax`,
      );
    }
    return new Response(null, { status: 302, headers });
  }

  async function ask(req: Request, url: URL): Promise<Response> {
    const withToken = req.headers.has("x-ayd-access-token");
    const token = req.headers.get("x-ayd-access-token") ?? "";
    let body: Record<string, unknown> = {};
    let badJson = false;
    try {
      body = (await req.json()) ?? {};
    } catch {
      badJson = true;
    }
    const question = typeof body.question === "string" ? body.question : "";
    const botid = typeof body.botid === "string" ? body.botid : "";
    const query = url.search.replace(/^\?/, "");
    const chatid = typeof body.chatid === "string" ? body.chatid : undefined;
    asks.push({
      token,
      question,
      botid,
      fileUrls: body.fileUrls,
      debug: body.debug,
      query,
      chatid,
      properties: body.properties,
      apiKey: hasApiKey(req),
    });
    if (withToken) {
      const known = tokens.get(token);
      if (!known || known.expired) return json({ error: "Unauthorized" }, 401);
    } else if (!hasApiKey(req)) return json({ error: "Authentication failed" }, 401);
    if (badJson) return json({ error: "Invalid JSON body" }, 400);
    if (botid !== opts.chatId) return json({ error: "Chatbot not found" }, 400);
    // An API-key ask must name a chat the fake knows.
    const history = withToken ? undefined : histories.get(chatid ?? "");
    if (!withToken && (!history || forgotten.has(chatid!))) {
      return json({ error: "Chat not found" }, 404);
    }

    const behavior: AskBehavior = askHandler
      ? await askHandler({ question, token, chatid, properties: body.properties })
      : { kind: "answer", text: `Answer to: ${question}` };
    if (history && behavior.kind !== "status") {
      addMessage(chatid!, { role: "user", content: question });
      const recorded = behavior.kind !== "answer"
        ? "never"
        : behavior.recorded ?? (behavior.pause ? "on_resume" : "now");
      if (behavior.kind === "answer" && recorded !== "never") {
        const record = () => addMessage(chatid!, { role: "assistant", content: behavior.text });
        if (recorded === "on_resume") behavior.pause?.until.then(record);
        else record();
      }
    }
    const chunkBytes = opts.chunkBytes ?? 7;
    const delay = opts.chunkDelayMs ?? 0;
    switch (behavior.kind) {
      case "status": {
        const b = behavior.body ?? JSON.stringify({ error: `Fake status ${behavior.status}` });
        let type = "application/json";
        try {
          JSON.parse(b);
        } catch {
          type = "text/plain; charset=utf-8";
        }
        const headers = { "content-type": type, ...behavior.headers };
        return new Response(b, { status: behavior.status, headers });
      }
      case "hang":
        return sseResponse(chunkStream([], 0, "hang", live));
      case "cut": {
        const deltas = splitDeltas(behavior.text);
        const n = behavior.afterDeltas ?? Math.ceil(deltas.length / 2);
        const text = preamble() +
          deltas.slice(0, n).map((d) => sseData({ isText: true, content: d })).join("");
        return sseResponse(
          chunkStream(splitBytes(encoder.encode(text), chunkBytes), delay, "error", live),
        );
      }
      case "answer": {
        let text = preamble();
        let gateAt = -1; // byte offset where the stream waits for `pause.until`
        let written = 0;
        for (const d of splitDeltas(behavior.text)) {
          text += sseData({ isText: true, content: d });
          written += d.length;
          if (behavior.pause && gateAt < 0 && written >= behavior.pause.afterChars) {
            gateAt = encoder.encode(text).length;
          }
        }
        for (const u of behavior.images ?? []) text += sseData({ isImage: true, url: u });
        if (behavior.noise ?? opts.noise ?? true) {
          text += sseData({ isSomethingNew: true }) + "data: hello\n\n";
        }
        if (behavior.done ?? opts.done ?? false) text += "data: [DONE]\n\n";
        const bytes = encoder.encode(text);
        const size = behavior.chunkBytes ?? chunkBytes;
        const chunks = gateAt < 0 ? splitBytes(bytes, size) : [
          ...splitBytes(bytes.slice(0, gateAt), size),
          ...splitBytes(bytes.slice(gateAt), size),
        ];
        const gate = gateAt < 0 || !behavior.pause ? undefined : {
          index: Math.ceil(gateAt / Math.max(1, Math.floor(size))),
          until: behavior.pause.until,
        };
        const end = behavior.holdOpen ? "hang" : "close";
        return sseResponse(
          chunkStream(chunks, behavior.chunkDelayMs ?? delay, end, live, behavior.onEnd, gate),
        );
      }
    }
  }

  function route(req: Request): Response | Promise<Response> {
    const url = new URL(req.url);
    const key = `${req.method} ${url.pathname}`;
    requests.push(key);
    if (key === "POST /api/chatbot/newChat") return newChat(req);
    if (key === "GET /api/chatbot/messages") return listMessages(req, url);
    if (key === "POST /api/chatbot/v2/session") return createSession(req);
    if (key === "GET /api/chatbot/auth/callback") {
      return callback(url.searchParams.get("code"), (opts.callbackHops ?? 1) === 1);
    }
    if (key === "GET /api/chatbot/auth/finish") {
      return callback(url.searchParams.get("code2"), true);
    }
    if (key === "GET /chatbot") {
      return new Response("<!doctype html><title>AYD</title><p>Chatbot</p>", {
        headers: { "content-type": "text/html; charset=utf-8" },
      });
    }
    if (key === "POST /api/ask") return ask(req, url);
    return json({ error: "Not found" }, 404);
  }

  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen() {},
    onError(err) {
      if (!(err instanceof FakeStreamAbort)) console.error("fake AYD handler error:", err);
      return json({ error: "Internal Server Error" }, 500);
    },
  }, route);
  base = `http://127.0.0.1:${server.addr.port}`;

  return Promise.resolve({
    url: base,
    sessions,
    asks,
    onAsk(handler) {
      askHandler = handler;
    },
    expireToken(token) {
      const t = tokens.get(token);
      if (t) t.expired = true;
    },
    failSessions(status) {
      sessionFailure = status;
    },
    answerSessionsWith(body) {
      sessionAnswer = body;
    },
    requests,
    chats: chatIds,
    history(chatid) {
      const history = histories.get(chatid);
      if (!history) throw new Error(`fake AYD has no chat ${chatid}`);
      return history;
    },
    addMessage,
    failNewChat(status) {
      newChatFailure = status;
    },
    answerNewChatWith(body) {
      newChatAnswer = body;
    },
    failHistory(status) {
      historyFailure = status;
    },
    forgetChat(chatid) {
      forgotten.add(chatid);
    },
    get historyReads() {
      return historyReads;
    },
    async close() {
      for (const s of [...live]) s.stop();
      await server.shutdown();
    },
    [Symbol.asyncDispose]() {
      return this.close();
    },
  });
}
