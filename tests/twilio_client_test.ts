import assert from "node:assert/strict";
import { fetchHttpClient } from "../src/twilio_client.ts";

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
