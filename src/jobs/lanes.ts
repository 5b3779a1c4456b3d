/**
 * Per-number lanes: each sender's messages wait in KV in the order the
 * webhook accepted them, and one lease per number lets one worker, anywhere,
 * answer them one at a time.
 *
 * Keys: `["queue", phone, receivedAt, sid]` → sid (what waits),
 * `["lanes", phone]` (exists while the lane may hold work; every arrival
 * rewrites it, so a holder can tell whether work arrived since it looked),
 * `["leases", phone]` → {@linkcode LeaseValue}.
 *
 * @module
 */

/** Who holds a lane, and until when (Unix ms). */
export interface LeaseValue {
  owner: string;
  until: number;
}

/** The mark of a lane that may hold work. */
export interface LaneValue {
  touchedAt: number;
}

export const queuePrefix = (phone: string): Deno.KvKey => ["queue", phone];
export const queueKey = (phone: string, receivedAt: number, sid: string): Deno.KvKey => [
  "queue",
  phone,
  receivedAt,
  sid,
];
export const laneKey = (phone: string): Deno.KvKey => ["lanes", phone];
export const leaseKey = (phone: string): Deno.KvKey => ["leases", phone];

/**
 * Adds to `op` the mutations that put a message at the back of its lane.
 *
 * @example
 * ```ts
 * await addToLane(kv.atomic(), { phone: "+15551234567", receivedAt: Date.now(), messageSid: "SM…" }).commit();
 * ```
 */
export function addToLane(
  op: Deno.AtomicOperation,
  item: { phone: string; receivedAt: number; messageSid: string },
): Deno.AtomicOperation {
  return op
    .set(queueKey(item.phone, item.receivedAt, item.messageSid), item.messageSid)
    .set(laneKey(item.phone), { touchedAt: item.receivedAt } satisfies LaneValue);
}

/** The first message waiting in a lane, if any. */
export async function headOfLane(
  kv: Deno.Kv,
  phone: string,
): Promise<{ key: Deno.KvKey; messageSid: string } | undefined> {
  for await (const entry of kv.list<string>({ prefix: queuePrefix(phone) }, { limit: 1 })) {
    return { key: entry.key, messageSid: entry.value };
  }
  return undefined;
}

/** Every number whose lane may hold work. */
export async function* pendingLanes(kv: Deno.Kv): AsyncGenerator<string> {
  for await (const entry of kv.list({ prefix: ["lanes"] })) yield entry.key[1] as string;
}

/** A lease this worker holds on one lane. */
export interface Lease {
  readonly phone: string;
  /** True while the lease is ours and has time left to act on. */
  held(): boolean;
  /**
   * Commits `build`'s mutations only while the lease is still ours, and
   * extends it. Commits through one lease run one at a time.
   */
  commit(build?: (op: Deno.AtomicOperation) => Deno.AtomicOperation): Promise<boolean>;
  /**
   * Gives the lane up. With `emptyLane` (the lane entry read before finding
   * no work), it also clears the lane mark, and fails when work arrived
   * since: the caller must then look again.
   */
  release(emptyLane?: Deno.KvEntryMaybe<unknown>): Promise<boolean>;
}

/** The outcome of {@linkcode acquireLease} when someone else holds the lane. */
export interface LeaseBusy {
  heldUntil: number;
}

/**
 * Takes the lane of `phone` for `ttlMs`, renewed every third of it until
 * released. Fails with the holder's expiry when another owner holds it.
 *
 * @example
 * ```ts
 * const lease = await acquireLease(kv, "+15551234567", { owner: crypto.randomUUID(), ttlMs: 30_000 });
 * if ("heldUntil" in lease) console.log("busy until", lease.heldUntil);
 * ```
 */
export async function acquireLease(
  kv: Deno.Kv,
  phone: string,
  options: { owner: string; ttlMs: number; now?: () => number },
): Promise<Lease | LeaseBusy> {
  const now = options.now ?? Date.now;
  const { owner, ttlMs } = options;
  const current = await kv.get<LeaseValue>(leaseKey(phone));
  if (current.value && current.value.until > now() && current.value.owner !== owner) {
    return { heldUntil: current.value.until };
  }
  let until = now() + ttlMs;
  const taken = await kv.atomic()
    .check(current)
    .set(leaseKey(phone), { owner, until } satisfies LeaseValue, { expireIn: ttlMs * 2 })
    .commit();
  if (!taken.ok) {
    const winner = await kv.get<LeaseValue>(leaseKey(phone));
    return { heldUntil: winner.value?.until ?? now() };
  }

  let versionstamp = taken.versionstamp;
  let lost = false;
  let chain: Promise<unknown> = Promise.resolve();
  /** Commits under the lease, one at a time; `keep` re-sets it, else deletes it. */
  const commitUnder = (
    build: (op: Deno.AtomicOperation) => Deno.AtomicOperation,
    keep: boolean,
  ): Promise<boolean> => {
    const run = chain.then(async () => {
      if (lost) return false;
      const nextUntil = now() + ttlMs;
      const op = build(kv.atomic()).check({ key: leaseKey(phone), versionstamp });
      const result = await (keep
        ? op.set(leaseKey(phone), { owner, until: nextUntil } satisfies LeaseValue, {
          expireIn: ttlMs * 2,
        })
        : op.delete(leaseKey(phone))).commit();
      if (result.ok) {
        versionstamp = result.versionstamp;
        until = nextUntil;
      } else {
        // The check that failed may be the caller's; only ours loses the lease.
        lost = (await kv.get(leaseKey(phone))).versionstamp !== versionstamp;
      }
      return result.ok;
    });
    chain = run.catch(() => {});
    return run;
  };
  const heartbeat = setInterval(() => {
    commitUnder((op) => op, true).catch(() => lost = true);
  }, Math.max(1, Math.floor(ttlMs / 3)));

  return {
    phone,
    held: () => !lost && now() < until - ttlMs / 6,
    commit: (build = (op) => op) => commitUnder(build, true),
    async release(emptyLane) {
      const released = await commitUnder((op) => {
        return emptyLane ? op.check(emptyLane).delete(laneKey(phone)) : op;
      }, false).catch(() => false);
      if (released || !emptyLane || lost) {
        lost = true;
        clearInterval(heartbeat);
      }
      return released;
    },
  };
}
