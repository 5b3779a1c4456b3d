import assert from "node:assert/strict";
import { type AydSession, createSessionStore, sessionKey } from "../../src/ayd/sessions.ts";
import { openTestKv } from "../_kv.ts";

const PHONE = "+15551234567";
const DAY = 24 * 60 * 60 * 1000;

/** An opener that hands out numbered tokens, after a turn of the event loop. */
function counter(now: () => number) {
  let opened = 0;
  return {
    get opened() {
      return opened;
    },
    open: async (_phone: string) => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      return { token: `tok-${++opened}`, expiresAt: now() + 7 * DAY };
    },
  };
}

Deno.test("sessions - opened once, then reused from KV with its expiry", async () => {
  using kv = await openTestKv();
  const now = () => 1_000_000;
  const opener = counter(now);
  const store = createSessionStore(kv, { open: opener.open, now });
  const first = await store.getOrCreate(PHONE);
  const second = await store.getOrCreate(PHONE);
  assert.equal(opener.opened, 1);
  assert.deepEqual(second, first);
  assert.deepEqual((await kv.get(sessionKey(PHONE))).value, {
    token: "tok-1",
    expiresAt: 1_000_000 + 7 * DAY,
    createdAt: 1_000_000,
  });
});

Deno.test("sessions - a stale value still readable in KV counts as absent", async () => {
  using kv = await openTestKv();
  const now = () => 10 * DAY;
  const stale: AydSession = { token: "old", expiresAt: 10 * DAY - 1, createdAt: 3 * DAY };
  await kv.set(sessionKey(PHONE), stale);
  const opener = counter(now);
  const session = await createSessionStore(kv, { open: opener.open, now }).getOrCreate(PHONE);
  assert.equal(session.token, "tok-1");
});

Deno.test("sessions - concurrent first messages in one process open one session", async () => {
  using kv = await openTestKv();
  const opener = counter(Date.now);
  const store = createSessionStore(kv, { open: opener.open });
  const sessions = await Promise.all([1, 2, 3].map(() => store.getOrCreate(PHONE)));
  assert.equal(opener.opened, 1);
  assert.deepEqual(new Set(sessions.map((s) => s.token)), new Set(["tok-1"]));
});

Deno.test("sessions - two processes racing on one KV end with the same stored session", async () => {
  using kv = await openTestKv();
  const opener = counter(Date.now);
  const a = createSessionStore(kv, { open: opener.open });
  const b = createSessionStore(kv, { open: opener.open });
  const [fromA, fromB] = await Promise.all([a.getOrCreate(PHONE), b.getOrCreate(PHONE)]);
  const stored = (await kv.get<AydSession>(sessionKey(PHONE))).value!;
  assert.equal(fromA.token, stored.token);
  assert.equal(fromB.token, stored.token);
});

Deno.test("sessions - renew replaces a refused token, but only once", async () => {
  using kv = await openTestKv();
  const opener = counter(Date.now);
  const store = createSessionStore(kv, { open: opener.open });
  const original = await store.getOrCreate(PHONE);
  const [r1, r2] = await Promise.all([
    store.renew(PHONE, original.token),
    store.renew(PHONE, original.token),
  ]);
  assert.equal(r1.token, "tok-2");
  assert.equal(r2.token, "tok-2");
  // A job that saw the old token later gets the renewed one, not a third.
  assert.equal((await store.renew(PHONE, original.token)).token, "tok-2");
  assert.equal(opener.opened, 2);
});

Deno.test("sessions - a failed opening is reported and not stored", async () => {
  using kv = await openTestKv();
  const store = createSessionStore(kv, {
    open: () => Promise.reject(new Error("AYD down")),
  });
  await assert.rejects(store.getOrCreate(PHONE), /AYD down/);
  assert.equal((await kv.get(sessionKey(PHONE))).value, null);
});

Deno.test("sessions - opened as the person asking; a changed identity replaces the session", async () => {
  using kv = await openTestKv();
  const opened: unknown[] = [];
  let n = 0;
  const store = createSessionStore(kv, {
    open: (_phone, _signal, identity) => {
      opened.push(identity);
      return Promise.resolve({ token: `tok-${++n}`, expiresAt: Date.now() + DAY });
    },
  });
  const north = {
    identity: { name: "Ada", email: "ada@example.com", properties: { region: "north" } },
    fingerprint: "f1",
  };
  const south = {
    identity: { ...north.identity, properties: { region: "south" } },
    fingerprint: "f2",
  };
  const legacy = await store.getOrCreate(PHONE);
  const asNorth = await store.getOrCreate(PHONE, undefined, north);
  assert.notEqual(asNorth.token, legacy.token, "a default session is not the person's");
  assert.equal((await store.getOrCreate(PHONE, undefined, north)).token, asNorth.token);
  const asSouth = await store.getOrCreate(PHONE, undefined, south);
  assert.notEqual(asSouth.token, asNorth.token);
  assert.deepEqual(opened, [undefined, north.identity, south.identity]);
  assert.equal((await kv.get<AydSession>(sessionKey(PHONE))).value?.identity, "f2");
});
