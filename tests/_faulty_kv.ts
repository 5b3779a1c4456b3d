/**
 * A Deno KV that fails on command, for the end-to-end suite: every write
 * (an atomic commit, `set`, `delete`, `enqueue`) is shown to `fault`, which
 * may answer with the error KV would throw. Reads (`get`, `getMany`, `list`)
 * pass through unless {@linkcode FaultyKv.failReads} says otherwise.
 *
 * @module
 */

/** One write as the fault sees it. */
export interface Write {
  kind: "commit" | "set" | "delete" | "enqueue";
  /** The keys set, with their values (in a commit: every `set`). */
  sets: { key: Deno.KvKey; value: unknown }[];
}

/** Decides whether a write fails: return the error to throw, or undefined. */
export type Fault = (write: Write) => Error | undefined;

/** A KV whose writes fail while a fault says so. */
export interface FaultyKv {
  kv: Deno.Kv;
  /** Sets (or with null clears) the fault; writes before it are not replayed. */
  fault(fault: Fault | null): void;
  /** Writes refused so far. */
  readonly refused: number;
  /** Makes every read throw what `error` makes (null: reads work again). */
  failReads(error: (() => Error) | null): void;
  /** Reads refused so far. */
  readonly refusedReads: number;
}

/** The error a full disk gives, as Deno's SQLite backend words it. */
export const diskFull = () => new TypeError("database or disk is full");

/**
 * Wraps `kv` so that writes fail while a fault is set.
 *
 * @example
 * ```ts
 * const faulty = faultyKv(kv);
 * faulty.fault(() => diskFull());
 * ```
 */
export function faultyKv(kv: Deno.Kv): FaultyKv {
  let current: Fault | null = null;
  let refused = 0;
  let readFault: (() => Error) | null = null;
  let refusedReads = 0;
  /** The error a read throws now, counted, if reads fail. */
  const readError = () => {
    if (!readFault) return undefined;
    refusedReads++;
    return readFault();
  };
  const check = (write: Write) => {
    const error = current?.(write);
    if (error) {
      refused++;
      throw error;
    }
  };

  const atomic = () => {
    const op = kv.atomic();
    const sets: Write["sets"] = [];
    const proxy: Deno.AtomicOperation = new Proxy(op, {
      get(target, property) {
        const value = Reflect.get(target, property, target);
        if (property === "commit") {
          return () => {
            try {
              check({ kind: "commit", sets });
            } catch (error) {
              return Promise.reject(error);
            }
            return target.commit();
          };
        }
        if (typeof value !== "function") return value;
        return (...args: unknown[]) => {
          if (property === "set") sets.push({ key: args[0] as Deno.KvKey, value: args[1] });
          const result = value.apply(target, args);
          return result === target ? proxy : result;
        };
      },
    });
    return proxy;
  };

  const wrapped = new Proxy(kv, {
    get(target, property) {
      if (property === "atomic") return atomic;
      const value = Reflect.get(target, property, target);
      if (typeof value !== "function") return value;
      if (property === "get" || property === "getMany") {
        return (...args: unknown[]) => {
          const error = readError();
          return error ? Promise.reject(error) : value.apply(target, args);
        };
      }
      if (property === "list") {
        return (...args: unknown[]) => {
          const error = readError();
          if (!error) return value.apply(target, args);
          // Like KV's own list iterator, it fails when first read.
          return (async function* () {
            yield* [];
            throw error;
          })();
        };
      }
      if (property === "set" || property === "delete" || property === "enqueue") {
        return (...args: unknown[]) => {
          const sets = property === "set" ? [{ key: args[0] as Deno.KvKey, value: args[1] }] : [];
          try {
            check({ kind: property, sets });
          } catch (error) {
            return Promise.reject(error);
          }
          return value.apply(target, args);
        };
      }
      return value.bind(target);
    },
  });
  return {
    kv: wrapped,
    fault(fault) {
      current = fault;
    },
    get refused() {
      return refused;
    },
    failReads(error) {
      readFault = error;
    },
    get refusedReads() {
      return refusedReads;
    },
  };
}
