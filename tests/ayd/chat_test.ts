/** The chat-mode client and chat store, against the fake AYD over real HTTP and a test KV. */
import assert from "node:assert/strict";
import {
  askAydChat,
  type Asker,
  AydError,
  chatKey,
  createAydChat,
  createChatStore,
  readAydMessages,
} from "../../src/ayd/mod.ts";
import { startFakeAyd } from "../fakes/fake_ayd.ts";
import { openTestKv } from "../_kv.ts";

const OPTIONS = { apiKey: "ayd-key", chatId: "bot" };
const PHONE = "+15551234567";

Deno.test("chat client - newChat, a Bearer ask with chatid and properties, and the history, as documented", async () => {
  await using ayd = await startFakeAyd(OPTIONS);
  const options = { ...OPTIONS, baseUrl: ayd.url };
  const chatid = await createAydChat(options);
  assert.deepEqual(ayd.chats, [chatid]);
  const answer = await askAydChat(options, { chatid, properties: { region: "north" } }, "late?");
  assert.equal(answer.text, "Answer to: late?");
  assert.deepEqual(
    ayd.asks.map(({ token, apiKey, chatid, properties, query, botid }) => ({
      token,
      apiKey,
      chatid,
      properties,
      query,
      botid,
    })),
    [{ token: "", apiKey: true, chatid, properties: { region: "north" }, query: "", botid: "bot" }],
  );
  const [newest, first] = await readAydMessages(options, chatid);
  assert.deepEqual([newest.role, newest.content, first.role, first.content], [
    "assistant",
    "Answer to: late?",
    "user",
    "late?",
  ]);
  assert.deepEqual(await readAydMessages(options, chatid, { before: first.createdat }), []);
  assert.deepEqual(ayd.requests, [
    "POST /api/chatbot/newChat",
    "POST /api/ask",
    "GET /api/chatbot/messages",
    "GET /api/chatbot/messages",
  ]);
});

Deno.test("chat client - a refused key is unauthorized, an unknown chatbot or chat a 404", async () => {
  await using ayd = await startFakeAyd(OPTIONS);
  const refused = { ...OPTIONS, apiKey: "wrong", baseUrl: ayd.url };
  await assert.rejects(
    createAydChat(refused),
    (e) => e instanceof AydError && e.kind === "unauthorized",
  );
  const unknownBot = { ...OPTIONS, chatId: "other", baseUrl: ayd.url };
  await assert.rejects(createAydChat(unknownBot), (e) => e instanceof AydError && e.status === 404);
  const options = { ...OPTIONS, baseUrl: ayd.url };
  const chatid = await createAydChat(options);
  ayd.forgetChat(chatid);
  await assert.rejects(
    askAydChat(options, { chatid }, "q"),
    (e) => e instanceof AydError && e.kind === "http" && e.status === 404,
  );
  ayd.failHistory(500);
  await assert.rejects(
    readAydMessages(options, chatid),
    (e) => e instanceof AydError && e.status === 500,
  );
});

Deno.test("chat client - a history page that is not a list of messages is a protocol error", async () => {
  const fake = (body: unknown) => () => Promise.resolve(Response.json(body));
  const options = (body: unknown) => ({
    ...OPTIONS,
    baseUrl: "http://ayd.test",
    fetch: fake(body),
  });
  for (
    const body of [{ messages: [] }, [{ role: "user", content: "q" }], [{
      id: 1,
      role: "user",
      createdat: "yesterday",
    }]]
  ) {
    await assert.rejects(
      readAydMessages(options(body), "c"),
      (e) => e instanceof AydError && e.kind === "protocol",
      JSON.stringify(body),
    );
  }
  const [m] = await readAydMessages(
    options([{ id: 7, role: "assistant", content: null, createdat: "2024-01-15T10:30:15.000Z" }]),
    "c",
  );
  assert.deepEqual(m, {
    id: "7",
    role: "assistant",
    content: null,
    createdat: "2024-01-15T10:30:15.000Z",
    issql: false,
  });
});

/** An opener of numbered chats. */
function counter() {
  let opened = 0;
  return {
    get opened() {
      return opened;
    },
    open: async () => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      return `chat-${++opened}`;
    },
  };
}

const ada: Asker = { identity: { name: "Ada", email: "ada@example.com" }, fingerprint: "f-ada" };

Deno.test("chats - created once and reused, without expiry; a new identity gets a new chat", async () => {
  using kv = await openTestKv();
  const opener = counter();
  const store = createChatStore(kv, { open: opener.open, now: () => 1_000 });
  const first = await store.getOrCreate(PHONE);
  assert.deepEqual(first, { chatid: "chat-1", createdAt: 1_000, created: true });
  assert.deepEqual(await store.getOrCreate(PHONE), { ...first, created: false });
  assert.deepEqual((await kv.get(chatKey(PHONE))).value, { chatid: "chat-1", createdAt: 1_000 });
  assert.deepEqual(await Array.fromAsync(kv.list({ prefix: ["expiry"] })), [], "no expiry index");
  const asAda = await store.getOrCreate(PHONE, undefined, ada);
  assert.equal(asAda.chatid, "chat-2");
  assert.equal((await store.getOrCreate(PHONE, undefined, ada)).chatid, "chat-2");
  assert.equal(opener.opened, 2);
});

Deno.test("chats - concurrent first questions and racing processes end with one chat", async () => {
  using kv = await openTestKv();
  const opener = counter();
  const a = createChatStore(kv, { open: opener.open });
  const b = createChatStore(kv, { open: opener.open });
  const chats = await Promise.all([
    a.getOrCreate(PHONE),
    a.getOrCreate(PHONE),
    b.getOrCreate(PHONE),
  ]);
  const stored = (await kv.get<{ chatid: string }>(chatKey(PHONE))).value!;
  assert.deepEqual(new Set(chats.map((c) => c.chatid)), new Set([stored.chatid]));
});

Deno.test("chats - a chat AYD forgot is replaced once, however many jobs saw it go", async () => {
  using kv = await openTestKv();
  const opener = counter();
  const store = createChatStore(kv, { open: opener.open });
  const { chatid } = await store.getOrCreate(PHONE);
  const [r1, r2] = await Promise.all([store.replace(PHONE, chatid), store.replace(PHONE, chatid)]);
  assert.equal(r1.chatid, "chat-2");
  assert.equal(r2.chatid, "chat-2");
  assert.equal((await store.replace(PHONE, chatid)).chatid, "chat-2");
  await store.drop(PHONE);
  assert.equal((await kv.get(chatKey(PHONE))).value, null);
  assert.equal(opener.opened, 2);
});
