/**
 * What every `deno task` has in common: `.env` read as `dev` and `start`
 * read it (the environment wins), the KV it opened named, and `--help`.
 * The tasks run as `deno.json` defines them, in a folder standing in for
 * the project's, with exactly the environment given.
 */
import assert from "node:assert/strict";
import { runTask } from "./_process.ts";
import { KV_CONNECT_TOKEN, testKv } from "./_helpers.ts";

const CONFIG = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
const KV_TASKS = ["import-sessions", "export-sessions", "dead-letters"] as const;
const ALL_TASKS = [...KV_TASKS, "sandbox"] as const;

/** Arguments that make each task open KV and end. */
const RUN: Record<(typeof KV_TASKS)[number], string[]> = {
  "import-sessions": ["--dry-run", "old.csv"],
  "export-sessions": ["--out", "-"],
  "dead-letters": [],
};

async function inProjectFolder(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/old.csv`,
      "phone_number,session_id,expires_at,created_at\r\n" +
        `+15551234567,tok-a,${Date.now() / 1000 + 3600},2025-07-25T01:12:45\r\n`,
    );
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("tasks - each one reads .env with the same flag as dev and start", () => {
  assert.match(CONFIG.tasks.start, / --env-file=\.env /);
  assert.match(CONFIG.tasks.dev, / --env-file=\.env /);
  for (const name of ALL_TASKS) assert.match(CONFIG.tasks[name], /^deno run --env-file=\.env /);
});

Deno.test("tasks - the KV named in .env is the one opened, and said so", async () => {
  await inProjectFolder(async (dir) => {
    await Deno.writeTextFile(`${dir}/.env`, `DENO_KV_PATH=${dir}/from-dotenv.kv\n`);
    for (const name of KV_TASKS) {
      const run = await runTask(name, RUN[name], { cwd: dir, env: {} });
      assert.equal(run.code, 0, `${name}: ${run.err}`);
      assert.match(run.err, new RegExp(`^KV: ${dir}/from-dotenv\\.kv \\(DENO_KV_PATH\\)$`, "m"));
    }
    assert.ok((await Deno.stat(`${dir}/from-dotenv.kv`)).isFile);
  });
});

Deno.test("tasks - the environment wins over .env", async () => {
  await inProjectFolder(async (dir) => {
    await Deno.writeTextFile(`${dir}/.env`, `DENO_KV_PATH=${dir}/from-dotenv.kv\n`);
    for (const name of KV_TASKS) {
      const env = { DENO_KV_PATH: `${dir}/from-environment.kv` };
      const run = await runTask(name, RUN[name], { cwd: dir, env });
      assert.equal(run.code, 0, `${name}: ${run.err}`);
      assert.match(run.err, /^KV: \S+\/from-environment\.kv \(DENO_KV_PATH\)$/m);
    }
    await assert.rejects(Deno.stat(`${dir}/from-dotenv.kv`), Deno.errors.NotFound);
  });
});

Deno.test("tasks - a remote KV is named by its URL, never its token", async () => {
  await using remote = await testKv("kv-connect");
  await inProjectFolder(async (dir) => {
    const run = await runTask("dead-letters", [], { cwd: dir, env: remote.env });
    assert.equal(run.code, 0, run.err);
    assert.match(run.err, new RegExp(`^KV: ${remote.env.DENO_KV_URL}/? \\(DENO_KV_URL\\)$`, "m"));
    assert.doesNotMatch(run.err + run.out, new RegExp(KV_CONNECT_TOKEN));
  });
});

Deno.test("tasks - --help and -h print the usage and exit 0", async () => {
  await inProjectFolder(async (dir) => {
    for (const name of ALL_TASKS) {
      for (const flag of ["--help", "-h"]) {
        const run = await runTask(name, [flag], { cwd: dir, env: {} });
        assert.equal(run.code, 0, `${name} ${flag}: ${run.err}`);
        assert.match(run.out, new RegExp(`^Usage: deno task ${name}`), `${name} ${flag}`);
      }
    }
  });
});
