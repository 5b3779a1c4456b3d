/**
 * Fetching a voice note from Twilio over real HTTP against fake Twilio and
 * its media host, which fails the test if Twilio's credentials reach it.
 */
import assert from "node:assert/strict";
import {
  fetchTwilioMedia,
  isTwilioApiUrl,
  MAX_MEDIA_BYTES,
  MediaError,
  type TwilioMediaOptions,
} from "../../src/whatsapp/mod.ts";
import { type FakeTwilioOptions, startFakeTwilio } from "../fakes/fake_twilio.ts";

const SID = "AC" + "5".repeat(32);
const TOKEN = "media-token";
const VOICE = new TextEncoder().encode("OggS voice note bytes");

async function setUp(options: Partial<FakeTwilioOptions> = {}) {
  const twilio = await startFakeTwilio({ accountSid: SID, authToken: TOKEN, ...options });
  const media: TwilioMediaOptions = { accountSid: SID, authToken: TOKEN, apiBaseUrl: twilio.url };
  return { twilio, media, [Symbol.asyncDispose]: () => twilio.close() };
}

/** A server that counts what reaches it: a host that is not Twilio's. */
function startForeignHost() {
  let requests = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
    requests++;
    return new Response("stolen");
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    get requests() {
      return requests;
    },
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

async function mediaError(promise: Promise<unknown>): Promise<MediaError> {
  const error = await promise.then(() => undefined, (e) => e);
  assert.ok(error instanceof MediaError, `expected a MediaError, got ${error}`);
  return error;
}

for (const status of [307, 302] as const) {
  Deno.test(`media - fetched with Basic auth from the API host, its ${status} followed without it`, async () => {
    await using t = await setUp({ mediaRedirectStatus: status });
    const url = t.twilio.addMedia(VOICE, "audio/ogg");
    const medium = await fetchTwilioMedia(url, t.media);
    assert.deepEqual(medium, { bytes: VOICE, contentType: "audio/ogg" });
    assert.equal(t.twilio.mediaRequests, 1);
    assert.equal(t.twilio.mediaHost.requests, 1);
    assert.deepEqual(t.twilio.mediaHost.violations, [], "no Authorization reached the media host");
  });
}

Deno.test("media - the media host's own redirects are followed, still without credentials", async () => {
  await using t = await setUp();
  t.twilio.mediaHost.behave({ hops: 3 });
  const medium = await fetchTwilioMedia(t.twilio.addMedia(VOICE, "audio/ogg"), t.media);
  assert.deepEqual(medium.bytes, VOICE);
  assert.equal(t.twilio.mediaHost.requests, 4);
  assert.deepEqual(t.twilio.mediaHost.violations, []);
});

Deno.test("media - a URL on any other host is refused before any request", async () => {
  await using t = await setUp();
  await using foreign = startForeignHost();
  const url = t.twilio.addMedia(VOICE, "audio/ogg");
  const forged = [
    `${foreign.url}/2010-04-01/Accounts/${SID}/Messages/MM1/Media/ME1`,
    // The media host itself: reachable without credentials, but never given them.
    `${t.twilio.mediaHost.url}/media/x?Signature=y`,
    url.replace(t.twilio.url, t.twilio.url.replace("127.0.0.1", "localhost")),
  ];
  for (const bad of forged) {
    const error = await mediaError(fetchTwilioMedia(bad, t.media));
    assert.equal(error.kind, "foreign_host", bad);
    assert.equal(error.transient, false);
  }
  assert.equal(foreign.requests, 0);
  assert.equal(t.twilio.mediaHost.requests, 0);
  assert.equal(t.twilio.mediaRequests, 0);
});

Deno.test("media - without TWILIO_API_BASE_URL only https://api.twilio.com is Twilio's host", () => {
  const path = `/2010-04-01/Accounts/${SID}/Messages/MM1/Media/ME1`;
  assert.equal(isTwilioApiUrl(`https://api.twilio.com${path}`), true);
  assert.equal(isTwilioApiUrl(`https://api.twilio.com:443${path}`), true);
  for (
    const bad of [
      `http://api.twilio.com${path}`,
      `https://api.twilio.com:8443${path}`,
      `https://api.twilio.com.evil.example${path}`,
      `https://evil.example/?https://api.twilio.com${path}`,
      `https://user:pw@evil.example${path}`,
      `https://media.twiliocdn.com${path}`,
      "not a url",
    ]
  ) {
    assert.equal(isTwilioApiUrl(bad), false, bad);
  }
});

Deno.test("media - wrong credentials get Twilio's 401, an unknown medium its 404: not transient", async () => {
  await using t = await setUp();
  const url = t.twilio.addMedia(VOICE, "audio/ogg");
  const refused = await mediaError(fetchTwilioMedia(url, { ...t.media, authToken: "wrong" }));
  assert.deepEqual([refused.kind, refused.status, refused.transient], ["http", 401, false]);
  const gone = await mediaError(
    fetchTwilioMedia(url.replace(/ME\w+$/, "ME" + "0".repeat(32)), t.media),
  );
  assert.deepEqual([gone.kind, gone.status, gone.transient], ["http", 404, false]);
  assert.equal(t.twilio.mediaHost.requests, 0);
});

Deno.test("media - a 5xx or 429 from the media host is transient", async () => {
  await using t = await setUp();
  for (const status of [500, 503, 429]) {
    t.twilio.mediaHost.behave({ status });
    const error = await mediaError(
      fetchTwilioMedia(t.twilio.addMedia(VOICE, "audio/ogg"), t.media),
    );
    assert.deepEqual([error.kind, error.status, error.transient], ["http", status, true]);
  }
});

Deno.test("media - over the cap by Content-Length: refused before the body is read", async () => {
  await using t = await setUp();
  const big = new Uint8Array(300_000);
  const error = await mediaError(
    fetchTwilioMedia(t.twilio.addMedia(big, "audio/ogg"), { ...t.media, maxBytes: 100_000 }),
  );
  assert.equal(error.kind, "too_large");
  assert.equal(error.transient, false);
});

Deno.test("media - over the cap while streaming without a length: cancelled past the cap", async () => {
  await using t = await setUp();
  t.twilio.mediaHost.behave({ chunked: true });
  const big = new Uint8Array(300_000);
  const error = await mediaError(
    fetchTwilioMedia(t.twilio.addMedia(big, "audio/ogg"), { ...t.media, maxBytes: 100_000 }),
  );
  assert.equal(error.kind, "too_large");
});

Deno.test("media - exactly the cap is fetched, streamed or not; the default cap is Twilio's 16 MB", async () => {
  await using t = await setUp();
  const exact = crypto.getRandomValues(new Uint8Array(65_536));
  for (const chunked of [false, true]) {
    t.twilio.mediaHost.behave({ chunked });
    const medium = await fetchTwilioMedia(t.twilio.addMedia(exact, "audio/mpeg"), {
      ...t.media,
      maxBytes: exact.length,
    });
    assert.deepEqual(medium.bytes, exact);
    assert.equal(medium.contentType, "audio/mpeg");
  }
  assert.equal(MAX_MEDIA_BYTES, 16 * 1024 * 1024);
});

Deno.test("media - a media host that never answers, or stalls mid-body, times out (transient)", async () => {
  await using t = await setUp();
  for (const behaviour of [{ hang: true }, { stallAfterBytes: 4 }]) {
    t.twilio.mediaHost.behave(behaviour);
    const error = await mediaError(
      fetchTwilioMedia(t.twilio.addMedia(VOICE, "audio/ogg"), {
        ...t.media,
        signal: AbortSignal.timeout(100),
      }),
    );
    assert.equal(error.kind, "timeout", JSON.stringify(behaviour));
    assert.equal(error.transient, true);
  }
});

Deno.test("media - endless redirects end as a redirect error", async () => {
  await using t = await setUp();
  t.twilio.mediaHost.behave({ hops: 50 });
  const error = await mediaError(fetchTwilioMedia(t.twilio.addMedia(VOICE, "audio/ogg"), t.media));
  assert.equal(error.kind, "redirect");
  assert.ok(t.twilio.mediaHost.requests <= 6, `${t.twilio.mediaHost.requests} hops`);
});

Deno.test("media - a redirect out of http(s) or without a Location is refused", async () => {
  for (const location of ["file:///etc/passwd", "data:audio/ogg,x", undefined]) {
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      () => new Response(null, { status: 302, headers: location ? { location } : {} }),
    );
    const base = `http://127.0.0.1:${server.addr.port}`;
    try {
      const error = await mediaError(
        fetchTwilioMedia(`${base}/2010-04-01/Accounts/${SID}/Messages/MM1/Media/ME1`, {
          accountSid: SID,
          authToken: TOKEN,
          apiBaseUrl: base,
        }),
      );
      assert.equal(error.kind, "redirect", location);
    } finally {
      await server.shutdown();
    }
  }
});

Deno.test("media - a host that is down is a network error whose message holds no query", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const base = `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`;
  listener.close(); // nothing listens there any more
  const error = await mediaError(
    fetchTwilioMedia(`${base}/2010-04-01/Accounts/${SID}/Messages/MM1/Media/ME1?token=secret`, {
      accountSid: SID,
      authToken: TOKEN,
      apiBaseUrl: base,
    }),
  );
  assert.equal(error.kind, "network");
  assert.equal(error.transient, true);
  assert.doesNotMatch(error.message, /secret|media-token/);
});
