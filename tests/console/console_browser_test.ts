/// <reference lib="dom" />
/**
 * The operator console in a real headless Chromium, with JavaScript turned
 * off: signing in, and retrying a dead letter with its button.
 */
import assert from "node:assert/strict";
import type { MessageRecord } from "../../src/jobs/mod.ts";
import { makeDeadLetter, startTestBridge, waitFor } from "../_helpers.ts";
import { launchBrowser, type Page, textsOf } from "../_browser.ts";

const TOKEN = "console-token-0123456789abcdef0123456789";
const USER = "whatsapp:+15551234567";

/** A fresh tab without JavaScript: the console must work with forms alone. */
async function openTab(browser: Awaited<ReturnType<typeof launchBrowser>>): Promise<Page> {
  const page = await browser.newPage();
  await page.setJavaScriptEnabled(false);
  return page;
}

/** Submits the sign-in form with `token` and waits for the next page. */
async function signIn(page: Page, token: string) {
  await page.type("#token", token);
  await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
}

async function title(page: Page): Promise<string> {
  const [h1] = await textsOf(page, "h1");
  return h1;
}

Deno.test("Console in a browser - a wrong token is refused, the right one opens the overview", async () => {
  await using t = await startTestBridge({ env: { ADMIN_TOKEN: TOKEN } });
  await using browser = await launchBrowser();
  const page = await openTab(browser);

  await page.goto(`${t.url}/admin`);
  assert.equal(new URL(page.url()).pathname, "/admin/login", "sent to sign in first");

  await signIn(page, TOKEN.slice(0, -1) + "x");
  assert.equal(await title(page), "Sign in");
  assert.deepEqual(await textsOf(page, "[role=alert]"), ["That is not the admin token."]);
  assert.deepEqual(await page.cookies(), [], "no session for a wrong token");

  await signIn(page, TOKEN);
  assert.equal(new URL(page.url()).pathname, "/admin");
  assert.equal(await title(page), "Overview");
  const health = await textsOf(page, "#health td");
  assert.deepEqual(health, ["ok", "kv-queue", "0", "0"]);
  const [cookie] = await page.cookies();
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, "Strict");
  assert.equal(cookie.path, "/admin");
  assert.notEqual(cookie.value, TOKEN);
});

Deno.test("Console in a browser - the Retry button puts a dead letter back in line and it leaves the list", async () => {
  await using t = await startTestBridge({ env: { ADMIN_TOKEN: TOKEN } });
  const sid = "SM" + "9".repeat(32);
  await makeDeadLetter(t, sid);
  await using browser = await launchBrowser();
  const page = await openTab(browser);
  await page.goto(`${t.url}/admin/login`);
  await signIn(page, TOKEN);

  await Promise.all([
    page.waitForNavigation(),
    page.click("a[href='/admin/console/dead-letters']"),
  ]);
  assert.equal(await title(page), "Dead letters");
  const rows = await textsOf(page, "#dead-letters tr.letter");
  assert.equal(rows.length, 1, "one dead letter");
  assert.ok(rows[0].includes(sid) && rows[0].includes("+*******4567"));
  // What the button will do is on the page before it is pressed.
  const [plan] = await textsOf(page, "#dead-letters p.plan");
  assert.match(plan, /^Asks AYD again the question received at .* UTC\. The user already received/);
  const history = await textsOf(page, "#dead-letters ol.history li");
  assert.equal(history.length, 1);
  assert.match(history[0], /^attempt 1, .*: AYD AydError: ask answered 500/);

  await Promise.all([page.waitForNavigation(), page.click(`button[aria-label='Retry ${sid}']`)]);
  const [notice] = await textsOf(page, "[role=status]");
  assert.equal(
    notice,
    `${sid} is back in line and is tried again now; if it fails again, it comes back to this ` +
      "list with the new attempts in its history.",
  );
  assert.deepEqual(await textsOf(page, "#dead-letters"), [], "the list is empty");
  assert.deepEqual(await textsOf(page, "#no-dead-letters"), ["No dead letters."]);
  const replies = await t.twilio.waitForMessages(USER, 2);

  assert.equal(replies[1].body, "Answer to: later please");
});

Deno.test("Console in a browser - a person is added with the People form, listed, and removed with its button", async () => {
  await using t = await startTestBridge({ env: { ADMIN_TOKEN: TOKEN } });
  await using browser = await launchBrowser();
  const page = await openTab(browser);
  await page.goto(`${t.url}/admin/login`);
  await signIn(page, TOKEN);
  await Promise.all([page.waitForNavigation(), page.click("a[href='/admin/console/people']")]);
  assert.equal(await title(page), "People");

  await page.type("#phone", "+15551234567");
  await page.type("#name", "Ada Lovelace");
  await page.type("#email", "ada@example.com");
  await page.type("#properties", '{"region":"north"}');
  await Promise.all([page.waitForNavigation(), page.click("#add-person button[type=submit]")]);
  assert.deepEqual(await textsOf(page, "[role=status]"), ["+15551234567 added."]);
  const rows = await textsOf(page, "#people tr");
  assert.equal(rows.length, 2, "a header and Ada");
  assert.ok(rows[1].includes("Ada Lovelace") && rows[1].includes('{"region":"north"}'));

  await t.sendWhatsApp({ From: USER, Body: "my orders?" });
  await t.twilio.waitForMessages(USER, 1);
  assert.equal(t.ayd.sessions[0].name, "Ada Lovelace", "she asks as herself");

  await Promise.all([
    page.waitForNavigation(),
    page.click("button[aria-label='Remove +15551234567']"),
  ]);
  assert.deepEqual(await textsOf(page, "[role=status]"), ["+15551234567 removed."]);
  assert.deepEqual(await textsOf(page, "#no-people"), ["Nobody yet."]);
});

/** Whether anything on the page reaches past the viewport's right edge. */
function overflow(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    const wide = [...document.querySelectorAll("body *")]
      .filter((element) => element.getBoundingClientRect().right > width + 0.5)
      .map((element) => `${element.tagName.toLowerCase()}: ${element.textContent?.slice(0, 40)}`);
    if (document.documentElement.scrollWidth > width) wide.unshift("the page scrolls sideways");
    return wide;
  });
}

Deno.test("Console in a browser - on a 375 px phone the tables fit, and a rate-limited message is not 'answered'", async () => {
  await using t = await startTestBridge({
    env: { ADMIN_TOKEN: TOKEN, RATE_LIMIT_PER_MINUTE: "1" },
  });
  await t.sendWhatsApp({ Body: "first" });
  await t.sendWhatsApp({ Body: "second, over the limit" });
  await t.twilio.waitForMessages(USER, 2);
  await makeDeadLetter(t, "SM" + "9".repeat(32), "whatsapp:+15557654321");
  await jobsDone(t, 3);
  await using browser = await launchBrowser();
  const page = await openTab(browser);
  await page.setViewport({ width: 375, height: 812, isMobile: true });
  await page.goto(`${t.url}/admin/login`);
  await signIn(page, TOKEN);

  for (const path of ["/admin", "/admin/console/jobs", "/admin/console/dead-letters"]) {
    await page.goto(`${t.url}${path}`);
    assert.deepEqual(await overflow(page), [], `${path} fits 375 px`);
  }
  await page.goto(`${t.url}/admin/console/jobs`);
  const states = await textsOf(page, "#jobs td[data-label=state]");
  assert.ok(states.includes("not asked (rate limited)"), states.join(", "));
  assert.equal(states.filter((s) => s === "answered").length, 1, states.join(", "));
  // Each cell carries its column's name, shown beside it on a narrow screen.
  const label = await page.$eval(
    "#jobs td[data-label=MessageSid]",
    (cell) => getComputedStyle(cell, "::before").content,
  );
  assert.equal(label, '"MessageSid"');
});

/** Waits until KV holds `n` messages whose jobs are over. */
async function jobsDone(t: { kv: Deno.Kv }, n: number) {
  await waitFor(async () => {
    const records = await Array.fromAsync(t.kv.list<MessageRecord>({ prefix: ["messages"] }));
    return records.length === n &&
      records.every((r) => r.value.state === "answered" || r.value.state === "failed");
  }, `${n} finished jobs`);
}
