/**
 * `deno task export-sessions [--out PATH|-] [--force]`: writes every live
 * session in KV as the Flask app's `ayd_sessions.csv`, atomically and
 * owner-only; `-` writes to standard output. An existing file is never
 * replaced without `--force`: in the Flask app's folder it is that app's
 * own sessions.
 *
 * KV is found as the service finds it (`.env` and the environment):
 * DENO_KV_URL (with DENO_KV_ACCESS_TOKEN: a denokv server),
 * else DENO_KV_PATH, else data/bridge.kv.
 */
import { resolveKvLocation } from "../src/storage/mod.ts";
import { exportSessionsCsv, writeFileAtomically } from "../src/ayd/mod.ts";
import { exportTarget, openTaskKv, taskArgs } from "./_cli.ts";

const USAGE = `Usage: deno task export-sessions [--out PATH|-] [--force]
  Writes every live AYD session in KV as ayd_sessions.csv, the Flask app's format.
  --out PATH   where to write (default: ayd_sessions.csv); - for standard output
  --force      replace PATH if it exists (without it an existing file is left alone)`;

const { values } = taskArgs(USAGE, {
  options: { out: { type: "string", default: "ayd_sessions.csv" }, force: { type: "boolean" } },
});

const env = Deno.env.toObject();
const out = await exportTarget(values.out, values.force, env, refusal);
const toStdout = out === "-";

const location = resolveKvLocation(env);
const kv = await openTaskKv(location, env);
try {
  const csv = await exportSessionsCsv(kv, { now: Date.now() });
  const count = csv.split("\r\n").length - 2;
  if (toStdout) await Deno.stdout.write(new TextEncoder().encode(csv));
  else await writeFileAtomically(out, csv, { overwrite: values.force ?? false });
  const sessions = `${count} session${count === 1 ? "" : "s"}`;
  console.error(`Exported ${sessions} to ${toStdout ? "standard output" : out}.`);
  if (count === 0) {
    console.error(
      "KV holds no live session. If the service has users, this is not its KV: " +
        "set DENO_KV_PATH (or DENO_KV_URL) as the service has it, in .env or the environment.",
    );
  }
} catch (error) {
  if (error instanceof Deno.errors.AlreadyExists) console.error(refusal(out));
  else console.error(`Export failed: ${(error as Error).message}`);
  Deno.exitCode = 1;
} finally {
  kv.close();
}

function refusal(path: string): string {
  return `${path} exists and was left as it is (it may be the Flask app's own sessions).\n` +
    "Write elsewhere with --out PATH, or replace it with --force.";
}
