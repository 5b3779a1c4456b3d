/**
 * WhatsApp as the user sees it: Markdown turned into WhatsApp text and cut
 * into parts, and the Twilio client that sends them. The formatter (and the
 * Markdown parser under it) loads with the first answer, through
 * {@linkcode loadFormatting}, to keep it off the webhook's start-up path.
 *
 * @module
 */
export * from "./twilio_client.ts";
export * from "./twilio_account.ts";
export * from "./media.ts";
export * from "./voice_echo.ts";
export type { PartMarkers, PartStream, PartStreamOptions } from "./format.ts";

let formatting: Promise<typeof import("./format.ts")> | undefined;

/**
 * Loads the formatter once; later calls share the same module.
 *
 * @example
 * ```ts
 * const { formatAnswer } = await loadFormatting();
 * formatAnswer("**3** late orders", 1600); // ["*3* late orders"]
 * ```
 */
export function loadFormatting(): Promise<typeof import("./format.ts")> {
  return formatting ??= import("./format.ts");
}
