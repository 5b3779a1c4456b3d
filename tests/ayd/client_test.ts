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
