/**
 * The lane runner: drains one number's lane at a time under its lease, in
 * arrival order, with at most `concurrency` lanes running in this process.
 *
 * @module
 */
import { messageKey, type MessageRecord } from "./jobs.ts";
import { acquireLease, headOfLane, laneKey, type Lease, pendingLanes } from "./lanes.ts";
import { describeError, type Logger, maskPhone } from "../log.ts";

/**
 * What handling one message came to: `done` (answered or failed for good,
 * and out of the lane), `retryAt` (the lane waits until then), or `lost`
 * (the lease went to someone else; stop).
 */
export type Disposition = "done" | "lost" | { retryAt: number };

/** Handles the message at the head of a lane. */
export type MessageHandler = (record: MessageRecord, lease: Lease) => Promise<Disposition>;

/** Runs lanes. */
export interface LaneRunner {
  /** Drains the lane of `phone` here, unless another worker holds it. */
  drain(phone: string): Promise<void>;
  /** Looks at every lane that may hold work: how restarts resume. */
  sweep(): Promise<void>;
  /** Starts no more work and waits for lanes under way, `graceMs` at most. */
  stop(graceMs: number): Promise<void>;
}

/**
 * Creates the runner.
 *
 * @example
 * ```ts
 * const runner = createLaneRunner({ kv, handle, schedule: jobs.schedule, concurrency: 32, leaseMs: 30_000, owner: crypto.randomUUID(), log });
 * jobs.listen(runner.drain);
 * ```
 */
export function createLaneRunner(deps: {
  kv: Deno.Kv;
  handle: MessageHandler;
  schedule: (phone: string, delayMs: number) => Promise<void>;
  concurrency: number;
  leaseMs: number;
  owner: string;
  log: Logger;
  now?: () => number;
}): LaneRunner {
  const { kv, log } = deps;
  const now = deps.now ?? Date.now;
  const active = new Map<string, Promise<void>>();
  const rerun = new Set<string>();
  // Runs busy with a message: they look at their lane again afterwards.
  const working = new Set<string>();
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

  async function runLane(phone: string): Promise<void> {
    await takeSlot();
    try {
      if (stopping) return;
      const lease = await acquireLease(kv, phone, {
        owner: deps.owner,
        ttlMs: deps.leaseMs,
        now,
      });
      if ("heldUntil" in lease) {
        // Its holder drains it; if that holder died, look again after it.
        return await deps.schedule(phone, lease.heldUntil - now() + 100);
      }
      let released = false;
      try {
        while (true) {
          const lane = await kv.get(laneKey(phone));
          const head = await headOfLane(kv, phone);
          if (!head) {
            if ((released = await lease.release(lane))) return;
            continue; // work arrived while we looked
          }
          if (stopping) return; // what is left stays in KV for the next start
          const record = (await kv.get<MessageRecord>(messageKey(head.messageSid))).value;
          if (!record || record.state === "answered" || record.state === "failed") {
            await lease.commit((op) => op.delete(head.key));
            continue;
          }
          if (record.nextAttemptAt > now()) {
            return await deps.schedule(phone, record.nextAttemptAt - now());
          }
          working.add(phone);
          const disposition = await deps.handle(record, lease).finally(() => working.delete(phone));
          if (disposition === "lost") {
            return log.warn("lane.lease_lost", { from: maskPhone(phone) });
          }
          if (disposition !== "done") {
            return await deps.schedule(phone, disposition.retryAt - now());
          }
        }
      } finally {
        if (!released) await lease.release();
      }
    } catch (error) {
      // KV trouble or a bug: leave the lane durable and look again later.
      log.error("lane.failed", { from: maskPhone(phone), reason: describeError(error) });
      if (!stopping) await deps.schedule(phone, deps.leaseMs).catch(() => {});
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
      const runs: Promise<void>[] = [];
      for await (const phone of pendingLanes(kv)) {
        if (stopping) break;
        runs.push(drain(phone));
      }
      await Promise.allSettled(runs);
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
