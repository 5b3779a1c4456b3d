/**
 * `deno task import-sessions PATH`: reads an old app's `ayd_sessions.csv`
 * into KV, so each WhatsApp user keeps their AYD conversation. Expired rows
 * are skipped, bad rows reported with their line, and importing twice
 * changes nothing. KV is found as the service finds it (see export_sessions.ts).
 */
import { kvOpenError, openKv, resolveKvLocation } from "../src/storage/mod.ts";
import { importSessionsCsv } from "../src/ayd/mod.ts";

if (Deno.args.length !== 1 || Deno.args[0].startsWith("-")) {
  console.error("Usage: deno task import-sessions PATH   (an ayd_sessions.csv of the Flask app)");
  Deno.exit(2);
}
const path = Deno.args[0];
let text: string;
try {
  text = await Deno.readTextFile(path);
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
  const report = await importSessionsCsv(kv, text, { now: Date.now() });
  console.log(
    `imported ${report.imported}, expired ${report.expired}, invalid ${report.invalid.length}, ` +
      `unchanged ${report.unchanged}, superseded ${report.superseded}`,
  );
  for (const { line, reason } of report.invalid) console.log(`line ${line}: ${reason}`);
} finally {
  kv.close();
}
