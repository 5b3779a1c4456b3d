import assert from "node:assert/strict";
import { splitMessage } from "../src/whatsapp_format.ts";

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
