/**
 * A demo AskYourDatabase for the sandbox: a real HTTP server on 127.0.0.1
 * speaking AYD's wire protocol (session endpoint, a one-time login callback
 * that sets the `accessToken` cookie on a redirect, and the `/api/ask`
 * Server-Sent Events stream), so the bridge's own AYD client is exercised.
 *
 * @module
 */
import { demoAnswer } from "./demo_answers.ts";

/** A running demo AYD. */
export interface DemoAyd {
  /** Base URL, `http://127.0.0.1:<port>`. */
  url: string;
  /** Email → how many sessions were opened for it (a `reset` opens one more). */
  sessions: Map<string, number>;
  /** Ends open answer streams and stops the server. */
  close(): Promise<void>;
}

/** How to run it. */
export interface DemoAydOptions {
  apiKey: string;
  chatId: string;
  /** Where chart paths are served (the sandbox's own URL), read at answer time. */
  publicUrl: () => string;
  /**
   * Milliseconds between text deltas (default 20): a short answer takes under
   * a second, the long report a few seconds, so it is seen arriving.
   */
  paceMs?: number;
}

const DELTA_CHARS = 16;
const encoder = new TextEncoder();

/**
 * Starts the demo AYD on a free port of 127.0.0.1.
 *
 * @example
 * ```ts
 * const ayd = startDemoAyd({ apiKey: "k", chatId: "c", publicUrl: () => "http://127.0.0.1:8000" });
 * await ayd.close();
 * ```
 */
export function startDemoAyd(options: DemoAydOptions): DemoAyd {
  const codes = new Map<string, string>();
  const tokens = new Map<string, string>();
  const sessions = new Map<string, number>();
  const streams = new Set<() => void>();
  const pace = options.paceMs ?? 20;

  async function openSession(req: Request, base: string): Promise<Response> {
    if (req.headers.get("authorization") !== `Bearer ${options.apiKey}`) {
      return Response.json({ error: "Unauthorized" }, { status: 401 });
    }
    const body = await req.json().catch(() => ({}));
    if (body?.chatbotid !== options.chatId || typeof body?.email !== "string") {
      return Response.json({ error: "Chatbot not found" }, { status: 400 });
    }
    const code = crypto.randomUUID();
    codes.set(code, body.email);
    return Response.json({ url: `${base}/api/chatbot/auth/callback?code=${code}` });
  }

  function callback(code: string | null): Response {
    const email = code ? codes.get(code) : undefined;
    if (!email) return Response.json({ error: "Invalid code" }, { status: 400 });
    codes.delete(code!); // one-time, like AYD's
    const token = crypto.randomUUID();
    tokens.set(token, email);
    sessions.set(email, (sessions.get(email) ?? 0) + 1);
    const headers = new Headers({ location: "/chatbot" });
    headers.append("set-cookie", `accessToken=${token}; Path=/; Max-Age=604800; HttpOnly`);
    return new Response(null, { status: 302, headers });
  }

  async function ask(req: Request): Promise<Response> {
    if (!tokens.has(req.headers.get("x-ayd-access-token") ?? "")) {
      return Response.json({ error: "Unauthorized" }, { status: 401 });
    }
    const body = await req.json().catch(() => ({}));
    if (body?.botid !== options.chatId || typeof body?.question !== "string") {
      return Response.json({ error: "Bad request" }, { status: 400 });
    }
    const answer = demoAnswer(body.question);
    const events: unknown[] = [
      { isExecutionStatus: true, status: "running", functionName: "query_database" },
      ...Array.from(chunks(answer.markdown), (content) => ({ isText: true, content })),
      ...answer.charts.map((path) => ({ isImage: true, url: options.publicUrl() + path })),
    ];
    return new Response(sse(events, pace), {
      headers: { "content-type": "text/event-stream", "cache-control": "no-cache" },
    });
  }

  /** Writes one `data:` event per delay, then closes: AYD ends by closing. */
  function sse(events: unknown[], delayMs: number): ReadableStream<Uint8Array> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let end = () => {};
    return new ReadableStream({
      start(c) {
        end = () => {
          clearTimeout(timer);
          streams.delete(end);
          c.error(new Error("demo AYD stopped"));
        };
        streams.add(end);
      },
      pull(c) {
        const event = events.shift();
        if (event === undefined) {
          streams.delete(end);
          c.close();
          return;
        }
        return new Promise((resolve) => {
          timer = setTimeout(() => {
            c.enqueue(encoder.encode(`data: ${JSON.stringify(event)}\n\n`));
            resolve();
          }, delayMs);
        });
      },
      cancel() {
        clearTimeout(timer);
        streams.delete(end);
      },
    });
  }

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const url = new URL(req.url);
    const route = `${req.method} ${url.pathname}`;
    if (route === "POST /api/chatbot/v2/session") return openSession(req, url.origin);
    if (route === "GET /api/chatbot/auth/callback") return callback(url.searchParams.get("code"));
    if (route === "GET /chatbot") return new Response("Demo chatbot");
    if (route === "POST /api/ask") return ask(req);
    return Response.json({ error: "Not found" }, { status: 404 });
  });

  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    sessions,
    async close() {
      for (const stop of streams) stop();
      await server.shutdown();
    },
  };
}

/** Text deltas of a few characters, never splitting a surrogate pair. */
function* chunks(text: string): Generator<string> {
  const points = Array.from(text);
  for (let i = 0; i < points.length; i += DELTA_CHARS) {
    yield points.slice(i, i + DELTA_CHARS).join("");
  }
}
