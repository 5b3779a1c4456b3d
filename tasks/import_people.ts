/**
 * `deno task import-people [--replace] [--dry-run] PATH`: reads a
 * `people.csv` (header `phone_number,name,email,properties`) into the
 * directory. New numbers are added, listed ones updated, unchanged ones left
 * alone; each bad row is reported with its line and not imported. With
 * `--replace`, people missing from the file are removed (only when every row
 * is valid); with `--dry-run`, nothing is written. A running service sees
 * the change from its next message on. KV is found as the service finds it
 * (see export_sessions.ts), and named on standard error.
 */
import { resolveKvLocation } from "../src/storage/mod.ts";
import { importPeopleCsv } from "../src/people/mod.ts";
import { openTaskKv, taskArgs, userPath } from "./_cli.ts";

const USAGE = `Usage: deno task import-people [--replace] [--dry-run] PATH
  Reads a people.csv (header phone_number,name,email,properties) into the people directory:
  new numbers added, listed ones updated; each bad row named by its line and not imported.
  --dry-run   say what would change; write nothing
  --replace   also remove the people the file does not list (only when every row is valid)`;

const { values, positionals } = taskArgs(USAGE, {
  options: { replace: { type: "boolean" }, "dry-run": { type: "boolean" } },
  allowPositionals: true,
});
if (positionals.length !== 1) {
  console.error(USAGE);
  Deno.exit(2);
}

const env = Deno.env.toObject();
const path = userPath(positionals[0], env);
let file: Uint8Array;
try {
  file = await Deno.readFile(path);
} catch (error) {
  console.error(`Cannot read ${path}: ${(error as Error).message}`);
  Deno.exit(1);
}

const kv = await openTaskKv(resolveKvLocation(env), env);
try {
  const started = performance.now();
  const report = await importPeopleCsv(kv, file, {
    now: Date.now(),
    replace: values.replace ?? false,
    dryRun: values["dry-run"] ?? false,
  });
  for (const { line, reason } of report.invalid) console.log(`line ${line}: ${reason}`);
  if (report.refused) {
    console.log(report.refused);
    Deno.exitCode = 1;
  } else {
    const verb = report.dryRun ? "would be " : "";
    console.log(
      `${report.rows} rows: ${verb}added ${report.added}, ${verb}updated ${report.updated}, ` +
        `unchanged ${report.unchanged}, ${verb}removed ${report.removed}, ` +
        `invalid ${report.invalid.length} (${Math.round(performance.now() - started)} ms)`,
    );
    if (report.invalid.length > 0) Deno.exitCode = 1;
  }
} finally {
  kv.close();
}
