/**
 * What every `deno task` has in common: `.env` read as `dev` and `start`
 * read it (the environment wins), the KV it opened named, relative paths
 * read from the operator's folder, and `--help`. The tasks are the scripts
 * in tasks/ (a new one is held to all of this), run as `deno.json` defines
 * them, in a folder standing in for the project's, with exactly the
 * environment given.
 */
import assert from "node:assert/strict";
import { runTask, V8_FLAGS } from "./_process.ts";
import { KV_CONNECT_TOKEN, testKv } from "./_helpers.ts";

const CONFIG = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));

/** Every script in tasks/ but the shared `_cli.ts`. */
const SCRIPTS = [...Deno.readDirSync(new URL("../tasks/", import.meta.url))]
  .filter((entry) => entry.isFile && entry.name.endsWith(".ts") && !entry.name.startsWith("_"))
  .map((entry) => entry.name)
  .sort();

/** The deno.json task that runs each script. */
const TASK_OF: Record<string, string> = Object.fromEntries(
  Object.entries(CONFIG.tasks as Record<string, string>).flatMap(([name, command]) => {
    const script = / tasks\/(\S+\.ts)(?: |$)/.exec(command)?.[1];
    return script ? [[script, name]] : [];
  }),
);
const ALL_TASKS = SCRIPTS.map((script) => TASK_OF[script]).filter(Boolean);

/** Tasks that open the configured KV, with arguments that make each open it and end. */
const RUN: Record<string, string[]> = {
  "import-sessions": ["--dry-run", "old.csv"],
  "export-sessions": ["--out", "-"],
  "dead-letters": [],
  "import-people": ["--dry-run", "people.csv"],
  "export-people": ["--out", "-"],
};
const KV_TASKS = Object.keys(RUN);

/** Tasks that print no `KV:` line, and why. */
const NO_KV_LINE: Record<string, string> = {
  sandbox: "its KV is in memory unless the code says otherwise: nothing to choose",
  doctor: "its checklist names the KV it checked",
};

async function inProjectFolder(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/old.csv`,
      "phone_number,session_id,expires_at,created_at\r\n" +
        `+15551234567,tok-a,${Date.now() / 1000 + 3600},2025-07-25T01:12:45\r\n`,
    );
    await Deno.writeTextFile(
      `${dir}/people.csv`,
      "phone_number,name,email,properties\r\n+15551234567,Ada Lovelace,ada@example.com,\r\n",
    );
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("tasks - every script in tasks/ is a deno task, and says whether it opens KV", () => {
  for (const script of SCRIPTS) assert.ok(TASK_OF[script], `no deno.json task runs ${script}`);
  assert.deepEqual(
    [...ALL_TASKS].sort(),
    [...KV_TASKS, ...Object.keys(NO_KV_LINE)].sort(),
    "a new task belongs in RUN (it opens KV) or NO_KV_LINE",
  );
});

Deno.test("tasks - start and dev give V8 the flags the tests and benchmarks run main.ts with", () => {
  assert.ok(CONFIG.tasks.start.split(" ").includes(V8_FLAGS), CONFIG.tasks.start);
  assert.ok(CONFIG.tasks.dev.split(" ").includes(V8_FLAGS), CONFIG.tasks.dev);
});

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
      assert.match(
        run.err,
        new RegExp(`^KV: ${dir}/from-dotenv\\.kv \\(DENO_KV_PATH\\)$`, "m"),
        name,
      );
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
      assert.match(run.err, /^KV: \S+\/from-environment\.kv \(DENO_KV_PATH\)$/m, name);
    }
    await assert.rejects(Deno.stat(`${dir}/from-dotenv.kv`), Deno.errors.NotFound);
  });
});

Deno.test("tasks - a remote KV is named by its URL, never its token", async () => {
  await using remote = await testKv("kv-connect");
  await inProjectFolder(async (dir) => {
    for (const name of KV_TASKS) {
      const run = await runTask(name, RUN[name], { cwd: dir, env: remote.env });
      assert.equal(run.code, 0, `${name}: ${run.err}`);
      assert.match(
        run.err,
        new RegExp(`^KV: ${remote.env.DENO_KV_URL}/? \\(DENO_KV_URL\\)$`, "m"),
        name,
      );
      assert.doesNotMatch(run.err + run.out, new RegExp(KV_CONNECT_TOKEN), name);
    }
  });
});

Deno.test("tasks - relative paths are read from the folder the operator ran the task in", async () => {
  await inProjectFolder(async (dir) => {
    await Deno.mkdir(`${dir}/operator`);
    await Deno.copyFile(`${dir}/old.csv`, `${dir}/operator/mine.csv`);
    await Deno.copyFile(`${dir}/people.csv`, `${dir}/operator/ours.csv`);
    const env = { DENO_KV_PATH: `${dir}/bridge.kv`, INIT_CWD: `${dir}/operator` };
    const runs: [string, string[], string][] = [
      ["import-sessions", ["mine.csv"], "imported 1,"],
      ["import-people", ["ours.csv"], "1 rows: added 1,"],
      ["export-sessions", ["--out", "sessions.csv"], `to ${dir}/operator/sessions.csv.`],
      ["export-people", ["--out", "people-out.csv"], `to ${dir}/operator/people-out.csv.`],
    ];
    for (const [name, args, said] of runs) {
      const run = await runTask(name, args, { cwd: dir, env });
      assert.equal(run.code, 0, `${name}: ${run.err}`);
      assert.ok((run.out + run.err).includes(said), `${name}: ${run.out}${run.err}`);
    }
    assert.ok((await Deno.stat(`${dir}/operator/sessions.csv`)).isFile);
    assert.ok((await Deno.stat(`${dir}/operator/people-out.csv`)).isFile);
  });
});

Deno.test("tasks - --help and -h print the usage and exit 0, doing nothing else", async () => {
  await inProjectFolder(async (dir) => {
    for (const name of ALL_TASKS) {
      for (const flag of ["--help", "-h"]) {
        const run = await runTask(name, [flag], { cwd: dir, env: {} });
        assert.equal(run.code, 0, `${name} ${flag}: ${run.err}`);
        assert.match(run.out, new RegExp(`^Usage: deno task ${name}\\b`), `${name} ${flag}`);
        assert.doesNotMatch(run.err, /^KV: /m, `${name} ${flag} opened no KV`);
      }
    }
    const names = [...Deno.readDirSync(dir)].map((entry) => entry.name).sort();
    assert.deepEqual(names, ["old.csv", "people.csv"], "nothing written");
  });
});

Deno.test("tasks - an unknown option prints the usage on standard error and exits 2", async () => {
  await inProjectFolder(async (dir) => {
    for (const name of ALL_TASKS) {
      const run = await runTask(name, ["--no-such-option"], { cwd: dir, env: {} });
      assert.equal(run.code, 2, `${name}: ${run.out}${run.err}`);
      assert.match(run.err, new RegExp(`Usage: deno task ${name}\\b`), name);
      assert.equal(run.out, "", `${name} did nothing else`);
    }
  });
});
