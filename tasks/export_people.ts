/**
 * `deno task export-people [--out PATH|-] [--force]`: writes the directory
 * as `people.csv` (default path), atomically and readable by the owner only
 * (it holds names, emails and properties); `-` writes to standard output.
 * An existing file is never replaced without `--force`: it may be the very
 * file the directory was imported from, with rows kept on purpose.
 * The file imports back with `deno task import-people` to no change. KV is
 * found as the service finds it (see export_sessions.ts), and named on
 * standard error.
 */
import { resolveKvLocation } from "../src/storage/mod.ts";
import { writeFileAtomically } from "../src/ayd/mod.ts";
import { exportPeopleCsv } from "../src/people/mod.ts";
import { exportTarget, openTaskKv, taskArgs } from "./_cli.ts";

const USAGE = `Usage: deno task export-people [--out PATH|-] [--force]
  Writes the people directory as people.csv (names, emails, properties: readable by the owner only).
  --out PATH   where to write (default: people.csv); - for standard output
  --force      replace PATH if it exists (without it an existing file is left alone)`;

const { values } = taskArgs(USAGE, {
  options: { out: { type: "string", default: "people.csv" }, force: { type: "boolean" } },
});

const env = Deno.env.toObject();
const out = await exportTarget(values.out, values.force, env, refusal);
const toStdout = out === "-";
const kv = await openTaskKv(resolveKvLocation(env), env);
try {
  const csv = await exportPeopleCsv(kv);
  const count = csv.split("\r\n").length - 2;
  if (toStdout) await Deno.stdout.write(new TextEncoder().encode(csv));
  else await writeFileAtomically(out, csv, { overwrite: values.force ?? false });
  console.error(
    `Exported ${count} ${count === 1 ? "person" : "people"} to ${
      toStdout ? "standard output" : out
    }.`,
  );
} catch (error) {
  if (error instanceof Deno.errors.AlreadyExists) console.error(refusal(out));
  else console.error(`Export failed: ${(error as Error).message}`);
  Deno.exitCode = 1;
} finally {
  kv.close();
}

function refusal(path: string): string {
  return `${path} exists and was left as it is (it may be the file the directory came from).\n` +
    "Write elsewhere with --out PATH, or replace it with --force.";
}
