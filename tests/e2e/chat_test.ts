/**
 * Chat mode through the real app: AYD's documented API only (newChat, a
 * Bearer ask with the chatid, the history), the chat kept per number, a
 * forgotten chat replaced once, refused credentials treated as the
 * configuration problem they are.
 */
import assert from "node:assert/strict";
import { REPLIES } from "../../src/conversation/answer.ts";
import { COMMAND_REPLIES } from "../../src/conversation/commands.ts";
import { chatKey } from "../../src/ayd/chats.ts";
import { type DeadLetter } from "../../src/jobs/mod.ts";
import { writeDirectory } from "../../src/people/mod.ts";
import { CHAT_MODE_BACKEND, logEvents, startTestBridge, waitFor } from "../_helpers.ts";

const USER = "whatsapp:+15551234567";
const PHONE = "+15551234567";
/** What chat mode may call; nothing of the widget's session flow. */
const DOCUMENTED = new Set([
  "POST /api/chatbot/newChat",
  "POST /api/ask",
  "GET /api/chatbot/messages",
]);

const startChatBridge = (options: Parameters<typeof startTestBridge>[0] = {}) =>
  startTestBridge({ backend: CHAT_MODE_BACKEND, mode: "chat", ...options });

async function health(url: string) {
  const response = await fetch(`${url}/health`);
  return { status: response.status, body: await response.json() };
}

Deno.test("chat mode - asked through newChat and a Bearer ask with the chatid only; the chat is the number's from then on", async () => {
  await using t = await startChatBridge();
  await t.sendWhatsApp({ Body: "How many orders shipped late?" });
  await t.twilio.waitForMessages(USER, 1);
  await t.sendWhatsApp({ Body: "And the week before?" });
  const replies = await t.twilio.waitForMessages(USER, 2);
  assert.deepEqual(replies.map((r) => r.body), [
    "Answer to: How many orders shipped late?",
    "Answer to: And the week before?",
  ]);
  assert.equal(t.ayd.chats.length, 1, "one chat for both questions");
  const [chatid] = t.ayd.chats;
  assert.deepEqual(
    t.ayd.asks.map((a) => [a.apiKey, a.token, a.chatid, a.query, a.debug, a.fileUrls]),
    [[true, "", chatid, "", false, []], [true, "", chatid, "", false, []]],
  );
  assert.deepEqual(t.ayd.sessions, [], "no widget session");
  assert.deepEqual(t.ayd.requests.filter((r) => !DOCUMENTED.has(r)), [], "no widget endpoint");
  // The first question's chat was new (nothing to read); the second noted where it stood.
  assert.equal(t.ayd.historyReads, 1);
  const stored = (await t.kv.get<Record<string, unknown>>(chatKey(PHONE))).value!;
  assert.deepEqual(Object.keys(stored).sort(), ["chatid", "createdAt"]);
  assert.equal(stored.chatid, chatid);
  assert.deepEqual(await Array.fromAsync(t.kv.list({ prefix: ["sessions"] })), []);
  assert.deepEqual(
    (await Array.fromAsync(t.kv.list({ prefix: ["expiry"] }))).filter((e) => e.key[2] === "chats"),
    [],
    "a chat does not expire",
  );
  assert.equal((await health(t.url)).body.aydMode, "chat");
});

Deno.test("chat mode - reset starts a new chat; the next question asks in it", async () => {
  await using t = await startChatBridge();
  await t.sendWhatsApp({ Body: "first question" });
  await t.twilio.waitForMessages(USER, 1);
  await t.sendWhatsApp({ Body: "/reset" });
  const replies = await t.twilio.waitForMessages(USER, 2);
  assert.equal(replies[1].body, COMMAND_REPLIES.reset);
  assert.equal((await t.kv.get(chatKey(PHONE))).value, null);
  await t.sendWhatsApp({ Body: "second question" });
  await t.twilio.waitForMessages(USER, 3);
  assert.equal(t.ayd.chats.length, 2);
  assert.deepEqual(t.ayd.asks.map((a) => a.chatid), t.ayd.chats);
});

Deno.test("chat mode - a chat AYD no longer knows (404) is replaced once and the question answered", async () => {
  await using t = await startChatBridge();
  await t.sendWhatsApp({ Body: "first" });
  await t.twilio.waitForMessages(USER, 1);
  t.ayd.forgetChat(t.ayd.chats[0]);
  await t.sendWhatsApp({ Body: "second" });
  const replies = await t.twilio.waitForMessages(USER, 2);
  assert.equal(replies[1].body, "Answer to: second");
  const [old, fresh] = t.ayd.chats;
  assert.deepEqual(t.ayd.asks.map((a) => [a.question, a.chatid]), [
    ["first", old],
    ["second", old],
    ["second", fresh],
  ]);
  assert.equal((await t.kv.get<{ chatid: string }>(chatKey(PHONE))).value?.chatid, fresh);
  assert.equal(logEvents(t.logs, "chat.renewing").length, 1);
});

Deno.test("chat mode - a 404 in the new chat too ends with the conversation text, no loop", async () => {
  await using t = await startChatBridge({ env: { JOB_RETRY_BUDGET_MS: "30000" } });
  t.ayd.onAsk(() => ({ kind: "status", status: 404 }));
  await t.sendWhatsApp();
  const [reply] = await t.twilio.waitForMessages(USER, 1);
  assert.equal(reply.body, REPLIES.renewalFailed);
  assert.equal(t.ayd.asks.length, 2, "asked, new chat, asked once more");
  assert.equal(t.ayd.chats.length, 2);
});

Deno.test("chat mode - a refused API key is a configuration problem: the usual apology, no retry, /health says so", async () => {
  await using t = await startChatBridge({
    env: { ASKYOURDATABASE_API_KEY: "a-revoked-key", JOB_RETRY_BUDGET_MS: "30000" },
  });
  const sid = "SM" + "5".repeat(32);
  await t.sendWhatsApp({ MessageSid: sid });
  const [reply] = await t.twilio.waitForMessages(USER, 1);
  assert.equal(reply.body, REPLIES.failure);
  await waitFor(async () => (await t.kv.get(["dead_letters", sid])).value !== null, "dead letter");
  const letter = (await t.kv.get<DeadLetter>(["dead_letters", sid])).value!;
  assert.equal(letter.attempts, 1, "not retried");
  assert.deepEqual(t.ayd.requests, ["POST /api/chatbot/newChat"]);
  const { status, body } = await health(t.url);
  assert.equal(status, 503);
  assert.equal(body.status, "degraded");
  assert.equal(body.reason, "ayd_refused");
  assert.match(body.hint, /refused the API key \(newChat answered 401\).*ASKYOURDATABASE_API_KEY/);
  assert.equal(logEvents(t.logs, "ayd.refused").length, 1);
  assert.ok(!t.logs.join("\n").includes("a-revoked-key"), "the key is not logged");
});

Deno.test("chat mode - a 403 on the ask is refused alike, and /health is ok again once AYD accepts", async () => {
  await using t = await startChatBridge({ env: { JOB_RETRY_BUDGET_MS: "30000" } });
  t.ayd.onAsk(() => ({ kind: "status", status: 403 }));
  await t.sendWhatsApp({ Body: "refused" });
  const [reply] = await t.twilio.waitForMessages(USER, 1);
  assert.equal(reply.body, REPLIES.failure);
  assert.equal(t.ayd.asks.length, 1, "no retry, no new chat");
  assert.equal(t.ayd.chats.length, 1);
  assert.equal((await health(t.url)).status, 503);
  t.ayd.onAsk(null);
  await t.sendWhatsApp({ Body: "accepted" });
  await t.twilio.waitForMessages(USER, 2);
  assert.equal((await health(t.url)).status, 200);
  assert.equal(logEvents(t.logs, "ayd.accepted").length, 1);
});

Deno.test("chat mode - newChat failing gets the no-session text and is retried within the budget", async () => {
  await using t = await startChatBridge({
    env: { JOB_RETRY_BUDGET_MS: "30000", JOB_RETRY_BASE_MS: "20" },
  });
  t.ayd.failNewChat(503);
  await t.sendWhatsApp({ Body: "later" });
  await waitFor(() => logEvents(t.logs, "job.retry_scheduled").length >= 1, "a retry");
  t.ayd.failNewChat(null);
  const [reply] = await t.twilio.waitForMessages(USER, 1);
  assert.equal(reply.body, "Answer to: later");

  await using down = await startChatBridge();
  down.ayd.failNewChat(500);
  await down.sendWhatsApp();
  const [apology] = await down.twilio.waitForMessages(USER, 1);
  assert.equal(apology.body, REPLIES.noSession);
  assert.equal(down.ayd.asks.length, 0);
});

Deno.test("chat mode - a history that cannot be read does not stop the question", async () => {
  await using t = await startChatBridge();
  await t.sendWhatsApp({ Body: "first" });
  await t.twilio.waitForMessages(USER, 1);
  t.ayd.failHistory(500);
  await t.sendWhatsApp({ Body: "second" });
  const replies = await t.twilio.waitForMessages(USER, 2);
  assert.equal(replies[1].body, "Answer to: second");
  assert.equal(logEvents(t.logs, "history.failed").length, 1);
});

Deno.test("chat mode - a whole conversation, renewal and a recovery included, leaves no number, text, key or identity in the logs", async () => {
  await using t = await startChatBridge();
  await writeDirectory(t.kv, [[PHONE, {
    name: "Ada Lovelace",
    email: "ada@example.com",
    properties: { region: "north-east" },
    updatedAt: Date.now(),
  }]]);
  const question = "What is the revenue of customer Zyxwvut Corp?";
  t.ayd.onAsk(() => ({ kind: "answer", text: "Zyxwvut Corp paid 98,765.43 EUR in total." }));
  await t.sendWhatsApp({ Body: question, ProfileName: "Ada L." });
  await t.twilio.waitForMessages(USER, 1);
  t.ayd.forgetChat(t.ayd.chats[0]);
  await t.sendWhatsApp({ Body: question });
  await t.twilio.waitForMessages(USER, 2);
  const logs = t.logs.join("\n");
  for (
    const secret of [
      "15551234567",
      "Zyxwvut",
      "98,765.43",
      "Ada",
      "ada@example.com",
      "north-east",
      t.config.aydApiKey,
      t.config.twilioAuthToken,
    ]
  ) assert.ok(!logs.includes(secret), `logs contain ${secret}`);
  assert.ok(logs.includes('"from":"+*******4567"'));
});
