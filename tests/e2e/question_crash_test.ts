/**
 * `main.ts` killed (SIGKILL) while a question is being put together: after
 * a voice note's transcript was saved, and while pieces wait in the merge
 * window. Restarted on the same KV, nothing is lost and nothing is done twice.
 */
import assert from "node:assert/strict";
import { messageKey, type MessageRecord } from "../../src/jobs/mod.ts";
import { type FakeAyd, startFakeAyd } from "../fakes/fake_ayd.ts";
import { type FakeStt, startFakeStt } from "../fakes/fake_stt.ts";
import { type FakeTwilio, startFakeTwilio } from "../fakes/fake_twilio.ts";
import {
  ACCOUNT_SID,
  API_KEY,
  AUTH_TOKEN,
  CHAT_ID,
  newMessageSid,
  OGG_VOICE_NOTE,
  postForm,
  sign,
  type TestBackend,
  testEnv,
  testEveryBackend,
  testKv,
  voiceNoteParams,
  waitFor,
  whatsAppParams,
} from "../_helpers.ts";
import { freePort, startMain } from "../_process.ts";

const USER = "whatsapp:+15551234567";
/** Words that appear nowhere else, so a log line holding them is a leak. */
const SPOKEN = "how many zebra-crossing orders shipped late last week?";

interface Services {
  ayd: FakeAyd;
  twilio: FakeTwilio;
  stt: FakeStt;
  env: Record<string, string>;
  /** Posts a signed webhook with `params` to `url`; its MessageSid. */
  send(url: string, params: Record<string, string>): Promise<string>;
  /** The message records, read from the KV once the processes are gone. */
  records(sids: string[]): Promise<MessageRecord[]>;
}

async function withServices(
  backend: TestBackend,
  env: Record<string, string>,
  fn: (services: Services) => Promise<void>,
) {
  await using ayd = await startFakeAyd({ apiKey: API_KEY, chatId: CHAT_ID });
  await using twilio = await startFakeTwilio({ accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN });
  await using stt = await startFakeStt({ transcript: SPOKEN });
  const dir = await Deno.makeTempDir();
  await using kv = await testKv(backend, dir);
  const fullEnv = testEnv({
    AYD_BASE_URL: ayd.url,
    TWILIO_API_BASE_URL: twilio.url,
    TRANSCRIBE_URL: stt.url,
    ...kv.env,
    JOB_LEASE_MS: "1000",
    PORT: String(freePort()),
    LOG_LEVEL: "debug",
    ...env,
  });
  const send = async (url: string, overrides: Record<string, string>) => {
    const params = whatsAppParams({ MessageSid: newMessageSid(), ...overrides });
    const response = await postForm(url, params, { "x-twilio-signature": sign(params) });
    assert.equal(response.status, 200);
    await response.body?.cancel();
    return params.MessageSid;
  };
  const records = async (sids: string[]) => {
    using store = await Deno.openKv(kv.server?.url ?? `${dir}/bridge.kv`);
    const found = await store.getMany<MessageRecord[]>(sids.map(messageKey));
    return found.map((entry) => entry.value!);
  };
  try {
    await fn({ ayd, twilio, stt, env: fullEnv, send, records });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Where the echo of the saved transcript was when the process died. */
const ECHO_AT_KILL = [
  {
    when: "as its echo reached Twilio (created, never acknowledged)",
    then: "the echo is found in Twilio's list, not sent again",
    hold: (twilio: FakeTwilio) => twilio.answerLate(1),
    reached: (twilio: FakeTwilio) => twilio.messages.length === 1,
  },
  {
    when: "while its echo was on the way to Twilio (never arrived)",
    then: "the echo is sent once",
    hold: (twilio: FakeTwilio) => twilio.holdAttempt(1),
    reached: (twilio: FakeTwilio) => twilio.attempts === 1,
  },
];

for (const echo of ECHO_AT_KILL) {
  testEveryBackend(
    `crash - killed after a voice note's transcript was saved, ${echo.when}: restarted, the audio is not transcribed again and ${echo.then}`,
    async (backend) => {
      await withServices(backend, {}, async ({ ayd, twilio, stt, env, send, records }) => {
        // The echo is the first message sent, right after the transcript is saved.
        echo.hold(twilio);
        const media = twilio.addMedia(OGG_VOICE_NOTE, "audio/ogg");
        let sid: string;
        let before: string;
        {
          await using main = await startMain(env);
          sid = await send(main.url, voiceNoteParams(media));
          await waitFor(() => echo.reached(twilio), "the echo's send");
          main.kill("SIGKILL");
          assert.notEqual(await main.exited, 0);
          before = main.output();
        }
        assert.equal(stt.requests.length, 1);
        assert.equal(ayd.asks.length, 0);

        await using again = await startMain(env);
        const replies = await twilio.waitForMessages(USER, 2);
        assert.equal((await again.stop("SIGTERM")).code, 0);
        assert.deepEqual(replies.map((r) => r.body), [`🎤 _${SPOKEN}_`, `Answer to: ${SPOKEN}`]);
        assert.equal(twilio.messages.length, 2, "the echo once, then the answer");
        assert.equal(stt.requests.length, 1, "the saved transcript was used");
        assert.deepEqual(ayd.asks.map((a) => a.question), [SPOKEN]);
        const [record] = await records([sid]);
        assert.equal(record.state, "answered");
        assert.equal(record.transcript, SPOKEN);
        for (const output of [before, again.output()]) {
          assert.ok(!output.includes("zebra-crossing"), "the transcript was logged");
          assert.ok(!output.includes("Signature="), "a media URL's query was logged");
        }
      });
    },
  );
}

testEveryBackend(
  "crash - killed while pieces wait in the merge window: restarted, every piece is asked, as one question, answered once",
  async (backend) => {
    // Long enough that the kill, right after the pieces are posted, falls inside it.
    const env = { MERGE_WINDOW_MS: "3000" };
    await withServices(backend, env, async ({ ayd, twilio, env, send, records }) => {
      const bodies = ["sales last month", "by region", "only Europe"];
      const sids: string[] = [];
      {
        await using main = await startMain(env);
        sids.push(await send(main.url, { Body: bodies[0] }));
        // "typing…" shows the first piece's job running: it waits in the window.
        await waitFor(() => twilio.typing.some((x) => x.messageId === sids[0]), "typing");
        for (const body of bodies.slice(1)) sids.push(await send(main.url, { Body: body }));
        main.kill("SIGKILL");
        assert.notEqual(await main.exited, 0);
      }
      assert.equal(ayd.asks.length, 0, "killed before asking");
      assert.equal(twilio.messages.length, 0);

      await using again = await startMain(env);
      const [reply] = await twilio.waitForMessages(USER, 1);
      assert.equal((await again.stop("SIGTERM")).code, 0);
      const question = bodies.join("\n");
      assert.equal(reply.body, `Answer to: ${question}`);
      assert.deepEqual(ayd.asks.map((a) => a.question), [question]);
      assert.equal(twilio.messages.length, 1);
      const [head, ...pieces] = await records(sids);
      assert.equal(head.state, "answered");
      assert.deepEqual(head.merged, sids.slice(1));
      for (const piece of pieces) {
        assert.equal(piece.state, "answered");
        assert.equal(piece.mergedInto, sids[0]);
      }
    });
  },
);
