/** Hostile input through real HTTP: what happens, and what leaks (nothing). */
import assert from "node:assert/strict";
import { createApp, STORE_FAILED_REPLY_EVERY_MS } from "../../src/webhook/app.ts";
import { createJobs } from "../../src/jobs/jobs.ts";
import { createLogger } from "../../src/log.ts";
import {
  ACCOUNT_SID,
  AUTH_TOKEN,
  postForm,
  sign,
  startTestBridge,
  WEBHOOK_URL,
  whatsAppParams,
} from "../_helpers.ts";

const USER = "whatsapp:+15551234567";

Deno.test("attack - control characters and 4-byte emoji reach AYD intact", async () => {
  await using t = await startTestBridge();
  const body = "sales 🚀𝕏 in 日本\u0000\u0007\u001b[31m?\r\nnext line";
  await t.sendWhatsApp({ Body: body });
  await t.twilio.waitForMessages(USER, 1);
  assert.equal(t.ayd.asks[0].question, body);
  assert.ok(!t.logs.join("\n").includes("日本"), "message text is not logged");
});

Deno.test("attack - header injection in fields goes nowhere", async () => {
  await using t = await startTestBridge();
  const response = await t.sendWhatsApp({
    Body: "x\r\nSet-Cookie: stolen=1\r\n\r\n<Response><Message>pwned</Message></Response>",
    ProfileName: "evil\r\nX-Injected: 1",
  });
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("set-cookie"), null);
  assert.equal(response.headers.get("x-injected"), null);
  assert.equal(await response.text(), '<?xml version="1.0" encoding="UTF-8"?><Response/>');
  const crlfSid = whatsAppParams({ MessageSid: "SM1\r\nX-Injected: 1" });
  const refused = await postForm(t.url, crlfSid, { "x-twilio-signature": sign(crlfSid) });
  assert.equal(refused.status, 400);
  assert.equal(refused.headers.get("x-injected"), null);
  await refused.body?.cancel();
});

Deno.test("attack - a replayed signed request is acknowledged and does nothing", async () => {
  await using t = await startTestBridge();
  const params = whatsAppParams({ Body: "once only" });
  const headers = { "x-twilio-signature": sign(params), "i-twilio-idempotency-token": "abc" };
  for (let i = 0; i < 3; i++) {
    const response = await postForm(t.url, params, headers);
    assert.equal(response.status, 200);
    await response.body?.cancel();
  }
  await t.twilio.waitForMessages(USER, 1);
  await (await t.sendWhatsApp({ Body: "after" })).body?.cancel();
  await t.twilio.waitForMessages(USER, 2);
  assert.deepEqual(t.ayd.asks.map((a) => a.question), ["once only", "after"]);
});

Deno.test("attack - a 1 MB body is refused before it is read", async () => {
  await using t = await startTestBridge();
  const response = await fetch(`${t.url}/whatsapp`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: "Body=" + "a".repeat(1024 * 1024),
  });
  assert.equal(response.status, 413);
  await response.body?.cancel();
});

Deno.test("hardening - security headers and a request id on every answer", async () => {
  await using t = await startTestBridge();
  for (const path of ["/health", "/whatsapp", "/nowhere"]) {
    const response = await fetch(`${t.url}${path}`);
    await response.body?.cancel();
    assert.equal(response.headers.get("x-content-type-options"), "nosniff", path);
    assert.equal(response.headers.get("x-frame-options"), "SAMEORIGIN", path);
    assert.match(response.headers.get("strict-transport-security") ?? "", /max-age=/, path);
    assert.match(response.headers.get("x-request-id") ?? "", /^[\w-]{8,}$/, path);
  }
  const response = await t.sendWhatsApp();
  const id = response.headers.get("x-request-id");
  await response.body?.cancel();
  const lines = t.logs.map((l) => JSON.parse(l)).filter((l) => l.event?.startsWith("webhook."));
  assert.ok(lines.length > 0 && lines.every((l) => l.request_id === id));
});

Deno.test("hardening - a webhook that cannot be stored answers 200 and an apology, no detail", async () => {
  const kv = await Deno.openKv(":memory:");
  const logs: string[] = [];
  const app = createApp({
    kv,
    jobs: createJobs(kv, "kv-queue"),
    log: createLogger({ level: "info", write: (line) => logs.push(line) }),
    twilioAccountSid: ACCOUNT_SID,
    twilioAuthToken: AUTH_TOKEN,
    twilioWebhookUrl: WEBHOOK_URL,
    statusCallbackUrl: "https://bridge.example.com/twilio/status",
    policy: { allowedNumbers: undefined, perMinute: 10, perDay: 200 },
  });
  kv.close(); // every KV call now throws
  await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, app.fetch);
  const params = whatsAppParams();
  const response = await postForm(`http://127.0.0.1:${server.addr.port}`, params, {
    "x-twilio-signature": sign(params),
  });
  // Twilio does not retry a 5xx: the person would never hear back.
  assert.equal(response.status, 200);
  assert.equal(
    await response.text(),
    '<?xml version="1.0" encoding="UTF-8"?><Response><Message>' +
      "Sorry, I can't take questions right now. Please try again in a few minutes." +
      "</Message></Response>",
  );
  assert.ok(logs.some((l) => l.includes('"event":"webhook.store_failed"')));
  const status = await postForm(
    `http://127.0.0.1:${server.addr.port}`,
    {
      ...statusParams,
    },
    { "x-twilio-signature": sign(statusParams, STATUS_URL) },
    "/twilio/status",
  );
  assert.equal(status.status, 500, "other routes still answer 500");
  assert.equal(await status.text(), "Internal Server Error");
  assert.ok(logs.some((l) => l.includes('"event":"request.failed"')));
  assert.ok(!logs.join("\n").includes("5551234567"));
});

Deno.test("hardening - a number told it cannot be stored is told again once 10 minutes have passed, not before", async () => {
  const kv = await Deno.openKv(":memory:");
  let clock = Date.UTC(2026, 10, 25, 7, 0, 0);
  const app = createApp({
    kv,
    jobs: createJobs(kv, "outbox"),
    log: createLogger({ level: "error", write: () => {} }),
    twilioAccountSid: ACCOUNT_SID,
    twilioAuthToken: AUTH_TOKEN,
    twilioWebhookUrl: WEBHOOK_URL,
    statusCallbackUrl: STATUS_URL,
    policy: { allowedNumbers: undefined, perMinute: 10, perDay: 200 },
    now: () => clock,
  });
  kv.close(); // every KV call now throws: no message can be stored
  await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, app.fetch);
  const apologized = async (from: string) => {
    const params = whatsAppParams({ From: from });
    const response = await postForm(`http://127.0.0.1:${server.addr.port}`, params, {
      "x-twilio-signature": sign(params),
    });
    assert.equal(response.status, 200);
    return /<Message>/.test(await response.text());
  };
  assert.equal(await apologized(USER), true, "the first message hears why");
  clock += STORE_FAILED_REPLY_EVERY_MS - 1;
  assert.equal(await apologized(USER), false, "not again within 10 minutes");
  assert.equal(await apologized("whatsapp:+15557654321"), true, "another number is told");
  clock += 1;
  assert.equal(await apologized(USER), true, "told again once 10 minutes have passed");
  assert.equal(await apologized(USER), false, "and then not again for 10 more");
});

const STATUS_URL = "https://bridge.example.com/twilio/status";
const statusParams = {
  MessageSid: "SM" + "7".repeat(32),
  MessageStatus: "delivered",
  AccountSid: ACCOUNT_SID,
  To: "whatsapp:+15551234567",
};
