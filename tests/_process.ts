/** `main.ts` as a child process, for restarts, signals and crashes. */
import { fileURLToPath } from "node:url";

const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url));
const ROOT = fileURLToPath(new URL("../", import.meta.url));

/**
 * What `deno task start` passes to V8: a 2 MB young generation instead of the
 * default 16 MB, which in the memory benchmark lowers RSS with 1,000
 * conversations in flight by about 15%, and a major collection once the old
 * generation grows 20% past its last live size (V8 otherwise lets it grow by
 * up to 4x), which lowers the peak when 1,000 answers finish at once from
 * about 187 to 165 MB. The price, in three alternating runs each: ingress at
 * concurrency 32 about 4% slower (1,162 vs 1,212 req/s) with a p99 of
 * 149–163 instead of 132–136 ms; the pipeline showed no difference.
 */
export const V8_FLAGS = "--v8-flags=--max-semi-space-size=2,--heap-growing-percent=20";

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
          child.kill("SIGKILL");
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
