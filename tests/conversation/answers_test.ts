/** Commands, non-text messages, typing and charts, through the real app. */
import assert from "node:assert/strict";
import { REPLIES } from "../../src/conversation/answer.ts";
import { COMMAND_REPLIES, commandReply, parseCommand } from "../../src/conversation/commands.ts";
import { sessionKey } from "../../src/ayd/sessions.ts";
import {
  logEvents,
  startTestBridge,
  testEveryBackend,
  testEverySetting,
  waitFor,
} from "../_helpers.ts";

const USER = "whatsapp:+15551234567";

Deno.test("commands - whole messages only, any case", () => {
  for (const text of ["reset", "RESET", " /reset ", "/new", "Reset!", "reset."]) {
    assert.equal(parseCommand(text), "reset", text);
  }
  for (const text of ["help", "/HELP", "Help."]) assert.equal(parseCommand(text), "help", text);
  for (
    const text of ["new customers this month?", "reset the filters please", "helpful?", "new"]
  ) assert.equal(parseCommand(text), undefined, text);
});

testEveryBackend(
  "commands - reset drops the session and confirms; the next question opens a new one",
  async (backend) => {
    await using t = await startTestBridge({ backend });
    await t.sendWhatsApp({ Body: "first question" });
    await t.twilio.waitForMessages(USER, 1);
    await t.sendWhatsApp({ Body: "Reset" });
    const replies = await t.twilio.waitForMessages(USER, 2);
    assert.equal(replies[1].body, COMMAND_REPLIES.reset);
    assert.equal((await t.kv.get(sessionKey("+15551234567"))).value, null);
    await t.sendWhatsApp({ Body: "new customers this month?" });
    const [, , third] = await t.twilio.waitForMessages(USER, 3);
    assert.equal(third.body, "Answer to: new customers this month?");
    assert.equal(t.ayd.sessions.length, 2, "a fresh AYD conversation");
    assert.deepEqual(t.ayd.asks.map((a) => a.question), [
      "first question",
      "new customers this month?",
    ]);
  },
);

testEverySetting("commands - help explains usage without asking AYD", async (backend, mode) => {
  await using t = await startTestBridge({ backend, mode });
  await t.sendWhatsApp({ Body: "/help" });
  const [reply] = await t.twilio.waitForMessages(USER, 1);
  assert.equal(reply.body, commandReply("help", mode));
  assert.match(reply.body, mode === "chat" ? /until you send \*reset\*/ : /for 7 days/);
  assert.equal(t.ayd.asks.length, 0);
  assert.equal(t.ayd.sessions.length, 0);
});

testEverySetting(
  "not text - a voice note, a sticker or a location gets the friendly note, AYD is not asked",
  async (backend, mode) => {
    await using t = await startTestBridge({ backend, mode });
    await t.sendWhatsApp({
      Body: "",
      NumMedia: "1",
      MediaUrl0: "https://api.twilio.com/2010-04-01/Accounts/AC/Messages/MM/Media/ME1",
      MediaContentType0: "audio/ogg",
      MessageType: "audio",
    });
    await t.sendWhatsApp({
      Body: "",
      MessageType: "location",
      Latitude: "52.5",
      Longitude: "13.4",
    });
    const replies = await t.twilio.waitForMessages(USER, 2);
    assert.deepEqual(replies.map((r) => r.body), [REPLIES.notText, REPLIES.notText]);
    assert.match(REPLIES.notText, /photos, voice notes, stickers, locations or contacts/);
    assert.equal(t.ayd.asks.length, 0);
  },
);

testEverySetting("not text - a photo's caption counts as the question", async (backend, mode) => {
  await using t = await startTestBridge({ backend, mode });
  await t.sendWhatsApp({
    Body: "what is this order's status?",
    NumMedia: "1",
    MediaUrl0: "https://api.twilio.com/media/ME2",
    MediaContentType0: "image/jpeg",
    MessageType: "image",
  });
  const [reply] = await t.twilio.waitForMessages(USER, 1);
  assert.equal(reply.body, "Answer to: what is this order's status?");
});

testEverySetting(
  "typing - shown for the inbound message while the answer is prepared",
  async (backend, mode) => {
    await using t = await startTestBridge({ backend, mode });
    const sid = "SM" + "7".repeat(32);
    await t.sendWhatsApp({ MessageSid: sid });
    await t.twilio.waitForMessages(USER, 1);
    assert.deepEqual(t.twilio.typing, [{ messageId: sid, channel: "whatsapp" }]);
  },
);

testEverySetting(
  "typing - a refused indicator is logged and changes nothing else",
  async (backend, mode) => {
    await using t = await startTestBridge({ backend, mode });
    t.twilio.failTyping(404);
    await t.sendWhatsApp({ Body: "still answered?" });
    const [reply] = await t.twilio.waitForMessages(USER, 1);
    assert.equal(reply.body, "Answer to: still answered?");
    await waitFor(() => logEvents(t.logs, "typing.failed").length === 1, "the warning");
    assert.match(String(logEvents(t.logs, "typing.failed")[0].reason), /404/);
  },
);

testEverySetting("typing - TYPING_INDICATOR=false turns it off", async (backend, mode) => {
  await using t = await startTestBridge({ backend, mode, env: { TYPING_INDICATOR: "false" } });
  await t.sendWhatsApp();
  await t.twilio.waitForMessages(USER, 1);
  assert.deepEqual(t.twilio.typing, []);
});

testEverySetting(
  "charts - an isImage event becomes a media message after its text; SQL is never shown",
  async (backend, mode) => {
    await using t = await startTestBridge({ backend, mode });
    t.ayd.onAsk(() => ({
      kind: "answer",
      text: "Sales grew 12% in March.",
      images: ["https://charts.askyourdatabase.com/c/123.png"],
    }));
    await t.sendWhatsApp({ Body: "chart of monthly sales" });
    const replies = await t.twilio.waitForMessages(USER, 2);
    assert.equal(replies[0].body, "Sales grew 12% in March.");
    assert.deepEqual(replies[0].mediaUrls, []);
    assert.equal(replies[1].body, "");
    assert.deepEqual(replies[1].mediaUrls, ["https://charts.askyourdatabase.com/c/123.png"]);
    for (const reply of t.twilio.messages) assert.doesNotMatch(reply.body, /SELECT/);
  },
);
