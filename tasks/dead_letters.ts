/**
 * `deno task dead-letters`: lists the messages whose job ended without an
 * answer, and puts them back in line.
 *
 *   deno task dead-letters                 list them
 *   deno task dead-letters retry SM…       retry one
 *   deno task dead-letters retry --all     retry every one
 *
 * KV is found as the service finds it (`.env` and the environment):
 * DENO_KV_URL (with DENO_KV_ACCESS_TOKEN), else DENO_KV_PATH, else
 * data/bridge.kv.
 */
import { chooseBackend, listDeadLetters, retryDeadLetter } from "../src/jobs/mod.ts";
import { resolveKvLocation } from "../src/storage/mod.ts";
import { maskPhone } from "../src/log.ts";
import { openTaskKv, wantsHelp } from "./_cli.ts";

const USAGE = `Usage: deno task dead-letters [list | retry <MessageSid>… | retry --all]
  deno task dead-letters                      list the messages whose job ended unanswered
  deno task dead-letters retry <MessageSid>…  put the given ones back in line
  deno task dead-letters retry --all          put every one back in line`;

const DESCRIPTIONS = {
  queued: "queued again",
  not_found: "no such dead letter",
  message_expired: "its message is no longer stored (kept 7 days); cannot retry",
  changed: "changed while retrying; run again",
} as const;

if (wantsHelp(Deno.args) || Deno.args[0] === "help") {
  console.log(USAGE);
  Deno.exit(0);
}
const env = Deno.env.toObject();
const location = resolveKvLocation(env);
const [command, ...rest] = Deno.args;
if (command !== undefined && command !== "retry" && command !== "list") {
  console.error(USAGE);
  Deno.exit(2);
}
if (command === "retry" && rest.length === 0) {
  console.error(USAGE);
  Deno.exit(2);
}

const kv = await openTaskKv(location, env);
const letters = await listDeadLetters(kv);

if (command === undefined || command === "list") {
  if (letters.length === 0) console.log("No dead letters.");
  for (const letter of letters) {
    console.log(
      [
        letter.messageSid,
        maskPhone(letter.phone),
        new Date(letter.failedAt).toISOString(),
        `${letter.attempts} attempt${letter.attempts === 1 ? "" : "s"}`,
        letter.reason,
      ].join("  "),
    );
  }
} else {
  const sids = rest.includes("--all") ? letters.map((l) => l.messageSid) : rest;
  const backend = chooseBackend(env);
  let failed = 0;
  for (const sid of sids) {
    const outcome = await retryDeadLetter(kv, sid, { backend });
    if (outcome !== "queued") failed++;
    console.log(`${sid}: ${DESCRIPTIONS[outcome]}`);
  }
  console.log(
    `${sids.length - failed} queued again; a running bridge answers them within a minute.`,
  );
  if (failed > 0) Deno.exitCode = 1;
}
kv.close();
