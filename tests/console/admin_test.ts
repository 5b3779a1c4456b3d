/** The admin API and delivery status callbacks, over real HTTP. */
import assert from "node:assert/strict";
import { type Delivery, deliveryKey } from "../../src/webhook/delivery.ts";
import { sessionKey } from "../../src/ayd/sessions.ts";
import { logEvents, postForm, sign, startTestBridge, waitFor } from "../_helpers.ts";
import { ACCOUNT_SID } from "../_helpers.ts";

const USER = "whatsapp:+15551234567";
const TOKEN = "admin-token-0123456789abcdef0123456789";
const STATUS_URL = "https://bridge.example.com/twilio/status";

function admin(url: string, path: string, init: RequestInit & { token?: string } = {}) {
  const headers = new Headers(init.headers);
  if (init.token !== undefined) headers.set("authorization", `Bearer ${init.token}`);
  return fetch(`${url}/admin${path}`, { ...init, headers });
}

function statusEvent(sid: string, status: string, extra: Record<string, string> = {}) {
  return {
    MessageSid: sid,
    SmsSid: sid,
    MessageStatus: status,
    SmsStatus: status,
    AccountSid: ACCOUNT_SID,
    From: "whatsapp:+14155238886",
    To: USER,
    ApiVersion: "2010-04-01",
    ChannelPrefix: "whatsapp",
    ...extra,
  };
}

Deno.test("admin - absent without ADMIN_TOKEN", async () => {
  await using t = await startTestBridge();
  const response = await admin(t.url, "/stats", { token: "anything-at-all-0123456789" });
  assert.equal(response.status, 404);
  await response.body?.cancel();
});

Deno.test("admin - no token or a wrong one is refused; repeated failures lock the address out", async () => {
  await using t = await startTestBridge({ env: { ADMIN_TOKEN: TOKEN } });
  const none = await admin(t.url, "/stats");
  assert.equal(none.status, 401);
  assert.equal(none.headers.get("www-authenticate"), 'Bearer realm="admin"');
  await none.body?.cancel();
  for (let i = 0; i < 4; i++) {
    const wrong = await admin(t.url, "/stats", { token: TOKEN.slice(0, -1) + "x" });
    assert.equal(wrong.status, 401);
    await wrong.body?.cancel();
  }
  const locked = await admin(t.url, "/stats", { token: TOKEN });
  assert.equal(locked.status, 429, "even the right token waits out the lockout");
  assert.ok(Number(locked.headers.get("retry-after")) > 0);
  await locked.body?.cancel();
  assert.ok(!t.logs.join("\n").includes(TOKEN.slice(0, 12)), "no token in the logs");
});

Deno.test("admin - stats tell the truth about a conversation", async () => {
  await using t = await startTestBridge({
    env: { ADMIN_TOKEN: TOKEN, ALLOWED_NUMBERS: "+15551234567" },
  });
  await t.sendWhatsApp({ Body: "q1" });
  await t.sendWhatsApp({ Body: "q2", From: "whatsapp:+15559999999" });
  await t.twilio.waitForMessages(USER, 1);
  await waitFor(async () => {
    const stats = await (await admin(t.url, "/stats", { token: TOKEN })).json();
    return stats.lastHour.answered === 1 && stats.pendingJobs === 0;
  }, "the answer to count");
  const stats = await (await admin(t.url, "/stats", { token: TOKEN })).json();
  assert.deepEqual(stats.lastHour, {
    received: 2,
    answered: 1,
    failed: 0,
    denied: 1,
    rate_limited: 0,
  });
  assert.deepEqual(stats.lastDay, stats.lastHour);
  assert.equal(stats.answerTimeMs.samples, 1);
  assert.equal(typeof stats.answerTimeMs.p50, "number");
  assert.equal(stats.sessions, 1);
  assert.equal(stats.deadLetters, 0);
  assert.deepEqual(stats.deliveryFailuresByErrorCode, {});
});

Deno.test("admin - DELETE /admin/sessions/:phone forces a new AYD conversation", async () => {
  await using t = await startTestBridge({ env: { ADMIN_TOKEN: TOKEN } });
  await t.sendWhatsApp();
  await t.twilio.waitForMessages(USER, 1);
  const deleted = await admin(t.url, "/sessions/%2B15551234567", {
    method: "DELETE",
    token: TOKEN,
  });
  assert.equal(deleted.status, 204);
  assert.equal((await t.kv.get(sessionKey("+15551234567"))).value, null);
  const again = await admin(t.url, "/sessions/+15551234567", { method: "DELETE", token: TOKEN });
  assert.equal(again.status, 404);
  await again.body?.cancel();
  const bad = await admin(t.url, "/sessions/12", { method: "DELETE", token: TOKEN });
  assert.equal(bad.status, 400);
  await bad.body?.cancel();
});

Deno.test("admin - dead letters are listed and retried", async () => {
  await using t = await startTestBridge({ env: { ADMIN_TOKEN: TOKEN } });
  t.ayd.onAsk(() => ({ kind: "status", status: 500 }));
  const sid = "SM" + "3".repeat(32);
  await t.sendWhatsApp({ MessageSid: sid, Body: "later please" });
  await t.twilio.waitForMessages(USER, 1);
  await waitFor(
    async () => (await t.kv.list({ prefix: ["dead_letters"] }).next()).done === false,
    "dead letter",
  );
  const listed = await (await admin(t.url, "/dead-letters", { token: TOKEN })).json();
  assert.equal(listed.deadLetters.length, 1);
  assert.equal(listed.deadLetters[0].messageSid, sid);
  assert.equal(listed.deadLetters[0].from, "+*******4567");
  assert.match(listed.deadLetters[0].reason, /ask answered 500/);

  assert.equal(listed.deadLetters[0].history.notes[0].kind, "ayd");
  assert.match(listed.deadLetters[0].retryPlan, /^Asks AYD again the question received at /);

  t.ayd.onAsk(null);
  const retried = await admin(t.url, `/dead-letters/${sid}/retry`, {
    method: "POST",
    token: TOKEN,
  });
  assert.equal(retried.status, 202);
  assert.deepEqual(await retried.json(), { status: "queued" });
  const replies = await t.twilio.waitForMessages(USER, 2);
  assert.equal(replies[1].body, "Answer to: later please");
  const unknown = await admin(t.url, "/dead-letters/SMnope/retry", {
    method: "POST",
    token: TOKEN,
  });
  assert.equal(unknown.status, 404);
  await unknown.body?.cancel();
});

Deno.test("status - every outbound message asks for delivery statuses", async () => {
  await using t = await startTestBridge();
  await t.sendWhatsApp();
  const [reply] = await t.twilio.waitForMessages(USER, 1);
  assert.equal(reply.statusCallback, STATUS_URL);
});

Deno.test("status - newest state kept, stale and repeated events ignored, 63016 logged", async () => {
  await using t = await startTestBridge({ env: { ADMIN_TOKEN: TOKEN } });
  const post = async (params: Record<string, string>) => {
    const response = await postForm(t.url, params, {
      "x-twilio-signature": sign(params, STATUS_URL),
    }, "/twilio/status");
    await response.body?.cancel();
    return response.status;
  };
  const sid = "SM" + "5".repeat(32);
  assert.equal(await post(statusEvent(sid, "sent")), 204);
  assert.equal(await post(statusEvent(sid, "read")), 204);
  assert.equal(await post(statusEvent(sid, "delivered")), 204, "late, ignored");
  assert.equal(await post(statusEvent(sid, "read")), 204, "repeated, ignored");
  const stored = (await t.kv.get<Delivery>(deliveryKey(sid))).value!;
  assert.equal(stored.status, "read");

  const failed = "SM" + "6".repeat(32);
  await post(statusEvent(failed, "sent"));
  assert.equal(
    await post(
      statusEvent(failed, "failed", { ErrorCode: "63016", ErrorMessage: "outside window" }),
    ),
    204,
  );
  assert.deepEqual(
    { ...(await t.kv.get<Delivery>(deliveryKey(failed))).value!, updatedAt: 0 },
    { status: "failed", errorCode: 63016, updatedAt: 0 },
  );
  const [warning] = logEvents(t.logs, "delivery.failed");
  assert.equal(warning.error_code, 63016);
  assert.equal(warning.outside_window, true);
  assert.equal(warning.to, "+*******4567");
  const stats = await (await admin(t.url, "/stats", { token: TOKEN })).json();
  assert.deepEqual(stats.deliveryFailuresByErrorCode, { "63016": 1 });
  assert.equal(t.twilio.messages.length, 0, "a failed delivery is not retried");
});

Deno.test("status - unsigned, signed for the webhook URL, or from another account: refused", async () => {
  await using t = await startTestBridge();
  const params = statusEvent("SM" + "8".repeat(32), "delivered");
  const unsigned = await postForm(t.url, params, {}, "/twilio/status");
  assert.equal(unsigned.status, 403);
  await unsigned.body?.cancel();
  const wrongUrl = await postForm(
    t.url,
    params,
    { "x-twilio-signature": sign(params) },
    "/twilio/status",
  );
  assert.equal(wrongUrl.status, 403);
  await wrongUrl.body?.cancel();
  const foreign = { ...params, AccountSid: "AC" + "0".repeat(32) };
  const other = await postForm(t.url, foreign, {
    "x-twilio-signature": sign(foreign, STATUS_URL),
  }, "/twilio/status");
  assert.equal(other.status, 403);
  await other.body?.cancel();
  assert.deepEqual(await Array.fromAsync(t.kv.list({ prefix: ["deliveries"] })), []);
});

Deno.test("admin - a retry through the API that fails the same way sends nothing, and the listing tells the story", async () => {
  await using t = await startTestBridge({ env: { ADMIN_TOKEN: TOKEN } });
  t.ayd.onAsk(() => ({ kind: "status", status: 500 }));
  const sid = "SM" + "4".repeat(32);
  await t.sendWhatsApp({ MessageSid: sid, Body: "later please" });
  await t.twilio.waitForMessages(USER, 1);
  await waitFor(async () => (await t.kv.get(["dead_letters", sid])).value !== null, "dead letter");

  const retried = await admin(t.url, `/dead-letters/${sid}/retry`, {
    method: "POST",
    token: TOKEN,
  });
  assert.equal(retried.status, 202);
  await retried.body?.cancel();
  await waitFor(async () => {
    const letter = (await t.kv.get<{ retries?: number }>(["dead_letters", sid])).value;
    return letter?.retries === 1;
  }, "the dead letter back after its retry");
  assert.equal(t.twilio.attempts, 1, "no second apology");

  const listed = await (await admin(t.url, "/dead-letters", { token: TOKEN })).json();
  const [letter] = listed.deadLetters;
  assert.match(letter.reason, /^AydError: ask answered 500/);
  assert.equal(letter.attempts, 2);
  assert.match(letter.receivedAt, /^\d{4}-\d\d-\d\dT.*Z$/);
  assert.deepEqual(
    letter.history.notes.map((n: Record<string, unknown>) => [n.round, n.attempt, n.kind, n.quiet]),
    [[0, 1, "ayd", undefined], [1, 1, "ayd", true]],
  );
  assert.match(letter.history.notes[1].at, /Z$/);
  assert.equal(letter.history.omitted, 0);
  assert.match(letter.retryPlan, /The user already received the apology/);
  assert.doesNotMatch(JSON.stringify(listed), /15551234567|later please/);
});
