/**
 * The few words the bridge answers itself instead of asking AYD.
 *
 * @module
 */

/** A command a WhatsApp user can send. */
export type Command = "reset" | "help";

const COMMANDS: Record<string, Command> = {
  "reset": "reset",
  "/reset": "reset",
  "/new": "reset",
  "help": "help",
  "/help": "help",
};

/**
 * The command a whole message spells, ignoring case, surrounding spaces and
 * a final full stop or exclamation mark; anything longer is a question.
 *
 * @example
 * ```ts
 * parseCommand(" Reset! "); // "reset"
 * parseCommand("new customers this month?"); // undefined
 * ```
 */
export function parseCommand(body: string): Command | undefined {
  return COMMANDS[body.trim().toLowerCase().replace(/[.!]$/, "")];
}

/** What the bridge answers to each command (in session mode; see {@linkcode commandReply}). */
export const COMMAND_REPLIES: Record<Command, string> = {
  reset: "Done: I started a new conversation. Ask me anything about your data.",
  help: [
    "Ask me about your company's data in plain words, for example:",
    '"How many orders shipped late last week?"',
    "",
    "I answer from AskYourDatabase and remember our conversation for 7 days.",
    "Send *reset* to start a new conversation, *help* to see this again.",
  ].join("\n"),
};

/**
 * The reply to `command` in `mode`: a chat mode chat does not end after 7
 * days, so its help says so.
 *
 * @example
 * ```ts
 * commandReply("help", "chat"); // "… remember our conversation until you send *reset* …"
 * ```
 */
export function commandReply(command: Command, mode: "session" | "chat"): string {
  if (command !== "help" || mode === "session") return COMMAND_REPLIES[command];
  return COMMAND_REPLIES.help.replace(
    "remember our conversation for 7 days.",
    "remember our conversation until you send *reset*.",
  );
}
