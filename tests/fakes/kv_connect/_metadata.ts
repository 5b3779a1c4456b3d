/**
 * The metadata exchange and the data path's header checks, in denokv's order
 * (`denokv/main.rs`: `metadata_endpoint`, `authentication_middleware`).
 *
 * @module
 */
import { ApiError, MESSAGES } from "./_limits.ts";

/** Who the server is: its access token, the data path's token and the database id. */
export interface Identity {
  accessToken: string;
  dataToken: string;
  databaseId: string;
}

/**
 * Answers a metadata exchange: the protocol version first (a missing or
 * unreadable body is a version-1 client, refused), then the bearer token.
 * The metadata lasts a day of real time, as denokv's does: the client
 * schedules its refresh by its own clock, so it must not follow a test clock.
 *
 * @example
 * ```ts
 * const metadata = await exchangeMetadata(request, identity); // { version: 3, … }
 * ```
 */
export async function exchangeMetadata(request: Request, identity: Identity) {
  const body = await request.text();
  const supported = parseSupportedVersions(request.headers.get("content-type"), body);
  if (!supported) throw new ApiError(400, MESSAGES.minimumProtocolVersion);
  const version = supported.includes(3) ? 3 : supported.includes(2) ? 2 : undefined;
  if (!version) throw new ApiError(400, MESSAGES.noMatchingProtocolVersion);
  if (bearer(request) !== identity.accessToken) throw new ApiError(401, MESSAGES.invalidToken);
  return {
    version,
    databaseId: identity.databaseId,
    endpoints: [{ url: "/v2", consistency: "strong" }],
    token: identity.dataToken,
    expiresAt: new Date(Date.now() + 24 * 60 * 60 * 1000).toISOString(),
  };
}

/**
 * Refuses a data path request whose `x-denokv-version`, bearer token or
 * `x-denokv-database-id` is not the one the metadata exchange handed out.
 *
 * @example
 * ```ts
 * checkDataPathHeaders(request, identity); // throws ApiError(401, "Invalid access token.")
 * ```
 */
export function checkDataPathHeaders(request: Request, identity: Identity): void {
  const version = request.headers.get("x-denokv-version");
  if (version !== "2" && version !== "3") throw new ApiError(400, MESSAGES.invalidProtocolVersion);
  if (bearer(request) !== identity.dataToken) throw new ApiError(401, MESSAGES.invalidToken);
  const databaseId = request.headers.get("x-denokv-database-id")?.toLowerCase();
  if (databaseId !== identity.databaseId) throw new ApiError(400, MESSAGES.invalidDatabaseId);
}

/** The bearer token; throws denokv's 401 for a missing or malformed header. */
function bearer(request: Request): string {
  const header = request.headers.get("authorization") ?? "";
  const space = header.indexOf(" ");
  if (space < 0 || header.slice(0, space).toLowerCase() !== "bearer") {
    throw new ApiError(401, space < 0 ? MESSAGES.malformedAuthorization : MESSAGES.invalidToken);
  }
  return header.slice(space + 1);
}

/** The body's `supportedVersions`, or undefined where denokv's JSON extractor gives up. */
function parseSupportedVersions(contentType: string | null, body: string): number[] | undefined {
  if (!contentType?.toLowerCase().startsWith("application/json")) return undefined;
  try {
    const { supportedVersions } = JSON.parse(body);
    return Array.isArray(supportedVersions) &&
        supportedVersions.every((v) => Number.isInteger(v) && v >= 0)
      ? supportedVersions
      : undefined;
  } catch {
    return undefined;
  }
}
