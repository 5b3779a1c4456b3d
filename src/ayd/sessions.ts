/**
 * Each WhatsApp number's AYD conversation in session mode, kept in Deno KV
 * under `["sessions", "+E164"]` for as long as its token lives.
 *
 * @module
 */
import { expireAt } from "../storage/mod.ts";
import type { AydToken } from "./client.ts";
import type { Asker, AydIdentity } from "./identity.ts";
import { singleFlight } from "./_single_flight.ts";

/** A stored AYD session; times are Unix milliseconds. */
export interface AydSession {
  token: string;
  expiresAt: number;
  createdAt: number;
  /**
   * The fingerprint of the identity it was opened as; absent for the
   * made-up default identity (and for every session of earlier versions).
   */
  identity?: string;
  /** The text an imported `ayd_sessions.csv` row had, written back as it was. */
  source?: { expiresAt?: string; createdAt?: string };
}

/** Opens a new AYD session for a phone number, as `identity` (default: the made-up one). */
export type OpenSession = (
  phone: string,
  signal?: AbortSignal,
  identity?: AydIdentity,
) => Promise<AydToken>;

/** Phone → AYD session, shared by every instance through KV. */
export interface SessionStore {
  /**
   * The live session of `phone` for `asker` (default: the made-up identity),
   * opening and storing one when there is none, or when the one stored was
   * opened as someone else: AYD fixes a session's context variables when it
   * opens it.
   */
  getOrCreate(phone: string, signal?: AbortSignal, asker?: Asker): Promise<AydSession>;
  /**
   * Replaces the session whose token AYD refused. When another job already
   * replaced it, that newer session is returned instead of opening a third.
   */
  renew(
    phone: string,
    refusedToken: string,
    signal?: AbortSignal,
    asker?: Asker,
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
 *   open: (phone, signal, identity) =>
 *     createAydSession(aydOptions, phone, { now: Date.now(), signal, identity }),
 * });
 * const { token } = await sessions.getOrCreate("+15551234567");
 * ```
 */
export function createSessionStore(
  kv: Deno.Kv,
  deps: { open: OpenSession; now?: () => number },
): SessionStore {
  const now = deps.now ?? Date.now;
  const once = singleFlight<AydSession>();

  async function replace(
    phone: string,
    current: Deno.KvEntryMaybe<AydSession>,
    signal?: AbortSignal,
    asker?: Asker,
  ): Promise<AydSession> {
    const opened = await deps.open(phone, signal, asker?.identity);
    const session: AydSession = { ...opened, createdAt: now() };
    if (asker) session.identity = asker.fingerprint;
    const op = kv.atomic().check(current).set(sessionKey(phone), session);
    const result = await expireAt(op, sessionKey(phone), session.expiresAt).commit();
    if (result.ok) return session;
    // Another instance stored one first: use it, so the number keeps one.
    const winner = await kv.get<AydSession>(sessionKey(phone));
    return usable(winner.value, now(), asker) ? winner.value : session;
  }

  return {
    async getOrCreate(phone, signal, asker) {
      const entry = await kv.get<AydSession>(sessionKey(phone));
      if (usable(entry.value, now(), asker)) return entry.value;
      return once(phone, () => replace(phone, entry, signal, asker));
    },
    renew(phone, refusedToken, signal, asker) {
      return once(phone, async () => {
        const entry = await kv.get<AydSession>(sessionKey(phone));
        if (usable(entry.value, now(), asker) && entry.value.token !== refusedToken) {
          return entry.value;
        }
        return replace(phone, entry, signal, asker);
      });
    },
    async drop(phone) {
      await kv.delete(sessionKey(phone));
    },
  };
}

/**
 * Live (KV keeps expired keys readable for a while; `expiresAt` decides),
 * and opened as the one asking now.
 */
function usable(
  session: AydSession | null,
  now: number,
  asker: Asker | undefined,
): session is AydSession {
  return session !== null && session.expiresAt > now && session.identity === asker?.fingerprint;
}
