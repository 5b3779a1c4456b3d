/**
 * Property tests: random Markdown answers, random limits, random network
 * chunking. Seeded, so a failure names the seed that reproduces it.
 */
import assert from "node:assert/strict";
import { markdownToWhatsApp } from "../../src/whatsapp/markdown.ts";
import { createPartStream, formatAnswer } from "../../src/whatsapp/format.ts";
import { seeded } from "../_random.ts";

const WORDS = [
  "orders",
  "late",
  "1,204",
  "€1.234,50",
  "customer_id",
  "ship_date_utc",
  "total_amount_usd",
  "北京",
  "上海",
  "مبيعات",
  "बिक्री",
  "café",
  "naïve",
  "🚀",
  "🇩🇪",
  "👨‍👩‍👧‍👦",
  "e\u0301",
  "Q3",
  "-0.5%",
  "1e6",
  "x".repeat(70),
];

/** A random answer, and the words a reader must find in the result. */
function randomAnswer(next: () => number): { markdown: string; words: string[] } {
  const pick = <T>(list: T[]) => list[Math.floor(next() * list.length)];
  const used: string[] = [];
  const word = () => {
    const w = pick(WORDS);
    used.push(w);
    return w;
  };
  const sentence = () => {
    const n = 3 + Math.floor(next() * 25);
    return Array.from({ length: n }, () => {
      const w = word();
      const style = next();
      return style < 0.1 ? `**${w}**` : style < 0.15 ? `\`${w}\`` : w;
    }).join(" ") + ".";
  };
  const blocks: string[] = [];
  const count = 1 + Math.floor(next() * 30);
  for (let i = 0; i < count; i++) {
    const kind = next();
    if (kind < 0.35) {
      blocks.push(Array.from({ length: 1 + Math.floor(next() * 4) }, sentence).join(" "));
    } else if (kind < 0.45) blocks.push(`## ${word()} ${word()}`);
    else if (kind < 0.6) {
      blocks.push(
        Array.from(
          { length: 1 + Math.floor(next() * 6) },
          (_, j) => (next() < 0.3 ? "   - " : j % 2 ? "- " : "1. ") + sentence(),
        ).join("\n"),
      );
    } else if (kind < 0.8) {
      const columns = 2 + Math.floor(next() * 6);
      const header = Array.from({ length: columns }, word);
      const rows = Array.from(
        { length: 1 + Math.floor(next() * 25) },
        () => `| ${Array.from({ length: columns }, word).join(" | ")} |`,
      );
      blocks.push(`| ${header.join(" | ")} |\n|${"---|".repeat(columns)}\n${rows.join("\n")}`);
    } else if (kind < 0.9) {
      const lines = Array.from(
        { length: 1 + Math.floor(next() * 60) },
        () => `SELECT ${word()} FROM t;`,
      );
      blocks.push("```sql\n" + lines.join("\n") + "\n```");
    } else blocks.push("> " + sentence());
  }
  return { markdown: blocks.join("\n\n"), words: used };
}

const squash = (text: string) => text.replaceAll("```", "").replace(/\s+/g, "");

Deno.test("property - parts fit, lose nothing, and stream as they split whole", () => {
  for (let seed = 1; seed <= 200; seed++) {
    const next = seeded(seed);
    const { markdown, words } = randomAnswer(next);
    const max = 40 + Math.floor(next() * 1561);
    const text = markdownToWhatsApp(markdown);
    const parts = formatAnswer(markdown, max);
    const context = `seed ${seed}, max ${max}`;
    for (const part of parts) assert.ok(part.length <= max, `${context}: part of ${part.length}`);
    assert.equal(squash(parts.join("")), squash(text), `${context}: text lost or added`);
    const shown = squash(parts.join(""));
    for (const w of words) assert.ok(shown.includes(squash(w)), `${context}: ${w} is missing`);

    const stream = createPartStream(max);
    const streamed: string[] = [];
    for (let i = 0; i < markdown.length;) {
      const size = 1 + Math.floor(next() * 120);
      streamed.push(...stream.push(markdown.slice(i, i + size)));
      i += size;
    }
    streamed.push(...stream.end());
    assert.deepEqual(streamed, parts, `${context}: streamed parts differ`);
  }
});

/** Markdown-ish debris: every construct marked knows, mixed without sense. */
const DEBRIS = [
  "*",
  "**",
  "_",
  "__",
  "~~",
  "`",
  "```",
  "\n",
  "\n\n",
  "|",
  "| a | b |\n|---|---|\n",
  "- ",
  "1. ",
  "   ",
  "> ",
  "#",
  "## ",
  "<b>",
  "</b>",
  "<!--",
  "-->",
  "[x](y)",
  "![a](b)",
  "&amp;",
  "&#0;",
  "&#x110000;",
  "\r",
  "\r\n",
  "🇩🇪",
  "\u200d",
  "e\u0301",
  "北",
  "\\",
  "---",
  "===",
  "    code",
  "- [ ] ",
  "<br>",
  "<script>",
  "\t",
  "x".repeat(50),
  " ",
  "word",
];

Deno.test("property - hostile Markdown never throws, fits, and streams as it splits whole", () => {
  for (let seed = 1; seed <= 400; seed++) {
    const next = seeded(seed);
    const length = Math.floor(next() * 200);
    let markdown = "";
    for (let i = 0; i < length; i++) markdown += DEBRIS[Math.floor(next() * DEBRIS.length)];
    const max = 40 + Math.floor(next() * 300);
    const parts = formatAnswer(markdown, max);
    for (const part of parts) {
      assert.ok(part.length <= max, `seed ${seed}: ${part.length} > ${max}`);
    }
    let fellBack = false;
    const stream = createPartStream(max, () => fellBack = true);
    const streamed: string[] = [];
    for (let i = 0; i < markdown.length;) {
      const size = 1 + Math.floor(next() * 30);
      streamed.push(...stream.push(markdown.slice(i, i + size)));
      i += size;
    }
    streamed.push(...stream.end());
    // After a parser failure the stream keeps what it had formatted; the
    // one-shot result is all as written. Both keep every character.
    if (!fellBack) assert.deepEqual(streamed, parts, `seed ${seed}`);
  }
});

Deno.test("streaming - inputs the hostile property test once broke", () => {
  for (
    const markdown of [
      "a||\n-|-\n\t\r~", // marked lets a tab-only line continue a table
      "\uddea\r*\t.\n-", // a late `-` turns the lines above into a setext heading
      "- [\n  >*\r<", // marked throws: the answer goes out as written
    ]
  ) {
    const whole = formatAnswer(markdown, 100);
    for (const size of [1, 2, 3]) {
      const stream = createPartStream(100);
      const parts: string[] = [];
      for (let i = 0; i < markdown.length; i += size) {
        parts.push(...stream.push(markdown.slice(i, i + size)));
      }
      parts.push(...stream.end());
      assert.deepEqual(parts, whole, JSON.stringify(markdown));
    }
  }
});
