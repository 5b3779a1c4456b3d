/**
 * The database underneath everything: opening Deno KV (a file, memory, or a
 * remote database over KV Connect), knowing whether it can be written right
 * now, and expiring keys without KV's own expiry, whose collector brings the
 * process down when the disk is full.
 *
 * @module
 */
export * from "./kv.ts";
export * from "./health.ts";
export * from "./expiry.ts";
