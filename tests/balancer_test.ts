/** The test balancer: what the multi-instance tests rely on it for. */
import assert from "node:assert/strict";
import { startBalancer } from "./_balancer.ts";
import { freePort } from "./_process.ts";

/** A backend that echoes what it got, named `name`. */
function echo(name: string) {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const url = new URL(req.url);
    return Response.json({
      name,
      method: req.method,
      path: url.pathname + url.search,
      signature: req.headers.get("x-twilio-signature"),
      type: req.headers.get("content-type"),
      body: await req.text(),
    }, { status: 201, headers: { "x-backend": name } });
  });
  return { url: `http://127.0.0.1:${server.addr.port}`, close: () => server.shutdown() };
}

Deno.test("balancer - takes turns and forwards method, path, headers, body and status unchanged", async () => {
  const [one, two] = [echo("one"), echo("two")];
  try {
    await using balancer = await startBalancer([one.url, two.url]);
    const seen = [];
    for (let i = 0; i < 4; i++) {
      const response = await fetch(`${balancer.url}/whatsapp?x=${i}`, {
        method: "POST",
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          "x-twilio-signature": `sig${i}`,
        },
        body: `Body=hello+${i}`,
      });
      assert.equal(response.status, 201);
      const got = await response.json();
      assert.equal(response.headers.get("x-backend"), got.name);
      assert.deepEqual({ ...got, name: undefined }, {
        name: undefined,
        method: "POST",
        path: `/whatsapp?x=${i}`,
        signature: `sig${i}`,
        type: "application/x-www-form-urlencoded",
        body: `Body=hello+${i}`,
      });
      seen.push(got.name);
    }
    assert.deepEqual(seen, ["one", "two", "one", "two"]);
  } finally {
    await Promise.all([one.close(), two.close()]);
  }
});

Deno.test("balancer - skips a backend that refuses connections; 502 when none answers", async () => {
  const live = echo("live");
  const dead = `http://127.0.0.1:${freePort()}`;
  try {
    await using balancer = await startBalancer([dead, live.url]);
    for (let i = 0; i < 3; i++) {
      const response = await fetch(`${balancer.url}/`, { method: "POST", body: "x" });
      assert.equal(response.status, 201);
      assert.equal((await response.json()).name, "live");
    }
    assert.ok(balancer.skipped >= 1, "the dead backend was tried and skipped");
    assert.equal(balancer.answered.get(live.url), 3);
  } finally {
    await live.close();
  }
  await using nobody = await startBalancer([`http://127.0.0.1:${freePort()}`]);
  const response = await fetch(`${nobody.url}/`);
  assert.equal(response.status, 502);
  await response.body?.cancel();
});
