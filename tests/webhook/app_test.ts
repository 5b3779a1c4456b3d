/** Every kind of bad request to the webhook, over real HTTP. */
import assert from "node:assert/strict";
import { createApp, HEALTH_COUNTS_MS, HEALTH_READ_MS } from "../../src/webhook/app.ts";
import { createJobs } from "../../src/jobs/jobs.ts";
import { silentLogger } from "../../src/log.ts";
import {
  ACCOUNT_SID,
  AUTH_TOKEN,
  logEvents,
  postForm,
  sign,
  startTestBridge,
  waitFor,
  WEBHOOK_URL,
  whatsAppParams,
} from "../_helpers.ts";

async function storedMessages(kv: Deno.Kv): Promise<number> {
  return (await Array.fromAsync(kv.list({ prefix: ["messages"] }))).length;
}

Deno.test("webhook - a missing or wrong signature is refused with 403 and nothing is queued", async () => {
  await using t = await startTestBridge();
  const params = whatsAppParams();
  const cases: Record<string, Record<string, string>> = {
    "no signature": {},
    "garbage": { "x-twilio-signature": "forged" },
    "another URL": { "x-twilio-signature": sign(params, "https://evil.example.com/whatsapp") },
    "another auth token": { "x-twilio-signature": sign(params, WEBHOOK_URL, "other-token") },
    "other parameters": { "x-twilio-signature": sign({ ...params, Body: "changed" }) },
  };
  for (const [name, headers] of Object.entries(cases)) {
    const response = await postForm(t.url, params, headers);
    assert.equal(response.status, 403, name);
    assert.equal(await response.text(), "Forbidden: invalid Twilio signature");
  }
  assert.equal(await storedMessages(t.kv), 0);
  const rejected = logEvents(t.logs, "webhook.rejected");
  assert.equal(rejected.length, 5);
  assert.ok(rejected.every((entry) => entry.reason === "bad_signature"));
  assert.ok(!t.logs.join("\n").includes("5551234567"), "no phone number in the warning");
});

Deno.test("webhook - a parameter Twilio adds later is covered by the signature", async () => {
  await using t = await startTestBridge();
  const response = await t.sendWhatsApp({ BrandNewField: "surprise", Latitude: "52.52" });
  assert.equal(response.status, 200);
  await response.body?.cancel();
  await t.twilio.waitForMessages("whatsapp:+15551234567", 1);
});

Deno.test("webhook - a #rc= fragment in TWILIO_WEBHOOK_URL is not part of the signed URL", async () => {
  await using t = await startTestBridge({
    env: { TWILIO_WEBHOOK_URL: `${WEBHOOK_URL}#rc=2&rp=all&ct=1000` },
  });
  const response = await t.sendWhatsApp({ Body: "fragment" });
  assert.equal(response.status, 200);
  await response.body?.cancel();
  const [reply] = await t.twilio.waitForMessages("whatsapp:+15551234567", 1);
  assert.equal(reply.body, "Answer to: fragment");
});

Deno.test("webhook - the configured URL matches whether Twilio signed it with :443 or not", async () => {
  await using t = await startTestBridge({ signUrl: "https://bridge.example.com:443/whatsapp" });
  const response = await t.sendWhatsApp();
  assert.equal(response.status, 200);
  await response.body?.cancel();
});

Deno.test("webhook - a signed request that is not a valid message gets 400, another account 403", async () => {
  await using t = await startTestBridge();
  const { MessageSid: _sid, ...noSid } = whatsAppParams();
  const { From: _from, ...noFrom } = whatsAppParams();
  const cases: [Record<string, string>, number, string][] = [
    [noSid, 400, "Bad Request: missing_message_sid"],
    [noFrom, 400, "Bad Request: missing_from"],
    [whatsAppParams({ AccountSid: "AC" + "9".repeat(32) }), 403, "Forbidden: wrong_account"],
  ];
  for (const [params, status, text] of cases) {
    const response = await postForm(t.url, params, { "x-twilio-signature": sign(params) });
    assert.equal(response.status, status);
    assert.equal(await response.text(), text);
  }
  const repeated = new URLSearchParams(whatsAppParams());
  repeated.append("Body", "second body");
  const params: Record<string, string | string[]> = {};
  for (const [k, v] of repeated) params[k] = k === "Body" ? repeated.getAll(k) : v;
  const { default: twilio } = await import("twilio");
  const response = await fetch(`${t.url}/whatsapp`, {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      "x-twilio-signature": twilio.getExpectedTwilioSignature(AUTH_TOKEN, WEBHOOK_URL, params),
    },
    body: repeated,
  });
  assert.equal(response.status, 400);
  assert.equal(await response.text(), "Bad Request: repeated_field");
  assert.equal(await storedMessages(t.kv), 0);
});

Deno.test("webhook - an SMS sender is acknowledged but not answered", async () => {
  await using t = await startTestBridge();
  const response = await t.sendWhatsApp({ From: "+15551234567", To: "+14155238886" });
  assert.equal(response.status, 200);
  await response.body?.cancel();
  assert.equal(await storedMessages(t.kv), 0);
  assert.equal(logEvents(t.logs, "webhook.rejected")[0].reason, "not_whatsapp");
});

Deno.test("webhook - oversized, wrong content type, other methods and paths", async () => {
  await using t = await startTestBridge();
  const huge = whatsAppParams({ Body: "x".repeat(70 * 1024) });
  const tooLarge = await postForm(t.url, huge, { "x-twilio-signature": sign(huge) });
  assert.equal(tooLarge.status, 413);
  assert.equal(await tooLarge.text(), "Payload Too Large");

  const json = await fetch(`${t.url}/whatsapp`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(whatsAppParams()),
  });
  assert.equal(json.status, 415);
  await json.body?.cancel();

  const noType = await fetch(`${t.url}/whatsapp`, { method: "POST", body: "a=b" });
  assert.equal(noType.status, 415);
  await noType.body?.cancel();

  const get = await fetch(`${t.url}/whatsapp`);
  assert.equal(get.status, 405);
  assert.equal(get.headers.get("allow"), "POST");
  await get.body?.cancel();

  const missing = await fetch(`${t.url}/nope`);
  assert.equal(missing.status, 404);
  await missing.body?.cancel();
  assert.equal(await storedMessages(t.kv), 0);
});

Deno.test("webhook - an unsigned flood of malformed bodies never reaches the queue", async () => {
  await using t = await startTestBridge();
  const bodies = ["", "%%%", "=&=&", "Body=%E0%A4%A", "\u0000\u0001", "a".repeat(1000)];
  for (const body of bodies) {
    const response = await fetch(`${t.url}/whatsapp`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", "x-twilio-signature": "x" },
      body,
    });
    assert.equal(response.status, 403);
    await response.body?.cancel();
  }
  assert.equal(await storedMessages(t.kv), 0);
});

/** The webhook app on `kv`, reading through `reads` (a wrapped KV) when given, on `now`. */
function healthApp(
  kv: Deno.Kv,
  options: { reads?: Deno.Kv; backend?: "kv-queue" | "outbox"; now?: () => number } = {},
) {
  return createApp({
    kv: options.reads ?? kv,
    jobs: createJobs(kv, options.backend ?? "outbox"),
    log: silentLogger,
    twilioAccountSid: ACCOUNT_SID,
    twilioAuthToken: AUTH_TOKEN,
    twilioWebhookUrl: WEBHOOK_URL,
    statusCallbackUrl: "https://bridge.example.com/twilio/status",
    policy: { allowedNumbers: undefined, perMinute: 10, perDay: 200 },
    now: options.now,
  });
}

Deno.test("health - polls within a few seconds share one count of the queue", async () => {
  using kv = await Deno.openKv(":memory:");
  let lists = 0;
  const counting = new Proxy(kv, {
    get(target, property) {
      const value = Reflect.get(target, property, target);
      if (property === "list") lists++;
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  let clock = 1_000_000;
  const app = healthApp(kv, { reads: counting, now: () => clock });
  for (let i = 0; i < 20; i++) {
    assert.equal((await app.request("/health")).status, 200);
    clock += 100;
  }
  assert.equal(lists, 2, "one count of the queue and one of the dead letters");
  clock += HEALTH_COUNTS_MS;
  await app.request("/health");
  assert.equal(lists, 4, "counted again once the counts are old");
});

Deno.test("health - a count KV does not answer is not waited for: the last counts are served, marked stale", async () => {
  using kv = await Deno.openKv(":memory:");
  const gate = Promise.withResolvers<void>();
  let shut = false;
  // Lists wait while the gate is shut, as reads from a KV Connect server that is away do.
  const stalling = new Proxy(kv, {
    get(target, property) {
      const value = Reflect.get(target, property, target);
      if (property !== "list") return typeof value === "function" ? value.bind(target) : value;
      return (...args: Parameters<Deno.Kv["list"]>) => {
        const entries = target.list(...args);
        const opens = shut ? gate.promise : undefined;
        return (async function* () {
          await opens;
          yield* entries;
        })();
      };
    },
  });
  let clock = 1_000_000;
  const app = healthApp(kv, { reads: stalling, now: () => clock });
  await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, app.fetch);
  const health = async () => {
    const response = await fetch(`http://127.0.0.1:${server.addr.port}/health`, {
      signal: AbortSignal.timeout(HEALTH_READ_MS + 1_000),
    });
    return { status: response.status, body: await response.json() };
  };
  assert.deepEqual(await health(), {
    status: 200,
    body: { status: "ok", jobBackend: "outbox", pendingJobs: 0, deadLetters: 0 },
  });
  shut = true;
  clock += HEALTH_COUNTS_MS;
  for (let i = 0; i < 2; i++) {
    assert.deepEqual(await health(), {
      status: 200,
      body: {
        status: "ok",
        jobBackend: "outbox",
        pendingJobs: 0,
        deadLetters: 0,
        countsStale: true,
      },
    }, "the write probe decides the status; a slow count only ages");
  }
  gate.resolve();
  await waitFor(async () => !("countsStale" in (await health()).body), "fresh counts");
});

Deno.test("health - 200 when KV answers, 503 when it does not", async () => {
  await using t = await startTestBridge();
  const ok = await fetch(`${t.url}/health`);
  assert.equal(ok.status, 200);
  assert.deepEqual(await ok.json(), {
    status: "ok",
    jobBackend: "kv-queue",
    aydMode: "session",
    pendingJobs: 0,
    deadLetters: 0,
    instance: t.bridge.instance,
  });

  const kv = await Deno.openKv(":memory:");
  const app = healthApp(kv, { backend: "kv-queue" });
  kv.close();
  await using server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, app.fetch);
  const down = await fetch(`http://127.0.0.1:${server.addr.port}/health`);
  assert.equal(down.status, 503);
  assert.deepEqual(await down.json(), { status: "unavailable" }, "no instance given, none shown");
});
