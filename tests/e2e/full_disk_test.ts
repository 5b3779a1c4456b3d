/**
 * A real full disk under the KV file: a small tmpfs, filled while `main.ts`
 * works, on both backends at once. Deno's SQLite backend panics when a
 * queue message or an expired key meets a full disk (see "Known issues" in
 * docs/operations.md); the bridge must live through it and answer once space
 * is back.
 * Mounting needs root (CI runs as root); elsewhere the test says it cannot run.
 */
import assert from "node:assert/strict";
import { STORE_FAILED_REPLY } from "../../src/webhook/app.ts";
import { startFakeAyd } from "../fakes/fake_ayd.ts";
import { startFakeTwilio } from "../fakes/fake_twilio.ts";
import {
  ACCOUNT_SID,
  API_KEY,
  AUTH_TOKEN,
  CHAT_ID,
  postForm,
  sign,
  testEnv,
  waitFor,
  whatsAppParams,
} from "../_helpers.ts";
import { freePort, startMain } from "../_process.ts";
import type { JobBackend } from "../../src/jobs/mod.ts";

/** How long the disk stays full: past the 60 s after which denokv's own periodic work runs. */
const FULL_FOR_MS = 65_000;

async function run(command: string, ...args: string[]) {
  const { code, stderr } = await new Deno.Command(command, { args, stderr: "piped" }).output();
  return { ok: code === 0, error: new TextDecoder().decode(stderr).trim() };
}

/** Mounts a tmpfs of `megabytes`; undefined (with the reason printed) when this machine cannot. */
async function smallDisk(megabytes: number) {
  if (Deno.build.os !== "linux" || Deno.uid() !== 0) return undefined;
  const dir = await Deno.makeTempDir();
  const mounted = await run("mount", "-t", "tmpfs", "-o", `size=${megabytes}m`, "tmpfs", dir);
  if (!mounted.ok) {
    console.log(`full disk test: cannot mount a tmpfs here (${mounted.error})`);
    await Deno.remove(dir);
    return undefined;
  }
  return {
    dir,
    /** Writes a file until the disk is full; resolves with a function that frees it. */
    async fill() {
      const path = `${dir}/filler`;
      using file = await Deno.open(path, { write: true, create: true });
      const chunk = new Uint8Array(16 * 1024);
      try {
        while (true) file.writeSync(chunk);
      } catch (error) {
        if (!/No space left|os error 28/i.test(String(error))) {
          throw error;
        }
      }
      return () => Deno.remove(path);
    },
    async [Symbol.asyncDispose]() {
      await run("umount", "-l", dir);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

const canMount = Deno.build.os === "linux" && Deno.uid() === 0;
if (!canMount) {
  console.log("full disk test: skipped, it needs root on Linux to mount a small tmpfs");
}

Deno.test({
  name:
    "full disk - the process lives through a full disk, on both backends, and answers once space is back",
  ignore: !canMount,
  async fn() {
    await using ayd = await startFakeAyd({ apiKey: API_KEY, chatId: CHAT_ID });
    await using twilio = await startFakeTwilio({ accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN });
    const { promise: spaceBack, resolve: freeSpace } = Promise.withResolvers<void>();
    ayd.onAsk(async ({ question }) => {
      if (question.startsWith("held")) await spaceBack; // answered while the disk is full
      return { kind: "answer", text: `Answer to: ${question}` };
    });
    await Promise.all((["kv-queue", "outbox"] as JobBackend[]).map(async (backend, n) => {
      await using disk = await smallDisk(8);
      if (!disk) throw new Error("the tmpfs could not be mounted");
      const env = testEnv({
        AYD_BASE_URL: ayd.url,
        TWILIO_API_BASE_URL: twilio.url,
        DENO_KV_PATH: `${disk.dir}/bridge.kv`,
        JOB_BACKEND: backend,
        JOB_RETRY_BUDGET_MS: "600000",
        PORT: String(freePort()),
        LOG_LEVEL: "info",
      });
      await using main = await startMain(env);
      const user = (i: number) => `whatsapp:+155500${n}${String(i).padStart(5, "0")}`;
      const send = async (i: number, body: string) => {
        const params = whatsAppParams({ From: user(i), Body: body });
        const response = await postForm(main.url, params, { "x-twilio-signature": sign(params) });
        return { status: response.status, text: await response.text() };
      };
      // Some questions answered before the disk fills, some held by AYD, and
      // a stream of webhooks that keeps coming while the disk fills up.
      for (let i = 0; i < 10; i++) assert.equal((await send(i, `early ${i}`)).status, 200);
      for (let i = 10; i < 15; i++) assert.equal((await send(i, `held ${i}`)).status, 200);
      await waitFor(
        () => twilio.messages.filter((m) => m.to.startsWith(`whatsapp:+155500${n}`)).length >= 10,
        "the early answers",
        20_000,
      );
      let streaming = true;
      const apologies: number[] = [];
      const stream = (async () => {
        for (let i = 100; streaming; i++) {
          const { status, text } = await send(i, `stream ${i}`);
          assert.equal(status, 200, "every webhook is acknowledged, full disk or not");
          if (text.includes("<Message>")) apologies.push(i);
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      })();
      const free = await disk.fill();
      await waitFor(() => apologies.length > 0, "a webhook that could not be stored", 20_000);
      const refused = await send(20, "while full");
      assert.equal(refused.status, 200);
      assert.ok(refused.text.includes(STORE_FAILED_REPLY.split("'")[0]), "the person hears why");
      await waitFor(
        async () => (await fetch(`${main.url}/health`)).status === 503,
        "degraded health",
        20_000,
      );
      // denokv's periodic work (queue cleanup, expiry) runs within this time.
      await new Promise((resolve) => setTimeout(resolve, FULL_FOR_MS));
      assert.equal((await fetch(`${main.url}/health`)).status, 503, "still full, still alive");
      streaming = false;
      await stream;
      await free();
      freeSpace();
      await waitFor(
        async () => (await fetch(`${main.url}/health`)).status === 200,
        "health back",
        30_000,
      );
      for (let i = 10; i < 15; i++) {
        const [reply] = await twilio.waitForMessages(user(i), 1, 60_000);
        assert.equal(reply.body, `Answer to: held ${i}`);
      }
      const mine = twilio.messages.filter((m) => m.to.startsWith(`whatsapp:+155500${n}`));
      assert.equal(new Set(mine.map((m) => m.body)).size, mine.length, "no reply twice");
      assert.doesNotMatch(main.output(), /panicked/);
      assert.equal((await main.stop("SIGTERM")).code, 0, `${backend}: alive to the end`);
    }));
  },
});
