/**
 * The console's People page and its forms: add or change one person,
 * remove one, import `people.csv`. Mounted by `pages.tsx` behind the same
 * session, CSRF and origin checks as every console form.
 *
 * @module
 */
import type { Hono, MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { ConsoleSession } from "./_session.ts";
import { type PeopleNotice, PeoplePage } from "./_people_views.tsx";
import { MAX_PEOPLE_CSV_BYTES, phoneOf } from "./people_api.ts";
import { type Logger, maskPhone } from "../log.ts";
import {
  checkPerson,
  DIRECTORY_KEY,
  type DirectoryMeta,
  directorySize,
  importPeopleCsv,
  listPeople,
  writeDirectory,
} from "../people/mod.ts";

type Env = { Variables: { session: ConsoleSession } };

/** People per console page. */
export const PEOPLE_PER_PAGE = 100;

/**
 * Adds the People routes; `page` and `post` are the console's own checks.
 *
 * @example
 * ```ts
 * mountPeoplePages(app, { kv, log, now: Date.now, directoryGates: true, page, post, small });
 * ```
 */
export function mountPeoplePages(app: Hono<Env>, deps: {
  kv: Deno.Kv;
  log: Logger;
  now: () => number;
  directoryGates: boolean;
  page: MiddlewareHandler<Env>;
  post: MiddlewareHandler<Env>;
  small: MiddlewareHandler<Env>;
}): void {
  const { kv, log } = deps;

  const render = async (csrf: string, after?: string, notice?: PeopleNotice) => {
    const [list, meta] = await Promise.all([
      listPeople(kv, { limit: PEOPLE_PER_PAGE, after }),
      kv.get<DirectoryMeta>(DIRECTORY_KEY),
    ]);
    return (
      <PeoplePage
        csrf={csrf}
        people={list.people}
        next={list.next}
        size={directorySize(meta.value)}
        gates={deps.directoryGates}
        notice={notice}
      />
    );
  };

  app.get("/console/people", deps.page, async (c) => {
    const phone = phoneOf(c.req.query("phone") ?? "");
    const saved = c.req.query("saved");
    let notice: PeopleNotice | undefined;
    if (phone && (saved === "added" || saved === "updated" || saved === "unchanged")) {
      notice = { kind: "saved", phone, status: saved };
    } else if (phone && c.req.query("removed") !== undefined) notice = { kind: "removed", phone };
    else if (phone && c.req.query("missing") !== undefined) notice = { kind: "missing", phone };
    const after = c.req.query("after") || undefined;
    return c.html(await render(c.get("session").csrf, after, notice));
  });

  app.post("/console/people", deps.small, deps.post, async (c) => {
    const form = await c.req.parseBody();
    const checked = checkPerson({
      phone: form.phone,
      name: form.name,
      email: form.email,
      properties: form.properties,
    }, deps.now());
    if ("problems" in checked) {
      const notice: PeopleNotice = { kind: "problems", problems: checked.problems };
      return c.html(await render(c.get("session").csrf, undefined, notice), 400);
    }
    const done = await writeDirectory(kv, [[checked.phone, checked.person]]);
    const status = done.added ? "added" : done.updated ? "updated" : "unchanged";
    log.info("admin.person_saved", { from: maskPhone(checked.phone), status, via: "console" });
    const query = new URLSearchParams({ saved: status, phone: checked.phone });
    return c.redirect(`/admin/console/people?${query}`, 303);
  });

  app.post("/console/people/:phone/remove", deps.small, deps.post, async (c) => {
    const phone = phoneOf(c.req.param("phone"));
    if (!phone) return c.redirect("/admin/console/people", 303);
    const done = await writeDirectory(kv, [[phone, null]]);
    if (done.removed) log.info("admin.person_removed", { from: maskPhone(phone), via: "console" });
    const query = new URLSearchParams({ [done.removed ? "removed" : "missing"]: "", phone });
    return c.redirect(`/admin/console/people?${query}`, 303);
  });

  const upload = bodyLimit({
    maxSize: MAX_PEOPLE_CSV_BYTES,
    onError: (c) => c.text("Payload Too Large", 413),
  });
  app.post("/console/people/import", upload, deps.post, async (c) => {
    const form = await c.req.parseBody();
    const file = form.file;
    const text = file instanceof File
      ? new Uint8Array(await file.arrayBuffer())
      : typeof file === "string"
      ? file
      : "";
    const report = await importPeopleCsv(kv, text, {
      now: deps.now(),
      replace: form.replace === "1",
    });
    const { invalid, ...counts } = report;
    log.info("admin.people_imported", { ...counts, invalid: invalid.length, via: "console" });
    const notice: PeopleNotice = { kind: "imported", report };
    return c.html(
      await render(c.get("session").csrf, undefined, notice),
      report.refused ? 422 : 200,
    );
  });
}
