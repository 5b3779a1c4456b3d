/**
 * A fake speech-to-text service for tests: a real HTTP server on 127.0.0.1
 * speaking OpenAI's audio transcription API. `POST /v1/audio/transcriptions`
 * takes `multipart/form-data` with `file` (whose name's extension must be a
 * format OpenAI reads) and `model`, optionally `language`, `response_format`
 * (`json`, `text`, `verbose_json`), and a bearer key when one is configured;
 * it answers `{ "text": … }` and errors in OpenAI's shape
 * (`{ "error": { "message", "type", "param", "code" } }`). It records what
 * it received and can be scripted to fail.
 *
 * @module
 */

/** One transcription request, as the fake read it. */
export interface SttRequest {
  model: string;
  language?: string;
  responseFormat?: string;
  filename: string;
  /** The file part's own `Content-Type`. */
  contentType: string;
  bytes: Uint8Array;
  /** Whether an `Authorization` header came, and which. */
  authorization: string | null;
  /** Every form field name, in order. */
  fields: string[];
}

/** What the next request gets instead of the transcript. */
export type SttFault =
  /** This status with OpenAI's error body. */
  | { status: number; type?: string; code?: string | null; message?: string }
  /** This transcript (e.g. `""`, or whisper.cpp's `[BLANK_AUDIO]`). */
  | { transcript: string }
  /** The answer after `delayMs`, or never (until close) with `hang`. */
  | { delayMs: number }
  | { hang: true }
  /** whisper.cpp's server: `200 {"error": …}`. */
  | { whisperCppError: string }
  /** A body that is not JSON. */
  | { raw: string; status?: number };

/** Options for {@link startFakeStt}. */
export interface FakeSttOptions {
  /** Required as `Authorization: Bearer …` when set; any (or none) is taken otherwise. */
  apiKey?: string;
  /** The transcript answered (default "How many orders shipped late last week?"). */
  transcript?: string;
}

/** A running fake transcription service. */
export interface FakeStt extends AsyncDisposable {
  /** Base URL, `http://127.0.0.1:<port>` (the API is under `/v1/`). */
  url: string;
  /** Well-formed requests, in order, including ones answered with a fault. */
  requests: SttRequest[];
  /** Every request to the transcription path, well-formed or not. */
  readonly attempts: number;
  /** The transcript answered from now on. */
  transcript: string;
  /** Queues faults (FIFO); each later well-formed, authorized request takes one. */
  failNext(...faults: SttFault[]): void;
  close(): Promise<void>;
}

/** The formats OpenAI reads, told by the file name's extension. */
const FORMATS = ["flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm"];
const PATH = "/v1/audio/transcriptions";

/** OpenAI's error body. */
export function openAiError(
  status: number,
  message: string,
  type = "invalid_request_error",
  code: string | null = null,
  param: string | null = null,
): Response {
  return Response.json({ error: { message, type, param, code } }, { status });
}

/** Starts the fake on a random port of 127.0.0.1. */
export function startFakeStt(options: FakeSttOptions = {}): Promise<FakeStt> {
  const requests: SttRequest[] = [];
  const faults: SttFault[] = [];
  const held = new Set<() => void>();
  let attempts = 0;
  const state = { transcript: options.transcript ?? "How many orders shipped late last week?" };

  const wait = (ms?: number) =>
    new Promise<void>((resolve) => {
      const release = () => {
        clearTimeout(timer);
        held.delete(release);
        resolve();
      };
      const timer = ms === undefined ? undefined : setTimeout(release, ms);
      held.add(release);
    });

  function answer(transcript: string, format: string | undefined): Response {
    if (format === "text") return new Response(transcript + "\n");
    if (format === "verbose_json") {
      return Response.json({
        task: "transcribe",
        language: "english",
        duration: 2.5,
        text: transcript,
        segments: [],
      });
    }
    return Response.json({ text: transcript });
  }

  async function transcribe(req: Request): Promise<Response> {
    attempts++;
    const authorization = req.headers.get("authorization");
    if (options.apiKey && authorization !== `Bearer ${options.apiKey}`) {
      const given = authorization?.replace(/^Bearer /, "") ?? "";
      // OpenAI repeats part of the key it refused: a client must not log this message.
      const masked = given.length > 4 ? `${given.slice(0, 2)}***${given.slice(-2)}` : "***";
      return openAiError(
        401,
        `Incorrect API key provided: ${masked}. You can find your API key at https://platform.openai.com/account/api-keys.`,
        "invalid_request_error",
        "invalid_api_key",
      );
    }
    if (!req.headers.get("content-type")?.startsWith("multipart/form-data")) {
      return openAiError(400, "Expected multipart/form-data");
    }
    const form = await req.formData().catch(() => undefined);
    const file = form?.get("file");
    const model = form?.get("model");
    if (!form || !(file instanceof File)) {
      return openAiError(
        400,
        "Missing required parameter: 'file'.",
        "invalid_request_error",
        null,
        "file",
      );
    }
    if (typeof model !== "string" || model === "") {
      return openAiError(
        400,
        "you must provide a model parameter",
        "invalid_request_error",
        null,
        "model",
      );
    }
    const extension = file.name.split(".").at(-1)?.toLowerCase() ?? "";
    if (!FORMATS.includes(extension)) {
      return openAiError(400, `Invalid file format. Supported formats: ${JSON.stringify(FORMATS)}`);
    }
    const text = (name: string) => {
      const value = form.get(name);
      return typeof value === "string" ? value : undefined;
    };
    const format = text("response_format");
    requests.push({
      model,
      language: text("language"),
      responseFormat: format,
      filename: file.name,
      contentType: file.type,
      bytes: new Uint8Array(await file.arrayBuffer()),
      authorization,
      fields: [...form.keys()],
    });
    const fault = faults.shift();
    if (!fault) return answer(state.transcript, format);
    if ("status" in fault && !("raw" in fault)) {
      return openAiError(
        fault.status,
        fault.message ?? `Scripted failure ${fault.status}`,
        fault.type ?? (fault.status >= 500 ? "server_error" : "invalid_request_error"),
        fault.code ?? null,
      );
    }
    if ("transcript" in fault) return answer(fault.transcript, format);
    if ("hang" in fault) {
      await wait();
      return openAiError(503, "fake STT closed", "server_error");
    }
    if ("delayMs" in fault) {
      await wait(fault.delayMs);
      return answer(state.transcript, format);
    }
    if ("whisperCppError" in fault) return Response.json({ error: fault.whisperCppError });
    return new Response(fault.raw, { status: fault.status ?? 200 });
  }

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const path = new URL(req.url).pathname;
    if (req.method === "POST" && path === PATH) return transcribe(req);
    return openAiError(404, `Invalid URL (${req.method} ${path})`);
  });

  return Promise.resolve({
    url: `http://127.0.0.1:${server.addr.port}`,
    requests,
    get attempts() {
      return attempts;
    },
    get transcript() {
      return state.transcript;
    },
    set transcript(value: string) {
      state.transcript = value;
    },
    failNext(...next) {
      faults.push(...next);
    },
    async close() {
      for (const release of [...held]) release();
      await server.shutdown();
    },
    [Symbol.asyncDispose]() {
      return this.close();
    },
  });
}
