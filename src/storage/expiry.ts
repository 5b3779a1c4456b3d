/**
 * Keys that expire, without KV's `expireIn`.
 *
 * Deno's SQLite backend deletes expired keys from a background thread and
 * panics when that delete fails: with a full disk, the first key that comes
 * due ends the process (`KV collect expired failed: database or disk is
 * full`, denokv_sqlite 0.14.0 in Deno 2.9.6), and a restart on the same disk
 * ends it again. So the bridge keeps its own index instead: next to each key
 * that should expire, the same commit writes `["expiry", bucket, ...key]`,
 * and {@linkcode pruneExpired}, run from a cron job, deletes what is due and
 * simply tries again later when a write fails.
 *
 * A value kept this way carries its own `expiresAt` (Unix ms) when it can be
 * rewritten with a later one (a renewed session, a number that writes
 * again): the pruner deletes a key only once the value it finds is due.
 *
 * @module
 */

/** The width of one index bucket: keys are deleted at most this late, plus the cron's period. */
export const EXPIRY_BUCKET_MS = 10 * 60 * 1000;

/** The index key that makes `key` expire at `at`. */
export const expiryKey = (at: number, key: Deno.KvKey): Deno.KvKey => [
  "expiry",
  Math.ceil(at / EXPIRY_BUCKET_MS),
  ...key,
];

/**
 * Adds to `op` what makes `key` (set in the same operation) expire at
 * `expiresAt`. Readers still see the key until it is pruned, so a value
 * whose lifetime matters carries `expiresAt` and is treated as absent once
 * it has passed.
 *
 * @example
 * ```ts
 * const expiresAt = Date.now() + 7 * 86_400_000;
 * await expireAt(kv.atomic().set(["messages", sid], { ...record, expiresAt }), ["messages", sid], expiresAt).commit();
 * ```
 */
export function expireAt(
  op: Deno.AtomicOperation,
  key: Deno.KvKey,
  expiresAt: number,
): Deno.AtomicOperation {
  return op.set(expiryKey(expiresAt, key), expiresAt);
}

/** A commit deletes this many due keys at most: each checks the key it deletes. */
const PER_COMMIT = 10;

/**
 * Deletes up to `limit` keys whose expiry is due at `now`, with their index
 * entries. A key rewritten since with a later `expiresAt` is kept (its newer
 * index entry will come). Resolves with how many keys were deleted; throws
 * what KV throws (a full disk: try again at the next run).
 *
 * @example
 * ```ts
 * Deno.cron("prune expired keys", "*\/10 * * * *", () => pruneExpired(kv, Date.now()));
 * ```
 */
export async function pruneExpired(kv: Deno.Kv, now: number, limit = 5_000): Promise<number> {
  const due = kv.list({
    start: ["expiry"],
    end: ["expiry", Math.floor(now / EXPIRY_BUCKET_MS) + 1],
  }, {
    limit,
  });
  let deleted = 0;
  let batch: Deno.KvEntry<unknown>[] = [];
  const flush = async () => {
    const entries = batch.filter((entry) => (entry.value as number) <= now);
    batch = [];
    if (entries.length === 0) return;
    const targets = await kv.getMany(entries.map((entry) => entry.key.slice(2)));
    const op = kv.atomic();
    let expired = 0;
    entries.forEach((entry, i) => {
      op.delete(entry.key);
      const target = targets[i];
      if (target.versionstamp === null) return;
      const expiresAt = (target.value as { expiresAt?: unknown } | null)?.expiresAt;
      if (typeof expiresAt === "number" && expiresAt > now) return; // renewed since
      op.check(target).delete(target.key);
      expired++;
    });
    // A key rewritten meanwhile fails its check: all of these are looked at again next time.
    if ((await op.commit()).ok) deleted += expired;
  };
  for await (const entry of due) {
    batch.push(entry);
    if (batch.length === PER_COMMIT) await flush();
  }
  await flush();
  return deleted;
}
