/**
 * Finding a message that Twilio may have accepted without saying so, in its
 * Message list. Twilio documents no idempotency key for creating messages,
 * so the list is the only witness. Private helper of `twilio_client.ts`.
 *
 * @module
 */
import type Api from "twilio/lib/rest/Api.d.ts";

type MessageList = Api["account"]["messages"];
type MessagePage = Awaited<ReturnType<MessageList["page"]>>;
type ListedMessage = MessagePage["instances"][number];

/** A message that may have reached Twilio, and since when. */
export interface SentQuery {
  /** `+E164`, as given to `send`. */
  to: string;
  body?: string;
  mediaUrls?: string[];
  /** Epoch milliseconds, by this machine's clock, when the first attempt began. */
  since: number;
}

/**
 * How far Twilio's clock, which stamps `date_created` (in whole seconds), may
 * lag this one. Both are NTP-synchronised, off by milliseconds, so 2 s is a
 * wide margin. An older message can match only if it has the same body, went
 * to the same person and was created less than 3 s before the attempt began:
 * a person's parts go out one after another, so that would be this same
 * text, delivered just before; skipping its repeat loses nothing unread.
 */
export const CLOCK_SKEW_MS = 2_000;

/** Enough for the parts of one answer; the list walks on when needed. */
export const LOOKUP_PAGE_SIZE = 20;

/** The most pages read before the look-up gives up as inconclusive. */
export const LOOKUP_MAX_PAGES = 5;

/** The list went on past {@linkcode LOOKUP_MAX_PAGES} without reaching `since`. */
export class LookupIncomplete extends Error {
  override name = "LookupIncomplete";
}

/**
 * The earliest `date_created` (whole seconds, as Twilio writes it) that a
 * message created at or after `since` can carry, allowing for clock skew.
 *
 * @example
 * ```ts
 * earliestCreated(Date.parse("2030-01-02T03:04:05.900Z")); // 03:04:03.000
 * ```
 */
export function earliestCreated(since: number): number {
  return Math.floor((since - CLOCK_SKEW_MS) / 1000) * 1000;
}

/**
 * Whether `listed` is the message `query` describes: same recipient and
 * sender, exactly the same body (empty when none), as many media as sent,
 * created no earlier than {@linkcode earliestCreated}. Any status counts: a
 * message Twilio accepted and then failed was still sent once.
 *
 * @example
 * ```ts
 * isCopy(listed, { to: "+15551234567", body: "Hi", since }, "whatsapp:+14155238886");
 * ```
 */
export function isCopy(listed: ListedMessage, query: SentQuery, from: string): boolean {
  return listed.to === `whatsapp:${query.to}` && listed.from === from &&
    (listed.body ?? "") === (query.body ?? "") &&
    Number(listed.numMedia ?? 0) === (query.mediaUrls?.length ?? 0) &&
    toTime(listed.dateCreated) >= earliestCreated(query.since);
}

/**
 * The SID of the message `query` describes, sent from `from` (`whatsapp:…`),
 * or undefined when Twilio's list has none. Twilio sorts the list by
 * `date_sent`, newest first, and a message it has not passed on yet has
 * none, so only a message *sent* before `since` proves that the rest of the
 * list is older. Where Twilio puts messages with no `date_sent` is not
 * documented; they are taken to come first, as in the fake (if not, a copy
 * is missed and sent again: today's behaviour, never a lost part). Rejects
 * with twilio-node's error when a page cannot be read, or with
 * {@linkcode LookupIncomplete}.
 *
 * @example
 * ```ts
 * const sid = await findSentIn(messages, "whatsapp:+14155238886", {
 *   to: "+15551234567", body: "Hi", since: Date.now() - 20_000,
 * });
 * ```
 */
export async function findSentIn(
  messages: MessageList,
  from: string,
  query: SentQuery,
): Promise<string | undefined> {
  const earliest = earliestCreated(query.since);
  let page: Pick<MessagePage, "instances" | "nextPageUrl" | "nextPage"> = await messages.page({
    to: `whatsapp:${query.to}`,
    from,
    pageSize: LOOKUP_PAGE_SIZE,
  });
  for (let read = 1;; read++) {
    for (const listed of page.instances) {
      if (isCopy(listed, query, from)) return listed.sid;
      if (listed.dateSent && toTime(listed.dateSent) < earliest) return undefined;
    }
    if (!page.nextPageUrl) return undefined;
    if (read >= LOOKUP_MAX_PAGES) {
      throw new LookupIncomplete(`did not reach since within ${read} pages`);
    }
    page = await page.nextPage()!;
  }
}

/** twilio-node leaves a date it cannot parse as the string it got. */
function toTime(date: Date | string): number {
  return new Date(date).getTime();
}
