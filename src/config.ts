/**
 * Reads the environment into a typed, validated configuration. Every problem
 * is collected so start-up can stop with one message that lists them all.
 *
 * @module
 */
import * as v from "valibot";
import { chooseBackend, type JobBackend } from "./jobs/mod.ts";
import { resolveKvLocation } from "./storage/mod.ts";
import { parseAllowedNumbers } from "./webhook/mod.ts";
import type { LogLevel } from "./log.ts";
import type { PartMarkers } from "./whatsapp/mod.ts";

/** The bridge's settings, after defaults and validation. */
export interface Config {
  twilioAccountSid: string;
  twilioAuthToken: string;
  /** Bare E.164 (`+14155238886`); messages are sent from `whatsapp:` + it. */
  twilioFromNumber: string;
  /** The public URL Twilio calls, as configured there (signatures cover it). */
  twilioWebhookUrl: string;
  /** Where Twilio REST calls go instead of Twilio's hosts, when set. */
  twilioApiBaseUrl: string | undefined;
  aydApiKey: string;
  aydChatId: string;
  aydBaseUrl: string;
  aydTimeoutMs: number;
  /**
   * How AYD is reached: `session` (the Flask app's embed-widget sessions,
   * drop-in compatible) or `chat` (AYD's documented API-key chats).
   */
  aydMode: AydMode;
  host: string;
  port: number;
  maxSmsChars: number;
  /** A KV file path, `:memory:`, a KV Connect URL, or undefined for the platform's KV. */
  kvPath: string | undefined;
  logLevel: LogLevel;
  jobBackend: JobBackend;
  /** Lanes (numbers) answered at once by this process. */
  workerConcurrency: number;
  /** From acceptance, how long a failing message's job may keep retrying. */
  jobRetryBudgetMs: number;
  jobRetryBaseMs: number;
  /** How long a process may go without a heartbeat before its lanes are taken over. */
  jobLeaseMs: number;
  /** How long shutdown waits for jobs under way. */
  shutdownGraceMs: number;
  /** Show WhatsApp's "typing…" while an answer is prepared. */
  typingIndicator: boolean;
  /** How the parts of a long answer are numbered. */
  partMarkers: PartMarkers;
  /** Who may ask; undefined = everyone. */
  allowedNumbers: ReadonlySet<string> | undefined;
  /** Sent at most once a day to a number not allowed; "" = silence. */
  deniedReply: string;
  rateLimitPerMinute: number;
  rateLimitPerDay: number;
  /** Where Twilio posts delivery statuses; default: `twilio/status` beside the webhook. */
  twilioStatusCallbackUrl: string | undefined;
  /** Enables `/admin` with this bearer token. */
  adminToken: string | undefined;
  /** Where the scheduled `ayd_sessions.csv` export goes; unset = none. */
  sessionsCsvPath: string | undefined;
  sessionsCsvEveryMinutes: number;
  /** Where voice notes are transcribed; undefined (no `TRANSCRIBE_URL`) = they get the text-only reply. */
  transcription: TranscriptionConfig | undefined;
  /** The largest medium fetched from Twilio, in bytes (Twilio's own cap: 16 MB). */
  maxMediaBytes: number;
  /** Messages from one number within this of each other are one question; 0 = never. */
  mergeWindowMs: number;
}

/** An OpenAI-compatible transcription service (`TRANSCRIBE_*`). */
export interface TranscriptionConfig {
  /** Base URL, without `/v1/audio/transcriptions` and without a trailing slash. */
  url: string;
  apiKey: string | undefined;
  model: string;
  /** An ISO-639-1 hint, lower case. */
  language: string | undefined;
  /** Time allowed for one transcription. */
  timeoutMs: number;
}

/** The two ways of reaching AYD (see `docs/ayd.md`). */
export type AydMode = "session" | "chat";

/** The outcome of {@linkcode loadConfig}: a config, or every problem found. */
export type ConfigResult =
  | { ok: true; config: Config }
  | { ok: false; problems: string[] };

const e164 = /^\+[1-9]\d{6,14}$/;

const httpUrl = v.pipe(
  v.string(),
  v.check((value) => {
    try {
      return ["http:", "https:"].includes(new URL(value).protocol);
    } catch {
      return false;
    }
  }),
);

/** A transcription service's base URL: the client adds `/v1/audio/transcriptions` itself. */
const transcribeBaseUrl = v.pipe(
  httpUrl,
  // Valibot runs every check of a pipe, so this one meets bad URLs too.
  v.check((value) => !/\/v1(\/audio\/transcriptions)?\/*$/.test(URL.parse(value)?.pathname ?? "")),
);

const integer = (min: number, max: number) =>
  v.pipe(
    v.string(),
    v.regex(/^\d+$/),
    v.transform(Number),
    v.integer(),
    v.minValue(min),
    v.maxValue(max),
  );

/** One variable: its schema, its default, and how to fix a bad value. */
interface Variable {
  schema: v.GenericSchema<string | undefined, unknown>;
  fallback?: string;
  /** An empty value means itself, not the default. */
  emptyMeansEmpty?: boolean;
  hint: string;
}

const VARIABLES = {
  TWILIO_ACCOUNT_SID: {
    schema: v.pipe(v.string(), v.regex(/^AC[0-9a-fA-F]{32}$/)),
    hint: "your Twilio Account SID, AC followed by 32 hex characters " +
      "(Twilio Console, console.twilio.com → Account Dashboard → Account Info → Account SID)",
  },
  TWILIO_AUTH_TOKEN: {
    schema: v.pipe(v.string(), v.regex(/^\S+$/)),
    hint: "your Twilio Auth Token " +
      "(Twilio Console → Account Dashboard → Account Info → Auth Token; click Show)",
  },
  TWILIO_FROM_NUMBER: {
    schema: v.pipe(
      v.string(),
      v.transform((value) => value.replace(/^whatsapp:/i, "")),
      v.regex(e164),
    ),
    hint: "the WhatsApp-enabled Twilio number in E.164 form, e.g. +14155238886 " +
      "(Twilio Console → Messaging → Senders → WhatsApp senders; the WhatsApp sandbox's " +
      "number is under Messaging → Try it out → Send a WhatsApp message)",
  },
  TWILIO_WEBHOOK_URL: {
    schema: httpUrl,
    hint:
      "this service's public URL ending in /whatsapp, e.g. https://bridge.example.com/whatsapp, " +
      "exactly as set in the Twilio Console (Messaging → your WhatsApp sender, or the sandbox's " +
      'settings → "When a message comes in")',
  },
  TWILIO_API_BASE_URL: {
    schema: v.optional(httpUrl),
    hint: "an http(s) base URL that replaces Twilio's API hosts (leave unset for the real Twilio)",
  },
  ASKYOURDATABASE_API_KEY: {
    schema: v.pipe(v.string(), v.regex(/^\S+$/)),
    hint: "your AskYourDatabase API key (AskYourDatabase dashboard → API Key)",
  },
  ASKYOURDATABASE_CHAT_ID: {
    schema: v.pipe(v.string(), v.regex(/^\S+$/)),
    hint: "the ID of the AskYourDatabase chatbot to ask: open the chatbot in the " +
      "AskYourDatabase dashboard and copy the ID from its URL",
  },
  AYD_BASE_URL: {
    schema: httpUrl,
    fallback: "https://www.askyourdatabase.com",
    hint: "the AskYourDatabase base URL (default https://www.askyourdatabase.com)",
  },
  AYD_MODE: {
    schema: v.pipe(v.string(), v.toLowerCase(), v.picklist(["session", "chat"])),
    fallback: "session",
    hint: "session (the Flask app's widget sessions, the default) or chat " +
      "(AYD's documented API: newChat, ask with chatid, chat history)",
  },
  AYD_TIMEOUT_MS: {
    schema: integer(1, 3_600_000),
    fallback: "60000",
    hint: "milliseconds to wait for a whole AskYourDatabase answer, 1–3600000 (default 60000)",
  },
  HOST: {
    schema: v.pipe(v.string(), v.regex(/^\S+$/)),
    fallback: "0.0.0.0",
    hint: "the address to listen on (default 0.0.0.0)",
  },
  PORT: {
    schema: integer(0, 65_535),
    fallback: "5000",
    hint: "the port to listen on, 0–65535 (default 5000)",
  },
  MAX_SMS_CHARS: {
    schema: integer(1, 1_600),
    fallback: "1600",
    hint: "the longest WhatsApp message body to send, 1–1600 (Twilio's limit; default 1600)",
  },
  DENO_KV_PATH: {
    schema: v.optional(v.string()),
    hint: "a file path for the local Deno KV database, or :memory:",
  },
  DENO_KV_URL: {
    schema: v.optional(httpUrl),
    hint: "the KV Connect URL of a remote database, e.g. http://denokv-host:4512 (a denokv server)",
  },
  DENO_KV_ACCESS_TOKEN: {
    schema: v.optional(v.pipe(v.string(), v.regex(/^\S+$/))),
    hint: "the access token for DENO_KV_URL: the --access-token a denokv server was started with",
  },
  LOG_LEVEL: {
    schema: v.pipe(
      v.string(),
      v.transform((value) => value.toLowerCase().replace(/^warning$/, "warn")),
      v.picklist(["debug", "info", "warn", "error"]),
    ),
    fallback: "info",
    hint: "one of debug, info, warn, error (default info)",
  },
  JOB_BACKEND: {
    schema: v.optional(v.picklist(["kv-queue", "outbox"])),
    hint:
      "kv-queue or outbox (default: outbox on Deno Deploy or with DENO_KV_URL, kv-queue elsewhere)",
  },
  WORKER_CONCURRENCY: {
    schema: integer(1, 100_000),
    fallback: "1000",
    hint:
      "how many numbers this process answers at once, 1–100000 (default 1000; each open answer holds about 70–100 KB)",
  },
  JOB_RETRY_BUDGET_MS: {
    schema: integer(0, 86_400_000),
    fallback: "120000",
    hint:
      "milliseconds after arrival during which a failing job is retried, 0–86400000 (default 120000)",
  },
  JOB_RETRY_BASE_MS: {
    schema: integer(1, 600_000),
    fallback: "1000",
    hint: "milliseconds before a job's first retry, doubling after each, 1–600000 (default 1000)",
  },
  JOB_LEASE_MS: {
    schema: integer(300, 600_000),
    fallback: "3000",
    hint:
      "milliseconds a process may go without a heartbeat before another takes over its numbers, 300–600000 (default 3000)",
  },
  SHUTDOWN_GRACE_MS: {
    schema: integer(0, 600_000),
    fallback: "10000",
    hint: "milliseconds shutdown waits for jobs under way, 0–600000 (default 10000)",
  },
  ALLOWED_NUMBERS: {
    schema: v.pipe(
      v.optional(v.string()),
      v.check((value) => !value || parseAllowedNumbers(value).invalid.length === 0),
      v.transform((value) => value ? parseAllowedNumbers(value).numbers : undefined),
    ),
    hint: "comma-separated WhatsApp numbers in E.164 form, e.g. +15551234567,+4915112345678",
  },
  DENIED_REPLY: {
    schema: v.string(),
    fallback: "Sorry, this service is only available to registered users.",
    emptyMeansEmpty: true,
    hint: "the text sent (at most once a day) to a number not in ALLOWED_NUMBERS; empty = silence",
  },
  RATE_LIMIT_PER_MINUTE: {
    schema: integer(1, 100_000),
    fallback: "10",
    hint: "questions one number may ask per minute, 1–100000 (default 10)",
  },
  RATE_LIMIT_PER_DAY: {
    schema: integer(1, 10_000_000),
    fallback: "200",
    hint: "questions one number may ask per day (UTC), 1–10000000 (default 200)",
  },
  TWILIO_STATUS_CALLBACK_URL: {
    schema: v.optional(httpUrl),
    hint:
      "the public URL of POST /twilio/status (default: twilio/status beside TWILIO_WEBHOOK_URL)",
  },
  ADMIN_TOKEN: {
    schema: v.optional(v.pipe(v.string(), v.minLength(24), v.regex(/^\S+$/))),
    hint:
      "a random secret of at least 24 characters (e.g. openssl rand -hex 32); unset disables /admin",
  },
  SESSIONS_CSV_PATH: {
    schema: v.optional(v.string()),
    hint: "a file path for the scheduled ayd_sessions.csv export (unset: no export)",
  },
  SESSIONS_CSV_EVERY_MINUTES: {
    schema: integer(1, 1_440),
    fallback: "5",
    hint: "minutes between ayd_sessions.csv exports, 1–1440 (default 5)",
  },
  TYPING_INDICATOR: {
    schema: v.pipe(
      v.string(),
      v.toLowerCase(),
      v.picklist(["true", "false", "1", "0", "yes", "no", "on", "off"]),
      v.transform((value) => ["true", "1", "yes", "on"].includes(value)),
    ),
    fallback: "true",
    hint: 'true or false: show "typing…" while an answer is prepared (default true)',
  },
  PART_MARKERS: {
    schema: v.picklist(["none", "count", "total"]),
    fallback: "none",
    hint: "none, count ((1), (2) … (3/3); parts still go out while AYD writes) or " +
      "total ((1/3) on every part; the first part waits for the whole answer) (default none)",
  },
  TRANSCRIBE_URL: {
    schema: v.optional(transcribeBaseUrl),
    hint: "the base URL of an OpenAI-compatible transcription service, without " +
      "/v1/audio/transcriptions: https://api.openai.com, https://api.groq.com/openai, or " +
      "http://127.0.0.1:8080 for a local whisper.cpp or faster-whisper server (unset: voice notes " +
      "get the text-only reply)",
  },
  TRANSCRIBE_API_KEY: {
    schema: v.optional(v.pipe(v.string(), v.regex(/^\S+$/))),
    hint: "the transcription service's API key, sent as a bearer token (unset for a local server)",
  },
  TRANSCRIBE_MODEL: {
    schema: v.pipe(v.string(), v.regex(/^\S+$/)),
    fallback: "whisper-1",
    hint: "the transcription model, e.g. whisper-1 (OpenAI, the default) or " +
      "whisper-large-v3-turbo (Groq)",
  },
  TRANSCRIBE_LANGUAGE: {
    schema: v.optional(v.pipe(v.string(), v.toLowerCase(), v.regex(/^[a-z]{2}$/))),
    hint: "the language voice notes are spoken in, as an ISO-639-1 code such as en or de " +
      "(unset: the service detects it)",
  },
  MERGE_WINDOW_MS: {
    schema: integer(0, 10_000),
    fallback: "1000",
    hint: "milliseconds within which quick messages from one number are asked as one question, " +
      "0–10000 (default 1000; 0 asks each message alone)",
  },
  TRANSCRIBE_TIMEOUT_MS: {
    schema: integer(1_000, 600_000),
    fallback: "60000",
    hint: "milliseconds allowed for one transcription, 1000–600000 (default 60000)",
  },
  MAX_MEDIA_BYTES: {
    schema: integer(1, 16 * 1024 * 1024),
    fallback: String(16 * 1024 * 1024),
    hint: "the largest voice note fetched from Twilio, in bytes, 1–16777216 " +
      "(Twilio's own cap for WhatsApp media, the default)",
  },
} satisfies Record<string, Variable>;

/** The name of a variable `loadConfig` reads. */
export type VariableName = keyof typeof VARIABLES;
type Name = VariableName;

/**
 * Every variable {@linkcode loadConfig} reads, with its default as the
 * environment would spell it (undefined: none), so the documentation can be
 * checked against the code.
 *
 * @example
 * ```ts
 * VARIABLE_DEFAULTS.PORT; // "5000"
 * "TWILIO_AUTH_TOKEN" in VARIABLE_DEFAULTS; // true, with no default
 * ```
 */
export const VARIABLE_DEFAULTS = Object.fromEntries(
  Object.entries(VARIABLES as Record<Name, Variable>).map((
    [name, variable],
  ) => [name, variable.fallback]),
) as Readonly<Record<VariableName, string | undefined>>;

/** The variables without a default: the bridge cannot start without every one of them. */
export const REQUIRED_VARIABLES = [
  "TWILIO_ACCOUNT_SID",
  "TWILIO_AUTH_TOKEN",
  "TWILIO_FROM_NUMBER",
  "TWILIO_WEBHOOK_URL",
  "ASKYOURDATABASE_API_KEY",
  "ASKYOURDATABASE_CHAT_ID",
] as const satisfies readonly Name[];

/**
 * Whether `env` holds none of {@linkcode REQUIRED_VARIABLES} (unset and
 * empty alike): nothing was configured yet, as in a fresh clone.
 *
 * @example
 * ```ts
 * isUnconfigured({ PORT: "8000" }); // true
 * isUnconfigured({ TWILIO_AUTH_TOKEN: "x" }); // false
 * ```
 */
export function isUnconfigured(env: Record<string, string | undefined>): boolean {
  return REQUIRED_VARIABLES.every((name) => !env[name]?.trim());
}

/**
 * The problem with `env[name]`, worded as {@linkcode loadConfig} words it,
 * or undefined when the value (or its default) is valid.
 *
 * @example
 * ```ts
 * variableProblem({ PORT: "eighty" }, "PORT");
 * // "PORT is invalid: it must be the port to listen on, 0–65535 (default 5000)."
 * ```
 */
export function variableProblem(
  env: Record<string, string | undefined>,
  name: Name,
): string | undefined {
  return problemsOf(env, [name])[0];
}

/**
 * Validates `env` (unset and empty values count as missing) and applies the
 * defaults; where KV lives is decided by `resolveKvLocation`.
 *
 * @example
 * ```ts
 * const result = loadConfig(Deno.env.toObject());
 * if (!result.ok) console.error(formatConfigProblems(result.problems));
 * ```
 */
export function loadConfig(
  env: Record<string, string | undefined>,
): ConfigResult {
  const values = {} as Record<Name, unknown>;
  const problems = problemsOf(env, Object.keys(VARIABLES) as Name[], values);
  if (values.DENO_KV_URL && !values.DENO_KV_ACCESS_TOKEN) {
    problems.push(
      `DENO_KV_ACCESS_TOKEN is missing: DENO_KV_URL needs it; set it to ${VARIABLES.DENO_KV_ACCESS_TOKEN.hint}.`,
    );
  }
  if (values.DENO_KV_URL && values.JOB_BACKEND === "kv-queue") {
    problems.push(
      "JOB_BACKEND=kv-queue cannot run on DENO_KV_URL: KV Connect has no queues. " +
        "Unset JOB_BACKEND (outbox is chosen) or use a local DENO_KV_PATH.",
    );
  }
  if (values.PART_MARKERS !== "none" && (values.MAX_SMS_CHARS as number) < 40) {
    problems.push("PART_MARKERS needs MAX_SMS_CHARS of at least 40: raise it or set none.");
  }
  if (values.TRANSCRIBE_API_KEY && !values.TRANSCRIBE_URL) {
    problems.push(
      "TRANSCRIBE_URL is missing: TRANSCRIBE_API_KEY is set, so voice notes are meant to be " +
        "transcribed; set it to the service's base URL, e.g. https://api.openai.com " +
        "(or unset TRANSCRIBE_API_KEY).",
    );
  }
  if (problems.length > 0) return { ok: false, problems };

  return {
    ok: true,
    config: {
      twilioAccountSid: values.TWILIO_ACCOUNT_SID as string,
      twilioAuthToken: values.TWILIO_AUTH_TOKEN as string,
      twilioFromNumber: values.TWILIO_FROM_NUMBER as string,
      twilioWebhookUrl: values.TWILIO_WEBHOOK_URL as string,
      twilioApiBaseUrl: trimSlash(values.TWILIO_API_BASE_URL as string | undefined),
      aydApiKey: values.ASKYOURDATABASE_API_KEY as string,
      aydChatId: values.ASKYOURDATABASE_CHAT_ID as string,
      aydBaseUrl: trimSlash(values.AYD_BASE_URL as string)!,
      aydTimeoutMs: values.AYD_TIMEOUT_MS as number,
      aydMode: values.AYD_MODE as AydMode,
      host: values.HOST as string,
      port: values.PORT as number,
      maxSmsChars: values.MAX_SMS_CHARS as number,
      kvPath: resolveKvLocation(env),
      logLevel: values.LOG_LEVEL as LogLevel,
      jobBackend: chooseBackend(env),
      workerConcurrency: values.WORKER_CONCURRENCY as number,
      jobRetryBudgetMs: values.JOB_RETRY_BUDGET_MS as number,
      jobRetryBaseMs: values.JOB_RETRY_BASE_MS as number,
      jobLeaseMs: values.JOB_LEASE_MS as number,
      shutdownGraceMs: values.SHUTDOWN_GRACE_MS as number,
      typingIndicator: values.TYPING_INDICATOR as boolean,
      partMarkers: values.PART_MARKERS as PartMarkers,
      allowedNumbers: values.ALLOWED_NUMBERS as Set<string> | undefined,
      deniedReply: values.DENIED_REPLY as string,
      rateLimitPerMinute: values.RATE_LIMIT_PER_MINUTE as number,
      rateLimitPerDay: values.RATE_LIMIT_PER_DAY as number,
      twilioStatusCallbackUrl: values.TWILIO_STATUS_CALLBACK_URL as string | undefined,
      adminToken: values.ADMIN_TOKEN as string | undefined,
      sessionsCsvPath: values.SESSIONS_CSV_PATH as string | undefined,
      sessionsCsvEveryMinutes: values.SESSIONS_CSV_EVERY_MINUTES as number,
      transcription: values.TRANSCRIBE_URL
        ? {
          url: trimSlash(values.TRANSCRIBE_URL as string)!,
          apiKey: values.TRANSCRIBE_API_KEY as string | undefined,
          model: values.TRANSCRIBE_MODEL as string,
          language: values.TRANSCRIBE_LANGUAGE as string | undefined,
          timeoutMs: values.TRANSCRIBE_TIMEOUT_MS as number,
        }
        : undefined,
      maxMediaBytes: values.MAX_MEDIA_BYTES as number,
      mergeWindowMs: values.MERGE_WINDOW_MS as number,
    },
  };
}

/** Validates the variables `names` of `env`, putting their values in `values`. */
function problemsOf(
  env: Record<string, string | undefined>,
  names: Name[],
  values = {} as Record<Name, unknown>,
): string[] {
  const problems: string[] = [];
  for (const name of names) {
    const variable: Variable = VARIABLES[name];
    const given = env[name]?.trim();
    const raw = given === "" && variable.emptyMeansEmpty ? "" : given || variable.fallback;
    const parsed = v.safeParse(variable.schema, raw);
    if (raw !== undefined && !variable.emptyMeansEmpty && isPlaceholder(raw)) {
      problems.push(
        `${name} is still a placeholder (${shorten(raw)}, as in .env.example): ` +
          `set it to ${variable.hint}.`,
      );
    } else if (parsed.success) {
      values[name] = parsed.output;
    } else if (raw === undefined) {
      problems.push(`${name} is missing: set it to ${variable.hint}.`);
    } else {
      problems.push(`${name} is invalid: it must be ${variable.hint}.`);
    }
  }
  return problems;
}

/**
 * The start-up message for configuration problems: one line per problem and
 * where to set them.
 */
export function formatConfigProblems(problems: string[]): string {
  const count = problems.length === 1 ? "1 problem" : `${problems.length} problems`;
  return [
    `Configuration error (${count}):`,
    ...problems.map((p) => `  - ${p}`),
    "Set these in the environment or in .env (see .env.example), then start again.",
  ].join("\n");
}

/**
 * Values nobody means: `.env.example`'s `xxxx…` credentials (with or
 * without an `AC`), its `your-domain.com`, and `<…>` blanks copied from
 * the docs (`http://<host>:4512`).
 *
 * @example
 * ```ts
 * isPlaceholder("https://your-domain.com/whatsapp"); // true
 * isPlaceholder("https://bridge.example.com/whatsapp"); // false
 * ```
 */
export function isPlaceholder(value: string): boolean {
  return /^(?:AC)?x{8,}$/i.test(value) || /\byour[-_](?:domain|host)\b/i.test(value) ||
    /<[^<>\s]+>/.test(value);
}

function shorten(value: string): string {
  return value.length > 40 ? `${value.slice(0, 39)}…` : value;
}

function trimSlash(url: string | undefined): string | undefined {
  return url?.replace(/\/+$/, "");
}
