/**
 * `deno task dev` with nothing configured serves the sandbox and says so;
 * with any required variable set, or under `deno task start`, the strict
 * checks apply as before. The processes run `deno.json`'s own task lines
 * (without `--watch`, so that a failing start ends) in a folder with no
 * `.env`.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { devBanner, devSandboxOptions } from "../../src/sandbox/dev.ts";
import { startSandbox } from "../../src/sandbox/sandbox.ts";
import { REQUIRED_VARIABLES } from "../../src/config.ts";
import { freePort } from "../_process.ts";

const CONFIG = fileURLToPath(new URL("../../deno.json", import.meta.url));
const MAIN = fileURLToPath(new URL("../../main.ts", import.meta.url));
const TASKS: Record<string, string> = JSON.parse(await Deno.readTextFile(CONFIG)).tasks;

/** `deno task <task>` as deno.json writes it, run with exactly `env` in a folder with no .env. */
function task(name: "dev" | "start", env: Record<string, string>, cwd: string): Deno.Command {
  const [deno, run, ...args] = TASKS[name].split(/\s+/);
  assert.deepEqual([deno, run], ["deno", "run"]);
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--config",
      CONFIG,
      ...args.filter((arg) => arg !== "--watch").map((arg) => arg === "main.ts" ? MAIN : arg),
    ],
    cwd,
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

const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

Deno.test("dev - deno.json: dev passes --dev and watches, start passes neither", () => {
  assert.match(TASKS.dev, /^deno run --watch --env-file=\.env .* main\.ts --dev$/);
  assert.match(TASKS.start, /^deno run --env-file=\.env .* main\.ts$/);
});

Deno.test("dev - with an empty environment and no .env, deno task dev serves the sandbox and says how to go live", async () => {
  const cwd = await Deno.makeTempDir();
  const port = freePort();
  const child = task("dev", { PORT: String(port) }, cwd).spawn();
  const errors = new Response(child.stderr).text();
  let output = "";
  try {
    const url = `http://127.0.0.1:${port}/sandbox`;
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      output += chunk;
      if (output.includes("More: docs/setup.md")) break;
    }
    assert.ok(output.includes(`Sandbox ready: ${url}`), output);
    assert.match(output, /^No configuration yet: none of the six required variables is set/);
    assert.match(output, /1\. cp \.env\.example \.env/);
    for (const name of REQUIRED_VARIABLES) assert.ok(output.includes(name), name);
    assert.match(output, /2\. deno task doctor/);
    assert.match(output, /3\. deno task dev/);

    const page = await fetch(url);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<html/i);
    const health = await fetch(`http://127.0.0.1:${port}/health`);
    assert.equal((await health.json()).status, "ok");
  } finally {
    child.kill("SIGTERM");
    const status = await child.status;
    await Deno.remove(cwd, { recursive: true });
    assert.equal(status.code, 0, `stopped cleanly on SIGTERM: ${await errors}`);
  }
  assert.doesNotMatch(await errors, /Configuration error/);
});

Deno.test("dev - with one required variable set, deno task dev checks every variable as before", async () => {
  const cwd = await Deno.makeTempDir();
  try {
    const { code, stdout, stderr } = await task("dev", { TWILIO_AUTH_TOKEN: "x" }, cwd).output();
    const text = decode(stderr);
    assert.equal(code, 1);
    assert.doesNotMatch(decode(stdout), /Sandbox/);
    assert.match(text, /Configuration error \(5 problems\):/);
    assert.match(text, /- TWILIO_ACCOUNT_SID is missing: set it to /);
    assert.doesNotMatch(text, /- TWILIO_AUTH_TOKEN/);
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
});

Deno.test("dev - deno task start with an empty environment never falls back to the sandbox", async () => {
  const cwd = await Deno.makeTempDir();
  try {
    const { code, stdout, stderr } = await task("start", {}, cwd).output();
    assert.equal(code, 1);
    assert.doesNotMatch(decode(stdout), /Sandbox/);
    assert.match(decode(stderr), /Configuration error \(6 problems\):/);
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
});

Deno.test("dev - a bad PORT, HOST or LOG_LEVEL stops the fallback with the usual message", () => {
  const bad = devSandboxOptions({ PORT: "eighty", LOG_LEVEL: "loud" });
  assert.equal(bad.ok, false);
  assert.deepEqual(!bad.ok && bad.problems, [
    "PORT is invalid: it must be the port to listen on, 0–65535 (default 5000).",
    "LOG_LEVEL is invalid: it must be one of debug, info, warn, error (default info).",
  ]);
  assert.deepEqual(devSandboxOptions({}), {
    ok: true,
    options: { host: "127.0.0.1", port: 8000, adminToken: undefined, logLevel: "warn" },
  });
  assert.deepEqual(devSandboxOptions({ HOST: "0.0.0.0", PORT: "9000", LOG_LEVEL: "WARNING" }), {
    ok: true,
    options: { host: "0.0.0.0", port: 9000, adminToken: undefined, logLevel: "warn" },
  });
});

Deno.test("dev - the fallback shows warnings by default, as deno task sandbox does", async () => {
  const dev = devSandboxOptions({});
  assert.ok(dev.ok);
  assert.equal(dev.options.logLevel, "warn");
  await using sandbox = await startSandbox({ port: 0 });
  assert.equal(sandbox.config.logLevel, dev.options.logLevel);
});

Deno.test("dev - the banner names the console when ADMIN_TOKEN opens it", () => {
  const banner = devBanner("http://127.0.0.1:8000/sandbox", "http://127.0.0.1:8000/admin");
  assert.match(banner, /Operator console: http:\/\/127\.0\.0\.1:8000\/admin/);
  assert.doesNotMatch(devBanner("http://127.0.0.1:8000/sandbox"), /Operator console/);
});
