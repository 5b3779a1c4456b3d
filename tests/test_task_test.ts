/** `deno task test` runs what the README and docs/architecture.md say it runs. */
import assert from "node:assert/strict";

const root = new URL("../", import.meta.url);

/** The test files that open their KV with `tests/_kv.ts`'s `openTestKv`, from the root. */
async function kvLevelTestFiles(): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dir: URL, prefix: string) => {
    for await (const entry of Deno.readDir(dir)) {
      const path = `${prefix}${entry.name}`;
      if (entry.isDirectory) await walk(new URL(`${entry.name}/`, dir), `${path}/`);
      else if (entry.name.endsWith("_test.ts")) {
        const text = await Deno.readTextFile(new URL(entry.name, dir));
        if (/from "(\.{1,2}\/)+_kv\.ts"/.test(text)) found.push(path);
      }
    }
  };
  await walk(new URL("tests/", root), "tests/");
  return found.sort();
}

Deno.test("test task - every KV-level test file runs a second time, against the KV Connect fake", async () => {
  const { tasks } = JSON.parse(await Deno.readTextFile(new URL("deno.json", root)));
  const runs = (tasks.test as string).split("&&").map((step) => step.trim());
  const overConnect = runs.filter((step) => step.startsWith("TEST_KV=connect deno test "));
  assert.equal(overConnect.length, 1, "one run with TEST_KV=connect");
  const files = overConnect[0].split(/\s+/).filter((word) => word.endsWith(".ts")).sort();
  const expected = await kvLevelTestFiles();
  assert.ok(expected.length > 0);
  assert.deepEqual(files, expected, "the files that import tests/_kv.ts, no more, no fewer");
});
