/**
 * Cold start: process start → first acknowledged signed webhook, the median
 * of several runs, beside the bare Hono ceiling.
 */
import { fileURLToPath } from "node:url";
import { freePort, mainCommand } from "../tests/_process.ts";
import { benchEnv, post, signedRequests, startFakes, summarize, table } from "./_shared.ts";

const BARE = fileURLToPath(new URL("./bare_hono.ts", import.meta.url));

async function firstAck(env: Record<string, string>, script?: string): Promise<number> {
  const port = freePort();
  const [request] = signedRequests(1, 1);
  const started = performance.now();
  const child = mainCommand({ ...env, PORT: String(port) }, script).spawn();
  try {
    while (true) {
      try {
        if (await post(`http://127.0.0.1:${port}`, request) === 200) {
          return performance.now() - started;
        }
      } catch { /* not listening yet */ }
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  } finally {
    child.kill("SIGKILL");
    await child.status;
    await child.stdout.cancel();
    await child.stderr.cancel();
  }
}

export async function coldStart(options: { runs: number }) {
  await using fakes = await startFakes();
  const ours: number[] = [];
  const bare: number[] = [];
  for (let run = 0; run < options.runs; run++) {
    const dir = await Deno.makeTempDir();
    try {
      ours.push(await firstAck(benchEnv(dir, fakes)));
      bare.push(await firstAck({ LOG_LEVEL: "info" }, BARE));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
  const rows = [
    { server: "bridge (main.ts)", "median ms": summarize(ours).p50, "max ms": summarize(ours).max },
    { server: "bare Hono", "median ms": summarize(bare).p50, "max ms": summarize(bare).max },
  ];
  table(`Cold start: process start → first acknowledged webhook (${options.runs} runs)`, rows);
  return rows;
}
