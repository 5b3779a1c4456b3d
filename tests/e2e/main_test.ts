/** `main.ts` as a process: start-up errors, and one real conversation. */
import assert from "node:assert/strict";
import { startFakeAyd } from "../fakes/fake_ayd.ts";
import { startFakeTwilio } from "../fakes/fake_twilio.ts";
import {
  ACCOUNT_SID,
  API_KEY,
  AUTH_TOKEN,
  CHAT_ID,
  postForm,
  sign,
  testEnv,
  waitFor,
  whatsAppParams,
} from "../_helpers.ts";
import { freePort, mainCommand as mainProcess, runTask, startMain } from "../_process.ts";
import { startKvConnectServer } from "../fakes/kv_connect/mod.ts";

Deno.test("startup - missing and invalid variables stop it with one clear message", async () => {
  const { code, stdout, stderr } = await mainProcess({ PORT: "eighty", TWILIO_AUTH_TOKEN: "x" })
    .output();
  const text = new TextDecoder().decode(stderr);
  assert.equal(code, 1);
  assert.equal(new TextDecoder().decode(stdout), "");
  assert.match(text, /^Configuration error \(6 problems\):/);
  for (const name of ["TWILIO_ACCOUNT_SID", "TWILIO_FROM_NUMBER", "ASKYOURDATABASE_CHAT_ID"]) {
    assert.match(text, new RegExp(`- ${name} is missing: set it to `));
  }
  assert.match(text, /- PORT is invalid: it must be the port to listen on, 0–65535/);
  assert.doesNotMatch(text, /\n\s+at /, "no stack trace");
});

Deno.test("startup - deno task start with a .env copied from .env.example names each placeholder", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.copyFile(new URL("../../.env.example", import.meta.url), `${dir}/.env`);
    const { code, out, err } = await runTask("start", [], { cwd: dir, env: {} });
    assert.equal(code, 1);
    assert.equal(out, "");
    assert.match(err, /^Configuration error \(5 problems\):/);
    for (
      const name of [
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
        "TWILIO_WEBHOOK_URL",
        "ASKYOURDATABASE_API_KEY",
        "ASKYOURDATABASE_CHAT_ID",
      ]
    ) assert.match(err, new RegExp(`\n  - ${name} is still a placeholder \\(`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("startup - an unopenable KV path stops it with a plain message", async () => {
  const { code, stderr } = await mainProcess(testEnv({ DENO_KV_PATH: "/proc/nope/bridge.kv" }))
    .output();
  const text = new TextDecoder().decode(stderr);
  assert.equal(code, 1);
  assert.match(text, /^Cannot open the Deno KV database at \/proc\/nope\/bridge\.kv/);
  assert.match(text, /Set DENO_KV_PATH/);
  assert.doesNotMatch(text, /\n\s+at /);
});

Deno.test("startup - a KV Connect server that refuses the token stops it at once, naming the variable", async () => {
  await using server = await startKvConnectServer({ token: "the-right-token" });
  const { code, stderr } = await mainProcess(testEnv({
    DENO_KV_URL: server.url,
    DENO_KV_ACCESS_TOKEN: "a-wrong-token",
  })).output();
  const text = new TextDecoder().decode(stderr);
  assert.equal(code, 1);
  assert.match(text, /^Cannot open the KV Connect database at http:\/\/127\.0\.0\.1:\d+\//);
  assert.match(text, /check DENO_KV_ACCESS_TOKEN/);
  assert.doesNotMatch(text, /a-wrong-token|the-right-token/, "no token in the message");
  assert.doesNotMatch(text, /\n\s+at /);
  assert.equal(server.stats.metadataExchanges, 0);
  assert.equal(server.stats.roundTrips, 1, "a refused token is not tried again");
});

Deno.test("startup - a KV Connect server that cannot be reached is tried a few times, then named", async () => {
  const port = freePort(); // nothing listens there
  const { code, stderr } = await mainProcess(testEnv({
    DENO_KV_URL: `http://127.0.0.1:${port}`,
    DENO_KV_ACCESS_TOKEN: "token",
  })).output();
  const text = new TextDecoder().decode(stderr);
  assert.equal(code, 1);
  assert.match(
    text,
    new RegExp(`^Cannot open the KV Connect database at http://127\\.0\\.0\\.1:${port}/`),
  );
  assert.match(text, /Check DENO_KV_URL \(is the server up and reachable from here\?\)/);
});

Deno.test("startup - main.ts answers a signed webhook end to end and stops on SIGTERM", async () => {
  await using ayd = await startFakeAyd({ apiKey: API_KEY, chatId: CHAT_ID });
  await using twilio = await startFakeTwilio({ accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN });
  const dir = await Deno.makeTempDir();
  try {
    await using main = await startMain(testEnv({
      AYD_BASE_URL: ayd.url,
      TWILIO_API_BASE_URL: twilio.url,
      DENO_KV_PATH: `${dir}/nested/bridge.kv`,
      SESSIONS_CSV_PATH: `${dir}/ayd_sessions.csv`,
      LOG_LEVEL: "info",
    }));
    const started = JSON.parse(
      main.output().split("\n").find((line) => line.includes('"service.started"'))!,
    );
    assert.equal(started.url, main.url);
    assert.equal(started.webhook_url, "https://bridge.example.com/whatsapp", "what Twilio needs");
    assert.equal(started.health_url, "https://bridge.example.com/health");
    assert.match(started.first_message, /logs webhook\.received/);
    const params = whatsAppParams({ Body: "from a real process" });
    const response = await postForm(main.url, params, { "x-twilio-signature": sign(params) });
    assert.equal(response.status, 200);
    await response.body?.cancel();
    const [reply] = await twilio.waitForMessages("whatsapp:+15551234567", 1);
    assert.equal(reply.body, "Answer to: from a real process");
    assert.ok((await Deno.stat(`${dir}/nested/bridge.kv`)).isFile, "the KV file was created");

    assert.equal((await main.stop("SIGTERM")).code, 0);
    assert.match(main.output(), /"event":"service\.stopped"/);
    // SESSIONS_CSV_PATH: exported once more at shutdown.
    const csv = await Deno.readTextFile(`${dir}/ayd_sessions.csv`);
    assert.match(csv, /^phone_number,session_id,expires_at,created_at\r\n\+15551234567,tok_/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("startup - a webhook signed for the URL a proxy made is refused with 403, and the log names the URL to configure", async () => {
  await using ayd = await startFakeAyd({ apiKey: API_KEY, chatId: CHAT_ID });
  await using twilio = await startFakeTwilio({ accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN });
  await using main = await startMain(testEnv({
    AYD_BASE_URL: ayd.url,
    TWILIO_API_BASE_URL: twilio.url,
    LOG_LEVEL: "info",
  }));
  // Twilio was set to call the tunnel's URL; the proxy passes the host it was called at.
  const signedFor = "https://abc123.ngrok.app/whatsapp";
  const params = whatsAppParams({ Body: "through a tunnel" });
  const response = await postForm(main.url, params, {
    "x-twilio-signature": sign(params, signedFor),
    "x-forwarded-proto": "https",
    "x-forwarded-host": "abc123.ngrok.app",
  });
  assert.equal(response.status, 403);
  await response.body?.cancel();
  const health = await (await fetch(`${main.url}/health`)).json();
  assert.equal(health.webhookUrlHint, signedFor);
  // Log lines reach stdout in batches: wait for the line, not for a time.
  await waitFor(() => main.output().includes('"event":"webhook.url_mismatch"'), "the log line");
  const logged = main.output().split("\n").filter((line) => line.includes("webhook.url_mismatch"))
    .map((line) => JSON.parse(line));
  assert.equal(logged.length, 1);
  assert.equal(logged[0].signed_for, signedFor);
  assert.equal(logged[0].configured, "https://bridge.example.com/whatsapp");
  assert.equal(logged[0].fix, `set TWILIO_WEBHOOK_URL=${signedFor}`);
  assert.ok(!main.output().includes(AUTH_TOKEN) && !main.output().includes("through a tunnel"));
  assert.equal(twilio.messages.length, 0, "nothing answered");
});
