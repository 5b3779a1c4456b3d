/**
 * `deno task doctor`: checks the configuration in the environment and `.env`
 * against Twilio, AskYourDatabase, KV and the public URL, prints one line per
 * check with a fix under each failure, and exits 0 only when none failed.
 * Secrets are never printed.
 *
 * @module
 */
import { allPassed, formatReport, runDoctor } from "../src/doctor/mod.ts";

console.log("Bridge doctor: checking the configuration in the environment and .env\n");
const lines = await runDoctor(Deno.env.toObject());
console.log(formatReport(lines));
Deno.exit(allPassed(lines) ? 0 : 1);
