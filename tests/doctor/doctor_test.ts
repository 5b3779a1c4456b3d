/**
 * `deno task doctor` against the fakes: a running bridge on a KV file, the
 * fake Twilio and AYD it talks to, and one test per line that can fail.
 *
 * `SHOW_DOCTOR=1` prints each checklist, as `deno task doctor` would: the
 * tests "deno task doctor, run as an operator runs it" show a whole run
 * (docs/setup.md).
 */
import assert from "node:assert/strict";
import { allPassed, type CheckLine, formatReport, runDoctor } from "../../src/doctor/mod.ts";
import { healthUrlBeside } from "../../src/doctor/_public_url.ts";
import type { WorkerValue } from "../../src/jobs/mod.ts";
import type { AydMode } from "../../src/config.ts";
import {
  API_KEY,
  AUTH_TOKEN,
  KV_CONNECT_TOKEN,
  startTestBridge,
  type TestBridge,
  testEnv,
  testKv,
  waitFor,
} from "../_helpers.ts";
import { freePort, runTask } from "../_process.ts";

/** A WhatsApp sender of the fake account (not Twilio's shared sandbox number). */
const FROM = "+15557654321";

interface Scene extends AsyncDisposable {
  t: TestBridge;
  /** The doctor's environment: this bridge's configuration, as reached from outside. */
  env: Record<string, string>;
  run(overrides?: Record<string, string>): Promise<CheckLine[]>;
}

const SHOW = !!Deno.env.get("SHOW_DOCTOR");

/**
 * A bridge on a KV file, its fakes set up as a working account, and the
 * doctor's environment; `mode` is the bridge's and the doctor's `AYD_MODE`.
 */
async function scene(mode: AydMode = "session"): Promise<Scene> {
  const dir = await Deno.makeTempDir();
  const kvEnv = { DENO_KV_PATH: `${dir}/bridge.kv`, JOB_BACKEND: "kv-queue", AYD_MODE: mode };
  const t = await startTestBridge({ mode, env: { ...kvEnv, TWILIO_FROM_NUMBER: FROM } });
  const webhookUrl = `${t.url}/whatsapp`;
  t.twilio.incomingNumbers.push({ phoneNumber: FROM });
  t.twilio.whatsappSenders.push({ senderId: `whatsapp:${FROM}`, callbackUrl: webhookUrl });
  const env = testEnv({
    ...kvEnv,
    AYD_BASE_URL: t.ayd.url,
    TWILIO_API_BASE_URL: t.twilio.url,
    TWILIO_FROM_NUMBER: FROM,
    TWILIO_WEBHOOK_URL: webhookUrl,
  });
  await waitFor(async () => {
    const workers = await Array.fromAsync(t.kv.list<WorkerValue>({ prefix: ["workers"] }));
    return workers.some((entry) => entry.value.instance === t.bridge.instance);
  }, "the bridge's first heartbeat");
  return {
    t,
    env,
    async run(overrides = {}) {
      const lines = await runDoctor({ ...env, ...overrides }, {
        timeoutMs: 3_000,
        recheckAfterMs: 20,
      });
      if (SHOW) console.log(formatReport(lines));
      return lines;
    },
    async [Symbol.asyncDispose]() {
      await t[Symbol.asyncDispose]();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** The one line of `area` whose text matches `text`, after checking its status. */
function lineOf(lines: CheckLine[], area: string, text: RegExp, status: CheckLine["status"]) {
  const found = lines.filter((line) => line.area === area && text.test(line.text));
  assert.equal(found.length, 1, `one ${area} line like ${text} in:\n${formatReport(lines)}`);
  assert.equal(found[0].status, status, formatReport(lines));
  return found[0];
}

/** Asserts that exactly `failing` failed and the report holds no secret. */
function onlyFailing(lines: CheckLine[], failing: CheckLine) {
  const failed = lines.filter((line) => line.status === "fail");
  assert.deepEqual(failed, [failing], formatReport(lines));
  assert.ok(failing.fix, "a failure comes with its fix");
  assert.equal(allPassed(lines), false);
  const report = formatReport(lines);
  assert.ok(!report.includes(AUTH_TOKEN) && !report.includes(API_KEY), "no secret printed");
}

Deno.test("doctor - a working setup: every check passes, and nothing secret is printed", async () => {
  await using s = await scene();
  const lines = await s.run();
  const report = formatReport(lines);
  assert.ok(allPassed(lines), report);
  assert.ok(lines.every((line) => line.status === "pass"), report);
  assert.deepEqual(lines.map((line) => line.area), [
    "configuration",
    "Twilio",
    "Twilio",
    "Twilio",
    "Twilio",
    "AskYourDatabase",
    "KV",
    "KV",
    "public URL",
    "public URL",
    "public URL",
  ]);
  assert.match(report, /^✓ Twilio: TWILIO_FROM_NUMBER \+15557654321 is a WhatsApp sender/m);
  assert.match(report, /^✓ public URL: http:\/\/127\.0\.0\.1:\d+\/health answers as this bridge/m);
  assert.match(report, /\n\nAll good: 11 passed\.$/);
  // The fake's Account resource carries the auth token, as Twilio's does.
  assert.ok(!report.includes(AUTH_TOKEN) && !report.includes(API_KEY), "no secret printed");
  assert.equal(s.t.ayd.sessions.length, 1, "one session opened");
  assert.equal(s.t.ayd.asks.length, 0, "no question asked");
});

Deno.test("doctor - configuration: each bad variable is a line with its fix, and nothing else is tried", async () => {
  const lines = await runDoctor({ PORT: "eighty", TWILIO_AUTH_TOKEN: "x" });
  const port = lineOf(lines, "configuration", /^PORT is invalid$/, "fail");
  assert.match(port.fix!, /^it must be the port to listen on, 0–65535/);
  const sid = lineOf(lines, "configuration", /^TWILIO_ACCOUNT_SID is missing$/, "fail");
  assert.match(sid.fix!, /^set it to your Twilio Account SID/);
  assert.equal(lines.filter((line) => line.status === "fail").length, 6);
  lineOf(lines, "services", /checked once every variable is valid/, "skip");
  assert.equal(allPassed(lines), false);
});

Deno.test("doctor - Twilio: a wrong Auth Token is the 401 line", async () => {
  await using s = await scene();
  const lines = await s.run({ TWILIO_AUTH_TOKEN: "not-the-token" });
  const line = lineOf(lines, "Twilio", /are refused \(401, error 20003\)$/, "fail");
  assert.match(line.fix!, /Twilio Console → Account info/);
  onlyFailing(lines, line);
  lineOf(lines, "Twilio", /were not checked/, "skip");
});

Deno.test("doctor - Twilio: a suspended account", async () => {
  await using s = await scene();
  s.t.twilio.account.status = "suspended";
  const lines = await s.run();
  const line = lineOf(lines, "Twilio", /^the account is suspended/, "fail");
  assert.match(line.fix!, /Billing/);
  onlyFailing(lines, line);
});

Deno.test("doctor - Twilio: a closed account", async () => {
  await using s = await scene();
  s.t.twilio.account.status = "closed";
  const lines = await s.run();
  onlyFailing(lines, lineOf(lines, "Twilio", /^the account is closed$/, "fail"));
});

Deno.test("doctor - Twilio: a number that is not the account's, with the senders it has", async () => {
  await using s = await scene();
  const lines = await s.run({ TWILIO_FROM_NUMBER: "+15550009999" });
  const line = lineOf(
    lines,
    "Twilio",
    /^TWILIO_FROM_NUMBER \+15550009999 is neither a phone number nor a WhatsApp sender/,
    "fail",
  );
  assert.match(line.fix!, /this account's WhatsApp senders: \+15557654321$/);
  onlyFailing(lines, line);
});

Deno.test("doctor - Twilio: a phone number of the account that is no WhatsApp sender", async () => {
  await using s = await scene();
  s.t.twilio.whatsappSenders.length = 0;
  const lines = await s.run();
  const line = lineOf(lines, "Twilio", /is a phone number of this account but not one of/, "fail");
  assert.match(line.fix!, /this account has no WhatsApp sender yet$/);
  onlyFailing(lines, line);
});

Deno.test("doctor - Twilio: a WhatsApp sender that is offline", async () => {
  await using s = await scene();
  s.t.twilio.whatsappSenders[0].status = "OFFLINE";
  const lines = await s.run();
  onlyFailing(
    lines,
    lineOf(lines, "Twilio", /is a WhatsApp sender of this account, but OFFLINE$/, "fail"),
  );
});

Deno.test("doctor - Twilio: a sender whose incoming messages go elsewhere", async () => {
  await using s = await scene();
  s.t.twilio.whatsappSenders[0].callbackUrl = "https://old-bot.example.com/sms";
  const lines = await s.run();
  const line = lineOf(
    lines,
    "Twilio",
    /^the sender's incoming messages go to https:\/\/old-bot\.example\.com\/sms, not to/,
    "fail",
  );
  assert.match(line.fix!, /Messaging Service/);
  onlyFailing(lines, line);
});

Deno.test("doctor - Twilio: a Senders API out of reach is said plainly, and is no failure", async () => {
  await using s = await scene();
  s.t.twilio.failSenders(404);
  const lines = await s.run();
  lineOf(
    lines,
    "Twilio",
    /is a phone number of this account; whether it is a WhatsApp sender could not be checked \(the Senders API answered 404\)$/,
    "skip",
  );
  assert.ok(allPassed(lines), formatReport(lines));
});

Deno.test("doctor - Twilio: the shared sandbox number is said to be one, not failed", async () => {
  await using s = await scene();
  const lines = await s.run({ TWILIO_FROM_NUMBER: "+14155238886" });
  const line = lineOf(lines, "Twilio", /is Twilio's shared WhatsApp sandbox/, "skip");
  assert.match(line.fix!, /join code/);
  lineOf(
    lines,
    "Twilio",
    /where the sandbox sends incoming messages is not in Twilio's API/,
    "skip",
  );
  assert.ok(allPassed(lines), formatReport(lines));
  assert.match(formatReport(lines), /\n\nAll good: 2 not checked \(not failures\), 9 passed\.$/);
});

Deno.test("doctor - Twilio: an API that cannot be reached", async () => {
  await using s = await scene();
  const lines = await s.run({ TWILIO_API_BASE_URL: `http://127.0.0.1:${freePort()}` });
  const line = lineOf(
    lines,
    "Twilio",
    /^Twilio cannot be reached at http:\/\/127\.0\.0\.1:\d+ \(could not connect\)$/,
    "fail",
  );
  assert.match(line.fix!, /TWILIO_API_BASE_URL is set/);
  onlyFailing(lines, line);
});

Deno.test("doctor - Twilio: a server error for the account is its own line, and the rest waits", async () => {
  await using s = await scene();
  s.t.twilio.failAccount(503);
  const lines = await s.run();
  const line = lineOf(lines, "Twilio", /^Twilio answered 503 when asked for the account$/, "fail");
  assert.match(line.fix!, /^try again in a minute; status\.twilio\.com says/);
  onlyFailing(lines, line);
  lineOf(lines, "Twilio", /^the account's status and TWILIO_FROM_NUMBER were not checked/, "skip");
});

Deno.test("doctor - AskYourDatabase: a wrong API key", async () => {
  await using s = await scene();
  const lines = await s.run({ ASKYOURDATABASE_API_KEY: "wrong-key" });
  const line = lineOf(lines, "AskYourDatabase", /^the API key is refused \(401\)$/, "fail");
  assert.match(line.fix!, /dashboard/);
  onlyFailing(lines, line);
  assert.ok(!formatReport(lines).includes("wrong-key"), "not even a wrong key is printed");
});

Deno.test("doctor - AskYourDatabase: an unknown chatbot ID", async () => {
  await using s = await scene();
  const lines = await s.run({ ASKYOURDATABASE_CHAT_ID: "no-such-bot" });
  const line = lineOf(
    lines,
    "AskYourDatabase",
    /^the chatbot ID is refused \(400\): AskYourDatabase knows no chatbot "no-such-bot"/,
    "fail",
  );
  assert.match(line.fix!, /the chatbot ID from the chatbot's URL/);
  onlyFailing(lines, line);
});

Deno.test("doctor - AskYourDatabase: a base URL that cannot be reached", async () => {
  await using s = await scene();
  const lines = await s.run({ AYD_BASE_URL: `http://127.0.0.1:${freePort()}` });
  onlyFailing(
    lines,
    lineOf(
      lines,
      "AskYourDatabase",
      /^http:\/\/127\.0\.0\.1:\d+ cannot be reached \(no connection\)$/,
      "fail",
    ),
  );
});

Deno.test("doctor - AskYourDatabase: a server error when the session is asked for", async () => {
  await using s = await scene();
  s.t.ayd.failSessions(503);
  const lines = await s.run();
  const line = lineOf(
    lines,
    "AskYourDatabase",
    /^AskYourDatabase answered 503 when asked for a session$/,
    "fail",
  );
  assert.equal(line.fix, "try again in a minute; if it stays, ask AskYourDatabase's support");
  onlyFailing(lines, line);
});

Deno.test("doctor - AskYourDatabase: an answer that opens no session (no accessToken cookie) is a protocol line", async () => {
  await using s = await scene();
  // A login link that leads to a page, and no cookie: what a changed widget would give.
  s.t.ayd.answerSessionsWith({ url: `${s.t.ayd.url}/chatbot` });
  const lines = await s.run();
  const line = lineOf(
    lines,
    "AskYourDatabase",
    /^a session was asked for, but AskYourDatabase's answer was not one \(session callback answered 200 without an accessToken cookie\)$/,
    "fail",
  );
  assert.match(
    line.fix!,
    /^check AYD_BASE_URL \(http:\/\/127\.0\.0\.1:\d+\); if it is right, AskYourDatabase's session API may have changed$/,
  );
  onlyFailing(lines, line);
});

Deno.test("doctor - AskYourDatabase: a failure of no AYD kind is still a line with a fix, naming only the error's kind", async () => {
  await using s = await scene();
  // A login link that is no URL: the client's URL parsing throws a TypeError.
  s.t.ayd.answerSessionsWith({ url: "http://[one-time-code" });
  const lines = await s.run();
  const line = lineOf(
    lines,
    "AskYourDatabase",
    /^opening a session failed unexpectedly \(TypeError\)$/,
    "fail",
  );
  assert.match(line.fix!, /^run the doctor again; if it fails the same way, check AYD_BASE_URL/);
  onlyFailing(lines, line);
  assert.ok(!formatReport(lines).includes("one-time-code"), "what AYD sent is not quoted");
});

Deno.test("doctor - AskYourDatabase in chat mode: a working key and chatbot open a chat through newChat, and nothing else", async () => {
  await using s = await scene("chat");
  const lines = await s.run();
  const report = formatReport(lines);
  assert.ok(lines.every((line) => line.status === "pass"), report);
  lineOf(
    lines,
    "AskYourDatabase",
    /^the API key and chatbot ID open a chat \(AYD_MODE=chat; no question asked\)$/,
    "pass",
  );
  assert.match(report, /\n\nAll good: 11 passed\.$/);
  assert.equal(s.t.ayd.chats.length, 1, "one chat created");
  assert.deepEqual(s.t.ayd.sessions, [], "no widget session opened");
  assert.equal(s.t.ayd.asks.length, 0, "no question asked");
  assert.ok(!s.t.ayd.requests.some((r) => r.includes("/session")), s.t.ayd.requests.join());
});

Deno.test("doctor - AskYourDatabase in chat mode: a wrong API key is the 401 line", async () => {
  await using s = await scene("chat");
  const lines = await s.run({ ASKYOURDATABASE_API_KEY: "wrong-key" });
  const line = lineOf(lines, "AskYourDatabase", /^the API key is refused \(401\)$/, "fail");
  assert.match(line.fix!, /^copy the API key from the AskYourDatabase dashboard/);
  onlyFailing(lines, line);
  assert.ok(!formatReport(lines).includes("wrong-key"), "not even a wrong key is printed");
});

Deno.test("doctor - AskYourDatabase in chat mode: a key refused with 403 is the same line", async () => {
  await using s = await scene("chat");
  s.t.ayd.failNewChat(403);
  const lines = await s.run();
  const line = lineOf(lines, "AskYourDatabase", /^the API key is refused \(403\)$/, "fail");
  assert.match(line.fix!, /ASKYOURDATABASE_API_KEY$/);
  onlyFailing(lines, line);
});

Deno.test("doctor - AskYourDatabase in chat mode: a chatbot not found is the chatbot ID line", async () => {
  await using s = await scene("chat");
  const lines = await s.run({ ASKYOURDATABASE_CHAT_ID: "no-such-bot" });
  const line = lineOf(
    lines,
    "AskYourDatabase",
    /^the chatbot ID is refused \(404\): AskYourDatabase knows no chatbot "no-such-bot" for this API key$/,
    "fail",
  );
  assert.match(line.fix!, /^set ASKYOURDATABASE_CHAT_ID to the chatbot ID from the chatbot's URL/);
  onlyFailing(lines, line);
  assert.deepEqual(s.t.ayd.chats, []);
});

Deno.test("doctor - AskYourDatabase in chat mode: a server error when the chat is asked for", async () => {
  await using s = await scene("chat");
  s.t.ayd.failNewChat(502);
  const lines = await s.run();
  const line = lineOf(
    lines,
    "AskYourDatabase",
    /^AskYourDatabase answered 502 when asked for a chat$/,
    "fail",
  );
  assert.match(line.fix!, /^try again in a minute/);
  onlyFailing(lines, line);
});

Deno.test("doctor - AskYourDatabase in chat mode: a base URL that cannot be reached", async () => {
  await using s = await scene("chat");
  const lines = await s.run({ AYD_BASE_URL: `http://127.0.0.1:${freePort()}` });
  const line = lineOf(
    lines,
    "AskYourDatabase",
    /^http:\/\/127\.0\.0\.1:\d+ cannot be reached \(no connection\)$/,
    "fail",
  );
  assert.match(line.fix!, /HTTPS connections to it, and AYD_BASE_URL$/);
  onlyFailing(lines, line);
});

Deno.test("doctor - AskYourDatabase in chat mode: an answer without a chatid is a protocol line", async () => {
  await using s = await scene("chat");
  s.t.ayd.answerNewChatWith({ id: "chat_1" });
  const lines = await s.run();
  const line = lineOf(
    lines,
    "AskYourDatabase",
    /^a chat was asked for, but AskYourDatabase's answer was not one \(newChat answer has no chatid\)$/,
    "fail",
  );
  assert.match(line.fix!, /AskYourDatabase's newChat API may have changed$/);
  onlyFailing(lines, line);
});

Deno.test("doctor - KV: a path that cannot be written", async () => {
  await using s = await scene();
  const lines = await s.run({ DENO_KV_PATH: "/proc/nope/bridge.kv" });
  const line = lineOf(
    lines,
    "KV",
    /^cannot open the Deno KV database at \/proc\/nope\/bridge\.kv/,
    "fail",
  );
  assert.match(line.fix!, /^Set DENO_KV_PATH to a writable file path/);
  assert.deepEqual(lines.filter((l) => l.status === "fail"), [line]);
  lineOf(
    lines,
    "public URL",
    /whether it is this one could not be checked, since KV did not open/,
    "skip",
  );
});

Deno.test("doctor - KV: it opens, but a write fails", async () => {
  await using s = await scene();
  await using remote = await testKv("kv-connect");
  remote.server!.failNext(1, 400); // the doctor's first request on the data path: its write
  const lines = await s.run({ ...remote.env, JOB_BACKEND: "outbox" });
  const line = lineOf(
    lines,
    "KV",
    /^http:\/\/127\.0\.0\.1:\d+\/ opens, but a write failed: KV Connect failed to call '[^']+\/v2\/atomic_write' \(status=400 Bad Request\)/,
    "fail",
  );
  assert.equal(
    line.fix,
    "check DENO_KV_URL and DENO_KV_ACCESS_TOKEN, and that the server is up",
  );
  onlyFailing(lines, line);
  assert.ok(!formatReport(lines).includes(KV_CONNECT_TOKEN), "no token printed");
  lineOf(
    lines,
    "public URL",
    /whether it is this one could not be checked, since KV did not open/,
    "skip",
  );
});

Deno.test("doctor - public URL: nothing answers there", async () => {
  await using s = await scene();
  const url = `http://127.0.0.1:${freePort()}/whatsapp`;
  const lines = await s.run({ TWILIO_WEBHOOK_URL: url });
  const line = lineOf(
    lines,
    "public URL",
    /\/health cannot be reached from here \(connection refused\)$/,
    "fail",
  );
  assert.match(
    line.fix!,
    /^start the bridge \(deno task start\) and expose port 0 at http:\/\/127\.0\.0\.1/,
  );
  const posts = lines.filter((l) => l.area === "public URL" && l.text.startsWith("POST"));
  assert.equal(posts.length, 2);
  assert.ok(posts.every((l) => l.status === "fail" && /cannot be reached/.test(l.text)));
  // The sender's webhook is the bridge's URL, not this one.
  assert.equal(lines.filter((l) => l.status === "fail").length, 4, formatReport(lines));
});

Deno.test("doctor - public URL: a server that is not this bridge answers there", async () => {
  await using s = await scene();
  await using other = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () =>
      new Response("<!doctype html><title>It works!</title>", {
        headers: { "content-type": "text/html" },
      }),
  );
  const url = `http://127.0.0.1:${other.addr.port}/whatsapp`;
  s.t.twilio.whatsappSenders[0].callbackUrl = url;
  const lines = await s.run({ TWILIO_WEBHOOK_URL: url });
  const line = lineOf(
    lines,
    "public URL",
    /\/health answers 200 \(text\/html\), but not as this bridge$/,
    "fail",
  );
  assert.match(line.fix!, /sends requests to another server/);
  const webhook = lineOf(
    lines,
    "public URL",
    /^POST .*\/whatsapp answers 200, not the bridge's 403/,
    "fail",
  );
  assert.ok(webhook.fix);
});

Deno.test("doctor - public URL: another bridge, on another KV, answers there", async () => {
  await using s = await scene();
  await using stranger = await startTestBridge();
  const url = `${stranger.url}/whatsapp`;
  s.t.twilio.whatsappSenders[0].callbackUrl = url;
  const lines = await s.run({ TWILIO_WEBHOOK_URL: url });
  const line = lineOf(
    lines,
    "public URL",
    /answers as a bridge \(instance [0-9a-f]{8}…\) with no heartbeat in /,
    "fail",
  );
  assert.match(line.fix!, /another deployment of the bridge, or one on another KV/);
  onlyFailing(lines, line);
});

Deno.test("doctor - public URL: a webhook path the bridge does not serve", async () => {
  await using s = await scene();
  const url = `${s.t.url}/whatsap`;
  s.t.twilio.whatsappSenders[0].callbackUrl = url;
  const lines = await s.run({
    TWILIO_WEBHOOK_URL: url,
    TWILIO_STATUS_CALLBACK_URL: `${s.t.url}/twilio/status`,
  });
  const line = lineOf(
    lines,
    "public URL",
    /^POST .*\/whatsap answers 404, not the bridge's 403/,
    "fail",
  );
  assert.match(line.fix!, /does not name the bridge's route/);
  onlyFailing(lines, line);
});

Deno.test("doctor - public URL: a redirect in front of the bridge", async () => {
  await using s = await scene();
  await using redirect = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) => Response.redirect(`${s.t.url}${new URL(request.url).pathname}`, 301),
  );
  const url = `http://127.0.0.1:${redirect.addr.port}/whatsapp`;
  s.t.twilio.whatsappSenders[0].callbackUrl = url;
  const lines = await s.run({ TWILIO_WEBHOOK_URL: url });
  const line = lineOf(
    lines,
    "public URL",
    /\/health redirects \(301 to http:\/\/127\.0\.0\.1:\d+\/health\)$/,
    "fail",
  );
  assert.match(line.fix!, /must not be redirected/);
});

Deno.test("doctor - public URL: a bridge whose KV cannot be written says so", async () => {
  await using s = await scene();
  await using degraded = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () =>
      Response.json({
        status: "degraded",
        reason: "TypeError: database or disk is full",
        instance: s.t.bridge.instance,
      }, { status: 503 }),
  );
  const url = `http://127.0.0.1:${degraded.addr.port}/whatsapp`;
  const lines = await s.run({ TWILIO_WEBHOOK_URL: url });
  lineOf(
    lines,
    "public URL",
    /is a bridge \(instance .{8}…\), but it reports degraded: TypeError: database or disk is full$/,
    "fail",
  );
});

Deno.test("doctor - deno task doctor, run as an operator runs it: all good in chat mode, exit 0", async () => {
  await using s = await scene("chat");
  const run = await doctorTask(s.env);
  assert.equal(run.code, 0, run.out + run.err);
  assert.match(
    run.out,
    /^Bridge doctor: checking the configuration in the environment and \.env\n\n✓ configuration: every variable is valid\n/,
  );
  assert.match(run.out, /^✓ AskYourDatabase: the API key and chatbot ID open a chat/m);
  assert.match(run.out, /\n\nAll good: 11 passed\.\n$/);
  assert.equal(s.t.ayd.chats.length, 1);
});

Deno.test("doctor - deno task doctor, run as an operator runs it: two failures in session mode, exit 1", async () => {
  await using s = await scene("session");
  s.t.twilio.account.status = "suspended";
  const run = await doctorTask({ ...s.env, ASKYOURDATABASE_API_KEY: "wrong-key" });
  assert.equal(run.code, 1, run.out + run.err);
  assert.match(
    run.out,
    /^✗ Twilio: the account is suspended: Twilio sends nothing from it\n {4}fix: /m,
  );
  assert.match(run.out, /^✗ AskYourDatabase: the API key is refused \(401\)\n {4}fix: /m);
  assert.match(run.out, /\n\n2 failed, 9 passed\.\n$/);
  assert.ok(!(run.out + run.err).includes("wrong-key") && !run.out.includes(AUTH_TOKEN));
});

/** `deno task doctor` as a process, from a folder without .env, with exactly `env`. */
async function doctorTask(env: Record<string, string>) {
  const cwd = await Deno.makeTempDir();
  try {
    const run = await runTask("doctor", [], { cwd, env });
    if (SHOW) console.log(`$ deno task doctor\n${run.out}(exit code ${run.code})`);
    return run;
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
}

Deno.test("doctor - the health URL sits beside the webhook, without query or fragment", () => {
  assert.equal(
    healthUrlBeside("https://bridge.example.com/bot/whatsapp?x=1#rc=2"),
    "https://bridge.example.com/bot/health",
  );
  assert.equal(
    healthUrlBeside("https://bridge.example.com/whatsapp/"),
    "https://bridge.example.com/health",
  );
  assert.equal(healthUrlBeside("https://bridge.example.com"), "https://bridge.example.com/health");
});

Deno.test("doctor - the report: a mark per line, fixes under failures, a count at the end", () => {
  const report = formatReport([
    { status: "pass", area: "KV", text: "opens" },
    { status: "fail", area: "Twilio", text: "refused", fix: "copy the token" },
    { status: "skip", area: "Twilio", text: "the sandbox", fix: "join it" },
  ]);
  assert.equal(
    report,
    [
      "✓ KV: opens",
      "✗ Twilio: refused",
      "    fix: copy the token",
      "– Twilio: the sandbox",
      "    check: join it",
      "",
      "1 failed, 1 not checked (not failures), 1 passed.",
    ].join("\n"),
  );
  assert.equal(allPassed([{ status: "skip", area: "Twilio", text: "the sandbox" }]), true);
});
