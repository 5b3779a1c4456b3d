/**
 * What the tasks share: `--help`, paths as the operator typed them, and
 * opening KV as the service does while saying which one it is.
 *
 * The tasks read `.env` the way `deno task dev` and `start` do: through
 * `--env-file=.env` in their `deno.json` commands, so the environment wins
 * over the file.
 *
 * @module
 */
import { resolve } from "node:path";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { describeKvLocation, isRemote, kvOpenError, openKv } from "../src/storage/mod.ts";

/**
 * Whether `args` ask for the usage (`--help`, `-h`).
 *
 * @example
 * ```ts
 * if (wantsHelp(Deno.args)) console.log(USAGE);
 * ```
 */
export function wantsHelp(args: readonly string[]): boolean {
  return args.some((arg) => arg === "--help" || arg === "-h");
}

/**
 * The task's arguments, parsed with `node:util`'s `parseArgs`: `--help` or
 * `-h` prints `usage` and ends the task with 0, an unknown or malformed
 * option prints why and `usage` on standard error and ends it with 2.
 *
 * @example
 * ```ts
 * const { values } = taskArgs(USAGE, { options: { force: { type: "boolean" } } });
 * ```
 */
export function taskArgs<T extends ParseArgsConfig>(usage: string, config: T) {
  if (wantsHelp(Deno.args)) {
    console.log(usage);
    Deno.exit(0);
  }
  try {
    return parseArgs({ args: Deno.args, ...config });
  } catch (error) {
    console.error(`${(error as Error).message}\n${usage}`);
    Deno.exit(2);
  }
}

/**
 * Where an export goes: `-` (standard output) as it is, else `out` resolved
 * as the operator typed it ({@linkcode userPath}). A file already there ends
 * the task with 1 and `refusal(path)` unless `force`: it may be a file
 * someone keeps.
 *
 * @example
 * ```ts
 * const out = await exportTarget(values.out, values.force, env, (path) => `${path} exists`);
 * ```
 */
export async function exportTarget(
  out: string,
  force: boolean | undefined,
  env: Record<string, string | undefined>,
  refusal: (path: string) => string,
): Promise<string> {
  if (out === "-") return out;
  const path = userPath(out, env);
  if (!force && await Deno.lstat(path).then(() => true, () => false)) {
    console.error(refusal(path));
    Deno.exit(1);
  }
  return path;
}

/**
 * `path` resolved against the folder the operator ran `deno task` in:
 * `deno task` runs its commands in the project folder and says where it was
 * started in `INIT_CWD`.
 *
 * @example
 * ```ts
 * userPath("old/ayd_sessions.csv", { INIT_CWD: "/srv/flask-app" }); // "/srv/flask-app/old/ayd_sessions.csv"
 * ```
 */
export function userPath(path: string, env: Record<string, string | undefined>): string {
  return resolve(env.INIT_CWD || Deno.cwd(), path);
}

/**
 * Which KV `location` is and why, for the operator: an absolute file path
 * or a URL without its token, and the variable that chose it.
 *
 * @example
 * ```ts
 * describeKvChoice("data/bridge.kv", {}); // "/srv/bridge/data/bridge.kv (the default: DENO_KV_PATH is unset)"
 * ```
 */
export function describeKvChoice(
  location: string | undefined,
  env: Record<string, string | undefined>,
): string {
  const where = location === undefined || isRemote(location) || location === ":memory:"
    ? describeKvLocation(location)
    : resolve(location);
  if (env.DENO_KV_URL?.trim()) return `${where} (DENO_KV_URL)`;
  if (env.DENO_KV_PATH?.trim()) return `${where} (DENO_KV_PATH)`;
  return `${where} (the default: DENO_KV_PATH is unset)`;
}

/**
 * Opens the KV at `location` and says which on standard error (standard
 * output may carry a CSV); a KV that will not open ends the task with
 * exit code 1 and how to fix it.
 *
 * @example
 * ```ts
 * const kv = await openTaskKv(resolveKvLocation(env), env);
 * ```
 */
export async function openTaskKv(
  location: string | undefined,
  env: Record<string, string | undefined>,
): Promise<Deno.Kv> {
  const kv = await openKv(location).catch((error) => {
    console.error(kvOpenError(location, error));
    Deno.exit(1);
  });
  console.error(`KV: ${describeKvChoice(location, env)}`);
  return kv;
}
