/**
 * The transcription client: one multipart request to an OpenAI-compatible
 * `POST {url}/v1/audio/transcriptions` (`file`, `model`, `response_format=json`
 * and an optional `language`), bearer key when one is set, answered with
 * `{ "text": … }`. Failures are typed; neither the transcript nor the
 * service's error message (OpenAI's repeats part of a wrong key) ever goes
 * into one.
 *
 * @module
 */
import { describeError } from "../log.ts";

/** The audio to transcribe. */
export interface SpeechAudio {
  bytes: Uint8Array<ArrayBuffer>;
  /** e.g. `audio/ogg` (a WhatsApp voice note); picks the file name's extension. */
  contentType: string;
  /** The multipart file name; default from the type (`voice.ogg`). */
  filename?: string;
}

/** Where and how to transcribe (`TRANSCRIBE_*`); `fetch` is injectable for instrumentation. */
export interface SpeechOptions {
  /** The service's base URL, without `/v1/…`: `https://api.openai.com`. */
  url: string;
  /** Sent as `Authorization: Bearer …` when set. */
  apiKey?: string;
  /** e.g. `whisper-1`, `whisper-large-v3-turbo` (Groq). */
  model: string;
  /** An ISO-639-1 hint such as `en`; the service detects the language without it. */
  language?: string;
  fetch?: typeof fetch;
  /** Ends the request (a timeout); default {@linkcode TRANSCRIBE_TIMEOUT_MS}. */
  signal?: AbortSignal;
}

/** What was understood. */
export interface Transcript {
  /** Trimmed, never empty, at most {@linkcode MAX_TRANSCRIPT_CHARS}. */
  text: string;
}

/**
 * The longest transcript kept, as long as the longest `Body` the webhook
 * keeps: a voice note of an hour would otherwise push its message's record
 * past KV's 64 KiB value limit.
 */
export const MAX_TRANSCRIPT_CHARS = 16_384;

/** How long a transcription may take when the caller gives no signal of its own. */
export const TRANSCRIBE_TIMEOUT_MS = 60_000;

/**
 * Why a transcription failed: `unauthorized` (401/403: the key),
 * `http` (another status; `code` is the service's error code, e.g.
 * `insufficient_quota`), `network`, `timeout`, `empty` (no speech heard) or
 * `protocol` (an answer of the wrong shape, or whisper.cpp's 200 with an
 * `error`).
 */
export class SpeechError extends Error {
  override name = "SpeechError";
  constructor(
    readonly kind: "unauthorized" | "http" | "network" | "timeout" | "empty" | "protocol",
    message: string,
    readonly status?: number,
    readonly code?: string,
  ) {
    super(message);
  }

  /** Worth trying again later: no answer, 408, 429 (but not an exhausted quota) or 5xx. */
  get transient(): boolean {
    if (this.kind === "network" || this.kind === "timeout") return true;
    if (this.kind !== "http") return false;
    if (this.status === 429) return this.code !== "insufficient_quota";
    return this.status === 408 || (this.status ?? 0) >= 500;
  }
}

/**
 * Transcribes `audio`. Throws {@linkcode SpeechError}.
 *
 * @example
 * ```ts
 * const { text } = await transcribe(
 *   { bytes, contentType: "audio/ogg" },
 *   { url: "https://api.openai.com", apiKey: "sk-…", model: "whisper-1", language: "en" },
 * );
 * ```
 */
export async function transcribe(audio: SpeechAudio, options: SpeechOptions): Promise<Transcript> {
  const fetchFn = options.fetch ?? fetch;
  const signal = options.signal ?? AbortSignal.timeout(TRANSCRIBE_TIMEOUT_MS);
  const form = new FormData();
  const file = new Blob([audio.bytes], { type: audio.contentType });
  form.append("file", file, audio.filename ?? audioFilename(audio.contentType));
  form.append("model", options.model);
  form.append("response_format", "json");
  if (options.language) form.append("language", options.language);
  const headers: HeadersInit = options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {};
  const endpoint = `${options.url.replace(/\/+$/, "")}/v1/audio/transcriptions`;

  const response = await call(
    () => fetchFn(endpoint, { method: "POST", headers, body: form, signal }),
    signal,
  );
  const body = await call(() => response.text(), signal);
  if (!response.ok) throw httpError(response.status, body);
  let answer: unknown;
  try {
    answer = JSON.parse(body);
  } catch {
    throw new SpeechError("protocol", "transcription answer is not JSON");
  }
  const text = (answer as { text?: unknown } | null)?.text;
  if (typeof text !== "string") {
    // whisper.cpp's server reports its failures as 200 {"error": "…"}.
    const said = typeof (answer as { error?: unknown } | null)?.error === "string";
    throw new SpeechError(
      "protocol",
      `transcription answer has no text${said ? ": an error" : ""}`,
    );
  }
  if (!hasSpeech(text)) throw new SpeechError("empty", "no speech in the transcript");
  const kept = text.trim().slice(0, MAX_TRANSCRIPT_CHARS);
  // A cut between the two halves of a surrogate pair would leave half an emoji.
  return { text: /[\uD800-\uDBFF]$/.test(kept) ? kept.slice(0, -1) : kept };
}

/** `voice.ogg`, `voice.mp3` …: OpenAI tells the format by the file name's extension. */
export function audioFilename(contentType: string): string {
  const subtype = contentType.split(";")[0].trim().toLowerCase().split("/")[1] ?? "";
  const known: Record<string, string> = {
    ogg: "ogg",
    opus: "ogg",
    mpeg: "mp3",
    mp3: "mp3",
    mp4: "m4a",
    "x-m4a": "m4a",
    m4a: "m4a",
    wav: "wav",
    "x-wav": "wav",
    wave: "wav",
    webm: "webm",
    flac: "flac",
    "x-flac": "flac",
  };
  const extension = known[subtype] ?? (/^[a-z0-9]{1,10}$/.test(subtype) ? subtype : "bin");
  return `voice.${extension}`;
}

/**
 * Whether a transcript holds words: whisper writes silence as `[BLANK_AUDIO]`
 * or `(silence)`, and sometimes only punctuation.
 */
function hasSpeech(text: string): boolean {
  return /[\p{L}\p{N}]/u.test(text.replace(/\[[^\]]*\]|\([^)]*\)/g, ""));
}

/** The status and, when the body says, the service's error code (never its message). */
function httpError(status: number, body: string): SpeechError {
  const code = errorCode(body);
  const detail = code ? ` (${code})` : "";
  if (status === 401 || status === 403) {
    return new SpeechError(
      "unauthorized",
      `transcription refused the key: ${status}${detail}`,
      status,
      code,
    );
  }
  return new SpeechError("http", `transcription answered ${status}${detail}`, status, code);
}

/** OpenAI's `{"error": {"code", "type"}}`: the code, else the type, when it is a plain token. */
function errorCode(body: string): string | undefined {
  try {
    const error = JSON.parse(body)?.error;
    const code = [error?.code, error?.type].find((v) => typeof v === "string" && v !== "");
    return typeof code === "string" && /^[\w.-]{1,64}$/.test(code) ? code : undefined;
  } catch {
    return undefined;
  }
}

/** Runs a network step, turning aborts and transport errors into SpeechError. */
async function call<T>(step: () => Promise<T>, signal: AbortSignal): Promise<T> {
  try {
    return await step();
  } catch (error) {
    if (signal.aborted) throw new SpeechError("timeout", "transcription did not answer in time");
    throw new SpeechError("network", `transcription unreachable: ${describeError(error)}`);
  }
}
