/** The operator console over real HTTP: who gets in, how, and what it shows. */
import assert from "node:assert/strict";
import { REPLIES } from "../../src/conversation/answer.ts";
import { type DeadLetter, deadLetterKey, type MessageRecord } from "../../src/jobs/mod.ts";
import {
  ACCOUNT_SID,
  makeDeadLetter,
  postForm,
  sign,
  startTestBridge,
  type TestBridge,
  waitFor,
  whatsAppParams,
} from "../_helpers.ts";
import { diskFull, type FaultyKv, faultyKv } from "../_faulty_kv.ts";

const TOKEN = "console-token-0123456789abcdef0123456789";
const USER = "whatsapp:+15551234567";
const MASKED = "+*******4567";
const STATUS_URL = "https://bridge.example.com/twilio/status";

/** Every console page and form, as a browser would reach them. */
const PAGES = [
  "/admin",
  "/admin/console/jobs",
  "/admin/console/dead-letters",
  "/admin/console/people",
];
const FORMS = [
  "/admin/logout",
  `/admin/console/dead-letters/SM${"4".repeat(32)}/retry`,
  "/admin/console/people",
  "/admin/console/people/%2B15551234567/remove",
  "/admin/console/people/import",
];

function get(t: TestBridge, path: string, cookie?: string, headers: HeadersInit = {}) {
  const all = new Headers(headers);
  if (cookie) all.set("cookie", cookie);
  return fetch(t.url + path, { redirect: "manual", headers: all });
}

function post(
  t: TestBridge,
  path: string,
  form: Record<string, string>,
  headers: HeadersInit = {},
) {
  return fetch(t.url + path, {
    method: "POST",
    redirect: "manual",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams(form),
  });
}

/** Signs in; returns the `name=value` of the session cookie and the raw Set-Cookie. */
async function signIn(t: TestBridge, headers: HeadersInit = {}) {
  const response = await post(t, "/admin/login", { token: TOKEN }, headers);
  await response.body?.cancel();
  assert.equal(response.status, 303);
  assert.equal(response.headers.get("location"), "/admin");
  const [setCookie] = response.headers.getSetCookie();
  return { cookie: setCookie.split(";", 1)[0], setCookie };
}

/** The page's HTML, after checking it answered 200. */
async function html(t: TestBridge, path: string, cookie: string): Promise<string> {
  const response = await get(t, path, cookie);
  assert.equal(response.status, 200, path);
  assert.match(response.headers.get("content-type") ?? "", /^text\/html/);
  return await response.text();
}

/** Text as the page shows it: Hono's escapes undone. */
function decode(html: string): string {
  return html.replace(/<[^>]+>/g, "").replaceAll("&quot;", '"').replaceAll("&#39;", "'")
    .replaceAll("&lt;", "<").replaceAll("&gt;", ">").replaceAll("&amp;", "&");
}

function csrfOf(page: string): string {
  const match = page.match(/name="csrf" value="([^"]+)"/);
  assert.ok(match, "the page has a CSRF field");
  return match[1];
}

Deno.test("Console - absent without ADMIN_TOKEN", async () => {
  await using t = await startTestBridge();
  for (const path of [...PAGES, "/admin/login"]) {
    const response = await get(t, path);
    assert.equal(response.status, 404, path);
    await response.body?.cancel();
  }
});

Deno.test("Console - every page and form refuses without a session, bearer or forged cookie alike", async () => {
  await using t = await startTestBridge({ env: { ADMIN_TOKEN: TOKEN } });
  const forged = "bridge_console=" + "A".repeat(43);
  const bearer = { authorization: `Bearer ${TOKEN}` };
  for (const path of PAGES) {
    for (const [cookie, headers] of [[undefined, {}], [forged, {}], [undefined, bearer]] as const) {
      const response = await get(t, path, cookie, headers);
      assert.equal(response.status, 303, path);
      assert.equal(response.headers.get("location"), "/admin/login");
      await response.body?.cancel();
    }
  }
  for (const path of FORMS) {
    for (const headers of [{}, { cookie: forged }] as HeadersInit[]) {
      const response = await post(t, path, { csrf: "x" }, headers);
      assert.equal(response.status, 401, path);
      await response.body?.cancel();
    }
  }
  for (const download of ["/admin/sessions.csv", "/admin/people.csv"]) {
    const csv = await get(t, download, forged);
    assert.equal(csv.status, 401, download);
    await csv.body?.cancel();
  }
  const login = await get(t, "/admin/login");
  assert.equal(login.status, 200);
  assert.match(await login.text(), /<form method="post" action="\/admin\/login">/);
});

Deno.test("Console - a wrong token is refused, and failures lock the address out of console and API", async () => {
  await using t = await startTestBridge({ env: { ADMIN_TOKEN: TOKEN } });
  for (let i = 0; i < 5; i++) {
    const wrong = await post(t, "/admin/login", { token: TOKEN.slice(0, -1) + "x" });
    assert.equal(wrong.status, 401);
    assert.deepEqual(wrong.headers.getSetCookie(), [], "no session for a wrong token");
    assert.match(await wrong.text(), /not the admin token/);
  }
  const locked = await post(t, "/admin/login", { token: TOKEN });
  assert.equal(locked.status, 429, "even the right token waits out the lockout");
  assert.ok(Number(locked.headers.get("retry-after")) > 0);
  assert.deepEqual(locked.headers.getSetCookie(), []);
  assert.match(await locked.text(), /Too many failed attempts/);
  const api = await get(t, "/admin/stats", undefined, { authorization: `Bearer ${TOKEN}` });
  assert.equal(api.status, 429, "the API shares the lockout");
  await api.body?.cancel();
  assert.ok(!t.logs.join("\n").includes(TOKEN.slice(0, 12)), "no token in the logs");
});

Deno.test("Console - the right token opens a session held in an HttpOnly, SameSite=Strict cookie", async () => {
  await using t = await startTestBridge({ env: { ADMIN_TOKEN: TOKEN } });
  const { cookie, setCookie } = await signIn(t);
  const flags = setCookie.split(";").slice(1).map((flag) => flag.trim().toLowerCase());
  assert.ok(flags.includes("httponly"));
  assert.ok(flags.includes("samesite=strict"));
  assert.ok(flags.includes("path=/admin"));
  assert.ok(!flags.includes("secure"), "plain http: a Secure cookie would never come back");
  assert.ok(!cookie.includes(TOKEN), "the cookie is not the token");
  const stored = await Array.fromAsync(t.kv.list({ prefix: ["console_sessions"] }));
  assert.equal(stored.length, 1);
  assert.ok(!JSON.stringify(stored).includes(cookie.split("=")[1]), "KV keeps a hash of the id");
  assert.ok(!JSON.stringify(stored).includes(TOKEN));
  const overview = await html(t, "/admin", cookie);
  assert.match(overview, /<h1>Overview<\/h1>/);
  const again = await get(t, "/admin/login", cookie);
  assert.equal(again.status, 303, "signed in: the form sends you on");
  await again.body?.cancel();

  const proxied = await signIn(t, { "x-forwarded-proto": "https" });
  assert.match(proxied.setCookie, /;\s*Secure/i, "over https the cookie is Secure");
});

Deno.test("Console - a form without the session's CSRF token, or from another site, is refused", async () => {
  await using t = await startTestBridge({ env: { ADMIN_TOKEN: TOKEN } });
  const sid = "SM" + "7".repeat(32);
  await makeDeadLetter(t, sid);
  const { cookie } = await signIn(t);
  const csrf = csrfOf(await html(t, "/admin/console/dead-letters", cookie));
  const path = `/admin/console/dead-letters/${sid}/retry`;
  const attempts: [Record<string, string>, HeadersInit][] = [
    [{}, { cookie }],
    [{ csrf: csrf.slice(0, -1) + "x" }, { cookie }],
    [{ csrf }, { cookie, origin: "https://evil.example" }],
    [{ csrf }, { cookie, origin: "null" }],
    [{ csrf }, { cookie, "sec-fetch-site": "cross-site" }],
  ];
  for (const [form, headers] of attempts) {
    const response = await post(t, path, form, headers);
    assert.equal(response.status, 403, JSON.stringify(headers));
    await response.body?.cancel();
  }
  assert.notEqual((await t.kv.get(["dead_letters", sid])).value, null, "still a dead letter");
  const login = await post(t, "/admin/login", { token: TOKEN }, { origin: "https://evil.example" });
  assert.equal(login.status, 403, "no sign-in posted from another site");
  assert.deepEqual(login.headers.getSetCookie(), []);
  await login.body?.cancel();
});

Deno.test("Console - retrying a dead letter from its form puts the message back in line", async () => {
  await using t = await startTestBridge({ env: { ADMIN_TOKEN: TOKEN } });
  const sid = "SM" + "3".repeat(32);
  await makeDeadLetter(t, sid);
  const { cookie } = await signIn(t);
  const before = await html(t, "/admin/console/dead-letters", cookie);
  assert.match(before, new RegExp(`<code>${sid}</code>`));
  assert.match(before, /ask answered 500/);
  assert.ok(before.includes(MASKED) && !before.includes("15551234567"), "masked number only");

  const retried = await post(t, `/admin/console/dead-letters/${sid}/retry`, {
    csrf: csrfOf(before),
  }, { cookie, origin: t.url });
  assert.equal(retried.status, 303);
  const location = retried.headers.get("location")!;
  assert.equal(location, `/admin/console/dead-letters?retry=queued&sid=${sid}`);
  const replies = await t.twilio.waitForMessages(USER, 2);
  assert.equal(replies[1].body, "Answer to: later please");
  const after = await html(t, location, cookie);
  assert.match(after, /is back in line/);
  assert.match(after, /No dead letters\./);

  const gone = await post(t, `/admin/console/dead-letters/${sid}/retry`, {
    csrf: csrfOf(after),
  }, { cookie });
  assert.equal(
    gone.headers.get("location"),
    `/admin/console/dead-letters?retry=not_found&sid=${sid}`,
  );
  await gone.body?.cancel();
});

Deno.test("Console - a dead letter shows its history, first cause first, and what a retry will do", async () => {
  await using t = await startTestBridge({ env: { ADMIN_TOKEN: TOKEN } });
  const sid = "SM" + "5".repeat(32);
  await makeDeadLetter(t, sid);
  const receivedAt = (await t.kv.get<DeadLetter>(deadLetterKey(sid))).value!.receivedAt!;
  const { cookie } = await signIn(t);
  const before = await html(t, "/admin/console/dead-letters", cookie);
  const plan = (page: string) => decode(page.match(/<p class="plan">(.*?)<\/p>/s)?.[1] ?? "");
  const received = new Date(receivedAt).toISOString().replace("T", " ").slice(0, 19);
  assert.equal(
    plan(before),
    `Asks AYD again the question received at ${received} UTC. The user already received the ` +
      `apology ("${REPLIES.failure}"): if it fails the same way (AYD again), they are not ` +
      "messaged again; if it fails another way, they get that failure's reply unless they " +
      "have it already; if it succeeds, they get the answer.",
  );

  // Pressed while AYD still fails: the same way, so the user hears nothing more.
  t.ayd.onAsk(() => ({ kind: "status", status: 500 }));
  const retried = await post(t, `/admin/console/dead-letters/${sid}/retry`, {
    csrf: csrfOf(before),
  }, { cookie, origin: t.url });
  assert.equal(retried.status, 303);
  await retried.body?.cancel();
  await waitFor(async () => {
    const letter = (await t.kv.get<DeadLetter>(deadLetterKey(sid))).value;
    return letter?.retries === 1;
  }, "the dead letter back, after its retry");
  assert.equal(t.twilio.messages.length, 1, "one apology in all");

  const after = await html(t, "/admin/console/dead-letters", cookie);
  assert.match(after, /<td data-label="first cause" class="cause">AydError: ask answered 500/);
  const history = [...after.matchAll(/<li>(.*?)<\/li>/gs)].map((m) => decode(m[1]));
  assert.equal(history.length, 2);
  assert.match(
    history[0],
    /^attempt 1, \d{4}-\d\d-\d\d \d\d:\d\d:\d\d: AYD AydError: ask answered 500/,
  );
  assert.match(
    history[1],
    /^retry 1, attempt 1, .*: AYD AydError: ask answered 500.* \(the user was not messaged again\)$/,
  );
  assert.match(
    plan(after),
    new RegExp(`^Asks AYD again the question received at ${received} UTC\\.`),
  );
  assert.match(after, new RegExp(`aria-label="Retry ${sid}"`));
  assert.ok(after.includes(MASKED) && !after.includes("15551234567"), "masked number only");
  assert.ok(!after.includes("later please"), "never message text");
});

Deno.test("Console - a dead letter whose message expired says so and has no Retry button", async () => {
  await using t = await startTestBridge({ env: { ADMIN_TOKEN: TOKEN } });
  const sid = "SM" + "8".repeat(32);
  await makeDeadLetter(t, sid);
  await t.kv.delete(["messages", sid]);
  const { cookie } = await signIn(t);
  const page = await html(t, "/admin/console/dead-letters", cookie);
  assert.match(
    page,
    /<p class="plan">Cannot be retried: its message is no longer stored \(messages are kept 7 days\)\.<\/p>/,
  );
  assert.doesNotMatch(page, /aria-label="Retry /);
});

Deno.test("Console - the pages tell the truth, with masked numbers and no message text", async () => {
  await using t = await startTestBridge({ env: { ADMIN_TOKEN: TOKEN } });
  const sids = ["SM" + "1".repeat(32), "SM" + "2".repeat(32)];
  await t.sendWhatsApp({ MessageSid: sids[0], Body: "secret question one" });
  await t.sendWhatsApp({ MessageSid: sids[1], Body: "secret question two" });
  await t.twilio.waitForMessages(USER, 2);
  await waitFor(async () => {
    const records = await t.kv.getMany<MessageRecord[]>(sids.map((sid) => ["messages", sid]));
    return records.every((r) => r.value?.state === "answered");
  }, "both answered");
  const failed = {
    MessageSid: "SM" + "6".repeat(32),
    MessageStatus: "failed",
    ErrorCode: "63016",
    AccountSid: ACCOUNT_SID,
    To: USER,
  };
  const status = await postForm(t.url, failed, {
    "x-twilio-signature": sign(failed, STATUS_URL),
  }, "/twilio/status");
  assert.equal(status.status, 204);

  const { cookie } = await signIn(t);
  const overview = await html(t, "/admin", cookie);
  const jobs = await html(t, "/admin/console/jobs", cookie);
  for (const page of [overview, jobs]) {
    assert.ok(!page.includes("15551234567"), "never a full number");
    assert.ok(!page.includes("secret question"), "never message text");
  }
  assert.match(overview, /<th>Job backend<\/th><td class="n">kv-queue<\/td>/);
  assert.match(overview, /<td>received<\/td><td class="n">2<\/td><td class="n">2<\/td>/);
  assert.match(overview, /<td>answered<\/td><td class="n">2<\/td><td class="n">2<\/td>/);
  assert.match(overview, /<span id="session-count">1<\/span>/);
  assert.match(overview, /<code>63016<\/code> \(outside WhatsApp&#39;s 24-hour window\)/);
  assert.match(overview, /href="\/admin\/sessions.csv"/);
  const rows = jobs.match(/<tr><td data-label="received">\d{4}-.*?<\/tr>/g) ?? [];
  assert.equal(rows.length, 2);
  assert.ok(rows[0].includes(sids[1]), "newest first");
  for (const row of rows) assert.match(row, /\+\*{7}4567.*answered.*answered/);

  const csv = await get(t, "/admin/sessions.csv", cookie);
  assert.equal(csv.status, 200, "the console's cookie opens the CSV download");
  assert.match(
    await csv.text(),
    /^phone_number,session_id,expires_at,created_at\r\n\+15551234567,/,
  );
});

Deno.test("Console - signing out ends the session for good", async () => {
  await using t = await startTestBridge({ env: { ADMIN_TOKEN: TOKEN } });
  const { cookie } = await signIn(t);
  const csrf = csrfOf(await html(t, "/admin", cookie));
  const out = await post(t, "/admin/logout", { csrf }, { cookie });
  assert.equal(out.status, 303);
  assert.equal(out.headers.get("location"), "/admin/login");
  assert.match(out.headers.getSetCookie()[0], /Max-Age=0/);
  await out.body?.cancel();
  const after = await get(t, "/admin", cookie);
  assert.equal(after.status, 303, "the old cookie opens nothing");
  await after.body?.cancel();
  assert.deepEqual(await Array.fromAsync(t.kv.list({ prefix: ["console_sessions"] })), []);
});

Deno.test("Console - the overview names the URL Twilio signed until a webhook passes", async () => {
  await using t = await startTestBridge({ env: { ADMIN_TOKEN: TOKEN } });
  const { cookie } = await signIn(t);
  assert.doesNotMatch(await html(t, "/admin", cookie), /id="url-hint-/);

  const params = whatsAppParams({ Body: "secret question" });
  const signedFor = "https://abc123.ngrok.app/whatsapp";
  const refused = await postForm(t.url, params, {
    "x-twilio-signature": sign(params, signedFor),
    "x-forwarded-proto": "https",
    "x-forwarded-host": "abc123.ngrok.app",
  });
  assert.equal(refused.status, 403);
  await refused.body?.cancel();
  const hinted = await html(t, "/admin", cookie);
  const notice = hinted.match(/<p class="error" role="alert" id="url-hint-webhook">.*?<\/p>/s)?.[0];
  assert.ok(notice, "the overview shows the hint");
  assert.match(notice, /<code>https:\/\/abc123\.ngrok\.app\/whatsapp<\/code>/);
  assert.match(notice, /<code>TWILIO_WEBHOOK_URL=https:\/\/abc123\.ngrok\.app\/whatsapp<\/code>/);
  assert.match(
    notice,
    /<code>https:\/\/bridge\.example\.com\/whatsapp<\/code>/,
    "and the URL now set",
  );
  assert.ok(!hinted.includes("secret question") && !hinted.includes("15551234567"));

  const passed = await t.sendWhatsApp();
  assert.equal(passed.status, 200);
  await passed.body?.cancel();
  assert.doesNotMatch(await html(t, "/admin", cookie), /id="url-hint-/);
});

Deno.test("Console - the People page adds, changes, imports and removes people through its forms", async () => {
  await using t = await startTestBridge({ env: { ADMIN_TOKEN: TOKEN } });
  const { cookie } = await signIn(t);
  const page = await html(t, "/admin/console/people", cookie);
  assert.match(page, /<p id="no-people">Nobody yet.<\/p>/);
  assert.match(page, /The directory is empty and ALLOWED_NUMBERS is unset: anyone may ask./);
  const csrf = csrfOf(page);

  const form = { csrf, phone: "+15551234567", name: "Ada <Lovelace>", email: "ada@example.com" };
  const saved = await post(t, "/admin/console/people", {
    ...form,
    properties: '{"region":"north"}',
  }, { cookie });
  assert.equal(saved.status, 303);
  assert.equal(
    saved.headers.get("location"),
    "/admin/console/people?saved=added&phone=%2B15551234567",
  );
  await saved.body?.cancel();
  const listed = await html(t, saved.headers.get("location")!, cookie);
  assert.match(listed, /role="status">\+15551234567 added.<\/p>/);
  assert.match(listed, /<td>Ada &lt;Lovelace&gt;<\/td>/, "escaped");
  assert.match(listed, /only these people may ask/);

  const bad = await post(t, "/admin/console/people", { ...form, properties: "[1]" }, { cookie });
  assert.equal(bad.status, 400);
  assert.match(await bad.text(), /Not saved:.*properties must be a JSON object/s);

  const upload = new FormData();
  upload.set("csrf", csrf);
  upload.set(
    "file",
    new File(
      ["phone_number,name,email\r\n+15557654321,Bob,bob@example.com\r\n+1555,X,x@y.z\r\n"],
      "people.csv",
    ),
  );
  const imported = await fetch(`${t.url}/admin/console/people/import`, {
    method: "POST",
    redirect: "manual",
    headers: { cookie, origin: t.url },
    body: upload,
  });
  assert.equal(imported.status, 200);
  const report = await imported.text();
  assert.match(
    report,
    /<p id="import-summary">2 rows: added 1, updated 0, unchanged 0, removed 0, invalid 1.<\/p>/,
  );
  assert.match(report, /<li>line 3: phone_number is not \+E164/);

  const removed = await post(t, "/admin/console/people/%2B15551234567/remove", { csrf }, {
    cookie,
  });
  assert.equal(removed.status, 303);
  await removed.body?.cancel();
  const after = await html(t, removed.headers.get("location")!, cookie);
  assert.match(after, /\+15551234567 removed./);
  assert.ok(!after.includes("Ada"));
  assert.match(after, /1 person in the directory/);

  const forgedCsrf = await post(t, "/admin/console/people", { ...form, csrf: "forged" }, {
    cookie,
  });
  assert.equal(forgedCsrf.status, 403);
  await forgedCsrf.body?.cancel();
  const csv = await get(t, "/admin/people.csv", cookie);
  assert.equal(csv.status, 200, "the console's cookie opens the people.csv download");
  assert.equal(
    await csv.text(),
    "phone_number,name,email,properties\r\n+15557654321,Bob,bob@example.com,\r\n",
  );
  const logs = t.logs.join("\n");
  assert.ok(
    !logs.includes("Lovelace") && !logs.includes("bob@example.com"),
    "no names in the logs",
  );
});

Deno.test("Console - in chat mode the overview counts chats, and a refused API key shows as degraded", async () => {
  await using t = await startTestBridge({
    mode: "chat",
    env: { ADMIN_TOKEN: TOKEN, ASKYOURDATABASE_API_KEY: "a-revoked-key" },
  });
  await t.sendWhatsApp();
  await t.twilio.waitForMessages(USER, 1);
  const { cookie } = await signIn(t);
  const overview = await html(t, "/admin", cookie);
  assert.match(overview, /Chat mode \(AYD&#39;s documented API\): <span id="chat-count">0<\/span>/);
  assert.match(overview, /degraded: AYD refused the API key \(newChat answered 401\)/);
  assert.ok(!overview.includes("a-revoked-key"));
});

Deno.test("Console - while writes fail the overview says degraded: writes fail, with why, and ok again by itself", async () => {
  const faulty: { kv?: FaultyKv } = {};
  await using t = await startTestBridge({
    // Short heartbeats: the probe the overview reads runs every third of it.
    env: { ADMIN_TOKEN: TOKEN, JOB_LEASE_MS: "600" },
    wrapKv: (kv) => (faulty.kv = faultyKv(kv)).kv,
  });
  const { cookie } = await signIn(t); // signing in writes its session: before the fault
  const status = async () => {
    const page = await html(t, "/admin", cookie);
    return decode(page.match(/<th>Status<\/th><td class="n">(.*?)<\/td>/)?.[1] ?? "");
  };
  assert.equal(await status(), "ok");
  faulty.kv!.fault(() => diskFull());
  await waitFor(async () => (await status()) !== "ok", "the heartbeat probe to fail");
  assert.equal(await status(), "degraded: writes fail (TypeError: database or disk is full)");
  faulty.kv!.fault(null);
  await waitFor(async () => (await status()) === "ok", "recovery without a restart");
});
