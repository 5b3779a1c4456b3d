/**
 * `deno task export-people [--out PATH|-]`: writes the directory as
 * `people.csv` (default path), atomically and readable by the owner only
 * (it holds names, emails and properties); `-` writes to standard output.
 * The file imports back with `deno task import-people` to no change. KV is
 * found as the service finds it (see export_sessions.ts), and named on
 * standard error.
 */
import { parseArgs } from "node:util";
import { resolveKvLocation } from "../src/storage/mod.ts";
import { writeFileAtomically } from "../src/ayd/mod.ts";
import { exportPeopleCsv } from "../src/people/mod.ts";
import { openTaskKv, userPath, wantsHelp } from "./_cli.ts";

const USAGE = `Usage: deno task export-people [--out PATH|-]
  Writes the people directory as people.csv (names, emails, properties: readable by the owner only).
  --out PATH   where to write (default: people.csv); - for standard output`;

if (wantsHelp(Deno.args)) {
  console.log(USAGE);
  Deno.exit(0);
}
const { values } = (() => {
  try {
    return parseArgs({ options: { out: { type: "string", default: "people.csv" } } });
  } catch (error) {
    console.error(`${(error as Error).message}\n${USAGE}`);
    Deno.exit(2);
  }
})();

const env = Deno.env.toObject();
const toStdout = values.out === "-";
const out = toStdout ? "-" : userPath(values.out, env);
const kv = await openTaskKv(resolveKvLocation(env), env);
try {
  const csv = await exportPeopleCsv(kv);
  const count = csv.split("\r\n").length - 2;
  if (toStdout) await Deno.stdout.write(new TextEncoder().encode(csv));
  else await writeFileAtomically(out, csv);
  console.error(
    `Exported ${count} ${count === 1 ? "person" : "people"} to ${
      toStdout ? "standard output" : out
    }.`,
  );
} catch (error) {
  console.error(`Export failed: ${(error as Error).message}`);
  Deno.exitCode = 1;
} finally {
  kv.close();
}
