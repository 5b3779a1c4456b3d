import { pipeline } from "./pipeline.ts";
await pipeline({ messages: 2000, numbers: 200, rate: 100, answerMs: 500, answerChars: 800, backends: ["outbox"] });
