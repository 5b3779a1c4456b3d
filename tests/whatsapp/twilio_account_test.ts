/** What the doctor asks Twilio, over the fake's wire protocol. */
import assert from "node:assert/strict";
import { createTwilioAccountClient, TwilioApiError } from "../../src/whatsapp/mod.ts";
import { startFakeTwilio } from "../fakes/fake_twilio.ts";
import { ACCOUNT_SID, AUTH_TOKEN } from "../_helpers.ts";

Deno.test("twilio account - the account, its numbers and its WhatsApp senders, without the token", async () => {
  await using fake = await startFakeTwilio({ accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN });
  fake.incomingNumbers.push({ phoneNumber: "+15557654321" }, { phoneNumber: "+15557650000" });
  fake.whatsappSenders.push({
    senderId: "whatsapp:+15557654321",
    callbackUrl: "https://bridge.example.com/whatsapp",
  }, { senderId: "whatsapp:+15557650000", status: "OFFLINE" });
  const twilio = createTwilioAccountClient({
    accountSid: ACCOUNT_SID,
    authToken: AUTH_TOKEN,
    apiBaseUrl: fake.url,
  });
  const account = await twilio.fetchAccount();
  assert.deepEqual(account, {
    sid: ACCOUNT_SID,
    friendlyName: "My first account",
    status: "active",
    type: "Full",
  });
  assert.ok(!JSON.stringify(account).includes(AUTH_TOKEN));
  assert.equal((await twilio.findIncomingNumber("+15557654321"))?.phoneNumber, "+15557654321");
  assert.equal(await twilio.findIncomingNumber("+15550009999"), undefined);
  assert.deepEqual(
    (await twilio.listWhatsAppSenders()).map(({ senderId, status, callbackUrl }) => ({
      senderId,
      status,
      callbackUrl,
    })),
    [
      {
        senderId: "whatsapp:+15557654321",
        status: "ONLINE",
        callbackUrl: "https://bridge.example.com/whatsapp",
      },
      { senderId: "whatsapp:+15557650000", status: "OFFLINE", callbackUrl: undefined },
    ],
  );
});

Deno.test("twilio account - a refusal keeps Twilio's status and code, and no URL", async () => {
  await using fake = await startFakeTwilio({ accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN });
  const twilio = createTwilioAccountClient({
    accountSid: ACCOUNT_SID,
    authToken: "wrong",
    apiBaseUrl: fake.url,
  });
  const refused = await twilio.fetchAccount().catch((error) => error);
  assert.ok(refused instanceof TwilioApiError);
  assert.equal(refused.status, 401);
  assert.equal(refused.code, 20003);
  assert.equal(refused.message, "Twilio, asked for the account: answered 401 (error 20003)");
  fake.failSenders(403);
  const right = createTwilioAccountClient({
    accountSid: ACCOUNT_SID,
    authToken: AUTH_TOKEN,
    apiBaseUrl: fake.url,
  });
  const senders = await right.listWhatsAppSenders().catch((error) => error);
  assert.equal(senders.status, 403);
});

Deno.test("twilio account - a server error on the account keeps its status, and the account answers again after", async () => {
  await using fake = await startFakeTwilio({ accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN });
  const twilio = createTwilioAccountClient({
    accountSid: ACCOUNT_SID,
    authToken: AUTH_TOKEN,
    apiBaseUrl: fake.url,
  });
  fake.failAccount(503);
  const failed = await twilio.fetchAccount().catch((error) => error);
  assert.ok(failed instanceof TwilioApiError);
  assert.equal(failed.status, 503);
  fake.failAccount(0);
  assert.equal((await twilio.fetchAccount()).status, "active");
});
