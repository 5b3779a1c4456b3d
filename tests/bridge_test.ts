/** What the service tells the operator as it starts. */
import assert from "node:assert/strict";
import { publicUrls, startupGuide } from "../src/bridge.ts";

Deno.test("start-up - the URLs to give Twilio and a health check, from TWILIO_WEBHOOK_URL", () => {
  assert.deepEqual(publicUrls({ twilioWebhookUrl: "https://bridge.example.com/whatsapp" }), {
    webhook: "https://bridge.example.com/whatsapp",
    health: "https://bridge.example.com/health",
  });
  // Behind a path prefix, with a connection-override fragment: health sits beside the webhook.
  assert.deepEqual(publicUrls({ twilioWebhookUrl: "https://example.com/bot/whatsapp?x=1#rc=2" }), {
    webhook: "https://example.com/bot/whatsapp?x=1#rc=2",
    health: "https://example.com/bot/health",
  });
});

Deno.test("start-up - the terminal's lines say what to paste into Twilio and what a first message logs", () => {
  const guide = startupGuide(
    { twilioWebhookUrl: "https://bridge.example.com/whatsapp", twilioFromNumber: "+14155238886" },
    "http://0.0.0.0:5000",
  );
  assert.deepEqual(guide.split("\n").map((line) => line.split(/[:,]/, 1)[0]), [
    "Listening on http",
    "In the Twilio Console",
    "From outside",
    "Then send a WhatsApp message to +14155238886",
  ]);
  assert.match(
    guide,
    /"When a message comes in" to https:\/\/bridge\.example\.com\/whatsapp \(POST\)/,
  );
  assert.match(guide, /https:\/\/bridge\.example\.com\/health should answer/);
  assert.match(guide, /it logs webhook\.received\. [^]*bad_signature: TWILIO_WEBHOOK_URL is not/);
});
