/**
 * The people directory: which person each WhatsApp number belongs to
 * (`name`, `email`, `properties`), the identity AYD's row-level access
 * control sees for their questions. Kept in KV, imported from and exported
 * to `people.csv`, and, once not empty, the list of who may ask when
 * `ALLOWED_NUMBERS` is unset.
 *
 * @module
 */
export * from "./person.ts";
export * from "./directory.ts";
export * from "./people_csv.ts";
