/**
 * `deno task import-sessions [--dry-run] [--skip-invalid] PATH`: reads an
 * old app's `ayd_sessions.csv` into KV, so each WhatsApp user keeps their
 * AYD conversation. Every bad row is reported at its line, and while any is
 * bad nothing is imported (unless `--skip-invalid`); the exit code is 1
 * whenever a row was bad. Expired rows are skipped and importing twice
 * changes nothing. KV is found as the service finds it (see
 * export_sessions.ts).
 */
import { resolveKvLocation } from "../src/storage/mod.ts";
import { type ImportReport, importSessionsCsv } from "../src/ayd/mod.ts";
import { openTaskKv, taskArgs, userPath } from "./_cli.ts";

const USAGE = `Usage: deno task import-sessions [--dry-run] [--skip-invalid] PATH
  Reads the Flask app's ayd_sessions.csv into KV: each user keeps their AYD conversation.
  --dry-run       check the file against KV and say what would change; write nothing
  --skip-invalid  import the good rows even when some are bad (the exit code is still 1)`;

const { values, positionals } = taskArgs(USAGE, {
  options: { "dry-run": { type: "boolean" }, "skip-invalid": { type: "boolean" } },
  allowPositionals: true,
});
if (positionals.length !== 1) {
  console.error(USAGE);
  Deno.exit(2);
}

const env = Deno.env.toObject();
const path = userPath(positionals[0], env);
let text: string;
try {
  text = await Deno.readTextFile(path);
} catch (error) {
  console.error(`Cannot read ${path}: ${(error as Error).message}`);
  Deno.exit(1);
}

const kv = await openTaskKv(resolveKvLocation(env), env);
try {
  const report = await importSessionsCsv(kv, text, {
    now: Date.now(),
    dryRun: values["dry-run"],
    skipInvalid: values["skip-invalid"],
  });
  for (const { line, reason } of report.invalid) console.log(`line ${line}: ${reason}`);
  for (const { line, reason } of report.replaced) console.log(`line ${line}: warning: ${reason}`);
  console.log(summary(report, values["dry-run"] ?? false));
  if (report.invalid.length > 0) Deno.exitCode = 1;
} finally {
  kv.close();
}

function summary(report: ImportReport, dryRun: boolean): string {
  const counts = `expired ${report.expired}, invalid ${report.invalid.length}, ` +
    `unchanged ${report.unchanged}, superseded ${report.superseded}`;
  if (dryRun) {
    return `would import ${report.imported}, ${counts} (dry run: nothing written)`;
  }
  if (!report.written) {
    const bad = report.invalid.length === 1 ? "1 bad row" : `${report.invalid.length} bad rows`;
    return `Nothing imported: ${bad} (above). Fix the file and run again, or add --skip-invalid ` +
      `to import the ${report.imported} good session${report.imported === 1 ? "" : "s"} ` +
      `and skip the bad rows.`;
  }
  return `imported ${report.imported}, ${counts}`;
}
