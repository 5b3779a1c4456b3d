/**
 * Each WhatsApp number's AYD conversation, kept in Deno KV under
 * `["sessions", "+E164"]` for as long as its token lives.
 *
 * @module
 */
import { expireAt } from "../storage/mod.ts";
import type { AydToken } from "./client.ts";

/** A stored AYD session; times are Unix milliseconds. */
export interface AydSession {
  token: string;
  expiresAt: number;
  createdAt: number;
  /** The text an imported `ayd_sessions.csv` row had, written back as it was. */
  source?: { expiresAt?: string; createdAt?: string };
}

/** Opens a new AYD session for a phone number. */
export type OpenSession = (
  phone: string,
  signal?: AbortSignal,
) => Promise<AydToken>;

/** Phone → AYD session, shared by every instance through KV. */
export interface SessionStore {
  /** The live session of `phone`, opening and storing one when absent. */
  getOrCreate(phone: string, signal?: AbortSignal): Promise<AydSession>;
  /**
   * Replaces the session whose token AYD refused. When another job already
   * replaced it, that newer session is returned instead of opening a third.
   */
  renew(
    phone: string,
    refusedToken: string,
    signal?: AbortSignal,
  ): Promise<AydSession>;
  /** Forgets the session of `phone`; its next question opens a new one. */
  drop(phone: string): Promise<void>;
}

/** The KV key of a phone number's session. */
export const sessionKey = (phone: string): Deno.KvKey => ["sessions", phone];

/**
 * Creates the session store. Concurrent first messages from one number share
 * one opening in this process, and an atomic compare-and-set settles races
 * between processes, so a number always ends with one session.
 *
 * @example
 * ```ts
 * const sessions = createSessionStore(kv, {
 *   open: (phone, signal) =>
 *     createAydSession(aydOptions, phone, { now: Date.now(), signal }),
 * });
 * const { token } = await sessions.getOrCreate("+15551234567");
 * ```
 */
export function createSessionStore(
  kv: Deno.Kv,
  deps: { open: OpenSession; now?: () => number },
): SessionStore {
  const now = deps.now ?? Date.now;
  const inFlight = new Map<string, Promise<AydSession>>();

  /** Runs one replacement per phone at a time in this process. */
  function singleFlight(phone: string, work: () => Promise<AydSession>) {
    const running = inFlight.get(phone);
    if (running) return running;
    const started = work().finally(() => inFlight.delete(phone));
    inFlight.set(phone, started);
    return started;
  }

  async function replace(
    phone: string,
    current: Deno.KvEntryMaybe<AydSession>,
    signal?: AbortSignal,
  ): Promise<AydSession> {
    const opened = await deps.open(phone, signal);
    const session: AydSession = { ...opened, createdAt: now() };
    const op = kv.atomic().check(current).set(sessionKey(phone), session);
    const result = await expireAt(op, sessionKey(phone), session.expiresAt).commit();
    if (result.ok) return session;
    // Another instance stored one first: use it, so the number keeps one.
    const winner = await kv.get<AydSession>(sessionKey(phone));
    return isLive(winner.value, now()) ? winner.value : session;
  }

  return {
    async getOrCreate(phone, signal) {
      const entry = await kv.get<AydSession>(sessionKey(phone));
      if (isLive(entry.value, now())) return entry.value;
      return singleFlight(phone, () => replace(phone, entry, signal));
    },
    renew(phone, refusedToken, signal) {
      return singleFlight(phone, async () => {
        const entry = await kv.get<AydSession>(sessionKey(phone));
        if (isLive(entry.value, now()) && entry.value.token !== refusedToken) {
          return entry.value;
        }
        return replace(phone, entry, signal);
      });
    },
    async drop(phone) {
      await kv.delete(sessionKey(phone));
    },
  };
}

/** KV keeps expired keys readable for a while; their `expiresAt` decides. */
function isLive(session: AydSession | null, now: number): session is AydSession {
  return session !== null && session.expiresAt > now;
}
