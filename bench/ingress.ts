/**
 * Ingress: correctly signed webhooks with distinct MessageSids against the
 * real service (main.ts, real KV file) at rising concurrency, beside the
 * ceiling of a bare Hono route answering the same TwiML.
 */
import { fileURLToPath } from "node:url";
import { startMain } from "../tests/_process.ts";
import {
  benchEnv,
  load,
  post,
  signedRequests,
  startFakes,
  startRemoteKv,
  table,
} from "./_shared.ts";

const BARE = fileURLToPath(new URL("./bare_hono.ts", import.meta.url));

export async function ingress(options: {
  perLevel: number;
  levels: number[];
  /** Also over KV Connect, at this concurrency, with commits and round trips per webhook. */
  remoteLevel?: number;
}) {
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
  const remote = options.remoteLevel ? await ingressOverKvConnect(options) : undefined;
  return { local: rows, kvConnect: remote };
}

/**
 * The same webhooks with the service on a remote KV (the KV Connect test
 * server, outbox backend): what a webhook costs in commits and round trips
 * there, where each is a network hop, and so what group commit saves.
 */
async function ingressOverKvConnect(options: { perLevel: number; remoteLevel?: number }) {
  await using fakes = await startFakes();
  fakes.ayd.onAsk(() => ({ kind: "hang" }));
  await using remote = await startRemoteKv();
  const dir = await Deno.makeTempDir();
  try {
    await using service = await startMain(benchEnv(dir, fakes, remote.env));
    await load(signedRequests(200, 50), 16, (r) => post(service.url, r));
    // Jobs start as webhooks arrive (and hang on AYD): count only the webhooks' own writes.
    const before = { ...remote.server.stats };
    const count = options.perLevel;
    const ours = await load(
      signedRequests(count, 500),
      options.remoteLevel!,
      (r) => post(service.url, r),
    );
    const stats = remote.server.stats;
    const per = (n: number) => Math.round((n / count) * 100) / 100;
    const row = {
      concurrency: options.remoteLevel!,
      "req/s": ours.perSecond,
      "p50 ms": ours.p50,
      "p99 ms": ours.p99,
      errors: ours.errors,
      "commits/webhook (all)": per(stats.commits - before.commits),
      "round trips/webhook (all)": per(stats.roundTrips - before.roundTrips),
    };
    table(
      "Ingress over KV Connect (outbox on the test server; counts include the jobs the webhooks start, up to their ask)",
      [row],
    );
    return row;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
