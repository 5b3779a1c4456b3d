/**
 * The console's People page: the directory as imported (the operator's own
 * data, so numbers, names and emails are shown in full here), a form to add
 * or change one person, a file upload for `people.csv`, and a Remove button
 * per person. Plain HTML forms, escaped by Hono's JSX.
 *
 * @module
 */
import type { FC } from "hono/jsx";
import type { PeopleImportReport, Person } from "../people/mod.ts";
import { Layout } from "./_views.tsx";

/** What the page reports after a form. */
export type PeopleNotice =
  | { kind: "saved"; phone: string; status: "added" | "updated" | "unchanged" }
  | { kind: "removed"; phone: string }
  | { kind: "missing"; phone: string }
  | { kind: "problems"; problems: string[] }
  | { kind: "imported"; report: PeopleImportReport };

/**
 * The People page.
 *
 * @example
 * ```tsx
 * c.html(<PeoplePage csrf={csrf} people={page.people} next={page.next} size={12} />);
 * ```
 */
export const PeoplePage: FC<{
  csrf: string;
  people: (Person & { phone: string })[];
  /** The cursor of the next page, when there is one. */
  next?: string;
  /** People in the directory. */
  size: number;
  /** Whether the directory decides who may ask (ALLOWED_NUMBERS unset). */
  gates: boolean;
  notice?: PeopleNotice;
}> = (p) => (
  <Layout title="People" csrf={p.csrf}>
    {p.notice && <Notice notice={p.notice} />}
    <p class="muted">
      {p.size} {p.size === 1 ? "person" : "people"}{" "}
      in the directory. Each asks AYD as their name, email and properties (AYD's context variables
      for row-level access control). {p.gates
        ? p.size > 0
          ? "ALLOWED_NUMBERS is unset, so only these people may ask."
          : "The directory is empty and ALLOWED_NUMBERS is unset: anyone may ask."
        : "ALLOWED_NUMBERS decides who may ask."}{" "}
      <a href="/admin/people.csv">Download people.csv</a>
    </p>
    <section id="add-person">
      <h2>Add or change a person</h2>
      <form method="post" action="/admin/console/people">
        <input type="hidden" name="csrf" value={p.csrf} />
        <p>
          <label for="phone">WhatsApp number (+E164)</label>
          <input id="phone" name="phone" required placeholder="+15551234567" />
        </p>
        <p>
          <label for="name">Name</label>
          <input id="name" name="name" required />
        </p>
        <p>
          <label for="email">Email</label>
          <input id="email" name="email" type="email" required />
        </p>
        <p>
          <label for="properties">Properties (a JSON object, optional)</label>
          <textarea
            id="properties"
            name="properties"
            rows={2}
            placeholder='{"region":"north"}'
          />
        </p>
        <button type="submit">Save</button>
      </form>
    </section>
    <section id="import-people">
      <h2>Import people.csv</h2>
      <form method="post" action="/admin/console/people/import" enctype="multipart/form-data">
        <input type="hidden" name="csrf" value={p.csrf} />
        <p>
          <label for="file">
            A CSV with the header <code>phone_number,name,email,properties</code>
          </label>
          <input id="file" name="file" type="file" accept=".csv,text/csv" required />
        </p>
        <p>
          <label>
            <input type="checkbox" name="replace" value="1" />{" "}
            Remove the people the file does not list (only when every row is valid)
          </label>
        </p>
        <button type="submit">Import</button>
      </form>
    </section>
    <section>
      {p.people.length === 0 ? <p id="no-people">Nobody yet.</p> : (
        <table id="people">
          <tr>
            <th>number</th>
            <th>name</th>
            <th>email</th>
            <th>properties</th>
            <th>updated (UTC)</th>
            <th></th>
          </tr>
          {p.people.map((person) => (
            <tr>
              <td>{person.phone}</td>
              <td>{person.name}</td>
              <td>{person.email}</td>
              <td>
                <code>{person.properties ? JSON.stringify(person.properties) : ""}</code>
              </td>
              <td>{new Date(person.updatedAt).toISOString().replace("T", " ").slice(0, 19)}</td>
              <td>
                <form
                  method="post"
                  action={`/admin/console/people/${encodeURIComponent(person.phone)}/remove`}
                >
                  <input type="hidden" name="csrf" value={p.csrf} />
                  <button type="submit" aria-label={`Remove ${person.phone}`}>Remove</button>
                </form>
              </td>
            </tr>
          ))}
        </table>
      )}
      {p.next && (
        <p>
          <a id="next-page" href={`/admin/console/people?after=${encodeURIComponent(p.next)}`}>
            Next page
          </a>
        </p>
      )}
    </section>
  </Layout>
);

const Notice: FC<{ notice: PeopleNotice }> = ({ notice }) => {
  switch (notice.kind) {
    case "saved":
      return <p class="notice" role="status">{notice.phone} {notice.status}.</p>;
    case "removed":
      return <p class="notice" role="status">{notice.phone} removed.</p>;
    case "missing":
      return <p class="error" role="alert">{notice.phone} is not in the directory.</p>;
    case "problems":
      return (
        <div class="error" role="alert">
          Not saved:
          <ul>
            {
              // hono/jsx renders on the server: a key would be printed as an attribute.
              // deno-lint-ignore jsx-key
              notice.problems.map((problem) => <li>{problem}</li>)
            }
          </ul>
        </div>
      );
    case "imported": {
      const r = notice.report;
      return (
        <div class={r.refused || r.invalid.length > 0 ? "error" : "notice"} role="status">
          <p id="import-summary">
            {r.refused ?? `${r.rows} rows: added ${r.added}, updated ${r.updated}, ` +
                `unchanged ${r.unchanged}, removed ${r.removed}, invalid ${r.invalid.length}.`}
          </p>
          {r.invalid.length > 0 && (
            <ul id="import-problems">
              {
                // deno-lint-ignore jsx-key
                r.invalid.slice(0, 100).map(({ line, reason }) => <li>line {line}: {reason}</li>)
              }
              {r.invalid.length > 100 && <li>… and {r.invalid.length - 100} more</li>}
            </ul>
          )}
        </div>
      );
    }
  }
};
