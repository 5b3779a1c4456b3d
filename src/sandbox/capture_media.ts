/**
 * Voice notes in the Twilio stand-in, served the way Twilio serves inbound
 * media: the URL on the API host needs the account's Basic auth and answers
 * with a redirect to a short-lived URL on a second server (Twilio's media
 * host), which serves the bytes to anyone holding that URL and refuses a
 * request that brings credentials along. The bridge's media fetch meets the
 * same rules as in production.
 *
 * @module
 */
import { randomSid } from "./signed_post.ts";

/** A kept voice note. */
export interface StoredMedium {
  bytes: Uint8Array<ArrayBuffer>;
  contentType: string;
}

/** The stand-in's media: kept, served behind Basic auth and a redirect. */
export interface CaptureMedia {
  /**
   * Keeps a voice note of inbound message `messageSid` and gives its path on
   * the API host (`/2010-04-01/Accounts/AC…/Messages/MM…/Media/ME…`) and id.
   */
  add(messageSid: string, medium: StoredMedium): { path: string; id: string };
  /** A kept voice note by id (`ME…`), for the chat page to play. */
  get(id: string): StoredMedium | undefined;
  /** Twilio's answer to a `GET` of a media path on its API host, or undefined for another path. */
  serve(req: Request): Response | undefined;
  close(): Promise<void>;
}

/** The stand-in keeps the newest notes up to this many bytes in all. */
const MAX_KEPT_BYTES = 64 * 1024 * 1024;
/** How long the media host's URL works, like Twilio's pre-signed ones. */
const URL_LIFETIME_MS = 5 * 60 * 1000;
const MEDIA_PATH = /^\/2010-04-01\/Accounts\/([^/]+)\/Messages\/([^/]+)\/Media\/([^/]+)$/;

/**
 * Starts the media host on a free port of 127.0.0.1.
 *
 * @example
 * ```ts
 * const media = startCaptureMedia({ accountSid, authToken });
 * const { path } = media.add("MM…", { bytes, contentType: "audio/ogg" });
 * ```
 */
export function startCaptureMedia(
  options: { accountSid: string; authToken: string; now?: () => number },
): CaptureMedia {
  const now = options.now ?? Date.now;
  const kept = new Map<string, StoredMedium & { path: string }>();
  /** Token of a short-lived URL → medium id and when the URL stops working. */
  const tokens = new Map<string, { id: string; until: number }>();
  const auth = `Basic ${btoa(`${options.accountSid}:${options.authToken}`)}`;

  function forgetOldest() {
    let total = [...kept.values()].reduce((sum, m) => sum + m.bytes.length, 0);
    for (const [id, medium] of kept) {
      if (total <= MAX_KEPT_BYTES) break;
      kept.delete(id);
      total -= medium.bytes.length;
    }
    for (const [token, { until }] of tokens) if (until < now()) tokens.delete(token);
  }

  const host = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const url = new URL(req.url);
    if (req.headers.has("authorization")) {
      // As Twilio's media host (S3) does: a second credential is not taken.
      return xmlError(400, "InvalidArgument", "Only one auth mechanism allowed");
    }
    const grant = tokens.get(url.searchParams.get("Signature") ?? "");
    const medium = grant && grant.until >= now() && url.pathname === `/media/${grant.id}`
      ? kept.get(grant.id)
      : undefined;
    if (req.method !== "GET" || !medium) {
      return xmlError(403, "AccessDenied", "Request has expired");
    }
    return new Response(medium.bytes, {
      headers: { "content-type": medium.contentType, "cache-control": "private, max-age=300" },
    });
  });
  const hostUrl = `http://127.0.0.1:${host.addr.port}`;

  return {
    add(messageSid, medium) {
      const id = randomSid("ME");
      const path = `/2010-04-01/Accounts/${options.accountSid}/Messages/${messageSid}/Media/${id}`;
      kept.set(id, { ...medium, path });
      forgetOldest();
      return { path, id };
    },
    get(id) {
      return kept.get(id);
    },
    serve(req) {
      const match = MEDIA_PATH.exec(new URL(req.url).pathname);
      if (!match || req.method !== "GET") return undefined;
      if (req.headers.get("authorization") !== auth) {
        return twilioError(401, 20003, "Authenticate");
      }
      const medium = kept.get(match[3]);
      if (!medium || medium.path !== match[0]) {
        return twilioError(404, 20404, `The requested resource ${match[0]} was not found`);
      }
      const token = randomSid("");
      tokens.set(token, { id: match[3], until: now() + URL_LIFETIME_MS });
      const expires = Math.floor((now() + URL_LIFETIME_MS) / 1000);
      const location = `${hostUrl}/media/${match[3]}?Expires=${expires}&Signature=${token}`;
      return new Response(null, { status: 307, headers: { location } });
    },
    close() {
      return host.shutdown();
    },
  };
}

/**
 * Twilio's JSON error shape, which the `twilio` package reads.
 *
 * @example
 * ```ts
 * twilioError(401, 20003, "Authenticate"); // 401 {"code":20003,"message":"Authenticate",…}
 * ```
 */
export function twilioError(status: number, code: number, message: string): Response {
  return Response.json({
    code,
    message,
    more_info: `https://www.twilio.com/docs/errors/${code}`,
    status,
  }, { status });
}

function xmlError(status: number, code: string, message: string): Response {
  const xml = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code>` +
    `<Message>${message}</Message></Error>`;
  return new Response(xml, { status, headers: { "content-type": "application/xml" } });
}
