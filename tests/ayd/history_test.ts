/**
 * Finding an interrupted question's answer in a chat's history: by its place
 * after the anchor, over pages of 20 read with `timestamp`, as AYD serves them.
 */
import assert from "node:assert/strict";
import { type AydMessage, findRecordedAnswer, HISTORY_PAGE_SIZE } from "../../src/ayd/mod.ts";

const CHAT = "chat_1";
let ids = 0;

/** A chat's messages, oldest first, one millisecond apart unless told otherwise. */
function chat(...messages: [role: "user" | "assistant", content: string, at?: number][]) {
  const start = Date.UTC(2026, 0, 15, 10, 0, 0);
  return messages.map(([role, content, at], i): AydMessage => ({
    id: `m${++ids}`,
    role,
    content,
    createdat: new Date(at ?? start + i).toISOString(),
    issql: false,
  }));
}

/** Serves `messages` as AYD's messages endpoint does; counts the pages read. */
function served(messages: AydMessage[]) {
  const reader = {
    pages: 0,
    read: (before?: string) => {
      reader.pages++;
      const limit = before === undefined ? Infinity : Date.parse(before);
      return Promise.resolve(
        messages.filter((m) => Date.parse(m.createdat) < limit)
          .sort((a, b) => Date.parse(b.createdat) - Date.parse(a.createdat))
          .slice(0, HISTORY_PAGE_SIZE),
      );
    },
  };
  return reader;
}

const noise = (pairs: number) =>
  Array.from({ length: pairs }, (_, i) =>
    [
      ["user", `other question ${i}`],
      ["assistant", `other answer ${i}`],
    ] as [("user" | "assistant"), string][]).flat();

Deno.test("history - the newest assistant message after the question, past the anchor, is its answer", async () => {
  const messages = chat(["user", "q0"], ["assistant", "a0"], ["user", "late?"], [
    "assistant",
    "12",
  ]);
  const found = await findRecordedAnswer(
    served(messages).read,
    { chatid: CHAT, anchor: messages[1].id },
    "late?",
  );
  assert.deepEqual(found, { kind: "answered", content: "12", messageId: messages[3].id });
});

Deno.test("history - the same question asked twice on purpose never gets the first asking's answer", async () => {
  // Asked and answered at 10:00; asked again, interrupted before it reached AYD.
  const messages = chat(["user", "sales today?"], ["assistant", "100 EUR (at 10:00)"]);
  const anchor = messages[1].id;
  const found = await findRecordedAnswer(
    served(messages).read,
    { chatid: CHAT, anchor },
    "sales today?",
  );
  assert.deepEqual(found, { kind: "not_asked" });
  // Once the second asking reached AYD and was answered, that answer is found.
  messages.push(
    ...chat(["user", "sales today?", Date.now()], ["assistant", "140 EUR", Date.now() + 1]),
  );
  const again = await findRecordedAnswer(
    served(messages).read,
    { chatid: CHAT, anchor },
    "sales today?",
  );
  assert.deepEqual(again, { kind: "answered", content: "140 EUR", messageId: messages[3].id });
});

Deno.test("history - a history that ends with the question is unanswered", async () => {
  const messages = chat(["user", "q0"], ["assistant", "a0"], ["user", "late?"]);
  const found = await findRecordedAnswer(served(messages).read, {
    chatid: CHAT,
    anchor: messages[1].id,
  }, "late?");
  assert.deepEqual(found, { kind: "unanswered" });
});

Deno.test("history - an empty chat (and an empty one after the anchor) holds no question", async () => {
  assert.deepEqual(
    await findRecordedAnswer(served([]).read, { chatid: CHAT, anchor: null }, "late?"),
    { kind: "not_asked" },
  );
  const messages = chat(["user", "q0"], ["assistant", "a0"]);
  assert.deepEqual(
    await findRecordedAnswer(
      served(messages).read,
      { chatid: CHAT, anchor: messages[1].id },
      "late?",
    ),
    { kind: "not_asked" },
  );
});

Deno.test("history - a question far back is found over pages of 20, back to the anchor", async () => {
  // The anchor, the question, 45 messages, then the answer: four pages.
  const messages = chat(["user", "q0"], ["assistant", "a0"], ["user", "late?"], ...noise(22), [
    "assistant",
    "12 late",
  ]);
  const reader = served(messages);
  const found = await findRecordedAnswer(
    reader.read,
    { chatid: CHAT, anchor: messages[1].id },
    "late?",
  );
  assert.deepEqual(found, { kind: "answered", content: "12 late", messageId: messages.at(-1)!.id });
  assert.ok(reader.pages >= 3, `${reader.pages} pages read`);
});

Deno.test("history - messages sharing a millisecond across a page's edge are not skipped", async () => {
  // Ten messages in one millisecond, the question among them; fifteen newer
  // ones push half of the ten onto the second page. Paging strictly before
  // the first page's oldest time would skip the question.
  const at = Date.UTC(2026, 0, 15, 11, 0, 0);
  const messages = chat(
    ["user", "q0", at - 10],
    ["assistant", "a0", at - 9],
    ...Array.from({ length: 10 }, (_, i): ["user" | "assistant", string, number] => [
      i === 7 ? "user" : "assistant",
      i === 7 ? "late?" : `part ${i}`,
      at,
    ]),
    ...noise(7).map(([role, content], i): ["user" | "assistant", string, number] => [
      role,
      content,
      at + 1 + i,
    ]),
    ["assistant", "12 late", at + 20],
  );
  const reader = served(messages);
  const found = await findRecordedAnswer(
    reader.read,
    { chatid: CHAT, anchor: messages[1].id },
    "late?",
  );
  assert.deepEqual(found, { kind: "answered", content: "12 late", messageId: messages.at(-1)!.id });
  assert.equal(reader.pages, 2);
});

Deno.test("history - an anchor the history does not reach, or a chat too long to page, is unknown", async () => {
  const messages = chat(["user", "late?"], ["assistant", "12"]);
  const gone = await findRecordedAnswer(served(messages).read, {
    chatid: CHAT,
    anchor: "m-deleted",
  }, "late?");
  assert.equal(gone.kind, "unknown");
  const long = chat(...noise(110), ["user", "late?"], ["assistant", "12"]);
  const tooFar = await findRecordedAnswer(
    served(long).read,
    { chatid: CHAT, anchor: null },
    "late?",
  );
  assert.equal(tooFar.kind, "unknown");
});

Deno.test("history - SQL and empty assistant messages are not an answer", async () => {
  const messages = chat(["user", "q0"], ["assistant", "a0"], ["user", "late?"], ["assistant", ""]);
  messages.push({ ...chat(["assistant", "SELECT 1"])[0], issql: true });
  const found = await findRecordedAnswer(served(messages).read, {
    chatid: CHAT,
    anchor: messages[1].id,
  }, "late?");
  assert.deepEqual(found, { kind: "unanswered" });
});

Deno.test("history - a read that fails is the caller's to handle", async () => {
  await assert.rejects(
    findRecordedAnswer(
      () => Promise.reject(new Error("AYD down")),
      { chatid: CHAT, anchor: null },
      "q",
    ),
    /AYD down/,
  );
});
