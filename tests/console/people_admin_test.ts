/** The directory through the admin API, over real HTTP. */
import assert from "node:assert/strict";
import { DIRECTORY_KEY } from "../../src/people/mod.ts";
import { logEvents, startTestBridge } from "../_helpers.ts";

const TOKEN = "admin-token-0123456789abcdef0123456789";

function admin(url: string, path: string, init: RequestInit = {}, token: string | null = TOKEN) {
  const headers = new Headers(init.headers);
  if (token !== null) headers.set("authorization", `Bearer ${token}`);
  return fetch(`${url}/admin${path}`, { ...init, headers });
}

const json = (body: unknown) => ({
  method: "PUT",
  headers: { "content-type": "application/json" },
  body: JSON.stringify(body),
});

Deno.test("admin people - add, read, update, list and remove one person; every route wants the token", async () => {
  await using t = await startTestBridge({ env: { ADMIN_TOKEN: TOKEN } });
  for (
    const [path, init] of [["/people", {}], ["/people/+15551234567", json({})], [
      "/people.csv",
      {},
    ]] as const
  ) {
    const refused = await admin(t.url, path, init, null);
    assert.equal(refused.status, 401, path);
    await refused.body?.cancel();
  }
  const ada = { name: "Ada Lovelace", email: "ada@example.com", properties: { region: "north" } };
  const added = await admin(t.url, "/people/+15551234567", json(ada));
  assert.equal(added.status, 201);
  assert.deepEqual(await added.json(), { status: "added" });
  const same = await admin(t.url, "/people/+15551234567", json(ada));
  assert.deepEqual([same.status, await same.json()], [200, { status: "unchanged" }]);
  const moved = await admin(
    t.url,
    "/people/whatsapp:+15551234567",
    json({ ...ada, properties: '{"region":"south"}' }),
  );
  assert.deepEqual([moved.status, await moved.json()], [200, { status: "updated" }]);

  const read = await admin(t.url, "/people/+15551234567");
  const person = await read.json();
  assert.deepEqual({ ...person, updatedAt: undefined }, {
    phone: "+15551234567",
    name: "Ada Lovelace",
    email: "ada@example.com",
    properties: { region: "south" },
    updatedAt: undefined,
  });
  await admin(t.url, "/people/+15557654321", json({ name: "Bob", email: "bob@example.com" }));
  const page = await (await admin(t.url, "/people?limit=1")).json();
  assert.deepEqual([page.people.map((p: { phone: string }) => p.phone), page.next], [[
    "+15551234567",
  ], "+15551234567"]);
  const rest = await (await admin(t.url, `/people?limit=1&after=${encodeURIComponent(page.next)}`))
    .json();
  assert.deepEqual(rest.people.map((p: { phone: string }) => p.phone), ["+15557654321"]);
  assert.equal(rest.next, undefined);

  const removed = await admin(t.url, "/people/+15551234567", { method: "DELETE" });
  assert.equal(removed.status, 204);
  const again = await admin(t.url, "/people/+15551234567", { method: "DELETE" });
  assert.equal(again.status, 404);
  await again.body?.cancel();
  assert.deepEqual((await t.kv.get(DIRECTORY_KEY)).value, { count: 1 });
  assert.equal(logEvents(t.logs, "admin.person_saved").length, 4);
  const logs = t.logs.join("\n");
  for (const secret of ["Ada", "ada@example.com", "south", "15551234567"]) {
    assert.ok(!logs.includes(secret), `logs contain ${secret}`);
  }
});

Deno.test("admin people - a bad person is refused with every problem, a bad number too", async () => {
  await using t = await startTestBridge({ env: { ADMIN_TOKEN: TOKEN } });
  const bad = await admin(
    t.url,
    "/people/+15551234567",
    json({ name: "", email: "x", properties: "[1]" }),
  );
  assert.equal(bad.status, 400);
  assert.deepEqual(await bad.json(), {
    problems: [
      "name is empty",
      "email is not an email address",
      'properties must be a JSON object, e.g. {"region":"north"}',
    ],
  });
  const number = await admin(t.url, "/people/15551234567", json({ name: "Ada", email: "a@b.c" }));
  assert.equal(number.status, 400);
  assert.match((await number.json()).problems[0], /must start with \+/);
  const notJson = await admin(t.url, "/people/+15551234567", { method: "PUT", body: "name=Ada" });
  assert.equal(notJson.status, 400);
  await notJson.body?.cancel();
  const missing = await admin(t.url, "/people/+15550000000");
  assert.equal(missing.status, 404);
  await missing.body?.cancel();
});

Deno.test("admin people - people.csv in (with a report, --replace and dry runs) and out", async () => {
  await using t = await startTestBridge({ env: { ADMIN_TOKEN: TOKEN } });
  const csv = "phone_number,name,email,properties\r\n" +
    '+15551234567,"Lovelace, Ada",ada@example.com,"{""region"":""north""}"\r\n' +
    "+15557654321,Bob,bob@example.com,\r\n";
  const post = (path: string, body: string) =>
    admin(t.url, path, { method: "POST", headers: { "content-type": "text/csv" }, body });
  const dry = await (await post("/people.csv?dry_run=1", csv)).json();
  assert.deepEqual([dry.added, dry.dryRun], [2, true]);
  const report = await (await post("/people.csv", csv)).json();
  assert.deepEqual(report, {
    rows: 2,
    invalid: [],
    dryRun: false,
    added: 2,
    updated: 0,
    unchanged: 0,
    removed: 0,
    missing: 0,
  });
  const exported = await admin(t.url, "/people.csv");
  assert.equal(exported.status, 200);
  assert.match(exported.headers.get("content-type")!, /^text\/csv/);
  assert.equal(exported.headers.get("cache-control"), "no-store");
  assert.equal(await exported.text(), csv);

  const refused = await post("/people.csv?replace=1", csv + "+1555,X,x@y.z,\r\n");
  assert.equal(refused.status, 422);
  const { refused: why, invalid } = await refused.json();
  assert.match(why, /--replace needs every row to be valid/);
  assert.deepEqual(invalid, [{ line: 4, reason: "phone_number is not +E164, e.g. +15551234567" }]);
  const onlyBob = "phone_number,name,email\r\n+15557654321,Bob,bob@example.com\r\n";
  const replaced = await (await post("/people.csv?replace=1", onlyBob)).json();
  assert.deepEqual([replaced.removed, replaced.unchanged], [1, 1]);
  const stats = await (await admin(t.url, "/stats")).json();
  assert.equal(stats.people, 1);
});
