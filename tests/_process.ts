/** `main.ts` as a child process, for restarts, signals and crashes. */
import { fileURLToPath } from "node:url";

const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url));
const ROOT = fileURLToPath(new URL("../", import.meta.url));

/**
 * What `deno task start` passes to V8, each measured with the memory
 * benchmark (1,000 answers held open, then finishing in the same second):
 * - a 2 MB young generation instead of 16 MB: about 15% less RSS while held;
 * - a major collection once the old generation grows 20% past its last live
 *   size (V8 otherwise lets it grow up to 4x): peak about 187 → 165 MB;
 * - no allocation-site pretenuring, which at the finish put the garbage of
 *   1,000 answers straight into the old generation, and no pool of freed heap
 *   pages (they go back to the system): peak median 152 → 144 MB in four
 *   alternating runs each, with a spread of 2 MB instead of 4;
 * - `--optimize-for-size`: 2 MB less idle, peak median 147 → 140 MB in five
 *   alternating runs, max 146 → 143 MB.
 * The price, in alternating runs: ingress at concurrency 32 about 9% slower
 * (about 1,150 vs 1,265 req/s), p99 and the pipeline's queue delays unchanged.
 */
export const V8_FLAGS =
  "--v8-flags=--max-semi-space-size=2,--heap-growing-percent=20,--no-allocation-site-pretenuring,--no-memory-pool,--optimize-for-size";

/** The command that runs `main.ts` (or `script`) with exactly `env`, as `deno task start` does. */
export function mainCommand(env: Record<string, string>, script = MAIN): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", V8_FLAGS, "--allow-net", "--allow-env", "--allow-read", "--allow-write", script],
    clearEnv: true,
    env: {
      ...env,
      NO_COLOR: "1",
      DENO_DIR: Deno.env.get("DENO_DIR") ?? "",
      HOME: Deno.env.get("HOME") ?? "",
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

/**
 * What `deno task <name>` runs, read from `deno.json` (its flags, such as
 * `--env-file=.env`, included), in `cwd` as if that were the project
 * folder, with exactly `env`.
 *
 * @example
 * ```ts
 * const { code } = await taskCommand("import-sessions", ["old.csv"], { cwd: dir, env: {} }).output();
 * ```
 */
export function taskCommand(
  name: string,
  args: string[],
  options: { cwd: string; env: Record<string, string> },
): Deno.Command {
  const config = JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`));
  const [deno, run, ...flags] = (config.tasks[name] as string).split(" ");
  const script = flags.pop()!;
  if (deno !== "deno" || run !== "run") throw new Error(`task ${name} is not a deno run`);
  return new Deno.Command(Deno.execPath(), {
    args: [run, `--config=${ROOT}deno.json`, ...flags, `${ROOT}${script}`, ...args],
    cwd: options.cwd,
    clearEnv: true,
    env: {
      ...options.env,
      NO_COLOR: "1",
      DENO_DIR: Deno.env.get("DENO_DIR") ?? "",
      HOME: Deno.env.get("HOME") ?? "",
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

/**
 * Runs {@linkcode taskCommand} to its end.
 *
 * @example
 * ```ts
 * const { code, out, err } = await runTask("dead-letters", [], { cwd: dir, env: {} });
 * ```
 */
export async function runTask(
  name: string,
  args: string[],
  options: { cwd: string; env: Record<string, string> },
): Promise<{ code: number; out: string; err: string }> {
  const { code, stdout, stderr } = await taskCommand(name, args, options).output();
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code, out: text(stdout), err: text(stderr) };
}

/** A running `main.ts`. */
export interface MainProcess extends AsyncDisposable {
  url: string;
  pid: number;
  /** Its stdout so far: JSON log lines. */
  output(): string;
  kill(signal: Deno.Signal): void;
  /** Resolves with the exit code once the process ended and its output was read. */
  exited: Promise<number>;
  /**
   * Sends `signal` and resolves with how the process ended. A process still
   * running after `timeoutMs` is killed and the test fails, with its last
   * output, rather than hanging the suite.
   */
  stop(signal: Deno.Signal, timeoutMs?: number): Promise<{ code: number; signal: string | null }>;
}

/** Starts `main.ts` (or `script`) and waits until it logs `service.started` (an info line). */
export async function startMain(
  env: Record<string, string>,
  script = MAIN,
): Promise<MainProcess> {
  if (env.LOG_LEVEL === "warn" || env.LOG_LEVEL === "error") {
    throw new Error("startMain reads the service.started line: LOG_LEVEL must be info or debug");
  }
  const child = mainCommand(env, script).spawn();
  let output = "";
  let found: string | undefined;
  const { promise: started, resolve: announce } = Promise.withResolvers<string>();
  const reading = (async () => {
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      output += chunk;
      if (Deno.env.get("ECHO_MAIN")) Deno.stderr.writeSync(new TextEncoder().encode(chunk));
      if (!found) {
        found = /"event":"service\.started","url":"([^"]+)"/.exec(output)?.[1];
        if (found) announce(found);
      }
    }
  })();
  const errors = new Response(child.stderr).text();
  const ended = Promise.all([child.status, reading, errors]).then(([status]) => status);
  const exited = ended.then((status) => status.code);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const url = await Promise.race([
    started,
    exited.then(async (code) => {
      throw new Error(`main.ts exited with ${code} before starting: ${await errors}`);
    }),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        child.kill("SIGKILL");
        reject(new Error(`main.ts did not start within 30 s; it wrote: ${output}`));
      }, 30_000);
    }),
  ]).finally(() => clearTimeout(timer));
  return {
    url,
    pid: child.pid,
    output: () => output,
    kill: (signal) => {
      try {
        child.kill(signal);
      } catch { /* already gone */ }
    },
    exited,
    async stop(signal, timeoutMs = 30_000) {
      try {
        child.kill(signal);
      } catch { /* already gone */ }
      let timer: ReturnType<typeof setTimeout> | undefined;
      const hung = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          try {
            child.kill("SIGKILL");
          } catch { /* ended just now */ }
          const tail = output.trimEnd().split("\n").slice(-5).join("\n");
          reject(
            new Error(`main.ts still ran ${timeoutMs} ms after ${signal}; it last wrote:\n${tail}`),
          );
        }, timeoutMs);
      });
      const status = await Promise.race([ended, hung]).finally(() => clearTimeout(timer));
      return { code: status.code, signal: status.signal };
    },
    async [Symbol.asyncDispose]() {
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
      await exited;
    },
  };
}

/** A port that was free a moment ago, for a server restarted on the same URL. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}
