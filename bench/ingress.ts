/**
 * Ingress: correctly signed webhooks with distinct MessageSids against the
 * real service (main.ts, real KV file) at rising concurrency, beside the
 * ceiling of a bare Hono route answering the same TwiML.
 */
import { fileURLToPath } from "node:url";
import { startMain } from "../tests/_process.ts";
import { benchEnv, load, post, signedRequests, startFakes, table } from "./_shared.ts";

const BARE = fileURLToPath(new URL("./bare_hono.ts", import.meta.url));

export async function ingress(options: { perLevel: number; levels: number[] }) {
  await using fakes = await startFakes();
  const dir = await Deno.makeTempDir();
  const rows = [];
  try {
    await using bare = await startMain({ PORT: "0", LOG_LEVEL: "info" }, BARE);
    // Jobs start too, as in production, but AYD takes longer to answer than
    // the run lasts (a real answer takes seconds): the figure is the webhook's
    // own cost, not the pipeline's (see the pipeline benchmark).
    fakes.ayd.onAsk(() => ({ kind: "hang" }));
    await using service = await startMain(benchEnv(dir, fakes, { LOG_LEVEL: "info" }));
    // Warm both up: JIT, connections, KV file.
    const warm = signedRequests(300, 50);
    await load(warm, 16, (r) => post(bare.url, r));
    await load(warm, 16, (r) => post(service.url, r));
    for (const concurrency of options.levels) {
      const ceiling = await load(
        signedRequests(options.perLevel, 50),
        concurrency,
        (r) => post(bare.url, r),
      );
      const ours = await load(
        signedRequests(options.perLevel, 500),
        concurrency,
        (r) => post(service.url, r),
      );
      rows.push({
        concurrency,
        "req/s": ours.perSecond,
        "p50 ms": ours.p50,
        "p99 ms": ours.p99,
        "max ms": ours.max,
        errors: ours.errors,
        "ceiling req/s": ceiling.perSecond,
        "of ceiling": `${Math.round((ours.perSecond / ceiling.perSecond) * 100)}%`,
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  table("Ingress: signed webhooks acknowledged (real service vs bare Hono ceiling)", rows);
  return rows;
}
