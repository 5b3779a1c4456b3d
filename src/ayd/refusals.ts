/**
 * Whether AYD refuses this bridge's credentials: a configuration problem
 * (a wrong or revoked API key, a chatbot the key cannot reach), not a
 * passing failure, so it is not retried; it is logged when it starts and
 * ends, and shown by `/health` and the console while it lasts.
 *
 * @module
 */
import type { Logger } from "../log.ts";

/** The process's view of AYD's refusals. */
export interface AydRefusals {
  /** AYD answered `status` (401, 403, or 404 for the chatbot) to `step`. */
  refused(step: string, status: number): void;
  /** AYD accepted a call again. */
  accepted(): void;
  /** What is wrong, for `/health` and the console; undefined while AYD accepts. */
  problem(): string | undefined;
}

/**
 * Creates the view; `log` hears of each change.
 *
 * @example
 * ```ts
 * const refusals = createAydRefusals(log);
 * refusals.refused("newChat", 401);
 * refusals.problem(); // "AYD refused the API key (newChat answered 401): check ASKYOURDATABASE_API_KEY"
 * ```
 */
export function createAydRefusals(log: Logger): AydRefusals {
  let problem: string | undefined;
  return {
    refused(step, status) {
      const next = status === 404
        ? `AYD does not know the chatbot (${step} answered 404): check ASKYOURDATABASE_CHAT_ID and that the API key may use it`
        : `AYD refused the API key (${step} answered ${status}): check ASKYOURDATABASE_API_KEY and ASKYOURDATABASE_CHAT_ID`;
      if (next !== problem) log.error("ayd.refused", { step, status, hint: next });
      problem = next;
    },
    accepted() {
      if (problem === undefined) return;
      problem = undefined;
      log.info("ayd.accepted");
    },
    problem: () => problem,
  };
}
