import assert from "node:assert/strict";
import { markdownToWhatsApp } from "../../src/whatsapp/markdown.ts";
import {
  createPartStream,
  formatAnswer,
  labelPart,
  MARKER_ROOM,
  splitMessage,
} from "../../src/whatsapp/format.ts";
import { words } from "../_helpers.ts";
import { ALL_ANSWERS, LONG_CODE, LONG_REPORT, MANY_ROWS } from "../fixtures/ayd_answers.ts";
import { countingLex } from "./_counting_lex.ts";

function assertParts(text: string, max: number): string[] {
  const parts = splitMessage(text, max);
  assert.equal(parts.join(""), text, "joining the parts gives back the text");
  for (const part of parts) assert.ok(part.length <= max, `part of ${part.length} > ${max}`);
  return parts;
}

Deno.test("split - a short answer is one part", () => {
  assert.deepEqual(splitMessage("Hello", 1600), ["Hello"]);
  assert.deepEqual(splitMessage("", 1600), []);
});

Deno.test("split - prefers paragraph, then line, then word boundaries", () => {
  const para = "a".repeat(30) + "\n\n" + "b".repeat(30);
  assert.deepEqual(assertParts(para, 40), ["a".repeat(30) + "\n\n", "b".repeat(30)]);
  const lines = "a".repeat(20) + "\n" + "b".repeat(15) + " " + "c".repeat(10);
  assert.deepEqual(assertParts(lines, 40), [
    "a".repeat(20) + "\n",
    "b".repeat(15) + " " + "c".repeat(10),
  ]);
  const words = "alpha beta gamma delta epsilon";
  assert.deepEqual(assertParts(words, 12), ["alpha beta ", "gamma delta ", "epsilon"]);
});

Deno.test("split - a boundary too early is passed over for a later one", () => {
  const text = "Hi\n\n" + "word ".repeat(20);
  const parts = assertParts(text, 50);
  assert.ok(parts[0].length > 40, "the first part is not a two-letter stub");
});

Deno.test("split - never cuts a surrogate pair or a grapheme cluster", () => {
  const emoji = "🚀".repeat(10);
  for (const part of assertParts(emoji, 5)) assert.equal(part.length % 2, 0);
  const flags = "🇩🇪🇫🇷🇮🇹🇪🇸";
  for (const part of assertParts(flags, 6)) assert.equal(part.length % 4, 0);
  const family = "👨‍👩‍👧‍👦".repeat(3);
  assert.deepEqual(assertParts(family, 12), ["👨‍👩‍👧‍👦", "👨‍👩‍👧‍👦", "👨‍👩‍👧‍👦"]);
  const combining = "e\u0301".repeat(9);
  for (const part of assertParts(combining, 5)) assert.equal(part.length % 2, 0);
});

Deno.test("split - a long answer fits Twilio's limit and loses nothing", () => {
  const sentence = "Order 1042 shipped 3 days late from the Berlin warehouse. ";
  const text = Array.from({ length: 12 }, (_, i) => `Region ${i}:\n` + sentence.repeat(8))
    .join("\n\n");
  assert.ok(text.length > 5000);
  const parts = assertParts(text, 1600);
  assert.ok(parts.length >= 4);
  for (const part of parts.slice(0, -1)) assert.match(part, /\n\n$/);
});

Deno.test("split - whitespace at the end stays with the last part", () => {
  assert.deepEqual(assertParts("abcd efgh  ", 6), ["abcd ", "efgh  "]);
});

const fenceLines = (part: string) => part.split("\n").filter((line) => line === "```").length;

Deno.test("split - a code block longer than a part is closed and reopened", () => {
  const parts = formatAnswer(LONG_CODE, 1600);
  assert.ok(parts.length >= 3);
  for (const part of parts) {
    assert.ok(part.length <= 1600);
    assert.equal(fenceLines(part) % 2, 0, `unbalanced fences in ${JSON.stringify(part)}`);
  }
  assert.match(parts[1], /^```\nSELECT \d+/);
  const code = parts.join("\n").split("\n").filter((line) => line.startsWith("SELECT"));
  assert.equal(code.length, 80, "every line of the query, once");
});

Deno.test("split - a card is never cut between parts", () => {
  const parts = formatAnswer(MANY_ROWS, 1600);
  assert.ok(parts.length >= 3);
  for (const part of parts) {
    assert.ok(part.length <= 1600);
    const cards = part.trim().split("\n\n");
    for (const card of cards) {
      assert.match(card, /^\*order_id:\* \d+\n.*\n.*\n.*\n\*delay_reason:\* .+$/, card);
    }
  }
});

Deno.test("split - a narrow table that fits moves whole to the next part", () => {
  const table = "| month | orders |\n|---|--:|\n" +
    Array.from({ length: 8 }, (_, i) => `| 2026-0${i + 1} | ${100 + i} |`).join("\n");
  const parts = formatAnswer("Intro sentence. ".repeat(6) + "\n\n" + table, 200);
  assert.equal(parts.length, 2);
  assert.match(parts[1], /^```\nmonth/);
  assert.match(parts[1], /```$/);
});

Deno.test("split - every real answer fits any limit and loses no word", () => {
  for (const [name, answer] of Object.entries(ALL_ANSWERS)) {
    const text = markdownToWhatsApp(answer);
    for (const max of [160, 500, 1600]) {
      const parts = formatAnswer(answer, max);
      for (const part of parts) assert.ok(part.length <= max, `${name}/${max}: ${part.length}`);
      const sent = parts.join("\n").split("\n").filter((line) => line !== "```").join("\n");
      const written = text.split("\n").filter((line) => line !== "```").join("\n");
      assert.deepEqual(words(sent), words(written), `${name}/${max}`);
    }
  }
});

Deno.test("split - streamed parts are the parts of the whole answer", () => {
  for (const [name, answer] of Object.entries(ALL_ANSWERS)) {
    const whole = formatAnswer(answer, 500);
    for (const size of [1, 7, 50, 400]) {
      const stream = createPartStream(500);
      const parts: string[] = [];
      for (let i = 0; i < answer.length; i += size) {
        parts.push(...stream.push(answer.slice(i, i + size)));
      }
      parts.push(...stream.end());
      assert.deepEqual(parts, whole, `${name} in chunks of ${size}`);
    }
  }
});

Deno.test("split - a part goes out once the next one has begun", () => {
  const stream = createPartStream(1600);
  const paragraphs = LONG_REPORT.split("\n\n");
  const firstPartAt = paragraphs.findIndex((_, i) =>
    paragraphs.slice(0, i + 1).join("\n\n").length > 1600
  );
  const early: string[] = [];
  paragraphs.forEach((paragraph, i) => early.push(...stream.push((i ? "\n\n" : "") + paragraph)));
  assert.ok(firstPartAt > 0);
  assert.equal(early.length, 1, "part 1 is final while the answer is still streaming");
  const rest = stream.end();
  assert.deepEqual([...early, ...rest], formatAnswer(LONG_REPORT, 1600));
});

Deno.test("markers - none, count and total", () => {
  assert.equal(labelPart("text\n\n", 0, 3, "none"), "text");
  assert.equal(labelPart("text\n\n", 0, undefined, "count"), "text\n(1)");
  assert.equal(labelPart("text", 1, 3, "count"), "text\n(2)");
  assert.equal(labelPart("text", 2, 3, "count"), "text\n(3/3)");
  assert.equal(labelPart("text", 0, 3, "total"), "text\n(1/3)");
  assert.equal(labelPart("only part", 0, 1, "total"), "only part");
  assert.ok(labelPart("x".repeat(1592), 19, 20, "total").length <= 1592 + MARKER_ROOM);
});

Deno.test("split - past maxParts the part stream gives out one part more, then reads nothing", () => {
  const answer = Array.from({ length: 200 }, (_, i) => `Paragraph ${i}: late orders by region.`)
    .join("\n\n");
  const whole = formatAnswer(answer, 100);
  assert.ok(whole.length > 10);
  const counted = countingLex();
  const stream = createPartStream(100, undefined, { maxParts: 3, lex: counted.lex });
  const parts: string[] = [];
  let i = 0;
  for (; i < answer.length && parts.length <= 3; i += 10) {
    parts.push(...stream.push(answer.slice(i, i + 10)));
  }
  assert.deepEqual(parts, whole.slice(0, 4), "the parts of the whole answer, and one to spare");
  const lexed = counted.chars;
  for (; i < answer.length; i += 10) assert.deepEqual(stream.push(answer.slice(i, i + 10)), []);
  assert.deepEqual(stream.end(), []);
  assert.equal(counted.chars, lexed, "nothing lexed once the parts are enough");
});

Deno.test("split - an answer within maxParts streams whole", () => {
  for (const [name, answer] of Object.entries(ALL_ANSWERS)) {
    const whole = formatAnswer(answer, 500);
    const stream = createPartStream(500, undefined, { maxParts: whole.length });
    const parts: string[] = [];
    for (let i = 0; i < answer.length; i += 7) parts.push(...stream.push(answer.slice(i, i + 7)));
    parts.push(...stream.end());
    assert.deepEqual(parts, whole, name);
  }
});
