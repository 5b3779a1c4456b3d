/**
 * The composition root: environment → config → KV → bridge.
 *
 * @module
 */
import { dirname } from "node:path";
import { type Bridge, startBridge } from "./src/bridge.ts";
import { formatConfigProblems, loadConfig } from "./src/config.ts";
import { createLogger } from "./src/log.ts";

const result = loadConfig(Deno.env.toObject());
if (!result.ok) {
  console.error(formatConfigProblems(result.problems));
  Deno.exit(1);
}
const { config } = result;
const log = createLogger({ level: config.logLevel });

// Deno Deploy wants cron jobs registered at the top level, before any await.
// Every minute, lanes whose worker died (or that wait for a retry) restart.
let bridge: Bridge | undefined;
Deno.cron("sweep job lanes", "* * * * *", () => bridge?.sweep());

const kv = await openKv(config.kvPath);
bridge = startBridge(config, { kv, log });

let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, async () => {
    if (stopping) return;
    stopping = true;
    log.info("service.stopping", { signal });
    const closing = bridge;
    bridge = undefined;
    await closing?.close();
    Deno.exit(0);
  });
}

/** Opens the KV store, or stops with a plain message instead of a trace. */
async function openKv(path: string | undefined): Promise<Deno.Kv> {
  try {
    if (path && path !== ":memory:") await Deno.mkdir(dirname(path), { recursive: true });
    return await Deno.openKv(path);
  } catch (error) {
    console.error(
      `Cannot open the Deno KV database at ${path ?? "the platform default"}: ${
        (error as Error).message
      }\n` +
        "Set DENO_KV_PATH to a writable file path (or :memory:), then start again.",
    );
    Deno.exit(1);
  }
}
