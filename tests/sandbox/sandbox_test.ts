/**
 * The sandbox over HTTP: its routes exist only in sandbox mode, its webhooks
 * go through the bridge's real signature check, delivery status comes back
 * through `/twilio/status`, and `--real-ayd` asks the configured AYD.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { type Delivery, deliveryKey } from "../../src/webhook/delivery.ts";
import type { Numbered } from "../../src/sandbox/hub.ts";
import { type Sandbox, startSandbox } from "../../src/sandbox/sandbox.ts";
import { phoneFromQuery } from "../../src/sandbox/page.ts";
import { taskCommand } from "../_process.ts";
import { API_KEY, CHAT_ID, postForm, startTestBridge, waitFor } from "../_helpers.ts";
import { startFakeAyd } from "../fakes/fake_ayd.ts";
import { startFakeStt } from "../fakes/fake_stt.ts";
import { messageKey, type MessageRecord } from "../../src/jobs/mod.ts";
import { DEMO_TRANSCRIPT } from "../../src/sandbox/demo_transcriber.ts";
import { transcribe } from "../../src/speech/mod.ts";
import { fetchTwilioMedia } from "../../src/whatsapp/mod.ts";

const TASK = fileURLToPath(new URL("../../tasks/sandbox.ts", import.meta.url));
const CONFIG = fileURLToPath(new URL("../../deno.json", import.meta.url));

/** `deno task sandbox` with `args`, in a clean environment, stdout piped. */
function sandboxTask(
  args: string[],
  options: { cwd?: string; stderr: "piped" | "null" },
): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--config", CONFIG, "--allow-net", "--allow-env", "--allow-read", "--allow-write"]
      .concat(TASK, args),
    cwd: options.cwd,
    clearEnv: true,
    env: {
      NO_COLOR: "1",
      DENO_DIR: Deno.env.get("DENO_DIR") ?? "",
      HOME: Deno.env.get("HOME") ?? "",
    },
    stdout: "piped",
    stderr: options.stderr,
  });
}

function send(sandbox: Sandbox, body: unknown, type = "application/json") {
  return fetch(`${new URL(sandbox.url).origin}/sandbox/send`, {
    method: "POST",
    headers: { "content-type": type },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

/** The events the chat page of `phone` would get, once `done` holds for them. */
async function chatOf(
  sandbox: Sandbox,
  phone: string,
  done: (events: Numbered[]) => boolean,
): Promise<Numbered[]> {
  const events: Numbered[] = [];
  const stop = sandbox.hub.subscribe(phone, 0, (event) => event && events.push(event));
  try {
    await waitFor(() => done(events), `the chat of ${phone}`);
    return events;
  } finally {
    stop();
  }
}

const replies = (events: Numbered[]) => events.filter((e) => e.kind === "reply");

Deno.test("Normal start - no sandbox route exists", async () => {
  await using t = await startTestBridge();
  for (
    const [method, path] of [
      ["GET", "/sandbox"],
      ["GET", "/sandbox/events?phone=%2B15550100001"],
      [
        "POST",
        "/sandbox/send",
      ],
      ["GET", "/sandbox/charts/revenue.svg"],
      ["POST", "/sandbox/voice?phone=%2B15550100001"],
      [
        "GET",
        `/sandbox/media/ME${"0".repeat(32)}`,
      ],
    ]
  ) {
    const response = await fetch(`${t.url}${path}`, {
      method,
      body: method === "POST" ? "{}" : undefined,
    });
    assert.equal(response.status, 404, `${method} ${path}`);
    await response.body?.cancel();
  }
});

Deno.test("Sandbox - serves the chat page and the demo chart", async () => {
  await using sandbox = await startSandbox({ port: 0 });
  const page = await fetch(sandbox.url);
  assert.equal(page.status, 200);
  assert.match(page.headers.get("content-type") ?? "", /^text\/html/);
  assert.match(await page.text(), /function renderWhatsApp\(text\)/);
  const chart = await fetch(`${new URL(sandbox.url).origin}/sandbox/charts/revenue.svg`);
  assert.equal(chart.headers.get("content-type"), "image/svg+xml; charset=utf-8");
  assert.match(await chart.text(), /^<svg /);
});

Deno.test("Sandbox - a message typed in the page goes through the real, signed /whatsapp and gets its answer", async () => {
  await using sandbox = await startSandbox({ port: 0, demoPaceMs: 1, deliveryDelayMs: 5 });
  const response = await send(sandbox, { phone: "+15550100031", text: "late orders" });
  assert.equal(response.status, 200);
  const { messageSid, webhookStatus } = await response.json();
  assert.equal(webhookStatus, 200);
  const events = await chatOf(sandbox, "+15550100031", (e) => replies(e).length > 0);
  assert.deepEqual(events[0], {
    ...events[0],
    kind: "inbound",
    id: messageSid,
    text: "late orders",
  });
  assert.match(
    replies(events)[0].kind === "reply" ? replies(events)[0].body : "",
    /1063\s+Initech/,
  );
});

Deno.test("Sandbox - a webhook without Twilio's signature is still refused", async () => {
  await using sandbox = await startSandbox({ port: 0, logLevel: "error" }); // the refusal is a warning
  const response = await postForm(new URL(sandbox.url).origin, {
    MessageSid: "SM" + "0".repeat(32),
    AccountSid: sandbox.config.twilioAccountSid,
    From: "whatsapp:+15550100032",
    Body: "late orders",
  });
  assert.equal(response.status, 403);
  await response.body?.cancel();
});

Deno.test("Sandbox - delivery status comes back through the bridge's /twilio/status", async () => {
  await using sandbox = await startSandbox({ port: 0, demoPaceMs: 1, deliveryDelayMs: 5 });
  await send(sandbox, { phone: "+15550100033", text: "hello" }).then((r) => r.body?.cancel());
  const delivered = (e: Numbered) => e.kind === "status" && e.status === "delivered";
  const events = await chatOf(sandbox, "+15550100033", (all) => {
    const reply = replies(all)[0];
    return reply !== undefined && all.some((e) => delivered(e) && e.id === reply.id);
  });
  const stored = await sandbox.kv.get<Delivery>(deliveryKey(replies(events)[0].id));
  assert.equal(stored.value?.status, "delivered", "the bridge verified and recorded it");
});

Deno.test("Sandbox - /sandbox/send refuses a bad number, an empty text and a form post", async () => {
  await using sandbox = await startSandbox({ port: 0 });
  const cases: [unknown, string, number][] = [
    [{ phone: "15550100001", text: "hi" }, "application/json", 400],
    [{ phone: "+15550100001", text: "  " }, "application/json", 400],
    ["phone=%2B15550100001&text=hi", "application/x-www-form-urlencoded", 415],
  ];
  for (const [body, type, status] of cases) {
    const response = await send(sandbox, body, type);
    assert.equal(response.status, status, JSON.stringify(body));
    await response.body?.cancel();
  }
});

Deno.test("Sandbox --real-ayd - asks the configured AYD and still captures the replies", async () => {
  await using ayd = await startFakeAyd({ apiKey: API_KEY, chatId: CHAT_ID });
  await using sandbox = await startSandbox({
    port: 0,
    deliveryDelayMs: 5,
    realAydEnv: {
      ASKYOURDATABASE_API_KEY: API_KEY,
      ASKYOURDATABASE_CHAT_ID: CHAT_ID,
      AYD_BASE_URL: ayd.url,
    },
  });
  assert.equal(sandbox.demoAyd, undefined);
  await send(sandbox, { phone: "+15550100034", text: "How many users?" }).then((r) =>
    r.body?.cancel()
  );
  const events = await chatOf(sandbox, "+15550100034", (e) => replies(e).length > 0);
  const reply = replies(events)[0];
  assert.equal(reply.kind === "reply" && reply.body, "Answer to: How many users?");
  assert.equal(ayd.sessions[0].email, "wa15550100034@example.com");
});

Deno.test("Sandbox task - --real-ayd without credentials lists what is missing", async () => {
  const empty = await Deno.makeTempDir(); // no .env there
  try {
    const output = await sandboxTask(["--real-ayd"], { cwd: empty, stderr: "piped" }).output();
    const stderr = new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 1);
    assert.match(stderr, /ASKYOURDATABASE_API_KEY is missing/);
    assert.match(stderr, /ASKYOURDATABASE_CHAT_ID is missing/);
    assert.doesNotMatch(stderr, /TWILIO_|\n\s+at /, "no Twilio variable is needed, no stack trace");
    assert.equal(new TextDecoder().decode(output.stdout), "");
  } finally {
    await Deno.remove(empty, { recursive: true });
  }
});

Deno.test("Sandbox task - prints exactly one URL, serves the page there and stops on SIGTERM", async () => {
  const child = sandboxTask(["--port", "0"], { stderr: "null" }).spawn();
  let stdout = "";
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  while (!stdout.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    stdout += value;
  }
  const url = stdout.split("\n")[0];
  assert.match(url, /^Sandbox ready: http:\/\/127\.0\.0\.1:\d+\/sandbox$/);
  const page = await fetch(url.slice("Sandbox ready: ".length));
  assert.equal(page.status, 200);
  await page.body?.cancel();
  child.kill("SIGTERM");
  for (let read = await reader.read(); !read.done; read = await reader.read()) stdout += read.value;
  assert.equal((await child.status).code, 0);
  assert.equal(stdout, `${url}\n`, "nothing but the URL line");
});

Deno.test("Sandbox - ADMIN_TOKEN opens the operator console there too, closed without it", async () => {
  const adminToken = "sandbox-admin-token-0123456789abcdef";
  {
    await using sandbox = await startSandbox({ port: 0, adminToken });
    const base = sandbox.url.replace(/\/sandbox$/, "");
    const home = await fetch(`${base}/admin`, { redirect: "manual" });
    await home.body?.cancel();
    assert.equal(home.status, 303);
    assert.match(home.headers.get("location") ?? "", /\/admin\/login/);
  }
  await using closed = await startSandbox({ port: 0 });
  const response = await fetch(closed.url.replace(/\/sandbox$/, "/admin"), { redirect: "manual" });
  await response.body?.cancel();
  assert.equal(response.status, 404);
});

Deno.test("Sandbox page - ?phone=+1555… keeps its plus, which a URL query turns into a space", () => {
  const fallback = "+15550100001";
  assert.equal(phoneFromQuery("?phone=+15550100002", fallback), "+15550100002");
  assert.equal(phoneFromQuery("?phone=%2B15550100002", fallback), "+15550100002");
  assert.equal(phoneFromQuery("?phone=15550100002", fallback), "+15550100002");
  assert.equal(phoneFromQuery("?phone=+0123", fallback), fallback);
  assert.equal(phoneFromQuery("?phone=abc", fallback), fallback);
  assert.equal(phoneFromQuery("", fallback), fallback);
});

/** Starts `command` (a {@linkcode taskCommand}); resolves with its first `lines` lines. */
async function startSandboxTask(command: Deno.Command, lines: number) {
  const child = command.spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).pipeThrough(lineSplitter())
    .getReader();
  const first: string[] = [];
  // A task that never prints them is stopped, so that the test fails instead of hanging.
  const watchdog = setTimeout(() => child.kill("SIGKILL"), 30_000);
  while (first.length < lines) {
    const { value, done } = await reader.read();
    if (done) break;
    first.push(value);
  }
  clearTimeout(watchdog);
  const stderr = new Response(child.stderr).text();
  return {
    first,
    /** The next line that matches `pattern`. */
    async lineMatching(pattern: RegExp): Promise<string> {
      const watchdog = setTimeout(() => child.kill("SIGKILL"), 30_000);
      try {
        for (let read = await reader.read(); !read.done; read = await reader.read()) {
          if (pattern.test(read.value)) return read.value;
        }
      } finally {
        clearTimeout(watchdog);
      }
      throw new Error(`no line matched ${pattern}: ${await stderr}`);
    },
    async [Symbol.asyncDispose]() {
      try {
        child.kill("SIGTERM");
      } catch { /* the watchdog stopped it */ }
      await reader.cancel();
      await child.status;
      await stderr;
    },
  };
}

function lineSplitter(): TransformStream<string, string> {
  let rest = "";
  return new TransformStream({
    transform(chunk, controller) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop()!;
      for (const part of parts) controller.enqueue(part);
    },
    flush(controller) {
      if (rest) controller.enqueue(rest);
    },
  });
}

Deno.test("Sandbox task - ADMIN_TOKEN in .env opens the operator console", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/.env`, "ADMIN_TOKEN=sandbox-admin-token-from-dotenv-0123\n");
    const command = taskCommand("sandbox", ["--port", "0"], { cwd: dir, env: {} });
    await using sandbox = await startSandboxTask(command, 2);
    assert.match(sandbox.first[0], /^Sandbox ready: http:\/\/127\.0\.0\.1:\d+\/sandbox$/);
    assert.match(sandbox.first[1], /^Operator console: http:\/\/127\.0\.0\.1:\d+\/admin$/);
    const console = await fetch(sandbox.first[1].slice("Operator console: ".length), {
      redirect: "manual",
    });
    await console.body?.cancel();
    assert.equal(console.status, 303, "the console asks to sign in");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Sandbox task --real-ayd - a wrong chatbot ID shows in the terminal in AYD's words", async () => {
  await using ayd = await startFakeAyd({ apiKey: API_KEY, chatId: CHAT_ID });
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/.env`,
      `ASKYOURDATABASE_API_KEY=${API_KEY}\nASKYOURDATABASE_CHAT_ID=not-${CHAT_ID}\n`,
    );
    const command = taskCommand("sandbox", ["--port", "0", "--real-ayd"], {
      cwd: dir,
      env: { AYD_BASE_URL: ayd.url },
    });
    await using sandbox = await startSandboxTask(command, 1);
    const origin = new URL(sandbox.first[0].slice("Sandbox ready: ".length)).origin;
    const sent = await fetch(`${origin}/sandbox/send`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ phone: "+15550100035", text: "How many users?" }),
    });
    await sent.body?.cancel();
    const line = JSON.parse(await sandbox.lineMatching(/"event":"ask\.finished"/));
    assert.equal(line.level, "warn");
    assert.equal(
      line.reason,
      "AydError: session answered 400: Chatbot not found (check ASKYOURDATABASE_CHAT_ID)",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------- voice notes

const VOICE_NOTE = new TextEncoder().encode("OggS\u0000\u0002 a voice note");

function sendVoice(sandbox: Sandbox, phone: string, body: Uint8Array, type = "audio/ogg") {
  return fetch(
    `${new URL(sandbox.url).origin}/sandbox/voice?phone=${
      encodeURIComponent(phone)
    }&durationMs=2300`,
    { method: "POST", headers: { "content-type": type }, body: body.slice() },
  );
}

Deno.test("Sandbox - a voice note is posted as Twilio posts one, its media kept by the Twilio stand-in", async () => {
  await using sandbox = await startSandbox({ port: 0, demoPaceMs: 1, deliveryDelayMs: 5 });
  const response = await sendVoice(sandbox, "+15550100041", VOICE_NOTE);
  assert.equal(response.status, 200);
  const { messageSid, webhookStatus } = await response.json();
  assert.equal(webhookStatus, 200);
  assert.match(messageSid, /^MM[0-9a-f]{32}$/);

  // What the bridge's real webhook stored: Twilio's media fields, read by toInboundMessage.
  const record = (await sandbox.kv.get<MessageRecord>(messageKey(messageSid))).value!;
  assert.equal(record.body, "");
  assert.equal(record.numMedia, 1);
  assert.equal(record.media?.length, 1);
  const [{ url, contentType }] = record.media!;
  assert.equal(contentType, "audio/ogg");
  assert.ok(url.startsWith(`${sandbox.config.twilioApiBaseUrl}/2010-04-01/Accounts/`), url);
  assert.match(url, new RegExp(`/Messages/${messageSid}/Media/ME[0-9a-f]{32}$`));

  // The chat shows it as a voice note the page can play.
  const events = await chatOf(sandbox, "+15550100041", (e) => replies(e).length > 0);
  const inbound = events[0];
  assert.equal(inbound.kind, "inbound");
  const voice = inbound.kind === "inbound" ? inbound.voice : undefined;
  assert.deepEqual(voice && { ...voice, src: "…" }, {
    src: "…",
    contentType: "audio/ogg",
    durationMs: 2300,
  });
  const playable = await fetch(`${new URL(sandbox.url).origin}${voice!.src}`);
  assert.equal(playable.headers.get("content-type"), "audio/ogg");
  assert.deepEqual(new Uint8Array(await playable.arrayBuffer()), VOICE_NOTE);
});

Deno.test("Sandbox - the stand-in serves media like Twilio: Basic auth, then a redirect to a host that takes no credentials", async () => {
  await using sandbox = await startSandbox({ port: 0, demoPaceMs: 1, deliveryDelayMs: 5 });
  const { messageSid } = await (await sendVoice(sandbox, "+15550100042", VOICE_NOTE)).json();
  const { media } = (await sandbox.kv.get<MessageRecord>(messageKey(messageSid))).value!;
  const url = media![0].url;
  const basic = `Basic ${
    btoa(`${sandbox.config.twilioAccountSid}:${sandbox.config.twilioAuthToken}`)
  }`;

  const anonymous = await fetch(url, { redirect: "manual" });
  assert.equal(anonymous.status, 401);
  await anonymous.body?.cancel();
  const redirect = await fetch(url, { headers: { authorization: basic }, redirect: "manual" });
  assert.equal(redirect.status, 307);
  await redirect.body?.cancel();
  const location = new URL(redirect.headers.get("location")!);
  assert.notEqual(location.origin, new URL(url).origin, "the media live on another host");
  const withCredentials = await fetch(location, { headers: { authorization: basic } });
  assert.equal(withCredentials.status, 400, "the media host refuses credentials");
  await withCredentials.body?.cancel();
  const unsigned = await fetch(`${location.origin}${location.pathname}`);
  assert.equal(unsigned.status, 403);
  await unsigned.body?.cancel();

  const fetched = await fetchTwilioMedia(url, {
    accountSid: sandbox.config.twilioAccountSid,
    authToken: sandbox.config.twilioAuthToken,
    apiBaseUrl: sandbox.config.twilioApiBaseUrl,
  });
  assert.deepEqual(fetched, { bytes: VOICE_NOTE, contentType: "audio/ogg" });
});

Deno.test("Sandbox - the demo transcriber speaks the transcription API the bridge is configured with", async () => {
  await using sandbox = await startSandbox({ port: 0 });
  const transcription = sandbox.config.transcription!;
  assert.equal(transcription.url, sandbox.demoTranscriber!.url);
  const { text } = await transcribe({ bytes: VOICE_NOTE, contentType: "audio/ogg" }, transcription);
  assert.equal(text, DEMO_TRANSCRIPT);
  assert.equal(sandbox.demoTranscriber!.transcribed, 1);
  const refused = await transcribe(
    { bytes: VOICE_NOTE, contentType: "audio/ogg" },
    { ...transcription, apiKey: "wrong" },
  ).catch((e) => e);
  assert.equal(refused.kind, "unauthorized");
});

Deno.test("Sandbox - /sandbox/voice refuses another type, a bad number, an empty and an oversize note", async () => {
  await using sandbox = await startSandbox({ port: 0 });
  const cases: [string, Uint8Array, string, number][] = [
    ["+15550100043", VOICE_NOTE, "application/json", 415],
    ["+15550100043", VOICE_NOTE, "application/x-www-form-urlencoded", 415],
    ["15550100043", VOICE_NOTE, "audio/ogg", 400],
    ["+15550100043", new Uint8Array(), "audio/ogg", 400],
    ["+15550100043", new Uint8Array(16 * 1024 * 1024 + 1), "audio/ogg", 413],
  ];
  for (const [phone, body, type, status] of cases) {
    const response = await sendVoice(sandbox, phone, body, type);
    assert.equal(response.status, status, `${phone} ${type} ${body.length}`);
    await response.body?.cancel();
  }
  const missing = await fetch(`${new URL(sandbox.url).origin}/sandbox/media/ME${"0".repeat(32)}`);
  assert.equal(missing.status, 404);
  await missing.body?.cancel();
});

Deno.test("Sandbox --real-transcriber - voice notes go to the configured service", async () => {
  await using stt = await startFakeStt({ apiKey: "sk-real", transcript: "real words" });
  await using sandbox = await startSandbox({
    port: 0,
    realTranscriberEnv: {
      TRANSCRIBE_URL: stt.url,
      TRANSCRIBE_API_KEY: "sk-real",
      TRANSCRIBE_LANGUAGE: "en",
    },
  });
  assert.equal(sandbox.demoTranscriber, undefined);
  assert.deepEqual(sandbox.config.transcription, {
    url: stt.url,
    apiKey: "sk-real",
    model: "whisper-1",
    language: "en",
    timeoutMs: 60_000,
  });
  const { text } = await transcribe(
    { bytes: VOICE_NOTE, contentType: "audio/ogg" },
    sandbox.config.transcription!,
  );
  assert.equal(text, "real words");
  assert.equal(stt.requests[0].language, "en");
});

Deno.test("Sandbox --real-transcriber - without TRANSCRIBE_URL it says what is missing", async () => {
  await assert.rejects(
    startSandbox({ port: 0, realTranscriberEnv: {} }),
    (error: Error) => /TRANSCRIBE_URL is missing/.test(error.message),
  );
  const empty = await Deno.makeTempDir();
  try {
    const output = await sandboxTask(["--real-transcriber"], { cwd: empty, stderr: "piped" })
      .output();
    const stderr = new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 1);
    assert.match(stderr, /--real-transcriber sends voice notes/);
    assert.match(stderr, /TRANSCRIBE_URL is missing/);
    assert.doesNotMatch(stderr, /ASKYOURDATABASE_|\n\s+at /, "the demo AYD still answers");
  } finally {
    await Deno.remove(empty, { recursive: true });
  }
});
