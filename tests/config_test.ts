import assert from "node:assert/strict";
import { parseEnv } from "node:util";
import { formatConfigProblems, isPlaceholder, loadConfig } from "../src/config.ts";

const VALID = {
  TWILIO_ACCOUNT_SID: "AC" + "a".repeat(32),
  TWILIO_AUTH_TOKEN: "f".repeat(32),
  TWILIO_FROM_NUMBER: "+14155238886",
  TWILIO_WEBHOOK_URL: "https://bridge.example.com/whatsapp",
  ASKYOURDATABASE_API_KEY: "ayd-key",
  ASKYOURDATABASE_CHAT_ID: "bot-1",
};

Deno.test("config - the old app's variables with their defaults", () => {
  const result = loadConfig(VALID);
  assert.ok(result.ok);
  const { config } = result;
  assert.equal(config.host, "0.0.0.0");
  assert.equal(config.port, 5000);
  assert.equal(config.maxSmsChars, 1600);
  assert.equal(config.aydBaseUrl, "https://www.askyourdatabase.com");
  assert.equal(config.aydTimeoutMs, 60_000);
  assert.equal(config.logLevel, "info");
  assert.equal(config.twilioApiBaseUrl, undefined);
  assert.match(config.kvPath!, /data\/bridge\.kv$/);
});

Deno.test("config - new variables are read and normalized", () => {
  const result = loadConfig({
    ...VALID,
    TWILIO_FROM_NUMBER: "whatsapp:+14155238886",
    AYD_BASE_URL: "http://127.0.0.1:9000/",
    TWILIO_API_BASE_URL: "http://127.0.0.1:9001",
    DENO_KV_PATH: ":memory:",
    AYD_TIMEOUT_MS: "2500",
    LOG_LEVEL: "DEBUG",
    PORT: "0",
    MAX_SMS_CHARS: "320",
  });
  assert.ok(result.ok);
  assert.equal(result.config.twilioFromNumber, "+14155238886");
  assert.equal(result.config.aydBaseUrl, "http://127.0.0.1:9000");
  assert.equal(result.config.twilioApiBaseUrl, "http://127.0.0.1:9001");
  assert.equal(result.config.kvPath, ":memory:");
  assert.equal(result.config.aydTimeoutMs, 2500);
  assert.equal(result.config.logLevel, "debug");
  assert.equal(result.config.port, 0);
  assert.equal(result.config.maxSmsChars, 320);
});

Deno.test("config - on Deno Deploy an unset DENO_KV_PATH means the platform KV", () => {
  const result = loadConfig({ ...VALID, DENO_DEPLOY: "1" });
  assert.ok(result.ok);
  assert.equal(result.config.kvPath, undefined);
});

Deno.test("config - every missing and invalid variable is listed at once", () => {
  const result = loadConfig({
    TWILIO_ACCOUNT_SID: "not-a-sid",
    TWILIO_WEBHOOK_URL: "ftp://example.com",
    PORT: "abc",
    MAX_SMS_CHARS: "2000",
    ASKYOURDATABASE_API_KEY: "  ",
  });
  assert.ok(!result.ok);
  const names = result.problems.map((p) => p.split(" ", 1)[0]);
  assert.deepEqual(names, [
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_FROM_NUMBER",
    "TWILIO_WEBHOOK_URL",
    "ASKYOURDATABASE_API_KEY",
    "ASKYOURDATABASE_CHAT_ID",
    "PORT",
    "MAX_SMS_CHARS",
  ]);
  assert.match(
    result.problems[1],
    /TWILIO_AUTH_TOKEN is missing: set it to your Twilio Auth Token/,
  );
  assert.match(result.problems[6], /PORT is invalid: it must be the port to listen on/);
  const message = formatConfigProblems(result.problems);
  assert.match(message, /^Configuration error \(8 problems\):/);
  assert.match(message, /\.env\.example/);
});

Deno.test("config - PART_MARKERS: none by default, a bad value or too little room is refused", () => {
  const plain = loadConfig(VALID);
  assert.ok(plain.ok);
  assert.equal(plain.config.partMarkers, "none");
  const counted = loadConfig({ ...VALID, PART_MARKERS: "count" });
  assert.ok(counted.ok);
  assert.equal(counted.config.partMarkers, "count");
  const bad = loadConfig({ ...VALID, PART_MARKERS: "numbers" });
  assert.ok(!bad.ok);
  assert.match(bad.problems.join("\n"), /PART_MARKERS is invalid: it must be none, count/);
  const cramped = loadConfig({ ...VALID, PART_MARKERS: "total", MAX_SMS_CHARS: "30" });
  assert.ok(!cramped.ok);
  assert.deepEqual(cramped.problems, [
    "PART_MARKERS needs MAX_SMS_CHARS of at least 40: raise it or set none.",
  ]);
});

Deno.test("config - a remote KV (DENO_KV_URL) runs outbox, needs its token, and refuses kv-queue", () => {
  const url = "https://api.deno.com/databases/0000/connect";
  const remote = loadConfig({ ...VALID, DENO_KV_URL: url, DENO_KV_ACCESS_TOKEN: "ddp_token" });
  assert.ok(remote.ok);
  assert.equal(remote.config.jobBackend, "outbox", "KV Connect has no queues");
  assert.equal(remote.config.kvPath, url);

  const tokenless = loadConfig({ ...VALID, DENO_KV_URL: url });
  assert.ok(!tokenless.ok);
  assert.match(
    tokenless.problems.join("\n"),
    /^DENO_KV_ACCESS_TOKEN is missing: DENO_KV_URL needs it/,
  );

  const forced = loadConfig({
    ...VALID,
    DENO_KV_URL: url,
    DENO_KV_ACCESS_TOKEN: "ddp_token",
    JOB_BACKEND: "kv-queue",
  });
  assert.ok(!forced.ok);
  assert.match(forced.problems.join("\n"), /JOB_BACKEND=kv-queue cannot run on DENO_KV_URL/);

  const bad = loadConfig({ ...VALID, DENO_KV_URL: "denokv-host:4512", DENO_KV_ACCESS_TOKEN: "t" });
  assert.ok(!bad.ok);
  assert.match(bad.problems.join("\n"), /^DENO_KV_URL is invalid/);
});

/** `.env.example` as `--env-file` reads it (comments and blank lines dropped). */
async function exampleEnv(): Promise<Record<string, string>> {
  const text = await Deno.readTextFile(new URL("../.env.example", import.meta.url));
  return parseEnv(text) as Record<string, string>;
}

Deno.test("config - a copy of .env.example is refused, naming every placeholder and where to find it", async () => {
  const result = loadConfig(await exampleEnv());
  assert.ok(!result.ok);
  assert.deepEqual(result.problems.map((p) => p.split(" ", 1)[0]), [
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_WEBHOOK_URL",
    "ASKYOURDATABASE_API_KEY",
    "ASKYOURDATABASE_CHAT_ID",
  ]);
  for (const problem of result.problems) {
    assert.match(problem, /^\w+ is still a placeholder \(.+, as in \.env\.example\): set it to /);
  }
  const [sid, token, url, key, chat] = result.problems;
  assert.match(sid, /Twilio Console, console\.twilio\.com → Account Dashboard → Account Info/);
  assert.match(token, /Auth Token; click Show/);
  assert.match(url, /\(https:\/\/your-domain\.com\/whatsapp,[^]*"When a message comes in"/);
  assert.match(key, /AskYourDatabase dashboard → API Key/);
  assert.match(chat, /copy the ID from its URL/);
});

Deno.test("config - fixing only the Account SID still leaves the other placeholders refused", async () => {
  const result = loadConfig({
    ...await exampleEnv(),
    TWILIO_ACCOUNT_SID: VALID.TWILIO_ACCOUNT_SID,
  });
  assert.ok(!result.ok);
  assert.deepEqual(result.problems.map((p) => p.split(" ", 1)[0]), [
    "TWILIO_AUTH_TOKEN",
    "TWILIO_WEBHOOK_URL",
    "ASKYOURDATABASE_API_KEY",
    "ASKYOURDATABASE_CHAT_ID",
  ]);
});

Deno.test("config - placeholder shapes: all x, your-domain, <blanks>; real values pass", () => {
  for (const value of ["xxxxxxxx", "ACXXXXXXXXXXXX", "https://your-domain.com/whatsapp"]) {
    assert.ok(isPlaceholder(value), value);
  }
  assert.ok(isPlaceholder("https://api.deno.com/databases/<database-id>/connect"));
  assert.ok(isPlaceholder("https://<your-host>/whatsapp"));
  for (const value of ["x", "xx-token", "https://bridge.example.com/whatsapp", "ayd-key", "<3"]) {
    assert.ok(!isPlaceholder(value), value);
  }
  const reply = loadConfig({ ...VALID, DENIED_REPLY: "Ask <admin> for access" });
  assert.ok(reply.ok, "free text is not checked for blanks");
  const kv = loadConfig({
    ...VALID,
    DENO_KV_URL: "https://api.deno.com/databases/<database-id>/connect",
    DENO_KV_ACCESS_TOKEN: "ddp_token",
  });
  assert.ok(!kv.ok);
  assert.match(kv.problems[0], /^DENO_KV_URL is still a placeholder/);
});

Deno.test("config - voice notes are not transcribed without TRANSCRIBE_URL; media are capped at 16 MB", () => {
  const result = loadConfig({
    ...VALID,
    TRANSCRIBE_MODEL: "whisper-large-v3",
    TRANSCRIBE_LANGUAGE: "de",
  });
  assert.ok(result.ok);
  assert.equal(result.config.transcription, undefined);
  assert.equal(result.config.maxMediaBytes, 16 * 1024 * 1024);
});

Deno.test("config - TRANSCRIBE_* become the transcription settings, with defaults", () => {
  const openAi = loadConfig({
    ...VALID,
    TRANSCRIBE_URL: "https://api.openai.com/",
    TRANSCRIBE_API_KEY: "sk-1",
  });
  assert.ok(openAi.ok);
  assert.deepEqual(openAi.config.transcription, {
    url: "https://api.openai.com",
    apiKey: "sk-1",
    model: "whisper-1",
    language: undefined,
    timeoutMs: 60_000,
  });
  const groq = loadConfig({
    ...VALID,
    TRANSCRIBE_URL: "https://api.groq.com/openai",
    TRANSCRIBE_API_KEY: "gsk_1",
    TRANSCRIBE_MODEL: "whisper-large-v3-turbo",
    TRANSCRIBE_LANGUAGE: "DE",
    TRANSCRIBE_TIMEOUT_MS: "20000",
    MAX_MEDIA_BYTES: "5000000",
  });
  assert.ok(groq.ok);
  assert.deepEqual(groq.config.transcription, {
    url: "https://api.groq.com/openai",
    apiKey: "gsk_1",
    model: "whisper-large-v3-turbo",
    language: "de",
    timeoutMs: 20_000,
  });
  assert.equal(groq.config.maxMediaBytes, 5_000_000);
  const local = loadConfig({ ...VALID, TRANSCRIBE_URL: "http://127.0.0.1:8080" });
  assert.ok(local.ok);
  assert.equal(local.config.transcription?.apiKey, undefined, "a local server needs no key");
});

Deno.test("config - bad TRANSCRIBE_* values say what is expected", () => {
  const result = loadConfig({
    ...VALID,
    TRANSCRIBE_URL: "https://api.openai.com/v1/audio/transcriptions",
    TRANSCRIBE_MODEL: "whisper 1",
    TRANSCRIBE_LANGUAGE: "english",
    TRANSCRIBE_TIMEOUT_MS: "10",
    MAX_MEDIA_BYTES: "20000000",
  });
  assert.ok(!result.ok);
  assert.deepEqual(result.problems.map((p) => p.split(" ", 1)[0]), [
    "TRANSCRIBE_URL",
    "TRANSCRIBE_MODEL",
    "TRANSCRIBE_LANGUAGE",
    "TRANSCRIBE_TIMEOUT_MS",
    "MAX_MEDIA_BYTES",
  ]);
  assert.match(result.problems[0], /without \/v1\/audio\/transcriptions/);
  assert.match(result.problems[2], /ISO-639-1/);
  for (const url of ["https://api.groq.com/openai/v1", "ftp://stt.example", "not a url"]) {
    const bad = loadConfig({ ...VALID, TRANSCRIBE_URL: url });
    assert.ok(!bad.ok, url);
    assert.match(bad.problems[0], /^TRANSCRIBE_URL is invalid/);
  }
});

Deno.test("config - a TRANSCRIBE_API_KEY without TRANSCRIBE_URL is a mistake, not a silent no", () => {
  const result = loadConfig({ ...VALID, TRANSCRIBE_API_KEY: "sk-1" });
  assert.ok(!result.ok);
  assert.match(result.problems[0], /^TRANSCRIBE_URL is missing: TRANSCRIBE_API_KEY is set/);
  assert.doesNotMatch(result.problems.join("\n"), /sk-1/, "the key is not repeated");
});

Deno.test("config - AYD_MODE: session by default (the Flask app's protocol), chat on request, nothing else", () => {
  const byDefault = loadConfig(VALID);
  assert.ok(byDefault.ok);
  assert.equal(byDefault.config.aydMode, "session");
  const chat = loadConfig({ ...VALID, AYD_MODE: " Chat " });
  assert.ok(chat.ok);
  assert.equal(chat.config.aydMode, "chat");
  const bad = loadConfig({ ...VALID, AYD_MODE: "api" });
  assert.ok(!bad.ok);
  assert.match(bad.problems[0], /^AYD_MODE is invalid: it must be session .* or chat/);
});
