import assert from "node:assert/strict";
import { formatConfigProblems, loadConfig } from "../src/config.ts";

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
