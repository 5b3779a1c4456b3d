/**
 * `deno task bench`: the benchmarks, each beside a ceiling or baseline
 * measured in the same run, or beside its target. Figures print as tables
 * and are written as JSON under bench/results/ (git-ignored). `--quick` runs
 * smaller sizes.
 */
import { coldStart } from "./cold_start.ts";
import { format } from "./format.ts";
import { ingress } from "./ingress.ts";
import { instances } from "./instances.ts";
import { memory } from "./memory.ts";
import { peopleImport } from "./people_import.ts";
import { pipeline } from "./pipeline.ts";
import { questionShapes } from "./question_shapes.ts";
import { slowBurst } from "./slow_burst.ts";
import { takeover } from "./takeover.ts";

const quick = Deno.args.includes("--quick");
const started = new Date();
console.log(
  `bench ${started.toISOString()} · deno ${Deno.version.deno} · ${navigator.hardwareConcurrency} cores · ${Deno.build.os}/${Deno.build.arch}${
    quick ? " · quick" : ""
  }`,
);

const results = {
  startedAt: started.toISOString(),
  machine: { cores: navigator.hardwareConcurrency, os: Deno.build.os, arch: Deno.build.arch },
  deno: Deno.version.deno,
  ingress: await ingress({
    perLevel: quick ? 1000 : 4000,
    levels: [1, 16, 32, 64],
    remoteLevel: 32,
  }),
  pipeline: await pipeline({
    messages: quick ? 400 : 2000,
    numbers: 200,
    rate: 100,
    answerMs: 500,
    answerChars: 800,
    backends: ["kv-queue", "outbox", "kv-connect"],
  }),
  // Long answers: the first part goes out while AYD is still writing.
  longAnswers: await pipeline({
    messages: quick ? 50 : 200,
    numbers: 100,
    rate: 20,
    answerMs: 3000,
    answerChars: 6000,
    backends: ["kv-queue", "outbox"],
  }),
  coldStart: await coldStart({ runs: quick ? 3 : 7 }),
  memory: await memory({ conversations: quick ? 200 : 1000, holdMs: quick ? 3000 : 10_000 }),
  // Answers that take seconds, all at once; then crashes, and two instances.
  slowBurst: await slowBurst({
    numbers: quick ? 100 : 300,
    answerMs: quick ? 4000 : 8000,
    answerChars: 800,
    concurrency: 64,
  }),
  takeover: await takeover({
    numbers: quick ? 10 : 20,
    answerMs: quick ? 4000 : 8000,
    answerChars: 800,
  }),
  instances: await instances({
    numbers: quick ? 20 : 50,
    perNumber: quick ? 3 : 4,
    gapMs: 750,
    backends: ["kv-queue", "outbox"],
  }),
  // What the merge window and a voice note add to the wait for a first answer.
  questionShapes: await questionShapes({
    numbers: quick ? 10 : 20,
    answerMs: quick ? 3000 : 5000,
    sttMs: 1000,
  }),
  format: await format({ quick }),
  peopleImport: await peopleImport({ people: quick ? 20_000 : 100_000 }),
};

const dir = new URL("./results/", import.meta.url);
await Deno.mkdir(dir, { recursive: true });
const file = new URL(`${started.toISOString().replace(/[:.]/g, "-")}.json`, dir);
await Deno.writeTextFile(file, JSON.stringify(results, null, 2) + "\n");
console.log(`\nwritten: bench/results/${file.pathname.split("/").at(-1)}`);
