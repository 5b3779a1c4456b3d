/** The AYD client against the fake AYD over real HTTP. */
import assert from "node:assert/strict";
import { askAyd, AydError, createAydSession } from "../../src/ayd/client.ts";
import { startFakeAyd } from "../fakes/fake_ayd.ts";

const OPTIONS = { apiKey: "ayd-key", chatId: "bot" };

Deno.test("ayd client - data: [DONE] ends the answer even when the connection stays open", async () => {
  await using ayd = await startFakeAyd(OPTIONS);
  ayd.onAsk(() => ({
    kind: "answer",
    text: "Three orders shipped late.",
    done: true,
    holdOpen: true,
  }));
  const options = { ...OPTIONS, baseUrl: ayd.url };
  const { token } = await createAydSession(options, "+15551234567", { now: Date.now() });
  // Before [DONE] ended the answer, this waited for the connection until the deadline.
  const answer = await askAyd(options, token, "late orders?", AbortSignal.timeout(10_000));
  assert.equal(answer.text, "Three orders shipped late.");
});

Deno.test("ayd client - a stream that hangs without [DONE] ends at the deadline as a timeout", async () => {
  await using ayd = await startFakeAyd(OPTIONS);
  ayd.onAsk(() => ({ kind: "answer", text: "Never finished.", holdOpen: true }));
  const options = { ...OPTIONS, baseUrl: ayd.url };
  const { token } = await createAydSession(options, "+15551234567", { now: Date.now() });
  const controller = new AbortController();
  const deltas: string[] = [];
  const asking = askAyd(options, token, "q", controller.signal, (delta) => {
    deltas.push(delta);
    if (deltas.join("") === "Never finished.") controller.abort();
  });
  await assert.rejects(asking, (error) => error instanceof AydError && error.kind === "timeout");
});

Deno.test("ayd client - an error answer carries AYD's own words and the setting to check", async () => {
  await using ayd = await startFakeAyd(OPTIONS);
  const wrongBot = { ...OPTIONS, chatId: "no-such-bot", baseUrl: ayd.url };
  await assert.rejects(
    createAydSession(wrongBot, "+15551234567", { now: Date.now() }),
    (error) =>
      error instanceof AydError && error.status === 400 &&
      error.message === "session answered 400: Chatbot not found (check ASKYOURDATABASE_CHAT_ID)",
  );
  const wrongKey = { ...OPTIONS, apiKey: "not-the-key", baseUrl: ayd.url };
  await assert.rejects(
    createAydSession(wrongKey, "+15551234567", { now: Date.now() }),
    { message: "session answered 401: Unauthorized (check ASKYOURDATABASE_API_KEY)" },
  );

  const options = { ...OPTIONS, baseUrl: ayd.url };
  const { token } = await createAydSession(options, "+15551234567", { now: Date.now() });
  ayd.onAsk(() => ({ kind: "status", status: 503, body: '{"error":"Upstream busy"}' }));
  await assert.rejects(askAyd(options, token, "q"), { message: "ask answered 503: Upstream busy" });
  ayd.onAsk(() => ({
    kind: "status",
    status: 502,
    body: "<html><body><h1>502 Bad Gateway</h1></body></html>",
    headers: { "content-type": "text/html" },
  }));
  await assert.rejects(askAyd(options, token, "q"), { message: "ask answered 502" });
});

Deno.test("ayd client - an error text never carries the API key or the user's number, and is cut short", async () => {
  // An AYD that repeats what it was sent, as a careless error handler might.
  await using server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (req) => {
      const body = await req.text();
      const said = `bad request from ${req.headers.get("authorization")}: ${body} ${
        "x".repeat(300)
      }`;
      return Response.json({ error: said }, { status: 400 });
    },
  );
  const options = {
    ...OPTIONS,
    apiKey: "secret-key-0123",
    baseUrl: `http://127.0.0.1:${server.addr.port}`,
  };
  const error = await createAydSession(options, "+15551234567", { now: Date.now() }).then(
    () => assert.fail("the session was refused"),
    (e: AydError) => e,
  );
  assert.match(error.message, /^session answered 400: bad request from Bearer …: /);
  assert.doesNotMatch(error.message, /secret-key-0123|15551234567/);
  assert.match(error.message, /\+\*{7}4567/, "the number masked, as in every log line");
  assert.ok(error.message.length < 250, `${error.message.length} characters`);
});

Deno.test("ayd client - a session is opened as the person given, properties only when they have some", async () => {
  await using ayd = await startFakeAyd(OPTIONS);
  const options = { ...OPTIONS, baseUrl: ayd.url };
  const identity = {
    name: "Ada Lovelace",
    email: "ada@example.com",
    properties: { region: "north" },
  };
  await createAydSession(options, "+15551234567", { now: Date.now(), identity });
  await createAydSession(options, "+15551234567", {
    now: Date.now(),
    identity: { name: "Ada Lovelace", email: "ada@example.com" },
  });
  await createAydSession(options, "+15557654321", { now: Date.now() });
  assert.deepEqual(
    ayd.sessions.map(({ name, email, properties }) => ({ name, email, properties })),
    [
      { ...identity },
      { name: "Ada Lovelace", email: "ada@example.com", properties: undefined },
      {
        name: "WhatsApp User +15557654321",
        email: "wa15557654321@example.com",
        properties: undefined,
      },
    ],
  );
  assert.ok(!("properties" in ayd.sessions[1]), "no properties field was sent");
});
