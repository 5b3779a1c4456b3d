/**
 * Question shapes: what the merge window and a voice note add to the time a
 * person waits for their first answer, with answers that take seconds. Each
 * variant runs `numbers` people at once against its own service, and
 * measures, per person, the time from the webhook of their last message
 * being acknowledged to the first part of the answer at Twilio (and, for a
 * voice note, to the `🎤` echo of what was understood). A typed question
 * with `MERGE_WINDOW_MS=0` is the baseline of the same run; the transcription
 * service takes `sttMs` to answer, so what the bridge itself adds to a voice
 * note is the difference minus that.
 */
import { startFakeStt } from "../tests/fakes/fake_stt.ts";
import { startMain } from "../tests/_process.ts";
import { sign, whatsAppParams } from "../tests/_helpers.ts";
import {
  answerText,
  benchEnv,
  startFakes,
  streamedOver,
  summarize,
  table,
  until,
} from "./_shared.ts";

interface Variant {
  name: string;
  /** The messages one person sends, `gapMs` apart. */
  shape: "typed" | "pieces" | "voice";
  mergeWindowMs: number;
}

const VARIANTS: Variant[] = [
  { name: "typed, MERGE_WINDOW_MS=0 (baseline)", shape: "typed", mergeWindowMs: 0 },
  { name: "typed, shipped window 1,000 ms", shape: "typed", mergeWindowMs: 1000 },
  { name: "3 pieces 300 ms apart, window 1,000 ms", shape: "pieces", mergeWindowMs: 1000 },
  { name: "3 pieces 300 ms apart, MERGE_WINDOW_MS=0", shape: "pieces", mergeWindowMs: 0 },
  { name: "voice note, MERGE_WINDOW_MS=0", shape: "voice", mergeWindowMs: 0 },
  { name: "voice note, shipped window 1,000 ms", shape: "voice", mergeWindowMs: 1000 },
];

const PIECE_GAP_MS = 300;
/** About the size of a 10-second WhatsApp voice note (Opus at 16 kbit/s). */
const VOICE_BYTES = 20_000;

export async function questionShapes(
  options: { numbers: number; answerMs: number; sttMs: number },
) {
  const rows: Record<string, string | number>[] = [];
  const results = [];
  let baselineP50 = NaN;
  for (const variant of VARIANTS) {
    await using fakes = await startFakes();
    await using stt = await startFakeStt();
    const dir = await Deno.makeTempDir();
    try {
      let asks = 0;
      fakes.ayd.onAsk(() => {
        asks++;
        return streamedOver(answerText("x", 800), options.answerMs);
      });
      if (variant.shape === "voice") {
        stt.failNext(
          ...Array.from({ length: options.numbers }, () => ({ delayMs: options.sttMs })),
        );
      }
      const firstAnswer = new Map<string, number>();
      const echo = new Map<string, number>();
      const push = fakes.twilio.messages.push.bind(fakes.twilio.messages);
      fakes.twilio.messages.push = (...items) => {
        const now = performance.now();
        for (const { to, body } of items) {
          if (body.startsWith("A:") && !firstAnswer.has(to)) firstAnswer.set(to, now);
          if (body.startsWith("🎤") && !echo.has(to)) echo.set(to, now);
        }
        return push(...items);
      };
      await using service = await startMain(
        benchEnv(dir, fakes, {
          MERGE_WINDOW_MS: String(variant.mergeWindowMs),
          TRANSCRIBE_URL: stt.url,
        }, { shipped: true }),
      );
      const lastAcked = new Map<string, number>();
      await Promise.all(Array.from({ length: options.numbers }, async (_, i) => {
        const from = `whatsapp:+1555${String(i).padStart(7, "0")}`;
        for (const params of messagesOf(variant.shape, from, i, fakes.twilio)) {
          const status = await postParams(service.url, params);
          if (status !== 200) throw new Error(`webhook answered ${status}`);
          lastAcked.set(from, performance.now());
          if (variant.shape === "pieces") await new Promise((r) => setTimeout(r, PIECE_GAP_MS));
        }
      }));
      const expected = variant.shape === "pieces" && variant.mergeWindowMs === 0
        ? options.numbers * 3
        : options.numbers;
      await until(
        () => firstAnswer.size >= options.numbers && asks >= expected,
        options.answerMs * 4 + 30_000,
        "every first answer",
      );
      const froms = [...lastAcked.keys()];
      const toFirst = summarize(froms.map((f) => firstAnswer.get(f)! - lastAcked.get(f)!));
      const toEcho = echo.size
        ? summarize(froms.map((f) => echo.get(f)! - lastAcked.get(f)!))
        : undefined;
      if (variant.shape === "typed" && variant.mergeWindowMs === 0) baselineP50 = toFirst.p50;
      const added = toFirst.p50 - baselineP50;
      const result = {
        variant: variant.name,
        numbers: options.numbers,
        "AYD asks per person": asks / options.numbers,
        "ack → echo p50 ms": toEcho ? toEcho.p50 : "",
        "ack → first answer p50 ms": toFirst.p50,
        "p99 ms": toFirst.p99,
        "added to baseline p50 ms": variant === VARIANTS[0] ? "" : added,
        "bridge's own share ms": variant.shape === "voice" ? added - options.sttMs : "",
      };
      rows.push(result);
      results.push({ ...result, toFirst, toEcho });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
  table(
    `Question shapes: ${options.numbers} people at once, answers of 800 chars over ${options.answerMs} ms, transcription service answering in ${options.sttMs} ms (its time is in "added"; "bridge's own share" is what remains)`,
    rows,
  );
  return { rows: results, answerMs: options.answerMs, sttMs: options.sttMs };
}

/** The webhooks one person sends for `shape`. */
function messagesOf(
  shape: Variant["shape"],
  from: string,
  i: number,
  twilio: { addMedia(bytes: Uint8Array, contentType: string): string },
): Record<string, string>[] {
  if (shape === "typed") return [whatsAppParams({ From: from, Body: `q${i} sales last month` })];
  if (shape === "pieces") {
    return ["sales last month", "by region", "only Europe"].map((piece) =>
      whatsAppParams({ From: from, Body: `q${i} ${piece}` })
    );
  }
  const audio = new Uint8Array(VOICE_BYTES).fill(i % 256);
  return [whatsAppParams({
    From: from,
    Body: "",
    MessageType: "audio",
    NumMedia: "1",
    MediaUrl0: twilio.addMedia(audio, "audio/ogg"),
    MediaContentType0: "audio/ogg",
  })];
}

async function postParams(url: string, params: Record<string, string>): Promise<number> {
  const response = await fetch(`${url}/whatsapp`, {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      "x-twilio-signature": sign(params),
    },
    body: new URLSearchParams(params),
  });
  await response.body?.cancel();
  return response.status;
}

if (import.meta.main) {
  await questionShapes({ numbers: 20, answerMs: 5000, sttMs: 1000 });
}
