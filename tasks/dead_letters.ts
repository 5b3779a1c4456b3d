/**
 * `deno task dead-letters`: lists the messages whose job ended without an
 * answer, and puts them back in line.
 *
 *   deno task dead-letters                 list them, with what a retry will do
 *   deno task dead-letters show SM…        one's whole story: every failed attempt
 *   deno task dead-letters retry SM…       retry one
 *   deno task dead-letters retry --all     retry every one
 *
 * KV is found as the service finds it (`.env` and the environment):
 * DENO_KV_URL (with DENO_KV_ACCESS_TOKEN), else DENO_KV_PATH, else
 * data/bridge.kv.
 */
import {
  type AttemptNote,
  chooseBackend,
  type DeadLetter,
  FAILURE_LABELS,
  HISTORY_FIRST,
  historyOf,
  listDeadLetters,
  type MessageRecord,
  recordsOf,
  retryDeadLetter,
  retryPlan,
} from "../src/jobs/mod.ts";
import { resolveKvLocation } from "../src/storage/mod.ts";
import { maskNumbersIn, maskPhone } from "../src/log.ts";
import { openTaskKv, wantsHelp } from "./_cli.ts";

const USAGE =
  `Usage: deno task dead-letters [list | show <MessageSid>… | retry <MessageSid>… | retry --all]
  deno task dead-letters                      list the messages whose job ended unanswered
                                              (first cause, last failure, what a retry will do)
  deno task dead-letters show <MessageSid>…   every failed attempt of the given ones
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
if (command !== undefined && !["retry", "list", "show"].includes(command)) {
  console.error(USAGE);
  Deno.exit(2);
}
if ((command === "retry" || command === "show") && rest.length === 0) {
  console.error(USAGE);
  Deno.exit(2);
}

const kv = await openTaskKv(location, env);
const letters = await listDeadLetters(kv);

if (command === undefined || command === "list") {
  if (letters.length === 0) console.log("No dead letters.");
  const records = await recordsOf(kv, letters);
  for (const letter of letters) {
    console.log(summaryLine(letter));
    const history = historyOf(letter);
    const last = history.notes.at(-1)!;
    if (history.notes.length > 1) {
      const total = history.notes.length + history.omitted;
      console.log(`  last: ${noteLine(last)} (${total} failures in all; "show" lists them)`);
    }
    console.log(`  retry: ${retryPlan(letter, records.get(letter.messageSid))}`);
  }
} else if (command === "show") {
  const records = await recordsOf(kv, letters);
  for (const sid of rest) {
    const letter = letters.find((l) => l.messageSid === sid);
    if (!letter) {
      console.log(`${sid}: ${DESCRIPTIONS.not_found}`);
      Deno.exitCode = 1;
      continue;
    }
    show(letter, records.get(sid));
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
    `${sids.length - failed} queued again; a running bridge tries them again within a minute ` +
      "(what each retry does is in the list above them; one that fails comes back here).",
  );
  if (failed > 0) Deno.exitCode = 1;
}
kv.close();

function summaryLine(letter: DeadLetter): string {
  return [
    letter.messageSid,
    maskPhone(letter.phone),
    new Date(letter.failedAt).toISOString(),
    `${letter.attempts} attempt${letter.attempts === 1 ? "" : "s"}`,
    maskNumbersIn(letter.reason),
  ].join("  ");
}

function noteLine(note: AttemptNote): string {
  const run = note.round > 0 ? `retry ${note.round}, ` : "";
  const quiet = note.quiet ? " (the user was not messaged again)" : "";
  return `${run}attempt ${note.attempt}, ${iso(note.at)}: ${FAILURE_LABELS[note.kind]}: ` +
    `${maskNumbersIn(note.error)}${quiet}`;
}

function show(letter: DeadLetter, record: MessageRecord | undefined) {
  const history = historyOf(letter);
  console.log(summaryLine(letter));
  if (letter.receivedAt !== undefined) console.log(`  received: ${iso(letter.receivedAt)}`);
  console.log(`  first cause: ${maskNumbersIn(letter.reason)}`);
  console.log("  history:");
  history.notes.forEach((note, i) => {
    if (i === HISTORY_FIRST && history.omitted > 0) {
      console.log(`    … ${history.omitted} more not kept …`);
    }
    console.log(`    ${noteLine(note)}`);
  });
  const told = letter.told;
  console.log(
    `  told: ${
      told === undefined
        ? "not recorded (a dead letter of an earlier version)"
        : told.length === 0
        ? "nothing (no apology reached the user)"
        : told.map((text) => `"${text}"`).join(", then ")
    }`,
  );
  console.log(`  retry: ${retryPlan(letter, record)}`);
}

function iso(at: number): string {
  return new Date(at).toISOString();
}
