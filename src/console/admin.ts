/**
 * The admin API under `/admin`, present only when `ADMIN_TOKEN` is set:
 * `Authorization: Bearer <ADMIN_TOKEN>`, compared in constant time; an
 * address that keeps failing is locked out for a while. The operator console
 * (`console.tsx`) lives beside it under the same prefix and shares the
 * lockout.
 *
 * @module
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { clientAddress, createLockout, tokenChecker } from "./_auth.ts";
import { readSession } from "./_session.ts";
import { mountConsole } from "./pages.tsx";
import {
  type DeadLetter,
  deadLetterKey,
  type JobBackend,
  readStats,
  retryDeadLetter,
} from "../jobs/mod.ts";
import { type Logger, maskPhone } from "../log.ts";
import { exportSessionsCsvStream, importSessionsCsv, sessionKey } from "../ayd/mod.ts";
import type { UrlHint } from "../webhook/mod.ts";
import { flag, mountPeopleApi } from "./people_api.ts";
import { deadLetterRows } from "./_data.ts";

/** The largest `ayd_sessions.csv` accepted over HTTP: 100,000 sessions take about 12 MB. */
export const MAX_SESSIONS_CSV_BYTES = 32 * 1024 * 1024;

/** What the admin API needs. */
export interface AdminDeps {
  kv: Deno.Kv;
  log: Logger;
  token: string;
  backend: JobBackend;
  /** Starts the lane of `phone` now, so a retried message need not wait for a sweep. */
  kick: (phone: string) => void;
  now: () => number;
  /** Why KV cannot be written right now, if it cannot; the overview shows it. */
  storageTrouble?: () => string | undefined;
  /** The URLs Twilio signed that differ from the configured ones; the overview shows them. */
  urlHints?: () => UrlHint[];
  /** How AYD is reached; the overview shows it. */
  aydMode?: "session" | "chat";
  /** Why AYD refuses the bridge's credentials, if it does; the overview shows it. */
  aydProblem?: () => string | undefined;
  /** `ALLOWED_NUMBERS` is unset: the directory, once not empty, lists who may ask. */
  directoryGates?: boolean;
}

/** The downloads the console links to, which a browser fetches with its cookie. */
const CONSOLE_DOWNLOADS = ["/admin/sessions.csv", "/admin/people.csv"];

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
  const isAdminToken = tokenChecker(deps.token);
  const lockout = createLockout(deps.now);
  // The console's pages come first: they sign in with a cookie, not a bearer.
  mountConsole(admin, { ...deps, lockout, isAdminToken });

  admin.use(async (c, next) => {
    const address = clientAddress(c);
    const retryAfter = lockout.retryAfter(address);
    if (retryAfter !== undefined) {
      return c.text("Too Many Requests", 429, { "retry-after": String(retryAfter) });
    }
    const header = c.req.header("authorization") ?? "";
    const given = header.startsWith("Bearer ") ? header.slice(7) : "";
    // The console links to the CSV downloads, which a browser fetches with its cookie.
    const viaConsole = !header && c.req.method === "GET" &&
      CONSOLE_DOWNLOADS.includes(c.req.path) &&
      await readSession(deps.kv, c, deps.now()) !== undefined;
    if (!viaConsole && !isAdminToken(given)) {
      const failures = lockout.fail(address);
      deps.log.warn("admin.unauthorized", { failures });
      return c.text("Unauthorized", 401, { "www-authenticate": 'Bearer realm="admin"' });
    }
    if (!viaConsole) lockout.clear(address);
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

  // What `deno task import-sessions` does, for a KV no task can reach: Deno
  // Deploy's, which KV Connect does not serve outside Deploy.
  admin.post(
    "/sessions.csv",
    bodyLimit({
      maxSize: MAX_SESSIONS_CSV_BYTES,
      onError: (c) => c.text("Payload Too Large", 413),
    }),
    async (c) => {
      const report = await importSessionsCsv(deps.kv, await c.req.text(), {
        now: deps.now(),
        dryRun: flag(c.req.query("dry_run")),
        skipInvalid: flag(c.req.query("skip_invalid")),
      });
      const { invalid, replaced, ...counts } = report;
      deps.log.info("admin.sessions_imported", {
        ...counts,
        invalid: invalid.length,
        replaced: replaced.length,
      });
      const refused = invalid.length > 0 && !counts.written && !flag(c.req.query("dry_run"));
      return c.json(report, refused ? 422 : 200);
    },
  );

  admin.delete("/sessions/:phone", async (c) => {
    const phone = normalizePhone(c.req.param("phone"));
    if (!phone) return c.text("Bad Request: phone must be +E164", 400);
    const existing = await deps.kv.get(sessionKey(phone));
    if (existing.versionstamp === null) return c.text("Not Found", 404);
    await deps.kv.delete(sessionKey(phone));
    deps.log.info("admin.session_dropped", { from: maskPhone(phone) });
    return c.body(null, 204);
  });

  mountPeopleApi(admin, deps);

  admin.get("/dead-letters", async (c) => {
    const iso = (at: number) => new Date(at).toISOString();
    const letters = await deadLetterRows(deps.kv);
    return c.json({
      deadLetters: letters.map((letter) => ({
        messageSid: letter.messageSid,
        from: letter.from,
        reason: letter.reason,
        attempts: letter.attempts,
        failedAt: iso(letter.failedAt),
        receivedAt: letter.receivedAt === undefined ? undefined : iso(letter.receivedAt),
        history: {
          notes: letter.history.notes.map((note) => ({ ...note, at: iso(note.at) })),
          omitted: letter.history.omitted,
        },
        retryPlan: letter.retryPlan,
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

/** `+15551234567`, `15551234567` or `whatsapp:+15551234567` → `+15551234567`. */
function normalizePhone(raw: string): string | undefined {
  const phone = "+" + raw.replace(/^whatsapp:/i, "").replace(/^\+/, "");
  return /^\+[1-9]\d{6,14}$/.test(phone) ? phone : undefined;
}
