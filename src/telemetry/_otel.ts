/**
 * {@linkcode Telemetry} over `npm:@opentelemetry/api`, whose providers Deno
 * registers when `OTEL_DENO=true`. Private helper of `mod.ts`, loaded only then.
 *
 * @module
 */
import {
  context,
  metrics,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanStatusCode,
  trace,
} from "@opentelemetry/api";
import type { Attributes, SpanHandle, Telemetry } from "./mod.ts";

const SCOPE = "whatsapp-ayd-bridge";

/** Telemetry through the OpenTelemetry API. */
export function openTelemetry(): Telemetry {
  const tracer = trace.getTracer(SCOPE);
  const meter = metrics.getMeter(SCOPE);
  const counters = {
    "bridge.messages": meter.createCounter("bridge.messages", {
      description: "Webhooks by what became of them (accepted, duplicate, refused, …)",
    }),
    "bridge.answers": meter.createCounter("bridge.answers", {
      description: "Messages answered, by outcome",
    }),
  };
  const histograms = {
    "bridge.queue_delay": meter.createHistogram("bridge.queue_delay", {
      description: "From the webhook's acknowledgement to the job's start",
      unit: "ms",
    }),
    "bridge.first_part": meter.createHistogram("bridge.first_part", {
      description: "From the webhook to the first part accepted by Twilio",
      unit: "ms",
    }),
    "bridge.answer_duration": meter.createHistogram("bridge.answer_duration", {
      description: "From asking AYD to the end of its answer",
      unit: "ms",
    }),
  };
  const open = meter.createUpDownCounter("bridge.open_conversations", {
    description: "Conversations being answered now",
  });

  const handle = (span: Span): SpanHandle => ({
    set: (attributes) => span.setAttributes(clean(attributes)),
    fail(reason) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: reason });
    },
  });

  return {
    enabled: true,
    route(method, route) {
      const span = trace.getActiveSpan();
      span?.updateName(`${method} ${route}`);
      span?.setAttribute("http.route", route);
    },
    carrier() {
      const carrier: Record<string, string> = {};
      propagation.inject(context.active(), carrier);
      return Object.keys(carrier).length > 0 ? carrier : undefined;
    },
    span(name, attributes, work, parent) {
      const base = parent ? propagation.extract(ROOT_CONTEXT, parent) : context.active();
      return tracer.startActiveSpan(name, { attributes: clean(attributes) }, base, async (span) => {
        try {
          return await work(handle(span));
        } catch (error) {
          span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error)?.name });
          throw error;
        } finally {
          span.end();
        }
      });
    },
    event: (name, attributes) => trace.getActiveSpan()?.addEvent(name, clean(attributes)),
    count: (name, attributes) => counters[name].add(1, clean(attributes)),
    record: (name, value, attributes) => histograms[name].record(value, clean(attributes)),
    conversations: (delta) => open.add(delta),
  };
}

/** Attributes without the undefined ones, which the API does not take. */
function clean(attributes: Attributes | undefined): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const [key, value] of Object.entries(attributes ?? {})) {
    if (value !== undefined) out[key] = value;
  }
  return out;
}
