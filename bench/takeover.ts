/**
 * Takeover: numbers each start an answer that streams for seconds; the
 * process is SIGKILLed while every answer streams and restarted at once on
 * the same KV file and port, with the shipped defaults. The figure: the time
 * from the kill to the last of the interrupted answers, beyond one answer's
 * own time (the answer has to be asked again), against 5 s. Re-asks and
 * duplicates (which must be 0) are counted.
 */
import { formatAnswer } from "../src/whatsapp/format.ts";
import { freePort, startMain } from "../tests/_process.ts";
import {
  answerText,
  benchEnv,
  post,
  signedRequests,
  startFakes,
  streamedOver,
  summarize,
  table,
  until,
  watchReplies,
} from "./_shared.ts";

const TARGET_BEYOND_ANSWER_S = 5;

export async function takeover(options: {
  numbers: number;
  answerMs: number;
  answerChars: number;
  /** How far into the answers the kill comes (default: half the answer time). */
  killAfterMs?: number;
}) {
  await using fakes = await startFakes();
  const dir = await Deno.makeTempDir();
  try {
    const asks = new Map<string, number[]>();
    const streams: number[] = [];
    fakes.ayd.onAsk(({ question }) => {
      const asked = performance.now();
      asks.set(question, [...asks.get(question) ?? [], asked]);
      return streamedOver(
        answerText(question, options.answerChars),
        options.answerMs,
        () => streams.push(performance.now() - asked),
      );
    });
    const replies = watchReplies(fakes.twilio);
    const expectedParts = formatAnswer(answerText("q0", options.answerChars), 1600).length;
    const env = benchEnv(dir, fakes, { PORT: String(freePort()) }, { shipped: true });
    const requests = signedRequests(options.numbers, options.numbers);
    let restartMs = 0;
    let killedAt = 0;
    {
      await using first = await startMain(env);
      const statuses = await Promise.all(requests.map((r) => post(first.url, r)));
      if (statuses.some((s) => s !== 200)) throw new Error(`webhooks answered ${statuses}`);
      await until(() => asks.size === options.numbers, 60_000, "every answer to start");
      await new Promise((resolve) =>
        setTimeout(resolve, options.killAfterMs ?? options.answerMs / 2)
      );
      if (replies.first.size > 0) throw new Error("an answer ended before the kill");
      first.kill("SIGKILL");
      await first.exited;
      killedAt = performance.now();
    }
    await using _restarted = await startMain(env);
    restartMs = performance.now() - killedAt;
    const done = () => [...replies.parts.values()].filter((n) => n >= expectedParts).length;
    await until(() => done() >= options.numbers, options.answerMs * 4 + 60_000, "every answer");
    // Whatever might still come twice has had a moment to.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const lastReply = Math.max(...replies.last.values());
    const reasks = [...asks.values()].map((times) => times.slice(1)).flat();
    const resumedAfter = summarize(reasks.map((t) => t - killedAt));
    const beyondS = (lastReply - killedAt - options.answerMs) / 1000;
    const row = {
      numbers: options.numbers,
      "answer s": options.answerMs / 1000,
      "restart s": restartMs / 1000,
      "kill → re-asked p50/max s": `${round1(resumedAfter.p50 / 1000)} / ${
        round1(resumedAfter.max / 1000)
      }`,
      "kill → last answer s": (lastReply - killedAt) / 1000,
      "beyond one answer s": beyondS,
      "target s": `≤ ${TARGET_BEYOND_ANSWER_S}`,
      met: beyondS <= TARGET_BEYOND_ANSWER_S ? "yes" : "no",
      "stream p50 s": summarize(streams).p50 / 1000,
      "re-asks": reasks.length,
      duplicates: replies.duplicates(),
      "other messages": replies.others(),
    };
    table(
      `Takeover: ${options.numbers} answers of ${options.answerMs} ms, SIGKILL mid-stream, restarted at once (shipped defaults)`,
      [row],
    );
    return row;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const round1 = (x: number) => Math.round(x * 10) / 10;

if (import.meta.main) {
  await takeover({ numbers: 20, answerMs: 8000, answerChars: 800 });
}
