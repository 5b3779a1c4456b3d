/**
 * Answering one message: a command's reply, a notice, or AYD's answer in
 * the sender's conversation, delivered part by part with its progress saved
 * under the lane's lease. Every failure ends in a message the user can read.
 *
 * @module
 */
export * from "./handler.ts";
export * from "./answer.ts";
export * from "./commands.ts";
export { type Hear, voiceNoteOf } from "./_question.ts";
