/**
 * Structured logging: one JSON object per line, phone numbers masked, and no
 * message text or credentials (callers pass only the fields below).
 *
 * @module
 */

/** Severity, in increasing order. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** The values a log line may carry: flat and JSON-safe. */
export type LogFields = Record<
  string,
  string | number | boolean | null | undefined
>;

/** Writes one event; `event` is a dotted name such as `webhook.received`. */
export type LogFn = (event: string, fields?: LogFields) => void;

/** A logger with one method per level. */
export interface Logger {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
}

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/**
 * Creates a logger that writes JSON lines at or above `level`.
 *
 * @example
 * ```ts
 * const log = createLogger({ level: "info" });
 * log.info("webhook.received", { from: maskPhone("+15551234567") });
 * // {"time":"…","level":"info","event":"webhook.received","from":"+*******4567"}
 * ```
 */
export function createLogger(options: {
  level: LogLevel;
  write?: (line: string) => void;
  now?: () => Date;
}): Logger {
  const write = options.write ?? stdoutLines.write;
  const now = options.now ?? (() => new Date());
  const at = (level: LogLevel): LogFn =>
    RANK[level] < RANK[options.level] ? () => {} : (event, fields) =>
      write(JSON.stringify({
        time: now().toISOString(),
        level,
        event,
        ...fields,
      }));
  return {
    debug: at("debug"),
    info: at("info"),
    warn: at("warn"),
    error: at("error"),
  };
}

/**
 * Standard output, written in batches: lines logged during one turn of the
 * event loop go out in one write, which under load costs far less than a
 * `console.log` per line. Call `flush()` before exiting.
 */
export const stdoutLines = (() => {
  const encoder = new TextEncoder();
  let pending: string[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  const flush = () => {
    clearTimeout(timer);
    timer = undefined;
    if (pending.length === 0) return;
    let data = encoder.encode(pending.join("\n") + "\n");
    pending = [];
    while (data.length > 0) data = data.subarray(Deno.stdout.writeSync(data));
  };
  return {
    write(line: string) {
      pending.push(line);
      timer ??= setTimeout(flush, 0);
    },
    flush,
  };
})();

/** A logger that drops everything; handy where logs are not the point. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};

/**
 * Masks a phone number for logs, keeping only its last four digits, so lines
 * about one sender can be correlated without revealing who it is.
 *
 * @example
 * ```ts
 * maskPhone("whatsapp:+15551234567"); // "+*******4567"
 * ```
 */
export function maskPhone(phone: string): string {
  const digits = phone.replace(/\D/g, "");
  if (digits.length <= 4) return "+" + "*".repeat(digits.length);
  return "+" + "*".repeat(digits.length - 4) + digits.slice(-4);
}

/**
 * A short (at most 300 characters), log-safe description of an error. Query
 * strings are cut from any URL it mentions, since AYD's one-time login codes
 * travel in them.
 *
 * @example
 * ```ts
 * describeError(new TypeError("error sending request for url (https://x/cb?code=1)"));
 * // "TypeError: error sending request for url (https://x/cb?…)"
 * ```
 */
export function describeError(error: unknown): string {
  const text = error instanceof Error
    ? (error.name === "Error" ? error.message : `${error.name}: ${error.message}`)
    : String(error);
  const safe = text.replace(/\?[^\s)"']*/g, "?…");
  return safe.length > 300 ? safe.slice(0, 299) + "…" : safe;
}

/**
 * A logger that adds `fields` to every line, e.g. a request id.
 *
 * @example
 * ```ts
 * const requestLog = withFields(log, { request_id: "3f2a…" });
 * ```
 */
export function withFields(log: Logger, fields: LogFields): Logger {
  const wrap = (fn: LogFn): LogFn => (event, more) => fn(event, { ...fields, ...more });
  return {
    debug: wrap(log.debug),
    info: wrap(log.info),
    warn: wrap(log.warn),
    error: wrap(log.error),
  };
}
