/** Early sends when saving their progress fails: nothing escapes unhandled, nothing is lost. */
import assert from "node:assert/strict";
import { sendEarly } from "../../src/conversation/_early_sends.ts";
import { type Lease, newRecord } from "../../src/jobs/mod.ts";
import { silentLogger } from "../../src/log.ts";
import { createWhatsAppSender } from "../../src/whatsapp/mod.ts";
import { startFakeTwilio } from "../fakes/fake_twilio.ts";
import { ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER } from "../_helpers.ts";

const RECORD = newRecord({
  messageSid: "SM" + "e".repeat(32),
  phone: "+15551234567",
  body: "long question",
  numMedia: 0,
  receivedAt: 1,
}, 1);

const LEASE: Lease = {
  phone: RECORD.phone,
  held: () => true,
  commit: () => Promise.resolve(true),
  release: () => Promise.resolve("released"),
};

async function withSender(fn: (sender: ReturnType<typeof createWhatsAppSender>) => Promise<void>) {
  await using twilio = await startFakeTwilio({ accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN });
  await fn(createWhatsAppSender({
    accountSid: ACCOUNT_SID,
    authToken: AUTH_TOKEN,
    fromNumber: FROM_NUMBER,
    apiBaseUrl: twilio.url,
  }));
  return twilio;
}

Deno.test("early sends - a save that throws stops them, and settled() reports it (no unhandled rejection)", async () => {
  const failure = new TypeError("database or disk is full");
  let saves = 0;
  let sent = 0;
  await withSender(async (sender) => {
    const early = sendEarly(RECORD, {
      lease: LEASE,
      sender: { ...sender, send: (m) => (sent++, sender.send(m)) },
      log: silentLogger,
      markers: "none",
      label: (text) => text,
      limit: 19,
      // The part is kept, sent, and then counting it fails: KV went away mid-answer.
      save: () => ++saves === 2 ? Promise.reject(failure) : Promise.resolve(true),
      keepPart: () => {},
    });
    early.offer("part one", 0);
    early.offer("part two", 1);
    // A save through the same queue after the failure does not reject either.
    assert.equal(await early.saveInTurn(() => RECORD), false);
    await assert.rejects(early.settled(), (error) => error === failure);
  });
  assert.equal(sent, 1, "nothing more goes out once progress cannot be saved");
});

Deno.test("early sends - a part that cannot be kept before its send is not sent", async () => {
  let sent = 0;
  const twilio = await withSender(async (sender) => {
    const early = sendEarly(RECORD, {
      lease: LEASE,
      sender: { ...sender, send: (m) => (sent++, sender.send(m)) },
      log: silentLogger,
      markers: "none",
      label: (text) => text,
      limit: 19,
      save: () => Promise.reject(new TypeError("database or disk is full")),
      keepPart: () => {},
    });
    early.offer("part one", 0);
    await assert.rejects(early.settled(), /disk is full/);
  });
  assert.equal(sent, 0, "a part is sent only once KV holds it, so a restart can look for it");
  assert.equal(twilio.messages.length, 0);
});
