/**
 * What the bridge tells an OpenTelemetry collector: a trace per message from
 * webhook to last reply, and a few metrics a dashboard can graph. Deno does
 * the exporting (`OTEL_DENO=true`); without it nothing here loads but the
 * no-op below, so a normal start pays nothing.
 *
 * @module
 */

/** Attributes of a span or a measurement: never a number, a name or message text. */
export type Attributes = Record<string, string | number | boolean | undefined>;

/** A job's place in its trace, stored with the job so a restart continues the trace. */
export type TraceCarrier = Record<string, string>;

/** The span a piece of work runs in. */
export interface SpanHandle {
  set(attributes: Attributes): void;
  /** Marks the span failed, with a log-safe reason. */
  fail(reason: string): void;
}

/** The counters and histograms the bridge records. */
export type Counter = "bridge.messages" | "bridge.answers";
export type Histogram =
  | "bridge.queue_delay"
  | "bridge.first_part"
  | "bridge.answer_duration";

/** Telemetry as the rest of the bridge sees it. */
export interface Telemetry {
  readonly enabled: boolean;
  /** Names the HTTP request's span by its route (`POST /whatsapp`, not the raw path). */
  route(method: string, route: string): void;
  /** The current trace context, to keep with a job; undefined when disabled. */
  carrier(): TraceCarrier | undefined;
  /**
   * Runs `work` in a span named `name`, a child of the current span or, with
   * `parent`, of the trace a job carried across processes and restarts.
   */
  span<T>(
    name: string,
    attributes: Attributes,
    work: (span: SpanHandle) => Promise<T>,
    parent?: TraceCarrier,
  ): Promise<T>;
  /** Marks a moment (a retry scheduled, a dead letter) on the current span. */
  event(name: string, attributes?: Attributes): void;
  count(name: Counter, attributes?: Attributes): void;
  record(name: Histogram, value: number, attributes?: Attributes): void;
  /** Conversations being answered right now, up or down by `delta`. */
  conversations(delta: number): void;
}

const NO_SPAN: SpanHandle = { set() {}, fail() {} };

/** Telemetry that does nothing: what runs without `OTEL_DENO`. */
export const noTelemetry: Telemetry = {
  enabled: false,
  route() {},
  carrier: () => undefined,
  span: (_name, _attributes, work) => work(NO_SPAN),
  event() {},
  count() {},
  record() {},
  conversations() {},
};

/**
 * Telemetry for this process: OpenTelemetry when `OTEL_DENO` is on, or on
 * Deno Deploy (where it is always on and `OTEL_*` variables cannot be set),
 * else {@linkcode noTelemetry} without loading anything. Deno registers its
 * SDK with the API, so there is nothing to set up.
 *
 * @example
 * ```ts
 * const telemetry = await loadTelemetry(Deno.env.toObject());
 * ```
 */
export async function loadTelemetry(env: Record<string, string | undefined>): Promise<Telemetry> {
  const flag = env.OTEL_DENO?.trim().toLowerCase();
  const on = flag === "true" || flag === "1" || (flag === undefined && !!env.DENO_DEPLOY);
  if (!on) return noTelemetry;
  const { openTelemetry } = await import("./_otel.ts");
  return openTelemetry();
}

/**
 * Ends the process once the stop that `signal` asked for is complete: with
 * `Deno.exit(0)`, or, with telemetry on, by raising `signal` again.
 *
 * With OpenTelemetry on, `Deno.exit` can hang for good (Deno 2.9.6). Its exit
 * hooks shut the metric reader down from this thread and wait; a reader that
 * had just begun a periodic export waits in turn for this thread to report
 * V8's heap figures, which it never does once blocked. With `listeners`
 * removed, the raised signal goes to Deno's own handler instead, which runs
 * the same hooks on its signal thread while this one, kept awake by a timer,
 * goes on answering the reader. Every span and metric is exported, and the
 * process ends by the signal: status 143 for SIGTERM, 130 for SIGINT.
 *
 * @example
 * ```ts
 * const listeners = {
 *   SIGTERM: async () => {
 *     await bridge.close();
 *     exitAfterStop("SIGTERM", listeners, telemetry);
 *   },
 * };
 * Deno.addSignalListener("SIGTERM", listeners.SIGTERM);
 * ```
 */
export function exitAfterStop(
  signal: "SIGINT" | "SIGTERM",
  listeners: Partial<Record<Deno.Signal, () => void>>,
  telemetry: Pick<Telemetry, "enabled">,
): void {
  if (!telemetry.enabled) Deno.exit(0);
  setInterval(() => {}, 60_000);
  for (const [each, listener] of Object.entries(listeners)) {
    Deno.removeSignalListener(each as Deno.Signal, listener);
  }
  Deno.kill(Deno.pid, signal);
}
