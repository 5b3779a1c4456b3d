/** `ayd_sessions.csv`: byte-compatible with Python's csv module, both ways. */
import assert from "node:assert/strict";
import { createLogger } from "../../src/log.ts";
import { type AydSession, sessionKey } from "../../src/ayd/sessions.ts";
import {
  exportSessionsCsv,
  exportSessionsCsvStream,
  parseIsoLocal,
  pythonFloat,
  pythonIsoLocal,
} from "../../src/ayd/sessions_csv.ts";
import { importSessionsCsv } from "../../src/ayd/sessions_import.ts";
import {
  cronEvery,
  scheduleSessionsExport,
  writeFileAtomically,
} from "../../src/ayd/sessions_export.ts";
import { logEvents, startTestBridge } from "../_helpers.ts";
import { runTask } from "../_process.ts";

const HAS_PYTHON = await new Deno.Command("python3", { args: ["--version"], stdout: "null" })
  .output().then((o) => o.success).catch(() => false);

/** Runs Python with its own csv module; returns its standard output. */
async function python(script: string, input = ""): Promise<string> {
  const child = new Deno.Command("python3", {
    args: ["-c", script],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(input));
  await writer.close();
  const { code, stdout, stderr } = await child.output();
  if (code !== 0) throw new Error(new TextDecoder().decode(stderr));
  return new TextDecoder().decode(stdout);
}

/** What the old app wrote: csv.DictWriter rows, as the old app built them. */
const WRITE_OLD_APP_FILE = `
import csv, sys, json, datetime
rows = json.load(sys.stdin)
w = csv.DictWriter(sys.stdout, fieldnames=["phone_number", "session_id", "expires_at", "created_at"])
w.writeheader()
for r in rows:
    w.writerow({"phone_number": r["phone"], "session_id": r["token"],
                "expires_at": float(r["expires"]),
                "created_at": datetime.datetime.fromtimestamp(r["created"]).isoformat()})
`;

const READ_WITH_DICTREADER = `
import csv, sys, json, io, time
rows = list(csv.DictReader(io.StringIO(sys.stdin.read(), newline="")))
print(json.dumps([r for r in rows if time.time() < float(r["expires_at"])]))
`;

Deno.test("csv - Python's float and ISO formats", () => {
  assert.equal(pythonFloat(1753390365.7215357), "1753390365.7215357");
  assert.equal(pythonFloat(1753390365), "1753390365.0");
  assert.equal(pythonFloat(1753390365.5), "1753390365.5");
  const ms = new Date(2025, 6, 25, 1, 12, 45, 123).getTime();
  assert.equal(pythonIsoLocal(ms), "2025-07-25T01:12:45.123000");
  assert.equal(pythonIsoLocal(ms - 123), "2025-07-25T01:12:45");
  assert.equal(parseIsoLocal("2025-07-25T01:12:45.123456"), ms + 0.456);
  assert.equal(parseIsoLocal("not a date"), undefined);
  assert.equal(cronEvery(5), "*/5 * * * *");
  assert.equal(cronEvery(120), "0 */2 * * *");
});

Deno.test({
  name: "csv - old app's file → import → export: live rows byte for byte, DictReader agrees",
  ignore: !HAS_PYTHON,
  async fn() {
    using kv = await Deno.openKv(":memory:");
    const now = Date.now() / 1000;
    const rows = [
      {
        phone: "+15551234567",
        token: "tok-alpha",
        expires: now + 86_400.7215357,
        created: now - 60.25,
      },
      {
        phone: "+4915112345678",
        token: 'tok,with "quotes"',
        expires: now + 3600,
        created: now - 5,
      },
      { phone: "+15550000000", token: "tok-expired", expires: now - 10, created: now - 700_000 },
      {
        phone: "+12025550123",
        token: "tok-whole-seconds",
        expires: Math.floor(now) + 7200,
        created: Math.floor(now),
      },
    ];
    const oldFile = await python(WRITE_OLD_APP_FILE, JSON.stringify(rows));
    assert.match(oldFile, /^phone_number,session_id,expires_at,created_at\r\n/);

    const report = await importSessionsCsv(kv, oldFile, { now: Date.now() });
    assert.deepEqual(report, {
      imported: 3,
      expired: 1,
      unchanged: 0,
      superseded: 0,
      invalid: [],
      replaced: [],
      written: true,
    });

    const exported = await exportSessionsCsv(kv, { now: Date.now() });
    const live = rows.filter((r) => r.expires > now).sort((a, b) => a.phone < b.phone ? -1 : 1);
    assert.equal(exported, await python(WRITE_OLD_APP_FILE, JSON.stringify(live)));

    const readBack = JSON.parse(await python(READ_WITH_DICTREADER, exported));
    const original = JSON.parse(await python(READ_WITH_DICTREADER, oldFile));
    const byPhone = (a: { phone_number: string }, b: { phone_number: string }) =>
      a.phone_number < b.phone_number ? -1 : 1;
    assert.deepEqual(readBack, original.sort(byPhone));

    const again = await importSessionsCsv(kv, oldFile, { now: Date.now() });
    assert.deepEqual(again, {
      imported: 0,
      expired: 1,
      unchanged: 3,
      superseded: 0,
      invalid: [],
      replaced: [],
      written: true,
    });
  },
});

Deno.test("csv - each malformed row is reported with its line; nothing is imported unless asked", async () => {
  using kv = await Deno.openKv(":memory:");
  const future = (Date.now() / 1000 + 3600).toFixed(3);
  const text = [
    "\ufeffphone_number,session_id,expires_at,created_at",
    `+15551111111,ok-1,${future},2025-07-25T01:12:45.123456`,
    `+15552222222,too,many,${future},x`,
    `+15553333333,tok,soon,2025-07-25T01:12:45`,
    `15554444444,tok,${future},2025-07-25T01:12:45`,
    `+15555555555,,${future},2025-07-25T01:12:45`,
    `+15556666666,"quoted, with comma",${future},2025-07-25T01:12:45`,
    `+15557777777,short-row`,
  ].join("\n"); // LF line endings
  const invalid = [
    { line: 3, reason: "expected 4 columns, found 5" },
    { line: 4, reason: "expires_at is not a number" },
    { line: 5, reason: "phone_number is not +E164" },
    { line: 6, reason: "session_id is empty" },
    { line: 8, reason: "expected 4 columns, found 2" },
  ];
  const refused = await importSessionsCsv(kv, text, { now: Date.now() });
  assert.deepEqual(refused.invalid, invalid);
  assert.equal(refused.written, false);
  assert.equal(refused.imported, 2, "what --skip-invalid would import");
  assert.deepEqual(await Array.fromAsync(kv.list({ prefix: ["sessions"] })), []);

  const skipping = await importSessionsCsv(kv, text, { now: Date.now(), skipInvalid: true });
  assert.deepEqual(skipping.invalid, invalid);
  assert.equal(skipping.written, true);
  assert.equal(skipping.imported, 2);
  const quoted = await kv.get<AydSession>(sessionKey("+15556666666"));
  assert.equal(quoted.value?.token, "quoted, with comma");
});

/** The file: four rows, CRLF, an unclosed quote on row 3 (line 4). */
function brokenOnRow3(future = Date.now() / 1000 + 3600): string {
  return "phone_number,session_id,expires_at,created_at\r\n" +
    `+15551111111,tok-1,${future},2025-07-25T01:12:45\r\n` +
    `+15552222222,"tok-2\r\nwith a line break",${future},2025-07-25T01:12:45\r\n` +
    `+15553333333,"tok-3,${future},2025-07-25T01:12:45\r\n` +
    `+15554444444,tok-4,${future},2025-07-25T01:12:45\r\n`;
}

Deno.test("csv - an unclosed quote is named at the line it opens on, and the rows after it still count", async () => {
  using kv = await Deno.openKv(":memory:");
  const text = brokenOnRow3();
  const refused = await importSessionsCsv(kv, text, { now: Date.now() });
  assert.deepEqual(refused.invalid, [
    { line: 5, reason: "a quoted field starts on this line and its closing quote is missing" },
  ], "row 2 spans lines 3 and 4, so row 3 starts on line 5");
  assert.equal(refused.written, false);
  assert.equal(refused.imported, 3);
  assert.equal((await kv.get(sessionKey("+15551111111"))).value, null, "nothing written");

  const skipping = await importSessionsCsv(kv, text, { now: Date.now(), skipInvalid: true });
  assert.equal(skipping.imported, 3);
  const tokens = await Promise.all(
    ["+15551111111", "+15552222222", "+15554444444"].map(async (phone) =>
      (await kv.get<AydSession>(sessionKey(phone))).value?.token
    ),
  );
  assert.deepEqual(tokens, ["tok-1", "tok-2\r\nwith a line break", "tok-4"]);
});

Deno.test("csv - a stray quote inside a field is named at its line", async () => {
  using kv = await Deno.openKv(":memory:");
  const future = Date.now() / 1000 + 3600;
  const text = `+15551111111,tok-1,${future},2025-07-25T01:12:45\n` +
    `+15552222222,"tok"2,${future},2025-07-25T01:12:45\n` +
    `+15553333333,tok-3,${future},2025-07-25T01:12:45\n`;
  const report = await importSessionsCsv(kv, text, { now: Date.now(), skipInvalid: true });
  assert.deepEqual(report.invalid.map((i) => i.line), [2]);
  assert.match(report.invalid[0].reason, /quote inside a field/);
  assert.equal(report.imported, 2);
});

Deno.test("csv - an unreadable created_at is replaced, with a warning at its line", async () => {
  using kv = await Deno.openKv(":memory:");
  const expires = Math.floor(Date.now() / 1000) + 3600;
  const text = "phone_number,session_id,expires_at,created_at\r\n" +
    `+15551111111,tok-1,${expires},yesterday\r\n` +
    `+15552222222,tok-2,${expires},\r\n` +
    `+15553333333,tok-3,${expires},2025-07-25T01:12:45\r\n`;
  const report = await importSessionsCsv(kv, text, { now: Date.now() });
  assert.equal(report.written, true);
  assert.deepEqual(report.replaced.map((r) => r.line), [2, 3]);
  assert.match(
    report.replaced[0].reason,
    /^created_at "yesterday" is not a time like 2025-07-25T01:12:45: the session counts as created 7 days before it expires$/,
  );
  assert.match(report.replaced[1].reason, /^created_at is empty/);
  const session = (await kv.get<AydSession>(sessionKey("+15551111111"))).value!;
  assert.equal(session.createdAt, expires * 1000 - 7 * 86_400_000);
});

Deno.test("csv - a dry run reports what an import would do and writes nothing", async () => {
  using kv = await Deno.openKv(":memory:");
  const now = Date.now();
  const at = (hours: number) => (now / 1000 + hours * 3600).toString();
  await kv.set(sessionKey("+15552222222"), {
    token: "kv",
    expiresAt: now + 9 * 3600_000,
    createdAt: now,
  });
  const text = "phone_number,session_id,expires_at,created_at\r\n" +
    `+15551111111,new,${at(1)},2025-07-25T01:00:00\r\n` +
    `+15552222222,older-than-kv,${at(2)},2025-07-25T01:00:00\r\n` +
    `+15553333333,gone,${at(-1)},2025-07-25T01:00:00\r\n`;
  const dry = await importSessionsCsv(kv, text, { now, dryRun: true });
  const counts = ({ imported, expired, unchanged, superseded }: typeof dry) => ({
    imported,
    expired,
    unchanged,
    superseded,
  });
  assert.equal(dry.written, false);
  assert.deepEqual(counts(dry), { imported: 1, expired: 1, unchanged: 1, superseded: 0 });
  assert.equal((await kv.get(sessionKey("+15551111111"))).value, null);
  const real = await importSessionsCsv(kv, text, { now });
  assert.deepEqual(counts(real), counts(dry), "the real import does what the dry run said");
  assert.equal((await kv.get<AydSession>(sessionKey("+15551111111"))).value?.token, "new");
});

Deno.test("csv - empty, header-only and header-less files", async () => {
  using kv = await Deno.openKv(":memory:");
  const none = {
    imported: 0,
    expired: 0,
    unchanged: 0,
    superseded: 0,
    invalid: [],
    replaced: [],
    written: true,
  };
  assert.deepEqual(await importSessionsCsv(kv, "", { now: Date.now() }), none);
  assert.deepEqual(
    await importSessionsCsv(kv, "phone_number,session_id,expires_at,created_at\r\n", {
      now: Date.now(),
    }),
    none,
  );
  const future = Date.now() / 1000 + 3600;
  const headerless = `+15551234567,tok-a,${future},2025-07-25T01:12:45\r\n` +
    `+15557654321,tok-b,${future},2025-07-25T01:12:46\r\n`;
  const report = await importSessionsCsv(kv, headerless, { now: Date.now() });
  assert.equal(report.imported, 2);
  assert.equal((await kv.get<AydSession>(sessionKey("+15551234567"))).value?.token, "tok-a");
});

Deno.test("csv - a number twice: the latest expiry wins; a newer session in KV is kept", async () => {
  using kv = await Deno.openKv(":memory:");
  const now = Date.now();
  const at = (hours: number) => (now / 1000 + hours * 3600).toString();
  const text = "phone_number,session_id,expires_at,created_at\r\n" +
    `+15551234567,older,${at(1)},2025-07-25T01:00:00\r\n` +
    `+15551234567,newer,${at(5)},2025-07-25T02:00:00\r\n` +
    `+15551234567,middle,${at(3)},2025-07-25T03:00:00\r\n` +
    `+15557654321,from-file,${at(2)},2025-07-25T03:00:00\r\n`;
  await kv.set(sessionKey("+15557654321"), {
    token: "live-in-kv",
    expiresAt: now + 10 * 3600_000,
    createdAt: now,
  });
  const report = await importSessionsCsv(kv, text, { now });
  assert.deepEqual(report, {
    imported: 1,
    expired: 0,
    unchanged: 1,
    superseded: 2,
    invalid: [],
    replaced: [],
    written: true,
  });
  assert.equal((await kv.get<AydSession>(sessionKey("+15551234567"))).value?.token, "newer");
  assert.equal((await kv.get<AydSession>(sessionKey("+15557654321"))).value?.token, "live-in-kv");
});

Deno.test("csv - export while sessions change stays a valid file", async () => {
  using kv = await Deno.openKv(":memory:");
  const now = Date.now();
  for (let i = 0; i < 200; i++) {
    await kv.set(sessionKey(`+1555${String(i).padStart(7, "0")}`), {
      token: `t${i}`,
      expiresAt: now + 3600_000,
      createdAt: now,
    });
  }
  const churn = (async () => {
    for (let i = 0; i < 200; i += 2) {
      await kv.delete(sessionKey(`+1555${String(i).padStart(7, "0")}`));
      await kv.set(sessionKey(`+1666${String(i).padStart(7, "0")}`), {
        token: `n${i}`,
        expiresAt: now + 3600_000,
        createdAt: now,
      });
    }
  })();
  const text = await new Response(exportSessionsCsvStream(kv, { now })).text();
  await churn;
  const lines = text.split("\r\n");
  assert.equal(lines[0], "phone_number,session_id,expires_at,created_at");
  assert.equal(lines.at(-1), "");
  for (const line of lines.slice(1, -1)) assert.match(line, /^\+1[56]{3}\d{7},[tn]\d+,\d+\.\d+,/);
});

Deno.test("csv - scheduled export registers where writable, warns once where not", async () => {
  using kv = await Deno.openKv(":memory:");
  await kv.set(sessionKey("+15551234567"), {
    token: "tok",
    expiresAt: Date.now() + 3600_000,
    createdAt: Date.now(),
  });
  const dir = await Deno.makeTempDir();
  const logs: string[] = [];
  const log = createLogger({ level: "info", write: (l) => logs.push(l) });
  const registered: string[] = [];
  const cron = (name: string, schedule: string) => {
    // Deno.cron's own rule for names, which a '.' once broke at start-up.
    if (!/^[\w\s-]+$/.test(name)) throw new TypeError(`Invalid cron name: ${name}`);
    registered.push(`${name} @ ${schedule}`);
  };
  try {
    const run = scheduleSessionsExport({
      path: `${dir}/ayd_sessions.csv`,
      everyMinutes: 5,
      kv: () => kv,
      log,
      cron,
    });
    assert.deepEqual(registered, ["export ayd_sessions csv @ */5 * * * *"]);
    await run!();
    const written = await Deno.readTextFile(`${dir}/ayd_sessions.csv`);
    assert.match(written, /^phone_number,session_id,expires_at,created_at\r\n\+15551234567,tok,/);
    assert.equal((await Deno.stat(`${dir}/ayd_sessions.csv`)).mode! & 0o777, 0o600);

    const none = scheduleSessionsExport({
      path: "/proc/no/ayd_sessions.csv",
      everyMinutes: 5,
      kv: () => kv,
      log,
      cron,
    });
    assert.equal(none, undefined);
    assert.equal(registered.length, 1, "nothing registered for a read-only place");
    assert.equal(logs.filter((l) => l.includes("sessions_csv.not_writable")).length, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("csv - GET /admin/sessions.csv: 404 without ADMIN_TOKEN, 401 without the bearer, CSV with it", async () => {
  const token = "admin-token-for-csv-0123456789";
  {
    await using closed = await startTestBridge();
    const response = await fetch(`${closed.url}/admin/sessions.csv`);
    assert.equal(response.status, 404);
    await response.body?.cancel();
  }
  await using t = await startTestBridge({ env: { ADMIN_TOKEN: token } });
  await t.kv.set(sessionKey("+15551234567"), {
    token: "tok-1",
    expiresAt: Date.now() + 3600_000,
    createdAt: Date.now(),
  });
  const anonymous = await fetch(`${t.url}/admin/sessions.csv`);
  assert.equal(anonymous.status, 401);
  await anonymous.body?.cancel();
  const wrong = await fetch(`${t.url}/admin/sessions.csv`, {
    headers: { authorization: "Bearer not-the-token-0123456789" },
  });
  assert.equal(wrong.status, 401);
  await wrong.body?.cancel();
  const ok = await fetch(`${t.url}/admin/sessions.csv`, {
    headers: { authorization: `Bearer ${token}` },
  });
  assert.equal(ok.status, 200);
  assert.match(ok.headers.get("content-type")!, /^text\/csv/);
  assert.equal(ok.headers.get("cache-control"), "no-store");
  assert.equal(await ok.text(), await exportSessionsCsv(t.kv, { now: Date.now() }));
});

Deno.test("csv - POST /admin/sessions.csv imports as the task does: a dry run, a bad row refused with 422 and nothing written, --skip-invalid's good rows, twice changes nothing", async () => {
  const token = "admin-token-for-csv-0123456789";
  await using t = await startTestBridge({ env: { ADMIN_TOKEN: token } });
  const post = (body: BodyInit, query = "", bearer = token) =>
    fetch(`${t.url}/admin/sessions.csv${query}`, {
      method: "POST",
      headers: { authorization: `Bearer ${bearer}`, "content-type": "text/csv" },
      body,
    });
  const file = brokenOnRow3();
  const sessions = async () => (await Array.fromAsync(t.kv.list({ prefix: ["sessions"] }))).length;

  const anonymous = await post(file, "", "not-the-token-0123456789");
  assert.equal(anonymous.status, 401);
  await anonymous.body?.cancel();

  const dry = await post(file, "?dry_run");
  assert.equal(dry.status, 200);
  const dryReport = await dry.json();
  assert.deepEqual(
    [dryReport.imported, dryReport.invalid, dryReport.written],
    [3, [{
      line: 5,
      reason: "a quoted field starts on this line and its closing quote is missing",
    }], false],
  );
  assert.equal(await sessions(), 0, "a dry run writes nothing");

  const refused = await post(file);
  assert.equal(refused.status, 422);
  assert.equal((await refused.json()).written, false);
  assert.equal(await sessions(), 0, "a bad row stops the whole file");

  const skipped = await post(file, "?skip_invalid");
  assert.equal(skipped.status, 200);
  const report = await skipped.json();
  assert.deepEqual([report.imported, report.invalid.length, report.written], [3, 1, true]);
  assert.equal(await sessions(), 3);
  assert.equal(
    (await t.kv.get<AydSession>(sessionKey("+15552222222"))).value?.token,
    "tok-2\r\nwith a line break",
  );

  const again = await (await post(file, "?skip_invalid")).json();
  assert.deepEqual([again.imported, again.unchanged], [0, 3]);
  assert.deepEqual(
    logEvents(t.logs, "admin.sessions_imported").map((e) => [e.imported, e.invalid, e.written]),
    [[3, 1, false], [3, 1, false], [3, 1, true], [0, 1, true]],
  );
  assert.ok(!t.logs.some((line) => line.includes("tok-")), "the tokens never reach the logs");

  const tooBig = await post(new Uint8Array(32 * 1024 * 1024 + 1));
  assert.equal(tooBig.status, 413);
  await tooBig.body?.cancel();
});

/** A task as `deno task` runs it, in `dir` (the project folder), on the KV file `kvPath`. */
function task(name: string, dir: string, kvPath: string, ...args: string[]) {
  return runTask(name, args, { cwd: dir, env: { DENO_KV_PATH: kvPath } });
}

/** A folder standing in for the project's, with a `.env` that sets nothing. */
async function inTempDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/.env`, "# KV comes from the environment in these tests\n");
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("csv - the import and export tasks", async () => {
  await inTempDir(async (dir) => {
    const kvPath = `${dir}/bridge.kv`;
    const future = Date.now() / 1000 + 3600;
    await Deno.writeTextFile(
      `${dir}/old.csv`,
      "phone_number,session_id,expires_at,created_at\r\n" +
        `+15551234567,tok-a,${future},2025-07-25T01:12:45.5\r\n` +
        `+15557654321,tok-b,1.5,2025-07-25T01:12:45\r\n`,
    );
    const imported = await task("import-sessions", dir, kvPath, "old.csv");
    assert.equal(imported.code, 0, imported.err);
    assert.equal(imported.out, "imported 1, expired 1, invalid 0, unchanged 0, superseded 0\n");
    assert.equal(imported.err, `KV: ${kvPath} (DENO_KV_PATH)\n`);

    const exported = await task("export-sessions", dir, kvPath, "--out", `${dir}/out.csv`);
    assert.equal(exported.code, 0, exported.err);
    assert.equal(
      exported.err,
      `KV: ${kvPath} (DENO_KV_PATH)\nExported 1 session to ${dir}/out.csv.\n`,
    );
    assert.equal((await Deno.stat(`${dir}/out.csv`)).mode! & 0o777, 0o600);
    const file = await Deno.readTextFile(`${dir}/out.csv`);
    assert.equal(
      file,
      `phone_number,session_id,expires_at,created_at\r\n+15551234567,tok-a,${future},2025-07-25T01:12:45.5\r\n`,
    );
    const toStdout = await task("export-sessions", dir, kvPath, "--out", "-");
    assert.equal(toStdout.out, file);

    assert.equal((await task("import-sessions", dir, kvPath)).code, 2);
    assert.equal((await task("import-sessions", dir, kvPath, "missing.csv")).code, 1);
    assert.equal((await task("export-sessions", dir, kvPath, "--bogus")).code, 2);
  });
});

Deno.test("csv - export never overwrites a file without --force; an empty KV says so", async () => {
  await inTempDir(async (dir) => {
    const kvPath = `${dir}/bridge.kv`;
    const flaskFile = "phone_number,session_id,expires_at,created_at\r\n+15551234567,old,9e9,x\r\n";
    await Deno.writeTextFile(`${dir}/ayd_sessions.csv`, flaskFile);

    // The default name, run where the Flask app's file sits.
    const refused = await task("export-sessions", dir, kvPath);
    assert.equal(refused.code, 1);
    assert.match(refused.err, new RegExp(`${dir}/ayd_sessions\\.csv exists and was left as it is`));
    assert.match(refused.err, /--out PATH[^]*--force/);
    assert.equal(await Deno.readTextFile(`${dir}/ayd_sessions.csv`), flaskFile);

    const forced = await task("export-sessions", dir, kvPath, "--force");
    assert.equal(forced.code, 0, forced.err);
    assert.match(forced.err, new RegExp(`Exported 0 sessions to ${dir}/ayd_sessions\\.csv\\.`));
    assert.match(forced.err, /KV holds no live session[^]*DENO_KV_PATH/);
    assert.equal(
      await Deno.readTextFile(`${dir}/ayd_sessions.csv`),
      "phone_number,session_id,expires_at,created_at\r\n",
    );
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assert.deepEqual(names, [".env", "ayd_sessions.csv", "bridge.kv"], "no temporary file left");
  });
});

Deno.test("csv - export's relative paths are the operator's, not the project folder's", async () => {
  await inTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/flask-app`);
    const run = await runTask("export-sessions", ["--out", "new.csv"], {
      cwd: dir,
      env: { DENO_KV_PATH: `${dir}/bridge.kv`, INIT_CWD: `${dir}/flask-app` },
    });
    assert.equal(run.code, 0, run.err);
    assert.match(run.err, new RegExp(`to ${dir}/flask-app/new\\.csv\\.`));
    assert.ok((await Deno.stat(`${dir}/flask-app/new.csv`)).isFile);
  });
});

Deno.test("csv - writing without overwrite leaves an existing file and no temporary one", async () => {
  await inTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/a.csv`, "mine");
    await assert.rejects(
      writeFileAtomically(`${dir}/a.csv`, "theirs", { overwrite: false }),
      Deno.errors.AlreadyExists,
    );
    assert.equal(await Deno.readTextFile(`${dir}/a.csv`), "mine");
    await writeFileAtomically(`${dir}/b.csv`, "new", { overwrite: false });
    assert.equal(await Deno.readTextFile(`${dir}/b.csv`), "new");
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assert.deepEqual(names, [".env", "a.csv", "b.csv"]);
  });
});

Deno.test("csv - import task: a broken row 3 fails at its real line and imports nothing", async () => {
  await inTempDir(async (dir) => {
    const kvPath = `${dir}/bridge.kv`;
    const future = Date.now() / 1000 + 3600;
    await Deno.writeTextFile(
      `${dir}/old.csv`,
      "phone_number,session_id,expires_at,created_at\r\n" +
        `+15551111111,tok-1,${future},2025-07-25T01:12:45\r\n` +
        `+15552222222,tok-2,${future},2025-07-25T01:12:45\r\n` +
        `+15553333333,"tok-3,${future},2025-07-25T01:12:45\r\n` +
        `+15554444444,tok-4,${future},not-a-date\r\n`,
    );
    const refused = await task("import-sessions", dir, kvPath, "old.csv");
    assert.equal(refused.code, 1);
    assert.equal(
      refused.out,
      "line 4: a quoted field starts on this line and its closing quote is missing\n" +
        'line 5: warning: created_at "not-a-date" is not a time like 2025-07-25T01:12:45: ' +
        "the session counts as created 7 days before it expires\n" +
        "Nothing imported: 1 bad row (above). Fix the file and run again, or add --skip-invalid " +
        "to import the 3 good sessions and skip the bad rows.\n",
    );
    const empty = await task("export-sessions", dir, kvPath, "--out", "-");
    assert.equal(empty.out, "phone_number,session_id,expires_at,created_at\r\n");

    const dry = await task(
      "import-sessions",
      dir,
      kvPath,
      "--dry-run",
      "--skip-invalid",
      "old.csv",
    );
    assert.equal(dry.code, 1, "a bad row fails a dry run too");
    assert.match(
      dry.out,
      /^would import 3, expired 0, invalid 1, unchanged 0, superseded 0 \(dry run: nothing written\)$/m,
    );
    assert.equal((await task("export-sessions", dir, kvPath, "--out", "-")).out, empty.out);

    const skipping = await task("import-sessions", dir, kvPath, "--skip-invalid", "old.csv");
    assert.equal(skipping.code, 1, "rows were skipped: not a success");
    assert.match(skipping.out, /^imported 3, expired 0, invalid 1, unchanged 0, superseded 0$/m);
    const exported = await task("export-sessions", dir, kvPath, "--out", "-");
    assert.deepEqual(
      exported.out.split("\r\n").slice(1, -1).map((line) => line.split(",")[1]),
      ["tok-1", "tok-2", "tok-4"],
    );
  });
});
