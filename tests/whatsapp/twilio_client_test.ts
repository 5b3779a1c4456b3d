import assert from "node:assert/strict";
import { createLogger } from "../../src/log.ts";
import {
  createWhatsAppSender,
  fetchHttpClient,
  TwilioSendError,
  type WhatsAppSender,
} from "../../src/whatsapp/twilio_client.ts";
import { type FakeTwilio, startFakeTwilio } from "../fakes/fake_twilio.ts";

Deno.test("twilio client - at most maxInFlight requests are open at once, none lost", async () => {
  let open = 0;
  let most = 0;
  const fakeFetch = async () => {
    open++;
    most = Math.max(most, open);
    await new Promise((resolve) => setTimeout(resolve, 1));
    open--;
    return new Response(JSON.stringify({ sid: "SM1" }), { status: 201 });
  };
  const client = fetchHttpClient(fakeFetch as typeof fetch, undefined, 4);
  const responses = await Promise.all(
    Array.from(
      { length: 40 },
      () =>
        client.request({ method: "post", uri: "https://api.twilio.com/x", data: { Body: "hi" } }),
    ),
  );
  assert.equal(responses.length, 40);
  assert.ok(responses.every((r) => r.statusCode === 201));
  assert.equal(most, 4);
});

Deno.test("twilio client - a failed request frees its place", async () => {
  let calls = 0;
  const fakeFetch = () => {
    calls++;
    return calls <= 2
      ? Promise.reject(new TypeError("connection refused"))
      : Promise.resolve(new Response("{}", { status: 201 }));
  };
  const client = fetchHttpClient(fakeFetch as typeof fetch, undefined, 1);
  const results = await Promise.allSettled(
    Array.from(
      { length: 4 },
      () => client.request({ method: "get", uri: "https://api.twilio.com/y" }),
    ),
  );
  assert.deepEqual(results.map((r) => r.status), [
    "rejected",
    "rejected",
    "fulfilled",
    "fulfilled",
  ]);
});

Deno.test("twilio client - a message goes out as twilio-node sends it, to the swapped host", async () => {
  const seen: Request[] = [];
  const fakeFetch = (input: URL | RequestInfo, init?: RequestInit) => {
    seen.push(new Request(input, init));
    const sid = "SM" + "a".repeat(32);
    return Promise.resolve(
      new Response(JSON.stringify({ sid, status: "queued" }), { status: 201 }),
    );
  };
  const accountSid = "AC" + "0".repeat(32);
  const sender = createWhatsAppSender({
    accountSid,
    authToken: "secret",
    fromNumber: "+14155238886",
    apiBaseUrl: "http://127.0.0.1:9",
    statusCallback: "https://bridge.example/twilio/status",
    fetch: fakeFetch as typeof fetch,
  });
  assert.equal(
    await sender.send({ to: "+15551234567", body: "Hi", mediaUrls: ["https://x/a.png"] }),
    "SM" + "a".repeat(32),
  );
  const [request] = seen;
  assert.equal(request.method, "POST");
  assert.equal(request.url, `http://127.0.0.1:9/2010-04-01/Accounts/${accountSid}/Messages.json`);
  assert.equal(request.headers.get("authorization"), `Basic ${btoa(`${accountSid}:secret`)}`);
  assert.equal(request.headers.get("accept"), "application/json");
  assert.match(request.headers.get("content-type") ?? "", /^application\/x-www-form-urlencoded/);
  assert.match(request.headers.get("user-agent") ?? "", /^twilio-node /);
  const form = new URLSearchParams(await request.text());
  assert.deepEqual(Object.fromEntries(form), {
    From: "whatsapp:+14155238886",
    To: "whatsapp:+15551234567",
    Body: "Hi",
    MediaUrl: "https://x/a.png",
    StatusCallback: "https://bridge.example/twilio/status",
  });
});

Deno.test("twilio client - Twilio's error code reaches the caller, and a 4xx is not retried", async () => {
  let calls = 0;
  const fakeFetch = () => {
    calls++;
    const body = { code: 63016, message: "outside the allowed window", status: 400 };
    return Promise.resolve(new Response(JSON.stringify(body), { status: 400 }));
  };
  const sender = createWhatsAppSender({
    accountSid: "AC" + "0".repeat(32),
    authToken: "secret",
    fromNumber: "+14155238886",
    fetch: fakeFetch as typeof fetch,
  });
  const error = await sender.send({ to: "+15551234567", body: "Hi" }).catch((e) => e);
  assert.equal(error.name, "TwilioSendError");
  assert.equal(error.status, 400);
  assert.equal(error.code, 63016);
  assert.equal(error.transient, false);
  assert.equal(calls, 1);
});

// ---------------------------------------------------------------- against the fake Twilio

const ACCOUNT = "AC" + "0".repeat(32);
const TOKEN = "secret";
const FROM = "+14155238886";
const USER = "+15551234567";

async function withTwilio(fn: (twilio: FakeTwilio) => Promise<void>): Promise<void> {
  const twilio = await startFakeTwilio({ accountSid: ACCOUNT, authToken: TOKEN });
  try {
    await fn(twilio);
  } finally {
    await twilio.close();
  }
}

/** A sender on the fake with no waits between attempts and a short request timeout. */
function senderFor(
  twilio: FakeTwilio,
  more: Partial<Parameters<typeof createWhatsAppSender>[0]> = {},
): WhatsAppSender {
  return createWhatsAppSender({
    accountSid: ACCOUNT,
    authToken: TOKEN,
    fromNumber: FROM,
    apiBaseUrl: twilio.url,
    sleep: () => Promise.resolve(),
    requestTimeoutMs: 200,
    ...more,
  });
}

Deno.test("twilio client - a send accepted but answered too late is found in Twilio's list, not sent again", () =>
  withTwilio(async (twilio) => {
    twilio.answerLate(1);
    const sid = await senderFor(twilio).send({ to: USER, body: "part 1 of 3" });
    assert.deepEqual(twilio.messages.map((m) => m.body), ["part 1 of 3"], "exactly one copy");
    assert.equal(sid, twilio.messages[0].sid);
    assert.equal(twilio.attempts, 1);
    assert.equal(twilio.lookups, 1);
  }));

Deno.test("twilio client - a 5xx or a cut answer is looked up first, then sent again when Twilio has no copy", async () => {
  for (const failure of [{ status: 500, code: 20500 }, { status: 0, code: 0 }]) {
    await withTwilio(async (twilio) => {
      twilio.failNext(failure);
      const sid = await senderFor(twilio).send({ to: USER, body: "part 2" });
      assert.deepEqual(twilio.messages.map((m) => m.body), ["part 2"], `after ${failure.status}`);
      assert.equal(sid, twilio.messages[0].sid);
      assert.equal(twilio.attempts, 2);
      assert.equal(twilio.lookups, 1);
    });
  }
});

Deno.test("twilio client - a look-up that fails (500, 429, timeout) falls back to sending again, and is logged", async () => {
  const faults: Array<[string, (twilio: FakeTwilio) => void, RegExp]> = [
    ["500", (t) => t.failList({ status: 500, code: 20500 }), /answered 500 \(error 20500\)/],
    ["429", (t) => t.failList({ status: 429, code: 20429 }), /answered 429 \(error 20429\)/],
    ["timeout", (t) => t.holdLookup(1), /timed out/],
  ];
  for (const [name, fault, reason] of faults) {
    await withTwilio(async (twilio) => {
      const lines: string[] = [];
      const log = createLogger({ level: "debug", write: (line) => lines.push(line) });
      twilio.failNext({ status: 503, code: 20503 });
      fault(twilio);
      await senderFor(twilio, { log }).send({ to: USER, body: "secret answer" });
      assert.equal(twilio.messages.length, 1, name);
      assert.equal(twilio.lookups, 1, name);
      const events = lines.map((line) => JSON.parse(line));
      const failed = events.find((e) => e.event === "twilio.lookup_failed");
      assert.ok(failed, `${name}: ${lines.join("\n")}`);
      assert.equal(failed.level, "warn");
      assert.equal(failed.to, "+*******4567");
      assert.equal(failed.attempt, 1);
      assert.match(failed.reason, reason);
      assert.ok(!lines.some((line) => line.includes("secret") || line.includes("5551234567")));
    });
  }
});

Deno.test("twilio client - a 429 and a refused connection are tried again without a look-up", async () => {
  await withTwilio(async (twilio) => {
    twilio.failNext({ status: 429, code: 20429 });
    await senderFor(twilio).send({ to: USER, body: "hi" });
    assert.deepEqual([twilio.attempts, twilio.lookups, twilio.messages.length], [2, 0, 1]);
  });
  await withTwilio(async (twilio) => {
    const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const nobody = `http://127.0.0.1:${closed.addr.port}`;
    closed.close();
    let calls = 0;
    const refusingOnce = (input: URL | RequestInfo, init?: RequestInit) => {
      const url = new URL(input instanceof Request ? input.url : input);
      return fetch(calls++ === 0 ? new URL(url.pathname, nobody) : url, init);
    };
    await senderFor(twilio, { fetch: refusingOnce as typeof fetch }).send({ to: USER, body: "hi" });
    assert.equal(calls, 2);
    assert.deepEqual([twilio.attempts, twilio.lookups, twilio.messages.length], [1, 0, 1]);
  });
});

Deno.test("twilio client - a 400 (21617, body too long) is neither tried again nor looked up", () =>
  withTwilio(async (twilio) => {
    const error = await senderFor(twilio).send({ to: USER, body: "x".repeat(1601) }).catch((e) =>
      e
    );
    assert.ok(error instanceof TwilioSendError);
    assert.deepEqual([error.status, error.code, error.transient], [400, 21617, false]);
    assert.equal(error.uncertainSince, undefined);
    assert.deepEqual([twilio.attempts, twilio.lookups], [1, 0]);
  }));

Deno.test("twilio client - a send that succeeds makes no list request", () =>
  withTwilio(async (twilio) => {
    await senderFor(twilio).send({ to: USER, body: "hello" });
    await senderFor(twilio).send({ to: USER, mediaUrls: ["https://x/chart.png"] });
    assert.deepEqual([twilio.attempts, twilio.lookups, twilio.messages.length], [2, 0, 2]);
  }));

Deno.test("twilio client - a send uncertain to the end is looked up after each attempt and says since when", () =>
  withTwilio(async (twilio) => {
    twilio.failNext(...Array(4).fill({ status: 503, code: 20503 }));
    let clock = 1_000_000;
    const now = () => (clock += 1_000);
    const error = await senderFor(twilio, { now }).send({ to: USER, body: "hi" }).catch((e) => e);
    assert.ok(error instanceof TwilioSendError);
    assert.deepEqual([error.status, error.attempts, error.transient], [503, 4, true]);
    assert.equal(error.uncertainSince, 1_001_000, "when the first attempt began");
    assert.deepEqual([twilio.attempts, twilio.lookups, twilio.messages.length], [4, 4, 0]);
  }));

Deno.test("twilio client - a refusal after an uncertain attempt is looked up before giving up", () =>
  withTwilio(async (twilio) => {
    twilio.failNext({ status: 503, code: 20503 }, { status: 400, code: 21211 });
    const error = await senderFor(twilio).send({ to: USER, body: "hi" }).catch((e) => e);
    assert.deepEqual([error.code, error.transient, twilio.attempts, twilio.lookups], [
      21211,
      false,
      2,
      2,
    ]);
  }));

// ---------------------------------------------------------------- findSent

Deno.test("twilio client - findSent finds a text part by its body and a media part by its media count", () =>
  withTwilio(async (twilio) => {
    const since = Date.now();
    const sender = senderFor(twilio);
    const text = await sender.send({ to: USER, body: "3 late orders" });
    const chart = await sender.send({ to: USER, mediaUrls: ["https://x/chart.png"] });
    const captioned = await sender.send({
      to: USER,
      body: "Sales by month",
      mediaUrls: ["https://x/sales.png"],
    });
    assert.equal(await sender.findSent({ to: USER, body: "3 late orders", since }), text);
    assert.equal(await sender.findSent({ to: USER, mediaUrls: ["https://x/other"], since }), chart);
    assert.equal(
      await sender.findSent({ to: USER, body: "Sales by month", mediaUrls: ["u"], since }),
      captioned,
    );
    assert.equal(await sender.findSent({ to: USER, body: "Sales by month", since }), undefined);
    assert.equal(await sender.findSent({ to: USER, body: "3 late", since }), undefined);
    assert.equal(
      await sender.findSent({ to: "+15550000000", body: "3 late orders", since }),
      undefined,
    );
  }));

Deno.test("twilio client - findSent ignores a copy created more than the 2 s skew allowance before since", async () => {
  const created = Date.parse("2030-01-02T03:04:05Z");
  const twilio = await startFakeTwilio({
    accountSid: ACCOUNT,
    authToken: TOKEN,
    now: () => new Date(created + 700),
  });
  try {
    const sender = senderFor(twilio);
    const sid = await sender.send({ to: USER, body: "same words" });
    // Twilio writes 03:04:05 for a message created at 03:04:05.700.
    assert.equal(await sender.findSent({ to: USER, body: "same words", since: created }), sid);
    assert.equal(
      await sender.findSent({ to: USER, body: "same words", since: created + 2_999 }),
      sid,
      "within the allowance",
    );
    assert.equal(
      await sender.findSent({ to: USER, body: "same words", since: created + 3_000 }),
      undefined,
      "older than since, allowance included",
    );
  } finally {
    await twilio.close();
  }
});

Deno.test("twilio client - findSent reads on to the next page of Twilio's list", () =>
  withTwilio(async (twilio) => {
    const since = Date.now();
    const sender = senderFor(twilio);
    const first = await sender.send({ to: USER, body: "the first part" });
    for (let i = 0; i < 25; i++) await sender.send({ to: USER, body: `later ${i}` });
    assert.equal(await sender.findSent({ to: USER, body: "the first part", since }), first);
    assert.equal(twilio.lookups, 2);
  }));

Deno.test("twilio client - findSent asks Twilio's list for To and From, a small page, with the account's credentials", async () => {
  const seen: Request[] = [];
  const recording = (input: URL | RequestInfo, init?: RequestInit) => {
    seen.push(new Request(input, init));
    const page = { messages: [], next_page_uri: null, page: 0, page_size: 20, uri: "/x" };
    return Promise.resolve(new Response(JSON.stringify(page), { status: 200 }));
  };
  const sender = createWhatsAppSender({
    accountSid: ACCOUNT,
    authToken: TOKEN,
    fromNumber: FROM,
    apiBaseUrl: "http://127.0.0.1:1",
    fetch: recording as typeof fetch,
  });
  assert.equal(await sender.findSent({ to: USER, body: "hi", since: Date.now() }), undefined);
  const [request] = seen;
  const url = new URL(request.url);
  assert.equal(request.method, "GET");
  assert.equal(url.pathname, `/2010-04-01/Accounts/${ACCOUNT}/Messages.json`);
  assert.deepEqual(Object.fromEntries(url.searchParams), {
    To: `whatsapp:${USER}`,
    From: `whatsapp:${FROM}`,
    PageSize: "20",
  });
  assert.equal(request.headers.get("authorization"), `Basic ${btoa(`${ACCOUNT}:${TOKEN}`)}`);
  assert.equal(request.headers.get("accept"), "application/json");
});

Deno.test("twilio client - findSent rejects with TwilioSendError, without the number, when the list fails", () =>
  withTwilio(async (twilio) => {
    twilio.failList({ status: 500, code: 20500 });
    const error = await senderFor(twilio).findSent({ to: USER, body: "hi", since: 0 })
      .catch((e) => e);
    assert.ok(error instanceof TwilioSendError);
    assert.deepEqual([error.status, error.code, error.transient], [500, 20500, true]);
    assert.equal(error.message, "Twilio's message list: answered 500 (error 20500)");
  }));

/** A sender whose every list request is answered by `page(n)` (n from 0), counting them. */
function senderOnPages(page: (n: number) => Record<string, unknown>) {
  const served = { count: 0 };
  const pages = () => Promise.resolve(new Response(JSON.stringify(page(served.count++))));
  const sender = createWhatsAppSender({
    accountSid: ACCOUNT,
    authToken: TOKEN,
    fromNumber: FROM,
    fetch: pages as typeof fetch,
  });
  return { sender, served };
}

function listed(body: string, created: string, sent: string | null) {
  return {
    sid: "SM" + crypto.randomUUID().replaceAll("-", ""),
    to: `whatsapp:${USER}`,
    from: `whatsapp:${FROM}`,
    body,
    num_media: "0",
    status: sent ? "delivered" : "queued",
    date_created: created,
    date_sent: sent,
  };
}

Deno.test("twilio client - findSent stops at the first message Twilio sent before since, the list being sorted by date sent", async () => {
  const since = Date.parse("2030-01-02T03:04:05Z");
  const { sender, served } = senderOnPages(() => ({
    messages: [
      listed("stuck", "Wed, 02 Jan 2030 02:00:00 +0000", null),
      listed("earlier", "Wed, 02 Jan 2030 03:00:00 +0000", "Wed, 02 Jan 2030 03:00:01 +0000"),
      listed("wanted", "Wed, 02 Jan 2030 03:04:06 +0000", null),
    ],
    next_page_uri: `/2010-04-01/Accounts/${ACCOUNT}/Messages.json?Page=1&PageToken=PAx`,
  }));
  assert.equal(await sender.findSent({ to: USER, body: "wanted", since }), undefined);
  assert.equal(served.count, 1, "no second page once the list is older than since");
});

Deno.test("twilio client - findSent gives up as inconclusive after five pages that never reach since", async () => {
  const { sender, served } = senderOnPages((n) => ({
    messages: [listed(`unsent ${n}`, "Wed, 02 Jan 2030 03:04:06 +0000", null)],
    next_page_uri: `/2010-04-01/Accounts/${ACCOUNT}/Messages.json?Page=${n + 1}&PageToken=PA${n}`,
  }));
  const error = await sender.findSent({ to: USER, body: "wanted", since: 0 }).catch((e) => e);
  assert.ok(error instanceof TwilioSendError);
  assert.equal(error.message, "Twilio's message list: did not reach since within 5 pages");
  assert.equal(served.count, 5);
});
