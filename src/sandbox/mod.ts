/**
 * The credential-free try-out behind `deno task sandbox`: the real bridge
 * with a demo AYD and a Twilio stand-in that shows replies in a chat page.
 * Nothing leaves the machine.
 *
 * @module
 */
export * from "./sandbox.ts";
export * from "./dev.ts";
