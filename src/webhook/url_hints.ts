/**
 * Signature mismatches explained. When a Twilio callback fails the
 * signature check, the URLs a proxy can make of the configured one are
 * tried (`_url_candidates.ts`); when Twilio signed one of them, the request
 * is still refused, but the URL to configure is kept here, in memory, for
 * the log, `/health` and the console, until a callback on that route passes.
 *
 * @module
 */
import { candidateUrls, type FailedRequest, redactUrl, signedUrl } from "./_url_candidates.ts";
import type { FormParams } from "./twilio_request.ts";

export { redactUrl } from "./_url_candidates.ts";

/** The two signed routes, and the variable that holds each one's URL. */
export const HINTED_ROUTES = {
  webhook: "TWILIO_WEBHOOK_URL",
  status: "TWILIO_STATUS_CALLBACK_URL",
} as const;

/** `webhook` (`POST /whatsapp`) or `status` (`POST /twilio/status`). */
export type HintedRoute = keyof typeof HINTED_ROUTES;

/** What Twilio signed, beside what the bridge checks against; passwords shown as `***`. */
export interface UrlHint {
  route: HintedRoute;
  /** The variable to change. */
  variable: (typeof HINTED_ROUTES)[HintedRoute];
  /** The URL the bridge checks signatures against now. */
  configured: string;
  /** The URL Twilio signed: the value to give {@linkcode UrlHint.variable}. */
  signedFor: string;
  /** When a request last showed it (epoch ms). */
  seenAt: number;
}

/** The hints of one process. */
export interface UrlHints {
  /** Every hint held now, webhook first. */
  current(): UrlHint[];
  /**
   * A request on `route` failed the check: finds the URL Twilio signed.
   * `announce` is true at most once per {@linkcode URL_HINT_LOG_EVERY_MS}
   * per route: the caller logs it then.
   */
  failed(
    route: HintedRoute,
    request: FailedRequest & {
      configured: string;
      authToken: string;
      signature: string;
      params: FormParams;
    },
  ): { hint: UrlHint; announce: boolean } | undefined;
  /** A request on `route` passed the check: its hint, if any, is over. */
  passed(route: HintedRoute): void;
}

/** How often `webhook.url_mismatch` may be logged per route. */
export const URL_HINT_LOG_EVERY_MS = 60_000;

/**
 * How often per route the candidates are tried. Each try costs a few dozen
 * HMACs over the body; a flood of forged requests must not make every one
 * of them that dear. A real mismatch repeats with every message, so the
 * hint still shows at the next one.
 */
export const URL_HINT_TRY_EVERY_MS = 1_000;

/**
 * Creates the hints of one process.
 *
 * @example
 * ```ts
 * const hints = createUrlHints();
 * const found = hints.failed("webhook", { ...request, configured, authToken, signature, params });
 * if (found?.announce) log.warn("webhook.url_mismatch", { signed_for: found.hint.signedFor });
 * ```
 */
export function createUrlHints(options: { now?: () => number } = {}): UrlHints {
  const now = options.now ?? Date.now;
  const held = new Map<HintedRoute, UrlHint>();
  const announcedAt = new Map<HintedRoute, number>();
  const triedAt = new Map<HintedRoute, number>();
  const since = (map: Map<HintedRoute, number>, route: HintedRoute, at: number) =>
    at - (map.get(route) ?? -Infinity);

  return {
    current: () =>
      (Object.keys(HINTED_ROUTES) as HintedRoute[]).flatMap((route) => {
        const hint = held.get(route);
        return hint ? [hint] : [];
      }),
    failed(route, request) {
      const at = now();
      if (since(triedAt, route, at) < URL_HINT_TRY_EVERY_MS) return undefined;
      triedAt.set(route, at);
      const signedFor = signedUrl({
        authToken: request.authToken,
        signature: request.signature,
        params: request.params,
        candidates: candidateUrls(request.configured, request),
      });
      if (signedFor === undefined) return undefined;
      const hint: UrlHint = {
        route,
        variable: HINTED_ROUTES[route],
        configured: redactUrl(request.configured.split("#", 1)[0]),
        signedFor: redactUrl(signedFor),
        seenAt: at,
      };
      held.set(route, hint);
      const announce = since(announcedAt, route, at) >= URL_HINT_LOG_EVERY_MS;
      if (announce) announcedAt.set(route, at);
      return { hint, announce };
    },
    passed(route) {
      held.delete(route);
    },
  };
}
