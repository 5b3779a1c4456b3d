/**
 * The URLs a proxy can make of the one Twilio called, for a request whose
 * signature did not match the configured URL: scheme from
 * `X-Forwarded-Proto` (or `Forwarded`), host from `X-Forwarded-Host`,
 * `Forwarded` or `Host`, the default port added or removed, the trailing
 * slash toggled, the request's own path (with `X-Forwarded-Prefix` in front
 * when given) and its own query. Only run after a failed check.
 *
 * @module
 */
import { timingSafeEqual } from "node:crypto";
import { getExpectedTwilioSignature } from "twilio/lib/webhooks/webhooks.js";
import type { FormParams } from "./twilio_request.ts";

/** What is known of the request that failed the check. */
export interface FailedRequest {
  /** The URL as this server saw it (`Request.url`). */
  url: string;
  headers: Headers;
}

/** A URL split without normalizing it, so the path and query keep Twilio's characters. */
interface Parts {
  scheme: string;
  userInfo: string;
  host: string;
  path: string;
  query: string;
}

function split(url: string): Parts | undefined {
  const match = /^([a-z][a-z0-9+.-]*:)\/\/([^/?#]*)([^?#]*)(\?[^#]*)?/i.exec(url);
  if (!match) return undefined;
  const authority = match[2];
  const at = authority.lastIndexOf("@");
  return {
    scheme: match[1].toLowerCase(),
    userInfo: authority.slice(0, at + 1),
    host: authority.slice(at + 1),
    path: match[3],
    query: match[4] ?? "",
  };
}

const DEFAULT_PORT: Record<string, string> = { "http:": "80", "https:": "443" };

/** `host` as given, without its port, and with the scheme's default port. */
function portVariants(host: string, scheme: string): string[] {
  const colon = host.indexOf(":", host.lastIndexOf("]") + 1);
  const name = colon === -1 ? host : host.slice(0, colon);
  const port = DEFAULT_PORT[scheme];
  return port ? [host, name, `${name}:${port}`] : [host, name];
}

/** The other form of `path`: with a trailing slash removed, or added. */
function toggledSlash(path: string): string {
  return path.endsWith("/") ? path.slice(0, -1) : `${path}/`;
}

/** The first value of a list header (`a, b` → `a`), if any. */
function firstOf(headers: Headers, name: string): string | undefined {
  return headers.get(name)?.split(",", 1)[0].trim() || undefined;
}

/** `proto` and `host` of the first element of an RFC 7239 `Forwarded` header. */
function forwarded(headers: Headers): { proto?: string; host?: string } {
  const first = headers.get("forwarded")?.split(",", 1)[0];
  const found: Record<string, string> = {};
  for (const pair of first?.split(";") ?? []) {
    const [name, value] = pair.split("=", 2).map((part) => part?.trim());
    if (name && value) found[name.toLowerCase()] = value.replace(/^"|"$/g, "");
  }
  return { proto: found.proto, host: found.host };
}

const present = <T>(values: (T | undefined)[]): T[] => [
  ...new Set(values.filter((v): v is T => v !== undefined && v !== "")),
];

/**
 * The URLs Twilio may have signed, given the configured one and what the
 * request says of itself; the configured URL itself is not among them.
 *
 * @example
 * ```ts
 * const headers = new Headers({ "x-forwarded-proto": "http", host: "bridge.example.com" });
 * candidateUrls("https://bridge.example.com/whatsapp", {
 *   url: "http://bridge.example.com/whatsapp",
 *   headers,
 * }).includes("http://bridge.example.com/whatsapp"); // true
 * ```
 */
export function candidateUrls(configured: string, request: FailedRequest): string[] {
  const base = split(configured.split("#", 1)[0]);
  const seen = split(request.url);
  if (!base || !seen) return [];
  const { headers } = request;
  const proxy = forwarded(headers);
  const schemes = present([
    base.scheme,
    firstOf(headers, "x-forwarded-proto")?.toLowerCase().replace(/:?$/, ":"),
    proxy.proto?.toLowerCase().replace(/:?$/, ":"),
    seen.scheme,
  ]).filter((scheme) => scheme === "http:" || scheme === "https:");
  const forwardedPort = firstOf(headers, "x-forwarded-port");
  const hosts = present([
    base.host,
    firstOf(headers, "x-forwarded-host"),
    proxy.host,
    headers.get("host") ?? undefined,
    seen.host,
  ]);
  if (forwardedPort && /^\d+$/.test(forwardedPort)) {
    hosts.push(...hosts.map((host) => `${portVariants(host, "")[1]}:${forwardedPort}`));
  }
  const prefix = firstOf(headers, "x-forwarded-prefix")?.replace(/\/+$/, "");
  const prefixed = prefix ? `${prefix.startsWith("/") ? "" : "/"}${prefix}${seen.path}` : undefined;
  // An empty path or query is a candidate too: `https://host` is not `https://host/`.
  const paths = [...new Set([base.path, seen.path, prefixed ?? base.path])]
    .flatMap((path) => [path, toggledSlash(path)]);
  const queries = [...new Set([base.query, seen.query, ""])];

  const urls = new Set<string>();
  for (const scheme of schemes) {
    for (const host of new Set(hosts.flatMap((host) => portVariants(host, scheme)))) {
      for (const path of paths) {
        for (const query of queries) urls.add(`${scheme}//${base.userInfo}${host}${path}${query}`);
      }
    }
  }
  for (const host of portVariants(base.host, base.scheme)) {
    urls.delete(`${base.scheme}//${base.userInfo}${host}${base.path}${base.query}`);
  }
  return [...urls];
}

/**
 * The candidate that `signature` was computed for with `authToken`, if any.
 * Without the token no signature matches any of them, so a forged request
 * never gets one.
 *
 * @example
 * ```ts
 * signedUrl({ authToken, signature, params, candidates: candidateUrls(url, request) });
 * ```
 */
export function signedUrl(input: {
  authToken: string;
  signature: string;
  params: FormParams;
  candidates: string[];
}): string | undefined {
  const given = new TextEncoder().encode(input.signature);
  return input.candidates.find((url) => {
    const expected = new TextEncoder().encode(
      getExpectedTwilioSignature(input.authToken, url, input.params),
    );
    return expected.length === given.length && timingSafeEqual(expected, given);
  });
}

/**
 * `url` fit for a log line or a page: a password in it is replaced by `***`.
 *
 * @example
 * ```ts
 * redactUrl("https://twilio:s3cret@bridge.example.com/whatsapp");
 * // "https://twilio:***@bridge.example.com/whatsapp"
 * ```
 */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/?#@:]*):[^/?#@]*@/i, "$1:***@");
}
