/**
 * The durable job pipeline: how an accepted message waits in its sender's
 * lane in KV, is picked up under a lease by exactly one worker, retried with
 * backoff and, when it cannot be answered, kept as a dead letter. It knows
 * nothing of AYD or WhatsApp: the conversation handler is passed in.
 *
 * @module
 */
export * from "./jobs.ts";
export * from "./lanes.ts";
export * from "./runner.ts";
export * from "./dead_letters.ts";
export * from "./attempts.ts";
export * from "./stats.ts";
export * from "./presence.ts";
export { createGroupCommit, type GroupCommit } from "./_group_commit.ts";
