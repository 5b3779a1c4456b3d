/** `main.ts` as a process: start-up errors, and one real conversation. */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { startFakeAyd } from "./fakes/fake_ayd.ts";
import { startFakeTwilio } from "./fakes/fake_twilio.ts";
import {
  ACCOUNT_SID,
  API_KEY,
  AUTH_TOKEN,
  CHAT_ID,
  postForm,
  sign,
  testEnv,
  whatsAppParams,
} from "./_helpers.ts";

const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url));

function mainProcess(env: Record<string, string>) {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", "--allow-env", "--allow-read", "--allow-write", MAIN],
    clearEnv: true,
    env: {
      ...env,
      NO_COLOR: "1",
      DENO_DIR: Deno.env.get("DENO_DIR") ?? "",
      HOME: Deno.env.get("HOME") ?? "",
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

Deno.test("startup - missing and invalid variables stop it with one clear message", async () => {
  const { code, stdout, stderr } = await mainProcess({ PORT: "eighty", TWILIO_AUTH_TOKEN: "x" })
    .output();
  const text = new TextDecoder().decode(stderr);
  assert.equal(code, 1);
  assert.equal(new TextDecoder().decode(stdout), "");
  assert.match(text, /^Configuration error \(6 problems\):/);
  for (const name of ["TWILIO_ACCOUNT_SID", "TWILIO_FROM_NUMBER", "ASKYOURDATABASE_CHAT_ID"]) {
    assert.match(text, new RegExp(`- ${name} is missing: set it to `));
  }
  assert.match(text, /- PORT is invalid: it must be the port to listen on, 0–65535/);
  assert.doesNotMatch(text, /\n\s+at /, "no stack trace");
});

Deno.test("startup - an unopenable KV path stops it with a plain message", async () => {
  const { code, stderr } = await mainProcess(testEnv({ DENO_KV_PATH: "/proc/nope/bridge.kv" }))
    .output();
  const text = new TextDecoder().decode(stderr);
  assert.equal(code, 1);
  assert.match(text, /^Cannot open the Deno KV database at \/proc\/nope\/bridge\.kv/);
  assert.match(text, /Set DENO_KV_PATH/);
  assert.doesNotMatch(text, /\n\s+at /);
});

Deno.test("startup - main.ts answers a signed webhook end to end and stops on SIGTERM", async () => {
  await using ayd = await startFakeAyd({ apiKey: API_KEY, chatId: CHAT_ID });
  await using twilio = await startFakeTwilio({ accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN });
  const dir = await Deno.makeTempDir();
  const child = mainProcess(testEnv({
    AYD_BASE_URL: ayd.url,
    TWILIO_API_BASE_URL: twilio.url,
    DENO_KV_PATH: `${dir}/nested/bridge.kv`,
    LOG_LEVEL: "info",
  })).spawn();
  try {
    const lines = child.stdout.pipeThrough(new TextDecoderStream()).values();
    let output = "";
    let url: string | undefined;
    while (!url) {
      const { value, done } = await lines.next();
      if (done) throw new Error(`main.ts exited early: ${output}`);
      output += value;
      url = /"event":"service\.started","url":"([^"]+)"/.exec(output)?.[1];
    }
    const params = whatsAppParams({ Body: "from a real process" });
    const response = await postForm(url, params, { "x-twilio-signature": sign(params) });
    assert.equal(response.status, 200);
    await response.body?.cancel();
    const [reply] = await twilio.waitForMessages("whatsapp:+15551234567", 1);
    assert.equal(reply.body, "Answer to: from a real process");
    assert.ok((await Deno.stat(`${dir}/nested/bridge.kv`)).isFile, "the KV file was created");

    child.kill("SIGTERM");
    const status = await child.status;
    assert.equal(status.code, 0);
    for await (const chunk of lines) output += chunk;
    assert.match(output, /"event":"service\.stopped"/);
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* already exited */ }
    await child.stderr.cancel().catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});
