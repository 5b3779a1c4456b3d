/**
 * What Twilio's REST API says about the account the bridge sends from: the
 * account itself, whether a number is one of its phone numbers, and its
 * WhatsApp senders. For `deno task doctor`; the bridge itself never asks.
 * Requests go through the same `fetch`-based client as the sends (hosts
 * swapped for `TWILIO_API_BASE_URL`), and twilio's `Api` and `Messaging`
 * domains load with the first call.
 *
 * @module
 */
import type Api from "twilio/lib/rest/Api.d.ts";
import type Messaging from "twilio/lib/rest/Messaging.d.ts";
import { failureReason } from "./_send_outcome.ts";
import { fetchHttpClient, twilioRestClient } from "./twilio_client.ts";

/** The account as Twilio describes it; its auth token (which Twilio returns too) is left out. */
export interface TwilioAccount {
  sid: string;
  friendlyName: string;
  /** `active`, `suspended` or `closed`. */
  status: string;
  /** `Trial` or `Full`. */
  type: string;
}

/** One of the account's phone numbers. */
export interface TwilioIncomingNumber {
  sid: string;
  phoneNumber: string;
}

/** One of the account's WhatsApp senders (Senders API). */
export interface TwilioWhatsAppSender {
  sid: string;
  /** `whatsapp:+E164`. */
  senderId: string;
  /** `ONLINE`, `OFFLINE`, `PENDING_VERIFICATION`, … */
  status: string;
  /** Where Twilio posts its incoming messages, when the sender sets it. */
  callbackUrl?: string;
}

/** A request Twilio refused (`status`, `code`) or that got no answer (both undefined). */
export class TwilioApiError extends Error {
  override name = "TwilioApiError";
  constructor(message: string, readonly status?: number, readonly code?: number) {
    super(message);
  }
}

/** What the doctor asks Twilio. Each method rejects with {@linkcode TwilioApiError}. */
export interface TwilioAccountClient {
  /** `GET /2010-04-01/Accounts/{sid}.json`. */
  fetchAccount(): Promise<TwilioAccount>;
  /** `GET …/IncomingPhoneNumbers.json?PhoneNumber=`; undefined when it is not the account's. */
  findIncomingNumber(phone: string): Promise<TwilioIncomingNumber | undefined>;
  /** `GET https://messaging.twilio.com/v2/Channels/Senders?Channel=whatsapp`, every page. */
  listWhatsAppSenders(): Promise<TwilioWhatsAppSender[]>;
}

/** How long one request to Twilio may take here. */
export const ACCOUNT_REQUEST_TIMEOUT_MS = 10_000;

/**
 * Creates the client.
 *
 * @example
 * ```ts
 * const twilio = createTwilioAccountClient({ accountSid: "AC…", authToken: "…" });
 * const { status } = await twilio.fetchAccount(); // "active"
 * ```
 */
export function createTwilioAccountClient(options: {
  accountSid: string;
  authToken: string;
  apiBaseUrl?: string;
  fetch?: typeof fetch;
  timeoutMs?: number;
}): TwilioAccountClient {
  const http = fetchHttpClient(
    options.fetch ?? fetch,
    options.apiBaseUrl,
    4,
    options.timeoutMs ?? ACCOUNT_REQUEST_TIMEOUT_MS,
  );
  const rest = twilioRestClient(options.accountSid, options.authToken, http);
  let api: Promise<Api> | undefined;
  let messaging: Promise<Messaging> | undefined;
  const apiDomain = () =>
    api ??= import("twilio/lib/rest/Api.js").then(({ default: Domain }) => new Domain(rest) as Api);
  const messagingDomain = () =>
    messaging ??= import("twilio/lib/rest/Messaging.js").then(({ default: Domain }) =>
      new Domain(rest) as Messaging
    );

  return {
    fetchAccount: () =>
      asked("the account", async () => {
        const account = await (await apiDomain()).account.fetch();
        return {
          sid: account.sid,
          friendlyName: account.friendlyName,
          status: account.status,
          type: account.type,
        };
      }),
    findIncomingNumber: (phone) =>
      asked("the account's phone numbers", async () => {
        const numbers = await (await apiDomain()).account.incomingPhoneNumbers.list({
          phoneNumber: phone,
          limit: 20,
        });
        const found = numbers.find((number) => number.phoneNumber === phone);
        return found && { sid: found.sid, phoneNumber: found.phoneNumber };
      }),
    listWhatsAppSenders: () =>
      asked("the account's WhatsApp senders", async () => {
        const senders = await (await messagingDomain()).v2.channelsSenders.list({
          channel: "whatsapp",
          pageSize: 100,
          limit: 1_000,
        });
        return senders.map((sender) => ({
          sid: sender.sid,
          senderId: sender.senderId,
          status: sender.status,
          callbackUrl: sender.webhook?.callbackUrl || undefined,
        }));
      }),
  };
}

/** Runs `request`, turning whatever it throws into a {@linkcode TwilioApiError} without URLs. */
async function asked<T>(what: string, request: () => Promise<T>): Promise<T> {
  try {
    return await request();
  } catch (error) {
    const { status, code } = error as { status?: unknown; code?: unknown };
    throw new TwilioApiError(
      `Twilio, asked for ${what}: ${failureReason(error)}`,
      typeof status === "number" ? status : undefined,
      typeof code === "number" ? code : undefined,
    );
  }
}
