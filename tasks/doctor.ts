/**
 * `deno task doctor`: checks the configuration in the environment and `.env`
 * against Twilio, AskYourDatabase, KV and the public URL, prints one line per
 * check with a fix under each failure, and exits 0 only when none failed.
 * Secrets are never printed.
 *
 * @module
 */
import { allPassed, formatReport, runDoctor } from "../src/doctor/mod.ts";
import { wantsHelp } from "./_cli.ts";

const USAGE = `Usage: deno task doctor
  Checks the configuration in the environment and .env (the environment wins) against Twilio,
  AskYourDatabase (as AYD_MODE says), KV and the public URL: one line per check, with a fix
  under each failure. Exits 0 when no check failed, else 1; never prints a secret.
  More: docs/setup.md, "deno task doctor".`;

if (wantsHelp(Deno.args)) {
  console.log(USAGE);
  Deno.exit(0);
}
if (Deno.args.length > 0) {
  console.error(USAGE);
  Deno.exit(2);
}

console.log("Bridge doctor: checking the configuration in the environment and .env\n");
const lines = await runDoctor(Deno.env.toObject());
console.log(formatReport(lines));
Deno.exit(allPassed(lines) ? 0 : 1);
