/**
 * The directory through the admin API (bearer token): list, read, add or
 * update, remove one person, and `people.csv` out and in. Names, emails and
 * properties go to the operator who asks, never to the logs.
 *
 * @module
 */
import type { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { type Logger, maskPhone } from "../log.ts";
import {
  checkPerson,
  exportPeopleCsvStream,
  importPeopleCsv,
  listPeople,
  normalizePhone,
  type Person,
  personKey,
  writeDirectory,
} from "../people/mod.ts";

/** The largest `people.csv` accepted over HTTP: 100,000 people take about 10 MB. */
export const MAX_PEOPLE_CSV_BYTES = 32 * 1024 * 1024;

/** People per page of `GET /admin/people`, by default and at most. */
const PAGE = { default: 100, max: 1000 };

/**
 * Adds the people routes to the admin sub-app, after its bearer check.
 *
 * @example
 * ```ts
 * mountPeopleApi(admin, { kv, log, now: Date.now });
 * ```
 */
export function mountPeopleApi(
  admin: Hono,
  deps: { kv: Deno.Kv; log: Logger; now: () => number },
): void {
  const { kv, log } = deps;

  admin.get("/people", async (c) => {
    const limit = Math.min(PAGE.max, Math.max(1, Number(c.req.query("limit")) || PAGE.default));
    const after = c.req.query("after");
    const page = await listPeople(kv, { limit, after: after || undefined });
    return c.json({ people: page.people.map(shown), next: page.next });
  });

  admin.get("/people.csv", (c) => {
    log.info("admin.people_exported");
    return c.body(exportPeopleCsvStream(kv), 200, {
      "content-type": "text/csv; charset=utf-8",
      "content-disposition": 'attachment; filename="people.csv"',
      "cache-control": "no-store",
    });
  });

  admin.post(
    "/people.csv",
    bodyLimit({ maxSize: MAX_PEOPLE_CSV_BYTES, onError: (c) => c.text("Payload Too Large", 413) }),
    async (c) => {
      const report = await importPeopleCsv(kv, new Uint8Array(await c.req.arrayBuffer()), {
        now: deps.now(),
        replace: flag(c.req.query("replace")),
        dryRun: flag(c.req.query("dry_run")),
      });
      const { invalid, ...counts } = report;
      log.info("admin.people_imported", { ...counts, invalid: invalid.length });
      return c.json(report, report.refused ? 422 : 200);
    },
  );

  admin.get("/people/:phone", async (c) => {
    const phone = phoneOf(c.req.param("phone"));
    if (!phone) return c.json({ problems: ["phone must be +E164, e.g. +15551234567"] }, 400);
    const entry = await kv.get<Person>(personKey(phone));
    return entry.value ? c.json(shown({ phone, ...entry.value })) : c.text("Not Found", 404);
  });

  admin.put("/people/:phone", async (c) => {
    const body = await c.req.json().catch(() => undefined) as Record<string, unknown> | undefined;
    if (typeof body !== "object" || body === null || Array.isArray(body)) {
      return c.json(
        { problems: ["the body must be a JSON object {name, email, properties}"] },
        400,
      );
    }
    const { name, email, properties } = body;
    const checked = checkPerson(
      { phone: c.req.param("phone"), name, email, properties },
      deps.now(),
    );
    if ("problems" in checked) return c.json({ problems: checked.problems }, 400);
    const done = await writeDirectory(kv, [[checked.phone, checked.person]]);
    const status = done.added ? "added" : done.updated ? "updated" : "unchanged";
    log.info("admin.person_saved", { from: maskPhone(checked.phone), status });
    return c.json({ status }, done.added ? 201 : 200);
  });

  admin.delete("/people/:phone", async (c) => {
    const phone = phoneOf(c.req.param("phone"));
    if (!phone) return c.json({ problems: ["phone must be +E164, e.g. +15551234567"] }, 400);
    const done = await writeDirectory(kv, [[phone, null]]);
    if (!done.removed) return c.text("Not Found", 404);
    log.info("admin.person_removed", { from: maskPhone(phone) });
    return c.body(null, 204);
  });
}

/** A number from the path, as the directory keys it; undefined when it is not one. */
export function phoneOf(raw: string): string | undefined {
  const number = normalizePhone(raw);
  return "phone" in number ? number.phone : undefined;
}

function shown(p: Person & { phone: string }) {
  return {
    phone: p.phone,
    name: p.name,
    email: p.email,
    properties: p.properties ?? {},
    updatedAt: new Date(p.updatedAt).toISOString(),
  };
}

/** A query flag: present with no value, or 1, true or yes. */
export const flag = (value: string | undefined) =>
  value !== undefined && ["1", "true", "yes", ""].includes(value.toLowerCase());
