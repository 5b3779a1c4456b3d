/**
 * The whole pipeline over real HTTP: signed webhook → KV queue → fake AYD's
 * SSE stream → fake Twilio's Messages API.
 */
import assert from "node:assert/strict";
import { REPLIES } from "../../src/conversation/answer.ts";
import { sessionKey } from "../../src/ayd/sessions.ts";
import { EMPTY_TWIML } from "../../src/webhook/twilio_request.ts";
import {
  conversationsOpened,
  FROM_NUMBER,
  logEvents,
  startTestBridge,
  testEveryBackend,
  testEverySetting,
  waitFor,
  words,
} from "../_helpers.ts";

const USER = "whatsapp:+15551234567";

testEveryBackend(
  "pipeline - a new user is answered and the session is reused by the next message",
  async (backend) => {
    await using t = await startTestBridge({ backend });
    const response = await t.sendWhatsApp({ Body: "How many orders shipped late?" });
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type")!, /^text\/xml/);
    assert.equal(await response.text(), EMPTY_TWIML);

    const [first] = await t.twilio.waitForMessages(USER, 1);
    assert.equal(first.body, "Answer to: How many orders shipped late?");
    assert.equal(first.from, `whatsapp:${FROM_NUMBER}`);
    assert.equal(t.ayd.sessions.length, 1);
    assert.equal(t.ayd.sessions[0].name, "WhatsApp User +15551234567");
    assert.equal(t.ayd.sessions[0].email, "wa15551234567@example.com");

    await t.sendWhatsApp({ Body: "And the week before?" });
    const replies = await t.twilio.waitForMessages(USER, 2);
    assert.equal(replies[1].body, "Answer to: And the week before?");
    assert.equal(t.ayd.sessions.length, 1, "the second message reuses the session");
    assert.deepEqual(t.ayd.asks.map((a) => a.token), [
      t.ayd.sessions[0].token,
      t.ayd.sessions[0].token,
    ]);
    assert.deepEqual(t.ayd.asks[0].fileUrls, []);
    assert.equal(t.ayd.asks[0].debug, false);
    assert.equal(t.ayd.asks[0].query, "debug=false");
  },
);

testEveryBackend(
  "pipeline - an expired token is renewed once and the question answered",
  async (backend) => {
    await using t = await startTestBridge({ backend });
    await t.sendWhatsApp({ Body: "first" });
    await t.twilio.waitForMessages(USER, 1);
    t.ayd.expireToken(t.ayd.sessions[0].token);

    await t.sendWhatsApp({ Body: "second" });
    const replies = await t.twilio.waitForMessages(USER, 2);
    assert.equal(replies[1].body, "Answer to: second");
    assert.equal(t.ayd.sessions.length, 2);
    assert.deepEqual(t.ayd.asks.map((a) => [a.question, a.token]), [
      ["first", t.ayd.sessions[0].token],
      ["second", t.ayd.sessions[0].token],
      ["second", t.ayd.sessions[1].token],
    ]);
    const stored = await t.kv.get<{ token: string }>(sessionKey("+15551234567"));
    assert.equal(stored.value?.token, t.ayd.sessions[1].token);
  },
);

testEveryBackend("pipeline - a stale session still readable in KV is replaced", async (backend) => {
  await using t = await startTestBridge({ backend });
  const now = Date.now();
  await t.kv.set(sessionKey("+15551234567"), {
    token: "stale-token",
    expiresAt: now - 1_000,
    createdAt: now - 8 * 86_400_000,
  });
  await t.sendWhatsApp();
  await t.twilio.waitForMessages(USER, 1);
  assert.equal(t.ayd.sessions.length, 1);
  assert.notEqual(t.ayd.asks[0].token, "stale-token");
});

testEverySetting(
  "pipeline - simultaneous first messages from one number end with one session (or chat)",
  async (backend, mode) => {
    await using t = await startTestBridge({ backend, mode });
    const responses = await Promise.all(
      ["one", "two", "three"].map((Body) => t.sendWhatsApp({ Body })),
    );
    assert.deepEqual(responses.map((r) => r.status), [200, 200, 200]);
    await Promise.all(responses.map((r) => r.body?.cancel()));
    await t.twilio.waitForMessages(USER, 3);
    assert.equal(conversationsOpened(t), 1);
    if (mode === "chat") {
      assert.deepEqual(new Set(t.ayd.asks.map((a) => a.chatid)), new Set([t.ayd.chats[0]]));
    } else {
      assert.deepEqual(new Set(t.ayd.asks.map((a) => a.token)), new Set([t.ayd.sessions[0].token]));
    }
  },
);

testEveryBackend("pipeline - the cookie's Max-Age sets the session's expiry", async (backend) => {
  await using t = await startTestBridge({ backend, ayd: { cookieMaxAgeSeconds: 3600 } });
  const before = Date.now();
  await t.sendWhatsApp();
  await t.twilio.waitForMessages(USER, 1);
  const stored = await t.kv.get<{ expiresAt: number }>(sessionKey("+15551234567"));
  const ttl = stored.value!.expiresAt - before;
  assert.ok(ttl >= 3_600_000 && ttl < 3_660_000, `expiry ${ttl} ms from now`);
});

testEveryBackend(
  "pipeline - a callback that redirects twice before setting the cookie still opens a session",
  async (backend) => {
    await using t = await startTestBridge({ backend, ayd: { callbackHops: 2 } });
    await t.sendWhatsApp({ Body: "hops" });
    const [reply] = await t.twilio.waitForMessages(USER, 1);
    assert.equal(reply.body, "Answer to: hops");
  },
);

testEverySetting(
  "webhook - a duplicated MessageSid is acknowledged and answered once",
  async (backend, mode) => {
    await using t = await startTestBridge({ backend, mode });
    const first = await t.sendWhatsApp({ MessageSid: "SM" + "d".repeat(32), Body: "once" });
    const retry = await t.sendWhatsApp({ MessageSid: "SM" + "d".repeat(32), Body: "once" });
    assert.equal(first.status, 200);
    assert.equal(retry.status, 200);
    assert.equal(await retry.text(), EMPTY_TWIML);
    await first.body?.cancel();
    // A later message is answered after the duplicate would have been.
    await t.sendWhatsApp({ Body: "later" });
    const replies = await t.twilio.waitForMessages(USER, 2);
    assert.deepEqual(replies.map((r) => r.body).sort(), ["Answer to: later", "Answer to: once"]);
    assert.equal(t.ayd.asks.length, 2);
    assert.equal(logEvents(t.logs, "webhook.duplicate").length, 1);
  },
);

testEverySetting(
  "reply - a 5,000-character answer arrives in parts within MAX_SMS_CHARS, nothing lost",
  async (backend, mode) => {
    await using t = await startTestBridge({ backend, mode });
    const paragraph = (i: number) =>
      `Warehouse ${i}: ` +
      "Orders 1001–1050 shipped two days late because of the storm. ".repeat(6).trim();
    const answer = Array.from({ length: 14 }, (_, i) => paragraph(i)).join("\n\n");
    assert.ok(answer.length >= 5000);
    t.ayd.onAsk(() => ({ kind: "answer", text: answer }));
    await t.sendWhatsApp();
    await waitFor(() => logEvents(t.logs, "job.finished").length === 1, "the job to finish");
    const bodies = t.twilio.messages.map((m) => m.body);
    assert.ok(bodies.length >= 4);
    for (const body of bodies) assert.ok(body.length <= 1600, `part of ${body.length}`);
    assert.deepEqual(words(bodies.join(" ")), words(answer));
  },
);

testEverySetting(
  "reply - an answer ended by data: [DONE] on a connection kept open arrives at once",
  async (backend, mode) => {
    await using t = await startTestBridge({ backend, mode, env: { AYD_TIMEOUT_MS: "5000" } });
    // A proxy in front of AYD keeps the connection alive after the last event.
    t.ayd.onAsk(() => ({ kind: "answer", text: "Three late orders.", done: true, holdOpen: true }));
    await t.sendWhatsApp();
    const [reply] = await t.twilio.waitForMessages(USER, 1);
    assert.equal(reply.body, "Three late orders.", "not the timeout apology");
  },
);

testEverySetting("reply - a smaller MAX_SMS_CHARS is honoured", async (backend, mode) => {
  await using t = await startTestBridge({ backend, mode, env: { MAX_SMS_CHARS: "100" } });
  const answer = "Late orders by region: " + "north 12, south 7, east 3, west 9; ".repeat(12);
  t.ayd.onAsk(() => ({ kind: "answer", text: answer.trim() }));
  await t.sendWhatsApp();
  await waitFor(
    () => words(t.twilio.messages.map((m) => m.body).join(" ")).length === words(answer).length,
    "every part",
  );
  assert.deepEqual(words(t.twilio.messages.map((m) => m.body).join(" ")), words(answer));
  for (const { body } of t.twilio.messages) assert.ok(body.length <= 100);
});

testEverySetting("reply - an empty answer gets the old app's wording", async (backend, mode) => {
  await using t = await startTestBridge({ backend, mode });
  t.ayd.onAsk(() => ({ kind: "answer", text: "  \n " }));
  await t.sendWhatsApp();
  const [reply] = await t.twilio.waitForMessages(USER, 1);
  assert.equal(reply.body, REPLIES.empty);
});

testEverySetting("reply - a message with no text is not sent to AYD", async (backend, mode) => {
  await using t = await startTestBridge({ backend, mode });
  await t.sendWhatsApp({
    Body: "",
    NumMedia: "1",
    MediaUrl0: "https://api.twilio.com/media/ME1",
    MediaContentType0: "image/jpeg",
    MessageType: "image",
  });
  const [reply] = await t.twilio.waitForMessages(USER, 1);
  assert.equal(reply.body, REPLIES.notText);
  assert.equal(t.ayd.asks.length, 0);
});

testEveryBackend(
  "logs - a whole conversation leaves no phone number, message text or secret in the logs",
  async (backend) => {
    await using t = await startTestBridge({ backend });
    const question = "What is the revenue of customer Zyxwvut Corp?";
    const answer = "Zyxwvut Corp paid 98,765.43 EUR in total.";
    t.ayd.onAsk(() => ({ kind: "answer", text: answer }));
    await t.sendWhatsApp({ Body: question, ProfileName: "Ada Lovelace" });
    await t.twilio.waitForMessages(USER, 1);
    t.ayd.expireToken(t.ayd.sessions[0].token);
    t.twilio.failNext({ status: 429, code: 20429 });
    await t.sendWhatsApp({ Body: question });
    await t.twilio.waitForMessages(USER, 2);

    const logs = t.logs.join("\n");
    const secrets = [
      "15551234567",
      "Zyxwvut",
      "Ada Lovelace",
      "98,765.43",
      t.ayd.sessions[0].token,
      t.ayd.sessions[1].token,
      t.config.twilioAuthToken,
      t.config.aydApiKey,
      "code=",
    ];
    for (const secret of secrets) assert.ok(!logs.includes(secret), `logs contain ${secret}`);
    const events = new Set(t.logs.map((line) => JSON.parse(line).event));
    for (
      const event of [
        "webhook.received",
        "webhook.enqueued",
        "job.started",
        "ask.started",
        "session.renewing",
        "ask.finished",
        "reply.sent",
        "job.finished",
      ]
    ) assert.ok(events.has(event), `no ${event} event`);
    assert.ok(logs.includes('"from":"+*******4567"'), "phone numbers appear masked");
    const finished = logEvents(t.logs, "ask.finished")[0];
    assert.equal(typeof finished.duration_ms, "number");
  },
);
