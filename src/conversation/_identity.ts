/**
 * Who asks: the number's person in the directory, as AYD will see them, or
 * the made-up default. Private helper of `answer.ts`.
 *
 * @module
 */
import type { Asker } from "../ayd/mod.ts";
import { canonicalPerson, readPerson } from "../people/mod.ts";

/** Who a number asks as; `refused` when the directory says it may not ask. */
export interface Who {
  asker?: Asker;
  /** Not in a directory that decides who may ask (e.g. removed while its question waited). */
  refused: boolean;
}

/**
 * Reads the number's person (and the directory's size) at the moment of
 * asking, so that an import or an edit counts from the next question on.
 * `directoryGates` is true when `ALLOWED_NUMBERS` is unset, so that a
 * directory that is not empty lists who may ask.
 *
 * @example
 * ```ts
 * const { asker, refused } = await whoAsks(kv, "+15551234567", { directoryGates: true });
 * ```
 */
export async function whoAsks(
  kv: Deno.Kv,
  phone: string,
  options: { directoryGates: boolean },
): Promise<Who> {
  const { person, size } = await readPerson(kv, phone);
  if (!person) return { refused: options.directoryGates && size > 0 };
  const identity = { name: person.name, email: person.email, properties: person.properties };
  return {
    asker: { identity, fingerprint: await fingerprint(canonicalPerson(person)) },
    refused: false,
  };
}

/** SHA-256 of the identity, hex, so conversations store no names or emails of their own. */
async function fingerprint(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The properties a chat-mode ask carries: the person's own, plus `name` and
 * `email`, so that both modes give AYD the same context variables.
 *
 * @example
 * ```ts
 * chatProperties(asker); // { region: "north", name: "Ada", email: "ada@example.com" }
 * ```
 */
export function chatProperties(asker: Asker | undefined): Record<string, unknown> | undefined {
  if (!asker) return undefined;
  const { name, email, properties } = asker.identity;
  return { ...properties, name, email };
}
