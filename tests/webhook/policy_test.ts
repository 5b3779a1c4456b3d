/** Who may ask and how often, through the real app. */
import assert from "node:assert/strict";
import { rateLimitNotice } from "../../src/conversation/answer.ts";
import { loadConfig } from "../../src/config.ts";
import { admit, parseAllowedNumbers } from "../../src/webhook/policy.ts";
import {
  logEvents,
  startTestBridge,
  testEnv,
  testEveryBackend,
  testKv,
  waitFor,
} from "../_helpers.ts";

const ALICE = "whatsapp:+15551234567";
const MALLORY = "whatsapp:+15559999999";

async function settled(t: { kv: Deno.Kv }) {
  await waitFor(
    async () => (await Array.fromAsync(t.kv.list({ prefix: ["queue"] }))).length === 0,
    "every job to end",
  );
}

Deno.test("policy - ALLOWED_NUMBERS is parsed leniently and bad entries stop start-up", () => {
  assert.deepEqual(
    [...parseAllowedNumbers(" +15551234567 ,whatsapp:+49 151 1234 5678,").numbers],
    ["+15551234567", "+4915112345678"],
  );
  const bad = loadConfig(testEnv({ ALLOWED_NUMBERS: "+15551234567, 0151-123" }));
  assert.ok(!bad.ok);
  assert.match(bad.problems[0], /^ALLOWED_NUMBERS is invalid/);
  const silent = loadConfig(testEnv({ DENIED_REPLY: "" }));
  assert.ok(silent.ok);
  assert.equal(silent.config.deniedReply, "");
});

testEveryBackend(
  "allowlist - a number not on it never reaches AYD and hears once a day",
  async (backend) => {
    await using t = await startTestBridge({
      backend,
      env: { ALLOWED_NUMBERS: "+15551234567", DENIED_REPLY: "Not for you, sorry." },
    });
    await t.sendWhatsApp({ From: MALLORY, Body: "drop table users" });
    await t.sendWhatsApp({ From: MALLORY, Body: "please?" });
    await t.sendWhatsApp({
      From: MALLORY,
      Body: "",
      NumMedia: "1",
      MediaUrl0: "https://api.twilio.com/2010-04-01/Accounts/AC0/Messages/MM0/Media/ME0",
      MediaContentType0: "audio/ogg",
    });
    await t.sendWhatsApp({ From: ALICE, Body: "allowed question" });
    await t.twilio.waitForMessages(ALICE, 1);
    await settled(t);
    assert.deepEqual(t.twilio.messages.filter((m) => m.to === MALLORY).map((m) => m.body), [
      "Not for you, sorry.",
    ]);
    assert.deepEqual(t.ayd.asks.map((a) => a.question), ["allowed question"]);
    assert.equal(logEvents(t.logs, "webhook.denied").length, 3);
    const stored = await Array.fromAsync(
      t.kv.list<{ body: string; media?: unknown }>({ prefix: ["messages"] }),
    );
    assert.ok(
      !stored.some((e) => e.value.body.includes("drop table")),
      "a stranger's text is not kept",
    );
    assert.ok(!stored.some((e) => "media" in e.value), "nor where a stranger's voice note is");
  },
);

testEveryBackend("allowlist - an empty DENIED_REPLY means silence", async (backend) => {
  await using t = await startTestBridge({
    backend,
    env: { ALLOWED_NUMBERS: "+15551234567", DENIED_REPLY: "" },
  });
  await t.sendWhatsApp({ From: MALLORY });
  await settled(t);
  assert.equal(t.twilio.messages.length, 0);
  assert.equal(t.ayd.asks.length, 0);
});

testEveryBackend(
  "rate limit - over the per-minute limit: not asked, one notice saying when",
  async (backend) => {
    await using t = await startTestBridge({ backend, env: { RATE_LIMIT_PER_MINUTE: "2" } });
    for (const body of ["q1", "q2", "q3", "q4"]) {
      await (await t.sendWhatsApp({ Body: body })).body
        ?.cancel();
    }
    await t.twilio.waitForMessages(ALICE, 3);
    await settled(t);
    const bodies = t.twilio.messages.map((m) => m.body);
    assert.equal(bodies.length, 3, "two answers and one notice; the fourth is silent");
    assert.deepEqual(bodies.slice(0, 2), ["Answer to: q1", "Answer to: q2"]);
    assert.match(
      bodies[2],
      /^You're sending questions faster than I can answer\. Please try again after \d\d:\d\d UTC\.$/,
    );
    assert.deepEqual(t.ayd.asks.map((a) => a.question), ["q1", "q2"]);
    assert.equal(logEvents(t.logs, "webhook.rate_limited").length, 2);
  },
);

testEveryBackend(
  "rate limit - the per-day limit is shared by two instances on one KV file",
  async (backend) => {
    const dir = await Deno.makeTempDir();
    try {
      await using kv = await testKv(backend, dir);
      const env = { RATE_LIMIT_PER_DAY: "3" };
      await using a = await startTestBridge({ backend, env, kv });
      // One AYD and one Twilio behind both, as in production: a session one
      // instance opened is good for the other.
      await using b = await startTestBridge({
        backend,
        kv,
        env: { ...env, AYD_BASE_URL: a.ayd.url, TWILIO_API_BASE_URL: a.twilio.url },
      });
      for (const [t, body] of [[a, "a1"], [b, "b1"], [a, "a2"], [b, "b2"]] as const) {
        const response = await t.sendWhatsApp({ Body: body });
        await response.body?.cancel();
        assert.equal(response.status, 200, `${body} acknowledged`);
        // Each instance answers its own: both read and write the one count.
        await settled(t);
      }
      assert.deepEqual(a.ayd.asks.map((ask) => ask.question), ["a1", "b1", "a2"]);
      assert.equal(b.ayd.asks.length, 0);
      const replies = a.twilio.messages.map((m) => m.body);
      assert.deepEqual(replies.slice(0, 3), ["Answer to: a1", "Answer to: b1", "Answer to: a2"]);
      assert.match(replies[3], /today's limit/);
      assert.equal(replies.length, 4);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test("rate limit - the notice names the end of the window in UTC", () => {
  const until = Date.UTC(2026, 10, 25, 14, 5);
  assert.equal(
    rateLimitNotice({ window: "minute", until }),
    "You're sending questions faster than I can answer. Please try again after 14:05 UTC.",
  );
  assert.match(rateLimitNotice({ window: "day", until }), /after 14:05 UTC tomorrow\.$/);
});

Deno.test("rate limit - a new minute starts a new count; the day keeps counting", () => {
  const policy = { allowedNumbers: undefined, perMinute: 2, perDay: 3 };
  const phone = "+15551234567";
  const minute = 60_000;
  const start = Date.UTC(2026, 10, 25, 10, 0, 5);
  let stored: unknown;
  const ask = (now: number) => {
    const admission = admit(stored, phone, now, policy);
    stored = admission.counts;
    return admission.refusal;
  };
  assert.equal(ask(start), undefined);
  assert.equal(ask(start + 1_000), undefined);
  assert.deepEqual(ask(start + 2_000), {
    kind: "rate_limited",
    window: "minute",
    until: Date.UTC(2026, 10, 25, 10, 1),
  });
  assert.equal(ask(start + minute), undefined, "the next minute is a fresh count");
  assert.deepEqual(ask(start + 2 * minute), {
    kind: "rate_limited",
    window: "day",
    until: Date.UTC(2026, 10, 26),
  });
  assert.equal(ask(Date.UTC(2026, 10, 26, 0, 0, 1)), undefined, "a new UTC day");
});

Deno.test("rate limit - counts of another shape (an older version's) start afresh", () => {
  const policy = { allowedNumbers: undefined, perMinute: 1, perDay: 1 };
  const admission = admit({ minute: 5 }, "+15551234567", Date.now(), policy);
  assert.equal(admission.refusal, undefined);
  assert.equal(admission.counts?.day.count, 1);
});
