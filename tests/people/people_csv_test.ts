/** people.csv: what Excel and Python's csv module write imports, bad rows say why, export round-trips. */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import {
  DIRECTORY_KEY,
  exportPeopleCsv,
  importPeopleCsv,
  parsePeopleCsv,
  type Person,
  personKey,
} from "../../src/people/mod.ts";
import { openTestKv } from "../_kv.ts";

/** Written by Python 3's `csv.writer` (the "excel" dialect), byte for byte. */
const FROM_PYTHON = "phone_number,name,email,properties\r\n" +
  '+15551234567,"Lovelace, Ada",ada@example.com,"{""region"": ""north"", ""teams"": [""a"", ""b""]}"\r\n' +
  '+4915112345678,"Zoë ""Z"" Ødegård 李",zoe@example.de,"{""region"":\n""south""}"\r\n' +
  "+447700900123,Grace Hopper,grace@example.co.uk,\r\n";

/** What Excel's "CSV UTF-8" writes: a BOM, CRLF, and columns in the order the sheet had them. */
const FROM_EXCEL = "\uFEFFname,phone_number,email\r\n" +
  '"Hopper, Grace",+1 (555) 765-4321,grace@example.com\r\n';

Deno.test("people csv - Python's csv module and Excel's CSV UTF-8 import as written", async () => {
  using kv = await openTestKv();
  const report = await importPeopleCsv(kv, FROM_PYTHON, { now: 1_000 });
  assert.deepEqual(report, {
    rows: 3,
    invalid: [],
    dryRun: false,
    added: 3,
    updated: 0,
    unchanged: 0,
    removed: 0,
    missing: 0,
  });
  assert.deepEqual((await kv.get<Person>(personKey("+15551234567"))).value, {
    name: "Lovelace, Ada",
    email: "ada@example.com",
    properties: { region: "north", teams: ["a", "b"] },
    updatedAt: 1_000,
  });
  assert.deepEqual((await kv.get<Person>(personKey("+4915112345678"))).value, {
    name: 'Zoë "Z" Ødegård 李',
    email: "zoe@example.de",
    properties: { region: "south" },
    updatedAt: 1_000,
  });
  const grace = (await kv.get<Person>(personKey("+447700900123"))).value!;
  assert.ok(!("properties" in grace), "an empty properties cell is no properties");

  const excel = await importPeopleCsv(kv, FROM_EXCEL, { now: 2_000 });
  assert.equal(excel.added, 1);
  assert.equal((await kv.get<Person>(personKey("+15557654321"))).value?.name, "Hopper, Grace");
  assert.deepEqual((await kv.get(DIRECTORY_KEY)).value, { count: 4 });
});

Deno.test("people csv - every bad row is named by its line and reason; the good rows import", () => {
  const text = [
    "phone_number,name,email,properties",
    '+15550000001,Ada,ada@example.com,"{""region"":""north""}"', // 2: fine
    "15550000002,Bob,bob@example.com,", // 3: no +
    "1.55512E+10,Cy,cy@example.com,", // 4: Excel made it a number
    '+15550000004,Di,di@example.com,"{region: north}"', // 5: not JSON
    '+15550000005,Ed,ed@example.com,"[""north""]"', // 6: not an object
    '+15550000006,Fay,fay@example.com,"{""email"":""x@y.z""}"', // 7: a reserved key
    "+15550000007,,gil@example.com,", // 8: no name
    "+15550000008,Hal,not-an-email,", // 9: bad email
    "+15550000009,Ivy,ivy@example.com", // 10: a column short
    '+15550000010,"Jo\r\nJo",jo@example.com,', // 11-12: a line break in the name
    "+15550000011,Kim,kim@example.com,", // 13: appears twice
    "+1 555 000 0011,Kim K,kim@example.com,", // 14: the same number again
  ].join("\r\n") + "\r\n";
  const { people, invalid, rows } = parsePeopleCsv(text, 0);
  assert.equal(rows, 12);
  assert.deepEqual([...people.keys()], ["+15550000001"]);
  assert.deepEqual(invalid.map((p) => p.line), [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14]);
  const reason = (line: number) => invalid.find((p) => p.line === line)!.reason;
  assert.match(reason(3), /must start with \+ and the country code/);
  assert.match(reason(4), /turned into a number \(Excel does this\)/);
  assert.match(reason(5), /^properties is not valid JSON \(at character 2\)$/);
  assert.match(reason(6), /must be a JSON object/);
  assert.match(reason(7), /may not set email: use the name and email columns/);
  assert.equal(reason(8), "name is empty");
  assert.equal(reason(9), "email is not an email address");
  assert.equal(reason(10), "expected 4 columns, found 3");
  assert.match(reason(11), /name holds a line break/);
  assert.equal(reason(13), "phone_number appears again on line 14");
  assert.equal(reason(14), "phone_number is also on line 13: neither row is imported");
  // Reasons never quote what a cell held.
  assert.ok(!invalid.some((p) => /Kim|Hal|bob@|region: north|not-an-email/.test(p.reason)));
});

Deno.test("people csv - a file without its header, or separated by semicolons, says so", () => {
  const headerless = parsePeopleCsv("+15551234567,Ada,ada@example.com,\r\n", 0);
  assert.deepEqual(headerless.invalid, [{
    line: 1,
    reason: "the first line must be the header phone_number,name,email,properties " +
      "(missing phone_number, name, email)",
  }]);
  const semicolons = parsePeopleCsv("phone_number;name;email\r\n+15551234567;Ada;a@b.c\r\n", 0);
  assert.match(semicolons.invalid[0].reason, /separated by semicolons: save it as CSV UTF-8/);
});

Deno.test("people csv - export writes what imports back to no change, byte-compatible with Python's csv", async () => {
  using kv = await openTestKv();
  await importPeopleCsv(kv, FROM_PYTHON, { now: 1_000 });
  const exported = await exportPeopleCsv(kv);
  assert.equal(
    exported,
    "phone_number,name,email,properties\r\n" +
      '+15551234567,"Lovelace, Ada",ada@example.com,"{""region"":""north"",""teams"":[""a"",""b""]}"\r\n' +
      "+447700900123,Grace Hopper,grace@example.co.uk,\r\n" +
      '+4915112345678,"Zoë ""Z"" Ødegård 李",zoe@example.de,"{""region"":""south""}"\r\n',
  );
  const again = await importPeopleCsv(kv, exported, { now: 9_000 });
  assert.deepEqual([again.added, again.updated, again.unchanged], [0, 0, 3]);
  assert.equal((await kv.get<Person>(personKey("+447700900123"))).value?.updatedAt, 1_000);
});

Deno.test("people csv - --replace removes who is not in the file, but never past a bad row; --dry-run writes nothing", async () => {
  using kv = await openTestKv();
  await importPeopleCsv(kv, FROM_PYTHON, { now: 1_000 });
  const onlyAda = "phone_number,name,email\r\n+15551234567,Ada,ada@example.com\r\n";
  const dry = await importPeopleCsv(kv, onlyAda, { now: 2_000, replace: true, dryRun: true });
  assert.deepEqual([dry.updated, dry.removed, dry.dryRun], [1, 2, true]);
  assert.deepEqual((await kv.get(DIRECTORY_KEY)).value, { count: 3 }, "nothing written");

  const withBadRow = onlyAda + "+4915112345678,,zoe@example.de\r\n";
  const refused = await importPeopleCsv(kv, withBadRow, { now: 2_000, replace: true });
  assert.match(refused.refused!, /--replace needs every row to be valid/);
  assert.equal(refused.removed + refused.updated, 0);
  assert.deepEqual((await kv.get(DIRECTORY_KEY)).value, { count: 3 });

  const replaced = await importPeopleCsv(kv, onlyAda, { now: 2_000, replace: true });
  assert.deepEqual([replaced.updated, replaced.removed], [1, 2]);
  assert.deepEqual(
    (await Array.fromAsync(kv.list({ prefix: ["people"] }))).map((e) => e.key[1]),
    ["+15551234567"],
  );
  assert.deepEqual((await kv.get(DIRECTORY_KEY)).value, { count: 1 });
});

const HAS_PYTHON = await new Deno.Command("python3", { args: ["--version"], stdout: "null" })
  .output().then((o) => o.success).catch(() => false);

Deno.test({
  name: "people csv - Python's csv.DictReader reads an export back as the people imported",
  ignore: !HAS_PYTHON,
  async fn() {
    using kv = await openTestKv();
    await importPeopleCsv(kv, FROM_PYTHON, { now: 1_000 });
    const child = new Deno.Command("python3", {
      args: ["-c", "import csv, sys, json; print(json.dumps(list(csv.DictReader(sys.stdin))))"],
      stdin: "piped",
      stdout: "piped",
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(await exportPeopleCsv(kv)));
    await writer.close();
    const rows = JSON.parse(new TextDecoder().decode((await child.output()).stdout));
    assert.deepEqual(
      rows.map((r: Record<string, string>) => [r.name, JSON.parse(r.properties || "{}")]),
      [
        ["Lovelace, Ada", { region: "north", teams: ["a", "b"] }],
        ["Grace Hopper", {}],
        ['Zoë "Z" Ødegård 李', { region: "south" }],
      ],
    );
  },
});

const TASKS = fileURLToPath(new URL("../../tasks/", import.meta.url));

async function task(name: string, kvPath: string, ...args: string[]) {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-env",
      "--allow-read",
      "--allow-write",
      "--allow-net",
      `${TASKS}${name}`,
      ...args,
    ],
    env: { DENO_KV_PATH: kvPath, NO_COLOR: "1" },
    stdin: "null",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code, out: text(stdout), err: text(stderr) };
}

Deno.test("people csv - the import-people and export-people tasks", async () => {
  const dir = await Deno.makeTempDir();
  const kvPath = `${dir}/bridge.kv`;
  try {
    await Deno.writeTextFile(`${dir}/people.csv`, FROM_PYTHON + "+1555,Bad,bad@example.com,\r\n");
    const dry = await task("import_people.ts", kvPath, `${dir}/people.csv`, "--dry-run");
    assert.equal(dry.code, 1, "a bad row fails the run");
    assert.match(
      dry.out,
      /^line 6: phone_number is not \+E164, e\.g\. \+15551234567\n4 rows: would be added 3, /,
    );
    const imported = await task("import_people.ts", kvPath, `${dir}/people.csv`);
    assert.match(
      imported.out,
      /4 rows: added 3, updated 0, unchanged 0, removed 0, invalid 1 \(\d+ ms\)\n$/,
    );

    const exported = await task("export_people.ts", kvPath, "--out", `${dir}/out.csv`);
    assert.equal(exported.code, 0, exported.err);
    assert.equal(
      exported.err,
      `KV: ${kvPath} (DENO_KV_PATH)\nExported 3 people to ${dir}/out.csv.\n`,
    );
    assert.equal(
      (await Deno.stat(`${dir}/out.csv`)).mode! & 0o777,
      0o600,
      "names and emails: owner only",
    );
    const again = await task("import_people.ts", kvPath, `${dir}/out.csv`, "--replace");
    assert.equal(again.code, 0, again.out);
    assert.match(again.out, /3 rows: added 0, updated 0, unchanged 3, removed 0, invalid 0/);
    assert.equal(
      (await task("export_people.ts", kvPath, "--out", "-")).out,
      await Deno.readTextFile(`${dir}/out.csv`),
    );

    // An existing file (the one imported, say) is left alone without --force.
    const source = await Deno.readTextFile(`${dir}/people.csv`);
    const refused = await task("export_people.ts", kvPath, "--out", `${dir}/people.csv`);
    assert.equal(refused.code, 1);
    assert.match(refused.err, /people\.csv exists and was left as it is .*\n.*--force/);
    assert.equal(await Deno.readTextFile(`${dir}/people.csv`), source);
    const forced = await task("export_people.ts", kvPath, "--out", `${dir}/people.csv`, "--force");
    assert.equal(forced.code, 0, forced.err);
    assert.equal(
      await Deno.readTextFile(`${dir}/people.csv`),
      await Deno.readTextFile(`${dir}/out.csv`),
    );

    assert.equal((await task("import_people.ts", kvPath)).code, 2);
    assert.equal((await task("import_people.ts", kvPath, `${dir}/people.csv`, "--bogus")).code, 2);
    assert.equal((await task("import_people.ts", kvPath, `${dir}/missing.csv`)).code, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
