import assert from "node:assert/strict";
import twilio from "twilio";
import {
  isValidTwilioSignature,
  MAX_BODY_CHARS,
  MAX_MEDIA,
  parseForm,
  toInboundMessage,
} from "../../src/webhook/twilio_request.ts";

const VECTOR = {
  authToken: "12345",
  url: "https://example.com/myapp.php?foo=1&bar=2",
  signature: "L/OH5YylLD5NRKLltdqwSvS0BnU=",
  params: {
    CallSid: "CA1234567890ABCDE",
    Caller: "+14158675310",
    Digits: "1234",
    From: "+14158675310",
    To: "+18005551212",
  },
};

Deno.test("signature - Twilio's documented test vector is valid", () => {
  assert.equal(isValidTwilioSignature(VECTOR), true);
});

Deno.test("signature - a changed parameter, URL or token is refused", () => {
  assert.equal(
    isValidTwilioSignature({ ...VECTOR, params: { ...VECTOR.params, Digits: "1235" } }),
    false,
  );
  assert.equal(
    isValidTwilioSignature({ ...VECTOR, params: { ...VECTOR.params, Extra: "x" } }),
    false,
  );
  assert.equal(
    isValidTwilioSignature({ ...VECTOR, url: "https://example.com/myapp.php?foo=1" }),
    false,
  );
  assert.equal(isValidTwilioSignature({ ...VECTOR, authToken: "54321" }), false);
  assert.equal(isValidTwilioSignature({ ...VECTOR, signature: undefined }), false);
  assert.equal(isValidTwilioSignature({ ...VECTOR, signature: "" }), false);
  assert.equal(isValidTwilioSignature({ ...VECTOR, signature: "not base64 at all" }), false);
});

Deno.test("signature - a #… connection-override fragment in the configured URL is ignored", () => {
  const url = "https://example.com/myapp.php?foo=1&bar=2#rc=2&rp=all&ct=1000";
  assert.equal(isValidTwilioSignature({ ...VECTOR, url }), true);
});

Deno.test("signature - the URL matches with and without its default port", () => {
  const params = { Body: "hi", MessageSid: "SM" + "0".repeat(32) };
  const token = "secret";
  const withPort = twilio.getExpectedTwilioSignature(
    token,
    "https://bridge.example.com:443/whatsapp",
    params,
  );
  const withoutPort = twilio.getExpectedTwilioSignature(
    token,
    "https://bridge.example.com/whatsapp",
    params,
  );
  for (
    const url of ["https://bridge.example.com/whatsapp", "https://bridge.example.com:443/whatsapp"]
  ) {
    for (const signature of [withPort, withoutPort]) {
      assert.equal(isValidTwilioSignature({ authToken: token, url, signature, params }), true);
    }
  }
});

Deno.test("form - every parameter is kept, repeated names as lists", () => {
  assert.deepEqual(
    parseForm("Body=caf%C3%A9+%F0%9F%9A%80&NewField=1&MediaUrl0=a&X=1&X=2"),
    { Body: "café 🚀", NewField: "1", MediaUrl0: "a", X: ["1", "2"] },
  );
});

const ACCOUNT = "AC" + "a".repeat(32);
const BASE = {
  MessageSid: "SM" + "1".repeat(32),
  AccountSid: ACCOUNT,
  From: "whatsapp:+15551234567",
  To: "whatsapp:+14155238886",
  Body: "How many orders shipped late?",
  NumMedia: "0",
};

Deno.test("inbound - a WhatsApp message becomes a job's message", () => {
  assert.deepEqual(toInboundMessage(BASE, { accountSid: ACCOUNT, now: 42 }), {
    messageSid: BASE.MessageSid,
    phone: "+15551234567",
    body: BASE.Body,
    numMedia: 0,
    receivedAt: 42,
  });
});

Deno.test("inbound - a Body longer than WhatsApp allows is kept to its first MAX_BODY_CHARS", () => {
  const long = "x".repeat(MAX_BODY_CHARS + 5_000);
  const message = toInboundMessage({ ...BASE, Body: long }, { accountSid: ACCOUNT, now: 42 });
  assert.ok("body" in message);
  assert.equal(message.body.length, MAX_BODY_CHARS);
  assert.ok(MAX_BODY_CHARS >= 4 * 4_096, "every real WhatsApp message fits whole");
});

Deno.test("inbound - malformed, foreign and non-WhatsApp requests are told apart", () => {
  const check = (params: Record<string, string | string[]>) =>
    toInboundMessage(params, { accountSid: ACCOUNT, now: 0 });
  const { MessageSid: _sid, ...noSid } = BASE;
  const { From: _from, ...noFrom } = BASE;
  assert.deepEqual(check(noSid), { status: 400, reason: "missing_message_sid" });
  assert.deepEqual(check({ ...BASE, MessageSid: "SM/../x" }), {
    status: 400,
    reason: "missing_message_sid",
  });
  assert.deepEqual(check(noFrom), { status: 400, reason: "missing_from" });
  assert.deepEqual(check({ ...BASE, Body: ["a", "b"] }), { status: 400, reason: "repeated_field" });
  assert.deepEqual(check({ ...BASE, AccountSid: "AC" + "b".repeat(32) }), {
    status: 403,
    reason: "wrong_account",
  });
  assert.deepEqual(check({ ...BASE, From: "+15551234567" }), {
    status: 200,
    reason: "not_whatsapp",
  });
});

const VOICE_URL = `https://api.twilio.com/2010-04-01/Accounts/${ACCOUNT}/Messages/MM${
  "2".repeat(32)
}/Media/ME${"3".repeat(32)}`;

Deno.test("inbound - a voice note keeps its media URL and content type", () => {
  const message = toInboundMessage(
    { ...BASE, Body: "", NumMedia: "1", MediaUrl0: VOICE_URL, MediaContentType0: "audio/ogg" },
    { accountSid: ACCOUNT, now: 42 },
  );
  assert.ok("messageSid" in message);
  assert.equal(message.numMedia, 1);
  assert.deepEqual(message.media, [{ url: VOICE_URL, contentType: "audio/ogg" }]);
});

Deno.test("inbound - only media below NumMedia are read, at most MAX_MEDIA of them", () => {
  const params: Record<string, string> = { ...BASE, NumMedia: "12" };
  for (let n = 0; n < 13; n++) {
    params[`MediaUrl${n}`] = `${VOICE_URL}${n}`;
    params[`MediaContentType${n}`] = "image/jpeg";
  }
  const many = toInboundMessage(params, { accountSid: ACCOUNT, now: 0 });
  assert.ok("messageSid" in many);
  assert.equal(many.media?.length, MAX_MEDIA);
  assert.equal(many.media?.at(-1)?.url, `${VOICE_URL}${MAX_MEDIA - 1}`);

  const announcedOne = toInboundMessage({ ...params, NumMedia: "1" }, {
    accountSid: ACCOUNT,
    now: 0,
  });
  assert.ok("messageSid" in announcedOne);
  assert.deepEqual(announcedOne.media?.map((m) => m.url), [`${VOICE_URL}0`]);
});

Deno.test("inbound - a text message has no media field at all", () => {
  const withStray = {
    ...BASE,
    NumMedia: "0",
    MediaUrl0: VOICE_URL,
    MediaContentType0: "audio/ogg",
  };
  const message = toInboundMessage(withStray, { accountSid: ACCOUNT, now: 0 });
  assert.ok("messageSid" in message);
  assert.equal("media" in message, false, "NumMedia=0 means no media, whatever else is posted");
});

Deno.test("inbound - a medium whose URL is not http(s) is dropped; a bad type becomes octet-stream", () => {
  const message = toInboundMessage({
    ...BASE,
    NumMedia: "5",
    MediaUrl0: "javascript:alert(1)",
    MediaContentType0: "audio/ogg",
    MediaUrl1: "not a url",
    MediaContentType1: "audio/ogg",
    MediaUrl2: `https://api.twilio.com/${"x".repeat(3_000)}`,
    MediaUrl3: VOICE_URL,
    MediaContentType3: "Audio/OGG; codecs=opus",
    MediaUrl4: VOICE_URL,
    MediaContentType4: "<script>",
  }, { accountSid: ACCOUNT, now: 0 });
  assert.ok("messageSid" in message);
  assert.deepEqual(message.media, [
    { url: VOICE_URL, contentType: "audio/ogg; codecs=opus" },
    { url: VOICE_URL, contentType: "application/octet-stream" },
  ]);
});

Deno.test("inbound - a repeated MediaUrlN is not trusted: that medium is dropped", () => {
  const message = toInboundMessage({
    ...BASE,
    NumMedia: "1",
    MediaUrl0: [VOICE_URL, "https://evil.example/x"],
    MediaContentType0: "audio/ogg",
  }, { accountSid: ACCOUNT, now: 0 });
  assert.ok("messageSid" in message);
  assert.equal(message.media, undefined);
});
