/**
 * Tests of the fakes themselves, over real HTTP with plain `fetch`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { EventSourceParserStream } from "eventsource-parser/stream";
import { type FakeAyd, startFakeAyd } from "./fake_ayd.ts";
import { type FakeTwilio, type FakeTwilioOptions, startFakeTwilio } from "./fake_twilio.ts";
import { startFakeStt } from "./fake_stt.ts";

const API_KEY = "ayd_key_test";
const CHAT_ID = "bot-123";
const SID = "AC" + "0".repeat(32);
const AUTH_TOKEN = "secret-token";
const TO = "whatsapp:+15551234567";
const FROM = "whatsapp:+14155238886";

// ---------------------------------------------------------------- fake AYD helpers

function createSession(ayd: FakeAyd, bearer = API_KEY, chatbotid = CHAT_ID): Promise<Response> {
  return fetch(`${ayd.url}/api/chatbot/v2/session`, {
    method: "POST",
    headers: { authorization: `Bearer ${bearer}`, "content-type": "application/json" },
    body: JSON.stringify({
      chatbotid,
      name: "WhatsApp User +15551234567",
      email: "wa15551234567@example.com",
    }),
  });
}

async function sessionUrl(ayd: FakeAyd): Promise<string> {
  const res = await createSession(ayd);
  assert.equal(res.status, 200);
  const { url } = await res.json();
  return url;
}

function cookieValue(res: Response, name: string): string | undefined {
  for (const c of res.headers.getSetCookie()) {
    const [pair] = c.split(";");
    const eq = pair.indexOf("=");
    if (pair.slice(0, eq).trim() === name) return pair.slice(eq + 1);
  }
  return undefined;
}

/** Full login (session + one-hop callback), returning the access token. */
async function login(ayd: FakeAyd): Promise<string> {
  const res = await fetch(await sessionUrl(ayd), { redirect: "manual" });
  await res.body?.cancel();
  const token = cookieValue(res, "accessToken");
  assert.ok(token);
  return token;
}

function ask(ayd: FakeAyd, token: string, question: string, signal?: AbortSignal) {
  return fetch(`${ayd.url}/api/ask?debug=false`, {
    method: "POST",
    headers: { "x-ayd-access-token": token, "content-type": "application/json" },
    body: JSON.stringify({ question, fileUrls: [], botid: CHAT_ID, debug: false }),
    signal,
  });
}

/** Parses an SSE body with eventsource-parser, returning each event's `data`. */
async function sseData(res: Response): Promise<string[]> {
  assert.ok(res.body);
  const events = res.body.pipeThrough(new TextDecoderStream()).pipeThrough(
    new EventSourceParserStream(),
  );
  return (await Array.fromAsync(events)).map((e) => e.data);
}

function textOf(data: string[]): string {
  return data.filter((d) => d.startsWith("{")).map((d) => JSON.parse(d)).filter((e) => e.isText)
    .map((e) => e.content).join("");
}

async function withAyd(
  opts: Partial<Parameters<typeof startFakeAyd>[0]>,
  fn: (ayd: FakeAyd) => Promise<void>,
): Promise<void> {
  const ayd = await startFakeAyd({ apiKey: API_KEY, chatId: CHAT_ID, ...opts });
  try {
    await fn(ayd);
  } finally {
    await ayd.close();
  }
}

// ---------------------------------------------------------------- fake AYD tests

Deno.test("fake AYD - session callback sets accessToken cookie on a redirect hop", () =>
  withAyd({}, async (ayd) => {
    const url = await sessionUrl(ayd);
    assert.match(url, new RegExp(`^${ayd.url}/api/chatbot/auth/callback\\?code=\\w+$`));
    const res = await fetch(url, { redirect: "manual" });
    await res.body?.cancel();
    assert.equal(res.status, 302);
    assert.equal(res.headers.get("location"), "/chatbot");
    const cookies = res.headers.getSetCookie();
    assert.equal(cookies.length, 2);
    assert.ok(cookies.includes("theme=light; Path=/"));
    const token = cookieValue(res, "accessToken");
    assert.match(token ?? "", /^tok_[0-9a-f]{24}$/);
    assert.ok(
      cookies.includes(
        `accessToken=${token}; Path=/; Max-Age=604800; HttpOnly; Secure; SameSite=Lax`,
      ),
    );
    assert.deepEqual(ayd.sessions, [{
      name: "WhatsApp User +15551234567",
      email: "wa15551234567@example.com",
      chatbotid: CHAT_ID,
      token,
    }]);
    const page = await fetch(`${ayd.url}/chatbot`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<!doctype html>/);
  }));

Deno.test("fake AYD - callback code is one-time", () =>
  withAyd({}, async (ayd) => {
    const url = await sessionUrl(ayd);
    const first = await fetch(url, { redirect: "manual" });
    await first.body?.cancel();
    assert.equal(first.status, 302);
    const second = await fetch(url, { redirect: "manual" });
    assert.equal(second.status, 400);
    assert.ok((await second.json()).error);
    assert.equal(ayd.sessions.length, 1);
  }));

Deno.test("fake AYD - two-hop callback sets the cookie on the second hop", () =>
  withAyd({ callbackHops: 2, cookieExpires: new Date(Date.UTC(2030, 0, 2)) }, async (ayd) => {
    const hop1 = await fetch(await sessionUrl(ayd), { redirect: "manual" });
    await hop1.body?.cancel();
    assert.equal(hop1.status, 307);
    assert.deepEqual(hop1.headers.getSetCookie(), []);
    const location = hop1.headers.get("location") ?? "";
    assert.match(location, /^\/api\/chatbot\/auth\/finish\?code2=\w+$/);
    const hop2 = await fetch(new URL(location, ayd.url), { redirect: "manual" });
    await hop2.body?.cancel();
    assert.equal(hop2.status, 302);
    assert.equal(hop2.headers.get("location"), "/chatbot");
    const token = cookieValue(hop2, "accessToken");
    assert.ok(
      hop2.headers.getSetCookie().includes(
        `accessToken=${token}; Path=/; Expires=Wed, 02 Jan 2030 00:00:00 GMT; HttpOnly; Secure; SameSite=Lax`,
      ),
    );
    // Following redirects automatically also ends on the chatbot page.
    const followed = await fetch(await sessionUrl(ayd));
    assert.equal(followed.status, 200);
    assert.equal(new URL(followed.url).pathname, "/chatbot");
    await followed.body?.cancel();
    assert.equal(ayd.sessions.length, 2);
  }));

Deno.test("fake AYD - noCookie callback sets no accessToken", () =>
  withAyd({ noCookie: true }, async (ayd) => {
    const res = await fetch(await sessionUrl(ayd), { redirect: "manual" });
    await res.body?.cancel();
    assert.equal(res.status, 302);
    assert.equal(cookieValue(res, "accessToken"), undefined);
    assert.equal(cookieValue(res, "theme"), "light");
    assert.deepEqual(ayd.sessions, []);
  }));

Deno.test("fake AYD - session endpoint rejects bad bearer, chatbotid, JSON; failSessions", () =>
  withAyd({}, async (ayd) => {
    const bad = await createSession(ayd, "wrong");
    assert.equal(bad.status, 401);
    assert.deepEqual(await bad.json(), { error: "Unauthorized" });
    const none = await fetch(`${ayd.url}/api/chatbot/v2/session`, { method: "POST", body: "{}" });
    assert.equal(none.status, 401);
    await none.body?.cancel();
    const wrongBot = await createSession(ayd, API_KEY, "other-bot");
    assert.equal(wrongBot.status, 400);
    assert.ok((await wrongBot.json()).error);
    const badJson = await fetch(`${ayd.url}/api/chatbot/v2/session`, {
      method: "POST",
      headers: { authorization: `Bearer ${API_KEY}` },
      body: "{not json",
    });
    assert.equal(badJson.status, 400);
    await badJson.body?.cancel();
    ayd.failSessions(503);
    const failed = await createSession(ayd);
    assert.equal(failed.status, 503);
    await failed.body?.cancel();
    ayd.failSessions(null);
    const ok = await createSession(ayd);
    assert.equal(ok.status, 200);
    await ok.body?.cancel();
  }));

Deno.test("fake AYD - ask streams SSE that reassembles multi-byte text split mid-line", () =>
  withAyd({}, async (ayd) => {
    const token = await login(ayd);
    const text = "Ünïcödé 🚀 done. " + "Ωmega 😀 ".repeat(12) + "end";
    ayd.onAsk(() => ({
      kind: "answer",
      text,
      images: ["https://example.com/chart.png"],
      chunkBytes: 5,
      chunkDelayMs: 1,
      done: true,
    }));
    const res = await ask(ayd, token, "how many users?");
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "text/event-stream");
    const data = await sseData(res);
    assert.equal(textOf(data), text);
    assert.ok(data.filter((d) => d.includes('"isText"')).length > 2);
    assert.deepEqual(JSON.parse(data[0]), {
      isExecutionStatus: true,
      status: "running",
      functionName: "query_database",
    });
    assert.deepEqual(JSON.parse(data[1]), { isSQL: true, sql: "SELECT 1", result: [] });
    assert.deepEqual(data.slice(-4), [
      JSON.stringify({ isImage: true, url: "https://example.com/chart.png" }),
      JSON.stringify({ isSomethingNew: true }),
      "hello",
      "[DONE]",
    ]);
    assert.deepEqual(ayd.asks, [{
      token,
      question: "how many users?",
      botid: CHAT_ID,
      fileUrls: [],
      debug: false,
      query: "debug=false",
      chatid: undefined,
      properties: undefined,
      apiKey: false,
    }]);
  }));

Deno.test("fake AYD - default answer raw bytes include keep-alive comment and no [DONE]", () =>
  withAyd({ noise: false }, async (ayd) => {
    const token = await login(ayd);
    const res = await ask(ayd, token, "hi");
    const raw = await res.text();
    assert.ok(raw.includes("\n: keep-alive\n\n"));
    assert.ok(!raw.includes("[DONE]"));
    assert.ok(!raw.includes("hello"));
    assert.ok(
      raw.endsWith(`data: ${JSON.stringify({ isText: true, content: "Answer to: hi" })}\n\n`),
    );
  }));

Deno.test("fake AYD - ask answers 401 for unknown and expired tokens", () =>
  withAyd({}, async (ayd) => {
    const unknown = await ask(ayd, "tok_nope", "q1");
    assert.equal(unknown.status, 401);
    assert.deepEqual(await unknown.json(), { error: "Unauthorized" });
    const token = await login(ayd);
    const ok = await ask(ayd, token, "q2");
    assert.equal(ok.status, 200);
    await ok.body?.cancel();
    ayd.expireToken(token);
    const expired = await ask(ayd, token, "q3");
    assert.equal(expired.status, 401);
    await expired.body?.cancel();
    assert.deepEqual(ayd.asks.map((a) => a.question), ["q1", "q2", "q3"]);
  }));

Deno.test("fake AYD - status behaviour answers the scripted status", () =>
  withAyd({}, async (ayd) => {
    const token = await login(ayd);
    ayd.onAsk(({ question }) =>
      question === "busy"
        ? { kind: "status", status: 429, body: "slow down", headers: { "retry-after": "3" } }
        : { kind: "status", status: 500 }
    );
    const busy = await ask(ayd, token, "busy");
    assert.equal(busy.status, 429);
    assert.equal(busy.headers.get("retry-after"), "3");
    assert.equal(await busy.text(), "slow down");
    const broken = await ask(ayd, token, "x");
    assert.equal(broken.status, 500);
    assert.ok((await broken.json()).error);
    ayd.onAsk(null);
    const back = await ask(ayd, token, "again");
    assert.equal(textOf(await sseData(back)), "Answer to: again");
  }));

Deno.test("fake AYD - hang is aborted by the client's AbortSignal", () =>
  withAyd({}, async (ayd) => {
    const token = await login(ayd);
    ayd.onAsk(() => ({ kind: "hang" }));
    const ctrl = new AbortController();
    const res = await ask(ayd, token, "q", ctrl.signal);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "text/event-stream");
    const reading = res.text();
    ctrl.abort();
    await assert.rejects(reading, (e: unknown) => (e as Error).name === "AbortError");
  }));

Deno.test("fake AYD - close() ends a hanging stream", async () => {
  const ayd = await startFakeAyd({ apiKey: API_KEY, chatId: CHAT_ID });
  const token = await login(ayd);
  ayd.onAsk(() => ({ kind: "hang" }));
  const res = await ask(ayd, token, "q");
  const reading = res.text();
  await ayd.close();
  await assert.rejects(reading);
});

Deno.test("fake AYD - cut errors the stream after part of the text", () =>
  withAyd({}, async (ayd) => {
    const token = await login(ayd);
    const text = "a".repeat(25) + "b".repeat(25) + "c".repeat(25) + "d".repeat(25);
    ayd.onAsk(() => ({ kind: "cut", text }));
    const res = await ask(ayd, token, "q");
    assert.equal(res.status, 200);
    assert.ok(res.body);
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let raw = "";
    await assert.rejects(async () => {
      while (true) {
        const { done, value } = await reader.read();
        if (done) break;
        raw += decoder.decode(value, { stream: true });
      }
    });
    assert.ok(raw.includes("a".repeat(25)) && raw.includes("b".repeat(25)));
    assert.ok(!raw.includes("ccc"));
  }));

// ---------------------------------------------------------------- fake Twilio helpers

function basic(sid = SID, token = AUTH_TOKEN): string {
  return `Basic ${btoa(`${sid}:${token}`)}`;
}

function send(
  twilio: FakeTwilio,
  fields: Array<[string, string]>,
  auth = basic(),
  sid = SID,
): Promise<Response> {
  return fetch(`${twilio.url}/2010-04-01/Accounts/${sid}/Messages.json`, {
    method: "POST",
    headers: { authorization: auth, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(fields),
  });
}

async function withTwilio(
  fn: (twilio: FakeTwilio) => Promise<void>,
  options: Partial<FakeTwilioOptions> = {},
): Promise<void> {
  const twilio = await startFakeTwilio({ accountSid: SID, authToken: AUTH_TOKEN, ...options });
  try {
    await fn(twilio);
  } finally {
    await twilio.close();
  }
}

// ---------------------------------------------------------------- fake AYD: the documented API

function newChat(ayd: FakeAyd, body: unknown = { botid: CHAT_ID }, bearer = API_KEY) {
  return fetch(`${ayd.url}/api/chatbot/newChat`, {
    method: "POST",
    headers: { authorization: `Bearer ${bearer}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

function askInChat(ayd: FakeAyd, chatid: string, question: string, bearer = API_KEY) {
  return fetch(`${ayd.url}/api/ask`, {
    method: "POST",
    headers: { authorization: `Bearer ${bearer}`, "content-type": "application/json" },
    body: JSON.stringify({ question, botid: CHAT_ID, chatid, properties: { region: "north" } }),
  });
}

function messages(ayd: FakeAyd, chatid: string, timestamp?: string, bearer = API_KEY) {
  const query = new URLSearchParams({ botid: CHAT_ID, chatid });
  if (timestamp) query.set("timestamp", timestamp);
  return fetch(`${ayd.url}/api/chatbot/messages?${query}`, {
    headers: { authorization: `Bearer ${bearer}` },
  });
}

Deno.test("fake AYD - newChat answers a chatid, and the documented errors", () =>
  withAyd({}, async (ayd) => {
    const ok = await newChat(ayd);
    const { chatid } = await ok.json();
    assert.deepEqual(ayd.chats, [chatid]);
    const cases: [Response, number, string][] = [
      [await newChat(ayd, { botid: CHAT_ID }, "wrong"), 401, "Authentication failed"],
      [await newChat(ayd, {}), 400, "botid is required"],
      [await newChat(ayd, { botid: "other" }), 404, "Chatbot not found or access denied"],
    ];
    for (const [response, status, error] of cases) {
      assert.equal(response.status, status);
      assert.deepEqual(await response.json(), { error });
    }
    ayd.failNewChat(503);
    assert.equal((await newChat(ayd)).status, 503);
  }));

Deno.test("fake AYD - answerSessionsWith and answerNewChatWith answer 200 with another shape until reset", () =>
  withAyd({}, async (ayd) => {
    ayd.answerSessionsWith({ link: "elsewhere" });
    ayd.answerNewChatWith({ id: 7 });
    const session = await createSession(ayd);
    assert.equal(session.status, 200);
    assert.deepEqual(await session.json(), { link: "elsewhere" });
    const chat = await newChat(ayd);
    assert.equal(chat.status, 200);
    assert.deepEqual(await chat.json(), { id: 7 });
    assert.deepEqual(ayd.chats, [], "no chat created");
    ayd.answerSessionsWith(null);
    ayd.answerNewChatWith(null);
    assert.match((await (await createSession(ayd)).json()).url, /\/api\/chatbot\/auth\/callback/);
    assert.ok((await (await newChat(ayd)).json()).chatid);
  }));

Deno.test("fake AYD - a Bearer ask in a chat streams the answer and records the question, the answer and the properties", () =>
  withAyd({}, async (ayd) => {
    const { chatid } = await (await newChat(ayd)).json();
    assert.equal(textOf(await sseData(await askInChat(ayd, chatid, "late?"))), "Answer to: late?");
    assert.deepEqual(ayd.asks.map((a) => [a.apiKey, a.chatid, a.properties]), [
      [true, chatid, { region: "north" }],
    ]);
    assert.deepEqual(ayd.history(chatid).map((m) => [m.role, m.content]), [
      ["user", "late?"],
      ["assistant", "Answer to: late?"],
    ]);
    const refused = await askInChat(ayd, chatid, "q", "wrong");
    assert.equal(refused.status, 401);
    await refused.body?.cancel();
    const unknown = await askInChat(ayd, "chat_unknown", "q");
    assert.equal(unknown.status, 404);
    await unknown.body?.cancel();
    ayd.forgetChat(chatid);
    const forgotten = await askInChat(ayd, chatid, "q");
    assert.equal(forgotten.status, 404);
    await forgotten.body?.cancel();
  }));

Deno.test("fake AYD - a paused answer enters the history when it resumes; cut and refused asks leave no answer", () =>
  withAyd({}, async (ayd) => {
    const { chatid } = await (await newChat(ayd)).json();
    const { promise: resume, resolve } = Promise.withResolvers<void>();
    ayd.onAsk(({ question }) =>
      question === "paused"
        ? { kind: "answer", text: "later", pause: { afterChars: 1, until: resume } }
        : question === "cut"
        ? { kind: "cut", text: "The answer is" }
        : { kind: "status", status: 500 }
    );
    const paused = await askInChat(ayd, chatid, "paused");
    assert.deepEqual(ayd.history(chatid).map((m) => m.role), ["user"]);
    resolve();
    await paused.body?.cancel();
    await resume;
    assert.deepEqual(ayd.history(chatid).map((m) => m.role), ["user", "assistant"]);
    await (await askInChat(ayd, chatid, "cut")).body?.cancel();
    await (await askInChat(ayd, chatid, "500")).body?.cancel();
    assert.deepEqual(ayd.history(chatid).map((m) => [m.role, m.content]), [
      ["user", "paused"],
      ["assistant", "later"],
      ["user", "cut"],
    ]);
  }));

Deno.test("fake AYD - the history lists newest first, 20 a page, older pages by timestamp", () =>
  withAyd({}, async (ayd) => {
    const { chatid } = await (await newChat(ayd)).json();
    for (let i = 0; i < 45; i++) ayd.addMessage(chatid, { role: "user", content: `m${i}` });
    const first = await (await messages(ayd, chatid)).json();
    assert.equal(first.length, 20);
    assert.deepEqual([first[0].content, first[19].content], ["m44", "m25"]);
    assert.deepEqual(Object.keys(first[0]).sort(), [
      "chatbotid",
      "chatid",
      "content",
      "createdat",
      "id",
      "issql",
      "role",
    ]);
    const second = await (await messages(ayd, chatid, first[19].createdat)).json();
    assert.deepEqual([second[0].content, second.length], ["m24", 20]);
    const third = await (await messages(ayd, chatid, second[19].createdat)).json();
    assert.deepEqual(third.map((m: { content: string }) => m.content), [
      "m4",
      "m3",
      "m2",
      "m1",
      "m0",
    ]);
    assert.equal(ayd.historyReads, 3);
    const refused = await messages(ayd, chatid, undefined, "wrong");
    assert.equal(refused.status, 401);
    await refused.body?.cancel();
    ayd.failHistory(502);
    const failing = await messages(ayd, chatid);
    assert.equal(failing.status, 502);
    await failing.body?.cancel();
  }));

// ---------------------------------------------------------------- fake Twilio tests

Deno.test("fake Twilio - accepted message answers 201 with the Message resource shape", () =>
  withTwilio(async (twilio) => {
    const res = await send(twilio, [
      ["To", TO],
      ["From", FROM],
      ["Body", "hello"],
      ["MediaUrl", "https://example.com/a.png"],
      ["MediaUrl", "https://example.com/b.png"],
      ["StatusCallback", "https://bridge.example.com/status"],
    ]);
    assert.equal(res.status, 201);
    const m = await res.json();
    assert.match(m.sid, /^SM[0-9a-f]{32}$/);
    assert.match(m.date_created, /^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000$/);
    assert.deepEqual({ ...m, date_created: "", date_updated: "" }, {
      account_sid: SID,
      api_version: "2010-04-01",
      body: "hello",
      date_created: "",
      date_updated: "",
      date_sent: null,
      direction: "outbound-api",
      error_code: null,
      error_message: null,
      from: FROM,
      messaging_service_sid: null,
      num_media: "2",
      num_segments: "1",
      price: null,
      price_unit: "USD",
      sid: m.sid,
      status: "queued",
      subresource_uris: { media: `/2010-04-01/Accounts/${SID}/Messages/${m.sid}/Media.json` },
      to: TO,
      uri: `/2010-04-01/Accounts/${SID}/Messages/${m.sid}.json`,
    });
    assert.deepEqual(twilio.messages, [{
      sid: m.sid,
      to: TO,
      from: FROM,
      body: "hello",
      mediaUrls: ["https://example.com/a.png", "https://example.com/b.png"],
      statusCallback: "https://bridge.example.com/status",
    }]);
    assert.equal(twilio.attempts, 1);
  }));

Deno.test("fake Twilio - body over 1600 UTF-16 units answers 21617", () =>
  withTwilio(async (twilio) => {
    const tooLong = await send(twilio, [["To", TO], ["From", FROM], ["Body", "😀".repeat(801)]]);
    assert.equal(tooLong.status, 400);
    assert.deepEqual(await tooLong.json(), {
      code: 21617,
      message: "The concatenated message body exceeds the 1600 character limit.",
      more_info: "https://www.twilio.com/docs/errors/21617",
      status: 400,
    });
    const exact = await send(twilio, [["To", TO], ["From", FROM], ["Body", "x".repeat(1600)]]);
    assert.equal(exact.status, 201);
    await exact.body?.cancel();
    assert.equal(twilio.messages.length, 1);
    assert.equal(twilio.attempts, 2);
  }));

Deno.test("fake Twilio - missing To, missing Body and media-only messages", () =>
  withTwilio(async (twilio) => {
    const noTo = await send(twilio, [["From", FROM], ["Body", "x"]]);
    assert.equal(noTo.status, 400);
    assert.equal((await noTo.json()).code, 21604);
    const noBody = await send(twilio, [["To", TO], ["From", FROM]]);
    assert.equal(noBody.status, 400);
    assert.equal((await noBody.json()).code, 21602);
    const media = await send(twilio, [["To", TO], ["From", FROM], ["MediaUrl", "https://x/y.png"]]);
    assert.equal(media.status, 201);
    assert.equal((await media.json()).body, "");
  }));

Deno.test("fake Twilio - bad credentials answer 401 20003, wrong account 404", () =>
  withTwilio(async (twilio) => {
    const fields: Array<[string, string]> = [["To", TO], ["From", FROM], ["Body", "x"]];
    const wrong = await send(twilio, fields, basic(SID, "nope"));
    assert.equal(wrong.status, 401);
    assert.deepEqual(await wrong.json(), {
      code: 20003,
      message: "Authenticate",
      more_info: "https://www.twilio.com/docs/errors/20003",
      status: 401,
    });
    const missing = await send(twilio, fields, "");
    assert.equal(missing.status, 401);
    await missing.body?.cancel();
    const otherSid = "AC" + "1".repeat(32);
    const other = await send(twilio, fields, basic(), otherSid);
    assert.equal(other.status, 404);
    assert.equal((await other.json()).code, 20404);
    assert.equal(twilio.attempts, 3);
    assert.deepEqual(twilio.messages, []);
  }));

Deno.test("fake Twilio - failNext answers queued failures in FIFO order", () =>
  withTwilio(async (twilio) => {
    twilio.failNext(
      { status: 429, code: 20429, message: "Too Many Requests", retryAfter: 2 },
      { status: 500, code: 20500 },
      { status: 0, code: 0 },
    );
    const fields: Array<[string, string]> = [["To", TO], ["From", FROM], ["Body", "x"]];
    const first = await send(twilio, fields);
    assert.equal(first.status, 429);
    assert.equal(first.headers.get("retry-after"), "2");
    assert.deepEqual(await first.json(), {
      code: 20429,
      message: "Too Many Requests",
      more_info: "https://www.twilio.com/docs/errors/20429",
      status: 429,
    });
    const second = await send(twilio, fields);
    assert.equal(second.status, 500);
    assert.equal(second.headers.get("retry-after"), null);
    assert.equal((await second.json()).code, 20500);
    await assert.rejects(async () => await (await send(twilio, fields)).text());
    const fourth = await send(twilio, fields);
    assert.equal(fourth.status, 201);
    await fourth.body?.cancel();
    assert.equal(twilio.attempts, 4);
    assert.equal(twilio.messages.length, 1);
  }));

Deno.test("fake Twilio - typing indicator endpoint records the request", () =>
  withTwilio(async (twilio) => {
    const post = (auth: string) =>
      fetch(`${twilio.url}/v2/Indicators/Typing.json`, {
        method: "POST",
        headers: { authorization: auth },
        body: new URLSearchParams({ messageId: "SM" + "a".repeat(32), channel: "whatsapp" }),
      });
    const denied = await post(basic(SID, "nope"));
    assert.equal(denied.status, 401);
    await denied.body?.cancel();
    const res = await post(basic());
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { success: true });
    assert.deepEqual(twilio.typing, [{ messageId: "SM" + "a".repeat(32), channel: "whatsapp" }]);
    assert.equal(twilio.attempts, 0);
  }));

Deno.test("fake Twilio - waitForMessages resolves, and rejects with what it got", () =>
  withTwilio(async (twilio) => {
    const waiting = twilio.waitForMessages(TO, 2);
    for (const body of ["one", "two"]) {
      const res = await send(twilio, [["To", TO], ["From", FROM], ["Body", body]]);
      await res.body?.cancel();
    }
    assert.deepEqual((await waiting).map((m) => m.body), ["one", "two"]);
    await assert.rejects(twilio.waitForMessages("whatsapp:+15550000000", 1, 20), (e: Error) => {
      assert.match(
        e.message,
        /timed out after 20 ms waiting for 1 message\(s\) to whatsapp:\+1555/,
      );
      assert.match(e.message, /received 2 in total/);
      assert.match(e.message, /whatsapp:\+15551234567: "one"/);
      return true;
    });
  }));

Deno.test("fake Twilio - unknown routes answer 404 JSON", () =>
  withTwilio(async (twilio) => {
    const res = await fetch(`${twilio.url}/nope`);
    assert.equal(res.status, 404);
    assert.equal((await res.json()).code, 20404);
  }));

/** Reads the Messages list at `pathAndQuery` (relative, as Twilio's paging URIs are). */
function list(twilio: FakeTwilio, pathAndQuery: string, auth = basic()): Promise<Response> {
  return fetch(`${twilio.url}${pathAndQuery}`, { headers: { authorization: auth } });
}

const LIST = `/2010-04-01/Accounts/${SID}/Messages.json`;

/** A clock that starts at `start` and moves one second on each reading. */
function ticking(start: string): () => Date {
  let at = Date.parse(start);
  return () => new Date((at += 1000) - 1000);
}

Deno.test("fake Twilio - the message list pages newest first, in Twilio's page shape", () =>
  withTwilio(async (twilio) => {
    for (const [to, body] of [[TO, "one"], [TO, "two"], ["whatsapp:+15550000001", "x"]]) {
      await (await send(twilio, [["To", to], ["From", FROM], ["Body", body]])).body?.cancel();
    }
    await (await send(twilio, [["To", TO], ["From", FROM], ["MediaUrl", "https://x/c.png"]]))
      .body?.cancel();
    const [one, two, , media] = twilio.messages;
    const query = `To=${encodeURIComponent(TO)}&From=${encodeURIComponent(FROM)}`;
    const res = await list(twilio, `${LIST}?${query}&PageSize=2`);
    assert.equal(res.status, 200);
    const page = await res.json();
    const uri = (rest: string) =>
      `${LIST}?To=whatsapp%3A%2B15551234567&From=whatsapp%3A%2B14155238886&${rest}`;
    assert.deepEqual({ ...page, messages: page.messages.map((m: { sid: string }) => m.sid) }, {
      end: 1,
      first_page_uri: uri("PageSize=2&Page=0"),
      messages: [media.sid, two.sid],
      next_page_uri: uri(`PageSize=2&Page=1&PageToken=PA${two.sid}`),
      page: 0,
      page_size: 2,
      previous_page_uri: null,
      start: 0,
      uri: uri("PageSize=2&Page=0"),
    });
    assert.deepEqual(page.messages[0], {
      account_sid: SID,
      api_version: "2010-04-01",
      body: "",
      date_created: "Wed, 02 Jan 2030 03:04:08 +0000",
      date_updated: "Wed, 02 Jan 2030 03:04:08 +0000",
      date_sent: null,
      direction: "outbound-api",
      error_code: null,
      error_message: null,
      from: FROM,
      messaging_service_sid: null,
      num_media: "1",
      num_segments: "1",
      price: null,
      price_unit: "USD",
      sid: media.sid,
      status: "queued",
      subresource_uris: { media: `${LIST.slice(0, -5)}/${media.sid}/Media.json` },
      to: TO,
      uri: `${LIST.slice(0, -5)}/${media.sid}.json`,
    });
    const next = await (await list(twilio, page.next_page_uri)).json();
    assert.deepEqual(next.messages.map((m: { body: string }) => m.body), ["one"]);
    assert.equal(next.messages[0].sid, one.sid);
    assert.deepEqual([next.page, next.start, next.end, next.next_page_uri], [1, 2, 2, null]);
    assert.equal(next.previous_page_uri, uri(`PageSize=2&Page=0&PageToken=PB${one.sid}`));
    const back = await (await list(twilio, next.previous_page_uri)).json();
    assert.deepEqual(back.messages.map((m: { sid: string }) => m.sid), [media.sid, two.sid]);
    assert.equal(twilio.lookups, 3);
    assert.equal(twilio.attempts, 4, "listing creates nothing");
  }, { now: ticking("2030-01-02T03:04:05Z") }));

Deno.test("fake Twilio - list pages hold 50 by default, and refuse bad sizes, tokens and credentials", () =>
  withTwilio(async (twilio) => {
    for (let i = 0; i < 51; i++) {
      await (await send(twilio, [["To", TO], ["From", FROM], ["Body", `m${i}`]])).body?.cancel();
    }
    const page = await (await list(twilio, LIST)).json();
    assert.equal(page.page_size, 50);
    assert.equal(page.messages.length, 50);
    assert.equal(page.messages[0].body, "m50", "the newest first, even within one second");
    assert.match(page.next_page_uri, /PageSize=50&Page=1&PageToken=PA/);
    const tooBig = await list(twilio, `${LIST}?PageSize=1001`);
    assert.equal(tooBig.status, 400);
    await tooBig.body?.cancel();
    const badToken = await list(twilio, `${LIST}?Page=1&PageToken=PAnope`);
    assert.equal(badToken.status, 400);
    assert.equal((await badToken.json()).code, 21481);
    const denied = await list(twilio, LIST, basic(SID, "nope"));
    assert.equal(denied.status, 401);
    assert.equal((await denied.json()).code, 20003);
    const other = await list(twilio, `/2010-04-01/Accounts/AC${"1".repeat(32)}/Messages.json`);
    assert.equal(other.status, 404);
    await other.body?.cancel();
    assert.equal(twilio.lookups, 5);
  }));

Deno.test("fake Twilio - a DateSent filter lists nothing, since no message here is ever sent", () =>
  withTwilio(async (twilio) => {
    await (await send(twilio, [["To", TO], ["From", FROM], ["Body", "x"]])).body?.cancel();
    const all = await (await list(twilio, `${LIST}?To=${encodeURIComponent(TO)}`)).json();
    assert.equal(all.messages.length, 1);
    const since = await (await list(twilio, `${LIST}?DateSent%3E=2000-01-01`)).json();
    assert.deepEqual(since.messages, []);
    assert.match(since.uri, /DateSent%3E=2000-01-01&PageSize=50&Page=0$/);
  }));

Deno.test("fake Twilio - failList fails list requests in FIFO order, holdLookup never answers", () =>
  withTwilio(async (twilio) => {
    twilio.failList({ status: 500, code: 20500 }, { status: 429, code: 20429 });
    const first = await list(twilio, LIST);
    assert.equal(first.status, 500);
    await first.body?.cancel();
    const second = await list(twilio, LIST);
    assert.equal(second.status, 429);
    assert.equal((await second.json()).code, 20429);
    const third = await list(twilio, LIST);
    assert.equal(third.status, 200);
    await third.body?.cancel();
    twilio.holdLookup(4);
    const held = fetch(`${twilio.url}${LIST}`, {
      headers: { authorization: basic() },
      signal: AbortSignal.timeout(50),
    });
    await assert.rejects(held, (e: Error) => e.name === "TimeoutError");
    assert.equal(twilio.lookups, 4);
    assert.equal(twilio.attempts, 0);
  }));

Deno.test("fake Twilio - answerLate creates the message but holds its 201", () =>
  withTwilio(async (twilio) => {
    twilio.answerLate(1);
    twilio.answerLate(2, 5);
    const fields: Array<[string, string]> = [["To", TO], ["From", FROM], ["Body", "late"]];
    const given = fetch(`${twilio.url}${LIST}`, {
      method: "POST",
      headers: { authorization: basic() },
      body: new URLSearchParams(fields),
      signal: AbortSignal.timeout(50),
    });
    await assert.rejects(given, (e: Error) => e.name === "TimeoutError");
    assert.deepEqual(twilio.messages.map((m) => m.body), ["late"]);
    const listed = await (await list(twilio, LIST)).json();
    assert.deepEqual(listed.messages.map((m: { sid: string }) => m.sid), [twilio.messages[0].sid]);
    const slow = await send(twilio, fields);
    assert.equal(slow.status, 201);
    assert.equal((await slow.json()).sid, twilio.messages[1].sid);
  }));

// ---------------------------------------------------------------- fake Twilio media

const VOICE = new Uint8Array([0x4f, 0x67, 0x67, 0x53, 0, 2, 0, 0]); // "OggS…"

Deno.test("fake Twilio media - Basic auth on the API host, then a redirect to the media host", () =>
  withTwilio(async (twilio) => {
    const url = twilio.addMedia(VOICE, "audio/ogg");
    assert.match(
      url,
      new RegExp(`^${twilio.url}/2010-04-01/Accounts/${SID}/Messages/MM[0-9a-f]{32}/Media/ME`),
    );
    const anonymous = await fetch(url, { redirect: "manual" });
    assert.equal(anonymous.status, 401);
    assert.equal((await anonymous.json()).code, 20003);

    const redirect = await fetch(url, { headers: { authorization: basic() }, redirect: "manual" });
    assert.equal(redirect.status, 307);
    await redirect.body?.cancel();
    const location = new URL(redirect.headers.get("location")!);
    assert.equal(location.origin, twilio.mediaHost.url, "another host than the API's");
    assert.ok(location.searchParams.has("Signature"), "a short-lived, signed URL");

    const media = await fetch(location);
    assert.equal(media.headers.get("content-type"), "audio/ogg");
    assert.equal(media.headers.get("content-length"), String(VOICE.length));
    assert.deepEqual(new Uint8Array(await media.arrayBuffer()), VOICE);
    assert.equal(twilio.mediaRequests, 2);
    assert.equal(twilio.mediaHost.requests, 1);
    assert.deepEqual(twilio.mediaHost.violations, []);
  }));

Deno.test("fake Twilio media - credentials that reach the media host are refused and fail close()", async () => {
  const twilio = await startFakeTwilio({ accountSid: SID, authToken: AUTH_TOKEN });
  const url = twilio.addMedia(VOICE, "audio/ogg");
  const redirect = await fetch(url, { headers: { authorization: basic() }, redirect: "manual" });
  await redirect.body?.cancel();
  // A client that sends the credentials along the redirect.
  const followed = await fetch(redirect.headers.get("location")!, {
    headers: { authorization: basic() },
  });
  assert.equal(followed.status, 400);
  await followed.body?.cancel();
  assert.equal(twilio.mediaHost.violations.length, 1);
  await assert.rejects(twilio.close(), /credentials reached the media host/);
});

Deno.test("fake Twilio media - unknown media and other accounts answer 404; 302 when asked", () =>
  withTwilio(async (twilio) => {
    const url = twilio.addMedia(VOICE, "audio/ogg");
    const auth = { authorization: basic() };
    const unknown = await fetch(url.replace(/ME\w+$/, "ME" + "0".repeat(32)), { headers: auth });
    assert.equal(unknown.status, 404);
    assert.equal((await unknown.json()).code, 20404);
    const other = await fetch(url.replace(SID, "AC" + "1".repeat(32)), { headers: auth });
    assert.equal(other.status, 404);
    await other.body?.cancel();
    const found = await fetch(url, { headers: auth, redirect: "manual" });
    assert.equal(found.status, 302);
    await found.body?.cancel();
  }, { mediaRedirectStatus: 302 }));

Deno.test("fake Twilio media - the media host can fail, redirect again, stream without a length or stall", () =>
  withTwilio(async (twilio) => {
    const redirect = await fetch(twilio.addMedia(VOICE, "audio/ogg"), {
      headers: { authorization: basic() },
      redirect: "manual",
    });
    await redirect.body?.cancel();
    const location = redirect.headers.get("location")!;

    twilio.mediaHost.behave({ status: 503 });
    const failed = await fetch(location);
    assert.equal(failed.status, 503);
    assert.match(await failed.text(), /<Error><Code>/);

    twilio.mediaHost.behave({ hops: 2 });
    const hop = await fetch(location, { redirect: "manual" });
    assert.equal(hop.status, 302);
    await hop.body?.cancel();
    const followed = await fetch(location);
    assert.deepEqual(new Uint8Array(await followed.arrayBuffer()), VOICE);

    twilio.mediaHost.behave({ chunked: true });
    const chunked = await fetch(location);
    assert.equal(chunked.headers.get("content-length"), null);
    assert.deepEqual(new Uint8Array(await chunked.arrayBuffer()), VOICE);

    twilio.mediaHost.behave({ stallAfterBytes: 4 });
    const stalled = await fetch(location, { signal: AbortSignal.timeout(200) });
    await assert.rejects(stalled.arrayBuffer());

    twilio.mediaHost.behave({});
    const expired = await fetch(location.replace(/\?.*$/, ""));
    assert.equal(expired.status, 403, "the URL is nothing without its signature");
    await expired.body?.cancel();
  }));

// ---------------------------------------------------------------- fake speech to text

function sttForm(fields: Record<string, string | [Uint8Array, string, string]>): FormData {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) {
    if (typeof value === "string") form.append(name, value);
    else form.append(name, new Blob([value[0].slice()], { type: value[2] }), value[1]);
  }
  return form;
}

function postStt(url: string, form: FormData | string, bearer?: string): Promise<Response> {
  return fetch(`${url}/v1/audio/transcriptions`, {
    method: "POST",
    headers: bearer ? { authorization: `Bearer ${bearer}` } : {},
    body: form,
  });
}

Deno.test("fake STT - the documented multipart request is answered {text} and recorded", async () => {
  await using stt = await startFakeStt({ apiKey: "sk-fake", transcript: "late orders?" });
  const form = sttForm({
    file: [VOICE, "voice.ogg", "audio/ogg"],
    model: "whisper-1",
    language: "en",
    response_format: "json",
  });
  const response = await postStt(stt.url, form, "sk-fake");
  assert.equal(response.status, 200);
  assert.deepEqual(await response.json(), { text: "late orders?" });
  assert.deepEqual(stt.requests, [{
    model: "whisper-1",
    language: "en",
    responseFormat: "json",
    filename: "voice.ogg",
    contentType: "audio/ogg",
    bytes: VOICE,
    authorization: "Bearer sk-fake",
    fields: ["file", "model", "language", "response_format"],
  }]);

  const text = await postStt(
    stt.url,
    sttForm({ file: [VOICE, "a.mp3", "audio/mpeg"], model: "m", response_format: "text" }),
    "sk-fake",
  );
  assert.equal(await text.text(), "late orders?\n");
  const verbose = await postStt(
    stt.url,
    sttForm({ file: [VOICE, "a.wav", "audio/wav"], model: "m", response_format: "verbose_json" }),
    "sk-fake",
  );
  assert.equal((await verbose.json()).text, "late orders?");
});

Deno.test("fake STT - a wrong key, a missing file or model and an unknown format get OpenAI's errors", async () => {
  await using stt = await startFakeStt({ apiKey: "sk-fake" });
  const ogg = (): [Uint8Array, string, string] => [VOICE, "voice.ogg", "audio/ogg"];
  const cases: [FormData | string, string | undefined, number, string | null, RegExp][] = [
    [
      sttForm({ file: ogg(), model: "whisper-1" }),
      "sk-wrong",
      401,
      "invalid_api_key",
      /Incorrect API key provided: sk\*\*\*ng/,
    ],
    [sttForm({ file: ogg(), model: "whisper-1" }), undefined, 401, "invalid_api_key", /Incorrect/],
    [sttForm({ model: "whisper-1" }), "sk-fake", 400, null, /'file'/],
    [sttForm({ file: ogg() }), "sk-fake", 400, null, /model/],
    [
      sttForm({ file: [VOICE, "voice.amr", "audio/amr"], model: "whisper-1" }),
      "sk-fake",
      400,
      null,
      /Invalid file format/,
    ],
    ["file=x&model=whisper-1", "sk-fake", 400, null, /multipart/],
  ];
  for (const [form, bearer, status, code, message] of cases) {
    const response = await postStt(stt.url, form, bearer);
    assert.equal(response.status, status);
    const { error } = await response.json();
    assert.equal(error.code, code);
    assert.equal(error.type, "invalid_request_error");
    assert.match(error.message, message);
  }
  assert.equal(stt.requests.length, 0, "only well-formed requests are recorded");
  assert.equal(stt.attempts, cases.length);
});

Deno.test("fake STT - scripted faults are taken in order: status, transcript, whisper.cpp, raw, hang", async () => {
  await using stt = await startFakeStt();
  stt.failNext(
    { status: 503 },
    { status: 429, code: "rate_limit_exceeded" },
    { transcript: "" },
    { whisperCppError: "failed to read WAV file" },
    { raw: "not json" },
    { hang: true },
  );
  const send = () => postStt(stt.url, sttForm({ file: [VOICE, "v.ogg", "audio/ogg"], model: "m" }));
  const unavailable = await send();
  assert.equal(unavailable.status, 503);
  assert.equal((await unavailable.json()).error.type, "server_error");
  const limited = await send();
  assert.equal(limited.status, 429);
  assert.equal((await limited.json()).error.code, "rate_limit_exceeded");
  assert.deepEqual(await (await send()).json(), { text: "" });
  assert.deepEqual(await (await send()).json(), { error: "failed to read WAV file" });
  assert.equal(await (await send()).text(), "not json");
  const hung = fetch(`${stt.url}/v1/audio/transcriptions`, {
    method: "POST",
    body: sttForm({ file: [VOICE, "v.ogg", "audio/ogg"], model: "m" }),
    signal: AbortSignal.timeout(100),
  });
  await assert.rejects(hung, (e: Error) => e.name === "TimeoutError", "never answered");
  assert.deepEqual(await (await send()).json(), { text: stt.transcript }, "faults used up");
  assert.equal(stt.requests.length, 7);
});
