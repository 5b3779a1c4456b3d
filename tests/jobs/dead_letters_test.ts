/** Dead letters: what lands there, and `deno task dead-letters`. */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { REPLIES } from "../../src/conversation/answer.ts";
import { listDeadLetters, retryDeadLetter } from "../../src/jobs/dead_letters.ts";
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
