/** The directory in KV: its count stays exact under concurrent writers, and pages read in order. */
import assert from "node:assert/strict";
import {
  checkPerson,
  DIRECTORY_KEY,
  type DirectoryChange,
  listPeople,
  normalizePhone,
  readPerson,
  writeDirectory,
} from "../../src/people/mod.ts";
import { openTestKv } from "../_kv.ts";
import { testKv } from "../_helpers.ts";

const person = (name: string, properties?: Record<string, unknown>) => ({
  name,
  email: `${name.toLowerCase()}@example.com`,
  updatedAt: 0,
  ...properties && { properties },
});
const phone = (n: number) => `+1555${String(n).padStart(7, "0")}`;

Deno.test("directory - adds, updates, leaves alone and removes, counting exactly", async () => {
  using kv = await openTestKv();
  assert.deepEqual(await readPerson(kv, phone(1)), { person: undefined, size: 0 });
  const first = await writeDirectory(kv, [[phone(1), person("Ada")], [phone(2), person("Bob")]]);
  assert.deepEqual(first, { added: 2, updated: 0, unchanged: 0, removed: 0, missing: 0 });
  const second = await writeDirectory(kv, [
    [phone(1), { ...person("Ada"), updatedAt: 99 }], // only the time differs
    [phone(2), person("Bob", { region: "south" })],
    [phone(3), null],
  ]);
  assert.deepEqual(second, { added: 0, updated: 1, unchanged: 1, removed: 0, missing: 1 });
  assert.deepEqual(await readPerson(kv, phone(2)), {
    person: person("Bob", { region: "south" }),
    size: 2,
  });
  assert.equal((await writeDirectory(kv, [[phone(1), null]])).removed, 1);
  assert.deepEqual((await kv.get(DIRECTORY_KEY)).value, { count: 1 });
});

Deno.test("directory - writers racing on the same numbers keep the count exact", async () => {
  using kv = await openTestKv();
  // An import of 1,200 people (three commits) while single edits come and go.
  const bulk: DirectoryChange[] = Array.from(
    { length: 1_200 },
    (_, i) => [phone(i), person(`P${i}`)],
  );
  const edits = Array.from(
    { length: 30 },
    (_, i) => writeDirectory(kv, [[phone(i * 40), i % 2 ? null : person(`E${i}`)]]),
  );
  await Promise.all([writeDirectory(kv, bulk), ...edits]);
  const stored = (await Array.fromAsync(kv.list({ prefix: ["people"] }))).length;
  assert.deepEqual((await kv.get(DIRECTORY_KEY)).value, { count: stored });
});

Deno.test("directory - pages in number order, each after the last", async () => {
  using kv = await openTestKv();
  await writeDirectory(kv, Array.from({ length: 5 }, (_, i) => [phone(i), person(`P${i}`)]));
  const one = await listPeople(kv, { limit: 2 });
  assert.deepEqual(one.people.map((p) => p.phone), [phone(0), phone(1)]);
  const two = await listPeople(kv, { limit: 2, after: one.next });
  assert.deepEqual(two.people.map((p) => p.phone), [phone(2), phone(3)]);
  const three = await listPeople(kv, { limit: 2, after: two.next });
  assert.deepEqual([three.people.map((p) => p.phone), three.next], [[phone(4)], undefined]);
});

Deno.test("directory - numbers and people are checked alike everywhere", () => {
  assert.deepEqual(normalizePhone("whatsapp:+1 (555) 123-4567"), { phone: "+15551234567" });
  assert.ok("problem" in normalizePhone("+0123"));
  const checked = checkPerson({
    phone: "+15551234567",
    name: " Ada ",
    email: "ada@example.com",
    properties: { b: 1, a: { c: 2 } },
  }, 7);
  assert.deepEqual(checked, {
    phone: "+15551234567",
    person: {
      name: "Ada",
      email: "ada@example.com",
      properties: { b: 1, a: { c: 2 } },
      updatedAt: 7,
    },
  });
  const bad = checkPerson({ phone: "555", name: "", email: "x", properties: "{}" }, 0);
  assert.deepEqual(bad, {
    problems: [
      "phone_number is not +E164, e.g. +15551234567",
      "name is empty",
      "email is not an email address",
    ],
  });
});

Deno.test("directory - large imports stay within a denokv server's limits (10 checks, 1,000 mutations, 800 KiB a commit)", async () => {
  await using store = await testKv("kv-connect");
  using kv = await Deno.openKv(store.env.DENO_KV_URL);
  // 1,000 people, and 120 whose properties take 6 KB each: commits are cut by count and by size.
  const big = { notes: "x".repeat(6_000) };
  const changes: DirectoryChange[] = [
    ...Array.from({ length: 1_000 }, (_, i): DirectoryChange => [phone(i), person(`P${i}`)]),
    ...Array.from(
      { length: 120 },
      (_, i): DirectoryChange => [phone(5_000 + i), person(`B${i}`, big)],
    ),
  ];
  const done = await writeDirectory(kv, changes);
  assert.equal(done.added, 1_120);
  assert.deepEqual((await kv.get(DIRECTORY_KEY)).value, { count: 1_120 });
});
