/** Log lines: masked, batched, and never able to stall or stop the process. */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { createLineWriter, createLogger, maskPhone } from "../src/log.ts";

const LOG = new URL("../src/log.ts", import.meta.url).href;

Deno.test("log - numbers are masked to their last four digits", () => {
  assert.equal(maskPhone("whatsapp:+15551234567"), "+*******4567");
  const lines: string[] = [];
  createLogger({ level: "info", write: (line) => lines.push(line) })
    .info("webhook.received", { from: maskPhone("+15551234567") });
  assert.equal(JSON.parse(lines[0]).from, "+*******4567");
});

Deno.test("log - lines logged together go out in one write, in order", async () => {
  const writes: string[] = [];
  const lines = createLineWriter({
    write: (bytes) => {
      writes.push(new TextDecoder().decode(bytes));
      return Promise.resolve(bytes.length);
    },
  });
  for (let i = 0; i < 5; i++) lines.write(`line ${i}`);
  await lines.flush();
  assert.deepEqual(writes, ["line 0\nline 1\nline 2\nline 3\nline 4\n"]);
});

Deno.test("log - a sink that stalls holds lines up to the cap, then counts the dropped ones", async () => {
  let release: () => void = () => {};
  const writes: string[] = [];
  let calls = 0;
  const lines = createLineWriter({
    write: (bytes) => {
      calls++;
      writes.push(new TextDecoder().decode(bytes));
      // The first write stalls until released, as a pipe nobody reads does.
      return calls === 1
        ? new Promise((resolve) => release = () => resolve(bytes.length))
        : Promise.resolve(bytes.length);
    },
  }, 100);
  lines.write("first");
  await lines.flush(20); // the stalled write does not hold up its caller for long
  for (let i = 0; i < 50; i++) lines.write(`waiting ${i} ${"x".repeat(10)}`);
  release();
  await lines.flush();
  const after = writes.slice(1).join("");
  assert.match(after, /waiting 0 /);
  assert.doesNotMatch(after, /waiting 49 /, "lines beyond the cap are dropped");
  assert.match(after, /"event":"log\.dropped","lines":\d+/);
});

Deno.test("log - a sink that fails (a closed pipe) is given up without an error", async () => {
  let calls = 0;
  const lines = createLineWriter({
    write: () => {
      calls++;
      return Promise.reject(new Deno.errors.BrokenPipe("Broken pipe (os error 32)"));
    },
  });
  lines.write("one");
  await lines.flush();
  lines.write("two");
  await lines.flush();
  assert.equal(calls, 1, "nothing more is written once the sink broke");
});

/** Runs a script that logs `lines` lines through the service's stdout writer. */
function logger(lines: number) {
  const script = `
    import { createLogger } from "${LOG}";
    const log = createLogger({ level: "info" });
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    for (let i = 0; i < ${lines}; i++) log.info("filler", { i, pad: "x".repeat(200) });
    await new Promise((resolve) => setTimeout(resolve, 300));
    clearInterval(timer);
    console.error("ticks " + ticks);
    Deno.exit(0);
  `;
  return new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", script],
    cwd: fileURLToPath(new URL("..", import.meta.url)),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

Deno.test("log - a closed stdout (EPIPE) does not stop the process", async () => {
  const child = logger(20_000);
  await child.stdout.cancel(); // the reader goes away: writes get EPIPE
  const [status, stderr] = await Promise.all([child.status, new Response(child.stderr).text()]);
  assert.match(stderr, /ticks \d+/, stderr);
  assert.equal(status.code, 0);
});

Deno.test("log - a stdout nobody reads does not stall the event loop", async () => {
  const child = logger(20_000); // ~4 MB, far more than a pipe holds
  const stderr = new Response(child.stderr).text();
  const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
  const status = await child.status;
  clearTimeout(timer);
  const ticks = Number(/ticks (\d+)/.exec(await stderr)?.[1] ?? -1);
  assert.equal(status.code, 0, "it finished by itself");
  assert.ok(ticks > 0, `timers kept running while stdout was full (${ticks} ticks)`);
  await child.stdout.cancel();
});
