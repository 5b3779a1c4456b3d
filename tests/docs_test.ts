/**
 * The documentation checked against the code: the log events listed in
 * docs/operations.md are exactly the ones the code logs, at the levels it
 * logs them; the table in docs/configuration.md is exactly what the service
 * reads from the environment, and agrees with .env.example; the README
 * starts small, names every dependency, and every relative link in it and
 * in docs/ leads to a file and heading that exist.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { REQUIRED_VARIABLES, VARIABLE_DEFAULTS } from "../src/config.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const LEVELS = ["debug", "info", "warn", "error"] as const;
type Level = typeof LEVELS[number];

/** Where the service's code lives: what runs is what gets documented. */
async function codeFiles(): Promise<string[]> {
  const files: string[] = [];
  const walk = async (dir: string) => {
    for await (const entry of Deno.readDir(ROOT + dir)) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory) await walk(path);
      else if (/\.tsx?$/.test(entry.name)) files.push(path);
    }
  };
  await walk("src");
  await walk("tasks");
  files.push("main.ts");
  return files.sort();
}

/**
 * `source` with its comment lines blanked (line numbers kept), so that a
 * JSDoc `@example` does not count as a call the code makes.
 */
function withoutComments(source: string): string {
  return source.split("\n").map((line) => /^\s*(\/\/|\/\*|\*)/.test(line) ? "" : line).join("\n");
}

const levelsIn = (text: string) =>
  new Set([...text.matchAll(/\b(debug|info|warn|error)\b/g)].map((m) => m[1] as Level));

/** A dotted event name, in quotes or a template with `${…}` parts. */
const EVENT_NAME = String.raw`(?<q>["'\x60])(?<event>[a-z]\w*(?:\.(?:\w+|\$\{[^}]*\}))+)\k<q>`;
/** That name as the first argument of a call. */
const EVENT_ARG = String.raw`\s*\(\s*` + EVENT_NAME;
const LEVEL_NAME = "(?:debug|info|warn|error)";

/** One place that logs: the event (a pattern when it is a template) and its levels. */
interface LogSite {
  event: string;
  levels: Set<Level>;
  line: number;
}

/**
 * Every event `source` logs, in each shape the code uses:
 * `log.info("e")`, `deps.log?.warn("e")`, `(c.get("log") ?? log).error("e")`,
 * `log[ok ? "info" : "warn"]("e")`, `(failed ? log.warn : log.info)("e")`,
 * `const logAt = failed ? deps.log.warn : deps.log.info; logAt("e")`, a
 * template such as `` log.info(`webhook.${kind}`) ``, and a line written
 * directly as `{ level: "warn", event: "e" }`.
 */
function logSites(source: string): LogSite[] {
  const code = withoutComments(source);
  const lineOf = (index: number) => code.slice(0, index).split("\n").length;
  const sites: LogSite[] = [];
  const callees: { pattern: string; levels?: Set<Level> }[] = [
    { pattern: String.raw`(?<!\bconsole)\.(?<level>${LEVEL_NAME})` },
    { pattern: String.raw`\blog\w*\s*(?<level>\[[^\]]*\])` },
    { pattern: String.raw`(?<level>\([^()]*\.${LEVEL_NAME}\b[^()]*\))` },
  ];
  const alias = new RegExp(
    String.raw`\b(?:const|let)\s+(\w+)\s*=\s*([^;]*\.${LEVEL_NAME}\b[^;]*);`,
    "g",
  );
  for (const [, name, value] of code.matchAll(alias)) {
    callees.push({ pattern: String.raw`\b${name}`, levels: levelsIn(value) });
  }
  for (const callee of callees) {
    for (const match of code.matchAll(new RegExp(callee.pattern + EVENT_ARG, "g"))) {
      sites.push({
        event: match.groups!.event,
        levels: callee.levels ?? levelsIn(match.groups!.level),
        line: lineOf(match.index!),
      });
    }
  }
  const written = new RegExp(String.raw`\bevent:\s*` + EVENT_NAME, "g");
  for (const match of code.matchAll(written)) {
    const before = code.slice(Math.max(0, match.index! - 200), match.index);
    const level = [...before.matchAll(/\blevel:\s*["'](\w+)["']/g)].at(-1)?.[1] ?? "";
    sites.push({ event: match.groups!.event, levels: levelsIn(level), line: lineOf(match.index!) });
  }
  return sites;
}

/** A string such as "webhook.received", whether or not it is logged. */
const DOTTED_STRING = /["'`]([a-z][a-z0-9_]*\.[a-z][a-z0-9_]*)["'`]/g;

/**
 * What the code logs: events by name, and templates as patterns; and every
 * dotted string the code holds, to catch a call of a shape the scan misses.
 */
async function loggedEvents() {
  const events = new Map<string, { levels: Set<Level>; where: string[] }>();
  const templates: { pattern: RegExp; source: string; levels: Set<Level>; where: string }[] = [];
  const literals = new Map<string, string>();
  for (const file of await codeFiles()) {
    const source = await Deno.readTextFile(ROOT + file);
    for (const site of logSites(source)) {
      const where = `${file}:${site.line}`;
      if (site.event.includes("${")) {
        const pattern = site.event.split(/\$\{[^}]*\}/).map(escape).join("[a-z0-9_]+");
        templates.push({
          pattern: new RegExp(`^${pattern}$`),
          source: site.event,
          levels: site.levels,
          where,
        });
        continue;
      }
      const known = events.get(site.event) ?? { levels: new Set(), where: [] };
      for (const level of site.levels) known.levels.add(level);
      known.where.push(where);
      events.set(site.event, known);
    }
    for (const [, text] of withoutComments(source).matchAll(DOTTED_STRING)) {
      literals.set(text, file);
    }
  }
  return { events, templates, literals };
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** The lines of `markdown` under the heading `title` (any level), up to the next at its level or above. */
function section(markdown: string, title: string): string {
  const lines = markdown.split("\n");
  const start = lines.findIndex((line) => /^#+ /.test(line) && line.replace(/^#+ /, "") === title);
  assert.ok(start >= 0, `no heading "${title}"`);
  const depth = lines[start].indexOf(" ");
  const end = lines.findIndex((line, i) =>
    i > start && /^#+ /.test(line) && line.indexOf(" ") <= depth
  );
  return lines.slice(start + 1, end < 0 ? undefined : end).join("\n");
}

/** The rows of every table in `markdown`, each as its trimmed cells (header rows included). */
function tableRows(markdown: string): string[][] {
  return markdown.split("\n")
    .filter((line) => line.startsWith("|") && !/^\|[\s|:-]+\|$/.test(line))
    .map((line) => line.slice(1, -1).split("|").map((cell) => cell.trim()));
}

const code = (cell: string) => cell.match(/^`([^`]+)`$/)?.[1];

const readDoc = (path: string) => Deno.readTextFile(ROOT + path);

/** The events docs/operations.md lists, with the levels it gives each. */
async function documentedEvents(): Promise<Map<string, Set<Level>>> {
  const rows = tableRows(section(await readDoc("docs/operations.md"), "Log events"));
  const documented = new Map<string, Set<Level>>();
  for (const [first, level] of rows) {
    const event = code(first);
    if (!event) continue;
    assert.ok(!documented.has(event), `${event} is listed twice`);
    const levels = level.split(/,\s*/);
    for (const name of levels) {
      assert.ok(LEVELS.includes(name as Level), `${event}: "${name}" is not a level`);
    }
    documented.set(event, new Set(levels as Level[]));
  }
  return documented;
}

const sorted = (levels: Iterable<Level>) =>
  [...levels].sort((a, b) => LEVELS.indexOf(a) - LEVELS.indexOf(b));

Deno.test("docs - the log scan finds every shape of logger call the code uses, and not comments", () => {
  const source = [
    "/**",
    ' * log.info("example.in_a_comment");',
    " */",
    'log.info("plain.call", { a: 1 });',
    'deps.log.warn("through.deps");',
    'log?.error("optional.call");',
    '(c.get("log") ?? log).error("parenthesized.receiver");',
    'log[ok ? "info" : "warn"]("computed.level", {});',
    '(failed ? log.warn : log.info)("chosen.function");',
    "const logAt = failed ? deps.log.warn : deps.log.debug;",
    'logAt("aliased.function", {});',
    "log.info(`templated.${kind}`, fields);",
    'log.info(\n  "broken.line",\n);',
    'pending.push(JSON.stringify({ level: "warn", event: "written.directly" }));',
    'console.error("Not an event.");',
    'console.warn("not.a_log_line");',
    "log.warn(event, fields);",
  ].join("\n");
  const found = Object.fromEntries(
    logSites(source).map((site) => [site.event, sorted(site.levels).join(",")]),
  );
  assert.deepEqual(found, {
    "plain.call": "info",
    "through.deps": "warn",
    "optional.call": "error",
    "parenthesized.receiver": "error",
    "computed.level": "info,warn",
    "chosen.function": "info,warn",
    "aliased.function": "debug,warn",
    "templated.${kind}": "info",
    "broken.line": "info",
    "written.directly": "warn",
  });
});

Deno.test("docs - every event the code logs is in docs/operations.md's list, and every listed event is logged, at its level", async () => {
  const { events, templates, literals } = await loggedEvents();
  assert.ok(events.size > 0, "the scan of src/, tasks/ and main.ts found no log event at all");
  // A string that looks like an event of a known kind but no call was found
  // for: a logger call of a shape the scan does not know yet.
  const kinds = new Set([...events.keys()].map((event) => event.split(".")[0]));
  // Span, attribute and metric names look alike; docs/telemetry.md lists those.
  const telemetry = new Set(
    [...(await Deno.readTextFile(`${ROOT}docs/telemetry.md`)).matchAll(/`([a-z_.]+)`/g)].map(
      ([, name]) => name,
    ),
  );
  const missed = [...literals].filter(([text]) =>
    kinds.has(text.split(".")[0]) && !events.has(text) && !telemetry.has(text) &&
    !templates.some(({ pattern }) => pattern.test(text))
  );
  assert.deepEqual(missed.map(([text, file]) => `${text} (${file})`), [], "the scan missed calls");

  const documented = await documentedEvents();
  const matching = (event: string) => templates.filter(({ pattern }) => pattern.test(event));
  const undocumented = [...events].filter(([event]) => !documented.has(event))
    .map(([event, { where }]) => `${event} (${where.join(", ")})`);
  assert.deepEqual(undocumented, [], "logged but missing from docs/operations.md#log-events");
  const unlogged = [...documented.keys()].filter((event) =>
    !events.has(event) && matching(event).length === 0
  );
  assert.deepEqual(unlogged, [], "listed in docs/operations.md but logged nowhere");
  const unmatched = templates.filter(({ pattern }) =>
    ![...documented.keys()].some((event) => pattern.test(event))
  ).map(({ source, where }) => `${source} (${where})`);
  assert.deepEqual(unmatched, [], "events logged from a template with no listed event it can make");

  const wrongLevels: string[] = [];
  for (const [event, levels] of documented) {
    const known = events.get(event);
    const expected = known
      ? sorted(known.levels)
      : sorted(new Set(matching(event).flatMap((t) => [...t.levels])));
    if (sorted(levels).join() !== expected.join()) {
      wrongLevels.push(
        `${event}: listed ${sorted(levels).join(", ")}, logged ${expected.join(", ")}`,
      );
    }
  }
  assert.deepEqual(wrongLevels, []);
});

Deno.test("docs - the events docs/ayd.md names are logged", async () => {
  const { events, templates } = await loggedEvents();
  const named = [
    ...section(await readDoc("docs/ayd.md"), "Log events").matchAll(/`([a-z_]+\.[a-z_.]+)`/g),
  ]
    .map((m) => m[1]).filter((name) => !name.endsWith(".md"));
  assert.ok(named.length > 0);
  assert.deepEqual(
    named.filter((event) =>
      !events.has(event) && !templates.some(({ pattern }) => pattern.test(event))
    ),
    [],
  );
});

/** Variables the code reads from the environment itself, outside config.ts's list. */
async function environmentReads(): Promise<Map<string, string>> {
  const reads = new Map<string, string>();
  const patterns = [
    /\benv\??\.([A-Z][A-Z0-9_]+)\b/g,
    /\benv\[\s*["']([A-Z][A-Z0-9_]+)["']\s*\]/g,
    /\bDeno\.env\.(?:get|has)\(\s*["']([A-Z][A-Z0-9_]+)["']/g,
  ];
  for (const file of await codeFiles()) {
    const source = withoutComments(await Deno.readTextFile(ROOT + file));
    for (const pattern of patterns) {
      for (const [, name] of source.matchAll(pattern)) reads.set(name, file);
    }
  }
  return reads;
}

/** docs/configuration.md's table: variable → its default cell. */
async function documentedVariables(): Promise<Map<string, string>> {
  const rows = tableRows(section(await readDoc("docs/configuration.md"), "Every variable"));
  const table = new Map<string, string>();
  for (const [first, fallback, meaning] of rows) {
    const name = code(first);
    if (!name) continue;
    assert.ok(!table.has(name), `${name} is listed twice`);
    assert.ok(fallback && meaning, `${name}: a default and a meaning`);
    table.set(name, fallback);
  }
  return table;
}

/** The variables .env.example names, set (`NAME=`) or commented out (`# NAME=`). */
async function exampleVariables(): Promise<Map<string, "set" | "commented">> {
  const names = new Map<string, "set" | "commented">();
  for (const line of (await readDoc(".env.example")).split("\n")) {
    const match = line.match(/^(#\s*)?([A-Z][A-Z0-9_]*)=/);
    if (match) names.set(match[2], match[1] ? "commented" : "set");
  }
  return names;
}

Deno.test("docs - docs/configuration.md lists exactly the variables the service reads, with config.ts's defaults", async () => {
  const table = await documentedVariables();
  const reads = await environmentReads();
  assert.ok(reads.size > 0, "the scan found no environment read at all");
  const expected = new Set([...Object.keys(VARIABLE_DEFAULTS), ...reads.keys()]);
  assert.deepEqual(
    [...expected].filter((name) => !table.has(name)),
    [],
    "read by the code but missing from docs/configuration.md",
  );
  assert.deepEqual(
    [...table.keys()].filter((name) => !expected.has(name)),
    [],
    "in docs/configuration.md but read nowhere",
  );
  const required = [...table].filter(([, fallback]) => fallback === "required").map(([n]) => n);
  assert.deepEqual(required.sort(), [...REQUIRED_VARIABLES].sort());
  const wrongDefaults = Object.entries(VARIABLE_DEFAULTS)
    .filter(([name, fallback]) =>
      fallback !== undefined && !table.get(name)!.includes(`\`${fallback}\``)
    )
    .map(([name, fallback]) => `${name}: default ${fallback}, documented ${table.get(name)}`);
  assert.deepEqual(wrongDefaults, []);
});

Deno.test("docs - .env.example names only documented variables, every one config.ts reads, and sets every required one", async () => {
  const table = await documentedVariables();
  const example = await exampleVariables();
  assert.ok(example.size > 0);
  assert.deepEqual([...example.keys()].filter((name) => !table.has(name)), []);
  assert.deepEqual(Object.keys(VARIABLE_DEFAULTS).filter((name) => !example.has(name)), []);
  const required = [...table].filter(([, fallback]) => fallback === "required").map(([n]) => n);
  assert.deepEqual(required.filter((name) => example.get(name) !== "set"), []);
});

Deno.test("docs - the README starts with the two commands and stays under 150 lines", async () => {
  const readme = await readDoc("README.md");
  const lines = readme.replace(/\n$/, "").split("\n");
  assert.ok(lines.length < 150, `README.md has ${lines.length} lines`);
  assert.match(lines[0], /^# /);
  const first = lines.findIndex((line, i) => i > 0 && line.trim() !== "");
  assert.equal(lines[first], "```sh", "the first thing after the title is a shell block");
  assert.match(lines[first + 1], /^deno task dev\b/);
  assert.match(lines[first + 2], /^deno task test\b/);
});

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens. */
function slug(heading: string): string {
  return heading.replace(/\[([^\]]*)\]\([^)]*\)/g, "$1").replace(/[`*]/g, "").toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, "").trim().replace(/\s/g, "-");
}

function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const result = new Set<string>();
  for (const line of withoutFences(markdown).split("\n")) {
    const heading = line.match(/^#{1,6} (.+)$/)?.[1];
    if (!heading) continue;
    const base = slug(heading);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    result.add(count === 0 ? base : `${base}-${count}`);
  }
  return result;
}

/** `markdown` without its fenced blocks, whose lines are neither headings nor links. */
function withoutFences(markdown: string): string {
  return markdown.replace(/^```[^\n]*\n[\s\S]*?^```$/gm, "");
}

/** `markdown` without fenced blocks and inline code, where brackets are not links. */
function withoutCode(markdown: string): string {
  return withoutFences(markdown).replace(/`[^`\n]*`/g, "");
}

async function markdownFiles(): Promise<string[]> {
  const files = ["README.md"];
  for await (const entry of Deno.readDir(ROOT + "docs")) {
    if (entry.isFile && entry.name.endsWith(".md")) files.push(`docs/${entry.name}`);
  }
  return files.sort();
}

Deno.test("docs - every relative link in README.md and docs/ leads to a file, and to a heading in it", async () => {
  const broken: string[] = [];
  let checked = 0;
  for (const file of await markdownFiles()) {
    const text = await readDoc(file);
    for (const [, target] of withoutCode(text).matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
      if (/^[a-z][a-z+.-]*:/i.test(target)) continue; // https:, mailto:
      checked++;
      const [path, anchor] = target.split("#", 2);
      const resolved = path ? new URL(path, `file://${ROOT}${file}`).pathname : ROOT + file;
      const stat = await Deno.stat(resolved).catch(() => undefined);
      if (!stat) {
        broken.push(`${file}: ${target} (no such file)`);
      } else if (anchor && stat.isFile && resolved.endsWith(".md")) {
        if (!anchors(await Deno.readTextFile(resolved)).has(anchor)) {
          broken.push(`${file}: ${target} (no such heading)`);
        }
      }
    }
  }
  assert.ok(checked > 20, `only ${checked} links found: is the pattern right?`);
  assert.deepEqual(broken, []);
});

Deno.test("docs - the anchors are GitHub's", () => {
  assert.equal(slug("`ayd_sessions.csv`"), "ayd_sessionscsv");
  assert.equal(slug("Who may ask, and how often"), "who-may-ask-and-how-often");
  assert.equal(slug("Two ways to reach AYD: `AYD_MODE`"), "two-ways-to-reach-ayd-ayd_mode");
  assert.equal(
    slug("Recovery from the history (chat mode)"),
    "recovery-from-the-history-chat-mode",
  );
  assert.deepEqual(
    [...anchors("## Tests\n\n```\n# not a heading\n```\n## Tests\n### `deno task doctor`\n")],
    ["tests", "tests-1", "deno-task-doctor"],
  );
});

Deno.test("docs - the README links every page of docs/", async () => {
  const readme = await readDoc("README.md");
  const pages = (await markdownFiles()).filter((file) => file.startsWith("docs/"));
  assert.deepEqual(pages.filter((page) => !readme.includes(`](${page}`)), []);
});

Deno.test("docs - the README's Dependencies table names every package deno.json imports, and only those", async () => {
  const { imports } = JSON.parse(await readDoc("deno.json")) as { imports: Record<string, string> };
  const packages = new Set(
    Object.values(imports).map((specifier) =>
      specifier.match(/^npm:\/?(@?[^@/]+(?:\/[^@/]+)?)@/)![1]
    )
      .map((name) => name.startsWith("@") ? name : name.split("/")[0]),
  );
  const rows = tableRows(section(await readDoc("README.md"), "Dependencies"));
  const listed = new Set(
    rows.flatMap(([first]) => [...first.matchAll(/`([^`]+)`/g)].map((m) => m[1])),
  );
  assert.deepEqual([...packages].filter((name) => !listed.has(name)).sort(), []);
  assert.deepEqual([...listed].filter((name) => !packages.has(name)).sort(), []);
});
