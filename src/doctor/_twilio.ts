/**
 * The doctor's Twilio lines: the credentials authenticate, the account is
 * active, `TWILIO_FROM_NUMBER` is the account's (a phone number, a WhatsApp
 * sender) and where that sender's incoming messages go.
 *
 * @module
 */
import type { Config } from "../config.ts";
import {
  createTwilioAccountClient,
  type TwilioAccountClient,
  TwilioApiError,
  type TwilioWhatsAppSender,
} from "../whatsapp/mod.ts";
import type { CheckLine } from "./report.ts";

/** Twilio's shared WhatsApp sandbox number: every account may send from it, none owns it. */
export const TWILIO_SANDBOX_NUMBER = "+14155238886";

const CREDENTIALS_FIX =
  "copy the Account SID and the Auth Token from Twilio Console → Account info into " +
  "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (the Auth Token, not an API key's secret; " +
  "a token rotated in the console stops the old one)";
const SENDERS_PAGE = "Twilio Console → Messaging → Senders → WhatsApp senders";

const line = (status: CheckLine["status"], text: string, fix?: string): CheckLine => ({
  status,
  area: "Twilio",
  text,
  fix,
});

/**
 * Runs the Twilio checks.
 *
 * @example
 * ```ts
 * const lines = await checkTwilio(config, { fetch });
 * ```
 */
export async function checkTwilio(
  config: Config,
  deps: { fetch?: typeof fetch; timeoutMs?: number } = {},
): Promise<CheckLine[]> {
  const twilio = createTwilioAccountClient({
    accountSid: config.twilioAccountSid,
    authToken: config.twilioAuthToken,
    apiBaseUrl: config.twilioApiBaseUrl,
    fetch: deps.fetch,
    timeoutMs: deps.timeoutMs,
  });
  let account;
  try {
    account = await twilio.fetchAccount();
  } catch (error) {
    return [
      credentialsFailure(error as TwilioApiError, config),
      line("skip", "the account's status and TWILIO_FROM_NUMBER were not checked (see above)"),
    ];
  }
  const lines = [
    line(
      "pass",
      `the Account SID and Auth Token authenticate (account "${account.friendlyName}")`,
    ),
    accountStatus(account.status, account.type),
  ];
  return [...lines, ...await fromNumber(twilio, config)];
}

function credentialsFailure(error: TwilioApiError, config: Config): CheckLine {
  if (error.status === 401 || error.status === 403 || error.status === 404) {
    const code = error.code ? `, error ${error.code}` : "";
    return line(
      "fail",
      `the Account SID and Auth Token are refused (${error.status}${code})`,
      CREDENTIALS_FIX,
    );
  }
  const where = config.twilioApiBaseUrl ?? "https://api.twilio.com";
  if (error.status === undefined) {
    return line(
      "fail",
      `Twilio cannot be reached at ${where} (${error.message.replace(/^.*: /, "")})`,
      "check that this machine can open HTTPS connections to api.twilio.com and " +
        "messaging.twilio.com (a firewall or proxy?)" +
        (config.twilioApiBaseUrl ? "; TWILIO_API_BASE_URL is set: is it right?" : ""),
    );
  }
  return line(
    "fail",
    `Twilio answered ${error.status} when asked for the account`,
    "try again in a minute; status.twilio.com says whether Twilio has trouble",
  );
}

function accountStatus(status: string, type: string): CheckLine {
  if (status === "active") {
    return line(
      "pass",
      `the account is active (${type}` +
        (type === "Trial" ? ": Twilio limits what a trial account may send" : "") + ")",
    );
  }
  if (status === "suspended") {
    return line(
      "fail",
      "the account is suspended: Twilio sends nothing from it",
      "Twilio Console → Billing (an unpaid balance suspends an account), or ask Twilio Support",
    );
  }
  return line(
    "fail",
    `the account is ${status}`,
    "a closed account stays closed: put another account's SID and Auth Token in " +
      "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN",
  );
}

async function fromNumber(twilio: TwilioAccountClient, config: Config): Promise<CheckLine[]> {
  const number = config.twilioFromNumber;
  if (number === TWILIO_SANDBOX_NUMBER) {
    return [
      line(
        "skip",
        `TWILIO_FROM_NUMBER ${number} is Twilio's shared WhatsApp sandbox: it belongs to no ` +
          "account, so whether it is yours cannot be checked",
        "each person who tests first sends the sandbox's join code to it " +
          "(Twilio Console → Messaging → Try it out → Send a WhatsApp message)",
      ),
      line(
        "skip",
        "where the sandbox sends incoming messages is not in Twilio's API",
        'set "When a message comes in" to TWILIO_WEBHOOK_URL in Twilio Console → Messaging → ' +
          "Try it out → Send a WhatsApp message → Sandbox settings",
      ),
    ];
  }
  const [incoming, senders] = await Promise.all([
    twilio.findIncomingNumber(number).then((found) => ({ found }), (error) => ({ error })),
    twilio.listWhatsAppSenders().then((list) => ({ list }), (error) => ({ error })),
  ]);
  const sender = "list" in senders
    ? senders.list.find((s) => s.senderId === `whatsapp:${number}`)
    : undefined;
  if (sender) return [senderLine(number, sender), webhookLine(sender, config)];
  const isPhoneNumber = "found" in incoming && incoming.found !== undefined;
  if ("list" in senders) {
    const others = senders.list.map((s) => s.senderId.replace(/^whatsapp:/, ""));
    const known = others.length > 0
      ? `; this account's WhatsApp senders: ${others.join(", ")}`
      : "; this account has no WhatsApp sender yet";
    return [line(
      "fail",
      isPhoneNumber
        ? `TWILIO_FROM_NUMBER ${number} is a phone number of this account but not one of its ` +
          "WhatsApp senders"
        : `TWILIO_FROM_NUMBER ${number} is neither a phone number nor a WhatsApp sender of ` +
          "this account",
      `set TWILIO_FROM_NUMBER to one of the account's WhatsApp senders (${SENDERS_PAGE})` +
        known,
    )];
  }
  const why = (senders as { error: TwilioApiError }).error;
  const reason = why.status ? `the Senders API answered ${why.status}` : "no answer";
  return [line(
    "skip",
    isPhoneNumber
      ? `TWILIO_FROM_NUMBER ${number} is a phone number of this account; whether it is a ` +
        `WhatsApp sender could not be checked (${reason})`
      : `TWILIO_FROM_NUMBER ${number} is not a phone number of this account, and its WhatsApp ` +
        `senders could not be listed (${reason})`,
    `see ${SENDERS_PAGE}: the number must be listed there, online`,
  )];
}

function senderLine(number: string, sender: TwilioWhatsAppSender): CheckLine {
  if (sender.status === "ONLINE") {
    return line(
      "pass",
      `TWILIO_FROM_NUMBER ${number} is a WhatsApp sender of this account (ONLINE)`,
    );
  }
  return line(
    "fail",
    `TWILIO_FROM_NUMBER ${number} is a WhatsApp sender of this account, but ${sender.status}`,
    `${SENDERS_PAGE} → ${number} says why, and what Meta or Twilio still need`,
  );
}

function webhookLine(sender: TwilioWhatsAppSender, config: Config): CheckLine {
  const configured = config.twilioWebhookUrl.split("#", 1)[0];
  if (!sender.callbackUrl) {
    return line(
      "skip",
      "the WhatsApp sender sets no webhook of its own, so where its incoming messages go " +
        "(a Messaging Service's webhook, if it is in one) could not be checked",
      `${SENDERS_PAGE} → the number: the webhook URL for incoming messages should be ` +
        "TWILIO_WEBHOOK_URL",
    );
  }
  if (sender.callbackUrl.split("#", 1)[0] === configured) {
    return line("pass", "the sender's incoming messages go to TWILIO_WEBHOOK_URL");
  }
  return line(
    "fail",
    `the sender's incoming messages go to ${sender.callbackUrl}, not to TWILIO_WEBHOOK_URL ` +
      `(${configured})`,
    `set the sender's webhook URL to ${configured} (${SENDERS_PAGE} → the number), or ` +
      "TWILIO_WEBHOOK_URL to that URL if it reaches this bridge. If a Messaging Service " +
      "handles the sender's messages, its webhook applies instead",
  );
}
