/**
 * Memory: peak RSS of the service with many conversations in flight (fake
 * AYD starts every answer stream and holds it open), read from /proc
 * (VmHWM), beside a floor measured in the same run: a bare script holding
 * the same streams open with the bridge's AYD client alone. The service
 * runs with the shipped defaults.
 */
import { fileURLToPath } from "node:url";
import { type MainProcess, startMain } from "../tests/_process.ts";
import { benchEnv, load, post, signedRequests, startFakes, table, until } from "./_shared.ts";

const BARE = fileURLToPath(new URL("./bare_streams.ts", import.meta.url));

async function rssKb(pid: number, field: "VmHWM" | "VmRSS"): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
}

/** RSS of `process` idle, with the streams held, and at its peak. */
async function measure(
  process: MainProcess,
  start: () => Promise<unknown>,
  held: () => boolean,
  done: () => boolean,
  timeoutMs: number,
) {
  const idle = await rssKb(process.pid, "VmRSS");
  await start();
  await until(held, 60_000, "conversations in flight");
  const holding = await rssKb(process.pid, "VmRSS");
  await until(done, timeoutMs, "every answer");
  const peak = await rssKb(process.pid, "VmHWM");
  return {
    "idle RSS MB": idle / 1024,
    "RSS in flight MB": holding / 1024,
    "peak RSS MB": peak / 1024,
  };
}

export async function memory(
  options: { conversations: number; holdMs: number; env?: Record<string, string> },
) {
  await using fakes = await startFakes();
  const dir = await Deno.makeTempDir();
  const count = options.conversations;
  try {
    let open = 0;
    // Each answer starts at once and then stalls, as a slow AYD stream does:
    // headers and the first words are through, the rest waits `holdMs`.
    fakes.ayd.onAsk(({ question }) => {
      open++;
      const until = new Promise<void>((resolve) =>
        setTimeout(() => {
          open--;
          resolve();
        }, options.holdMs)
      );
      // One SSE event per network write, about what a token stream looks like.
      const text = `A:${question} ` + "data ".repeat(200);
      return { kind: "answer", text, chunkBytes: 64, pause: { afterChars: 20, until } };
    });
    // The shipped defaults: WORKER_CONCURRENCY (1,000) lets every
    // conversation run at once; the typing indicator is on.
    const env = benchEnv(dir, fakes, {
      AYD_TIMEOUT_MS: String(options.holdMs * 4),
      ...options.env,
    }, { shipped: true });
    const timeoutMs = options.holdMs * 10 + 60_000;
    const inFlight = () => open >= count * 0.95;
    const rows = [];
    {
      await using service = await startMain(env);
      const requests = signedRequests(count, count);
      rows.push({
        process: "bridge (main.ts)",
        conversations: count,
        ...await measure(
          service,
          () => load(requests, 64, (r) => post(service.url, r)),
          inFlight,
          () => fakes.twilio.messages.length >= count,
          timeoutMs,
        ),
      });
    }
    {
      await using bare = await startMain({ ...env, STREAMS: String(count) }, BARE);
      rows.push({
        process: "floor: AYD streams alone",
        conversations: count,
        ...await measure(
          bare,
          () => Promise.resolve(),
          inFlight,
          () => bare.output().includes("streams.done"),
          timeoutMs,
        ),
      });
    }
    table(`Memory: ${count} conversations, each AYD answer held open ${options.holdMs} ms`, rows);
    return rows;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
