/**
 * The operator console: server-rendered pages under `/admin` for people with
 * a browser, beside the bearer-token JSON API. Signing in with the admin
 * token starts a cookie session ({@link ./_session.ts}); every form
 * carries that session's CSRF token. Without a session, pages redirect to the
 * sign-in form and posts are refused.
 *
 * @module
 */
import type { Context, Hono, MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { clientAddress, type Lockout } from "./_auth.ts";
import { deadLetterRows, readOverview, recentJobs } from "./_data.ts";
import {
  type ConsoleSession,
  endSession,
  isSameOrigin,
  isSameSitePost,
  readSession,
  startSession,
} from "./_session.ts";
import {
  DeadLettersPage,
  JobsPage,
  LoginPage,
  MessagePage,
  OverviewPage,
  UnavailablePage,
} from "./_views.tsx";
import {
  type DeadLetter,
  deadLetterKey,
  type JobBackend,
  retryDeadLetter,
  type RetryOutcome,
} from "../jobs/mod.ts";
import type { Logger } from "../log.ts";
import type { UrlHint } from "../webhook/mod.ts";
import { withinMs } from "../storage/mod.ts";
import { mountPeoplePages } from "./people_pages.tsx";

/** What the console needs; the lockout is the admin API's, shared. */
export interface ConsoleDeps {
  kv: Deno.Kv;
  log: Logger;
  backend: JobBackend;
  kick: (phone: string) => void;
  now: () => number;
  /** Why KV cannot be written right now, if it cannot. */
  storageTrouble?: () => string | undefined;
  /** The URLs Twilio signed that differ from the configured ones. */
  urlHints?: () => UrlHint[];
  /** How AYD is reached, and why it refuses the bridge's credentials, if it does. */
  aydMode?: "session" | "chat";
  aydProblem?: () => string | undefined;
  /** `ALLOWED_NUMBERS` is unset: the directory, once not empty, lists who may ask. */
  directoryGates?: boolean;
  lockout: Lockout;
  isAdminToken: (given: string) => boolean;
}

/** How many jobs the "Recent jobs" page lists. */
export const RECENT_JOBS = 50;

/**
 * How long the session's read, and the overview's, may take before the page
 * answers without them: a KV Connect server that is away is waited for
 * without end by Deno's client, and the page must still answer (in under
 * 2 s, its two reads together).
 */
export const READ_WAIT_MS = 800;

type Env = { Variables: { session: ConsoleSession } };

const RETRY_OUTCOMES: readonly RetryOutcome[] = [
  "queued",
  "not_found",
  "message_expired",
  "changed",
];

/**
 * Adds the console's routes to the admin sub-app. Call it before the API's
 * bearer check is added, so that these routes answer first.
 *
 * @example
 * ```ts
 * const admin = new Hono();
 * mountConsole(admin, { kv, log, backend, kick, now, lockout, isAdminToken });
 * admin.use(bearerCheck);
 * ```
 */
export function mountConsole(admin: Hono, deps: ConsoleDeps): void {
  const app = admin as unknown as Hono<Env>;
  const { kv, log } = deps;

  /** A signed-in page, or the way to sign in; a KV that does not answer is said so at once. */
  const page: MiddlewareHandler<Env> = async (c, next) => {
    noStore(c);
    const session = await withinMs(readSession(kv, c, deps.now()), READ_WAIT_MS).catch(() => null);
    if (session === null) return c.html(<UnavailablePage />, 503);
    if (!session) return c.redirect("/admin/login", 303);
    c.set("session", session);
    await next();
  };

  /** A signed-in form post from this console, or a refusal. */
  const post: MiddlewareHandler<Env> = async (c, next) => {
    noStore(c);
    const session = await readSession(kv, c, deps.now());
    if (!session) {
      const text = "Sign in first: your session has ended or never began.";
      return c.html(<MessagePage title="Unauthorized" text={text} />, 401);
    }
    const form = await c.req.parseBody();
    if (!isSameSitePost(c, form.csrf, session)) {
      log.warn("admin.console_refused", { reason: "csrf" });
      const text = "This form did not come from your console session. Reload the page and retry.";
      return c.html(<MessagePage title="Forbidden" text={text} />, 403);
    }
    c.set("session", session);
    await next();
  };

  const small = bodyLimit({ maxSize: 16 * 1024, onError: (c) => c.text("Payload Too Large", 413) });

  app.get("/", page, async (c) => {
    const overview = await readOverview(kv, deps.now(), READ_WAIT_MS);
    const csrf = c.get("session").csrf;
    return c.html(
      <OverviewPage
        csrf={csrf}
        backend={deps.backend}
        overview={overview}
        storageTrouble={deps.storageTrouble?.()}
        urlHints={deps.urlHints?.() ?? []}
        aydMode={deps.aydMode ?? "session"}
        aydProblem={deps.aydProblem?.()}
      />,
      overview.ok ? 200 : 503,
    );
  });

  app.get("/console/jobs", page, async (c) => {
    const recent = await recentJobs(kv, RECENT_JOBS);
    return c.html(<JobsPage csrf={c.get("session").csrf} recent={recent} />);
  });

  app.get("/console/dead-letters", page, async (c) => {
    const outcome = c.req.query("retry") as RetryOutcome | undefined;
    const messageSid = c.req.query("sid") ?? "";
    const notice = outcome && RETRY_OUTCOMES.includes(outcome) && /^\w{1,64}$/.test(messageSid)
      ? { outcome, messageSid }
      : undefined;
    const letters = await deadLetterRows(kv);
    return c.html(
      <DeadLettersPage csrf={c.get("session").csrf} letters={letters} notice={notice} />,
    );
  });

  app.post("/console/dead-letters/:sid/retry", small, post, async (c) => {
    const sid = c.req.param("sid");
    const letter = await kv.get<DeadLetter>(deadLetterKey(sid));
    const outcome = await retryDeadLetter(kv, sid, { backend: deps.backend, now: deps.now() });
    if (outcome === "queued") {
      deps.kick(letter.value!.phone);
      log.info("admin.dead_letter_retried", { message_sid: sid, via: "console" });
    }
    const query = new URLSearchParams({ retry: outcome, sid });
    return c.redirect(`/admin/console/dead-letters?${query}`, 303);
  });

  mountPeoplePages(app, {
    kv,
    log,
    now: deps.now,
    directoryGates: deps.directoryGates ?? true,
    page,
    post,
    small,
  });

  app.get("/login", async (c) => {
    noStore(c);
    if (await readSession(kv, c, deps.now())) return c.redirect("/admin", 303);
    return c.html(<LoginPage />);
  });

  app.post("/login", small, async (c) => {
    noStore(c);
    const address = clientAddress(c);
    const retryAfter = deps.lockout.retryAfter(address);
    if (retryAfter !== undefined) {
      c.header("retry-after", String(retryAfter));
      return c.html(<LoginPage problem="locked" retryAfter={retryAfter} />, 429);
    }
    if (!isSameOrigin(c)) {
      log.warn("admin.console_refused", { reason: "origin" });
      const text = "The sign-in form was not sent from this console.";
      return c.html(<MessagePage title="Forbidden" text={text} />, 403);
    }
    const form = await c.req.parseBody();
    const token = typeof form.token === "string" ? form.token : "";
    if (!deps.isAdminToken(token)) {
      const failures = deps.lockout.fail(address);
      log.warn("admin.unauthorized", { failures, via: "console" });
      return c.html(<LoginPage problem="wrong" />, 401);
    }
    deps.lockout.clear(address);
    await startSession(kv, c, deps.now());
    log.info("admin.console_signed_in");
    return c.redirect("/admin", 303);
  });

  app.post("/logout", small, post, async (c) => {
    await endSession(kv, c);
    log.info("admin.console_signed_out");
    return c.redirect("/admin/login", 303);
  });
}

/** Console pages show live, private figures: never cached, never framed. */
function noStore(c: Context) {
  c.header("cache-control", "no-store");
  c.header(
    "content-security-policy",
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  );
}
