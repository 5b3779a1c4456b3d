/**
 * A question typed in pieces (the merge window), through the real app: the
 * pieces asked as one question and answered once, commands and media that
 * cannot be heard kept apart, and nothing lost around the window.
 *
 * Timing: the window is large next to the few milliseconds a webhook takes
 * here, so pieces posted one after the other always fall inside it; what
 * happens after the window is held where it matters (AYD waits for the test).
 */
import assert from "node:assert/strict";
import { REPLIES } from "../../src/conversation/answer.ts";
import { messageKey, type MessageRecord } from "../../src/jobs/mod.ts";
import {
  conversationsOpened,
  logEvents,
  newMessageSid,
  startTestBridge,
  type TestBridge,
  testEveryBackend,
  testEverySetting,
  waitFor,
} from "../_helpers.ts";

const USER = "whatsapp:+15551234567";
/** Far longer than posting a few webhooks takes, short enough for a test to wait out. */
const WINDOW = "2000";
const OGG = new TextEncoder().encode("OggS\0\u0002 opus voice note ".repeat(40));

/** The webhook form of a WhatsApp voice note (no text, one `audio/ogg` medium). */
const voiceNote = (url: string) => ({
  Body: "",
  NumMedia: "1",
  MediaUrl0: url,
  MediaContentType0: "audio/ogg",
  MessageType: "audio",
});

/** Posts each text as its own message, one after the other; their sids. */
async function sendPieces(t: TestBridge, ...bodies: string[]): Promise<string[]> {
  const sids: string[] = [];
  for (const body of bodies) {
    const sid = newMessageSid();
    const response = await t.sendWhatsApp({ Body: body, MessageSid: sid });
    assert.equal(response.status, 200);
    await response.body?.cancel();
    sids.push(sid);
  }
  return sids;
}

const recordOf = async (t: TestBridge, sid: string) =>
  (await t.kv.get<MessageRecord>(messageKey(sid))).value;

testEveryBackend(
  "merge window - without TRANSCRIBE_URL a voice note never joins: it gets the text-only reply, and the text after it is asked alone",
  async (backend) => {
    await using t = await startTestBridge({ backend, env: { MERGE_WINDOW_MS: WINDOW } });
    await t.sendWhatsApp(voiceNote(t.twilio.addMedia(OGG, "audio/ogg")));
    await sendPieces(t, "by region");
    const replies = await t.twilio.waitForMessages(USER, 2);
    assert.deepEqual(replies.map((r) => r.body), [REPLIES.notText, "Answer to: by region"]);
    assert.deepEqual(t.ayd.asks.map((a) => a.question), ["by region"]);
    assert.equal(t.twilio.mediaRequests, 0, "nothing to hear it with: not fetched");
    assert.equal(logEvents(t.logs, "question.joined").length, 0);
  },
);

testEveryBackend(
  "merge window - without TRANSCRIBE_URL a voice note after a text does not join it: the text is asked as typed, then the voice note gets its own reply",
  async (backend) => {
    await using t = await startTestBridge({ backend, env: { MERGE_WINDOW_MS: WINDOW } });
    const [text] = await sendPieces(t, "sales");
    const voiceSid = newMessageSid();
    await t.sendWhatsApp({
      ...voiceNote(t.twilio.addMedia(OGG, "audio/ogg")),
      MessageSid: voiceSid,
    });
    const replies = await t.twilio.waitForMessages(USER, 2);
    assert.deepEqual(replies.map((r) => r.body), ["Answer to: sales", REPLIES.notText]);
    assert.deepEqual(t.ayd.asks.map((a) => a.question), ["sales"]);
    await waitFor(async () => (await recordOf(t, voiceSid))?.state === "answered", "answered");
    const voice = (await recordOf(t, voiceSid))!;
    assert.equal(voice.outcome, "not_text");
    assert.equal(voice.mergedInto, undefined);
    assert.equal((await recordOf(t, text))!.merged, undefined);
  },
);

testEverySetting(
  "merge window - without TRANSCRIBE_URL a lone voice note gets the text-only reply, and AYD is not contacted for it",
  async (backend, mode) => {
    await using t = await startTestBridge({ backend, mode, env: { MERGE_WINDOW_MS: WINDOW } });
    await t.sendWhatsApp(voiceNote(t.twilio.addMedia(OGG, "audio/ogg")));
    const [reply] = await t.twilio.waitForMessages(USER, 1);
    assert.equal(reply.body, REPLIES.notText);
    assert.equal(t.ayd.asks.length, 0);
    assert.equal(
      conversationsOpened(t),
      0,
      "no session or chat opened for a reply AYD has no part in",
    );
  },
);
