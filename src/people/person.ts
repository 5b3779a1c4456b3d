/**
 * One person of the directory: who a WhatsApp number belongs to, as AYD's
 * row-level access control sees them (`name`, `email` and `properties` are
 * its "context variables"), and the rules every way in (CSV, admin API,
 * console) checks alike.
 *
 * @module
 */

/** A person as kept under `["people", "+E164"]`. */
export interface Person {
  name: string;
  email: string;
  /** Extra context variables for AYD's row-level policies; absent when none. */
  properties?: Record<string, unknown>;
  /** When this entry was last written (Unix ms). */
  updatedAt: number;
}

/** What a person is made of before it is checked. */
export interface PersonInput {
  phone: unknown;
  name: unknown;
  email: unknown;
  /** An object, JSON text of one, or empty/undefined for none. */
  properties?: unknown;
}

/** The KV key of the person a number belongs to. */
export const personKey = (phone: string): Deno.KvKey => ["people", phone];

/** Longest name, email and properties (as JSON) accepted: far below KV's 64 KiB value. */
export const LIMITS = { name: 200, email: 254, propertiesJson: 8 * 1024 } as const;

/** Keys `properties` may not use: AYD gets them from the name and email columns. */
const RESERVED = ["name", "email"];

const E164 = /^\+[1-9]\d{6,14}$/;
const EMAIL = /^[^\s@]+@[^\s@]+$/;
// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * A WhatsApp number as the directory keys it (`+E164`), or why it is not
 * one. Spaces, dashes, dots and brackets are dropped and a `whatsapp:`
 * prefix is allowed; the `+` is required, since digits alone could be a
 * national number that reads as another country's.
 *
 * @example
 * ```ts
 * normalizePhone("whatsapp:+1 (555) 123-4567"); // { phone: "+15551234567" }
 * normalizePhone("15551234567"); // { problem: "…starts with +…" }
 * ```
 */
export function normalizePhone(raw: unknown): { phone: string } | { problem: string } {
  const text = typeof raw === "string" ? raw.trim() : "";
  if (text === "") return { problem: "phone_number is empty" };
  if (/^\d(\.\d+)?e\+?\d+$/i.test(text)) {
    return {
      problem: `phone_number ${text} was turned into a number (Excel does this): ` +
        "format the column as text and write +E164, e.g. +15551234567",
    };
  }
  const phone = text.replace(/^whatsapp:/i, "").replace(/[\s\-.()]/g, "");
  if (E164.test(phone)) return { phone };
  if (/^\d{7,15}$/.test(phone)) {
    return {
      problem: "phone_number must start with + and the country code, e.g. +15551234567 " +
        "(Excel drops the + unless the column is text)",
    };
  }
  return { problem: "phone_number is not +E164, e.g. +15551234567" };
}

/**
 * Checks a person and gives it its stored shape, or every problem found
 * (each a sentence that names the field).
 *
 * @example
 * ```ts
 * const checked = checkPerson({ phone: "+15551234567", name: "Ada", email: "ada@example.com", properties: '{"region":"north"}' }, Date.now());
 * if ("problems" in checked) console.log(checked.problems.join("; "));
 * ```
 */
export function checkPerson(
  input: PersonInput,
  now: number,
): { phone: string; person: Person } | { problems: string[] } {
  const problems: string[] = [];
  const number = normalizePhone(input.phone);
  if ("problem" in number) problems.push(number.problem);
  const name = typeof input.name === "string" ? input.name.trim() : "";
  if (name === "") problems.push("name is empty");
  else if (name.length > LIMITS.name) {
    problems.push(`name is longer than ${LIMITS.name} characters`);
  } else if (CONTROL.test(name)) problems.push("name holds a line break or control character");
  const email = typeof input.email === "string" ? input.email.trim() : "";
  if (email === "") problems.push("email is empty");
  else if (email.length > LIMITS.email || !EMAIL.test(email)) {
    problems.push("email is not an email address");
  }
  const properties = readProperties(input.properties);
  if ("problem" in properties) problems.push(properties.problem);
  if (problems.length > 0 || "problem" in number || "problem" in properties) return { problems };
  const person: Person = { name, email, updatedAt: now };
  if (properties.value) person.properties = properties.value;
  return { phone: number.phone, person };
}

function readProperties(raw: unknown): { value?: Record<string, unknown> } | { problem: string } {
  if (raw === undefined || raw === null) return {};
  let value = raw;
  if (typeof raw === "string") {
    if (raw.trim() === "") return {};
    try {
      value = JSON.parse(raw);
    } catch (error) {
      return { problem: `properties is not valid JSON${whereJsonFailed(error)}` };
    }
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { problem: 'properties must be a JSON object, e.g. {"region":"north"}' };
  }
  const keys = Object.keys(value);
  const reserved = keys.filter((key) => RESERVED.includes(key));
  if (reserved.length > 0) {
    return {
      problem: `properties may not set ${reserved.join(" or ")}: use the name and email columns`,
    };
  }
  if (keys.some((key) => key.trim() === "")) return { problem: "properties has an empty key" };
  if (JSON.stringify(value).length > LIMITS.propertiesJson) {
    return { problem: `properties is longer than ${LIMITS.propertiesJson} characters as JSON` };
  }
  return keys.length === 0 ? {} : { value: value as Record<string, unknown> };
}

/** Where JSON.parse stopped, without quoting the text (it may hold what a person may see). */
function whereJsonFailed(error: unknown): string {
  const message = (error as Error).message;
  const at = /at position (\d+)/.exec(message)?.[1];
  if (at !== undefined) return ` (at character ${Number(at) + 1})`;
  const token = /^Unexpected token '(.)'/u.exec(message)?.[1];
  if (token !== undefined) return ` (unexpected ${token})`;
  return /end of (JSON|data) input/i.test(message) ? " (it ends too early)" : "";
}

/**
 * The same JSON for the same person whatever the order of their
 * properties' keys: how two entries are compared without `updatedAt`.
 *
 * @example
 * ```ts
 * canonicalPerson({ name: "Ada", email: "a@x.io", properties: { b: 1, a: 2 }, updatedAt: 1 });
 * // '{"email":"a@x.io","name":"Ada","properties":{"a":2,"b":1}}'
 * ```
 */
export function canonicalPerson(person: Omit<Person, "updatedAt">): string {
  return canonicalJson({ name: person.name, email: person.email, properties: person.properties });
}

/**
 * JSON with every object's keys sorted and `undefined` members left out.
 *
 * @example
 * ```ts
 * canonicalJson({ b: [1, { d: 1, c: 2 }], a: undefined }); // '{"b":[1,{"c":2,"d":1}]}'
 * ```
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (typeof value === "object" && value !== null) {
    const members = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)
      .map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`);
    return `{${members.join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}
