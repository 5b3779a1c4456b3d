/**
 * AskYourDatabase: the two ways to reach it (`session` mode, the Flask app's
 * embed-widget sessions; `chat` mode, AYD's documented API-key flow), each
 * number's conversation kept in KV, the identity it asks as, reading a
 * chat's history to recover an interrupted answer, and `ayd_sessions.csv`
 * import and export for the Flask app's users.
 *
 * @module
 */
export * from "./client.ts";
export * from "./chat.ts";
export * from "./identity.ts";
export * from "./sessions.ts";
export * from "./chats.ts";
export * from "./history.ts";
export * from "./refusals.ts";
export * from "./sessions_csv.ts";
export * from "./sessions_import.ts";
export * from "./sessions_export.ts";
