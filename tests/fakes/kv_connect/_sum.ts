/**
 * `sum`, `min` and `max` as denokv's SQLite backend computes them
 * (`sqlite/backend.rs`, `sqlite/sum_operand.rs`).
 *
 * - `min` and `max` take a `Deno.KvU64` (LE64) operand and stored value; any
 *   other operand or stored value is a type mismatch.
 * - `sum` with an LE64 operand adds modulo 2^64 to an LE64 value.
 * - `sum` with a V8 operand (`mutate({ type: "sum", value: 1.5 })`) adds
 *   numbers to numbers and bigints to bigints, within optional V8-encoded
 *   `sum_min`/`sum_max` bounds (clamped or refused); a bigint in u64 range
 *   added to a stored KvU64 is taken as a KvU64.
 * - An absent key takes the operand. The result never expires: these
 *   mutations drop any expiry the key had.
 *
 * Every mismatch is denokv's 400 with its message, and the whole atomic
 * write is not applied.
 *
 * @module
 */
import { deserialize, serialize } from "node:v8";
import { ApiError } from "./_limits.ts";
import { Encoding, type Mutation, MutationType, type Value } from "./_proto.ts";

const U64 = 1n << 64n;

type Operand =
  | { kind: "KvU64"; value: bigint }
  | { kind: "BigInt"; value: bigint }
  | { kind: "Number"; value: number };

const mismatch = (message: string) => new ApiError(400, message);

/**
 * The value a sum, min or max mutation leaves at its key, given what is
 * stored there (`undefined` when absent).
 *
 * @example
 * ```ts
 * combine(mutation, { data: le64(5n), encoding: Encoding.LE64 }); // { data: le64(5n + operand), … }
 * ```
 */
export function combine(mutation: Mutation, stored: Value | undefined): Value {
  const operand = mutation.value!;
  const name = mutation.mutation_type === MutationType.MIN
    ? "min"
    : mutation.mutation_type === MutationType.MAX
    ? "max"
    : "sum";
  if (name === "sum" && operand.encoding !== Encoding.LE64) return sumV8(mutation, stored);
  if (operand.encoding !== Encoding.LE64) {
    throw mismatch(`Failed to perform '${name}' mutation on a non-U64 operand`);
  }
  const b = readLe64(operand.data);
  if (!stored) return operand;
  if (stored.encoding !== Encoding.LE64) {
    throw mismatch(`Failed to perform '${name}' mutation on a non-U64 value in the database`);
  }
  const a = readLe64(stored.data);
  const result = name === "sum" ? (a + b) % U64 : name === "min" ? (a < b ? a : b) : a > b ? a : b;
  return { data: le64(result), encoding: Encoding.LE64 };
}

function sumV8(mutation: Mutation, stored: Value | undefined): Value {
  let operand: Operand, min: Operand | null, max: Operand | null;
  try {
    operand = parseOperand(mutation.value!);
    min = mutation.sum_min.length ? parseOperand(v8(mutation.sum_min)) : null;
    max = mutation.sum_max.length ? parseOperand(v8(mutation.sum_max)) : null;
  } catch {
    throw mismatch("Some of the parameters are not valid V8 values");
  }
  if ([min, max].some((bound) => bound && bound.kind !== operand.kind)) {
    throw mismatch("Min/max parameters have different types than the operand");
  }
  if (!stored) return encodeOperand(operand);
  let current: Operand;
  try {
    current = parseOperand(stored);
  } catch (error) {
    throw mismatch((error as Error).message);
  }
  if (
    current.kind === "KvU64" && operand.kind === "BigInt" && !min && !max &&
    !mutation.sum_clamp && operand.value >= 0n && operand.value < U64
  ) {
    operand = { kind: "KvU64", value: operand.value };
  }
  if (current.kind === "KvU64" && operand.kind === "KvU64") {
    if (min || max) throw mismatch("Cannot use min/max parameters with KvU64 operands");
    return encodeOperand({ kind: "KvU64", value: (current.value + operand.value) % U64 });
  }
  if (current.kind === "BigInt" && operand.kind === "BigInt") {
    const sum = bounded(mutation, current.value + operand.value, min?.value, max?.value);
    return encodeOperand({ kind: "BigInt", value: sum as bigint });
  }
  if (current.kind === "Number" && operand.kind === "Number") {
    const sum = bounded(mutation, current.value + operand.value, min?.value, max?.value);
    return encodeOperand({ kind: "Number", value: sum as number });
  }
  throw mismatch(`Cannot sum ${current.kind} with ${operand.kind}`);
}

/** `sum` kept within `min..=max`: clamped when the mutation says so, else refused. */
function bounded<T extends number | bigint>(mutation: Mutation, sum: T, min?: T, max?: T): T {
  for (const bound of [min, max]) {
    if (bound === undefined || (bound === min ? sum >= bound : sum <= bound)) continue;
    if (!mutation.sum_clamp) {
      throw mismatch("The result of a Sum operation would exceed its range limit");
    }
    sum = bound;
  }
  return sum;
}

/** A KvU64, bigint or number; throws denokv's description of anything else. */
function parseOperand(value: Value): Operand {
  if (value.encoding === Encoding.LE64) return { kind: "KvU64", value: readLe64(value.data) };
  if (value.encoding !== Encoding.V8) throw new Error("unsupported value type");
  if (value.data.length === 0) throw new Error("operand cannot be empty");
  let decoded: unknown;
  try {
    decoded = deserialize(value.data);
  } catch {
    throw new Error("invalid v8 value");
  }
  if (typeof decoded === "bigint") return { kind: "BigInt", value: decoded };
  if (typeof decoded === "number") return { kind: "Number", value: decoded };
  throw new Error("unsupported value type");
}

function encodeOperand(operand: Operand): Value {
  if (operand.kind === "KvU64") return { data: le64(operand.value), encoding: Encoding.LE64 };
  return { data: new Uint8Array(serialize(operand.value)), encoding: Encoding.V8 };
}

const v8 = (data: Uint8Array): Value => ({ data, encoding: Encoding.V8 });

function readLe64(data: Uint8Array): bigint {
  return new DataView(data.buffer, data.byteOffset, 8).getBigUint64(0, true);
}

/**
 * A u64 as the 8 little-endian bytes of the LE64 encoding.
 *
 * @example
 * ```ts
 * le64(1n); // Uint8Array [1, 0, 0, 0, 0, 0, 0, 0]
 * ```
 */
export function le64(value: bigint): Uint8Array {
  const data = new Uint8Array(8);
  new DataView(data.buffer).setBigUint64(0, value, true);
  return data;
}
