/**
 * Which processes are alive, without trusting any two clocks to agree.
 *
 * Each process keeps one heartbeat key alive, `["workers", id]`, rewriting
 * it every third of `ttlMs`: one write per process per interval keeps every
 * lane it holds. Another process calls a worker dead once it has seen that
 * key unchanged (same versionstamp) for `ttlMs` of its own time, or absent.
 * Only durations measured on one clock are compared, so clock offsets
 * between machines do not matter, and a wall clock that jumps does not
 * either (durations come from a monotonic clock).
 *
 * A process stops acting on its lanes once its last successful heartbeat is
 * two thirds of `ttlMs` old, before anyone may call it dead. When a
 * heartbeat is written after such a gap, or finds the key changed (someone
 * called it dead and removed it), the process takes a new id: whatever it
 * held under the old one counts as lost, and other workers (or itself) take
 * it over like any dead worker's.
 *
 * @module
 */
import { describeError, type Logger } from "../log.ts";
import { type StorageHealth, withinMs } from "../storage/mod.ts";

/** The KV key of one process's heartbeat. */
export const workerKey = (id: string): Deno.KvKey => ["workers", id];

/** What a heartbeat key holds. */
export interface WorkerValue {
  /** Wall-clock time of the write, for operators only: liveness never reads it. */
  beatAt: number;
  startedAt: number;
  /**
   * The process's instance id, the one its `/health` shows, so that a
   * separate process (`deno task doctor`) can tell whether a URL reaches a
   * bridge on this KV. Unlike the worker id it never changes.
   */
  instance?: string;
}

/**
 * How long a heartbeat write may be pending before it counts as failed:
 * two thirds of `ttlMs`, when this process stops acting on its lanes anyway.
 */
export const heartbeatStuckMs = (ttlMs: number): number => Math.max(1, Math.floor((ttlMs * 2) / 3));

/** How another worker looks from here. */
export type Liveness = { alive: true; recheckInMs: number } | { alive: false };

/** This process's heartbeat and its view of the others. */
export interface Presence {
  /** The id leases are taken under; it changes after a heartbeat gap. */
  id(): string;
  /** True while this process may act under the leases of {@linkcode Presence.id}. */
  fresh(): boolean;
  /**
   * Whether the worker `id` is alive, as far as can be told now. A worker
   * first seen now counts as alive for `ttlMs`; this process's own earlier
   * ids are dead at once.
   */
  liveness(id: string): Promise<Liveness>;
  /** Writes the heartbeat now; resolves false when the write failed. */
  beat(): Promise<boolean>;
  /**
   * Looks at every other worker's heartbeat and removes those that are dead;
   * resolves with the ids removed.
   */
  reap(): Promise<string[]>;
  /** Starts beating and reaping every third of `ttlMs`. */
  start(onChange: (event: { reaped: string[]; renewedAfterGap: boolean }) => void): void;
  /** Stops the timer and removes the heartbeat, so others need not wait for it. */
  stop(): Promise<void>;
}

/**
 * Creates this process's presence. Call {@linkcode Presence.beat} once
 * before taking any lease.
 *
 * @example
 * ```ts
 * const presence = createPresence({ kv, ttlMs: 3_000, log });
 * await presence.beat();
 * presence.start(({ reaped }) => reaped.length && runner.sweep());
 * ```
 */
export function createPresence(deps: {
  kv: Deno.Kv;
  ttlMs: number;
  log: Logger;
  /** Told of every heartbeat: it is the write that shows whether KV can be written. */
  health?: StorageHealth;
  /** A monotonic clock in ms (default `performance.now`). */
  clock?: () => number;
  /** Wall-clock time, only written for operators. */
  now?: () => number;
  newId?: () => string;
  /** Written into every heartbeat: see {@linkcode WorkerValue.instance}. */
  instance?: string;
}): Presence {
  const { kv, ttlMs, log } = deps;
  const clock = deps.clock ?? (() => performance.now());
  const now = deps.now ?? Date.now;
  const newId = deps.newId ?? (() => crypto.randomUUID());
  const startedAt = now();
  const formerIds = new Set<string>();
  let id = newId();
  let versionstamp: string | null = null;
  let beatAt = -Infinity;
  let timer: ReturnType<typeof setInterval> | undefined;
  let stopped = false;
  let beating: Promise<boolean> | undefined;
  // Other workers: the versionstamp last seen, and since when (our clock).
  const seen = new Map<string, { versionstamp: string; since: number }>();

  const actUntil = () => beatAt + (ttlMs * 2) / 3;

  function renew(): Promise<boolean> {
    return beating ??= (async () => {
      const startedBeat = clock();
      if (versionstamp !== null && startedBeat >= actUntil()) retire("heartbeat_gap");
      // A remote KV that does not answer is retried by Deno's client without
      // end: the write neither succeeds nor fails. Once it has been pending
      // as long as this process may act without a heartbeat, health hears
      // of it as a failure (and of its success, should it land later).
      const stuck = deps.health && setTimeout(() => {
        deps.health!.failed(
          new Error(
            `the heartbeat write did not finish within ${heartbeatStuckMs(ttlMs)} ms (timed out)`,
          ),
        );
      }, heartbeatStuckMs(ttlMs));
      try {
        for (let attempt = 0; attempt < 2; attempt++) {
          const value: WorkerValue = { beatAt: now(), startedAt };
          if (deps.instance) value.instance = deps.instance;
          const result = await kv.atomic()
            .check({ key: workerKey(id), versionstamp })
            .set(workerKey(id), value)
            .commit();
          if (result.ok) {
            deps.health?.succeeded();
            versionstamp = result.versionstamp;
            // Others saw this write no earlier than it started.
            beatAt = startedBeat;
            return true;
          }
          // Someone called this id dead and removed it: start afresh.
          retire("declared_dead");
        }
        return false;
      } catch (error) {
        deps.health?.failed(error);
        log.warn("worker.heartbeat_failed", { reason: describeError(error) });
        return false;
      } finally {
        clearTimeout(stuck);
        beating = undefined;
      }
    })();
  }

  function retire(reason: string) {
    formerIds.add(id);
    const former = id;
    id = newId();
    versionstamp = null;
    beatAt = -Infinity;
    log.warn("worker.new_id", { reason, former_id: former, worker_id: id });
  }

  async function liveness(other: string): Promise<Liveness> {
    if (other === id) return { alive: fresh(), recheckInMs: ttlMs } as Liveness;
    if (formerIds.has(other)) return { alive: false };
    const entry = await kv.get<WorkerValue>(workerKey(other));
    if (entry.versionstamp === null) {
      seen.delete(other);
      return { alive: false };
    }
    const at = clock();
    const last = seen.get(other);
    if (!last || last.versionstamp !== entry.versionstamp) {
      seen.set(other, { versionstamp: entry.versionstamp, since: at });
      return { alive: true, recheckInMs: ttlMs };
    }
    const silentFor = at - last.since;
    if (silentFor < ttlMs) return { alive: true, recheckInMs: ttlMs - silentFor };
    // Removing it (only as seen) frees its leases for everyone at once.
    await kv.atomic().check(entry).delete(workerKey(other)).commit();
    seen.delete(other);
    return { alive: false };
  }

  const fresh = () => !stopped && clock() < actUntil();

  return {
    id: () => id,
    fresh,
    liveness,
    beat: renew,
    async reap() {
      const reaped: string[] = [];
      for await (const entry of kv.list<WorkerValue>({ prefix: ["workers"] }, { limit: 1_000 })) {
        const other = entry.key[1] as string;
        if (other === id) continue;
        if (!(await liveness(other)).alive) reaped.push(other);
      }
      return reaped;
    },
    start(onChange) {
      if (stopped) return;
      timer ??= setInterval(async () => {
        const idBefore = id;
        await renew();
        const reaped = await this.reap().catch((error) => {
          log.warn("worker.reap_failed", { reason: describeError(error) });
          return [];
        });
        const renewedAfterGap = id !== idBefore && fresh();
        if (reaped.length > 0 || renewedAfterGap) onChange({ reaped, renewedAfterGap });
      }, Math.max(1, Math.floor(ttlMs / 3)));
    },
    async stop() {
      stopped = true;
      clearInterval(timer);
      // A KV that does not answer must not hold the shutdown: the heartbeat
      // then stays until others see it silent for `ttlMs`.
      const bound = heartbeatStuckMs(ttlMs);
      if (beating) await withinMs(beating, bound).catch(() => {});
      if (versionstamp === null) return;
      const remove = kv.atomic().check({ key: workerKey(id), versionstamp }).delete(workerKey(id));
      await withinMs(remove.commit(), bound).catch(() => {});
    },
  };
}
