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
import {
  startTestBridge,
  type TestBackend,
  testEverySetting,
  testKv,
  waitFor,
} from "../_helpers.ts";

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
  "storage - a Twilio retry whose MessageSid cannot be read gets the apology, as a new message would, and its stored original is answered once",
  async (backend, mode) => {
    // The bridge cannot tell a retry from a new message without the read:
    // staying silent would lose a new one, and the original is answered anyway.
    const { t, faulty } = await bridgeOnFaultyKv(backend, mode);
    await using _ = t;
    const { promise: answering, resolve: answer } = Promise.withResolvers<void>();
    t.ayd.onAsk(async ({ question }) => {
      await answering;
      return { kind: "answer", text: `Answer to: ${question}` };
    });
    const sid = "SM" + "2".repeat(32);
    const original = await t.sendWhatsApp({ MessageSid: sid, Body: "the original" });
    assert.doesNotMatch(await original.text(), /<Message>/);
    await waitFor(() => t.ayd.asks.length === 1, "the original to be asked");

    faulty.failReads(() => new TypeError("disk I/O error"));
    const retry = await t.sendWhatsApp({ MessageSid: sid, Body: "the original" });
    assert.equal(retry.status, 200);
    assert.match(await retry.text(), /<Message>Sorry, I can.t take questions right now/);
    const again = await t.sendWhatsApp({ MessageSid: sid, Body: "the original" });
    assert.doesNotMatch(await again.text(), /<Message>/, "one apology per number per 10 minutes");
    const failed = t.logs.filter((line) => line.includes('"event":"webhook.store_failed"'));
    assert.equal(failed.length, 2);
    assert.ok(failed.every((line) => line.includes('"reason":"io"')));
    faulty.failReads(null);

    answer();
    const [reply] = await t.twilio.waitForMessages(ALICE, 1);
    assert.equal(reply.body, "Answer to: the original");
    const late = await t.sendWhatsApp({ MessageSid: sid, Body: "the original" });
    assert.doesNotMatch(await late.text(), /<Message>/, "readable again: a plain duplicate");
    assert.ok(t.logs.some((line) => line.includes('"event":"webhook.duplicate"')));
    await waitFor(
      async () => (await Array.fromAsync(t.kv.list({ prefix: ["queue"] }))).length === 0,
      "the lane to empty",
    );
    assert.equal(t.ayd.asks.length, 1, "asked once");
    assert.equal(t.twilio.messages.length, 1, "answered once");
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

const ADMIN_TOKEN = "storage-admin-token-0123456789abcdef";

/** A GET that must be answered within 2 s, as monitors and load balancers wait. */
async function answeredPromptly(url: string, cookie?: string) {
  const headers: HeadersInit = cookie ? { cookie } : {};
  try {
    const response = await fetch(url, { headers, signal: AbortSignal.timeout(2_000) });
    return { status: response.status, text: await response.text() };
  } catch (error) {
    throw new assert.AssertionError({ message: `${url} did not answer within 2 s: ${error}` });
  }
}

Deno.test("storage - over KV Connect, /health and the console answer within 2 s while the server is away, 503 degraded, and 200 again by themselves", async () => {
  await using store = await testKv("kv-connect");
  await using t = await startTestBridge({
    backend: "kv-connect",
    kv: store,
    // Short heartbeats: a write pending for 2/3 of it counts as failed.
    env: { JOB_LEASE_MS: "600", ADMIN_TOKEN },
  });
  const login = await fetch(`${t.url}/admin/login`, {
    method: "POST",
    redirect: "manual",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ token: ADMIN_TOKEN }),
  });
  await login.body?.cancel();
  const cookie = login.headers.getSetCookie()[0].split(";", 1)[0];
  const health = () => answeredPromptly(`${t.url}/health`);
  const overview = () => answeredPromptly(`${t.url}/admin`, cookie);
  await waitFor(async () => (await health()).status === 200, "a healthy start");
  assert.equal((await overview()).status, 200);

  // No webhook arrives: only the heartbeat and the pages' own reads meet the outage.
  await store.server!.unreachable();
  try {
    let degraded: { status: string; reason: string } | undefined;
    await waitFor(async () => {
      const answer = await health();
      if (answer.status === 503) degraded = JSON.parse(answer.text);
      return degraded !== undefined;
    }, "503 from the stuck heartbeat");
    assert.equal(degraded!.status, "degraded");
    assert.match(degraded!.reason, /heartbeat write did not finish within 400 ms \(timed out\)/);
    for (let i = 0; i < 3; i++) {
      assert.equal((await health()).status, 503, "every answer prompt, none hanging on a read");
      const page = await overview();
      assert.equal(page.status, 503);
      assert.match(page.text, /did not answer in time/);
    }
    assert.ok(t.logs.some((line) => line.includes('"event":"storage.failing"')));
  } finally {
    await store.server!.reachable(); // also after a failed assertion: the bridge can then close
  }
  await waitFor(async () => (await health()).status === 200, "recovery without a restart");
  await waitFor(async () => (await overview()).status === 200, "the console's recovery");
  assert.match((await overview()).text, /<td class="n">ok<\/td>/);
  assert.ok(t.logs.some((line) => line.includes('"event":"storage.recovered"')));
});
