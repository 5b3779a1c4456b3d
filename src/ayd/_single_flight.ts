/**
 * One piece of work per key at a time in this process: later callers share
 * the promise of the one under way. Private to `src/ayd/`.
 *
 * @module
 */

/** Runs `work` for `key` unless one runs already, whose result is shared. */
export function singleFlight<T>(): (key: string, work: () => Promise<T>) => Promise<T> {
  const inFlight = new Map<string, Promise<T>>();
  return (key, work) => {
    const running = inFlight.get(key);
    if (running) return running;
    const started = work().finally(() => inFlight.delete(key));
    inFlight.set(key, started);
    return started;
  };
}
