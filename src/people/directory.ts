/**
 * The directory in KV: `["people", "+E164"]` per person, and
 * `["people_directory"]` holding how many there are, so that the webhook
 * learns whether the directory restricts who may ask in the same read as the
 * number's state.
 *
 * Every write to the directory checks and rewrites `["people_directory"]`.
 * That serializes writers (an import, the admin API, the console) through one
 * key, so each one's reads of the people it changes are current when its
 * commit lands, and the count stays exact with one check per commit, well
 * within a `denokv` server's 10. Nothing on the message path writes here.
 *
 * @module
 */
import { canonicalPerson, type Person, personKey } from "./person.ts";

/** The key of the directory's count. */
export const DIRECTORY_KEY: Deno.KvKey = ["people_directory"];

/** What `["people_directory"]` holds. */
export interface DirectoryMeta {
  count: number;
}

/** What a directory write did. */
export interface DirectoryChanges {
  added: number;
  updated: number;
  unchanged: number;
  removed: number;
  /** Removals of numbers that were not in the directory. */
  missing: number;
}

/** A change to one number: its new entry, or `null` to remove it. */
export type DirectoryChange = [phone: string, person: Person | null];

/** People per commit, and bytes of values: far inside KV's 1,000 mutations and 800 KiB. */
const BATCH = { people: 400, bytes: 400 * 1024 };
/** Above this many changes, one scan of the directory beats reading each number. */
const SCAN_ABOVE = 500;
/** Commits that lost to another writer are redone this often before giving up. */
const MAX_CONFLICTS = 20;

/**
 * A number's person and the directory's size, read together (one round
 * trip, so it can ride along with another read through `getMany`).
 *
 * @example
 * ```ts
 * const { person, size } = await readPerson(kv, "+15551234567");
 * ```
 */
export async function readPerson(
  kv: Deno.Kv,
  phone: string,
): Promise<{ person: Person | undefined; size: number }> {
  const [person, meta] = await kv.getMany<[Person, DirectoryMeta]>([
    personKey(phone),
    DIRECTORY_KEY,
  ]);
  return { person: person.value ?? undefined, size: directorySize(meta.value) };
}

/** The count a `["people_directory"]` value holds (0 when absent). */
export const directorySize = (meta: DirectoryMeta | null | undefined): number =>
  typeof meta?.count === "number" ? meta.count : 0;

/**
 * Applies `changes` (later ones for the same number win), in commits of a
 * few hundred people, each checked against the directory's count. A person
 * stored as given already (`updatedAt` aside) is not rewritten.
 *
 * @example
 * ```ts
 * const person = { name: "Ada", email: "ada@example.com", updatedAt: Date.now() };
 * await writeDirectory(kv, [["+15551234567", person], ["+15557654321", null]]);
 * ```
 */
export async function writeDirectory(
  kv: Deno.Kv,
  changes: Iterable<DirectoryChange>,
  options: { dryRun?: boolean } = {},
): Promise<DirectoryChanges> {
  const pending = new Map(changes);
  const report: DirectoryChanges = { added: 0, updated: 0, unchanged: 0, removed: 0, missing: 0 };
  for (let conflicts = 0; pending.size > 0; conflicts++) {
    if (conflicts > MAX_CONFLICTS) {
      throw new Error("the directory kept changing under this write: try again");
    }
    const read = await kv.get<DirectoryMeta>(DIRECTORY_KEY);
    let meta: Deno.AtomicCheck = read;
    let count = directorySize(read.value);
    // Read after the count: a writer changing these also changes the count, which the commit checks.
    const current = await readCurrent(kv, [...pending.keys()]);
    for (const batch of batches(pending)) {
      const outcome: DirectoryChanges = { ...EMPTY };
      const op = kv.atomic().check(meta);
      let writes = 0;
      let counted = count;
      for (const [phone, person] of batch) {
        const before = current.get(phone);
        if (person === null) {
          if (before === undefined) outcome.missing++;
          else (op.delete(personKey(phone)), outcome.removed++, counted--, writes++);
        } else if (before === canonicalPerson(person)) {
          outcome.unchanged++;
        } else {
          op.set(personKey(phone), person);
          writes++;
          if (before === undefined) (outcome.added++, counted++);
          else outcome.updated++;
        }
      }
      if (writes > 0 && !options.dryRun) {
        const result = await op.set(DIRECTORY_KEY, { count: counted } satisfies DirectoryMeta)
          .commit();
        if (!result.ok) break; // another writer went first: read again
        meta = { key: DIRECTORY_KEY, versionstamp: result.versionstamp };
      }
      count = counted;
      // Each number comes once, so what was written is never compared again.
      for (const [phone] of batch) (pending.delete(phone), current.delete(phone));
      for (const key of Object.keys(report) as (keyof DirectoryChanges)[]) {
        report[key] += outcome[key];
      }
    }
  }
  return report;
}

const EMPTY: DirectoryChanges = { added: 0, updated: 0, unchanged: 0, removed: 0, missing: 0 };

/** Each listed number's stored person, as canonical JSON. */
async function readCurrent(kv: Deno.Kv, phones: string[]): Promise<Map<string, string>> {
  const current = new Map<string, string>();
  if (phones.length > SCAN_ABOVE) {
    const wanted = new Set(phones);
    for await (const entry of kv.list<Person>({ prefix: ["people"] })) {
      const phone = entry.key[1] as string;
      if (wanted.has(phone)) current.set(phone, canonicalPerson(entry.value));
    }
    return current;
  }
  for (let i = 0; i < phones.length; i += 10) {
    const chunk = phones.slice(i, i + 10);
    const entries = await kv.getMany<Person[]>(chunk.map(personKey));
    entries.forEach((entry, j) => {
      if (entry.value) current.set(chunk[j], canonicalPerson(entry.value));
    });
  }
  return current;
}

function* batches(pending: Map<string, Person | null>): Generator<DirectoryChange[]> {
  let batch: DirectoryChange[] = [];
  let bytes = 0;
  for (const change of pending) {
    const size = change[1] ? JSON.stringify(change[1]).length + 64 : 64;
    if (batch.length >= BATCH.people || (batch.length > 0 && bytes + size > BATCH.bytes)) {
      yield batch;
      batch = [];
      bytes = 0;
    }
    batch.push(change);
    bytes += size;
  }
  if (batch.length > 0) yield batch;
}

/**
 * Every number in the directory, in key order.
 *
 * @example
 * ```ts
 * for await (const phone of directoryNumbers(kv)) console.log(phone);
 * ```
 */
export async function* directoryNumbers(kv: Deno.Kv): AsyncGenerator<string> {
  for await (const entry of kv.list({ prefix: ["people"] })) yield entry.key[1] as string;
}

/**
 * One page of the directory, in number order, from after `cursor` (a
 * number); `next` is the cursor of the page after, when there is one.
 *
 * @example
 * ```ts
 * const { people, next } = await listPeople(kv, { limit: 100 });
 * ```
 */
export async function listPeople(
  kv: Deno.Kv,
  options: { limit: number; after?: string },
): Promise<{ people: (Person & { phone: string })[]; next?: string }> {
  const selector: Deno.KvListSelector = options.after
    ? { prefix: ["people"], start: [...personKey(options.after), 0] }
    : { prefix: ["people"] };
  const people: (Person & { phone: string })[] = [];
  for await (const entry of kv.list<Person>(selector, { limit: options.limit + 1 })) {
    people.push({ phone: entry.key[1] as string, ...entry.value });
  }
  const more = people.length > options.limit;
  if (more) people.length = options.limit;
  return more ? { people, next: people.at(-1)!.phone } : { people };
}
