/**
 * The lane runner: drains one number's lane at a time under its lease, in
 * arrival order, with at most `concurrency` lanes running in this process.
 *
 * @module
 */
import { backoffDelay } from "../backoff.ts";
import { expireAt, isStorageError, type StorageHealth } from "../storage/mod.ts";
import { describeError, type Logger, maskPhone } from "../log.ts";
import { MESSAGE_TTL_MS, messageKey, type MessageRecord } from "./jobs.ts";
import { acquireLease, headOfLane, laneKey, type Lease, pendingLanes } from "./lanes.ts";
import type { GroupCommit } from "./_group_commit.ts";
import type { Presence } from "./presence.ts";
import { type FailureKind, failureKindOf } from "./attempts.ts";

/**
 * What handling one message came to: `done` (answered or failed for good,
 * and out of the lane), `retryAt` (the lane waits until then), or `lost`
 * (the lease went to someone else, or this process may no longer act on it).
 */
export type Disposition = "done" | "lost" | { retryAt: number };

/** What the runner does with the message at the head of a lane. */
export interface MessageHandler {
  /** Handles it; a throw counts against {@linkcode RunnerDeps.failureBudget}. */
  handle(record: MessageRecord, lease: Lease): Promise<Disposition>;
  /**
   * Gives up on a message whose handling kept throwing, or whose record
   * expired while it waited: takes it out of the lane with a dead letter
   * saying `reason`, a failure of `kind`, and tells the user once.
   */
  abandon(item: LaneItem, reason: string, lease: Lease, kind: FailureKind): Promise<void>;
}

/** A message in a lane: its place, and its record unless that expired. */
export interface LaneItem {
  phone: string;
  messageSid: string;
  queueKey: Deno.KvKey;
  record?: MessageRecord;
}

/** Runs lanes. */
export interface LaneRunner {
  /** Drains the lane of `phone` here, unless a live worker holds it. */
  drain(phone: string): Promise<void>;
  /** Starts a drain of every lane that may hold work, and returns: how restarts resume. */
  sweep(): Promise<void>;
  /** Starts no more work and waits for lanes under way, `graceMs` at most. */
  stop(graceMs: number): Promise<void>;
}

/** What the runner needs. */
export interface RunnerDeps {
  kv: Deno.Kv;
  handler: MessageHandler;
  schedule: (phone: string, delayMs: number) => Promise<void>;
  concurrency: number;
  presence: Presence;
  log: Logger;
  /** Told of storage errors, so that health and the queue hear of them at once. */
  health?: StorageHealth;
  /** Runs of one message that may throw before it is given up (default 5). */
  failureBudget?: number;
  /** Groups the lanes' commits into fewer durable writes (default: each alone). */
  commits?: GroupCommit;
  /** Delay before a run that threw is tried again, doubling up to 30 s (default 1 s). */
  retryBaseMs?: number;
  now?: () => number;
}

/** The KV key counting the runs of one message that threw. */
export const failuresKey = (sid: string): Deno.KvKey => ["job_failures", sid];

/** Storage trouble is retried this often, doubling up to 30 s, for as long as it lasts. */
const STORAGE_RETRY = { baseMs: 1_000, capMs: 30_000 };

/**
 * Creates the runner.
 *
 * @example
 * ```ts
 * const runner = createLaneRunner({ kv, handler, schedule: jobs.schedule, concurrency: 1_000, presence, log });
 * jobs.listen(runner.drain);
 * ```
 */
export function createLaneRunner(deps: RunnerDeps): LaneRunner {
  const { kv, log, presence } = deps;
  const now = deps.now ?? Date.now;
  const budget = deps.failureBudget ?? 5;
  // A run that threw for another reason is retried this often, within its budget.
  const retryAfterThrow = { baseMs: deps.retryBaseMs ?? 1_000, capMs: 30_000 };
  const active = new Map<string, Promise<void>>();
  const rerun = new Set<string>();
  // Runs busy with a message: they look at their lane again afterwards.
  const working = new Set<string>();
  // Lanes whose last run met storage trouble, and how often in a row.
  const storageTrouble = new Map<string, number>();
  const waiting: (() => void)[] = [];
  let free = deps.concurrency;
  let stopping = false;

  const takeSlot = () =>
    free > 0 ? (free--, Promise.resolve()) : new Promise<void>((r) => waiting.push(r));
  const giveSlot = () => {
    const next = waiting.shift();
    if (next) next();
    else free++;
  };

  /** Counts a throw against the message (under its lane's lease); resolves with the count. */
  async function countFailure(sid: string): Promise<number> {
    const key = failuresKey(sid);
    const count = ((await kv.get<number>(key)).value ?? 0) + 1;
    await expireAt(kv.atomic().set(key, count), key, now() + MESSAGE_TTL_MS).commit();
    return count;
  }

  /**
   * What a throw from handling `item` comes to: storage trouble is
   * transient and holds the whole lane; anything else counts against the
   * message, which is given up once its budget is spent.
   */
  async function handleFailure(item: LaneItem, lease: Lease, error: unknown) {
    if (isStorageError(error)) throw error;
    const reason = describeError(error);
    const failures = await countFailure(item.messageSid);
    log.error("job.failed", {
      message_sid: item.messageSid,
      from: maskPhone(item.phone),
      failures,
      reason,
    });
    if (failures < budget) {
      await deps.schedule(item.phone, backoffDelay(retryAfterThrow, failures));
      return "stop";
    }
    const gaveUp = `gave up after ${failures} failed runs: ${reason}`;
    await deps.handler.abandon(item, gaveUp, lease, failureKindOf(error));
    return "again";
  }

  async function runLane(phone: string): Promise<void> {
    await takeSlot();
    try {
      if (stopping) return;
      if (!presence.fresh() && !(await presence.beat())) throw new Error("no heartbeat");
      const lease = await acquireLease(kv, phone, presence, now, deps.commits);
      // A live holder drains it; if it dies, the reaper's sweep finds the lane.
      if ("heldBy" in lease) return;
      let released = false;
      try {
        while (true) {
          if (!lease.held()) return log.warn("lane.lease_lost", { from: maskPhone(phone) });
          const lane = await kv.get(laneKey(phone));
          const head = await headOfLane(kv, phone);
          if (!head) {
            const release = await lease.release(lane);
            if (release === "work_arrived") continue;
            released = true;
            return;
          }
          if (stopping) return; // what is left stays in KV for the next start
          const record = (await kv.get<MessageRecord>(messageKey(head.messageSid))).value;
          const item: LaneItem = {
            phone,
            messageSid: head.messageSid,
            queueKey: head.key,
            record: record ?? undefined,
          };
          if (!record) {
            // Its record expired while it waited: say so rather than drop it silently.
            const reason = "the message expired before it was answered";
            await deps.handler.abandon(item, reason, lease, "bridge");
            continue;
          }
          if (record.state === "answered" || record.state === "failed") {
            await lease.commit((op) => op.delete(head.key));
            continue;
          }
          if (record.nextAttemptAt > now()) {
            return await deps.schedule(phone, record.nextAttemptAt - now());
          }
          working.add(phone);
          const disposition = await deps.handler.handle(record, lease).then(
            (value) => ({ value }),
            (error: unknown) => ({ error }),
          ).finally(() => working.delete(phone));
          if ("error" in disposition) {
            if ((await handleFailure(item, lease, disposition.error)) === "stop") return;
            continue;
          }
          if (disposition.value === "lost") {
            return log.warn("lane.lease_lost", { from: maskPhone(phone) });
          }
          if (disposition.value !== "done") {
            return await deps.schedule(phone, disposition.value.retryAt - now());
          }
          storageTrouble.delete(phone);
        }
      } finally {
        if (!released) await lease.release().catch(() => {});
      }
    } catch (error) {
      // KV trouble: the lane stays durable; look again once it may have passed.
      const times = (storageTrouble.get(phone) ?? 0) + 1;
      storageTrouble.set(phone, times);
      deps.health?.failed(error);
      log.error("lane.failed", { from: maskPhone(phone), reason: describeError(error) });
      if (!stopping) {
        await deps.schedule(phone, backoffDelay(STORAGE_RETRY, times)).catch(() => {});
      }
    } finally {
      giveSlot();
    }
  }

  function drain(phone: string): Promise<void> {
    if (stopping) return Promise.resolve();
    const running = active.get(phone);
    if (running) {
      // A run busy with a message looks at the lane again afterwards; any
      // other may be past its last look (e.g. a due retry firing while it
      // lets go of the lane): run again once it ends.
      if (!working.has(phone)) rerun.add(phone);
      return running;
    }
    const run = runLane(phone).finally(() => {
      active.delete(phone);
      if (rerun.delete(phone)) drain(phone);
    });
    active.set(phone, run);
    return run;
  }

  return {
    drain,
    async sweep() {
      for await (const phone of pendingLanes(kv)) {
        if (stopping) break;
        drain(phone);
      }
    },
    async stop(graceMs) {
      stopping = true;
      for (const wake of waiting.splice(0)) wake();
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        Promise.allSettled([...active.values()]),
        new Promise((resolve) => timer = setTimeout(resolve, graceMs)),
      ]);
      clearTimeout(timer);
    },
  };
}
