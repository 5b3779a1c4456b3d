/**
 * Formatter: CPU per KB of Markdown when an answer streams in pieces (the
 * way the handler feeds AYD's deltas to `createPartStream`), beside one-shot
 * `formatAnswer` of the same text measured in the same run. Realistic answers
 * and the shapes that once made streaming quadratic: long tables in small
 * pieces, a long list, a long code block. Each case also checks that the
 * streamed parts are the one-shot parts.
 */
import process from "node:process";
import { createPartStream, formatAnswer } from "../src/whatsapp/format.ts";
import { ALL_ANSWERS } from "../tests/fixtures/ayd_answers.ts";
import { table } from "./_shared.ts";

/** What the handler cuts with: Twilio's limit less the room for a part marker. */
const PART_CHARS = 1592;

interface Case {
  name: string;
  texts: string[];
  /** Characters per pushed piece. */
  piece: number;
}

function wideTable(rows: number): string {
  const header = "| order_id | customer_name | shipped_at | carrier | delay_reason |\n" +
    "|---|---|---|---|---|\n";
  return header + Array.from(
    { length: rows },
    (_, i) =>
      `| ${1000 + i} | Customer ${i} GmbH | 2026-11-${String(1 + (i % 28)).padStart(2, "0")} | ` +
      `DHL Express | weather_delay at hub ${i} |`,
  ).join("\n") + "\n\nThat is every late order.";
}

function longList(items: number): string {
  return "Orders to check:\n\n" +
    Array.from({ length: items }, (_, i) => `- order **${1000 + i}**: late by ${i % 9} days`)
      .join("\n");
}

function longCode(lines: number): string {
  const line = (i: number) =>
    i % 10 === 9 ? "" : i % 10 === 0 ? `# step ${i / 10}` : `SELECT ${i} AS n, 'row ${i}' AS label`;
  return "The query:\n\n```sql\n" + Array.from({ length: lines }, (_, i) => line(i)).join("\n") +
    "\n```\n\nDone.";
}

async function goldenAnswers(): Promise<string[]> {
  const dir = new URL("../tests/fixtures/golden/", import.meta.url);
  const texts: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.name.endsWith(".md")) texts.push(await Deno.readTextFile(new URL(entry.name, dir)));
  }
  return texts;
}

/** CPU microseconds (user + system) that `work` takes. */
function cpu(work: () => void): number {
  const before = process.cpuUsage();
  work();
  const { user, system } = process.cpuUsage(before);
  return user + system;
}

/** Streams `text` in pieces; with `timed`, also the most CPU one push took. */
function stream(text: string, piece: number, timed = false) {
  const parts: string[] = [];
  const stream = createPartStream(PART_CHARS);
  let longestPushUs = 0;
  for (let i = 0; i < text.length; i += piece) {
    const chunk = text.slice(i, i + piece);
    if (timed) {
      longestPushUs = Math.max(
        longestPushUs,
        cpu(() => parts.push(...stream.push(chunk))),
      );
    } else parts.push(...stream.push(chunk));
  }
  parts.push(...stream.end());
  return { parts, longestPushUs };
}

export async function format(options: { quick: boolean }) {
  const scale = options.quick ? 0.5 : 1;
  const cases: Case[] = [
    {
      name: "real answers",
      texts: [...await goldenAnswers(), ...Object.values(ALL_ANSWERS)],
      piece: 16,
    },
    { name: "400-row table", texts: [wideTable(400)], piece: 16 },
    { name: "800-row table", texts: [wideTable(800)], piece: 4 },
    { name: `${2000 * scale}-item list`, texts: [longList(2000 * scale)], piece: 16 },
    { name: `${4000 * scale}-line code block`, texts: [longCode(4000 * scale)], piece: 16 },
  ];
  // The slow cases of the old formatter take seconds per run: fewer runs there.
  const runs = options.quick ? 1 : 3;
  const rows = [];
  for (const { name, texts, piece } of cases) {
    const kb = texts.reduce((sum, text) => sum + text.length, 0) / 1024;
    // Warm-up, and the check that streaming changes nothing.
    for (const text of texts) {
      if (
        JSON.stringify(stream(text, piece).parts) !== JSON.stringify(formatAnswer(text, PART_CHARS))
      ) {
        throw new Error(`${name}: streamed parts differ from the one-shot parts`);
      }
    }
    // The longest push, in CPU so that other processes on the machine do not count.
    const longestPushUs = Math.max(...texts.map((text) => stream(text, piece, true).longestPushUs));
    let streamedUs = Infinity;
    let oneShotUs = Infinity;
    for (let run = 0; run < runs; run++) {
      streamedUs = Math.min(streamedUs, cpu(() => texts.forEach((text) => stream(text, piece))));
      // One-shot is fast: repeat it so the figure is above the clock's grain.
      const repeats = 20;
      oneShotUs = Math.min(
        oneShotUs,
        cpu(() => {
          for (let i = 0; i < repeats; i++) {
            for (const text of texts) formatAnswer(text, PART_CHARS);
          }
        }) / repeats,
      );
    }
    const streamedMsPerKb = streamedUs / 1000 / kb;
    const oneShotMsPerKb = oneShotUs / 1000 / kb;
    rows.push({
      case: name,
      kb,
      piece,
      "stream ms CPU": streamedUs / 1000,
      "stream ms CPU/KB": figure(streamedMsPerKb),
      "one-shot ms CPU/KB": figure(oneShotMsPerKb),
      "stream/one-shot": figure(streamedMsPerKb / oneShotMsPerKb),
      "longest push ms CPU": figure(longestPushUs / 1000),
    });
  }
  table(
    `Formatter: CPU per KB streamed in pieces vs one-shot formatAnswer (best of ${runs}; ` +
      "target: a 400-row table in 16-char pieces under 500 ms CPU)",
    rows,
  );
  return rows;
}

/** Three significant digits: per-KB figures are often below the table's 0.1 grain. */
function figure(value: number): string {
  return value.toPrecision(3);
}

if (import.meta.main) await format({ quick: Deno.args.includes("--quick") });
