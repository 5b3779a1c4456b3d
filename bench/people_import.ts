/**
 * Directory import: `deno task import-people` on a people.csv of 100,000
 * people (names, emails, a properties object each) into a fresh KV file, as
 * its own process: wall time and peak resident memory (Linux `VmHWM`),
 * beside a target; then the same file again (nothing changes) and with
 * `--replace` after 1% of the rows changed and 1% were dropped.
 */
import { fileURLToPath } from "node:url";
import { table } from "./_shared.ts";

const TASK = fileURLToPath(new URL("../tasks/import_people.ts", import.meta.url));
/** What an operator can wait for, and what a small VM holds. */
const TARGET = { seconds: 60, peakMb: 512 };

function peopleCsv(count: number, variant = 0): string {
  const lines = ["phone_number,name,email,properties"];
  for (let i = 0; i < count; i++) {
    if (variant && i % 100 === 99) continue; // dropped from the file
    const region = variant && i % 100 === 0 ? "moved" : `region-${i % 17}`;
    const properties = JSON.stringify({ region, customer_id: 100_000 + i, role: "buyer" })
      .replaceAll('"', '""');
    lines.push(
      `+1555${
        String(i).padStart(7, "0")
      },"Person ${i}, Example",person${i}@example.com,"${properties}"`,
    );
  }
  return lines.join("\r\n") + "\r\n";
}

/** Runs the task; resolves with its wall time, peak RSS and last line of output. */
async function run(kvPath: string, file: string, ...flags: string[]) {
  const started = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-env",
      "--allow-read",
      "--allow-write",
      "--allow-net",
      TASK,
      file,
      ...flags,
    ],
    env: { DENO_KV_PATH: kvPath, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let peakKb = NaN;
  const sampler = setInterval(async () => {
    try {
      const status = await Deno.readTextFile(`/proc/${child.pid}/status`);
      const hwm = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1]);
      if (Number.isFinite(hwm)) peakKb = Number.isFinite(peakKb) ? Math.max(peakKb, hwm) : hwm;
    } catch { /* gone, or not Linux */ }
  }, 25);
  const { code, stdout, stderr } = await child.output();
  clearInterval(sampler);
  const seconds = (performance.now() - started) / 1000;
  const out = new TextDecoder().decode(stdout).trim().split("\n").at(-1) ?? "";
  if (code !== 0) {
    throw new Error(`import-people failed: ${new TextDecoder().decode(stderr)} ${out}`);
  }
  return { seconds, peakMb: peakKb / 1024, out };
}

export async function peopleImport(options: { people: number }) {
  const dir = await Deno.makeTempDir();
  try {
    const kvPath = `${dir}/bridge.kv`;
    await Deno.writeTextFile(`${dir}/people.csv`, peopleCsv(options.people));
    await Deno.writeTextFile(`${dir}/changed.csv`, peopleCsv(options.people, 1));
    const sizeMb = (await Deno.stat(`${dir}/people.csv`)).size / 1024 / 1024;
    const first = await run(kvPath, `${dir}/people.csv`);
    const again = await run(kvPath, `${dir}/people.csv`);
    const replaced = await run(kvPath, `${dir}/changed.csv`, "--replace");
    const rows = [
      { run: `first import (${sizeMb.toFixed(1)} MB file)`, ...first },
      { run: "the same file again", ...again },
      { run: "--replace, 1% changed, 1% dropped", ...replaced },
    ].map(({ run, seconds, peakMb, out }) => ({
      run,
      seconds,
      "target s": TARGET.seconds,
      "peak RSS MB": peakMb,
      "target MB": TARGET.peakMb,
      result: out.replace(/^\d+ rows: /, ""),
    }));
    table(`people import: ${options.people.toLocaleString("en")} people`, rows);
    return rows;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  const people = Number(Deno.args.find((a) => /^\d+$/.test(a)) ?? 100_000);
  await peopleImport({ people });
}
