/**
 * `deno task import-people PATH [--replace] [--dry-run]`: reads a
 * `people.csv` (header `phone_number,name,email,properties`) into the
 * directory. New numbers are added, listed ones updated, unchanged ones left
 * alone; each bad row is reported with its line and not imported. With
 * `--replace`, people missing from the file are removed (only when every row
 * is valid); with `--dry-run`, nothing is written. A running service sees
 * the change from its next message on. KV is found as the service finds it
 * (see export_sessions.ts).
 */
import { kvOpenError, openKv, resolveKvLocation } from "../src/storage/mod.ts";
import { importPeopleCsv } from "../src/people/mod.ts";

const USAGE = "Usage: deno task import-people PATH [--replace] [--dry-run]   " +
  "(a CSV with the header phone_number,name,email,properties)";

const flags = Deno.args.filter((arg) => arg.startsWith("-"));
const paths = Deno.args.filter((arg) => !arg.startsWith("-"));
const known = ["--replace", "--dry-run"];
if (paths.length !== 1 || flags.some((flag) => !known.includes(flag))) {
  console.error(USAGE);
  Deno.exit(2);
}
const [path] = paths;
let file: Uint8Array;
try {
  file = await Deno.readFile(path);
} catch (error) {
  console.error(`Cannot read ${path}: ${(error as Error).message}`);
  Deno.exit(1);
}

const location = resolveKvLocation(Deno.env.toObject());
const kv = await openKv(location).catch((error) => {
  console.error(kvOpenError(location, error));
  Deno.exit(1);
});
try {
  const started = performance.now();
  const report = await importPeopleCsv(kv, file, {
    now: Date.now(),
    replace: flags.includes("--replace"),
    dryRun: flags.includes("--dry-run"),
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
