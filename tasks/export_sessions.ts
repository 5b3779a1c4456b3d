/**
 * `deno task export-sessions [--out PATH|-]`: writes every live session in
 * KV as the Flask app's `ayd_sessions.csv` (default path), atomically and
 * owner-only; `-` writes to standard output.
 *
 * KV is found as the service finds it: DENO_KV_URL (with
 * DENO_KV_ACCESS_TOKEN, e.g. a Deno Deploy database), else DENO_KV_PATH,
 * else data/bridge.kv.
 */
import { kvOpenError, openKv, resolveKvLocation } from "../src/storage/mod.ts";
import { exportSessionsCsv, writeFileAtomically } from "../src/ayd/mod.ts";

const USAGE = "Usage: deno task export-sessions [--out PATH|-]   (default: ayd_sessions.csv)";

const args = [...Deno.args];
let out = "ayd_sessions.csv";
while (args.length > 0) {
  const arg = args.shift()!;
  if (arg === "--out" && args.length > 0) out = args.shift()!;
  else if (arg.startsWith("--out=")) out = arg.slice("--out=".length);
  else {
    console.error(USAGE);
    Deno.exit(2);
  }
}

const location = resolveKvLocation(Deno.env.toObject());
const kv = await openKv(location).catch((error) => {
  console.error(kvOpenError(location, error));
  Deno.exit(1);
});
try {
  const csv = await exportSessionsCsv(kv, { now: Date.now() });
  const count = csv.split("\r\n").length - 2;
  if (out === "-") {
    await Deno.stdout.write(new TextEncoder().encode(csv));
  } else {
    await writeFileAtomically(out, csv);
  }
  console.error(
    `Exported ${count} session${count === 1 ? "" : "s"} to ${
      out === "-" ? "standard output" : out
    }.`,
  );
} catch (error) {
  console.error(`Export failed: ${(error as Error).message}`);
  Deno.exitCode = 1;
} finally {
  kv.close();
}
