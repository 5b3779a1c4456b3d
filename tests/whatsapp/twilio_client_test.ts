import assert from "node:assert/strict";
import { createWhatsAppSender, fetchHttpClient } from "../../src/whatsapp/twilio_client.ts";

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
