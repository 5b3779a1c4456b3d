import assert from "node:assert/strict";
import { transcriptEcho } from "../../src/whatsapp/mod.ts";
import { renderWhatsApp } from "../../src/sandbox/whatsapp_markup.ts";

Deno.test("voice echo - the transcript in italics after a microphone, on one line", () => {
  assert.equal(
    transcriptEcho("  How many orders\n\nshipped late last week?  "),
    "🎤 _How many orders shipped late last week?_",
  );
  assert.equal(
    renderWhatsApp(transcriptEcho("How many orders shipped late?")),
    "🎤 <em>How many orders shipped late?</em>",
  );
});

Deno.test("voice echo - an underscore cannot end the italics early", () => {
  const echo = transcriptEcho("show order_id and customer_name");
  assert.equal(echo, "🎤 _show order id and customer name_");
  assert.equal(renderWhatsApp(echo), "🎤 <em>show order id and customer name</em>");
});

Deno.test("voice echo - a long transcript is cut at a word to fit one message", () => {
  const long = "word ".repeat(1_000);
  const echo = transcriptEcho(long, 100);
  assert.ok(echo.length <= 100, `${echo.length} characters`);
  assert.match(echo, /^🎤 _(word )+word…_$/);
  const emoji = transcriptEcho("🚀".repeat(200), 60);
  assert.ok(emoji.length <= 60);
  assert.doesNotMatch(emoji, /[\uD800-\uDBFF](?![\uDC00-\uDFFF])/, "no half emoji");
});
