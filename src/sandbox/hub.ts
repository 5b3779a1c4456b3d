/**
 * The sandbox's memory of each test number's chat: what the page must show
 * (messages both ways, "typing…", delivery ticks), kept in order so a page
 * that opens or reconnects late replays the conversation.
 *
 * @module
 */

/** Something the chat page shows for one test number. */
export type ChatEvent =
  /**
   * A message the tester sent; `status` is how far it got ("sent", "read", "failed").
   * A voice note has empty `text` and says where the page can play it.
   */
  | { kind: "inbound"; id: string; text: string; at: number; status: string; voice?: VoiceNote }
  /** A reply the bridge sent through the Twilio stand-in. */
  | { kind: "reply"; id: string; body: string; mediaUrls: string[]; at: number; status: string }
  /** The bridge asked Twilio to show "typing…" under inbound message `id`. */
  | { kind: "typing"; id: string; at: number }
  /** A message's status changed (`id` is an inbound or a reply SID). */
  | { kind: "status"; id: string; status: string; at: number };

/** A voice note as the chat page shows it. */
export interface VoiceNote {
  /** Where the page plays it: `/sandbox/media/ME…`. */
  src: string;
  contentType: string;
  /** As the recorder measured it; absent for a picked file. */
  durationMs?: number;
}

/** A chat event with its place in the number's history (the SSE id). */
export type Numbered = ChatEvent & { seq: number };

/** Per-number chat histories with live subscribers. */
export interface ChatHub {
  /** Appends `event` to `phone`'s history and hands it to its subscribers. */
  publish(phone: string, event: ChatEvent): void;
  /**
   * Replays `phone`'s events after `afterSeq`, then calls `listener` for each
   * new one until the returned function is called or the hub closes.
   */
  subscribe(
    phone: string,
    afterSeq: number,
    listener: (event: Numbered | null) => void,
  ): () => void;
  /** Which test number an inbound message SID came from. */
  phoneOf(messageSid: string): string | undefined;
  /** Ends every subscription (listeners get `null`) so open streams close. */
  close(): void;
}

/** A long chat is trimmed to its newest events; a page needs no more. */
const MAX_EVENTS_PER_NUMBER = 500;

/**
 * Creates an in-memory hub; the sandbox is one process, so memory is enough.
 *
 * @example
 * ```ts
 * const hub = createChatHub();
 * const stop = hub.subscribe("+15550100001", 0, (event) => console.log(event));
 * hub.publish("+15550100001", { kind: "typing", id: "SM…", at: Date.now() });
 * stop();
 * ```
 */
export function createChatHub(): ChatHub {
  const histories = new Map<string, Numbered[]>();
  const listeners = new Map<string, Set<(event: Numbered | null) => void>>();
  const owners = new Map<string, string>();
  let seq = 0;
  let closed = false;

  return {
    publish(phone, event) {
      if (event.kind === "inbound") owners.set(event.id, phone);
      const numbered = { ...event, seq: ++seq } as Numbered;
      const history = histories.get(phone) ?? [];
      history.push(numbered);
      if (history.length > MAX_EVENTS_PER_NUMBER) history.shift();
      histories.set(phone, history);
      for (const listener of listeners.get(phone) ?? []) listener(numbered);
    },
    subscribe(phone, afterSeq, listener) {
      for (const event of histories.get(phone) ?? []) {
        if (event.seq > afterSeq) listener(event);
      }
      if (closed) {
        // A page reconnecting while the sandbox stops must not hold the server open.
        listener(null);
        return () => {};
      }
      const set = listeners.get(phone) ?? new Set();
      set.add(listener);
      listeners.set(phone, set);
      return () => set.delete(listener);
    },
    phoneOf(messageSid) {
      return owners.get(messageSid);
    },
    close() {
      closed = true;
      for (const set of listeners.values()) {
        for (const listener of set) listener(null);
        set.clear();
      }
    },
  };
}
