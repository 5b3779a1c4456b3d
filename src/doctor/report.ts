/**
 * The doctor's checklist: one line per check, passed (`✓`), failed (`✗`,
 * with the fix below it) or not checked (`–`, saying why). A line not
 * checked is never a failure: either a line above it failed (fix that
 * first), or what it would check is not in reach (Twilio's shared sandbox
 * number, an API the account cannot use).
 *
 * @module
 */

/** How one check came out. */
export type CheckStatus = "pass" | "fail" | "skip";

/** One line of the checklist. Nothing in it may hold a token or a key. */
export interface CheckLine {
  status: CheckStatus;
  /** What is checked: `configuration`, `Twilio`, `AskYourDatabase`, `KV`, `public URL`. */
  area: string;
  text: string;
  /** What to do: printed under a failed line as `fix:`, under one not checked as `check:`. */
  fix?: string;
}

const MARKS: Record<CheckStatus, string> = { pass: "✓", fail: "✗", skip: "–" };

/**
 * Whether every check passed or could not be checked: the doctor's exit
 * code is 0 exactly then.
 *
 * @example
 * ```ts
 * allPassed([{ status: "skip", area: "Twilio", text: "…" }]); // true
 * ```
 */
export function allPassed(lines: readonly CheckLine[]): boolean {
  return lines.every((line) => line.status !== "fail");
}

/**
 * The checklist as printed: a line per check, its fix indented below it,
 * and a last line that counts them.
 *
 * @example
 * ```ts
 * formatReport([{ status: "fail", area: "KV", text: "cannot open /x", fix: "set DENO_KV_PATH" }]);
 * // "✗ KV: cannot open /x\n    fix: set DENO_KV_PATH\n\n1 failed."
 * ```
 */
export function formatReport(lines: readonly CheckLine[]): string {
  const out = lines.flatMap((line) => [
    `${MARKS[line.status]} ${line.area}: ${line.text}`,
    ...line.fix ? [`    ${line.status === "fail" ? "fix" : "check"}: ${line.fix}`] : [],
  ]);
  const count = (status: CheckStatus) => lines.filter((line) => line.status === status).length;
  const [passed, failed, skipped] = [count("pass"), count("fail"), count("skip")];
  const summary = [
    failed > 0 ? `${failed} failed` : "",
    skipped > 0 ? `${skipped} not checked (not failures)` : "",
    passed > 0 ? `${passed} passed` : "",
  ].filter(Boolean).join(", ");
  return [...out, "", failed === 0 ? `All good: ${summary}.` : `${summary}.`].join("\n");
}
