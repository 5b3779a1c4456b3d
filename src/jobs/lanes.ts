/**
 * Per-number lanes: each sender's messages wait in KV in the order their
 * accepting commits gave them, and one lease per number lets one worker,
 * anywhere, answer them one at a time.
 *
 * Keys: `["queue", phone, seq, sid]` → sid (what waits; `seq` comes from the
 * number's state, see `jobs.ts`), `["lanes", phone]` (exists while the lane
 * may hold work; every arrival rewrites it, so a holder can tell whether work
 * arrived since it looked), `["leases", phone]` → {@linkcode LeaseValue}.
 *
 * A lease names the worker process that holds it and is never renewed: it
 * lasts as long as that process's heartbeat (`presence.ts`). So a process
 * pays one write per heartbeat for all its lanes, a slow answer is never
 * taken over while its process lives, and a dead process's lanes are free
 * as soon as it is known to be dead. A lease whose holder died with its lane
 * idle stays (one small key) until the number writes again.
 *
 * @module
 */
import type { GroupCommit } from "./_group_commit.ts";
import type { Presence } from "./presence.ts";

/** Who holds a lane. */
export interface LeaseValue {
  /** The holder's worker id (its heartbeat key). */
  owner: string;
  /** When it was taken (wall clock, for operators only). */
  takenAt: number;
}

/** The mark of a lane that may hold work. */
export interface LaneValue {
  touchedAt: number;
}

export const queuePrefix = (phone: string): Deno.KvKey => ["queue", phone];
export const queueKey = (phone: string, seq: number, sid: string): Deno.KvKey => [
  "queue",
  phone,
  seq,
  sid,
];
export const laneKey = (phone: string): Deno.KvKey => ["lanes", phone];
export const leaseKey = (phone: string): Deno.KvKey => ["leases", phone];

/**
 * Adds to `op` the mutations that put a message at the back of its lane,
 * at position `seq`.
 *
 * @example
 * ```ts
 * await addToLane(kv.atomic(), { phone: "+15551234567", seq: 1, messageSid: "SM…", touchedAt: Date.now() }).commit();
 * ```
 */
export function addToLane(
  op: Deno.AtomicOperation,
  item: { phone: string; seq: number; messageSid: string; touchedAt: number },
): Deno.AtomicOperation {
  return op
    .set(queueKey(item.phone, item.seq, item.messageSid), item.messageSid)
    .set(laneKey(item.phone), { touchedAt: item.touchedAt } satisfies LaneValue);
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

/** How giving a lane up went. */
export type Release = "released" | "work_arrived" | "lost";

/** A lease this process holds on one lane. */
export interface Lease {
  readonly phone: string;
  /**
   * True while the lease is ours and this process may act on it: checked
   * before every step that KV cannot undo, such as a send.
   */
  held(): boolean;
  /**
   * Commits `build`'s mutations only while the lease is still ours.
   * Commits through one lease run one at a time. Resolves false when a check
   * failed (the caller's, or the lease's: then {@linkcode Lease.held} turns false).
   */
  commit(build?: (op: Deno.AtomicOperation) => Deno.AtomicOperation): Promise<boolean>;
  /**
   * Gives the lane up. With `emptyLane` (the lane mark read before finding
   * no work), it also clears the mark, and answers `work_arrived` when work
   * arrived since: the caller must then look again, still holding the lane.
   */
  release(emptyLane?: Deno.KvEntryMaybe<unknown>): Promise<Release>;
}

/** The outcome of {@linkcode acquireLease} when a live worker holds the lane. */
export interface LeaseBusy {
  heldBy: string;
}

/**
 * Takes the lane of `phone` for this process, unless a live worker holds
 * it. A lease of a dead worker, or of this process's own earlier id, is
 * taken over; of two takers at once, one wins. With `commits`, this
 * lease's commits are grouped with other lanes' (and webhooks').
 *
 * @example
 * ```ts
 * const lease = await acquireLease(kv, "+15551234567", presence);
 * if ("heldBy" in lease) console.log("busy: its holder drains it");
 * ```
 */
export async function acquireLease(
  kv: Deno.Kv,
  phone: string,
  presence: Presence,
  now: () => number = Date.now,
  commits: GroupCommit = alone(kv),
): Promise<Lease | LeaseBusy> {
  const owner = presence.id();
  const current = await kv.get<LeaseValue>(leaseKey(phone));
  const holder = current.value?.owner;
  if (holder !== undefined && holder !== owner && (await presence.liveness(holder)).alive) {
    return { heldBy: holder };
  }
  const taken = await commits.commit(
    (op) => op.check(current).set(leaseKey(phone), { owner, takenAt: now() } satisfies LeaseValue),
    [
      phone,
    ],
  );
  if (!taken.ok) {
    const winner = await kv.get<LeaseValue>(leaseKey(phone));
    return { heldBy: winner.value?.owner ?? "unknown" };
  }
  return holdLease(kv, phone, presence, owner, taken.versionstamp, commits);
}

/** Commits one operation at a time, for callers without a group committer. */
const alone = (kv: Deno.Kv): GroupCommit => ({
  commit: (build) => build(kv.atomic()).commit(),
});

function holdLease(
  kv: Deno.Kv,
  phone: string,
  presence: Presence,
  owner: string,
  versionstamp: string,
  commits: GroupCommit,
): Lease {
  const lease = { key: leaseKey(phone), versionstamp };
  let lost = false;
  let chain: Promise<unknown> = Promise.resolve();
  const stillOurs = async () => (await kv.get(lease.key)).versionstamp === versionstamp;

  /** Commits under the lease, one at a time. */
  const commitUnder = (build: (op: Deno.AtomicOperation) => Deno.AtomicOperation) => {
    const run = chain.then(async () => {
      if (lost) return { ok: false as const };
      // Commits of many lanes share one durable write (the lane's phone keeps
      // two of its own apart).
      const result = await commits.commit((op) => build(op.check(lease)), [phone]);
      // The check that failed may be the caller's; only ours loses the lease.
      if (!result.ok && !(await stillOurs())) lost = true;
      return result;
    });
    chain = run.catch(() => {});
    return run;
  };

  return {
    phone,
    held: () => !lost && presence.id() === owner && presence.fresh(),
    commit: async (build = (op) => op) => (await commitUnder(build)).ok,
    async release(emptyLane) {
      const result = await commitUnder((op) => {
        if (emptyLane) op.check(emptyLane).delete(laneKey(phone));
        return op.delete(lease.key);
      });
      if (result.ok) {
        lost = true; // nothing more may be done under it
        return "released";
      }
      return lost ? "lost" : "work_arrived";
    },
  };
}
