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
 * lasts as long as that process's heartbeat (`presence.ts`). (Each commit
 * under it writes it again, unchanged, only so that no commit can apply
 * twice; see `holdLease`.) So a process
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
  const value: LeaseValue = { owner, takenAt: now() };
  const taken = await commits.commit(
    (op) => op.check(current).set(leaseKey(phone), value),
    [phone],
  );
  if (taken.ok) return holdLease(kv, phone, presence, value, taken.versionstamp, commits);
  const winner = await kv.get<LeaseValue>(leaseKey(phone));
  // The commit landed although it was not acknowledged (a KV Connect client
  // sends it again, and the copy fails its check): the lease is ours.
  if (sameLease(winner.value, value)) {
    return holdLease(kv, phone, presence, value, winner.versionstamp!, commits);
  }
  return { heldBy: winner.value?.owner ?? "unknown" };
}

/** Whether a lease read back is the one `value` wrote (only its writer writes that pair). */
const sameLease = (read: LeaseValue | null, value: LeaseValue) =>
  read?.owner === value.owner && read.takenAt === value.takenAt;

/** Commits one operation at a time, for callers without a group committer. */
const alone = (kv: Deno.Kv): GroupCommit => ({
  commit: (build) => build(kv.atomic()).commit(),
});

/**
 * A lease taken with `value` at `versionstamp`. Every commit under it checks
 * the lease and writes it again, unchanged, so that each commit changes the
 * lease's versionstamp: a commit that Deno's KV Connect client sends twice
 * (the first landed, its answer was lost) then fails its check the second
 * time instead of applying twice (sums would count twice), and reading the
 * lease back tells which it was.
 */
function holdLease(
  kv: Deno.Kv,
  phone: string,
  presence: Presence,
  value: LeaseValue,
  versionstamp: string,
  commits: GroupCommit,
): Lease {
  const key = leaseKey(phone);
  let current = versionstamp;
  let lost = false;
  let chain: Promise<unknown> = Promise.resolve();

  /**
   * Commits under the lease, one at a time; `releasing` deletes the lease
   * rather than writing it again.
   */
  const commitUnder = (
    build: (op: Deno.AtomicOperation) => Deno.AtomicOperation,
    releasing = false,
  ) => {
    const run = chain.then(async (): Promise<Deno.KvCommitResult | Deno.KvCommitError> => {
      if (lost) return { ok: false };
      // Commits of many lanes share one durable write (the lane's phone keeps
      // two of its own apart).
      const result = await commits.commit((op) => {
        const built = build(op.check({ key, versionstamp: current }));
        return releasing ? built.delete(key) : built.set(key, value);
      }, [phone]);
      if (result.ok) {
        current = result.versionstamp;
        return result;
      }
      const read = await kv.get<LeaseValue>(key);
      // Unchanged: the check that failed was the caller's, and nothing was written.
      if (read.versionstamp === current) return result;
      const landed = releasing ? read.versionstamp === null : sameLease(read.value, value);
      if (landed && read.versionstamp !== null) current = read.versionstamp;
      if (landed) return { ok: true, versionstamp: read.versionstamp ?? current };
      lost = true; // another took it
      return result;
    });
    chain = run.catch(() => {});
    return run;
  };

  return {
    phone,
    held: () => !lost && presence.id() === value.owner && presence.fresh(),
    commit: async (build = (op) => op) => (await commitUnder(build)).ok,
    async release(emptyLane) {
      const result = await commitUnder((op) => {
        if (emptyLane) op.check(emptyLane).delete(laneKey(phone));
        return op;
      }, true);
      if (result.ok) {
        lost = true; // nothing more may be done under it
        return "released";
      }
      return lost ? "lost" : "work_arrived";
    },
  };
}
