/**
 * The admin API under `/admin`, present only when `ADMIN_TOKEN` is set:
 * `Authorization: Bearer <ADMIN_TOKEN>`, compared in constant time; an
 * address that keeps failing is locked out for a while.
 *
 * @module
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { Hono } from "hono";
import { getConnInfo } from "hono/deno";
import type { DeadLetter } from "./conversation.ts";
import { retryDeadLetter } from "./dead_letters.ts";
import { deadLetterKey, type JobBackend } from "./jobs.ts";
import { type Logger, maskPhone } from "./log.ts";
import { sessionKey } from "./sessions.ts";
import { exportSessionsCsvStream } from "./sessions_csv.ts";
import { readStats } from "./stats.ts";

/** What the admin API needs. */
export interface AdminDeps {
  kv: Deno.Kv;
  log: Logger;
  token: string;
  backend: JobBackend;
  /** Starts the lane of `phone` now, so a retried message need not wait for a sweep. */
  kick: (phone: string) => void;
  now: () => number;
}

/** Failed attempts from one address before it is locked out. */
export const MAX_FAILURES = 5;
/** How long failures are remembered, and a lockout lasts. */
export const LOCKOUT_MS = 10 * 60_000;

/**
 * Creates the admin sub-app.
 *
 * @example
 * ```ts
 * app.route("/admin", createAdminApp({ kv, log, token, backend: "kv-queue", kick, now: Date.now }));
 * ```
 */
export function createAdminApp(deps: AdminDeps): Hono {
  const admin = new Hono();
  const expected = digest(deps.token);
  const failures = new Map<string, { count: number; since: number }>();

  admin.use(async (c, next) => {
    const address = clientAddress(c);
    const now = deps.now();
    const record = failures.get(address);
    if (record && now - record.since > LOCKOUT_MS) failures.delete(address);
    const current = failures.get(address);
    if (current && current.count >= MAX_FAILURES) {
      const retryAfter = Math.ceil((current.since + LOCKOUT_MS - now) / 1000);
      return c.text("Too Many Requests", 429, { "retry-after": String(retryAfter) });
    }
    const header = c.req.header("authorization") ?? "";
    const given = header.startsWith("Bearer ") ? header.slice(7) : "";
    if (!timingSafeEqual(digest(given), expected)) {
      failures.set(address, { count: (current?.count ?? 0) + 1, since: current?.since ?? now });
      deps.log.warn("admin.unauthorized", { failures: (current?.count ?? 0) + 1 });
      return c.text("Unauthorized", 401, { "www-authenticate": 'Bearer realm="admin"' });
    }
    failures.delete(address);
    await next();
  });

  admin.get("/stats", async (c) => c.json(await readStats(deps.kv, deps.now())));

  admin.get("/sessions.csv", (c) => {
    deps.log.info("admin.sessions_exported");
    return c.body(exportSessionsCsvStream(deps.kv, { now: deps.now() }), 200, {
      "content-type": "text/csv; charset=utf-8",
      "content-disposition": 'attachment; filename="ayd_sessions.csv"',
      "cache-control": "no-store",
    });
  });

  admin.delete("/sessions/:phone", async (c) => {
    const phone = normalizePhone(c.req.param("phone"));
    if (!phone) return c.text("Bad Request: phone must be +E164", 400);
    const existing = await deps.kv.get(sessionKey(phone));
    if (existing.versionstamp === null) return c.text("Not Found", 404);
    await deps.kv.delete(sessionKey(phone));
    deps.log.info("admin.session_dropped", { from: maskPhone(phone) });
    return c.body(null, 204);
  });

  admin.get("/dead-letters", async (c) => {
    const letters = await Array.fromAsync(deps.kv.list<DeadLetter>({ prefix: ["dead_letters"] }));
    return c.json({
      deadLetters: letters.map(({ value }) => ({
        messageSid: value.messageSid,
        from: maskPhone(value.phone),
        reason: value.reason,
        attempts: value.attempts,
        failedAt: new Date(value.failedAt).toISOString(),
      })),
    });
  });

  admin.post("/dead-letters/:id/retry", async (c) => {
    const id = c.req.param("id");
    const letter = await deps.kv.get<DeadLetter>(deadLetterKey(id));
    const outcome = await retryDeadLetter(deps.kv, id, { backend: deps.backend, now: deps.now() });
    if (outcome === "queued") {
      deps.kick(letter.value!.phone);
      deps.log.info("admin.dead_letter_retried", { message_sid: id });
      return c.json({ status: "queued" }, 202);
    }
    const status = outcome === "not_found" ? 404 : outcome === "message_expired" ? 410 : 409;
    return c.json({ status: outcome }, status);
  });

  return admin;
}

function digest(value: string): Uint8Array {
  return createHash("sha256").update(value).digest();
}

function clientAddress(c: Parameters<typeof getConnInfo>[0]): string {
  try {
    return getConnInfo(c).remote.address ?? "unknown";
  } catch {
    return "unknown";
  }
}

/** `+15551234567`, `15551234567` or `whatsapp:+15551234567` → `+15551234567`. */
function normalizePhone(raw: string): string | undefined {
  const phone = "+" + raw.replace(/^whatsapp:/i, "").replace(/^\+/, "");
  return /^\+[1-9]\d{6,14}$/.test(phone) ? phone : undefined;
}
