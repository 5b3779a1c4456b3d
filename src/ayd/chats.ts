/**
 * Each WhatsApp number's AYD chat in chat mode, kept in Deno KV under
 * `["chats", "+E164"]`. A chat does not expire: it lasts until the person
 * sends `reset`, AYD no longer knows it, or their identity changes.
 *
 * @module
 */
import type { Asker } from "./identity.ts";
import { singleFlight } from "./_single_flight.ts";

/** A stored AYD chat. */
export interface AydChat {
  chatid: string;
  /** Unix ms. */
  createdAt: number;
  /** The fingerprint of the identity it was created for; absent for the made-up default. */
  identity?: string;
}

/** A chat, and whether this call created it (then it holds no message yet). */
export type ChatInUse = AydChat & { created: boolean };

/** Creates a new, empty chat in the chatbot; resolves with its `chatid`. */
export type OpenChat = (signal?: AbortSignal) => Promise<string>;

/** Phone → AYD chat, shared by every instance through KV. */
export interface ChatStore {
  /**
   * The chat of `phone` for `asker` (default: the made-up identity), creating
   * one when there is none or when the one stored was created for someone
   * else (its properties may be fixed by AYD for the whole chat).
   */
  getOrCreate(phone: string, signal?: AbortSignal, asker?: Asker): Promise<ChatInUse>;
  /**
   * Replaces a chat AYD no longer knows. When another job already replaced
   * it, that newer chat is returned instead of creating a third.
   */
  replace(
    phone: string,
    goneChatId: string,
    signal?: AbortSignal,
    asker?: Asker,
  ): Promise<ChatInUse>;
  /** Forgets the chat of `phone`; its next question starts a new one. */
  drop(phone: string): Promise<void>;
}

/** The KV key of a phone number's chat. */
export const chatKey = (phone: string): Deno.KvKey => ["chats", phone];

/**
 * Creates the chat store. Like the session store, one creation per number
 * runs at a time in this process and a compare-and-set settles races
 * between processes; there is no expiry to index.
 *
 * @example
 * ```ts
 * const chats = createChatStore(kv, { open: (signal) => createAydChat(aydOptions, signal) });
 * const { chatid } = await chats.getOrCreate("+15551234567");
 * ```
 */
export function createChatStore(
  kv: Deno.Kv,
  deps: { open: OpenChat; now?: () => number },
): ChatStore {
  const now = deps.now ?? Date.now;
  const once = singleFlight<ChatInUse>();

  async function create(
    phone: string,
    current: Deno.KvEntryMaybe<AydChat>,
    signal?: AbortSignal,
    asker?: Asker,
  ): Promise<ChatInUse> {
    const chat: AydChat = { chatid: await deps.open(signal), createdAt: now() };
    if (asker) chat.identity = asker.fingerprint;
    const result = await kv.atomic().check(current).set(chatKey(phone), chat).commit();
    if (result.ok) return { ...chat, created: true };
    // Another instance stored one first: use it, so the number keeps one chat.
    const winner = await kv.get<AydChat>(chatKey(phone));
    return usable(winner.value, asker)
      ? { ...winner.value, created: false }
      : { ...chat, created: true };
  }

  return {
    async getOrCreate(phone, signal, asker) {
      const entry = await kv.get<AydChat>(chatKey(phone));
      if (usable(entry.value, asker)) return { ...entry.value, created: false };
      return once(phone, () => create(phone, entry, signal, asker));
    },
    replace(phone, goneChatId, signal, asker) {
      return once(phone, async () => {
        const entry = await kv.get<AydChat>(chatKey(phone));
        if (usable(entry.value, asker) && entry.value.chatid !== goneChatId) {
          return { ...entry.value, created: false };
        }
        return create(phone, entry, signal, asker);
      });
    },
    async drop(phone) {
      await kv.delete(chatKey(phone));
    },
  };
}

function usable(chat: AydChat | null, asker: Asker | undefined): chat is AydChat {
  return chat !== null && typeof chat.chatid === "string" && chat.identity === asker?.fingerprint;
}
