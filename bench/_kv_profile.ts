/**
 * `main.ts` with its KV operations counted and timed: every second it logs a
 * `kv.profile` line with, per operation (commit, get, getMany, set,
 * enqueue), how many completed so far and their mean and largest latency
 * (queueing included); the process's CPU use over that second (all threads,
 * % of one core) and the event loop's longest lag. For profiling a
 * benchmark, e.g. `slowBurst({ …, script: <this file>, logFile: "/tmp/burst.log" })`.
 */
import process from "node:process";

type Stats = { n: number; ms: number; max: number };
const stats: Record<string, Stats> = {};

function timed(target: object, name: string) {
  const proto = target as Record<string, (...args: unknown[]) => unknown>;
  const original = proto[name];
  proto[name] = function (this: unknown, ...args: unknown[]) {
    const started = performance.now();
    const result = original.apply(this, args);
    if (!(result instanceof Promise)) return result;
    return result.finally(() => {
      const ms = performance.now() - started;
      const entry = stats[name] ??= { n: 0, ms: 0, max: 0 };
      entry.n++;
      entry.ms += ms;
      entry.max = Math.max(entry.max, ms);
    });
  };
}

timed(Deno.AtomicOperation.prototype, "commit");
for (const name of ["get", "getMany", "set", "enqueue"]) timed(Deno.Kv.prototype, name);

// The event loop's lag: how late a 10 ms timer fires.
let lagMax = 0;
let expected = performance.now() + 10;
setInterval(() => {
  lagMax = Math.max(lagMax, performance.now() - expected);
  expected = performance.now() + 10;
}, 10);

let cpuBefore = process.cpuUsage();
setInterval(() => {
  const cpu = process.cpuUsage(cpuBefore);
  cpuBefore = process.cpuUsage();
  const cpuPercent = Math.round((cpu.user + cpu.system) / 10_000);
  const loopLagMaxMs = Math.round(lagMax);
  lagMax = 0;
  const figures = Object.fromEntries(
    Object.entries(stats).map(([name, { n, ms, max }]) => [name, {
      n,
      mean_ms: Math.round((ms / n) * 100) / 100,
      max_ms: Math.round(max),
    }]),
  );
  console.log(JSON.stringify({
    time: new Date().toISOString(),
    event: "kv.profile",
    cpu_percent: cpuPercent,
    loop_lag_max_ms: loopLagMaxMs,
    ...figures,
  }));
}, 1_000);

await import("../main.ts");
