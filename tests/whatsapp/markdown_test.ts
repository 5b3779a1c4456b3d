import assert from "node:assert/strict";
import {
  createMarkdownStream,
  displayWidth,
  markdownToWhatsApp,
  MONOSPACE_TABLE_WIDTH,
} from "../../src/whatsapp/markdown.ts";
import { lexMarkdown } from "../../src/whatsapp/_blocks.ts";
import { ALL_ANSWERS, TOP_CUSTOMERS } from "../fixtures/ayd_answers.ts";
import { countingLex } from "./_counting_lex.ts";

const wa = markdownToWhatsApp;

Deno.test("markdown - bold, italic, strike and code become WhatsApp markup", () => {
  assert.equal(
    wa("**bold** __also__ *it* _it_ ~~gone~~ `x = 1`"),
    "*bold* *also* _it_ _it_ ~gone~ `x = 1`",
  );
  assert.equal(wa("***both***"), "_*both*_");
});

Deno.test("markdown - headings become a bold line", () => {
  assert.equal(wa("# Sales\n\n## By **region**\n\nText"), "*Sales*\n\n*By region*\n\nText");
  assert.equal(wa("Setext\n======"), "*Setext*");
});

Deno.test("markdown - lists keep their numbers and nest", () => {
  assert.equal(wa("- a\n- b"), "• a\n• b");
  assert.equal(wa("3. third\n4. fourth"), "3. third\n4. fourth");
  assert.equal(
    wa("1. Orders\n   - shipped\n     - by air\n2. Returns"),
    "1. Orders\n   ◦ shipped\n      ▪ by air\n2. Returns",
  );
  assert.equal(wa("- [x] done\n- [ ] open"), "☑ done\n☐ open");
});

Deno.test("markdown - links show their address, images their alt text and address", () => {
  assert.equal(
    wa("[the dashboard](https://example.com/d)"),
    "the dashboard (https://example.com/d)",
  );
  assert.equal(wa("<https://example.com>"), "https://example.com");
  assert.equal(wa("see https://example.com/x."), "see https://example.com/x.");
  assert.equal(wa("![chart](https://example.com/c.png)"), "chart (https://example.com/c.png)");
});

Deno.test("markdown - quotes, rules and code blocks", () => {
  assert.equal(wa("> a **b**\n>\n> c"), "> a *b*\n>\n> c");
  assert.equal(wa("a\n\n---\n\nb"), "a\n\n──────────\n\nb");
  assert.equal(wa("```sql\nSELECT *\nFROM t;\n```"), "```\nSELECT *\nFROM t;\n```");
  assert.equal(wa("    indented code"), "```\nindented code\n```");
});

Deno.test("markdown - HTML is stripped, its text and entities kept", () => {
  assert.equal(wa("a<br>b <b>bold</b> &amp; &euro;5 &#x1F680;"), "a\nb bold & €5 🚀");
  assert.equal(wa("<div>\n<script>alert(1)</script>\nHello\n</div>"), "Hello");
  assert.equal(wa("<!-- hidden -->\n\nShown"), "Shown");
});

Deno.test("markdown - identifiers and formulas keep their literal * _ ~", () => {
  assert.equal(
    wa("Group by customer_id and ship_date_utc."),
    "Group by customer_id and ship_date_utc.",
  );
  assert.equal(wa("a*b*c and 2*3*4"), "a*b*c and 2*3*4");
  assert.equal(wa("__init__ and _private"), "*init* and _private");
  assert.equal(wa("about ~5 orders"), "about ~5 orders");
  // Markdown allows emphasis inside a word; WhatsApp would show stray stars.
  assert.equal(wa("foo**bar**baz"), "foobarbaz");
});

Deno.test("markdown - numbers stay exactly as AYD wrote them", () => {
  for (const n of ["1,234,567.50", "€ 1.234,50", "1e6", "-0.5%", "$12k", "1 234", "0.000"]) {
    assert.ok(wa(`Total: ${n} units`).includes(n), n);
    const table = wa(`| k | v |\n|---|---|\n| a | ${n} |`);
    assert.ok(table.includes(n), `${n} in ${table}`);
  }
});

Deno.test("markdown - a narrow table becomes an aligned monospace block", () => {
  const table =
    "| Month | Orders | Note |\n|---|--:|---|\n| Jan | 1,204 | ok |\n| February | 87 | *late* |";
  assert.equal(
    wa(table),
    "```\n" +
      "Month     Orders  Note\n" +
      "--------  ------  ----\n" +
      "Jan        1,204  ok\n" +
      "February      87  late\n" +
      "```",
  );
});

Deno.test("markdown - a wide table becomes one card per row", () => {
  const text = wa(TOP_CUSTOMERS);
  assert.ok(!text.includes("|"), "no table pipes");
  assert.ok(text.includes(
    "*customer_name:* Acme Corporation\n*region:* EMEA\n*total_amount_usd:* 1,234,567.50\n" +
      "*last_order_date:* 2026-11-01\n*status:* *active*",
  ));
  assert.ok(text.includes("*status:* churn_risk"));
  assert.ok(text.includes("a*b*c stays as written"));
});

Deno.test("markdown - the width that picks monospace or cards is measured in columns", () => {
  assert.equal(displayWidth("Zürich"), 6);
  assert.equal(displayWidth("北京"), 4);
  assert.equal(displayWidth("📦"), 2);
  assert.equal(displayWidth("e\u0301"), 1);
  const fits = "x".repeat(MONOSPACE_TABLE_WIDTH - 3);
  assert.match(wa(`| a | b |\n|---|---|\n| ${fits} | 1 |`), /^```/);
  assert.match(wa(`| a | b |\n|---|---|\n| ${fits}x | 1 |`), /^\*a:\*/);
});

Deno.test("markdown - no Markdown syntax survives in real answers", () => {
  for (const [name, answer] of Object.entries(ALL_ANSWERS)) {
    const text = wa(answer);
    assert.ok(!text.includes("**"), `${name}: **`);
    assert.ok(!/^\s*\|.*\|\s*$/m.test(text), `${name}: table pipes`);
    assert.ok(!/^#+ /m.test(text), `${name}: heading marks`);
    assert.ok(!/\]\(/.test(text), `${name}: link syntax`);
  }
});

Deno.test("markdown stream - any chunking gives the one-shot result", () => {
  for (const [name, answer] of Object.entries(ALL_ANSWERS)) {
    const whole = wa(answer);
    for (const size of [1, 2, 5, 17, 64, 1000]) {
      const stream = createMarkdownStream();
      let text = "";
      for (let i = 0; i < answer.length; i += size) text += stream.push(answer.slice(i, i + size));
      text += stream.end();
      assert.equal(text, whole, `${name} in chunks of ${size}`);
    }
  }
});

Deno.test("markdown stream - finished blocks come out before the answer ends", () => {
  const stream = createMarkdownStream();
  assert.equal(stream.push("## Late orders\n\nThere were **3"), "*Late orders*");
  assert.equal(stream.push("7** late"), "");
  assert.equal(stream.push(" orders.\n\n- a"), "\n\nThere were *37* late orders.");
  // A list may go on after a blank line: it waits for the end.
  assert.equal(stream.push("\n\n- b"), "");
  assert.equal(stream.end(), "\n\n• a\n• b");
});

Deno.test("markdown stream - rows of a wide table come out card by card", () => {
  const stream = createMarkdownStream();
  const header = "| customer_name | region | total_amount_usd |\n|---|---|---|\n";
  assert.equal(stream.push(header + "| Acme Corporation | EMEA | 1,234.50 |\n"), "");
  assert.equal(
    stream.push("| Globex | APAC | 99.00 |\n"),
    "*customer_name:* Acme Corporation\n*region:* EMEA\n*total_amount_usd:* 1,234.50",
  );
  assert.equal(
    stream.end(),
    "\n\n*customer_name:* Globex\n*region:* APAC\n*total_amount_usd:* 99.00",
  );
});

Deno.test("markdown stream - CRLF split between two pieces is one line break", () => {
  const stream = createMarkdownStream();
  const text = stream.push("first\r") + stream.push("\n\r\nsecond\r\n") + stream.end();
  assert.equal(text, "first\n\nsecond");
});

// marked 18.2.1 throws on this (a list item holding a broken quote).
const UNPARSABLE = "- [\n  >*\n<";

Deno.test("markdown - an answer the parser fails on goes out as written", () => {
  assert.throws(
    () => lexMarkdown(UNPARSABLE),
    "still a marked bug; drop this fallback test if fixed",
  );
  const errors: unknown[] = [];
  assert.equal(wa(UNPARSABLE + "\r\n\r\n\r\n", (error) => errors.push(error)), UNPARSABLE);
  assert.equal(errors.length, 1);
});

Deno.test("markdown stream - after a parser failure the rest goes out as written, nothing lost", () => {
  const answer = "## Before\n\nFine paragraph.\n\n" + UNPARSABLE + "\n\nAfter it.";
  const errors: unknown[] = [];
  const stream = createMarkdownStream((error) => errors.push(error));
  let text = "";
  for (const piece of answer.match(/[\s\S]{1,3}/g)!) text += stream.push(piece);
  text += stream.end();
  assert.ok(errors.length >= 1);
  assert.match(text, /^\*Before\*\n\nFine paragraph\./, "what was final before stays formatted");
  assert.ok(text.endsWith(UNPARSABLE + "\n\nAfter it."), text);
});

/** Long answers of one shape each: the blocks that stay unfinished until a blank line. */
function longShapes(): Record<string, string> {
  const row = (i: number) =>
    `| ${1000 + i} | Customer ${i} GmbH | 2026-11-01 | DHL Express | weather_delay at hub ${i} |`;
  const wide = "| order_id | customer_name | shipped_at | carrier | delay_reason |\n" +
    "|---|---|---|---|---|\n" + Array.from({ length: 400 }, (_, i) => row(i)).join("\n");
  const lines = (count: number, line: (i: number) => string) =>
    Array.from({ length: count }, (_, i) => line(i)).join("\n");
  return {
    "wide table": wide,
    "wide table after an intro": "Late orders:\n\n" + wide + "\n\nThat is all.",
    "narrow table": "| day | orders |\n|---|--:|\n" + lines(800, (i) => `| ${i} | ${i * 7} |`),
    "tight list": lines(1500, (i) => `- order **${1000 + i}** is late`),
    "tight list with trailing spaces": lines(1000, (i) => `- order ${i} is late  `),
    "loose list": lines(300, (i) => `${i + 1}. **Order ${i}**\n   late by ${i % 9} days\n`),
    "nested list": "1. Orders\n" + lines(1000, (i) => `   - order ${i}`),
    "code block": "```sql\n" +
      lines(2000, (i) => i % 10 === 9 ? "" : i % 10 === 0 ? "# step" : `SELECT ${i};`) +
      "\n```\n\nDone.",
    "indented code": lines(1000, (i) => i % 5 === 4 ? "" : `    SELECT ${i};`),
    "paragraph of hard line breaks": lines(1500, (i) => `line ${i} of a long paragraph  `),
    "quote": lines(1000, (i) => `> quoted line ${i}`),
  };
}

Deno.test("markdown stream - a long block streamed in small pieces is lexed a few times over, not once a line", () => {
  for (const [name, answer] of Object.entries(longShapes())) {
    for (const size of [4, 16]) {
      const counted = countingLex();
      const stream = createMarkdownStream(undefined, { lex: counted.lex });
      let text = "";
      for (let i = 0; i < answer.length; i += size) text += stream.push(answer.slice(i, i + size));
      text += stream.end();
      const context = `${name} in pieces of ${size}`;
      assert.equal(text, wa(answer), context);
      assert.ok(counted.chars >= answer.length, `${context}: the lexer given is the one used`);
      const times = counted.chars / answer.length;
      assert.ok(times <= 4, `${context}: lexed ${times.toFixed(1)} times its length`);
    }
  }
});

Deno.test("markdown stream - the rows of a wide table still come out card by card, one lex a row", () => {
  const header = "| customer_name | region | total_amount_usd |\n|---|---|---|\n";
  const rows = Array.from({ length: 50 }, (_, i) => `| Customer ${i} | EMEA | ${i}.50 |\n`);
  const counted = countingLex();
  const stream = createMarkdownStream(undefined, { lex: counted.lex });
  assert.equal(stream.push(header + rows[0]), "");
  for (let i = 1; i < rows.length; i++) {
    const before = counted.chars;
    const card = stream.push(rows[i]);
    assert.match(card, new RegExp(`^(\\n\\n)?\\*customer_name:\\* Customer ${i - 1}\\n`));
    assert.ok(counted.chars - before <= header.length + rows[i].length, `row ${i}`);
  }
  assert.match(stream.end(), /^\n\n\*customer_name:\* Customer 49\n/);
});

Deno.test("markdown stream - the line that ends a long table does not lex the table again", () => {
  const header = "| day | orders |\n|---|--:|\n";
  const rows = Array.from({ length: 300 }, (_, i) => `| 2026-01-${i % 28} | ${i * 7} |\n`);
  const counted = countingLex();
  const stream = createMarkdownStream(undefined, { lex: counted.lex });
  let text = stream.push("Orders by day:\n\n" + header);
  for (const row of rows) text += stream.push(row);
  const before = counted.chars;
  text += stream.push("\nThat is all.");
  assert.ok(counted.chars - before <= header.length + 2, `${counted.chars - before} characters`);
  text += stream.end();
  assert.equal(text, wa("Orders by day:\n\n" + header + rows.join("") + "\nThat is all."));
});
