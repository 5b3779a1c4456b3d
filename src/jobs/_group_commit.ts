/**
 * Group commit for the webhook's atomic operations. Private helper of
 * `jobs.ts`.
 *
 * One durable KV commit costs about a millisecond on a local SQLite file, and
 * commits run one at a time, which caps the webhook near 1,000 requests/s.
 * Several operations committed as one cost little more than one, so while a
 * commit is under way the next operations wait and then go together. Each
 * caller still gets the result its own operation would have had: when a
 * combined commit fails a check, every member is committed again on its own.
 *
 * @module
 */

type Build = (op: Deno.AtomicOperation) => Deno.AtomicOperation;
type Result = Deno.KvCommitResult | Deno.KvCommitError;

interface Member {
  build: Build;
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
   * both pass.
   */
  commit(build: Build, conflicts: readonly string[]): Promise<Result>;
}

/**
 * Operations in one commit at most. KV allows 100 checks and 1,000 mutations
 * per commit; a webhook's operation has 2 checks and about 7 mutations. A
 * group over a limit is not lost: each member is then committed alone.
 */
export const MAX_GROUP = 32;

/**
 * Creates a group committer on `kv`.
 *
 * @example
 * ```ts
 * const group = createGroupCommit(kv);
 * const result = await group.commit((op) => op.set(["a"], 1), ["a"]);
 * ```
 */
export function createGroupCommit(kv: Deno.Kv, maxGroup = MAX_GROUP): GroupCommit {
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
      const later: Member[] = [];
      for (const member of waiting) {
        if (group.length < maxGroup && member.conflicts.every((key) => !taken.has(key))) {
          group.push(member);
          for (const key of member.conflicts) taken.add(key);
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
        result = undefined; // e.g. a limit of KV's: each alone will say
      }
      if (result?.ok) { for (const member of group) member.resolve(result); }
      else await Promise.all(group.map(alone));
    }
    busy = false;
  }

  return {
    commit(build, conflicts) {
      return new Promise<Result>((resolve, reject) => {
        waiting.push({ build, conflicts, resolve, reject });
        if (!busy) run();
      });
    },
  };
}
