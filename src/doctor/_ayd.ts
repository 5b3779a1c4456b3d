/**
 * The doctor's AskYourDatabase line: the API key and chatbot ID open what
 * the bridge opens for a new number in the configured `AYD_MODE`, without
 * asking a question. In `session` mode a session (login URL, then the
 * `accessToken` cookie); in `chat` mode a chat through AYD's documented
 * `POST /api/chatbot/newChat` with the API key, by the same client the
 * bridge uses.
 *
 * @module
 */
import { AydError, type AydOptions, createAydChat, createAydSession } from "../ayd/mod.ts";
import type { Config } from "../config.ts";
import type { CheckLine } from "./report.ts";

/**
 * Who the doctor's session is for: a number from the range reserved for
 * fiction (555-01xx), so it is never a person's, and AYD's session list shows
 * it as "WhatsApp User +15550100000". Chat mode's `newChat` names no one.
 */
export const DOCTOR_PHONE = "+15550100000";

/** How long the session (both steps) or the chat may take. */
export const AYD_CHECK_TIMEOUT_MS = 10_000;

const area = "AskYourDatabase";

/**
 * Runs the AYD check.
 *
 * @example
 * ```ts
 * const [line] = await checkAyd(config);
 * ```
 */
export async function checkAyd(
  config: Config,
  deps: { fetch?: typeof fetch; timeoutMs?: number; now?: () => number } = {},
): Promise<CheckLine[]> {
  const options: AydOptions = {
    baseUrl: config.aydBaseUrl,
    apiKey: config.aydApiKey,
    chatId: config.aydChatId,
    fetch: deps.fetch,
  };
  const signal = AbortSignal.timeout(deps.timeoutMs ?? AYD_CHECK_TIMEOUT_MS);
  const what = config.aydMode === "chat" ? "chat" : "session";
  try {
    if (what === "chat") {
      await createAydChat(options, signal);
      return [{
        status: "pass",
        area,
        text: "the API key and chatbot ID open a chat (AYD_MODE=chat; no question asked)",
      }];
    }
    await createAydSession(options, DOCTOR_PHONE, { now: (deps.now ?? Date.now)(), signal });
    return [{
      status: "pass",
      area,
      text: `the API key and chatbot ID open a session (as WhatsApp User ${DOCTOR_PHONE}; ` +
        "no question asked)",
    }];
  } catch (error) {
    return [failure(error, config, what)];
  }
}

function failure(error: unknown, config: Config, what: "session" | "chat"): CheckLine {
  const fail = (text: string, fix: string): CheckLine => ({ status: "fail", area, text, fix });
  const at = config.aydBaseUrl;
  const custom = at !== "https://www.askyourdatabase.com";
  if (!(error instanceof AydError)) {
    // Its message may quote what AYD sent (a one-time login URL): only its name is shown.
    return fail(
      `opening a ${what} failed unexpectedly (${(error as Error)?.name ?? "an error"})`,
      "run the doctor again; if it fails the same way, check AYD_BASE_URL " +
        `(${at}), then ask AskYourDatabase's support`,
    );
  }
  if (error.status === 401 || error.status === 403) {
    return fail(
      `the API key is refused (${error.status})`,
      "copy the API key from the AskYourDatabase dashboard (API key) into " +
        "ASKYOURDATABASE_API_KEY",
    );
  }
  if (error.status === 400 || error.status === 404) {
    return fail(
      `the chatbot ID is refused (${error.status}): AskYourDatabase knows no chatbot ` +
        `"${config.aydChatId}" for this API key`,
      "set ASKYOURDATABASE_CHAT_ID to the chatbot ID from the chatbot's URL in the " +
        "AskYourDatabase dashboard" + (custom ? `; is AYD_BASE_URL (${at}) right?` : ""),
    );
  }
  if (error.kind === "network" || error.kind === "timeout") {
    return fail(
      `${at} cannot be reached (${
        error.kind === "timeout" ? "no answer in time" : "no connection"
      })`,
      "check that this machine can open HTTPS connections to it" +
        (custom ? ", and AYD_BASE_URL" : ""),
    );
  }
  if (error.kind === "protocol") {
    const api = what === "chat" ? "newChat API" : "session API";
    return fail(
      `a ${what} was asked for, but AskYourDatabase's answer was not one (${error.message})`,
      `check AYD_BASE_URL (${at}); if it is right, AskYourDatabase's ${api} may have changed`,
    );
  }
  return fail(
    `AskYourDatabase answered ${error.status ?? "an error"} when asked for a ${what}`,
    "try again in a minute; if it stays, ask AskYourDatabase's support",
  );
}
