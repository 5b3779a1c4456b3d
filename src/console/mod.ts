/**
 * The operator's side under `/admin`: a bearer-token JSON API and a
 * browser console with its own cookie session, both present only with
 * `ADMIN_TOKEN`. Their code (JSX views and all) loads with the first `/admin`
 * request, keeping it off the webhook's start-up path.
 *
 * @module
 */
import { type Context, Hono } from "hono";
import type { AdminDeps } from "./admin.ts";

export type { AdminDeps } from "./admin.ts";

/**
 * The `/admin` routes, to mount at `/admin`; the admin app loads with the
 * first request. Its errors reach the app it is mounted in, which logs them
 * with the request's id.
 *
 * @example
 * ```ts
 * app.route("/admin", adminRoutes({ kv, log, token, backend: "kv-queue", kick, now: Date.now }));
 * ```
 */
export function adminRoutes(deps: AdminDeps): Hono {
  let loaded: Promise<Hono> | undefined;
  const load = () =>
    loaded ??= import("./admin.ts").then(({ createAdminApp }) => {
      const app = new Hono().route("/admin", createAdminApp(deps));
      app.notFound((c) => c.text("Not Found", 404));
      app.onError((error) => {
        throw error;
      });
      return app;
    });
  const forward = async (c: Context) => (await load()).fetch(c.req.raw, c.env);
  return new Hono().all("/", forward).all("/*", forward);
}
