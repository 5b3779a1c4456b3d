/**
 * Signature mismatches explained: a webhook signed for a URL a proxy made
 * of the configured one is refused, and the URL to configure is named in
 * the log, `/health` and (see the console tests) the console.
 */
import assert from "node:assert/strict";
import { createApp } from "../../src/webhook/app.ts";
import { createJobs } from "../../src/jobs/jobs.ts";
import { createLogger } from "../../src/log.ts";
import { candidateUrls, redactUrl } from "../../src/webhook/_url_candidates.ts";
import { URL_HINT_LOG_EVERY_MS, URL_HINT_TRY_EVERY_MS } from "../../src/webhook/url_hints.ts";
import { ACCOUNT_SID, AUTH_TOKEN, logEvents, sign, whatsAppParams } from "../_helpers.ts";

const CONFIGURED = "https://bridge.example.com/whatsapp";
const STATUS_URL = "https://bridge.example.com/twilio/status";

/** The app alone on a memory KV, with its own clock and log. */
async function hintedApp(configured = CONFIGURED, statusUrl = STATUS_URL) {
  const kv = await Deno.openKv(":memory:");
  const logs: string[] = [];
  const clock = { now: 1_000_000 };
  const app = createApp({
    kv,
    jobs: createJobs(kv, "outbox"),
    log: createLogger({ level: "debug", write: (line) => logs.push(line) }),
    twilioAccountSid: ACCOUNT_SID,
    twilioAuthToken: AUTH_TOKEN,
    twilioWebhookUrl: configured,
    statusCallbackUrl: statusUrl,
    policy: { allowedNumbers: undefined, perMinute: 10_000, perDay: 10_000 },
    instance: "instance-under-test",
    now: () => clock.now,
  });
  /** Posts `params` as the bridge sees it (`seenAs`), signed by Twilio for `signedFor`. */
  const post = async (
    seenAs: string,
    params: Record<string, string>,
    signedFor: string,
    headers: Record<string, string> = {},
    token = AUTH_TOKEN,
  ): Promise<Response> =>
    await app.request(seenAs, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        "x-twilio-signature": sign(params, signedFor, token),
        ...headers,
      },
      body: new URLSearchParams(params),
    });
  const health = async () => await (await app.request("/health")).json();
  const mismatches = () => logEvents(logs, "webhook.url_mismatch");
  return {
    app,
    logs,
    clock,
    post,
    health,
    mismatches,
    [Symbol.dispose]: () => kv.close(),
  };
}

/** Each proxy variant: what the bridge sees, the headers it gets, what Twilio signed. */
const VARIANTS: {
  name: string;
  configured: string;
  signedFor: string;
  seenAs: string;
  headers: Record<string, string>;
}[] = [
  {
    name: "http behind an https proxy (X-Forwarded-Proto)",
    configured: "http://bridge.example.com/whatsapp",
    signedFor: "https://bridge.example.com/whatsapp",
    seenAs: "http://bridge.example.com/whatsapp",
    headers: { "x-forwarded-proto": "https" },
  },
  {
    name: "https configured, Twilio set to http",
    configured: "https://bridge.example.com/whatsapp",
    signedFor: "http://bridge.example.com/whatsapp",
    seenAs: "http://127.0.0.1:5000/whatsapp",
    headers: { "x-forwarded-proto": "http", "x-forwarded-host": "bridge.example.com" },
  },
  {
    name: "another host (X-Forwarded-Host)",
    configured: CONFIGURED,
    signedFor: "https://abc123.ngrok.app/whatsapp",
    seenAs: "http://127.0.0.1:5000/whatsapp",
    headers: { "x-forwarded-proto": "https", "x-forwarded-host": "abc123.ngrok.app" },
  },
  {
    name: "another host (Host, as a proxy that keeps it passes it)",
    configured: CONFIGURED,
    signedFor: "https://bot.example.org/whatsapp",
    seenAs: "http://bot.example.org/whatsapp",
    headers: { "x-forwarded-proto": "https" },
  },
  {
    name: "another host (Forwarded)",
    configured: CONFIGURED,
    signedFor: "https://bot.example.org/whatsapp",
    seenAs: "http://127.0.0.1:5000/whatsapp",
    headers: { forwarded: 'for=54.1.2.3;proto=https;host="bot.example.org"' },
  },
  {
    name: "a port added",
    configured: CONFIGURED,
    signedFor: "https://bridge.example.com:8443/whatsapp",
    seenAs: "http://bridge.example.com:8443/whatsapp",
    headers: { "x-forwarded-proto": "https" },
  },
  {
    name: "another port",
    configured: "https://bridge.example.com:8443/whatsapp",
    signedFor: "https://bridge.example.com:9443/whatsapp",
    seenAs: "http://bridge.example.com:9443/whatsapp",
    headers: { "x-forwarded-proto": "https" },
  },
  {
    name: "the port from X-Forwarded-Port",
    configured: CONFIGURED,
    signedFor: "https://bridge.example.com:8443/whatsapp",
    seenAs: "http://127.0.0.1:5000/whatsapp",
    headers: {
      "x-forwarded-proto": "https",
      "x-forwarded-host": "bridge.example.com",
      "x-forwarded-port": "8443",
    },
  },
  {
    name: "a trailing slash in Twilio's URL, dropped by the proxy",
    configured: CONFIGURED,
    signedFor: "https://bridge.example.com/whatsapp/",
    seenAs: "http://127.0.0.1:5000/whatsapp",
    headers: { "x-forwarded-proto": "https", "x-forwarded-host": "bridge.example.com" },
  },
  {
    name: "a trailing slash in the configured URL only",
    configured: "https://bridge.example.com/whatsapp/",
    signedFor: "https://bridge.example.com/whatsapp",
    seenAs: "http://127.0.0.1:5000/whatsapp",
    headers: {},
  },
  {
    name: "a path prefix the proxy strips (X-Forwarded-Prefix)",
    configured: CONFIGURED,
    signedFor: "https://bridge.example.com/bot/whatsapp",
    seenAs: "http://127.0.0.1:5000/whatsapp",
    headers: { "x-forwarded-prefix": "/bot/" },
  },
  {
    name: "the request's own path, when the configured one has a prefix it lacks",
    configured: "https://bridge.example.com/hooks/whatsapp",
    signedFor: "https://bridge.example.com/whatsapp",
    seenAs: "http://127.0.0.1:5000/whatsapp",
    headers: {},
  },
  {
    name: "a query string Twilio's URL has and the configured one lacks",
    configured: CONFIGURED,
    signedFor: "https://bridge.example.com/whatsapp?tenant=acme",
    seenAs: "http://127.0.0.1:5000/whatsapp?tenant=acme",
    headers: {},
  },
];

for (const variant of VARIANTS) {
  Deno.test(`url hint - ${variant.name}: refused with 403, and the URL Twilio signed is named`, async () => {
    using t = await hintedApp(variant.configured);
    const params = whatsAppParams();
    const response = await t.post(variant.seenAs, params, variant.signedFor, variant.headers);
    assert.equal(response.status, 403);
    assert.equal(await response.text(), "Forbidden: invalid Twilio signature");
    const [logged, ...more] = t.mismatches();
    assert.equal(more.length, 0);
    assert.equal(logged.level, "warn");
    assert.equal(logged.route, "webhook");
    assert.equal(logged.variable, "TWILIO_WEBHOOK_URL");
    assert.equal(logged.configured, variant.configured);
    assert.equal(logged.signed_for, variant.signedFor);
    assert.equal(logged.fix, `set TWILIO_WEBHOOK_URL=${variant.signedFor}`);
    assert.equal((await t.health()).webhookUrlHint, variant.signedFor);
  });
}

Deno.test("url hint - a port Twilio's URL lacks needs no hint: the check itself tries the URL without it", async () => {
  using t = await hintedApp("https://bridge.example.com:8443/whatsapp");
  const response = await t.post(
    "http://127.0.0.1:5000/whatsapp",
    whatsAppParams(),
    "https://bridge.example.com/whatsapp",
  );
  assert.equal(response.status, 200);
  await response.body?.cancel();
  assert.equal(t.mismatches().length, 0);
});

Deno.test("url hint - the log line holds no token, no number, no message text", async () => {
  using t = await hintedApp();
  const params = whatsAppParams({ Body: "secret revenue question", ProfileName: "Ada Lovelace" });
  const signedFor = "https://abc123.ngrok.app/whatsapp";
  await t.post("http://127.0.0.1:5000/whatsapp", params, signedFor, {
    "x-forwarded-host": "abc123.ngrok.app",
  });
  assert.equal(t.mismatches().length, 1);
  const all = t.logs.join("\n");
  for (const secret of [AUTH_TOKEN, "5551234567", "secret revenue", "Ada", params.MessageSid]) {
    assert.ok(!all.includes(secret), `the logs hold ${secret}`);
  }
});

Deno.test("url hint - a password in the URL is shown as ***, never in clear", async () => {
  const configured = "https://twilio:s3cret@bridge.example.com/whatsapp";
  const signedFor = "https://twilio:s3cret@bridge.example.com/bot/whatsapp";
  using t = await hintedApp(configured);
  await t.post("http://127.0.0.1:5000/whatsapp", whatsAppParams(), signedFor, {
    "x-forwarded-prefix": "/bot",
  });
  const [logged] = t.mismatches();
  assert.equal(logged.signed_for, "https://twilio:***@bridge.example.com/bot/whatsapp");
  assert.equal(logged.configured, "https://twilio:***@bridge.example.com/whatsapp");
  assert.ok(!t.logs.join("\n").includes("s3cret"));
  assert.ok(!JSON.stringify(await t.health()).includes("s3cret"));
  assert.equal(redactUrl("https://bridge.example.com/a:b@c"), "https://bridge.example.com/a:b@c");
});

Deno.test("url hint - a forged signature is never hinted, whatever URL it claims", async () => {
  using t = await hintedApp();
  const params = whatsAppParams();
  const proxy = { "x-forwarded-host": "abc123.ngrok.app", "x-forwarded-prefix": "/bot" };
  const forgeries: [string, Record<string, string>][] = [
    // The right URLs, the wrong token: an attacker has no token.
    ["https://abc123.ngrok.app/whatsapp", { ...proxy }],
    ["https://bridge.example.com/bot/whatsapp", { ...proxy }],
    // A URL that none of the request's own parts make.
    ["https://evil.example.com/whatsapp", {}],
  ];
  for (const [signedFor, headers] of forgeries) {
    const response = await t.post(
      "http://127.0.0.1:5000/whatsapp",
      params,
      signedFor,
      headers,
      signedFor.includes("evil") ? AUTH_TOKEN : "not-the-auth-token",
    );
    assert.equal(response.status, 403);
    await response.body?.cancel();
    t.clock.now += URL_HINT_TRY_EVERY_MS;
  }
  for (const signature of ["garbage", ""]) {
    const response = await t.app.request("http://127.0.0.1:5000/whatsapp", {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        "x-twilio-signature": signature,
      },
      body: new URLSearchParams(params),
    });
    assert.equal(response.status, 403);
    await response.body?.cancel();
    t.clock.now += URL_HINT_TRY_EVERY_MS;
  }
  assert.equal(t.mismatches().length, 0);
  assert.equal(logEvents(t.logs, "webhook.rejected").length, 5);
  assert.equal((await t.health()).webhookUrlHint, undefined);
});

Deno.test("url hint - logged at most once a minute, while /health keeps showing it", async () => {
  using t = await hintedApp();
  const signedFor = "https://abc123.ngrok.app/whatsapp";
  const send = () =>
    t.post("http://127.0.0.1:5000/whatsapp", whatsAppParams(), signedFor, {
      "x-forwarded-host": "abc123.ngrok.app",
    }).then((response) => response.body?.cancel());
  await send();
  for (let i = 0; i < 5; i++) {
    t.clock.now += 10_000;
    await send();
  }
  assert.equal(t.mismatches().length, 1, "50 s later, still one line");
  assert.equal((await t.health()).webhookUrlHint, signedFor);
  t.clock.now += URL_HINT_LOG_EVERY_MS - 50_000;
  await send();
  assert.equal(t.mismatches().length, 2, "a minute after the first, a second line");
});

Deno.test("url hint - a flood is tried at most once a second; the hint still shows from the first", async () => {
  using t = await hintedApp();
  const signedFor = "https://abc123.ngrok.app/whatsapp";
  const headers = { "x-forwarded-host": "abc123.ngrok.app" };
  // A forgery first: it uses up this second's try, so the real one waits for the next.
  await t.post("http://127.0.0.1:5000/whatsapp", whatsAppParams(), signedFor, headers, "forged")
    .then((response) => response.body?.cancel());
  await t.post("http://127.0.0.1:5000/whatsapp", whatsAppParams(), signedFor, headers)
    .then((response) => response.body?.cancel());
  assert.equal(t.mismatches().length, 0);
  t.clock.now += URL_HINT_TRY_EVERY_MS;
  await t.post("http://127.0.0.1:5000/whatsapp", whatsAppParams(), signedFor, headers)
    .then((response) => response.body?.cancel());
  assert.equal(t.mismatches().length, 1);
});

Deno.test("url hint - cleared once a webhook passes", async () => {
  using t = await hintedApp();
  const signedFor = "https://abc123.ngrok.app/whatsapp";
  await t.post("http://127.0.0.1:5000/whatsapp", whatsAppParams(), signedFor, {
    "x-forwarded-host": "abc123.ngrok.app",
  }).then((response) => response.body?.cancel());
  const before = await t.health();
  assert.equal(before.webhookUrlHint, signedFor);
  assert.equal(before.instance, "instance-under-test");
  const passed = await t.post("http://127.0.0.1:5000/whatsapp", whatsAppParams(), CONFIGURED);
  assert.equal(passed.status, 200);
  await passed.body?.cancel();
  const after = await t.health();
  assert.equal(after.webhookUrlHint, undefined);
  assert.equal(after.status, "ok");
});

Deno.test("url hint - the status callback route is explained the same way, against its own URL", async () => {
  using t = await hintedApp();
  const params = {
    AccountSid: ACCOUNT_SID,
    MessageSid: "SM" + "7".repeat(32),
    MessageStatus: "delivered",
  };
  const signedFor = "https://bridge.example.com/bot/twilio/status";
  const response = await t.post("http://127.0.0.1:5000/twilio/status", params, signedFor, {
    "x-forwarded-prefix": "/bot",
  });
  assert.equal(response.status, 403);
  await response.body?.cancel();
  const [logged] = t.mismatches();
  assert.equal(logged.route, "status");
  assert.equal(logged.variable, "TWILIO_STATUS_CALLBACK_URL");
  assert.equal(logged.configured, STATUS_URL);
  assert.equal(logged.signed_for, signedFor);
  const health = await t.health();
  assert.equal(health.statusCallbackUrlHint, signedFor);
  assert.equal(health.webhookUrlHint, undefined, "the webhook route is not affected");

  const passed = await t.post("http://127.0.0.1:5000/twilio/status", params, STATUS_URL);
  assert.equal(passed.status, 204);
  assert.equal((await t.health()).statusCallbackUrlHint, undefined);
});

Deno.test("url hint - candidates: the configured URL is not among them, and they stay few", () => {
  const headers = new Headers({
    host: "127.0.0.1:5000",
    "x-forwarded-proto": "https",
    "x-forwarded-host": "abc123.ngrok.app",
    "x-forwarded-prefix": "/bot",
    "x-forwarded-port": "443",
  });
  const urls = candidateUrls(`${CONFIGURED}#rc=2`, {
    url: "http://127.0.0.1:5000/whatsapp",
    headers,
  });
  assert.ok(!urls.includes(CONFIGURED));
  assert.ok(!urls.includes("https://bridge.example.com:443/whatsapp"));
  assert.ok(urls.includes("https://abc123.ngrok.app/bot/whatsapp"));
  assert.ok(urls.includes("http://127.0.0.1:5000/whatsapp"));
  assert.equal(new Set(urls).size, urls.length, "no URL twice");
  assert.ok(urls.length < 400, `${urls.length} candidates`);
  assert.deepEqual(candidateUrls("not a url", { url: "http://x/whatsapp", headers }), []);
});
