/**
 * The layout's rules, checked over the real module graph (`deno info --json`):
 * which folder of `src/` may import which, other folders reach a folder only
 * through its `mod.ts`, and `_`-prefixed helpers stay inside their folder
 * (and its mirror under `tests/`).
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

/**
 * Who may import whom, by unit: a folder of `src/` or a file at its top.
 * Keep in step with "Project layout" in docs/architecture.md.
 */
export const ALLOWED: Record<string, readonly string[]> = {
  "src/log.ts": [],
  "src/backoff.ts": [],
  "src/telemetry": [],
  "src/storage": ["src/log.ts"],
  "src/jobs": ["src/storage", "src/log.ts", "src/backoff.ts"],
  "src/ayd": ["src/storage", "src/log.ts"],
  "src/people": ["src/log.ts"],
  "src/whatsapp": ["src/log.ts", "src/backoff.ts"],
  "src/speech": ["src/log.ts"],
  "src/webhook": ["src/jobs", "src/people", "src/storage", "src/telemetry", "src/log.ts"],
  "src/conversation": [
    "src/jobs",
    "src/ayd",
    "src/people",
    "src/whatsapp",
    "src/speech",
    "src/storage",
    "src/telemetry",
    "src/log.ts",
    "src/backoff.ts",
  ],
  "src/console": [
    "src/jobs",
    "src/ayd",
    "src/people",
    "src/webhook",
    "src/storage",
    "src/log.ts",
  ],
  "src/config.ts": ["src/jobs", "src/webhook", "src/whatsapp", "src/storage", "src/log.ts"],
  "src/bridge.ts": [
    "src/webhook",
    "src/jobs",
    "src/conversation",
    "src/ayd",
    "src/people",
    "src/whatsapp",
    "src/speech",
    "src/console",
    "src/storage",
    "src/telemetry",
    "src/config.ts",
    "src/log.ts",
    "src/backoff.ts",
  ],
  "src/sandbox": ["src/bridge.ts", "src/config.ts", "src/storage", "src/log.ts"],
  "src/doctor": [
    "src/config.ts",
    "src/whatsapp",
    "src/ayd",
    "src/jobs",
    "src/webhook",
    "src/storage",
    "src/log.ts",
  ],
};

/** The unit a project file belongs to: `src/jobs`, `src/log.ts`, `tests/jobs`, `main.ts` … */
export function unitOf(path: string): string {
  const parts = path.split("/");
  if ((parts[0] === "src" || parts[0] === "tests") && parts.length > 2) {
    return `${parts[0]}/${parts[1]}`;
  }
  return parts[0] === "tasks" || parts[0] === "bench" ? parts[0] : path;
}

/** A problem with one import, or undefined when the rules allow it. */
export function checkImport(from: string, to: string): string | undefined {
  const [fromUnit, toUnit] = [unitOf(from), unitOf(to)];
  const name = to.split("/").at(-1)!;
  if (name.startsWith("_") && fromUnit !== toUnit) {
    // A folder's private helper: its own folder, or that folder's tests. The
    // test harness at the top of tests/ is shared by every test and bench.
    const mirror = toUnit.replace(/^src\//, "tests/");
    const harness = toUnit === to && to.startsWith("tests/") && /^(tests|bench)\//.test(from);
    if (fromUnit !== mirror && !harness) return `${from} imports private ${to}`;
  }
  if (!to.startsWith("src/") || fromUnit === toUnit) return undefined;
  if (from.startsWith("tests/") || from.startsWith("bench/")) return undefined;
  const allowed = ALLOWED[fromUnit];
  if (fromUnit.startsWith("src/") && !allowed?.includes(toUnit)) {
    return `${from} imports ${to}: ${fromUnit} may not import ${toUnit}`;
  }
  if (toUnit !== to && !to.endsWith("/mod.ts")) {
    return `${from} imports ${to}: outside its folder, import ${toUnit}/mod.ts`;
  }
  return undefined;
}

/** Every import between the project's own files, as [from, to] relative paths. */
async function projectImports(): Promise<[string, string][]> {
  const files: string[] = [];
  const walk = async (dir: string) => {
    for await (const entry of Deno.readDir(ROOT + dir)) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory && entry.name !== "fixtures" && entry.name !== "results") {
        await walk(path);
      } else if (/\.tsx?$/.test(entry.name)) files.push(path);
    }
  };
  for (const dir of ["src", "tasks", "tests", "bench"]) await walk(dir);
  files.push("main.ts");
  // One root that imports every file, so one `deno info` sees the whole graph.
  const root = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    await Deno.writeTextFile(
      root,
      files.map((file) => `import "${new URL(file, `file://${ROOT}`).href}";`).join("\n"),
    );
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", root],
      cwd: ROOT,
    }).output();
    assert.equal(code, 0, new TextDecoder().decode(stderr));
    const graph = JSON.parse(new TextDecoder().decode(stdout)) as {
      modules: {
        specifier: string;
        // `type` holds an `import type`; a plain import is `code`.
        dependencies?: { code?: { specifier: string }; type?: { specifier: string } }[];
      }[];
    };
    const local = (specifier: string) =>
      specifier.startsWith(`file://${ROOT}`) ? specifier.slice(`file://${ROOT}`.length) : undefined;
    const edges: [string, string][] = [];
    for (const module of graph.modules) {
      const from = local(module.specifier);
      if (!from || module.specifier === `file://${root}`) continue;
      for (const dependency of module.dependencies ?? []) {
        for (const target of [dependency.code, dependency.type]) {
          const to = target && local(target.specifier);
          if (to) edges.push([from, to]);
        }
      }
    }
    return edges;
  } finally {
    await Deno.remove(root);
  }
}

Deno.test("layout - every import between src/ folders follows the rules", async () => {
  const edges = await projectImports();
  assert.ok(edges.length > 100, `only ${edges.length} imports found: is the graph read?`);
  assert.deepEqual(edges.map(([from, to]) => checkImport(from, to)).filter(Boolean), []);
});

Deno.test("layout - the allowed imports have no cycle, so no folder imports one that imports it back", () => {
  const visiting = new Set<string>();
  const done = new Set<string>();
  const visit = (unit: string, path: string[]) => {
    assert.ok(!visiting.has(unit), `cycle: ${[...path, unit].join(" → ")}`);
    if (done.has(unit)) return;
    visiting.add(unit);
    for (const next of ALLOWED[unit] ?? []) visit(next, [...path, unit]);
    visiting.delete(unit);
    done.add(unit);
  };
  for (const unit of Object.keys(ALLOWED)) visit(unit, []);
});

Deno.test("layout - the check refuses a back-up import, a private helper and a bypassed mod.ts", () => {
  assert.match(checkImport("src/jobs/runner.ts", "src/conversation/mod.ts")!, /may not import/);
  assert.match(checkImport("src/webhook/app.ts", "src/console/mod.ts")!, /may not import/);
  assert.match(checkImport("src/conversation/handler.ts", "src/jobs/_group_commit.ts")!, /private/);
  assert.match(checkImport("tests/webhook/app_test.ts", "src/jobs/_group_commit.ts")!, /private/);
  assert.match(checkImport("src/conversation/handler.ts", "src/jobs/lanes.ts")!, /mod\.ts/);
  assert.match(checkImport("tasks/sandbox.ts", "src/sandbox/routes.ts")!, /mod\.ts/);
  assert.equal(
    checkImport("tests/jobs/group_commit_test.ts", "src/jobs/_group_commit.ts"),
    undefined,
  );
  assert.equal(checkImport("tests/e2e/e2e_test.ts", "tests/_helpers.ts"), undefined);
  assert.equal(checkImport("bench/ingress.ts", "tests/_process.ts"), undefined);
  assert.equal(checkImport("src/conversation/handler.ts", "src/jobs/mod.ts"), undefined);
});

Deno.test("layout - every folder of src/ has a mod.ts that says what the folder is for", async () => {
  for await (const entry of Deno.readDir(ROOT + "src")) {
    if (!entry.isDirectory) continue;
    const unit = `src/${entry.name}`;
    assert.ok(unit in ALLOWED, `${unit} has no line in ALLOWED`);
    const text = await Deno.readTextFile(`${ROOT}${unit}/mod.ts`);
    assert.match(text, /^\/\*\*\n \* \S[\s\S]*?@module\n \*\//, `${unit}/mod.ts needs its JSDoc`);
  }
});

/**
 * The rules as docs/architecture.md states them: one bullet per unit or
 * group of units, `- \`a/\`, \`b.ts\`: \`c/\`, \`d.ts\`. Prose…`, where the
 * backticked names before the colon import exactly the ones after it (up to
 * the first parenthesis, if any) and "nothing of the project" means none.
 */
function documentedRules(markdown: string): Record<string, string[]> {
  const section = markdown.split("Which folder may import which")[1]?.split("\n## ")[0] ?? "";
  const bullets = section.split("\n- ").slice(1).map((b) => b.replace(/\s*\n\s*/g, " "));
  const unit = (name: string) => `src/${name.replace(/\/$/, "")}`;
  const names = (text: string) => [...text.matchAll(/`([^`]+)`/g)].map((m) => unit(m[1]));
  const rules: Record<string, string[]> = {};
  for (const bullet of bullets) {
    const colon = bullet.indexOf(": ");
    const imports = bullet.slice(colon + 2).split("(")[0].split(". ")[0];
    for (const from of names(bullet.slice(0, colon))) {
      rules[from] = imports.startsWith("nothing") ? [] : names(imports);
    }
  }
  return rules;
}

Deno.test("layout - docs/architecture.md states the same rules as the check", async () => {
  const documented = documentedRules(await Deno.readTextFile(`${ROOT}docs/architecture.md`));
  const sorted = (rules: Record<string, readonly string[]>) =>
    Object.fromEntries(Object.entries(rules).map(([k, v]) => [k, [...v].sort()]).sort());
  assert.deepEqual(sorted(documented), sorted(ALLOWED));
});
