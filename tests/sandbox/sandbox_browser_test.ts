/// <reference lib="dom" />
/**
 * The sandbox page in a real headless Chromium: what a person sees when they
 * chat with the bridge through `deno task sandbox`.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { messageKey, type MessageRecord } from "../../src/jobs/mod.ts";
import { DEMO_TRANSCRIPT } from "../../src/sandbox/demo_transcriber.ts";
import { type Sandbox, startSandbox } from "../../src/sandbox/sandbox.ts";
import { transcribe } from "../../src/speech/mod.ts";
import { fetchTwilioMedia } from "../../src/whatsapp/mod.ts";
import { launchBrowser, type Page, textsOf } from "../_browser.ts";

const SCREENSHOT = fileURLToPath(new URL("../../docs/sandbox.png", import.meta.url));

/** A sandbox and a browser (with Chromium flags `args`) for one test; both closed at the end. */
async function setUp(args: string[] = []) {
  const sandbox = await startSandbox({ port: 0, demoPaceMs: 2, deliveryDelayMs: 20 });
  const browser = await launchBrowser(args).catch(async (error) => {
    await sandbox.close();
    throw error;
  });
  return {
    sandbox,
    browser,
    /** A tab chatting as `phone`, connected to the live chat stream. */
    async open(phone: string): Promise<Page> {
      const page = await browser.newPage();
      // Tall enough that the screenshot's conversation fits without scrolling.
      await page.setViewport({ width: 560, height: 1120 });
      await page.goto(`${sandbox.url}?phone=${encodeURIComponent(phone)}`);
      await page.waitForSelector("body[data-connected=true]");
      return page;
    },
    async [Symbol.asyncDispose]() {
      await browser.close();
      await sandbox.close();
    },
  };
}

async function type(page: Page, text: string) {
  await page.type("#text", text);
  await page.keyboard.press("Enter");
}

/** Waits until a reply bubble contains `text`; returns that bubble's inner HTML. */
async function reply(page: Page, text: string): Promise<string> {
  const handle = await page.waitForFunction(
    (wanted) =>
      [...document.querySelectorAll(".msg.theirs:not(.typing)")]
        .find((bubble) => bubble.textContent?.includes(wanted))?.innerHTML,
    // Background tabs get no animation frames: poll on a timer instead.
    { timeout: 20_000, polling: 50 },
    text,
  );
  return await handle.jsonValue() as string;
}

Deno.test("Sandbox page - a question gets its answer formatted as WhatsApp shows it, table and chart included", async () => {
  await using t = await setUp();
  const page = await t.open("+15550100011");

  await type(page, "Which orders were late last week?");
  const late = await reply(page, "Late orders last week");
  assert.match(late, /<strong>Late orders last week<\/strong>/, "a heading becomes a bold line");
  assert.match(late, /<pre>[^]*1063\s+Initech\s+4[^]*<\/pre>/, "the table is a monospace block");
  assert.match(late, /<em>Rotterdam<\/em>/);
  assert.match(late, /<del>in transit<\/del>/);
  assert.match(late, /<code>1063<\/code>/);

  await page.click("xpath/.//button[contains(@class,'chip')][text()='revenue chart']");
  await reply(page, "monthly revenue");
  await page.waitForFunction(() => {
    const img = document.querySelector<HTMLImageElement>(".msg.theirs img");
    return img?.complete && img.naturalWidth > 0;
  }, { polling: 50 });
  // Twilio's typing indicator marked the question read: blue ticks.
  await page.waitForSelector(".msg.mine[data-status=read] .ticks.read");
  // Twilio's status callbacks went through the bridge: every reply shows delivered.
  await page.waitForFunction(
    () =>
      [...document.querySelectorAll<HTMLElement>(".msg")].every((bubble) =>
        bubble.dataset.status === (bubble.classList.contains("mine") ? "read" : "delivered")
      ),
    { polling: 50 },
  );

  await page.evaluate(() => {
    // A fixed time of day and no blinking caret keep the committed screenshot
    // byte-identical between runs.
    for (const meta of document.querySelectorAll(".meta")) meta.firstChild!.textContent = "09:41";
    (document.activeElement as HTMLElement | null)?.blur();
  });
  await page.evaluate(() => document.fonts.ready.then(() => {}));
  await page.screenshot({ path: SCREENSHOT });
});

Deno.test("Sandbox page - a long answer arrives in several parts, in order, after 'typing…'", async () => {
  await using t = await setUp();
  const page = await t.open("+15550100012");
  await page.evaluate(() => {
    // Records whether the typing bubble ever showed, however briefly.
    new MutationObserver(() => {
      if (document.querySelector(".typing")) document.body.dataset.sawTyping = "true";
    }).observe(document.getElementById("chat")!, { childList: true });
  });

  await type(page, "long report");
  await reply(page, "Summary:");
  const parts = await textsOf(page, ".msg.theirs:not(.typing) .text");
  assert.ok(parts.length >= 2, `expected several parts, got ${parts.length}`);
  assert.match(parts[0], /^Half-year report/);
  assert.match(parts.at(-1)!, /Summary: revenue grew every month/);
  const whole = parts.join("");
  const months = ["January", "February", "March", "April", "May", "June"];
  const positions = months.map((month) => whole.indexOf(month));
  assert.ok(positions.every((p) => p >= 0), "every month is there");
  assert.deepEqual(positions, [...positions].sort((a, b) => a - b), "the parts are in order");
  assert.equal(await page.evaluate(() => document.body.dataset.sawTyping), "true");
});

Deno.test("Sandbox page - help explains and reset starts a new AYD conversation", async () => {
  await using t = await setUp();
  const page = await t.open("+15550100013");
  const sessions = () => t.sandbox.demoAyd!.sessions.get("wa15550100013@example.com") ?? 0;

  await type(page, "help");
  assert.match(await reply(page, "Ask me about"), /<strong>reset<\/strong>/);
  await type(page, "late orders");
  await reply(page, "Late orders last week");
  assert.equal(sessions(), 1);

  await type(page, "reset");
  await reply(page, "I started a new conversation");
  await type(page, "top customers");
  await reply(page, "Top customers this quarter");
  assert.equal(sessions(), 2, "the question after reset was asked in a new session");
});

Deno.test("Sandbox page - two tabs are two numbers, each seeing only its own chat", async () => {
  await using t = await setUp();
  const [first, second] = await Promise.all([
    t.open("+15550100021"),
    t.open("+15550100022"),
  ]);

  await Promise.all([type(first, "late orders"), type(second, "top customers")]);
  await Promise.all([
    reply(first, "Late orders last week"),
    reply(second, "Top customers this quarter"),
  ]);
  const firstChat = (await textsOf(first, ".msg")).join("\n");
  const secondChat = (await textsOf(second, ".msg")).join("\n");
  assert.doesNotMatch(firstChat, /Top customers/);
  assert.doesNotMatch(secondChat, /Late orders/);

  // A third tab on the first number replays that number's conversation.
  const again = await t.open("+15550100021");
  await reply(again, "Late orders last week");
  assert.deepEqual(await textsOf(again, ".msg.mine .text"), ["late orders"]);
});

Deno.test("Sandbox page - ?phone=+1555… as the README writes it: two tabs are two numbers", async () => {
  await using t = await setUp();
  const open = async (phone: string) => {
    const page = await t.browser.newPage();
    await page.goto(`${t.sandbox.url}?phone=${phone}`); // a raw "+", as typed in the address bar
    await page.waitForSelector("body[data-connected=true]");
    return page;
  };
  const [first, second] = await Promise.all([open("+15550100041"), open("+15550100042")]);
  assert.equal(await first.$eval("#number", (s) => (s as HTMLSelectElement).value), "+15550100041");
  assert.equal(
    await second.$eval("#number", (s) => (s as HTMLSelectElement).value),
    "+15550100042",
  );

  await Promise.all([type(first, "late orders"), type(second, "top customers")]);
  await Promise.all([
    reply(first, "Late orders last week"),
    reply(second, "Top customers this quarter"),
  ]);
  assert.doesNotMatch((await textsOf(first, ".msg")).join("\n"), /Top customers/);
  const sessions = t.sandbox.demoAyd!.sessions;
  assert.equal(sessions.get("wa15550100041@example.com"), 1);
  assert.equal(sessions.get("wa15550100042@example.com"), 1);
});

Deno.test("Sandbox page - a chart that loads after its bubble arrived is scrolled fully into view", async () => {
  await using t = await setUp();
  const page = await t.browser.newPage();
  await page.setViewport({ width: 375, height: 640 });
  // Hold the chart's image until its bubble is on the page, as a slow network would.
  let release = () => {};
  const held = new Promise<void>((resolve) => release = resolve);
  await page.setRequestInterception(true);
  page.on("request", async (request) => {
    if (request.url().includes("/charts/")) await held;
    await request.continue();
  });
  await page.goto(`${t.sandbox.url}?phone=%2B15550100043`);
  await page.waitForSelector("body[data-connected=true]");

  await type(page, "late orders"); // fills the chat, so that it scrolls
  await reply(page, "Late orders last week");
  await type(page, "revenue chart");
  await page.waitForSelector(".msg.theirs img");
  release();
  await page.waitForFunction(() => {
    const img = document.querySelector<HTMLImageElement>(".msg.theirs img");
    return img?.complete && img.naturalWidth > 0;
  }, { polling: 50 });
  const visible = await page.waitForFunction(() => {
    const chat = document.getElementById("chat")!.getBoundingClientRect();
    const img = document.querySelector(".msg.theirs img")!.getBoundingClientRect();
    return img.height > 0 && img.top >= chat.top && img.bottom <= chat.bottom + 1;
  }, { polling: 50, timeout: 5_000 }).then(() => true, () => false);
  assert.ok(visible, "the whole chart is in view once it has loaded");
});

// ---------------------------------------------------------------- voice notes

/** One second of 8 kHz 8-bit mono silence: a WAV file any browser plays. */
function silentWav(): Uint8Array<ArrayBuffer> {
  const samples = 8_000;
  const bytes = new Uint8Array(44 + samples).fill(128, 44);
  const view = new DataView(bytes.buffer);
  const ascii = (at: number, text: string) =>
    [...text].forEach((c, i) => view.setUint8(at + i, c.charCodeAt(0)));
  ascii(0, "RIFF");
  view.setUint32(4, 36 + samples, true);
  ascii(8, "WAVEfmt ");
  view.setUint32(16, 16, true);
  view.setUint16(20, 1, true); // PCM
  view.setUint16(22, 1, true); // mono
  view.setUint32(24, 8_000, true);
  view.setUint32(28, 8_000, true);
  view.setUint16(32, 1, true);
  view.setUint16(34, 8, true);
  ascii(36, "data");
  view.setUint32(40, samples, true);
  return bytes;
}

/** The message the page's voice note became, once the bridge's webhook took it. */
async function voicePosted(page: Page, sandbox: Sandbox): Promise<MessageRecord> {
  // The bubble shows "delivered" (or, once typing began, "read") after the webhook's 200.
  const handle = await page.waitForFunction(
    () => {
      const bubble = document.querySelector<HTMLElement>(".msg.mine:has(.voice)");
      return /^(delivered|read)/.test(bubble?.dataset.status ?? "") && bubble!.dataset.id;
    },
    { polling: 50 },
  );
  const messageSid = await handle.jsonValue() as string;
  return (await sandbox.kv.get<MessageRecord>(messageKey(messageSid))).value!;
}

/** The media the bridge would fetch: Basic auth at the stand-in, the redirect without it. */
function fetchAsBridge(sandbox: Sandbox, url: string) {
  return fetchTwilioMedia(url, {
    accountSid: sandbox.config.twilioAccountSid,
    authToken: sandbox.config.twilioAuthToken,
    apiBaseUrl: sandbox.config.twilioApiBaseUrl,
  });
}

Deno.test("Sandbox page - an audio file picked with 📎 is sent as a voice note and shown as a voice bubble", async () => {
  await using t = await setUp();
  const page = await t.open("+15550100051");
  const wav = silentWav();
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/question.wav`, wav);
    const input = await page.$("input#audio-file");
    await input!.uploadFile(`${dir}/question.wav`);
    const record = await voicePosted(page, t.sandbox);

    assert.equal(record.numMedia, 1);
    assert.equal(record.body, "");
    assert.equal(record.media?.[0].contentType, "audio/wav");
    const medium = await fetchAsBridge(t.sandbox, record.media![0].url);
    assert.deepEqual(medium.bytes, wav, "the stand-in serves exactly what the page sent");
    const { text } = await transcribe(medium, t.sandbox.config.transcription!);
    assert.equal(text, DEMO_TRANSCRIPT, "and the demo transcriber hears the demo question");

    await page.waitForSelector(".msg.mine .voice .play");
    // The duration comes from the file itself once the browser read its metadata.
    await page.waitForFunction(
      () => document.querySelector(".msg.mine .voice .duration")?.textContent === "0:01",
      { polling: 50 },
    );
    assert.equal(await page.$$eval(".msg.mine .voice .wave i", (bars) => bars.length), 28);
    // The bridge hears it too: what was understood comes back (and the answer after it, which
    // "a voice note is answered with what was understood, then the answer" checks).
    assert.match(await reply(page, DEMO_TRANSCRIPT), /🎤/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Sandbox page - a voice note recorded with the microphone is sent with its duration", async () => {
  // Chromium's fake microphone (a beep), allowed without a prompt.
  await using t = await setUp([
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
  ]);
  const page = await t.open("+15550100052");
  assert.equal(await page.$eval("#mic", (b) => (b as HTMLButtonElement).disabled), false);
  await page.click("#mic");
  await page.waitForSelector("body[data-recording=true]");
  // Wait until the recorder has something to send, however long that takes.
  await page.waitForFunction(
    () =>
      /Recording… 0:0[1-9]/.test((document.getElementById("text") as HTMLInputElement).placeholder),
    { polling: 50 },
  );
  await page.click("#mic");
  const record = await voicePosted(page, t.sandbox);

  const type = record.media![0].contentType;
  assert.match(type, /^audio\/(webm|ogg|mp4)$/, "what this browser's MediaRecorder makes");
  const medium = await fetchAsBridge(t.sandbox, record.media![0].url);
  assert.ok(medium.bytes.length > 100, `a real recording, ${medium.bytes.length} bytes`);
  assert.equal(medium.contentType, type);
  await page.waitForFunction(
    () =>
      /^0:0[1-9]$/.test(document.querySelector(".msg.mine .voice .duration")?.textContent ?? ""),
    { polling: 50 },
  );
  assert.equal(await page.$("body[data-recording]"), null, "the recorder stopped");
});

Deno.test("Sandbox page - a voice note is answered with what was understood, then the answer", async () => {
  await using t = await setUp();
  const page = await t.open("+15550100053");
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/question.wav`, silentWav());
    await (await page.$("input#audio-file"))!.uploadFile(`${dir}/question.wav`);
    const heard = await reply(page, DEMO_TRANSCRIPT);
    assert.match(heard, /🎤/);
    assert.match(heard, new RegExp(`<em>${DEMO_TRANSCRIPT.replace("?", "\\?")}</em>`));
    await reply(page, "Late orders last week");
    const texts = await textsOf(page, ".msg.theirs:not(.typing) .text");
    assert.ok(texts[0].includes(DEMO_TRANSCRIPT), "the transcript comes first");
    assert.match(texts[1], /Late orders last week/, "then the answer to it");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
