/**
 * The three data path operations, from request bytes to response: decode
 * (a body that is not the message is denokv's 400), refuse what is over a
 * limit, then read, write or watch the store.
 *
 * @module
 */
import { ApiError, checkRead, checkWatch, checkWrite, type KvConnectLimits } from "./_limits.ts";
import { decode, encode, ReadStatus, WriteStatus } from "./_proto.ts";
import type { Store } from "./_store.ts";
import { type Watcher, watchKeys } from "./_watch.ts";

const PROTOBUF = { "content-type": "application/x-protobuf" };

/** What one data path operation works on. */
export interface DataPathContext {
  store: Store;
  limits: KvConnectLimits;
  now: () => number;
}

/**
 * Answers a `snapshot_read`.
 *
 * @example
 * ```ts
 * const response = snapshotRead(context, body); // 200 application/x-protobuf
 * ```
 */
export function snapshotRead({ store, limits }: DataPathContext, body: Uint8Array): Response {
  const { ranges } = decodeOrRefuse("SnapshotRead", body);
  checkRead(ranges, limits);
  const output = encode("SnapshotReadOutput", {
    ranges: store.read(ranges).map((values) => ({ values })),
    read_disabled: false,
    read_is_strongly_consistent: true,
    status: ReadStatus.SUCCESS,
  });
  return new Response(output, { headers: PROTOBUF });
}

/**
 * Answers an `atomic_write`, with what came of it and the keys it mutates. Check failures answer
 * without `failed_checks`, as denokv does (the client ignores them anyway).
 *
 * @example
 * ```ts
 * const { response, committed } = atomicWrite(context, body);
 * ```
 */
export function atomicWrite(
  { store, limits, now }: DataPathContext,
  body: Uint8Array,
): { response: Response; committed: boolean; enqueues: number; keys: Uint8Array[] } {
  const write = decodeOrRefuse("AtomicWrite", body);
  checkWrite(write, limits, now());
  const versionstamp = store.write(write);
  const keys = write.mutations.map(({ key }) => key);
  const output = encode(
    "AtomicWriteOutput",
    versionstamp
      ? { status: WriteStatus.SUCCESS, versionstamp }
      : { status: WriteStatus.CHECK_FAILURE, failed_checks: [] },
  );
  return {
    response: new Response(output, { headers: PROTOBUF }),
    committed: versionstamp !== null,
    enqueues: versionstamp ? write.enqueues.length : 0,
    keys,
  };
}

/**
 * Answers a `watch` with a stream that lasts until the client cancels it or
 * the server ends it; `onEnd` runs either way.
 *
 * @example
 * ```ts
 * const { response, watcher } = watch(context, body, () => watchers.delete(watcher));
 * ```
 */
export function watch(
  { store, limits }: DataPathContext,
  body: Uint8Array,
  onEnd: (watcher: Watcher) => void,
): { response: Response; watcher: Watcher } {
  const keys = decodeOrRefuse("Watch", body).keys.map(({ key }) => key);
  checkWatch(keys, limits);
  const watcher: Watcher = watchKeys(store, keys, () => onEnd(watcher));
  const headers = { "content-type": "application/octet-stream" };
  return { response: new Response(watcher.stream, { headers }), watcher };
}

function decodeOrRefuse<N extends "SnapshotRead" | "AtomicWrite" | "Watch">(
  name: N,
  body: Uint8Array,
) {
  try {
    return decode(name, body);
  } catch (error) {
    throw new ApiError(400, `Request protobuf is invalid: ${(error as Error).message}.`);
  }
}
