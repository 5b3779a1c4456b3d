/**
 * How the sandbox page renders WhatsApp markup, and what the demo AYD knows.
 */
import assert from "node:assert/strict";
import { DEMO_TOPICS, demoAnswer } from "../../src/sandbox/demo_answers.ts";
import { renderWhatsApp } from "../../src/sandbox/whatsapp_markup.ts";

Deno.test("WhatsApp markup - bold, italic, strike and code render as WhatsApp shows them", () => {
  assert.equal(
    renderWhatsApp("*bold* _italic_ ~strike~ `code` *_both_*"),
    "<strong>bold</strong> <em>italic</em> <del>strike</del> <code>code</code> " +
      "<strong><em>both</em></strong>",
  );
});

Deno.test("WhatsApp markup - HTML in a message is shown as text, never run", () => {
  assert.equal(
    renderWhatsApp('<img src=x onerror="alert(1)"> & *<b>*'),
    "&lt;img src=x onerror=&quot;alert(1)&quot;&gt; &amp; <strong>&lt;b&gt;</strong>",
  );
});

Deno.test("WhatsApp markup - markers inside words and across lines stay literal", () => {
  assert.equal(renderWhatsApp("order_id_x a*b*c 2*3 = 6"), "order_id_x a*b*c 2*3 = 6");
  assert.equal(renderWhatsApp("*not\nbold*"), "*not\nbold*");
  assert.equal(renderWhatsApp("* not bold *"), "* not bold *");
});

Deno.test("WhatsApp markup - a ``` block is monospace and nothing inside it is styled", () => {
  assert.equal(
    renderWhatsApp("Table:\n```\nid  *total*\n 1  _9_\n```\nend"),
    "Table:\n<pre>id  *total*\n 1  _9_</pre>end",
  );
});

Deno.test("WhatsApp markup - quotes and links render, a link keeps its underscores", () => {
  assert.equal(
    renderWhatsApp("> see https://example.com/a_b_c."),
    '<span class="quote">see <a href="https://example.com/a_b_c" target="_blank" ' +
      'rel="noopener noreferrer">https://example.com/a_b_c</a>.</span>',
  );
});

Deno.test("Demo AYD - each topic has its answer and anything else lists the topics", () => {
  assert.match(demoAnswer("Which orders were LATE?").markdown, /\| 1063 \| Initech/);
  assert.match(demoAnswer("top customers").markdown, /Account manager/);
  assert.deepEqual(demoAnswer("revenue chart").charts, ["/sandbox/charts/revenue.svg"]);
  assert.ok(demoAnswer("long report").markdown.length > 1600, "longer than one WhatsApp message");
  const fallback = demoAnswer("what is the weather?");
  assert.equal(fallback.topic, "fallback");
  for (const topic of DEMO_TOPICS) assert.ok(fallback.markdown.includes(topic), topic);
});
