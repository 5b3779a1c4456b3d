/**
 * A fake OpenTelemetry collector for tests: a real HTTP server on 127.0.0.1
 * that receives OTLP/HTTP with JSON bodies (`OTEL_EXPORTER_OTLP_PROTOCOL=
 * http/json`) at `/v1/traces`, `/v1/metrics` and `/v1/logs`, as Deno's
 * exporter sends them, and keeps what it received in a flat, searchable form.
 *
 * @module
 */

/** One span as received. */
export interface ReceivedSpan {
  scope: string;
  name: string;
  kind: number;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  attributes: Record<string, unknown>;
  status?: { code?: number; message?: string };
  /** The span's events, by name, with their attributes. */
  events: { name: string; attributes: Record<string, unknown> }[];
}

/** One metric data point as received. */
export interface ReceivedPoint {
  scope: string;
  metric: string;
  attributes: Record<string, unknown>;
  /** A sum's or gauge's value, or a histogram's count. */
  value: number;
  /** A histogram's sum of recorded values. */
  sum?: number;
}

/** A running collector. */
export interface OtlpCollector extends AsyncDisposable {
  /** `OTEL_EXPORTER_OTLP_ENDPOINT` for the process under test. */
  url: string;
  spans: ReceivedSpan[];
  points: ReceivedPoint[];
  /** Every attribute value received, spans, metrics and resources: for privacy checks. */
  allAttributeValues(): string[];
  close(): Promise<void>;
}

type KeyValue = { key: string; value: Record<string, unknown> };

const valueOf = (value: Record<string, unknown>): unknown => {
  if ("stringValue" in value) return value.stringValue;
  if ("intValue" in value) return Number(value.intValue);
  if ("doubleValue" in value) return value.doubleValue;
  if ("boolValue" in value) return value.boolValue;
  if ("arrayValue" in value) {
    return ((value.arrayValue as { values?: Record<string, unknown>[] }).values ?? []).map(
      valueOf,
    );
  }
  return JSON.stringify(value);
};

const attributesOf = (list: KeyValue[] | undefined) =>
  Object.fromEntries((list ?? []).map(({ key, value }) => [key, valueOf(value)]));

/**
 * Starts the collector.
 *
 * @example
 * ```ts
 * await using collector = await startOtlpCollector();
 * // run a process with OTEL_DENO=true OTEL_EXPORTER_OTLP_ENDPOINT=collector.url OTEL_EXPORTER_OTLP_PROTOCOL=http/json
 * ```
 */
export function startOtlpCollector(): Promise<OtlpCollector> {
  const spans: ReceivedSpan[] = [];
  const points: ReceivedPoint[] = [];
  const values: string[] = [];
  const remember = (list: KeyValue[] | undefined) => {
    for (const value of Object.values(attributesOf(list))) values.push(String(value));
  };

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const path = new URL(req.url).pathname;
    const body = await req.json().catch(() => ({}));
    if (path === "/v1/traces") {
      for (const resource of body.resourceSpans ?? []) {
        remember(resource.resource?.attributes);
        for (const scoped of resource.scopeSpans ?? []) {
          for (const span of scoped.spans ?? []) {
            remember(span.attributes);
            for (const event of span.events ?? []) remember(event.attributes);
            spans.push({
              scope: scoped.scope?.name ?? "",
              name: span.name,
              kind: span.kind,
              traceId: span.traceId,
              spanId: span.spanId,
              parentSpanId: span.parentSpanId ?? "",
              attributes: attributesOf(span.attributes),
              status: span.status,
              events: (span.events ?? []).map((
                event: { name: string; attributes?: KeyValue[] },
              ) => ({
                name: event.name,
                attributes: attributesOf(event.attributes),
              })),
            });
          }
        }
      }
    } else if (path === "/v1/metrics") {
      for (const resource of body.resourceMetrics ?? []) {
        for (const scoped of resource.scopeMetrics ?? []) {
          for (const metric of scoped.metrics ?? []) {
            const data = metric.sum ?? metric.gauge ?? metric.histogram ?? {};
            for (const point of data.dataPoints ?? []) {
              remember(point.attributes);
              points.push({
                scope: scoped.scope?.name ?? "",
                metric: metric.name,
                attributes: attributesOf(point.attributes),
                value: Number(point.asInt ?? point.asDouble ?? point.count ?? 0),
                sum: point.sum === undefined ? undefined : Number(point.sum),
              });
            }
          }
        }
      }
    } else if (path === "/v1/logs") {
      for (const resource of body.resourceLogs ?? []) {
        for (const scoped of resource.scopeLogs ?? []) {
          for (const record of scoped.logRecords ?? []) remember(record.attributes);
        }
      }
    }
    return Response.json({});
  });
  return Promise.resolve({
    url: `http://127.0.0.1:${server.addr.port}`,
    spans,
    points,
    allAttributeValues: () => [...values],
    close: () => server.shutdown(),
    [Symbol.asyncDispose]: () => server.shutdown(),
  });
}
