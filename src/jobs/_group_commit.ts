/**
 * Group commit for the webhook's atomic operations. Private helper of
 * `jobs.ts`.
 *
 * One durable KV commit costs about a millisecond on a local SQLite file, and
 * commits run one at a time, which caps the webhook near 1,000 requests/s;
 * over KV Connect each commit is a network round trip as well. Several
 * operations committed as one cost little more than one, so while a commit is
 * under way the next operations wait and then go together, as many as fit in
 * one commit by the strictest limits the bridge may meet (a denokv server's
 * 10 checks). Each caller still gets the result its own operation would have
 * had: when a combined commit fails a check, every member is committed again
 * on its own.
 *
 * @module
 */

type Build = (op: Deno.AtomicOperation) => Deno.AtomicOperation;
type Result = Deno.KvCommitResult | Deno.KvCommitError;

/** What an operation adds to a commit, as KV's limits count it. */
export interface Cost {
  checks: number;
  /** Mutations and enqueues. */
  mutations: number;
  /** Keys and values, estimated from their JSON size. */
  bytes: number;
}

/**
 * The strictest limits of any KV the bridge may meet, per commit: a denokv
 * server (KV Connect) allows 10 checks where a local file allows 100; every
 * KV allows 1,000 mutations and 800 KiB. The byte figure is kept at half of
 * KV's because it is a rough estimate.
 */
export const COMMIT_LIMITS: Cost = { checks: 10, mutations: 1_000, bytes: 400 * 1024 };

interface Member {
  build: Build;
  cost: Cost;
  /** Members that share one of these never go in the same group. */
  conflicts: readonly string[];
  resolve: (result: Result) => void;
  reject: (error: unknown) => void;
}

/** Commits atomic operations, grouping the ones that arrive together. */
export interface GroupCommit {
  /**
   * Commits what `build` adds to an atomic operation. `conflicts` names what
   * the operation reads and writes that another may too (a message id, a
   * phone number): two operations checking the same key in one commit would
   * both pass. `build` may run more than once (to measure it, and again if
   * its group fails), so it must only describe the operation.
   */
  commit(build: Build, conflicts: readonly string[]): Promise<Result>;
}

/**
 * Measures what `build` adds to an operation, by running it on a recorder.
 *
 * @example
 * ```ts
 * costOf((op) => op.check({ key: ["a"], versionstamp: null }).set(["a"], 1));
 * // { checks: 1, mutations: 1, bytes: 10 }
 * ```
 */
export function costOf(build: Build): Cost {
  const cost: Cost = { checks: 0, mutations: 0, bytes: 0 };
  // Cheap on purpose (this runs for every webhook and save): strings and
  // bytes count in full, an object by its string and byte fields one level
  // down; KV would refuse a group the estimate let through, and each member
  // then commits alone.
  const size = (value: unknown): number => {
    if (typeof value === "string") return value.length;
    if (value instanceof Uint8Array) return value.byteLength;
    if (Array.isArray(value)) return value.reduce((n: number, part) => n + shallow(part), 16);
    if (typeof value === "object" && value !== null) {
      let n = 16;
      for (const field of Object.values(value)) n += shallow(field);
      return n;
    }
    return 8;
  };
  const shallow = (value: unknown): number =>
    typeof value === "string" ? value.length : value instanceof Uint8Array ? value.byteLength : 8;
  const recorder: Deno.AtomicOperation = {
    check(...checks) {
      cost.checks += checks.length;
      for (const { key } of checks) cost.bytes += size(key);
      return recorder;
    },
    mutate(...mutations) {
      cost.mutations += mutations.length;
      for (const m of mutations) cost.bytes += size(m.key) + ("value" in m ? size(m.value) : 0);
      return recorder;
    },
    set(key, value) {
      return recorder.mutate({ type: "set", key, value });
    },
    delete(key) {
      return recorder.mutate({ type: "delete", key });
    },
    sum(key, n) {
      return recorder.mutate({ type: "sum", key, value: new Deno.KvU64(n) });
    },
    min(key, n) {
      return recorder.mutate({ type: "min", key, value: new Deno.KvU64(n) });
    },
    max(key, n) {
      return recorder.mutate({ type: "max", key, value: new Deno.KvU64(n) });
    },
    enqueue(value) {
      cost.mutations += 1;
      cost.bytes += size(value);
      return recorder;
    },
    commit() {
      throw new Error("a group member's build must not commit");
    },
  };
  build(recorder);
  return cost;
}

/**
 * Creates a group committer on `kv`: a group takes members in arrival order
 * while their costs together stay within `limits`.
 *
 * @example
 * ```ts
 * const group = createGroupCommit(kv);
 * const result = await group.commit((op) => op.set(["a"], 1), ["a"]);
 * ```
 */
export function createGroupCommit(kv: Deno.Kv, limits: Cost = COMMIT_LIMITS): GroupCommit {
  let waiting: Member[] = [];
  let busy = false;

  const alone = async (member: Member) => {
    try {
      member.resolve(await member.build(kv.atomic()).commit());
    } catch (error) {
      member.reject(error);
    }
  };

  async function run() {
    busy = true;
    while (waiting.length > 0) {
      const group: Member[] = [];
      const taken = new Set<string>();
      const used: Cost = { checks: 0, mutations: 0, bytes: 0 };
      const later: Member[] = [];
      for (const member of waiting) {
        const fits = group.length === 0 || (
          used.checks + member.cost.checks <= limits.checks &&
          used.mutations + member.cost.mutations <= limits.mutations &&
          used.bytes + member.cost.bytes <= limits.bytes
        );
        if (fits && member.conflicts.every((key) => !taken.has(key))) {
          group.push(member);
          for (const key of member.conflicts) taken.add(key);
          used.checks += member.cost.checks;
          used.mutations += member.cost.mutations;
          used.bytes += member.cost.bytes;
        } else later.push(member);
      }
      waiting = later;
      if (group.length === 1) {
        await alone(group[0]);
        continue;
      }
      let result: Result | undefined;
      try {
        result = await group.reduce((op, member) => member.build(op), kv.atomic()).commit();
      } catch {
        result = undefined; // e.g. a limit the estimate missed: each alone will say
      }
      if (result?.ok) { for (const member of group) member.resolve(result); }
      else await Promise.all(group.map(alone));
    }
    busy = false;
  }

  return {
    commit(build, conflicts) {
      return new Promise<Result>((resolve, reject) => {
        let cost: Cost;
        try {
          cost = costOf(build);
        } catch (error) {
          return reject(error);
        }
        waiting.push({ build, cost, conflicts, resolve, reject });
        if (!busy) run();
      });
    },
  };
}
