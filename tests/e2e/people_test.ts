/**
 * The people directory through the real app: each person asks AYD as
 * themselves (row-level context reaching AYD in both modes), a change takes
 * effect on their next question, and without ALLOWED_NUMBERS a directory
 * that is not empty lists who may ask.
 */
import assert from "node:assert/strict";
import type { MessageRecord } from "../../src/jobs/mod.ts";
import { importPeopleCsv, writeDirectory } from "../../src/people/mod.ts";
import {
  conversationsOpened,
  logEvents,
  startTestBridge,
  type TestBridge,
  testEverySetting,
  testKv,
  waitFor,
} from "../_helpers.ts";

const ADA = "whatsapp:+15551234567";
const BOB = "whatsapp:+15557654321";
const MALLORY = "whatsapp:+15559999999";
const DENIED = "Sorry, this service is only available to registered users.";

const PEOPLE = "phone_number,name,email,properties\r\n" +
  '+15551234567,Ada Lovelace,ada@example.com,"{""region"":""north-east"",""customer_id"":17}"\r\n' +
  "+15557654321,Bob Byte,bob@example.com,\r\n";

/** The context variables AYD was given for each ask (chat mode) or session (session mode). */
function contexts(t: TestBridge) {
  return t.config.aydMode === "chat"
    ? t.ayd.asks.map((a) => a.properties)
    : t.ayd.sessions.map(({ name, email, properties }) => ({ name, email, properties }));
}

testEverySetting(
  "identity - a person imported with properties asks AYD as that person; a number not in the directory as before",
  async (backend, mode) => {
    await using t = await startTestBridge({
      backend,
      mode,
      env: { ALLOWED_NUMBERS: "+15551234567,+15559999999" },
    });
    await importPeopleCsv(t.kv, PEOPLE, { now: Date.now() });
    await t.sendWhatsApp({ From: ADA, Body: "my open orders?" });
    await t.twilio.waitForMessages(ADA, 1);
    await t.sendWhatsApp({ From: MALLORY, Body: "all orders?" });
    await t.twilio.waitForMessages(MALLORY, 1);
    const ada = { name: "Ada Lovelace", email: "ada@example.com" };
    const properties = { region: "north-east", customer_id: 17 };
    assert.deepEqual(
      contexts(t),
      mode === "chat" ? [{ ...properties, ...ada }, undefined] : [
        { ...ada, properties },
        {
          name: "WhatsApp User +15559999999",
          email: "wa15559999999@example.com",
          properties: undefined,
        },
      ],
    );
    const logs = t.logs.join("\n");
    for (const secret of ["Ada Lovelace", "ada@example.com", "north-east", "customer_id"]) {
      assert.ok(!logs.includes(secret), `logs contain ${secret}`);
    }
  },
);

testEverySetting(
  "identity - changed properties count from the next question: the conversation opened with the old ones is replaced",
  async (backend, mode) => {
    await using t = await startTestBridge({ backend, mode });
    await importPeopleCsv(t.kv, PEOPLE, { now: Date.now() });
    await t.sendWhatsApp({ From: ADA, Body: "q1" });
    await t.twilio.waitForMessages(ADA, 1);
    await t.sendWhatsApp({ From: ADA, Body: "q2" });
    await t.twilio.waitForMessages(ADA, 2);
    assert.equal(conversationsOpened(t), 1, "unchanged: the same conversation");

    // The operator moves Ada to another region, as an import or the console would.
    await writeDirectory(t.kv, [["+15551234567", {
      name: "Ada Lovelace",
      email: "ada@example.com",
      properties: { region: "south", customer_id: 17 },
      updatedAt: Date.now(),
    }]]);
    await t.sendWhatsApp({ From: ADA, Body: "q3" });
    const replies = await t.twilio.waitForMessages(ADA, 3);
    assert.equal(replies[2].body, "Answer to: q3");
    assert.equal(conversationsOpened(t), 2, "a new conversation with the new context");
    const last = contexts(t).at(-1) as Record<string, unknown>;
    const region = mode === "chat" ? last.region : (last.properties as { region: string }).region;
    assert.equal(region, "south");
    if (mode === "chat") assert.notEqual(t.ayd.asks[2].chatid, t.ayd.asks[1].chatid);
    else assert.notEqual(t.ayd.asks[2].token, t.ayd.asks[1].token);
  },
);

testEverySetting(
  "directory - a person removed while their question waits is not asked: the refusal, once",
  async (backend, mode) => {
    await using t = await startTestBridge({ backend, mode });
    await importPeopleCsv(t.kv, PEOPLE, { now: Date.now() });
    const { promise: release, resolve } = Promise.withResolvers<void>();
    t.ayd.onAsk(async ({ question }) => {
      if (question === "first") await release;
      return { kind: "answer", text: `a-${question}` };
    });
    await t.sendWhatsApp({ From: ADA, Body: "first" });
    await waitFor(() => t.ayd.asks.length === 1, "the first question to be asked");
    await t.sendWhatsApp({ From: ADA, Body: "second, queued" });
    await writeDirectory(t.kv, [["+15551234567", null]]);
    resolve();
    const replies = await t.twilio.waitForMessages(ADA, 2);
    assert.deepEqual(replies.map((r) => r.body), ["a-first", DENIED]);
    assert.equal(t.ayd.asks.length, 1, "the queued question never reached AYD");
    assert.equal(logEvents(t.logs, "ask.refused")[0].reason, "not_in_directory");
  },
);

Deno.test("directory - without ALLOWED_NUMBERS only its people may ask, start-up says so, and an import counts from the next message", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await using store = await testKv("kv-queue", dir);
    {
      using kv = await Deno.openKv(`${dir}/bridge.kv`);
      await importPeopleCsv(kv, PEOPLE, { now: Date.now() });
    }
    await using t = await startTestBridge({ kv: store });
    await waitFor(() => logEvents(t.logs, "config.directory_only").length === 1, "the notice");
    assert.equal(logEvents(t.logs, "config.directory_only")[0].people, 2);
    assert.equal(logEvents(t.logs, "config.everyone_allowed").length, 0);

    await t.sendWhatsApp({ From: MALLORY, Body: "all customers' revenue?" });
    const [refusal] = await t.twilio.waitForMessages(MALLORY, 1);
    assert.equal(refusal.body, DENIED);
    await t.sendWhatsApp({ From: BOB, Body: "my orders?" });
    await t.twilio.waitForMessages(BOB, 1);
    assert.deepEqual(t.ayd.asks.map((a) => a.question), ["my orders?"]);
    const records = await Array.fromAsync(t.kv.list<MessageRecord>({ prefix: ["messages"] }));
    const refused = records.find((r) => r.value.phone === "+15559999999")!.value;
    assert.deepEqual([refused.body, refused.outcome], ["", "denied"], "its text is not kept");

    // Imported while the service runs: Mallory's next message is asked.
    await importPeopleCsv(
      t.kv,
      "phone_number,name,email\r\n+15559999999,Mal Lory,mal@example.com\r\n",
      {
        now: Date.now(),
      },
    );
    await t.sendWhatsApp({ From: MALLORY, Body: "my orders?" });
    const replies = await t.twilio.waitForMessages(MALLORY, 2);
    assert.equal(replies[1].body, "Answer to: my orders?");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("directory - empty, everyone may ask and start-up warns, as before", async () => {
  await using t = await startTestBridge();
  await waitFor(() => logEvents(t.logs, "config.everyone_allowed").length === 1, "the warning");
  await t.sendWhatsApp({ From: MALLORY });
  await t.twilio.waitForMessages(MALLORY, 1);
  assert.equal(t.ayd.asks.length, 1);
});
