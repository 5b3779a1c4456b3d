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

/** Where log lines go: an async byte sink such as `Deno.stdout`. */
export interface LineSink {
  write(bytes: Uint8Array): Promise<number>;
}

/** Lines written in batches, never blocking the caller. */
export interface LineWriter {
  /** Queues one line; dropped (and counted) while more than the cap waits. */
  write(line: string): void;
  /** Resolves once what was queued is written, or after `timeoutMs`. */
  flush(timeoutMs?: number): Promise<void>;
}

/**
 * Writes lines to `sink` in batches: lines logged while a write is under way
 * go together in the next one, which under load costs far less than a write
 * per line. Writes are asynchronous, so a stalled pipe never blocks the event
 * loop that acknowledges webhooks: lines wait (up to `maxPendingBytes`, then
 * they are dropped and a `log.dropped` line says how many). A sink that
 * fails (a closed pipe: EPIPE) is given up silently, and the process lives on.
 *
 * @example
 * ```ts
 * const lines = createLineWriter(Deno.stdout);
 * lines.write('{"event":"service.started"}');
 * await lines.flush();
 * ```
 */
export function createLineWriter(sink: LineSink, maxPendingBytes = 4 * 1024 * 1024): LineWriter {
  const encoder = new TextEncoder();
  let pending: string[] = [];
  let pendingBytes = 0;
  let dropped = 0;
  let broken = false;
  let writing: Promise<void> | undefined;

  async function pump() {
    await new Promise((resolve) => setTimeout(resolve, 0)); // gather this turn's lines
    while (pending.length > 0 && !broken) {
      if (dropped > 0) {
        pending.push(
          JSON.stringify({
            time: new Date().toISOString(),
            level: "warn",
            event: "log.dropped",
            lines: dropped,
          }),
        );
        dropped = 0;
      }
      let data = encoder.encode(pending.join("\n") + "\n");
      pending = [];
      pendingBytes = 0;
      try {
        while (data.length > 0) data = data.subarray(await sink.write(data));
      } catch {
        broken = true; // nobody reads these lines any more
      }
    }
    pending = [];
    writing = undefined;
  }

  return {
    write(line) {
      if (broken) return;
      if (pendingBytes > maxPendingBytes) {
        dropped++;
        return;
      }
      pending.push(line);
      pendingBytes += line.length;
      writing ??= pump();
    },
    async flush(timeoutMs = 2_000) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        writing,
        new Promise((resolve) => timer = setTimeout(resolve, timeoutMs)),
      ]);
      clearTimeout(timer);
    },
  };
}

/** Standard output as a {@linkcode LineWriter}: where the service's logs go. */
export const stdoutLines: LineWriter = createLineWriter(Deno.stdout);

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
 * Masks every run of 7 or more digits (with an optional `+`) in a text, as
 * {@linkcode maskPhone} masks one number: Twilio's error messages can quote
 * the recipient.
 *
 * @example
 * ```ts
 * maskNumbersIn("The 'To' number whatsapp:+15551234567 is not valid");
 * // "The 'To' number whatsapp:+*******4567 is not valid"
 * ```
 */
export function maskNumbersIn(text: string): string {
  return text.replace(/\+?\d{7,15}/g, (digits) => maskPhone(digits));
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
