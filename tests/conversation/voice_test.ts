/**
 * Voice notes through the real app: the medium fetched from fake Twilio
 * (Basic auth on its API host, then a redirect to a media host that fails
 * the test if Twilio's credentials ever reach it), transcribed by the fake
 * speech-to-text server, echoed and asked; and every way that goes wrong.
 */
import assert from "node:assert/strict";
import { REPLIES } from "../../src/conversation/answer.ts";
import {
  type DeadLetter,
  deadLetterKey,
  messageKey,
  type MessageRecord,
} from "../../src/jobs/mod.ts";
import { type FakeStt, startFakeStt } from "../fakes/fake_stt.ts";
import {
  ACCOUNT_SID,
  AUTH_TOKEN,
  logEvents,
  newMessageSid,
  OGG_VOICE_NOTE,
  startTestBridge,
  type TestBackend,
  type TestBridge,
  testEveryBackend,
  testEverySetting,
  voiceNoteParams,
  waitFor,
} from "../_helpers.ts";
import { freePort } from "../_process.ts";
import type { AydMode } from "../../src/config.ts";

const USER = "whatsapp:+15551234567";
const STT_KEY = "stt-test-key-4f2a9c";
/** Words that appear nowhere else, so a log line holding them is a leak. */
const SPOKEN = "how many zebra-crossing orders shipped late last week?";

/** A bridge whose `TRANSCRIBE_URL` is a fake speech-to-text server. */
async function withStt(
  options: { backend?: TestBackend; mode?: AydMode; env?: Record<string, string> },
  fn: (t: TestBridge, stt: FakeStt) => Promise<void>,
) {
  await using stt = await startFakeStt({ apiKey: STT_KEY, transcript: SPOKEN });
  await using t = await startTestBridge({
    backend: options.backend,
    mode: options.mode,
    env: { TRANSCRIBE_URL: stt.url, TRANSCRIBE_API_KEY: STT_KEY, ...options.env },
  });
  await fn(t, stt);
}

/** Sends a voice note served by fake Twilio; its sid and media URL. */
async function sendVoiceNote(t: TestBridge, bytes = OGG_VOICE_NOTE) {
  const sid = newMessageSid();
  const url = t.twilio.addMedia(bytes, "audio/ogg");
  const response = await t.sendWhatsApp(voiceNoteParams(url, { MessageSid: sid }));
  assert.equal(response.status, 200);
  await response.body?.cancel();
  return { sid, url };
}

/** Fails if a log line holds the query of `url` (the signature of a short-lived URL). */
function assertQueryNotLogged(t: TestBridge, url: string) {
  const query = new URL(url).search.slice(1);
  if (query === "") return;
  assert.ok(!t.logs.some((line) => line.includes(query)), "a log line holds the query");
  for (const [name, value] of new URLSearchParams(query)) {
    // A timestamp's digits may well appear in a log line; a signature may not.
    if (value.length < 6 || /^\d+$/.test(value)) continue;
    assert.ok(!t.logs.some((line) => line.includes(value)), `a log line holds ${name}`);
  }
}

const recordOf = async (t: TestBridge, sid: string) =>
  (await t.kv.get<MessageRecord>(messageKey(sid))).value;

/** Waits until `sid` is answered (or a dead letter) and returns its record. */
async function finished(t: TestBridge, sid: string): Promise<MessageRecord> {
  await waitFor(async () => {
    const state = (await recordOf(t, sid))?.state;
    return state === "answered" || state === "failed";
  }, `${sid} to finish`);
  return (await recordOf(t, sid))!;
}

testEverySetting(
  "voice note - fetched with Basic auth from Twilio's API host, followed to the media host without it, transcribed once; the person reads the transcript, then the answer",
  async (backend, mode) => {
    await withStt({ backend, mode }, async (t, stt) => {
      const { sid } = await sendVoiceNote(t);
      const replies = await t.twilio.waitForMessages(USER, 2);
      assert.deepEqual(replies.map((r) => r.body), [`🎤 _${SPOKEN}_`, `Answer to: ${SPOKEN}`]);
      assert.deepEqual(t.ayd.asks.map((a) => a.question), [SPOKEN]);
      // Fetched once: Twilio's API host with the credentials, its redirect without them.
      assert.equal(t.twilio.mediaRequests, 1);
      assert.equal(t.twilio.mediaHost.requests, 1);
      assert.deepEqual(t.twilio.mediaHost.violations, []);
      // Transcribed once, the bytes as Twilio served them, with the service's own key only.
      assert.equal(stt.attempts, 1);
      const [heard] = stt.requests;
      assert.deepEqual(heard.bytes, OGG_VOICE_NOTE);
      assert.equal(heard.filename, "voice.ogg");
      assert.equal(heard.model, "whisper-1");
      assert.equal(heard.authorization, `Bearer ${STT_KEY}`);
      const twilioBasic = btoa(`${ACCOUNT_SID}:${AUTH_TOKEN}`);
      assert.ok(!heard.authorization?.includes(twilioBasic));
      const record = await finished(t, sid);
      assert.equal(record.state, "answered");
      assert.equal(record.transcript, SPOKEN);
      assert.equal(logEvents(t.logs, "voice.heard").length, 1);
    });
  },
);

testEveryBackend(
  "voice note - answered in order with the typed messages around it",
  async (backend) => {
    await withStt({ backend }, async (t) => {
      await t.sendWhatsApp({ Body: "first question" });
      await sendVoiceNote(t);
      await t.sendWhatsApp({ Body: "last question" });
      const replies = await t.twilio.waitForMessages(USER, 4);
      assert.deepEqual(replies.map((r) => r.body), [
        "Answer to: first question",
        `🎤 _${SPOKEN}_`,
        `Answer to: ${SPOKEN}`,
        "Answer to: last question",
      ]);
      assert.deepEqual(t.ayd.asks.map((a) => a.question), [
        "first question",
        SPOKEN,
        "last question",
      ]);
    });
  },
);

Deno.test(
  "voice note - log lines never hold the transcript, Twilio's media URL query or the credentials",
  async () => {
    await withStt({}, async (t) => {
      const { sid, url } = await sendVoiceNote(t);
      await t.twilio.waitForMessages(USER, 2);
      await finished(t, sid);
      assert.ok(logEvents(t.logs, "voice.heard").length === 1);
      const words = SPOKEN.split(" ").filter((word) => word.length > 8);
      for (const word of ["zebra-crossing", ...words]) {
        assert.ok(!t.logs.some((line) => line.includes(word)), `"${word}" logged`);
      }
      // Where Twilio redirected the bridge: the query is the short-lived URL's signature.
      const redirect = await fetch(url, {
        headers: { authorization: `Basic ${btoa(`${ACCOUNT_SID}:${AUTH_TOKEN}`)}` },
        redirect: "manual",
      });
      await redirect.body?.cancel();
      const location = redirect.headers.get("location")!;
      assert.match(location, /Signature=/);
      assertQueryNotLogged(t, location);
      for (const secret of [AUTH_TOKEN, STT_KEY, "Signature=", "Expires="]) {
        assert.ok(!t.logs.some((line) => line.includes(secret)), `${secret} logged`);
      }
    });
  },
);

Deno.test(
  "voice note - a media URL on another host is refused before any request: nothing fetched, the refusal logged without the URL's query, the person asked to try again or type",
  async () => {
    let hits = 0;
    const foreign = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
      hits++;
      return new Response("OggS", { headers: { "content-type": "audio/ogg" } });
    });
    try {
      await withStt({}, async (t, stt) => {
        const url = `http://127.0.0.1:${foreign.addr.port}/2010-04-01/Accounts/${ACCOUNT_SID}` +
          "/Messages/MM1/Media/ME1?Signature=forged-signature-77";
        const sid = newMessageSid();
        await t.sendWhatsApp(voiceNoteParams(url, { MessageSid: sid }));
        const [reply] = await t.twilio.waitForMessages(USER, 1);
        assert.equal(reply.body, REPLIES.voiceUnclear);
        const record = await finished(t, sid);
        assert.equal(record.outcome, "not_understood");
        assert.equal(hits, 0, "no request to the foreign host");
        assert.equal(t.twilio.mediaRequests, 0);
        assert.equal(stt.attempts, 0);
        assert.equal(t.ayd.asks.length, 0);
        const [failed] = logEvents(t.logs, "voice.failed");
        assert.equal(failed.kind, "foreign_host");
        assert.equal(failed.message_sid, sid);
        assertQueryNotLogged(t, url);
        assert.ok(!t.logs.some((line) => line.includes("forged-signature-77")));
      });
    } finally {
      await foreign.shutdown();
    }
  },
);

Deno.test(
  "voice note - larger than MAX_MEDIA_BYTES, announced or only counted while it streams: the 'too long' reply, never transcribed",
  async () => {
    await withStt({ env: { MAX_MEDIA_BYTES: "100" } }, async (t, stt) => {
      const announced = await sendVoiceNote(t);
      const [first] = await t.twilio.waitForMessages(USER, 1);
      assert.equal(first.body, REPLIES.voiceTooLong);
      await finished(t, announced.sid);
      // No Content-Length: only the running count sees the size.
      t.twilio.mediaHost.behave({ chunked: true });
      const streamed = await sendVoiceNote(t);
      const replies = await t.twilio.waitForMessages(USER, 2);
      assert.equal(replies[1].body, REPLIES.voiceTooLong);
      await finished(t, streamed.sid);
      assert.equal(stt.attempts, 0);
      assert.equal(t.ayd.asks.length, 0);
      assert.deepEqual(logEvents(t.logs, "voice.failed").map((e) => e.kind), [
        "too_large",
        "too_large",
      ]);
      assertQueryNotLogged(t, announced.url);
    });
  },
);

Deno.test(
  "voice note - transcription service down (connection refused): the person asked to try again or type, and a dead letter kept",
  async () => {
    await using t = await startTestBridge({
      env: { TRANSCRIBE_URL: `http://127.0.0.1:${freePort()}` },
    });
    const { sid } = await sendVoiceNote(t);
    const [reply] = await t.twilio.waitForMessages(USER, 1);
    assert.equal(reply.body, REPLIES.voiceUnclear);
    const record = await finished(t, sid);
    assert.equal(record.state, "failed");
    const letter = (await t.kv.get<DeadLetter>(deadLetterKey(sid))).value;
    assert.ok(letter, "a dead letter: the failure is the bridge's, not the voice note's");
    assert.equal(logEvents(t.logs, "voice.failed")[0].kind, "network");
    assert.equal(t.ayd.asks.length, 0);
  },
);

Deno.test(
  "voice note - transcription slower than TRANSCRIBE_TIMEOUT_MS: given up, the person asked to try again or type",
  async () => {
    await withStt({ env: { TRANSCRIBE_TIMEOUT_MS: "1000" } }, async (t, stt) => {
      stt.failNext({ hang: true });
      const { sid } = await sendVoiceNote(t);
      const [reply] = await t.twilio.waitForMessages(USER, 1);
      assert.equal(reply.body, REPLIES.voiceUnclear);
      await finished(t, sid);
      assert.equal(logEvents(t.logs, "voice.failed")[0].kind, "timeout");
      assert.equal(t.ayd.asks.length, 0);
    });
  },
);

Deno.test(
  "voice note - the service refuses it (400, or 401 for the key): not retried, the person asked to try again or type, and the service's message (which repeats part of the key) never logged",
  async () => {
    // A retry budget, so that only the kind of failure decides: these are final.
    await withStt({ env: { JOB_RETRY_BUDGET_MS: "60000" } }, async (t, stt) => {
      stt.failNext(
        { status: 400, message: "Audio file might be corrupted or unsupported" },
        {
          status: 401,
          code: "invalid_api_key",
          message: "Incorrect API key provided: st***9c. You can find your API key at …",
        },
      );
      const bad = await sendVoiceNote(t);
      const [first] = await t.twilio.waitForMessages(USER, 1);
      assert.equal(first.body, REPLIES.voiceUnclear);
      assert.equal((await finished(t, bad.sid)).outcome, "not_understood");
      const refused = await sendVoiceNote(t);
      const replies = await t.twilio.waitForMessages(USER, 2);
      assert.equal(replies[1].body, REPLIES.voiceUnclear);
      await finished(t, refused.sid);
      assert.equal(stt.attempts, 2, "one request each: neither was retried");
      assert.equal(t.ayd.asks.length, 0);
      assert.deepEqual(logEvents(t.logs, "voice.failed").map((e) => e.kind), [
        "http",
        "unauthorized",
      ]);
      for (const leak of ["corrupted", "Incorrect API key", "st***9c"]) {
        assert.ok(!t.logs.some((line) => line.includes(leak)), `"${leak}" logged`);
      }
    });
  },
);

Deno.test(
  "voice note - an empty transcript (silence, [BLANK_AUDIO]) is not asked: the person asked to try again or type",
  async () => {
    await withStt({}, async (t, stt) => {
      stt.failNext({ transcript: "" }, { transcript: "[BLANK_AUDIO]" });
      const silent = await sendVoiceNote(t);
      await t.twilio.waitForMessages(USER, 1);
      await finished(t, silent.sid);
      const blank = await sendVoiceNote(t);
      const replies = await t.twilio.waitForMessages(USER, 2);
      await finished(t, blank.sid);
      assert.deepEqual(replies.map((r) => r.body), [REPLIES.voiceUnclear, REPLIES.voiceUnclear]);
      assert.equal(t.ayd.asks.length, 0);
      assert.equal(stt.attempts, 2);
    });
  },
);

testEveryBackend(
  "voice note - a transient 503 from the transcription service is retried, then the voice note is echoed and answered",
  async (backend) => {
    await withStt({ backend, env: { JOB_RETRY_BUDGET_MS: "60000" } }, async (t, stt) => {
      stt.failNext({ status: 503 });
      const { sid } = await sendVoiceNote(t);
      const replies = await t.twilio.waitForMessages(USER, 2);
      assert.deepEqual(replies.map((r) => r.body), [`🎤 _${SPOKEN}_`, `Answer to: ${SPOKEN}`]);
      assert.equal(stt.attempts, 2);
      assert.deepEqual(t.ayd.asks.map((a) => a.question), [SPOKEN]);
      const record = await finished(t, sid);
      assert.equal(record.state, "answered");
      assert.equal(logEvents(t.logs, "job.retry_scheduled").length, 1);
      assert.equal(logEvents(t.logs, "voice.failed")[0].kind, "http");
    });
  },
);
