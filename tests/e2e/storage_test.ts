/**
 * When KV cannot be written: the person hears about it, /health says so,
 * and what was acknowledged is answered once writes work again, without a
 * restart. The faults come from a wrapper around the bridge's KV that fails
 * writes as a full disk does (`tests/_faulty_kv.ts`).
 */
import assert from "node:assert/strict";
import type { AydMode } from "../../src/config.ts";
import { STORE_FAILED_REPLY } from "../../src/webhook/app.ts";
import { diskFull, type FaultyKv, faultyKv } from "../_faulty_kv.ts";
import { startTestBridge, type TestBackend, testEverySetting, waitFor } from "../_helpers.ts";

const ALICE = "whatsapp:+15551234567";
const BOB = "whatsapp:+15557654321";

async function bridgeOnFaultyKv(
  backend: TestBackend,
  mode: AydMode,
  env: Record<string, string> = {},
) {
  const faulty: { kv?: FaultyKv } = {};
  const t = await startTestBridge({
    backend,
    mode,
    // Short heartbeats: the probe /health reads runs every third of it.
    env: { JOB_LEASE_MS: "600", JOB_RETRY_BUDGET_MS: "60000", ...env },
    wrapKv: (kv) => (faulty.kv = faultyKv(kv)).kv,
  });
  return { t, faulty: faulty.kv! };
}

testEverySetting(
  "storage - a message that cannot be stored gets 200 and one apology per number per 10 minutes",
  async (backend, mode) => {
    const { t, faulty } = await bridgeOnFaultyKv(backend, mode);
    await using _ = t;
    const stored = "SM" + "1".repeat(32);
    await (await t.sendWhatsApp({ MessageSid: stored, Body: "stored before" })).text();
    await t.twilio.waitForMessages(ALICE, 1);

    faulty.fault(() => diskFull());
    const first = await t.sendWhatsApp({ Body: "lost?" });
    assert.equal(first.status, 200, "Twilio does not retry a 5xx: never answer one");
    assert.match(
      await first.text(),
      new RegExp(`<Message>${STORE_FAILED_REPLY.replace("'", ".")}</Message>`),
    );
    const second = await t.sendWhatsApp({ Body: "again?" });
    assert.doesNotMatch(await second.text(), /<Message>/, "once per number, not per message");
    const bob = await t.sendWhatsApp({ From: BOB, Body: "me too" });
    assert.match(await bob.text(), /<Message>/, "each number hears it once");
    // Twilio retrying a message that was stored: its original is answered, nothing to say.
    const retry = await t.sendWhatsApp({ MessageSid: stored, Body: "stored before" });
    assert.doesNotMatch(await retry.text(), /<Message>/);

    const lines = t.logs.filter((line) => line.includes('"event":"webhook.store_failed"'));
    assert.ok(lines.length >= 3);
    for (const line of lines) {
      assert.match(line, /"reason":"disk_full"/);
      assert.doesNotMatch(line, /5551234567|7654321|lost\?|again\?/, "no number, no text");
    }
    faulty.fault(null);
  },
);

testEverySetting(
  "storage - /health answers 503 while writes fail and 200 again by itself",
  async (backend, mode) => {
    const { t, faulty } = await bridgeOnFaultyKv(backend, mode);
    await using _ = t;
    const health = async () => {
      const response = await fetch(`${t.url}/health`);
      return { status: response.status, body: await response.json() };
    };
    await waitFor(async () => (await health()).status === 200, "a healthy start");
    faulty.fault(() => diskFull());
    await waitFor(async () => (await health()).status === 503, "503 from the heartbeat probe");
    assert.deepEqual((await health()).body, {
      status: "degraded",
      reason: "TypeError: database or disk is full",
      jobBackend: backend === "kv-queue" ? "kv-queue" : "outbox",
      instance: t.bridge.instance,
    });
    faulty.fault(null);
    await waitFor(async () => (await health()).status === 200, "recovery without a restart");
    assert.ok(t.logs.some((line) => line.includes('"event":"storage.recovered"')));
  },
);

testEverySetting(
  "storage - what was acknowledged before writes failed is answered once they work again, once",
  async (backend, mode) => {
    const { t, faulty } = await bridgeOnFaultyKv(backend, mode);
    await using _ = t;
    const { promise: fill, resolve: diskFills } = Promise.withResolvers<void>();
    t.ayd.onAsk(async ({ question }) => {
      await fill; // the answers come while the disk is full
      return { kind: "answer", text: `Answer to: ${question}` };
    });
    for (const body of ["one", "two"]) {
      assert.equal((await t.sendWhatsApp({ Body: body })).status, 200);
    }
    await waitFor(() => t.ayd.asks.length === 1, "the first question to be asked");
    faulty.fault(() => diskFull());
    diskFills();
    await waitFor(() => faulty.refused >= 3, "progress that cannot be saved");
    assert.equal(t.twilio.messages.length, 0, "nothing is sent before its progress is saved");
    faulty.fault(null);
    const replies = await t.twilio.waitForMessages(ALICE, 2, 30_000);
    assert.deepEqual(replies.map((r) => r.body), ["Answer to: one", "Answer to: two"]);
    await waitFor(
      async () => (await Array.fromAsync(t.kv.list({ prefix: ["queue"] }))).length === 0,
      "the lane to empty",
    );
    assert.equal(t.twilio.messages.length, 2, "no reply twice");
    assert.deepEqual(await Array.fromAsync(t.kv.list({ prefix: ["dead_letters"] })), []);
  },
);
