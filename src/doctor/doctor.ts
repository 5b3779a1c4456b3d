/**
 * `deno task doctor`: checks a configuration against the real services and
 * says, line by line, what works and how to fix what does not.
 *
 * @module
 */
import { loadConfig } from "../config.ts";
import { checkAyd } from "./_ayd.ts";
import { checkKv } from "./_kv.ts";
import { checkPublicUrl } from "./_public_url.ts";
import { checkTwilio } from "./_twilio.ts";
import type { CheckLine } from "./report.ts";

/** What the checks may be given instead of the real thing; tests shorten the waits. */
export interface DoctorDeps {
  fetch?: typeof fetch;
  /** Per network request and per KV operation (default 10 s). */
  timeoutMs?: number;
  /** How long to wait before looking for a bridge's heartbeat a second time. */
  recheckAfterMs?: number;
}

/**
 * Runs every check on `env` (the environment, `.env` already read into it):
 * the variables, then Twilio, AskYourDatabase and KV side by side, then the
 * public URL. With a variable wrong, nothing else is tried.
 *
 * @example
 * ```ts
 * const lines = await runDoctor(Deno.env.toObject());
 * console.log(formatReport(lines));
 * Deno.exit(allPassed(lines) ? 0 : 1);
 * ```
 */
export async function runDoctor(
  env: Record<string, string | undefined>,
  deps: DoctorDeps = {},
): Promise<CheckLine[]> {
  const loaded = loadConfig(env);
  if (!loaded.ok) {
    return [
      ...loaded.problems.map((problem): CheckLine => {
        const colon = problem.indexOf(": ");
        return colon < 0 ? { status: "fail", area: "configuration", text: problem } : {
          status: "fail",
          area: "configuration",
          text: problem.slice(0, colon),
          fix: problem.slice(colon + 2).replace(/\.$/, ""),
        };
      }),
      {
        status: "skip",
        area: "services",
        text: "Twilio, AskYourDatabase, KV and the public URL are checked once every variable is " +
          "valid",
      },
    ];
  }
  const { config } = loaded;
  const [twilio, ayd, kv] = await Promise.all([
    checkTwilio(config, deps),
    checkAyd(config, deps),
    checkKv(config, { timeoutMs: deps.timeoutMs, backendForced: !!env.JOB_BACKEND?.trim() }),
  ]);
  try {
    const publicUrl = await checkPublicUrl(config, { ...deps, kv: kv.kv });
    return [
      { status: "pass", area: "configuration", text: "every variable is valid" },
      ...twilio,
      ...ayd,
      ...kv.lines,
      ...publicUrl,
    ];
  } finally {
    kv.kv?.close();
  }
}
