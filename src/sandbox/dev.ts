/**
 * `deno task dev` in a fresh clone: with none of the required variables set
 * (in the environment or `.env`), `main.ts --dev` serves the sandbox
 * instead of stopping with six configuration errors, and says so. As soon as
 * any required variable is set, the normal start and its strict checks
 * apply; `deno task start` never passes `--dev`, so it never falls back.
 *
 * @module
 */
import { formatConfigProblems, REQUIRED_VARIABLES, variableProblem } from "../config.ts";
import { stdoutLines } from "../log.ts";
import { type Sandbox, SandboxConfigError, type SandboxOptions, startSandbox } from "./sandbox.ts";

/**
 * Where the sandbox listens and what it opens, from `env`: `HOST` and `PORT`
 * when set, else the sandbox's own 127.0.0.1:8000 (it has no login); the
 * console with `ADMIN_TOKEN`; `LOG_LEVEL` (default `warn`, as in `deno task sandbox`: the
 * terminal shows what goes wrong).
 *
 * @example
 * ```ts
 * devSandboxOptions({ PORT: "8001" });
 * // { ok: true, options: { host: "127.0.0.1", port: 8001, adminToken: undefined, logLevel: "warn" } }
 * ```
 */
export function devSandboxOptions(
  env: Record<string, string | undefined>,
): { ok: true; options: SandboxOptions } | { ok: false; problems: string[] } {
  const set = (name: string) => env[name]?.trim() || undefined;
  const problems = (["HOST", "PORT", "LOG_LEVEL"] as const)
    .filter((name) => set(name) !== undefined)
    .flatMap((name) => variableProblem(env, name) ?? []);
  if (problems.length > 0) return { ok: false, problems };
  const level = set("LOG_LEVEL")?.toLowerCase().replace(/^warning$/, "warn");
  return {
    ok: true,
    options: {
      host: set("HOST") ?? "127.0.0.1",
      port: Number(set("PORT") ?? 8000),
      adminToken: set("ADMIN_TOKEN"),
      logLevel: (level ?? "warn") as SandboxOptions["logLevel"],
    },
  };
}

/**
 * What `deno task dev` prints when it serves the sandbox: what this is, where
 * it is, and how to go live.
 *
 * @example
 * ```ts
 * console.log(devBanner("http://127.0.0.1:8000/sandbox"));
 * ```
 */
export function devBanner(sandboxUrl: string, consoleUrl?: string): string {
  return [
    "No configuration yet: none of the six required variables is set (in the environment or .env),",
    "so deno task dev serves the sandbox instead: the real bridge with a demo AskYourDatabase and a",
    "Twilio stand-in that shows replies in the page. Nothing leaves this machine.",
    "",
    `  Sandbox ready: ${sandboxUrl}`,
    ...consoleUrl ? [`  Operator console: ${consoleUrl}`] : [],
    "",
    "To go live:",
    "  1. cp .env.example .env, and fill in",
    ...REQUIRED_VARIABLES.map((name) => `       ${name}`),
    "  2. deno task doctor   checks them against Twilio, AskYourDatabase and KV",
    "  3. deno task dev      stop this one first (Ctrl+C): the watcher does not see a new .env",
    "Once any of the six is set, deno task dev starts the bridge itself and checks every variable.",
    "More: docs/setup.md",
  ].join("\n");
}

/**
 * Starts the sandbox for `deno task dev`, prints the banner, and stops it on
 * SIGINT or SIGTERM; never resolves. Configuration problems with `HOST`,
 * `PORT`, `LOG_LEVEL` or `ADMIN_TOKEN`, or a port in use, end the process
 * with a message and exit code 1.
 *
 * @example
 * ```ts
 * if (Deno.args.includes("--dev") && isUnconfigured(env)) await serveDevSandbox(env);
 * ```
 */
export async function serveDevSandbox(env: Record<string, string | undefined>): Promise<never> {
  const settings = devSandboxOptions(env);
  if (!settings.ok) return fail(formatConfigProblems(settings.problems));
  let sandbox: Sandbox;
  try {
    sandbox = await startSandbox(settings.options);
  } catch (error) {
    if (error instanceof SandboxConfigError) return fail(formatConfigProblems(error.problems));
    if (error instanceof Deno.errors.AddrInUse) {
      return fail(`Port ${settings.options.port} is in use: set PORT to another one.`);
    }
    return fail(`The sandbox could not start: ${(error as Error).message}`);
  }
  const consoleUrl = sandbox.config.adminToken
    ? sandbox.url.replace(/\/sandbox$/, "/admin")
    : undefined;
  console.log(devBanner(sandbox.url, consoleUrl));
  let stopping = false;
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, async () => {
      if (stopping) return;
      stopping = true;
      await sandbox.close();
      await stdoutLines.flush();
      Deno.exit(0);
    });
  }
  return await new Promise<never>(() => {});
}

function fail(message: string): never {
  console.error(message);
  Deno.exit(1);
}
