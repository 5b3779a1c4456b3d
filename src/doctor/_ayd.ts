/**
 * The doctor's AskYourDatabase line: the API key and chatbot ID open a
 * session, the same way the bridge opens one for a new number (login URL,
 * then the `accessToken` cookie), without asking a question.
 *
 * @module
 */
import { AydError, createAydSession } from "../ayd/mod.ts";
import type { Config } from "../config.ts";
import type { CheckLine } from "./report.ts";

/**
 * Who the doctor's session is for: a number from the range reserved for
 * fiction (555-01xx), so it is never a person's, and AYD's session list shows
 * it as "WhatsApp User +15550100000".
 */
export const DOCTOR_PHONE = "+15550100000";

/** How long the session may take, both steps. */
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
  try {
    await createAydSession(
      {
        baseUrl: config.aydBaseUrl,
        apiKey: config.aydApiKey,
        chatId: config.aydChatId,
        fetch: deps.fetch,
      },
      DOCTOR_PHONE,
      {
        now: (deps.now ?? Date.now)(),
        signal: AbortSignal.timeout(deps.timeoutMs ?? AYD_CHECK_TIMEOUT_MS),
      },
    );
    return [{
      status: "pass",
      area,
      text: `the API key and chatbot ID open a session (as WhatsApp User ${DOCTOR_PHONE}; ` +
        "no question asked)",
    }];
  } catch (error) {
    return [failure(error, config)];
  }
}

function failure(error: unknown, config: Config): CheckLine {
  const fail = (text: string, fix: string): CheckLine => ({ status: "fail", area, text, fix });
  const at = config.aydBaseUrl;
  if (!(error instanceof AydError)) {
    return fail(`opening a session failed (${(error as Error)?.name})`, "run the doctor again");
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
        "AskYourDatabase dashboard" +
        (at === "https://www.askyourdatabase.com" ? "" : `; is AYD_BASE_URL (${at}) right?`),
    );
  }
  if (error.kind === "network" || error.kind === "timeout") {
    return fail(
      `${at} cannot be reached (${
        error.kind === "timeout" ? "no answer in time" : "no connection"
      })`,
      "check that this machine can open HTTPS connections to it" +
        (at === "https://www.askyourdatabase.com" ? "" : ", and AYD_BASE_URL"),
    );
  }
  if (error.kind === "protocol") {
    return fail(
      `a session was asked for, but AskYourDatabase's answer was not one (${error.message})`,
      `check AYD_BASE_URL (${at}); if it is right, AskYourDatabase's session API may have changed`,
    );
  }
  return fail(
    `AskYourDatabase answered ${error.status ?? "an error"} when asked for a session`,
    "try again in a minute; if it stays, ask AskYourDatabase's support",
  );
}
