/**
 * The KV Connect data path messages, read by protobufjs from the published
 * `datapath.proto` (an unchanged copy beside this file, MIT-licensed) and typed
 * here for the fields the fake server uses (licence: `datapath.LICENSE`).
 *
 * @module
 */
import protobuf from "protobufjs";

/** `com.deno.kv.datapath.ValueEncoding`. */
export const Encoding = { V8: 1, LE64: 2, BYTES: 3 } as const;

/** `com.deno.kv.datapath.MutationType`. */
export const MutationType = {
  SET: 1,
  DELETE: 2,
  SUM: 3,
  MAX: 4,
  MIN: 5,
  SET_SUFFIX_VERSIONSTAMPED_KEY: 9,
} as const;

/** `com.deno.kv.datapath.AtomicWriteStatus`. */
export const WriteStatus = { SUCCESS: 1, CHECK_FAILURE: 2, WRITE_DISABLED: 5 } as const;

/** `com.deno.kv.datapath.SnapshotReadStatus`. */
export const ReadStatus = { SUCCESS: 1, READ_DISABLED: 2 } as const;

/** A `ReadRange`, every field present (proto3 defaults filled in). */
export interface ReadRange {
  start: Uint8Array;
  end: Uint8Array;
  limit: number;
  reverse: boolean;
}

/** A `Check`: an empty versionstamp means "must not exist". */
export interface Check {
  key: Uint8Array;
  versionstamp: Uint8Array;
}

/** A `KvValue`. */
export interface Value {
  data: Uint8Array;
  encoding: number;
}

/** A `Mutation`; `value` is absent when the client sent none. */
export interface Mutation {
  key: Uint8Array;
  value: Value | null;
  mutation_type: number;
  expire_at_ms: number;
  sum_min: Uint8Array;
  sum_max: Uint8Array;
  sum_clamp: boolean;
}

/** An `Enqueue` (accepted and counted, never delivered: KV Connect has no dequeue). */
export interface Enqueue {
  payload: Uint8Array;
  deadline_ms: number;
  keys_if_undelivered: Uint8Array[];
  backoff_schedule: number[];
}

/** A `KvEntry` as the server answers it. */
export interface Entry {
  key: Uint8Array;
  value: Uint8Array;
  encoding: number;
  versionstamp: Uint8Array;
}

/** An `AtomicWrite` request. */
export interface AtomicWrite {
  checks: Check[];
  mutations: Mutation[];
  enqueues: Enqueue[];
}

/** The request and response messages, by name. */
export interface Messages {
  SnapshotRead: { ranges: ReadRange[] };
  SnapshotReadOutput: {
    ranges: { values: Entry[] }[];
    read_disabled: boolean;
    read_is_strongly_consistent: boolean;
    status: number;
  };
  AtomicWrite: AtomicWrite;
  AtomicWriteOutput: { status: number; versionstamp: Uint8Array; failed_checks: number[] };
  Watch: { keys: { key: Uint8Array }[] };
  WatchOutput: {
    status: number;
    keys: { changed: boolean; entry_if_changed?: Entry }[];
  };
}

const root = protobuf.parse(
  await Deno.readTextFile(new URL("./datapath.proto", import.meta.url)),
  { keepCase: true },
).root;

function type(name: keyof Messages): protobuf.Type {
  return root.lookupType(`com.deno.kv.datapath.${name}`);
}

/**
 * Decodes `bytes` as message `name`, with proto3 defaults filled in and 64-bit
 * integers as numbers; throws protobufjs's error on bytes that are not that
 * message.
 *
 * @example
 * ```ts
 * const read = decode("SnapshotRead", body);
 * read.ranges[0].limit; // 1
 * ```
 */
export function decode<N extends keyof Messages>(name: N, bytes: Uint8Array): Messages[N] {
  const t = type(name);
  return t.toObject(t.decode(bytes), {
    longs: Number,
    enums: Number,
    defaults: true,
    arrays: true,
  }) as Messages[N];
}

/**
 * Encodes `message` as `name`.
 *
 * @example
 * ```ts
 * const body = encode("AtomicWriteOutput", { status: WriteStatus.SUCCESS, versionstamp, failed_checks: [] });
 * ```
 */
export function encode<N extends keyof Messages>(
  name: N,
  message: Partial<Messages[N]>,
): Uint8Array<ArrayBuffer> {
  const t = type(name);
  // A copy: protobufjs may answer a view into a shared, larger buffer.
  return new Uint8Array(t.encode(t.fromObject(message)).finish());
}
