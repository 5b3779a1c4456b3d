/**
 * Commits whose outcome the bridge cannot know: the KV Connect server
 * applies a commit and then answers 503, or its connection drops before the
 * answer. Deno's client sends the same body again (denokv `remote/lib.rs`,
 * `call_raw`), so a commit may land twice unless it checks a key it also
 * writes. Each message must still be answered exactly once, and counted
 * once.
 */
import assert from "node:assert/strict";
import { readStats } from "../../src/jobs/mod.ts";
import { logEvents, startTestBridge, testKv, waitFor } from "../_helpers.ts";

const ALICE = "whatsapp:+15551234567";
const BOB = "whatsapp:+15557654321";

/** Picks the commits that mutate a key under `name`. */
const touches = (name: string) => (keys: Deno.KvKey[]) => keys.some((key) => key[0] === name);

async function laneEmpties(kv: Deno.Kv) {
  await waitFor(
    async () => (await Array.fromAsync(kv.list({ prefix: ["queue"] }))).length === 0,
    "every lane to empty",
  );
}

for (const how of ["5xx", "drop"] as const) {
  Deno.test(`unknown outcome - a webhook's commit that landed unacknowledged (${how}) is answered once, as enqueued, and counted once`, async () => {
    await using store = await testKv("kv-connect");
    await using t = await startTestBridge({ backend: "kv-connect", kv: store });
    const kvServer = store.server!;
    // Answered first, so that the start-up sweep is over: it would find the message too.
    await t.sendWhatsApp({ From: BOB, Body: "warm-up" });
    await t.twilio.waitForMessages(BOB, 1);
    // Only the webhook's commit writes the number's state.
    kvServer.applyThenFail(1, how, touches("numbers"));
    const response = await t.sendWhatsApp({ Body: "landed twice?" });
    assert.equal(response.status, 200);
    assert.doesNotMatch(await response.text(), /<Message>/, "stored: no apology");
    const [reply] = await t.twilio.waitForMessages(ALICE, 1);
    assert.equal(reply.body, "Answer to: landed twice?");
    assert.equal(kvServer.stats.appliedThenFailed, 1);
    assert.equal(logEvents(t.logs, "webhook.enqueued").length, 2);
    assert.equal(logEvents(t.logs, "webhook.duplicate").length, 0, "its own record, not a retry");
    await laneEmpties(t.kv);
    assert.equal(t.twilio.messages.length, 2, "the warm-up's reply and this one");
    assert.equal((await readStats(t.kv, Date.now())).lastHour.received, 2);
  });

  Deno.test(`unknown outcome - a lane's commits that landed unacknowledged (${how}) change nothing twice: one reply per message, each counted once`, async () => {
    await using store = await testKv("kv-connect");
    await using t = await startTestBridge({ backend: "kv-connect", kv: store });
    const kvServer = store.server!;
    // Every commit under a lease writes the lease: taking it, each save, the
    // last one that records the answer, and letting the lane go.
    kvServer.applyThenFail(12, how, touches("leases"));
    for (const [from, body] of [[ALICE, "one"], [BOB, "two"], [ALICE, "three"]]) {
      assert.equal((await t.sendWhatsApp({ From: from, Body: body })).status, 200);
    }
    const alice = await t.twilio.waitForMessages(ALICE, 2, 20_000);
    const [bob] = await t.twilio.waitForMessages(BOB, 1, 20_000);
    assert.deepEqual(alice.map((m) => m.body), ["Answer to: one", "Answer to: three"]);
    assert.equal(bob.body, "Answer to: two");
    await laneEmpties(t.kv);
    assert.ok(kvServer.stats.appliedThenFailed >= 6, "the faults met the lanes' commits");
    assert.equal(t.twilio.messages.length, 3, "no reply twice");
    assert.equal(t.ayd.asks.length, 3, "no question asked twice");
    const stats = await readStats(t.kv, Date.now());
    assert.equal(stats.lastHour.answered, 3, "each answer counted once");
    assert.equal(stats.answerTimeMs.samples, 3);
  });
}
