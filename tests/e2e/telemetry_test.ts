/**
 * OpenTelemetry end to end: `main.ts` with `OTEL_DENO=true` exports, through
 * Deno's own SDK and exporter, to an OTLP/HTTP collector the test starts.
 */
import assert from "node:assert/strict";
import { type FakeAyd, startFakeAyd } from "../fakes/fake_ayd.ts";
import { type FakeTwilio, startFakeTwilio } from "../fakes/fake_twilio.ts";
import {
  type OtlpCollector,
  type ReceivedSpan,
  startOtlpCollector,
} from "../fakes/otlp_collector.ts";
import {
  ACCOUNT_SID,
  API_KEY,
  AUTH_TOKEN,
  CHAT_ID,
  postForm,
  sign,
  testEnv,
  waitFor,
  whatsAppParams,
} from "../_helpers.ts";
import { freePort, type MainProcess, startMain } from "../_process.ts";
import { loadTelemetry, noTelemetry } from "../../src/telemetry/mod.ts";

const USER = "whatsapp:+15551234567";
const DIGITS = "5551234567";
const QUESTION = "how many orders shipped late last week";
const ANSWER = "Seventeen orders shipped late, most of them to Lyon.";

/** Span kinds as OTLP numbers them. */
const SERVER = 2;
const CLIENT = 3;

/** Exports quickly, so the test waits for data rather than for a timer. */
function otelEnv(collector: OtlpCollector): Record<string, string> {
  return {
    OTEL_DENO: "true",
    OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
    OTEL_SERVICE_NAME: "bridge-under-test",
    OTEL_BSP_SCHEDULE_DELAY: "50",
    OTEL_METRIC_EXPORT_INTERVAL: "200",
  };
}

async function withServices(
  fn: (ctx: {
    ayd: FakeAyd;
    twilio: FakeTwilio;
    collector: OtlpCollector;
    env: Record<string, string>;
    send: (url: string, body: string) => Promise<void>;
  }) => Promise<void>,
) {
  await using collector = await startOtlpCollector();
  await using ayd = await startFakeAyd({ apiKey: API_KEY, chatId: CHAT_ID });
  await using twilio = await startFakeTwilio({ accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN });
  ayd.onAsk(() => ({ kind: "answer", text: ANSWER }));
  const dir = await Deno.makeTempDir();
  const env = testEnv({
    AYD_BASE_URL: ayd.url,
    TWILIO_API_BASE_URL: twilio.url,
    DENO_KV_PATH: `${dir}/bridge.kv`,
    JOB_LEASE_MS: "1000",
    PORT: String(freePort()),
    LOG_LEVEL: "info",
    ...otelEnv(collector),
  });
  const send = async (url: string, body: string) => {
    const params = whatsAppParams({ Body: body });
    const response = await postForm(url, params, { "x-twilio-signature": sign(params) });
    assert.equal(response.status, 200);
    await response.body?.cancel();
  };
  try {
    await fn({ ayd, twilio, collector, env, send });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * Sends SIGTERM and checks that `main` stopped cleanly. With telemetry on, it
 * ends by raising that signal again once stopped (see `exitAfterStop`).
 */
async function stopCleanly(main: MainProcess) {
  assert.deepEqual(await main.stop("SIGTERM"), { code: 143, signal: "SIGTERM" });
  assert.match(main.output(), /"event":"service\.stopped"/);
}

const named = (collector: OtlpCollector, name: string) =>
  collector.spans.filter((span) => span.name === name);

/** The spans of one trace, each with the names of its ancestors. */
function lineage(spans: ReceivedSpan[], span: ReceivedSpan): string[] {
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  const names: string[] = [];
  for (let at = byId.get(span.parentSpanId); at; at = byId.get(at.parentSpanId)) {
    names.push(at.name);
  }
  return names;
}

/**
 * Every attribute value a collector would store, except those of Deno's own
 * client spans (one per `fetch`), which record each request's full URL.
 */
function ownValues(collector: OtlpCollector): string[] {
  const spans = collector.spans.filter((span) => !(span.scope === "deno" && span.kind === CLIENT));
  return [
    ...spans.flatMap((span) => Object.values(span.attributes)),
    ...collector.points.flatMap((point) => Object.values(point.attributes)),
  ].map(String);
}

function assertNothingPersonal(values: string[]) {
  for (const value of values) {
    assert.ok(!value.includes(DIGITS), `a phone number in an attribute: ${value}`);
    assert.ok(!value.includes("orders shipped"), `the question in an attribute: ${value}`);
    assert.ok(!value.includes("Lyon"), `the answer in an attribute: ${value}`);
    assert.ok(!value.includes(AUTH_TOKEN) && !value.includes(API_KEY), "a secret in an attribute");
  }
}

Deno.test("telemetry - a message is one trace, from the webhook's span named by its route to each send to Twilio", async () => {
  await withServices(async ({ twilio, collector, env, send }) => {
    await using main = await startMain(env);
    await send(main.url, QUESTION);
    await twilio.waitForMessages(USER, 1);
    const base = main.url.replace(/\/whatsapp$/, "");
    await (await fetch(`${base}/health`)).body?.cancel();
    await (await fetch(`${base}/no/such/page`)).body?.cancel();
    await stopCleanly(main);
    const unmatched = () =>
      collector.spans.filter((span) =>
        span.kind === SERVER && span.attributes["url.path"] === "/no/such/page"
      );
    await waitFor(
      () =>
        named(collector, "twilio.send").length === 1 &&
        named(collector, "GET /health").length === 1 && unmatched().length === 1,
      "the spans of the send, the health check and the unknown page",
    );

    const [webhook] = named(collector, "POST /whatsapp");
    assert.ok(webhook, "the webhook's span is named by its route");
    assert.equal(webhook.kind, SERVER);
    assert.equal(webhook.attributes["http.route"], "/whatsapp");
    assert.deepEqual(unmatched().map((span) => span.name), ["GET"], "a 404 keeps the method alone");

    const trace = collector.spans.filter((span) => span.traceId === webhook.traceId);
    const [job] = named(collector, "message.job");
    const [ask] = named(collector, "ayd.ask");
    const [sent] = named(collector, "twilio.send");
    for (const span of [job, ask, sent]) assert.equal(span.traceId, webhook.traceId);
    assert.deepEqual(lineage(trace, job), ["POST /whatsapp"]);
    assert.deepEqual(lineage(trace, ask), ["message.job", "POST /whatsapp"]);
    assert.deepEqual(lineage(trace, sent), ["message.job", "POST /whatsapp"]);
    assert.equal(job.attributes["job.result"], "done");
    assert.equal(ask.attributes["ayd.outcome"], "answered");
    assert.equal(ask.attributes["ayd.answer_chars"], ANSWER.length);
    assert.equal(typeof ask.attributes["ayd.time_to_first_token_ms"], "number");
    // Deno's span of the HTTP request to AYD nests in the ask.
    assert.ok(
      trace.some((span) => span.kind === CLIENT && span.parentSpanId === ask.spanId),
      "the request to AYD is a child of the ask",
    );
    assertNothingPersonal(ownValues(collector));
  });
});

Deno.test("telemetry - the metrics arrive: messages, answers by outcome, delays and durations, open conversations", async () => {
  await withServices(async ({ twilio, collector, env, send }) => {
    await using main = await startMain(env);
    await send(main.url, QUESTION);
    await twilio.waitForMessages(USER, 1);
    const duplicate = whatsAppParams({ Body: QUESTION });
    for (let i = 0; i < 2; i++) {
      const response = await postForm(main.url, duplicate, {
        "x-twilio-signature": sign(duplicate),
      });
      await response.body?.cancel();
    }
    const forged = await postForm(main.url, whatsAppParams(), { "x-twilio-signature": "forged" });
    await forged.body?.cancel();
    await twilio.waitForMessages(USER, 2);
    await stopCleanly(main);

    // Cumulative sums: the last point of each series is its total.
    const last = (metric: string, attributes: Record<string, unknown> = {}) =>
      collector.points.findLast((point) =>
        point.metric === metric &&
        Object.entries(attributes).every(([key, value]) => point.attributes[key] === value)
      );
    await waitFor(() => last("bridge.answers")?.value === 2, "both answers counted");
    assert.equal(last("bridge.messages", { outcome: "accepted" })?.value, 2);
    assert.equal(last("bridge.messages", { outcome: "duplicate" })?.value, 1);
    assert.equal(
      last("bridge.messages", { outcome: "rejected", reason: "bad_signature" })?.value,
      1,
    );
    assert.equal(last("bridge.answers", { outcome: "answered", state: "answered" })?.value, 2);
    for (const histogram of ["bridge.queue_delay", "bridge.first_part", "bridge.answer_duration"]) {
      const point = last(histogram);
      assert.equal(point?.value, 2, `${histogram}: one value per answer`);
      assert.ok(point!.sum! >= 0 && point!.sum! < 60_000, `${histogram}: ${point!.sum} ms`);
    }
    assert.ok(
      last("bridge.first_part")!.sum! >= last("bridge.queue_delay")!.sum!,
      "the first part comes after the job started",
    );
    assert.equal(last("bridge.open_conversations")?.value, 0, "none open once all are answered");
    assertNothingPersonal(ownValues(collector));
  });
});

Deno.test("telemetry - SIGTERM ends the process with its last metrics sent, even while metrics are exported every 10 ms", async () => {
  // Deno.exit would wait for a metric export that waits for the blocked JS
  // thread: with an export every 10 ms nearly every stop hung before
  // exitAfterStop.
  await withServices(async ({ twilio, collector, env, send }) => {
    await using main = await startMain({ ...env, OTEL_METRIC_EXPORT_INTERVAL: "10" });
    await send(main.url, QUESTION);
    await twilio.waitForMessages(USER, 1);
    await stopCleanly(main);
    await waitFor(
      () => collector.points.findLast((point) => point.metric === "bridge.answers")?.value === 1,
      "the answer counted",
    );
  });
});

Deno.test("telemetry - a delivery resumed after a crash continues its message's trace", async () => {
  await withServices(async ({ ayd, twilio, collector, env, send }) => {
    // The first send hangs until the process dies: the answer is saved, not delivered.
    twilio.holdAttempt(1);
    let traceId: string;
    {
      await using main = await startMain(env);
      await send(main.url, QUESTION);
      await waitFor(() => twilio.attempts === 1, "the first send to start");
      await waitFor(() => named(collector, "POST /whatsapp").length === 1, "the webhook's span");
      traceId = named(collector, "POST /whatsapp")[0].traceId;
      main.kill("SIGKILL");
      assert.notEqual(await main.exited, 0);
    }
    await using again = await startMain(env);
    await twilio.waitForMessages(USER, 1);
    await stopCleanly(again);
    await waitFor(
      () =>
        named(collector, "message.job").some((span) => span.attributes["job.state"] === "replying"),
      "the resumed job's span",
    );
    const resumed = named(collector, "message.job").find((span) =>
      span.attributes["job.state"] === "replying"
    )!;
    assert.equal(resumed.traceId, traceId, "the restarted process joins the webhook's trace");
    const lookup = named(collector, "twilio.lookup").find((span) => span.traceId === traceId);
    assert.equal(lookup?.attributes["twilio.found"], false, "looked up before resending");
    assert.equal(ayd.asks.length, 1);
    assertNothingPersonal(ownValues(collector));
    // Deno's client span of that look-up records its URL, whose To= is the
    // number: what docs/telemetry.md tells operators to strip at the collector.
    const clientValues = collector.spans
      .filter((span) => span.kind === CLIENT)
      .flatMap((span) =>
        Object.entries(span.attributes).filter(([, value]) => String(value).includes(DIGITS))
      )
      .map(([key]) => key);
    assert.ok(clientValues.length > 0, "the known exposure is still there (else update the docs)");
    assert.deepEqual([...new Set(clientValues)].sort(), ["url.full", "url.query"]);
  });
});

Deno.test("telemetry - a retry and a dead letter are events of the message's job span", async () => {
  await withServices(async ({ ayd, twilio, collector, env, send }) => {
    let asks = 0;
    ayd.onAsk(({ question }) => {
      if (question === "broken") return { kind: "status", status: 400, body: '{"error":"bad"}' };
      return ++asks === 1 ? { kind: "status", status: 503 } : { kind: "answer", text: ANSWER };
    });
    await using main = await startMain({
      ...env,
      JOB_RETRY_BUDGET_MS: "60000",
      JOB_RETRY_BASE_MS: "20",
    });
    await send(main.url, QUESTION);
    await twilio.waitForMessages(USER, 1);
    await send(main.url, "broken");
    await twilio.waitForMessages(USER, 2);
    await stopCleanly(main);
    await waitFor(() => named(collector, "message.job").length === 3, "three runs of two jobs");

    const events = (span: ReceivedSpan) => span.events.map((event) => event.name);
    const runs = named(collector, "message.job");
    const [retried, answered, failed] = [
      runs.find((span) => events(span).includes("job.retry_scheduled")),
      runs.find((span) => span.attributes["job.attempt"] === 1),
      runs.find((span) => events(span).includes("job.dead_letter")),
    ];
    assert.ok(retried && answered && failed, "a retried run, its second run and a dead letter");
    assert.equal(retried.traceId, answered.traceId, "both runs of a message are one trace");
    assert.notEqual(failed.traceId, retried.traceId, "each message has a trace of its own");
    assert.equal(retried.attributes["job.result"], "retry");
    const failedAsk = named(collector, "ayd.ask").find((span) => span.traceId === failed.traceId)!;
    assert.equal(failedAsk.status?.code, 2, "the failed ask is an error span");
    await waitFor(
      () => collector.points.some((point) => point.attributes.state === "failed"),
      "the failure counted",
    );
    assertNothingPersonal(ownValues(collector));
  });
});

Deno.test("telemetry - without OTEL_DENO nothing is exported, even at shutdown", async () => {
  await withServices(async ({ twilio, collector, env, send }) => {
    const { OTEL_DENO: _, ...withoutFlag } = env;
    await using main = await startMain(withoutFlag);
    await send(main.url, QUESTION);
    await twilio.waitForMessages(USER, 1);
    assert.equal((await main.stop("SIGTERM")).code, 0, "without telemetry Deno.exit(0) is safe");
    // A process with telemetry on flushes its spans and metrics as it exits.
    assert.deepEqual(collector.spans, []);
    assert.deepEqual(collector.points, []);
  });
});

Deno.test("telemetry - OTEL_DENO unset (off Deno Deploy), empty or false loads nothing but the no-op", async () => {
  for (const env of [{}, { OTEL_DENO: "" }, { OTEL_DENO: "false" }, { OTEL_DENO: "0" }]) {
    assert.equal(await loadTelemetry(env), noTelemetry);
  }
  assert.equal((await loadTelemetry({ OTEL_DENO: "true" })).enabled, true);
  // Deno Deploy has it always on, and refuses variables named OTEL_*.
  assert.equal((await loadTelemetry({ DENO_DEPLOY: "1" })).enabled, true);
});
