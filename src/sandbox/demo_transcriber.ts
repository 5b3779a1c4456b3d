/**
 * A demo speech-to-text service for the sandbox: a real HTTP server on
 * 127.0.0.1 speaking OpenAI's transcription API (`POST
 * /v1/audio/transcriptions`, multipart `file` + `model`, bearer key), so the
 * bridge's own client is exercised. It hears every voice note as the same
 * question, one the demo AYD answers.
 *
 * @module
 */

/** What every voice note says in the demo. */
export const DEMO_TRANSCRIPT = "How many orders shipped late last week?";

/** A running demo transcriber. */
export interface DemoTranscriber {
  /** Base URL for `TRANSCRIBE_URL`. */
  url: string;
  /** Voice notes transcribed so far. */
  readonly transcribed: number;
  close(): Promise<void>;
}

/**
 * Starts the demo transcriber on a free port of 127.0.0.1.
 *
 * @example
 * ```ts
 * const stt = startDemoTranscriber({ apiKey: "demo-key" });
 * // TRANSCRIBE_URL = stt.url, TRANSCRIBE_API_KEY = "demo-key"
 * ```
 */
export function startDemoTranscriber(options: { apiKey: string }): DemoTranscriber {
  let transcribed = 0;

  async function transcribe(req: Request): Promise<Response> {
    if (req.headers.get("authorization") !== `Bearer ${options.apiKey}`) {
      return error(401, "Incorrect API key provided.", "invalid_api_key");
    }
    const form = await req.formData().catch(() => undefined);
    const file = form?.get("file");
    if (!(file instanceof File) || file.size === 0) {
      return error(400, "Missing required parameter: 'file'.", null);
    }
    if (typeof form?.get("model") !== "string") {
      return error(400, "you must provide a model parameter", null);
    }
    transcribed++;
    return Response.json({ text: DEMO_TRANSCRIPT });
  }

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const path = new URL(req.url).pathname;
    if (req.method === "POST" && path === "/v1/audio/transcriptions") return transcribe(req);
    return error(404, `Invalid URL (${req.method} ${path})`, null);
  });

  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    get transcribed() {
      return transcribed;
    },
    close() {
      return server.shutdown();
    },
  };
}

/** OpenAI's error shape. */
function error(status: number, message: string, code: string | null): Response {
  return Response.json(
    { error: { message, type: "invalid_request_error", param: null, code } },
    { status },
  );
}
