/**
 * `deno task export-people [--out PATH|-]`: writes the directory as
 * `people.csv` (default path), atomically and readable by the owner only
 * (it holds names, emails and properties); `-` writes to standard output.
 * The file imports back with `deno task import-people` to no change. KV is
 * found as the service finds it (see export_sessions.ts).
 */
import { kvOpenError, openKv, resolveKvLocation } from "../src/storage/mod.ts";
import { writeFileAtomically } from "../src/ayd/mod.ts";
import { exportPeopleCsv } from "../src/people/mod.ts";

const USAGE = "Usage: deno task export-people [--out PATH|-]   (default: people.csv)";

const args = [...Deno.args];
let out = "people.csv";
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
  const csv = await exportPeopleCsv(kv);
  const count = csv.split("\r\n").length - 2;
  if (out === "-") await Deno.stdout.write(new TextEncoder().encode(csv));
  else await writeFileAtomically(out, csv);
  console.error(
    `Exported ${count} ${count === 1 ? "person" : "people"} to ${
      out === "-" ? "standard output" : out
    }.`,
  );
} catch (error) {
  console.error(`Export failed: ${(error as Error).message}`);
  Deno.exitCode = 1;
} finally {
  kv.close();
}
