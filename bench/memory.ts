/**
 * Memory: peak RSS of the service with many conversations in flight (fake
 * AYD holds every answer stream open), read from /proc (VmHWM).
 */
import { startMain } from "../tests/_process.ts";
import { benchEnv, load, post, signedRequests, startFakes, table, until } from "./_shared.ts";

async function rssKb(pid: number, field: "VmHWM" | "VmRSS"): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
}

export async function memory(options: { conversations: number; holdMs: number }) {
  await using fakes = await startFakes();
  const dir = await Deno.makeTempDir();
  try {
    let open = 0;
    fakes.ayd.onAsk(async ({ question }) => {
      open++;
      await new Promise((resolve) => setTimeout(resolve, options.holdMs));
      open--;
      // One SSE event per network write, about what a token stream looks like.
      return { kind: "answer", text: `A:${question} ` + "data ".repeat(200), chunkBytes: 64 };
    });
    await using service = await startMain(
      benchEnv(dir, fakes, {
        WORKER_CONCURRENCY: String(options.conversations),
        AYD_TIMEOUT_MS: String(options.holdMs * 4),
      }),
    );
    const idle = await rssKb(service.pid, "VmRSS");
    const requests = signedRequests(options.conversations, options.conversations);
    await load(requests, 64, (r) => post(service.url, r));
    await until(() => open >= options.conversations * 0.95, 60_000, "conversations in flight");
    const inFlight = open;
    const held = await rssKb(service.pid, "VmRSS");
    await until(
      () => fakes.twilio.messages.length >= options.conversations,
      options.holdMs * 10 + 60_000,
      "every answer",
    );
    const peak = await rssKb(service.pid, "VmHWM");
    const rows = [{
      conversations: options.conversations,
      "in flight at once": inFlight,
      "idle RSS MB": idle / 1024,
      "RSS in flight MB": held / 1024,
      "peak RSS MB": peak / 1024,
    }];
    table(
      `Memory: ${options.conversations} conversations, each AYD answer held ${options.holdMs} ms`,
      rows,
    );
    return rows;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
