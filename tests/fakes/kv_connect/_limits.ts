/**
 * What a `denokv` server refuses, and how: its limits (`proto/limits.rs`), its
 * error messages and status codes (`denokv/main.rs`), and the order in which
 * it checks a request (`proto/convert.rs`), so that the first limit a request
 * breaks is the one named in the answer.
 *
 * @module
 */
import type { AtomicWrite, Mutation, ReadRange } from "./_proto.ts";
import { Encoding, MutationType } from "./_proto.ts";

/** The server limits; {@linkcode DENOKV_LIMITS} holds denokv's. */
export interface KvConnectLimits {
  maxWriteKeyBytes: number;
  /** One more than a write key: range selectors append 0x00 or 0xff. */
  maxReadKeyBytes: number;
  maxValueBytes: number;
  maxReadRanges: number;
  /** The sum of the `limit`s of one snapshot read's ranges. */
  maxReadEntries: number;
  maxChecks: number;
  /** Mutations and enqueues together. */
  maxMutations: number;
  /** Check keys, mutation keys and values, enqueue payloads and keys, 4 per backoff interval. */
  maxTotalMutationBytes: number;
  maxWatchedKeys: number;
  maxQueueUndeliveredKeys: number;
  maxQueueBackoffIntervals: number;
  maxQueueBackoffMs: number;
  maxQueueDelayMs: number;
}

/**
 * denokv 0.12's limits. A local SQLite KV allows 100 checks; everything else
 * matches the Deno client's own checks, which refuse most oversized requests
 * before they are sent.
 */
export const DENOKV_LIMITS: Readonly<KvConnectLimits> = Object.freeze({
  maxWriteKeyBytes: 2048,
  maxReadKeyBytes: 2049,
  maxValueBytes: 65536,
  maxReadRanges: 10,
  maxReadEntries: 1000,
  maxChecks: 10,
  maxMutations: 1000,
  maxTotalMutationBytes: 819200,
  maxWatchedKeys: 10,
  maxQueueUndeliveredKeys: 10,
  maxQueueBackoffIntervals: 10,
  maxQueueBackoffMs: 3_600_000,
  maxQueueDelayMs: 30 * 24 * 60 * 60 * 1000,
});

/** denokv's error messages, word for word (its typos included). */
export const MESSAGES = {
  notFound: "Resource not found.",
  malformedAuthorization: "Malformed authorization header.",
  invalidToken: "Invalid access token.",
  invalidDatabaseId: "Invalid database id.",
  invalidProtocolVersion: "Expected protocol version 2.",
  keyTooLong: "A key exceeds the key size limit.",
  valueTooLong: "A value exceeds the value size limit.",
  readRangeTooLarge:
    "The total number of entries requested across read ranges in the read request is too large.",
  atomicWriteTooLarge: "The total size of the atomic write is too large.",
  tooManyReadRanges: "Too many read ranges requested in one read request.",
  tooManyWatchedKeys: "Too many keys watched in a single watch request.",
  tooManyChecks: "Too many checks included in atomic write.",
  tooManyMutations: "Too many mutations / enqueues included in atomic write.",
  tooManyUndeliveredKeys: "Too many dead letter keys for a single queue message.",
  tooManyBackoffIntervals: "Too many backoff intervals for a single queue message.",
  backoffIntervalTooLarge: "A backoff interval exceeds the maximum allowed backoff interval.",
  invalidReadRangeLimit: "The read range limit of the snapshot read request is invalid.",
  internal: "An internal server error occurred.",
  invalidVersionstamp: "Invalid versionstamp.",
  invalidMutationKind: "Invalid mutation kind or arguments.",
  invalidExpireAt: "Invalid mutation expire at.",
  invalidEnqueueDeadline: "Invalid mutation enqueue deadline.",
  minimumProtocolVersion:
    "The server requires at least protocol version 2. Use Deno 1.38.0 or newer.",
  noMatchingProtocolVersion:
    "The server could not negotiate a protocol version. The server requires protocol version 2 or 3.",
  tryAgain: "The server is temporarially unavailable, try again later.",
} as const;

/** A refusal: the status and plain-text body denokv answers. */
export class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }

  /**
   * The refusal's name: its key in {@linkcode MESSAGES} (`tooManyChecks`),
   * or `invalidRequest` for denokv's texts that carry details (a protobuf
   * that does not decode, a sum over mismatched types).
   */
  get reason(): string {
    const known = Object.entries(MESSAGES).find(([, text]) => text === this.message);
    return known?.[0] ?? "invalidRequest";
  }

  /** Whether the request broke one of denokv's limits (`limits.rs`). */
  get overLimit(): boolean {
    return (LIMIT_REFUSALS as readonly string[]).includes(this.reason);
  }
}

/**
 * The refusals of a request over one of denokv's limits: a client that
 * builds its operations within them never meets one. (A failed check is
 * not a refusal: the server answers it 200, and nothing is written.)
 */
export const LIMIT_REFUSALS = [
  "keyTooLong",
  "valueTooLong",
  "readRangeTooLarge",
  "atomicWriteTooLarge",
  "tooManyReadRanges",
  "tooManyWatchedKeys",
  "tooManyChecks",
  "tooManyMutations",
  "tooManyUndeliveredKeys",
  "tooManyBackoffIntervals",
  "backoffIntervalTooLarge",
] as const satisfies readonly (keyof typeof MESSAGES)[];

const badRequest = (message: string) => new ApiError(400, message);

/**
 * Refuses a snapshot read the way denokv does: too many ranges, a limit
 * below 1, an oversized boundary key, then the sum of the limits.
 *
 * @example
 * ```ts
 * checkRead([{ start, end, limit: 0, reverse: false }], DENOKV_LIMITS); // throws 400
 * ```
 */
export function checkRead(ranges: ReadRange[], limits: KvConnectLimits): void {
  if (ranges.length > limits.maxReadRanges) throw badRequest(MESSAGES.tooManyReadRanges);
  let total = 0;
  for (const range of ranges) {
    if (range.limit < 1) throw badRequest(MESSAGES.invalidReadRangeLimit);
    if (range.start.length > limits.maxReadKeyBytes) throw badRequest(MESSAGES.keyTooLong);
    if (range.end.length > limits.maxReadKeyBytes) throw badRequest(MESSAGES.keyTooLong);
    total += range.limit;
  }
  if (total > limits.maxReadEntries) throw badRequest(MESSAGES.readRangeTooLarge);
}

/**
 * Refuses a watch with too many keys or an oversized key.
 *
 * @example
 * ```ts
 * checkWatch(Array.from({ length: 11 }, () => key), DENOKV_LIMITS); // throws 400
 * ```
 */
export function checkWatch(keys: Uint8Array[], limits: KvConnectLimits): void {
  if (keys.length > limits.maxWatchedKeys) throw badRequest(MESSAGES.tooManyWatchedKeys);
  if (keys.some((key) => key.length > limits.maxWriteKeyBytes)) {
    throw badRequest(MESSAGES.keyTooLong);
  }
}

/**
 * Refuses an atomic write the way denokv does, in its order: the number of
 * checks, of mutations and enqueues, then each check, mutation and enqueue,
 * then the total size. A value in an unknown encoding is denokv's 500 (its
 * decoder fails; an LE64 value that is not 8 bytes long makes it panic and
 * drop the connection, which the client also retries without end).
 *
 * @example
 * ```ts
 * checkWrite({ checks: eleven, mutations: [], enqueues: [] }, DENOKV_LIMITS, Date.now()); // throws 400
 * ```
 */
export function checkWrite(write: AtomicWrite, limits: KvConnectLimits, now: number): void {
  if (write.checks.length > limits.maxChecks) throw badRequest(MESSAGES.tooManyChecks);
  if (write.mutations.length + write.enqueues.length > limits.maxMutations) {
    throw badRequest(MESSAGES.tooManyMutations);
  }
  let total = 0;
  for (const check of write.checks) {
    if (check.key.length > limits.maxReadKeyBytes) throw badRequest(MESSAGES.keyTooLong);
    total += check.key.length;
    if (check.versionstamp.length !== 0 && check.versionstamp.length !== 10) {
      throw badRequest(MESSAGES.invalidVersionstamp);
    }
  }
  for (const mutation of write.mutations) total += checkMutation(mutation, limits);
  for (const enqueue of write.enqueues) {
    if (enqueue.payload.length > limits.maxValueBytes) throw badRequest(MESSAGES.valueTooLong);
    total += enqueue.payload.length;
    if (enqueue.keys_if_undelivered.length > limits.maxQueueUndeliveredKeys) {
      throw badRequest(MESSAGES.tooManyUndeliveredKeys);
    }
    for (const key of enqueue.keys_if_undelivered) {
      if (key.length > limits.maxWriteKeyBytes) throw badRequest(MESSAGES.keyTooLong);
      total += key.length;
    }
    if (enqueue.backoff_schedule.length > limits.maxQueueBackoffIntervals) {
      throw badRequest(MESSAGES.tooManyBackoffIntervals);
    }
    for (const interval of enqueue.backoff_schedule) {
      if (interval > limits.maxQueueBackoffMs) throw badRequest(MESSAGES.backoffIntervalTooLarge);
      total += 4;
    }
    // denokv refuses a deadline more than the maximum delay in the past (sic).
    if (enqueue.deadline_ms < 0 || now - enqueue.deadline_ms > limits.maxQueueDelayMs) {
      throw badRequest(MESSAGES.invalidEnqueueDeadline);
    }
  }
  if (total > limits.maxTotalMutationBytes) throw badRequest(MESSAGES.atomicWriteTooLarge);
}

/** Checks one mutation; returns the bytes it adds to the write's total. */
function checkMutation(mutation: Mutation, limits: KvConnectLimits): number {
  if (mutation.key.length > limits.maxWriteKeyBytes) throw badRequest(MESSAGES.keyTooLong);
  const valueBytes = mutation.value?.data.length ?? 0;
  if (valueBytes > limits.maxValueBytes) throw badRequest(MESSAGES.valueTooLong);
  const type = mutation.mutation_type;
  if (type !== MutationType.DELETE) {
    if (!mutation.value || !Object.values(MutationType).includes(type as never)) {
      throw badRequest(MESSAGES.invalidMutationKind);
    }
    if (!isDecodable(mutation.value.encoding, mutation.value.data)) {
      throw new ApiError(500, MESSAGES.internal);
    }
  }
  if (mutation.expire_at_ms < -1) throw badRequest(MESSAGES.invalidExpireAt);
  return mutation.key.length + valueBytes;
}

function isDecodable(encoding: number, data: Uint8Array): boolean {
  if (encoding === Encoding.LE64) return data.length === 8;
  return encoding === Encoding.V8 || encoding === Encoding.BYTES;
}
