/** Dead letters: what lands there, and `deno task dead-letters`. */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { REPLIES } from "../../src/conversation/answer.ts";
import { type DeadLetter, listDeadLetters, retryDeadLetter } from "../../src/jobs/dead_letters.ts";
import { deadLetterKey, messageKey } from "../../src/jobs/jobs.ts";
import { startTestBridge, testEveryBackend, testKv, waitFor } from "../_helpers.ts";

const TASK = fileURLToPath(new URL("../../tasks/dead_letters.ts", import.meta.url));
const USER = "whatsapp:+15551234567";

/** Runs the task on a KV file (a path) or on the KV an environment names. */
async function task(kv: string | Record<string, string>, ...args: string[]) {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-env", "--allow-read", "--allow-write", "--allow-net", TASK, ...args],
    env: { ...(typeof kv === "string" ? { DENO_KV_PATH: kv } : kv), NO_COLOR: "1" },
    stdin: "null",
  }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code, out: decode(stdout), err: decode(stderr) };
}

testEveryBackend("dead letters - listed by the task, retried, then answered", async (backend) => {
  const dir = await Deno.makeTempDir();
  try {
    await using kv = await testKv(backend, dir);
    // The task reaches the same KV as the service, a file or over KV Connect.
    const kvPath = kv.env;
    await using t = await startTestBridge({ backend, kv });
    t.ayd.onAsk(() => ({ kind: "status", status: 500 }));
    const sid = "SM" + "9".repeat(32);
    await t.sendWhatsApp({ MessageSid: sid, Body: "try me later" });
    const [apology] = await t.twilio.waitForMessages(USER, 1);
    assert.equal(apology.body, REPLIES.failure);
    await waitFor(async () => (await t.kv.get(deadLetterKey(sid))).value !== null, "dead letter");

    const listed = await task(kvPath);
    assert.equal(listed.code, 0, listed.err);
    assert.match(
      listed.out,
      new RegExp(`^${sid}  \\+\\*{7}4567  \\S+Z  1 attempt  AydError: ask answered 500`),
    );
    assert.doesNotMatch(listed.out, /15551234567|try me later/);

    t.ayd.onAsk(null);
    const retried = await task(kvPath, "retry", sid);
    assert.equal(retried.code, 0, retried.err);
    assert.match(retried.out, /queued again/);
    await t.bridge.sweep(); // what the every-minute cron does
    const replies = await t.twilio.waitForMessages(USER, 2);
    assert.equal(replies[1].body, "Answer to: try me later");
    assert.deepEqual(await listDeadLetters(t.kv), []);
    assert.match((await task(kvPath)).out, /^No dead letters\.$/m);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dead letters - the task lists each one's first cause, its last failure and what a retry will do, and shows the whole story", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await using kv = await testKv("kv-queue", dir);
    await using t = await startTestBridge({ kv });
    t.ayd.onAsk(() => ({ kind: "status", status: 500 }));
    const sid = "SM" + "7".repeat(32);
    await t.sendWhatsApp({ MessageSid: sid, Body: "try me later" });
    await t.twilio.waitForMessages(USER, 1);
    await waitFor(async () => (await t.kv.get(deadLetterKey(sid))).value !== null, "dead letter");
    // Retried while AYD still fails: back with a second note, and no second apology.
    t.ayd.onAsk(() => ({ kind: "status", status: 502 }));
    const retried = await task(kv.env, "retry", sid);
    assert.equal(
      retried.out,
      `${sid}: queued again\n1 queued again; a running bridge tries them again within a minute ` +
        "(what each retry does is in the list above them; one that fails comes back here).\n",
    );
    await t.bridge.sweep();
    await waitFor(async () => {
      const letter = (await t.kv.get<DeadLetter>(deadLetterKey(sid))).value;
      return letter?.retries === 1;
    }, "the dead letter back");
    assert.equal(t.twilio.messages.length, 1);
    const letter = (await t.kv.get<DeadLetter>(deadLetterKey(sid))).value!;
    const received = new Date(letter.receivedAt!).toISOString().replace("T", " ").slice(0, 19);

    const listed = await task(kv.env);
    assert.equal(listed.code, 0, listed.err);
    const lines = listed.out.trimEnd().split("\n");
    assert.equal(lines.length, 3, listed.out);
    assert.match(
      lines[0],
      new RegExp(`^${sid}  \\+\\*{7}4567  \\S+Z  2 attempts  AydError: ask answered 500`),
    );
    assert.match(
      lines[1],
      /^ {2}last: retry 1, attempt 1, \S+Z: AYD: AydError: ask answered 502.* \(the user was not messaged again\) \(2 failures in all; "show" lists them\)$/,
    );
    assert.equal(
      lines[2],
      `  retry: Asks AYD again the question received at ${received} UTC. The user already ` +
        `received the apology ("${REPLIES.failure}"): if it fails the same way (AYD again), they ` +
        "are not messaged again; if it fails another way, they get that failure's reply unless " +
        "they have it already; if it succeeds, they get the answer.",
    );

    const shown = await task(kv.env, "show", sid);
    assert.equal(shown.code, 0, shown.err);
    const story = shown.out.split("\n");
    assert.equal(story[0], lines[0]);
    assert.match(story[1], /^ {2}received: \S+Z$/);
    assert.match(story[2], /^ {2}first cause: AydError: ask answered 500/);
    assert.equal(story[3], "  history:");
    assert.match(story[4], /^ {4}attempt 1, \S+Z: AYD: AydError: ask answered 500/);
    assert.match(story[5], /^ {4}retry 1, attempt 1, \S+Z: AYD: AydError: ask answered 502/);
    assert.equal(story[6], `  told: "${REPLIES.failure}"`);
    assert.equal(story[7], lines[2]);
    for (const out of [listed.out, shown.out]) {
      assert.doesNotMatch(out, /15551234567|try me later/);
    }
    const unknown = await task(kv.env, "show", "SMnope");
    assert.equal(unknown.code, 1);
    assert.match(unknown.out, /^SMnope: no such dead letter$/m);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dead letters - the task explains bad usage and unknown ids", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const usage = await task(`${dir}/bridge.kv`, "resurrect");
    assert.equal(usage.code, 2);
    assert.match(usage.err, /^Usage:/);
    const unknown = await task(`${dir}/bridge.kv`, "retry", "SMnope");
    assert.equal(unknown.code, 1);
    assert.match(unknown.out, /SMnope: no such dead letter/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dead letters - a letter whose message expired cannot be retried", async () => {
  using kv = await Deno.openKv(":memory:");
  await kv.set(deadLetterKey("SM1"), {
    messageSid: "SM1",
    phone: "+15551234567",
    reason: "x",
    attempts: 1,
    failedAt: 1,
  });
  assert.equal(await retryDeadLetter(kv, "SM1", { backend: "outbox" }), "message_expired");
  assert.equal(await retryDeadLetter(kv, "SM2", { backend: "outbox" }), "not_found");
  assert.equal((await kv.get(messageKey("SM1"))).value, null);
});
