/**
 * The composition root: environment → config → KV → bridge. Started by
 * `deno task dev` (`main.ts --dev`) with nothing configured, it serves the
 * sandbox instead (`src/sandbox/dev.ts`).
 *
 * @module
 */
import { type Bridge, startBridge, startupGuide } from "./src/bridge.ts";
import { formatConfigProblems, isUnconfigured, loadConfig } from "./src/config.ts";
import { kvOpenError, openKv } from "./src/storage/mod.ts";
import { createLogger, stdoutLines } from "./src/log.ts";
import { scheduleSessionsExport } from "./src/ayd/mod.ts";
import { exitAfterStop, loadTelemetry } from "./src/telemetry/mod.ts";

const env = Deno.env.toObject();
if (Deno.args.includes("--dev") && isUnconfigured(env)) {
  // `deno task dev` in a fresh clone: the sandbox, instead of six errors. Never
  // taken by `deno task start` or Deno Deploy, which do not pass --dev.
  const { serveDevSandbox } = await import("./src/sandbox/mod.ts");
  await serveDevSandbox(env);
}
const result = loadConfig(env);
if (!result.ok) {
  console.error(formatConfigProblems(result.problems));
  Deno.exit(1);
}
const { config } = result;
const log = createLogger({ level: config.logLevel });

// Deno Deploy wants cron jobs registered at the top level, before any await
// (the one above is only reached under `deno task dev`).
// Every minute, lanes whose worker died (or that wait for a retry) restart.
let bridge: Bridge | undefined;
const opened: { kv?: Deno.Kv } = {};
Deno.cron("sweep job lanes", "* * * * *", () => bridge?.sweep());
// KV's own expiry is not used (its collector panics on a full disk): this prunes.
Deno.cron("prune expired keys", "*/10 * * * *", () => bridge?.prune());
const exportSessions = config.sessionsCsvPath
  ? scheduleSessionsExport({
    path: config.sessionsCsvPath,
    everyMinutes: config.sessionsCsvEveryMinutes,
    kv: () => bridge && opened.kv,
    log,
    cron: Deno.cron,
  })
  : undefined;

opened.kv = await openKv(config.kvPath).catch((error) => {
  console.error(kvOpenError(config.kvPath, error));
  Deno.exit(1);
});
// With OTEL_DENO=true, Deno exports what the bridge records; else nothing loads.
const telemetry = await loadTelemetry(env);
bridge = startBridge(config, { kv: opened.kv, log, telemetry });
// Standard output carries the JSON lines; a person at a terminal gets these too.
if (Deno.stderr.isTerminal()) console.error(startupGuide(config, bridge.url));

let stopping = false;
const stop = async (signal: "SIGINT" | "SIGTERM") => {
  if (stopping) return;
  stopping = true;
  log.info("service.stopping", { signal });
  await exportSessions?.();
  const closing = bridge;
  bridge = undefined;
  await closing?.close();
  await stdoutLines.flush();
  exitAfterStop(signal, listeners, telemetry);
};
const listeners = { SIGINT: () => stop("SIGINT"), SIGTERM: () => stop("SIGTERM") };
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, listeners[signal]);
}
