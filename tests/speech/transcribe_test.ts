/**
 * The transcription client over real HTTP against a fake service speaking
 * OpenAI's documented multipart API.
 */
import assert from "node:assert/strict";
import {
  audioFilename,
  MAX_TRANSCRIPT_CHARS,
  SpeechError,
  transcribe,
} from "../../src/speech/mod.ts";
import { type FakeStt, startFakeStt } from "../fakes/fake_stt.ts";

const KEY = "sk-test-0123456789";
const VOICE = { bytes: new TextEncoder().encode("OggS opus voice"), contentType: "audio/ogg" };

const optionsFor = (stt: FakeStt) => ({ url: stt.url, apiKey: KEY, model: "whisper-1" });

async function speechError(promise: Promise<unknown>): Promise<SpeechError> {
  const error = await promise.then(() => undefined, (e) => e);
  assert.ok(error instanceof SpeechError, `expected a SpeechError, got ${error}`);
  return error;
}

Deno.test("transcribe - one multipart request: file, model, response_format=json, language, bearer key", async () => {
  await using stt = await startFakeStt({
    apiKey: KEY,
    transcript: "  How many orders shipped late? \n",
  });
  const transcript = await transcribe(VOICE, { ...optionsFor(stt), language: "en" });
  assert.deepEqual(transcript, { text: "How many orders shipped late?" });
  assert.equal(stt.requests.length, 1);
  const [request] = stt.requests;
  assert.deepEqual(request.fields, ["file", "model", "response_format", "language"]);
  assert.equal(request.model, "whisper-1");
  assert.equal(request.language, "en");
  assert.equal(request.responseFormat, "json");
  assert.equal(request.filename, "voice.ogg");
  assert.equal(request.contentType, "audio/ogg");
  assert.deepEqual(request.bytes, VOICE.bytes);
  assert.equal(request.authorization, `Bearer ${KEY}`);
});

Deno.test("transcribe - without a key no Authorization is sent, without a language none is", async () => {
  await using stt = await startFakeStt();
  await transcribe(VOICE, { url: `${stt.url}/`, model: "Systran/faster-whisper-small" });
  const [request] = stt.requests;
  assert.equal(request.authorization, null);
  assert.equal(request.language, undefined);
  assert.deepEqual(request.fields, ["file", "model", "response_format"]);
  assert.equal(request.model, "Systran/faster-whisper-small");
});

Deno.test("transcribe - a refused key is unauthorized, permanent, and its message repeats nothing of the answer", async () => {
  await using stt = await startFakeStt({ apiKey: KEY });
  const error = await speechError(
    transcribe(VOICE, { ...optionsFor(stt), apiKey: "sk-wrong-key" }),
  );
  assert.deepEqual([error.kind, error.status, error.code, error.transient], [
    "unauthorized",
    401,
    "invalid_api_key",
    false,
  ]);
  assert.doesNotMatch(error.message, /Incorrect|sk-|\*\*\*/);
});

Deno.test("transcribe - 5xx, 408 and a rate limit are transient; an exhausted quota and a 400 are not", async () => {
  await using stt = await startFakeStt({ apiKey: KEY });
  const cases: [Parameters<FakeStt["failNext"]>[0], boolean][] = [
    [{ status: 500 }, true],
    [{ status: 503, type: "service_unavailable_error" }, true],
    [{ status: 408 }, true],
    [{ status: 429, type: "requests", code: "rate_limit_exceeded" }, true],
    [{ status: 429, type: "insufficient_quota", code: "insufficient_quota" }, false],
    [{ status: 400, message: "Audio file might be corrupted or unsupported" }, false],
    [{ status: 413, message: "Maximum content size limit (26214400) exceeded" }, false],
    [{ raw: "<html>502 Bad Gateway</html>", status: 502 }, true],
  ];
  for (const [fault, transient] of cases) {
    stt.failNext(fault);
    const error = await speechError(transcribe(VOICE, optionsFor(stt)));
    const status = "status" in fault ? fault.status : undefined;
    assert.deepEqual([error.kind, error.status, error.transient], ["http", status, transient]);
    assert.doesNotMatch(error.message, /corrupted|Maximum|html/, "the service's words stay out");
  }
  stt.failNext({ status: 429, code: "insufficient_quota" });
  const quota = await speechError(transcribe(VOICE, optionsFor(stt)));
  assert.equal(quota.code, "insufficient_quota", "the service's code is kept: it says what to fix");
});

Deno.test("transcribe - an empty transcript, or one of silence markers only, is 'empty'", async () => {
  await using stt = await startFakeStt();
  for (const transcript of ["", "   \n", "[BLANK_AUDIO]", " (silence) ", "[Music] ..."]) {
    stt.failNext({ transcript });
    const error = await speechError(transcribe(VOICE, { url: stt.url, model: "whisper-1" }));
    assert.equal(error.kind, "empty", JSON.stringify(transcript));
    assert.equal(error.transient, false);
  }
  stt.failNext({ transcript: "[BLANK_AUDIO] Wie viele Bestellungen?" });
  const { text } = await transcribe(VOICE, { url: stt.url, model: "whisper-1" });
  assert.equal(text, "[BLANK_AUDIO] Wie viele Bestellungen?", "words around a marker are speech");
});

Deno.test("transcribe - a slow answer within the time allowed is taken; a hung one times out (transient)", async () => {
  await using stt = await startFakeStt();
  stt.failNext({ delayMs: 50 });
  const slow = await transcribe(VOICE, { url: stt.url, model: "whisper-1" });
  assert.equal(slow.text, "How many orders shipped late last week?");

  stt.failNext({ hang: true });
  const error = await speechError(
    transcribe(VOICE, { url: stt.url, model: "whisper-1", signal: AbortSignal.timeout(100) }),
  );
  assert.deepEqual([error.kind, error.transient], ["timeout", true]);
});

Deno.test("transcribe - a service that is down is a transient network error", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const url = `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`;
  listener.close();
  const error = await speechError(transcribe(VOICE, { url, model: "whisper-1", apiKey: KEY }));
  assert.deepEqual([error.kind, error.transient], ["network", true]);
  assert.doesNotMatch(error.message, /sk-test/);
});

Deno.test("transcribe - whisper.cpp's 200 {error}, and an answer that is not JSON, are protocol errors", async () => {
  await using stt = await startFakeStt();
  stt.failNext({ whisperCppError: "failed to read WAV file" }, { raw: "How many orders" });
  for (let i = 0; i < 2; i++) {
    const error = await speechError(transcribe(VOICE, { url: stt.url, model: "whisper-1" }));
    assert.deepEqual([error.kind, error.transient], ["protocol", false]);
    assert.doesNotMatch(error.message, /WAV|orders/);
  }
});

Deno.test("transcribe - the file name tells the service the format, as OpenAI requires", async () => {
  assert.equal(audioFilename("audio/ogg"), "voice.ogg");
  assert.equal(audioFilename("audio/ogg; codecs=opus"), "voice.ogg");
  assert.equal(audioFilename("audio/webm;codecs=opus"), "voice.webm");
  assert.equal(audioFilename("audio/mpeg"), "voice.mp3");
  assert.equal(audioFilename("audio/mp4"), "voice.m4a");
  assert.equal(audioFilename("audio/x-wav"), "voice.wav");
  assert.equal(audioFilename("audio/amr"), "voice.amr");
  assert.equal(audioFilename("application/octet-stream"), "voice.bin");

  await using stt = await startFakeStt();
  const webm = await transcribe({ ...VOICE, contentType: "audio/webm;codecs=opus" }, {
    url: stt.url,
    model: "whisper-1",
  });
  assert.ok(webm.text);
  assert.equal(stt.requests[0].filename, "voice.webm");
  // A format the service does not read is its 400, not ours to guess.
  const amr = await speechError(
    transcribe({ ...VOICE, contentType: "audio/amr" }, { url: stt.url, model: "whisper-1" }),
  );
  assert.deepEqual([amr.kind, amr.status], ["http", 400]);
});

Deno.test("transcribe - a very long transcript is kept to MAX_TRANSCRIPT_CHARS, never half an emoji", async () => {
  await using stt = await startFakeStt();
  stt.failNext({ transcript: "a".repeat(MAX_TRANSCRIPT_CHARS - 1) + "🚀 and more" });
  const { text } = await transcribe(VOICE, { url: stt.url, model: "whisper-1" });
  assert.equal(text, "a".repeat(MAX_TRANSCRIPT_CHARS - 1));
  stt.failNext({ transcript: "b".repeat(MAX_TRANSCRIPT_CHARS * 3) });
  const long = await transcribe(VOICE, { url: stt.url, model: "whisper-1" });
  assert.equal(long.text.length, MAX_TRANSCRIPT_CHARS);
});
