/**
 * `deno task sandbox [--real-ayd] [--real-transcriber] [--port N] [--host H]`:
 * the real bridge with a demo AYD (or, with `--real-ayd`, the AYD configured
 * in `.env` or the environment), a demo transcriber for voice notes (or, with
 * `--real-transcriber`, the `TRANSCRIBE_*` service configured there) and a
 * Twilio stand-in; chat with it at the printed URL. No credentials and no
 * `.env` are needed for the demo. With `ADMIN_TOKEN` set the operator console
 * opens too, and its URL is printed. The task reads `.env` as `deno task dev`
 * does (`--env-file`, the environment wins).
 *
 * @module
 */
import { formatConfigProblems } from "../src/config.ts";
import { stdoutLines } from "../src/log.ts";
import { type Sandbox, SandboxConfigError, startSandbox } from "../src/sandbox/mod.ts";
import { taskArgs } from "./_cli.ts";

const USAGE =
  `Usage: deno task sandbox [--real-ayd] [--real-transcriber] [--port 8000] [--host 127.0.0.1]
  Chat with the real bridge in a browser; AYD is a demo and Twilio a stand-in, nothing leaves here.
  --real-ayd          ask your own AYD chatbot (ASKYOURDATABASE_API_KEY, ASKYOURDATABASE_CHAT_ID)
  --real-transcriber  transcribe voice notes with your TRANSCRIBE_* service instead of the demo
  --port, --host      where to listen (default 127.0.0.1:8000; the page has no login, keep it local)`;

const { values } = taskArgs(USAGE, {
  options: {
    "real-ayd": { type: "boolean", default: false },
    "real-transcriber": { type: "boolean", default: false },
    port: { type: "string", default: "8000" },
    host: { type: "string", default: "127.0.0.1" },
  },
});
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65_535) {
  console.error(`--port must be a number from 0 to 65535\n${USAGE}`);
  Deno.exit(2);
}

// The variables may sit in .env: `--env-file` has loaded it, the environment winning.
const realEnv = values["real-ayd"] || values["real-transcriber"] ? Deno.env.toObject() : undefined;

let sandbox: Sandbox;
try {
  sandbox = await startSandbox({
    host: values.host,
    port,
    realAydEnv: values["real-ayd"] ? realEnv : undefined,
    realTranscriberEnv: values["real-transcriber"] ? realEnv : undefined,
    adminToken: Deno.env.get("ADMIN_TOKEN"),
    logLevel: (Deno.env.get("LOG_LEVEL") as "debug" | undefined) ?? "warn",
  });
} catch (error) {
  if (error instanceof SandboxConfigError) {
    const intro =
      (values["real-ayd"] ? "--real-ayd asks your own AskYourDatabase chatbot.\n" : "") +
      (values["real-transcriber"]
        ? "--real-transcriber sends voice notes to your own transcription service.\n"
        : "");
    console.error(intro + formatConfigProblems(error.problems));
  } else if (error instanceof Deno.errors.AddrInUse) {
    console.error(`Port ${port} is in use: try deno task sandbox --port 8001`);
  } else {
    console.error(`The sandbox could not start: ${(error as Error).message}`);
  }
  Deno.exit(1);
}

console.log(`Sandbox ready: ${sandbox.url}`);
if (sandbox.config.adminToken) {
  console.log(`Operator console: ${sandbox.url.replace(/\/sandbox$/, "/admin")}`);
}

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
