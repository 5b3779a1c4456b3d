/**
 * Console sign-in sessions: the browser holds an opaque random id in an
 * HttpOnly, SameSite=Strict cookie scoped to `/admin`; KV holds only its
 * hash (`["console_sessions", sha256(id)]`) with the session's CSRF token
 * and expiry. The admin token itself never leaves the sign-in form.
 *
 * @module
 */
import type { Context } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { expireAt } from "../storage/mod.ts";
import { sameSecret, sha256Hex } from "./_auth.ts";

/** The cookie's name. */
export const SESSION_COOKIE = "bridge_console";
/** How long a sign-in lasts. */
export const SESSION_TTL_MS = 8 * 60 * 60 * 1000;

/** What KV keeps about a signed-in browser. */
export interface ConsoleSession {
  /** Sent back in a hidden field with every form, checked on every POST. */
  csrf: string;
  expiresAt: number;
}

const sessionKey = (id: string): Deno.KvKey => ["console_sessions", sha256Hex(id)];

function randomToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_")
    .replace(/=+$/, "");
}

/**
 * Starts a session and sets its cookie on the response; `Secure` when the
 * browser reached us over https (directly or through a proxy that says so).
 *
 * @example
 * ```ts
 * await startSession(kv, c, Date.now());
 * return c.redirect("/admin", 303);
 * ```
 */
export async function startSession(kv: Deno.Kv, c: Context, now: number): Promise<void> {
  const id = randomToken();
  const session: ConsoleSession = { csrf: randomToken(), expiresAt: now + SESSION_TTL_MS };
  await expireAt(kv.atomic().set(sessionKey(id), session), sessionKey(id), session.expiresAt)
    .commit();
  setCookie(c, SESSION_COOKIE, id, {
    path: "/admin",
    httpOnly: true,
    sameSite: "Strict",
    secure: cameOverHttps(c),
    maxAge: SESSION_TTL_MS / 1000,
  });
}

/**
 * The session of the request's cookie, if it is known and not expired (KV
 * may still return an expired one for a while).
 *
 * @example
 * ```ts
 * const session = await readSession(kv, c, Date.now());
 * if (!session) return c.redirect("/admin/login", 303);
 * ```
 */
export async function readSession(
  kv: Deno.Kv,
  c: Context,
  now: number,
): Promise<ConsoleSession | undefined> {
  const id = getCookie(c, SESSION_COOKIE);
  if (!id || id.length > 100) return undefined;
  const { value } = await kv.get<ConsoleSession>(sessionKey(id));
  return value && value.expiresAt > now ? value : undefined;
}

/**
 * Ends the request's session, in KV and in the browser.
 *
 * @example
 * ```ts
 * await endSession(kv, c);
 * ```
 */
export async function endSession(kv: Deno.Kv, c: Context): Promise<void> {
  const id = getCookie(c, SESSION_COOKIE);
  if (id && id.length <= 100) await kv.delete(sessionKey(id));
  deleteCookie(c, SESSION_COOKIE, {
    path: "/admin",
    httpOnly: true,
    sameSite: "Strict",
    secure: cameOverHttps(c),
  });
}

/**
 * Whether a form post may be acted on: it carries the session's CSRF token
 * and, where the browser says where it came from, it came from this site.
 *
 * @example
 * ```ts
 * if (!isSameSitePost(c, form.get("csrf"), session)) return c.text("Forbidden", 403);
 * ```
 */
export function isSameSitePost(
  c: Context,
  csrf: unknown,
  session: ConsoleSession,
): boolean {
  return isSameOrigin(c) && typeof csrf === "string" && sameSecret(csrf, session.csrf);
}

/**
 * Whether the request's `Origin` and `Sec-Fetch-Site`, when present, say it
 * comes from this site. Only the host is compared: behind a TLS-terminating
 * proxy the scheme we see is not the one the browser used.
 *
 * @example
 * ```ts
 * if (!isSameOrigin(c)) return c.text("Forbidden", 403);
 * ```
 */
export function isSameOrigin(c: Context): boolean {
  const site = c.req.header("sec-fetch-site");
  if (site && site !== "same-origin" && site !== "none") return false;
  const origin = c.req.header("origin");
  if (origin === undefined) return true;
  try {
    return new URL(origin).host === (c.req.header("host") ?? new URL(c.req.url).host);
  } catch {
    return false; // "null" and other opaque origins
  }
}

function cameOverHttps(c: Context): boolean {
  return new URL(c.req.url).protocol === "https:" ||
    c.req.header("x-forwarded-proto")?.split(",", 1)[0].trim() === "https";
}
