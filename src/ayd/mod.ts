/**
 * AskYourDatabase: the client that opens a conversation and streams an
 * answer, each number's conversation kept in KV, and `ayd_sessions.csv`
 * import and export for the Flask app's users.
 *
 * @module
 */
export * from "./client.ts";
export * from "./sessions.ts";
export * from "./sessions_csv.ts";
export * from "./sessions_import.ts";
export * from "./sessions_export.ts";
