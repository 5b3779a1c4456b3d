/**
 * The KV Connect server driven by the real Deno client
 * (`Deno.openKv(server.url)`), and, where the client refuses a request before
 * sending it, by hand-made protocol requests.
 *
 * @module
 */
import assert from "node:assert/strict";
import { DENOKV_LIMITS, type KvConnectServer, startKvConnectServer } from "./kv_connect/mod.ts";
import { decode, encode, Encoding, MutationType } from "./kv_connect/_proto.ts";
import { testKv } from "../_helpers.ts";

const TOKEN = "kv-connect-test-token";

/** A server and the real client on it; disposing closes both. */
async function connect(options: { now?: () => number; token?: string } = {}) {
  const server = await startKvConnectServer({ token: TOKEN, now: options.now });
  Deno.env.set("DENO_KV_ACCESS_TOKEN", options.token ?? TOKEN);
  const kv = await Deno.openKv(server.url);
  return {
    server,
    kv,
    async [Symbol.asyncDispose]() {
      kv.close();
      await server.close();
    },
  };
}

/** What `f` throws (it must throw). */
async function thrown(f: () => Promise<unknown>): Promise<Error> {
  try {
    await f();
  } catch (error) {
    return error as Error;
  }
  assert.fail("expected an error");
}

/**
 * A number or bigint where the types want a `Deno.KvU64`: the runtime (and
 * denokv) also sum plain numbers and bigints, V8-encoded.
 */
const untyped = (n: number | bigint) => n as unknown as Deno.KvU64;

const CHECKS_ERROR =
  /^KV Connect failed to call 'http:\/\/127\.0\.0\.1:\d+\/v2\/atomic_write' \(status=400 Bad Request\): Too many checks included in atomic write\.$/;

// ------------------------------------------------------------------ the real client

Deno.test("kv connect - get, set and delete go through the real client", async () => {
  await using t = await connect();
  assert.deepEqual(await t.kv.get(["a"]), { key: ["a"], value: null, versionstamp: null });
  const { versionstamp } = await t.kv.set(["a"], { nested: [1, "two", 3n] });
  assert.deepEqual(await t.kv.get(["a"]), {
    key: ["a"],
    value: { nested: [1, "two", 3n] },
    versionstamp,
  });
  await t.kv.set(["bytes"], new Uint8Array([1, 2, 3]));
  assert.deepEqual((await t.kv.get(["bytes"])).value, new Uint8Array([1, 2, 3]));
  await t.kv.delete(["a"]);
  assert.equal((await t.kv.get(["a"])).versionstamp, null);
  assert.equal(t.server.size, 1);
  // One exchange at open, then one by the client's background refresher.
  await t.server.until((stats) => stats.metadataExchanges >= 2);
  assert.equal(t.server.stats.metadataExchanges, 2);
});

Deno.test("kv connect - list orders keys exactly as a local KV does", async () => {
  await using t = await connect();
  await using local = await Deno.openKv(":memory:");
  const keys: Deno.KvKey[] = [
    ["o", "b"],
    ["o", new Uint8Array([0])],
    ["o", 2],
    ["o", -1.5],
    ["o", 10n],
    ["o", true],
    ["o", false],
    ["o", "a", 1],
    ["o", "a"],
    ["o", ""],
    ["o", "é"],
    ["p"],
    ["n"],
  ];
  for (const key of keys) {
    await t.kv.set(key, key.length);
    await local.set(key, key.length);
  }
  const selectors: [Deno.KvListSelector, Deno.KvListOptions][] = [
    [{ prefix: ["o"] }, {}],
    [{ prefix: ["o"] }, { reverse: true }],
    [{ prefix: ["o"] }, { limit: 3 }],
    [{ prefix: ["o"] }, { limit: 2, reverse: true }],
    [{ prefix: ["o"] }, { batchSize: 2 }],
    [{ start: ["o", "a"], end: ["o", 10n] }, {}],
    [{ prefix: ["o"], start: ["o", "a"] }, { reverse: true }],
    [{ prefix: ["o"], end: ["o", 2] }, {}],
    [{ prefix: [] }, {}],
  ];
  for (const [selector, options] of selectors) {
    const remote = await Array.fromAsync(t.kv.list(selector, options), (e) => e.key);
    const expected = await Array.fromAsync(local.list(selector, options), (e) => e.key);
    assert.deepEqual(remote, expected, JSON.stringify({ selector, options }, replacer));
  }
});

Deno.test("kv connect - getMany answers each key, absent ones as null", async () => {
  await using t = await connect();
  await t.kv.set(["x", 1], "one");
  await t.kv.set(["x", 3], "three");
  const entries = await t.kv.getMany([["x", 1], ["x", 2], ["x", 3]]);
  assert.deepEqual(entries.map((e) => e.value), ["one", null, "three"]);
  assert.equal(t.server.stats.snapshotReads, 1, "one snapshot read for all three");
});

Deno.test("kv connect - versionstamps are 10 bytes, increasing, and read back as committed", async () => {
  await using t = await connect();
  const stamps: string[] = [];
  for (let i = 0; i < 20; i++) stamps.push((await t.kv.set(["v"], i)).versionstamp);
  for (const stamp of stamps) assert.match(stamp, /^[0-9a-f]{16}0000$/);
  assert.deepEqual([...stamps].sort(), stamps);
  assert.equal(new Set(stamps).size, stamps.length);
  assert.equal((await t.kv.get(["v"])).versionstamp, stamps.at(-1));
});

Deno.test("kv connect - checks: null means absent, a stale versionstamp fails the commit", async () => {
  await using t = await connect();
  const claim = () => t.kv.atomic().check({ key: ["sid"], versionstamp: null }).set(["sid"], 1);
  const first = await claim().commit();
  assert.ok(first.ok);
  assert.deepEqual(await claim().commit(), { ok: false });
  const current = await t.kv.get(["sid"]);
  const update = () => t.kv.atomic().check(current).set(["sid"], 2).commit();
  assert.ok((await update()).ok);
  assert.deepEqual(await update(), { ok: false }, "the versionstamp moved on");
  assert.equal((await t.kv.get(["sid"])).value, 2);
  assert.equal(t.server.stats.checkFailures, 2);
});

Deno.test("kv connect - sum, min and max on Deno.KvU64, sum wrapping at 2^64", async () => {
  await using t = await connect();
  const u64 = async (key: string) => (await t.kv.get<Deno.KvU64>([key])).value?.value;
  await t.kv.atomic().sum(["s"], 5n).sum(["s"], 7n).min(["lo"], 9n).max(["hi"], 9n).commit();
  assert.deepEqual([await u64("s"), await u64("lo"), await u64("hi")], [12n, 9n, 9n]);
  await t.kv.atomic().min(["lo"], 3n).min(["lo"], 4n).max(["hi"], 20n).max(["hi"], 11n).commit();
  assert.deepEqual([await u64("lo"), await u64("hi")], [3n, 20n]);
  await t.kv.atomic().sum(["s"], 2n ** 64n - 2n).commit();
  assert.equal(await u64("s"), 10n);
});

Deno.test("kv connect - sum, min and max refuse the same mismatches as a local KV, as a 400", async () => {
  await using t = await connect();
  await using local = await Deno.openKv(":memory:");
  for (const kv of [t.kv, local]) await kv.set(["text"], "not a number");
  const cases: [string, (kv: Deno.Kv) => Deno.AtomicOperation][] = [
    [
      "Failed to perform 'min' mutation on a non-U64 operand",
      (kv) => kv.atomic().mutate({ type: "min", key: ["n"], value: untyped(2) }),
    ],
    [
      "Failed to perform 'max' mutation on a non-U64 value in the database",
      (kv) => kv.atomic().max(["text"], 1n),
    ],
    [
      "Failed to perform 'sum' mutation on a non-U64 value in the database",
      (kv) => kv.atomic().sum(["text"], 1n),
    ],
    [
      "Cannot sum KvU64 with Number",
      (kv) => kv.atomic().sum(["u"], 1n).mutate({ type: "sum", key: ["u"], value: untyped(1) }),
    ],
  ];
  for (const [message, build] of cases) {
    const remote = await thrown(() => build(t.kv).commit());
    const near = await thrown(() => build(local).commit());
    assert.equal(near.message, message);
    assert.equal(remote.constructor, Error, "a generic Error, where a local KV throws a TypeError");
    assert.ok(remote.message.endsWith(`(status=400 Bad Request): ${message}`), remote.message);
  }
  assert.equal((await t.kv.get(["u"])).versionstamp, null, "a refused write applies nothing");
  assert.equal(t.server.stats.refusedWrites, cases.length);
});

Deno.test("kv connect - a sum of numbers or bigints works as on a local KV", async () => {
  await using t = await connect();
  await using local = await Deno.openKv(":memory:");
  for (const kv of [t.kv, local]) {
    await kv.set(["n"], 5);
    await kv.atomic().mutate({ type: "sum", key: ["n"], value: untyped(2.5) }).commit();
    await kv.atomic().mutate({ type: "sum", key: ["b"], value: untyped(40n) }).commit();
    await kv.atomic().mutate({ type: "sum", key: ["b"], value: untyped(2n) }).commit();
  }
  for (const kv of [t.kv, local]) {
    assert.deepEqual((await kv.getMany([["n"], ["b"]])).map((e) => e.value), [7.5, 42n]);
  }
});

Deno.test("kv connect - expireIn: the key reads as absent once the server's clock passes it", async () => {
  let clock = Date.now();
  await using t = await connect({ now: () => clock });
  await t.kv.set(["session"], "token", { expireIn: 60_000 });
  await t.kv.atomic().set(["lease"], "me", { expireIn: 600_000 }).commit();
  assert.equal((await t.kv.get(["session"])).value, "token");
  clock += 120_000; // the client stamped Date.now() + 60 s, so this is past it
  assert.equal((await t.kv.get(["session"])).versionstamp, null);
  assert.equal((await t.kv.get(["lease"])).value, "me");
  assert.ok((await t.kv.atomic().check({ key: ["session"], versionstamp: null }).commit()).ok);
  clock += 600_000;
  assert.deepEqual(await Array.fromAsync(t.kv.list({ prefix: [] })), []);
});

Deno.test("kv connect - 10 checks in one commit pass, 11 are refused with denokv's 400", async () => {
  await using t = await connect();
  await using local = await Deno.openKv(":memory:");
  const withChecks = (kv: Deno.Kv, n: number) => {
    const op = kv.atomic();
    for (let i = 0; i < n; i++) op.check({ key: ["c", i], versionstamp: null });
    return op.set(["done", n], true);
  };
  assert.ok((await withChecks(t.kv, 10).commit()).ok);
  const error = await thrown(() => withChecks(t.kv, 11).commit());
  assert.equal(error.constructor, Error);
  assert.match(error.message, CHECKS_ERROR);
  assert.equal(t.server.stats.refusedWrites, 1);
  assert.equal((await t.kv.get(["done", 11])).versionstamp, null);
  assert.ok((await withChecks(local, 11).commit()).ok, "a local KV allows 100");
});

Deno.test("kv connect - refusals are counted by reason, those over a limit apart; a failed check is no refusal", async () => {
  await using t = await connect();
  assert.ok(
    (await t.kv.atomic().check({ key: ["k"], versionstamp: null }).set(["k"], 1).commit()).ok,
  );
  const again = await t.kv.atomic().check({ key: ["k"], versionstamp: null }).set(["k"], 2)
    .commit();
  assert.equal(again.ok, false);
  assert.equal(t.server.stats.checkFailures, 1);
  assert.deepEqual(t.server.stats.refusals, {}, "a check conflict is an ordinary answer");
  const op = t.kv.atomic();
  for (let i = 0; i < 11; i++) op.check({ key: ["c", i], versionstamp: null });
  await thrown(() => op.commit());
  const bad = await fetch(`${t.server.url}/v2/atomic_write`, { method: "POST", body: "x" });
  await bad.body?.cancel();
  assert.deepEqual(t.server.stats.refusals, { tooManyChecks: 1, invalidProtocolVersion: 1 });
  assert.equal(t.server.stats.limitRefusals, 1, "only the 11 checks broke a limit");
});

Deno.test("kv connect - the end-to-end suite's KV fails its test at disposal when a request broke a limit", async () => {
  const store = await testKv("kv-connect");
  using kv = await Deno.openKv(store.server!.url);
  const op = kv.atomic();
  for (let i = 0; i < 11; i++) op.check({ key: ["c", i], versionstamp: null });
  await thrown(() => op.commit());
  kv.close();
  const error = await thrown(async () => await store[Symbol.asyncDispose]());
  assert.match(error.message, /refused 1 request\(s\) over denokv's limits .*"tooManyChecks":1/);
});

for (const how of ["5xx", "drop"] as const) {
  Deno.test(`kv connect - a commit applied and then not answered (${how}) is sent again by the client: checked, it fails its check; unchecked, it applies twice`, async () => {
    await using t = await connect();
    t.server.applyThenFail(1, how);
    const unchecked = await t.kv.atomic().sum(["count"], 1n).set(["seen"], "x").commit();
    assert.ok(unchecked.ok, "the second application is the one answered");
    assert.equal((await t.kv.get<Deno.KvU64>(["count"])).value?.value, 2n, "counted twice");

    t.server.applyThenFail(1, how);
    const key = ["message", "SM1"];
    const checked = await t.kv.atomic().check({ key, versionstamp: null }).set(key, 1)
      .sum(["count"], 1n).commit();
    assert.equal(checked.ok, false, "the caller hears of a failed check, though it landed");
    assert.equal((await t.kv.get(key)).value, 1);
    assert.equal((await t.kv.get<Deno.KvU64>(["count"])).value?.value, 3n, "counted once");
    assert.equal(t.server.stats.appliedThenFailed, 2);
  });
}

Deno.test("kv connect - applyThenFail picks its writes by their keys, read back as the client wrote them", async () => {
  await using t = await connect();
  const seen: Deno.KvKey[][] = [];
  t.server.applyThenFail(1, "5xx", (keys) => (seen.push(keys), keys[0][0] === "pick"));
  const key = ["pick", "a\u0000b", 1, 2.5, -3n, 70000n, true, false, new Uint8Array([0, 1])];
  await t.kv.set(["other"], 1);
  await t.kv.set(key, 1);
  assert.deepEqual(seen, [[["other"]], [key]], "asked of each write until one matched");
  assert.equal(t.server.stats.appliedThenFailed, 1);
});

Deno.test("kv connect - a refused write is not retried by the client", async () => {
  await using t = await connect();
  const op = t.kv.atomic();
  for (let i = 0; i < 11; i++) op.check({ key: ["c", i], versionstamp: null });
  const before = t.server.stats.dataRequests;
  await thrown(() => op.commit());
  assert.equal(t.server.stats.dataRequests - before, 1);
});

Deno.test("kv connect - a value over 64 KiB is refused by the client before it is sent", async () => {
  await using t = await connect();
  const before = t.server.stats.dataRequests;
  const error = await thrown(() => t.kv.set(["big"], new Uint8Array(65_537)));
  assert.ok(error instanceof TypeError);
  assert.equal(error.message, "Value too large (max 65536 bytes)");
  assert.equal(t.server.stats.dataRequests, before, "nothing reached the server");
  await t.kv.set(["big"], new Uint8Array(65_536));
  assert.equal((await t.kv.get<Uint8Array>(["big"])).value?.length, 65_536);
});

Deno.test("kv connect - a wrong token fails Deno.openKv itself, with the server's text", async () => {
  await using server = await startKvConnectServer({ token: TOKEN });
  Deno.env.set("DENO_KV_ACCESS_TOKEN", "not-the-token");
  const error = await thrown(() => Deno.openKv(server.url));
  assert.ok(error instanceof TypeError);
  assert.equal(
    error.message,
    `Could not open Deno KV database: the metadata endpoint at '${server.url}/' responded with status 401 Unauthorized: Invalid access token.`,
  );
  assert.equal(server.stats.metadataExchanges, 0);
});

Deno.test("kv connect - enqueue throws, and the commit that carries one is not sent", async () => {
  await using t = await connect();
  const before = t.server.stats.dataRequests;
  const error = await thrown(() => t.kv.enqueue({ hello: 1 }));
  assert.equal(error.message, "Enqueue operations are not supported in KV Connect");
  await thrown(() => t.kv.atomic().set(["with"], 1).enqueue("trigger").commit());
  assert.equal(t.server.stats.dataRequests, before);
  assert.equal((await t.kv.get(["with"])).versionstamp, null);
});

Deno.test("kv connect - the client retries a 5xx on the data path by itself, then succeeds", async () => {
  await using t = await connect();
  await t.kv.set(["k"], "v");
  t.server.failNext(3, 503);
  assert.equal((await t.kv.get(["k"])).value, "v");
  t.server.failNext(2, 500);
  assert.ok((await t.kv.set(["k"], "w")).ok);
  assert.equal(t.server.stats.faults, 5);
  assert.equal((await t.kv.get(["k"])).value, "w", "the retried write was applied once");
});

Deno.test("kv connect - a 5xx from the metadata endpoint fails Deno.openKv at once", async () => {
  await using server = await startKvConnectServer({ token: TOKEN });
  server.failNext(1, 503, "metadata");
  Deno.env.set("DENO_KV_ACCESS_TOKEN", TOKEN);
  const error = await thrown(() => Deno.openKv(server.url));
  assert.ok(error instanceof TypeError);
  assert.match(error.message, /responded with status 503 Service Unavailable/);
  assert.equal(server.stats.roundTrips, 1, "no retry at open");
});

Deno.test("kv connect - an unreachable server fails Deno.openKv at once", async () => {
  const server = await startKvConnectServer({ token: TOKEN });
  await server.close();
  Deno.env.set("DENO_KV_ACCESS_TOKEN", TOKEN);
  const error = await thrown(() => Deno.openKv(server.url));
  assert.match(error.message, /^Could not open Deno KV database: failed to connect to /);
});

Deno.test("kv connect - once open, a request to an unreachable server never fails: it retries until the server is back", async () => {
  await using t = await connect();
  await t.kv.set(["k"], "v");
  await t.server.unreachable();
  let settled = false;
  const read = t.kv.get(["k"]).finally(() => settled = true);
  await t.server.until((stats) => stats.droppedConnections >= 3);
  assert.equal(settled, false, "still waiting after three refused attempts");
  await t.server.reachable();
  assert.equal((await read).value, "v");
});

Deno.test("kv connect - a held request is answered when released", async () => {
  await using t = await connect();
  t.server.hold();
  const write = t.kv.set(["k"], 1);
  await t.server.until((stats) => stats.held === 1);
  assert.equal(t.server.stats.commits, 0);
  t.server.release();
  assert.ok((await write).ok);
  assert.equal(t.server.stats.commits, 1);
});

Deno.test("kv connect - watch reports the current value, then each change", async () => {
  await using t = await connect();
  await t.kv.set(["w"], 1);
  const reader = t.kv.watch([["w"], ["none"]]).getReader();
  const values = async () => (await reader.read()).value!.map((e) => e.value);
  assert.deepEqual(await values(), [1, null]);
  await t.kv.set(["w"], 2);
  assert.deepEqual(await values(), [2, null]);
  await t.kv.set(["none"], "now");
  assert.deepEqual(await values(), [2, "now"]);
  await reader.cancel();
});

// --------------------------------------------------------- the protocol, by hand

/** The metadata exchange as a client makes it. */
function exchange(server: KvConnectServer, init: { token?: string; body?: string | null } = {}) {
  const body = init.body === undefined
    ? JSON.stringify({ supportedVersions: [1, 2, 3] })
    : init.body;
  return fetch(server.url, {
    method: "POST",
    headers: {
      authorization: `Bearer ${init.token ?? TOKEN}`,
      "content-type": "application/json",
    },
    body,
  });
}

/** A data path call with the metadata's credentials, or `headers` instead. */
async function call(
  server: KvConnectServer,
  route: "snapshot_read" | "atomic_write" | "watch",
  body: Uint8Array<ArrayBuffer>,
  headers: Record<string, string> = {},
) {
  const metadata = await (await exchange(server)).json();
  const response = await fetch(`${server.url}/v2/${route}`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${metadata.token}`,
      "content-type": "application/x-protobuf",
      "x-denokv-version": String(metadata.version),
      "x-denokv-database-id": metadata.databaseId,
      ...headers,
    },
    body,
  });
  return { status: response.status, bytes: new Uint8Array(await response.arrayBuffer()) };
}

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const key = (s: string) => new TextEncoder().encode(`\x02${s}\x00`);
const set = (k: Uint8Array, data: Uint8Array, encoding: number = Encoding.BYTES) => ({
  key: k,
  value: { data, encoding },
  mutation_type: MutationType.SET,
});

Deno.test("kv connect protocol - metadata: version 3, one strong endpoint, a day's validity", async () => {
  await using server = await startKvConnectServer({ token: TOKEN });
  const response = await exchange(server);
  assert.equal(response.headers.get("content-type"), "application/json");
  const metadata = await response.json();
  assert.equal(metadata.version, 3);
  assert.match(
    metadata.databaseId,
    /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
  );
  assert.deepEqual(metadata.endpoints, [{ url: "/v2", consistency: "strong" }]);
  assert.notEqual(metadata.token, TOKEN);
  const validFor = Date.parse(metadata.expiresAt) - Date.now();
  assert.ok(validFor > 23 * 3600_000 && validFor <= 24 * 3600_000, metadata.expiresAt);
});

Deno.test("kv connect protocol - metadata refusals are denokv's, in its order", async () => {
  await using server = await startKvConnectServer({ token: TOKEN });
  const cases: [Response, number, string][] = [
    [await exchange(server, { token: "wrong" }), 401, "Invalid access token."],
    [
      await exchange(server, { body: null }),
      400,
      "The server requires at least protocol version 2. Use Deno 1.38.0 or newer.",
    ],
    [
      await exchange(server, { token: "wrong", body: '{"supportedVersions":[1]}' }),
      400,
      "The server could not negotiate a protocol version. The server requires protocol version 2 or 3.",
    ],
    [await fetch(`${server.url}/v1/other`, { method: "POST" }), 404, "Resource not found."],
  ];
  for (const [response, status, message] of cases) {
    assert.equal(response.status, status);
    assert.equal(await response.text(), message);
  }
  const v2 = await (await exchange(server, { body: '{"supportedVersions":[1,2]}' })).json();
  assert.equal(v2.version, 2);
});

Deno.test("kv connect protocol - the data path wants the metadata's token, version and database id", async () => {
  await using server = await startKvConnectServer({ token: TOKEN });
  const read = encode("SnapshotRead", { ranges: [] });
  const cases: [Record<string, string>, number, string][] = [
    [{ authorization: `Bearer ${TOKEN}` }, 401, "Invalid access token."],
    [{ authorization: "nonsense" }, 401, "Malformed authorization header."],
    [{ "x-denokv-version": "1" }, 400, "Expected protocol version 2."],
    [{ "x-denokv-database-id": crypto.randomUUID() }, 400, "Invalid database id."],
  ];
  for (const [headers, status, message] of cases) {
    const answer = await call(server, "snapshot_read", read, headers);
    assert.deepEqual([answer.status, text(answer.bytes)], [status, message]);
  }
  const garbage = await call(server, "atomic_write", new Uint8Array([0xff, 0xff, 0xff]));
  assert.equal(garbage.status, 400);
  assert.match(text(garbage.bytes), /^Request protobuf is invalid: .+\.$/);
});

Deno.test("kv connect protocol - limits the client checks first are enforced by the server too", async () => {
  await using server = await startKvConnectServer({ token: TOKEN });
  const write = (mutations: object[]) =>
    call(server, "atomic_write", encode("AtomicWrite", { mutations } as never));
  const refusals: [Promise<{ status: number; bytes: Uint8Array }>, string][] = [
    [write([set(key("big"), new Uint8Array(65_537))]), "A value exceeds the value size limit."],
    [write([set(new Uint8Array(2049), new Uint8Array())]), "A key exceeds the key size limit."],
    [
      write(Array.from({ length: 13 }, (_, i) => set(key(`k${i}`), new Uint8Array(65_536)))),
      "The total size of the atomic write is too large.",
    ],
    [
      write(Array.from({ length: 1001 }, (_, i) => set(key(`k${i}`), new Uint8Array()))),
      "Too many mutations / enqueues included in atomic write.",
    ],
    [
      call(
        server,
        "snapshot_read",
        encode("SnapshotRead", { ranges: [{ start: key("a"), end: key("b"), limit: 0 }] } as never),
      ),
      "The read range limit of the snapshot read request is invalid.",
    ],
    [
      call(
        server,
        "snapshot_read",
        encode("SnapshotRead", {
          ranges: Array.from({ length: 11 }, () => ({ start: key("a"), end: key("b"), limit: 1 })),
        } as never),
      ),
      "Too many read ranges requested in one read request.",
    ],
    [
      call(
        server,
        "snapshot_read",
        encode("SnapshotRead", {
          ranges: [{ start: key("a"), end: key("b"), limit: 1001 }],
        } as never),
      ),
      "The total number of entries requested across read ranges in the read request is too large.",
    ],
  ];
  for (const [answer, message] of refusals) {
    const { status, bytes } = await answer;
    assert.deepEqual([status, text(bytes)], [400, message]);
  }
  const ok = await write([set(key("max"), new Uint8Array(DENOKV_LIMITS.maxValueBytes))]);
  assert.equal(decode("AtomicWriteOutput", ok.bytes).status, 1);
});

Deno.test("kv connect protocol - a value in an encoding denokv cannot decode is its 500", async () => {
  await using server = await startKvConnectServer({ token: TOKEN });
  const answer = await call(
    server,
    "atomic_write",
    encode("AtomicWrite", { mutations: [set(key("x"), new Uint8Array([1]), 7)] } as never),
  );
  assert.deepEqual([answer.status, text(answer.bytes)], [
    500,
    "An internal server error occurred.",
  ]);
});

Deno.test("kv connect protocol - a versionstamped key gets the commit's versionstamp as a string part", async () => {
  await using t = await connect();
  const answer = await call(
    t.server,
    "atomic_write",
    encode("AtomicWrite", {
      mutations: [{
        key: key("log"),
        value: { data: new Uint8Array([7]), encoding: Encoding.BYTES },
        mutation_type: MutationType.SET_SUFFIX_VERSIONSTAMPED_KEY,
      }],
    } as never),
  );
  const { versionstamp } = decode("AtomicWriteOutput", answer.bytes);
  const hex = Array.from(versionstamp, (b) => b.toString(16).padStart(2, "0")).join("");
  assert.deepEqual(await Array.fromAsync(t.kv.list({ prefix: ["log"] }), (e) => e.key), [[
    "log",
    hex,
  ]]);
});

/** JSON.stringify for keys holding bigints and bytes. */
function replacer(_key: string, value: unknown) {
  if (typeof value === "bigint") return `${value}n`;
  return value instanceof Uint8Array ? [...value] : value;
}
