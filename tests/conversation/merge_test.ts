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
import { COMMAND_REPLIES } from "../../src/conversation/commands.ts";
import { messageKey, type MessageRecord } from "../../src/jobs/mod.ts";
import { startFakeStt } from "../fakes/fake_stt.ts";
import {
  conversationsOpened,
  logEvents,
  newMessageSid,
  OGG_VOICE_NOTE,
  startTestBridge,
  type TestBridge,
  testEveryBackend,
  testEverySetting,
  voiceNoteParams,
  waitFor,
} from "../_helpers.ts";

const USER = "whatsapp:+15551234567";
/** Far longer than posting a few webhooks takes, short enough for a test to wait out. */
const WINDOW = "1000";

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
    await t.sendWhatsApp(voiceNoteParams(t.twilio.addMedia(OGG_VOICE_NOTE, "audio/ogg")));
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
      ...voiceNoteParams(t.twilio.addMedia(OGG_VOICE_NOTE, "audio/ogg")),
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
    await t.sendWhatsApp(voiceNoteParams(t.twilio.addMedia(OGG_VOICE_NOTE, "audio/ogg")));
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

/**
 * Posts the first piece, waits until its job shows "typing…" (it is waiting
 * in the window: the person sees the wait at once), then posts the rest.
 */
async function sendWhileWaiting(t: TestBridge, ...bodies: string[]): Promise<string[]> {
  const [head] = await sendPieces(t, bodies[0]);
  await waitFor(() => t.twilio.typing.some((x) => x.messageId === head), "typing for the first");
  return [head, ...await sendPieces(t, ...bodies.slice(1))];
}

/** Posts a message and waits for its answer: nothing queued before it is left to happen. */
async function barrier(t: TestBridge, replies: number) {
  await sendPieces(t, "and one more thing");
  const all = await t.twilio.waitForMessages(USER, replies);
  assert.equal(all.at(-1)!.body, "Answer to: and one more thing");
}

testEverySetting(
  "merge window - one piece is asked as typed once the window has passed, with typing shown before AYD is asked",
  async (backend, mode) => {
    await using t = await startTestBridge({ backend, mode, env: { MERGE_WINDOW_MS: WINDOW } });
    let typingWhenAsked: string[] = [];
    t.ayd.onAsk(({ question }) => {
      typingWhenAsked = t.twilio.typing.map((x) => x.messageId);
      return { kind: "answer", text: `Answer to: ${question}` };
    });
    const [sid] = await sendPieces(t, "sales last month");
    const [reply] = await t.twilio.waitForMessages(USER, 1);
    assert.equal(reply.body, "Answer to: sales last month");
    assert.deepEqual(t.ayd.asks.map((a) => a.question), ["sales last month"]);
    assert.deepEqual(typingWhenAsked, [sid]);
    await waitFor(async () => (await recordOf(t, sid))?.state === "answered", "answered");
    const record = (await recordOf(t, sid))!;
    assert.equal(record.merged, undefined);
    assert.equal(record.question, undefined, "its own text is its question");
    assert.equal(logEvents(t.logs, "question.joined").length, 0);
  },
);

for (
  const bodies of [["sales last month", "by region"], [
    "sales last month",
    "by region",
    "only Europe",
  ]]
) {
  testEverySetting(
    `merge window - ${bodies.length} pieces typed in a row are asked as one question, one line each, answered once; every MessageSid is answered and a redelivery of any is a duplicate`,
    async (backend, mode) => {
      await using t = await startTestBridge({ backend, mode, env: { MERGE_WINDOW_MS: WINDOW } });
      const sids = await sendWhileWaiting(t, ...bodies);
      const [reply] = await t.twilio.waitForMessages(USER, 1);
      assert.equal(reply.body, `Answer to: ${bodies.join("\n")}`);
      assert.deepEqual(t.ayd.asks.map((a) => a.question), [bodies.join("\n")]);
      await waitFor(
        async () =>
          (await Promise.all(sids.map((sid) => recordOf(t, sid)))).every((r) =>
            r?.state === "answered"
          ),
        "every piece answered",
      );
      const [head, ...pieces] = await Promise.all(
        sids.map(async (sid) => (await recordOf(t, sid))!),
      );
      assert.deepEqual(head.merged, sids.slice(1));
      assert.equal(head.outcome, "answered");
      for (const piece of pieces) {
        assert.equal(piece.outcome, "merged");
        assert.equal(piece.mergedInto, sids[0]);
      }
      assert.deepEqual(
        logEvents(t.logs, "question.joined").map((e) => [e.message_sid, e.pieces]),
        [[sids[0], bodies.length]],
      );
      // Twilio retries a webhook it did not see answered: every piece is known.
      for (const [i, sid] of sids.entries()) {
        const again = await t.sendWhatsApp({ Body: bodies[i], MessageSid: sid });
        assert.equal(again.status, 200);
        await again.body?.cancel();
      }
      assert.deepEqual(
        logEvents(t.logs, "webhook.duplicate").map((e) => e.message_sid),
        sids,
      );
      await barrier(t, 2);
      assert.equal(t.ayd.asks.length, 2, "the pieces were not asked again");
      assert.equal(t.twilio.messages.length, 2, "one answer for the pieces, one for the next");
    },
  );
}

testEveryBackend(
  "merge window - a command in the middle is never joined: the pieces around it are asked apart, and each gets its reply in order",
  async (backend) => {
    await using t = await startTestBridge({ backend, env: { MERGE_WINDOW_MS: WINDOW } });
    await sendWhileWaiting(t, "sales last month", "help", "by region");
    const replies = await t.twilio.waitForMessages(USER, 3);
    assert.deepEqual(replies.map((r) => r.body), [
      "Answer to: sales last month",
      COMMAND_REPLIES.help,
      "Answer to: by region",
    ]);
    assert.deepEqual(t.ayd.asks.map((a) => a.question), ["sales last month", "by region"]);
  },
);

testEverySetting(
  "merge window - reset in the middle is never joined: the piece before it is asked in the old conversation, the piece after it in a new one",
  async (backend, mode) => {
    await using t = await startTestBridge({ backend, mode, env: { MERGE_WINDOW_MS: WINDOW } });
    await sendWhileWaiting(t, "sales last month", "reset", "by region");
    const replies = await t.twilio.waitForMessages(USER, 3);
    assert.deepEqual(replies.map((r) => r.body), [
      "Answer to: sales last month",
      COMMAND_REPLIES.reset,
      "Answer to: by region",
    ]);
    assert.deepEqual(t.ayd.asks.map((a) => a.question), ["sales last month", "by region"]);
    assert.equal(conversationsOpened(t), 2);
  },
);

testEveryBackend(
  "merge window - a command first is answered alone, never joined to the pieces after it, which are one question",
  async (backend) => {
    await using t = await startTestBridge({ backend, env: { MERGE_WINDOW_MS: WINDOW } });
    await sendPieces(t, "help", "sales last month", "by region");
    const replies = await t.twilio.waitForMessages(USER, 2);
    assert.deepEqual(replies.map((r) => r.body), [
      COMMAND_REPLIES.help,
      "Answer to: sales last month\nby region",
    ]);
  },
);

testEverySetting(
  "merge window - a piece that arrives once asking began is not lost: it becomes the next question",
  async (backend, mode) => {
    await using t = await startTestBridge({ backend, mode, env: { MERGE_WINDOW_MS: WINDOW } });
    const { promise: released, resolve: release } = Promise.withResolvers<void>();
    t.ayd.onAsk(async ({ question }) => {
      if (question === "sales last month") await released;
      return { kind: "answer", text: `Answer to: ${question}` };
    });
    const [first] = await sendPieces(t, "sales last month");
    await waitFor(() => t.ayd.asks.length === 1, "asking to begin");
    const [late] = await sendPieces(t, "by region");
    release();
    const replies = await t.twilio.waitForMessages(USER, 2);
    assert.deepEqual(replies.map((r) => r.body), [
      "Answer to: sales last month",
      "Answer to: by region",
    ]);
    assert.deepEqual(t.ayd.asks.map((a) => a.question), ["sales last month", "by region"]);
    assert.equal((await recordOf(t, first))!.merged, undefined);
    await waitFor(async () => (await recordOf(t, late))?.state === "answered", "answered");
    assert.equal((await recordOf(t, late))!.outcome, "answered");
  },
);

testEverySetting(
  "merge window - a voice note among the pieces joins as its transcript: transcribed once, echoed, then the one answer",
  async (backend, mode) => {
    await using stt = await startFakeStt({ transcript: "by region" });
    await using t = await startTestBridge({
      backend,
      mode,
      env: { MERGE_WINDOW_MS: WINDOW, TRANSCRIBE_URL: stt.url },
    });
    const [head] = await sendPieces(t, "sales last month");
    await waitFor(() => t.twilio.typing.some((x) => x.messageId === head), "typing for the first");
    const voiceSid = newMessageSid();
    await t.sendWhatsApp({
      ...voiceNoteParams(t.twilio.addMedia(OGG_VOICE_NOTE, "audio/ogg")),
      MessageSid: voiceSid,
    });
    await sendPieces(t, "only Europe");
    const replies = await t.twilio.waitForMessages(USER, 2);
    const question = "sales last month\nby region\nonly Europe";
    assert.deepEqual(replies.map((r) => r.body), ["🎤 _by region_", `Answer to: ${question}`]);
    assert.deepEqual(t.ayd.asks.map((a) => a.question), [question]);
    assert.equal(stt.requests.length, 1);
    await waitFor(async () => (await recordOf(t, voiceSid))?.state === "answered", "answered");
    const voice = (await recordOf(t, voiceSid))!;
    assert.equal(voice.transcript, "by region");
    assert.equal(voice.mergedInto, head);
    await barrier(t, 3);
    assert.equal(stt.requests.length, 1, "not transcribed again");
  },
);

testEveryBackend(
  "merge window - MERGE_WINDOW_MS=0 asks each message alone",
  async (backend) => {
    await using t = await startTestBridge({ backend, env: { MERGE_WINDOW_MS: "0" } });
    await sendPieces(t, "sales last month", "by region");
    const replies = await t.twilio.waitForMessages(USER, 2);
    assert.deepEqual(replies.map((r) => r.body), [
      "Answer to: sales last month",
      "Answer to: by region",
    ]);
    assert.deepEqual(t.ayd.asks.map((a) => a.question), ["sales last month", "by region"]);
    assert.equal(logEvents(t.logs, "question.joined").length, 0);
  },
);

testEveryBackend(
  "merge window - a voice note that cannot be made out ends the question there: the piece before it is asked without it, it gets its reply in its own turn, and the piece after it is the next question",
  async (backend) => {
    await using stt = await startFakeStt();
    await using t = await startTestBridge({
      backend,
      env: { MERGE_WINDOW_MS: WINDOW, TRANSCRIBE_URL: stt.url },
    });
    // Refused when heard as a piece, and again in its own turn.
    stt.failNext({ status: 400 }, { status: 400 });
    const [head] = await sendPieces(t, "sales last month");
    await waitFor(() => t.twilio.typing.some((x) => x.messageId === head), "typing for the first");
    await t.sendWhatsApp(voiceNoteParams(t.twilio.addMedia(OGG_VOICE_NOTE, "audio/ogg")));
    await sendPieces(t, "only Europe");
    const replies = await t.twilio.waitForMessages(USER, 3);
    assert.deepEqual(replies.map((r) => r.body), [
      "Answer to: sales last month",
      REPLIES.voiceUnclear,
      "Answer to: only Europe",
    ]);
    assert.deepEqual(t.ayd.asks.map((a) => a.question), ["sales last month", "only Europe"]);
    assert.equal(stt.attempts, 2);
  },
);

testEverySetting(
  "merge window - a voice note first is transcribed while the window waits for its pieces, so a piece typed during its transcription still joins it",
  async (backend, mode) => {
    await using stt = await startFakeStt({ transcript: "sales last month" });
    await using t = await startTestBridge({
      backend,
      mode,
      env: { MERGE_WINDOW_MS: WINDOW, TRANSCRIBE_URL: stt.url },
    });
    const voiceSid = newMessageSid();
    await t.sendWhatsApp({
      ...voiceNoteParams(t.twilio.addMedia(OGG_VOICE_NOTE, "audio/ogg")),
      MessageSid: voiceSid,
    });
    // Heard at once, not once the window has passed: the piece below is
    // posted well inside the window that began with the voice note.
    await waitFor(() => stt.requests.length === 1, "the voice note sent to transcription");
    await sendPieces(t, "by region");
    const replies = await t.twilio.waitForMessages(USER, 2);
    assert.deepEqual(replies.map((r) => r.body), [
      "🎤 _sales last month_",
      "Answer to: sales last month\nby region",
    ]);
    assert.deepEqual(t.ayd.asks.map((a) => a.question), ["sales last month\nby region"]);
    await waitFor(async () => (await recordOf(t, voiceSid))?.state === "answered", "answered");
    assert.equal((await recordOf(t, voiceSid))!.merged?.length, 1);
    assert.equal(stt.requests.length, 1);
  },
);
