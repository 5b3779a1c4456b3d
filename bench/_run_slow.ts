import { slowBurst } from "./slow_burst.ts";
await slowBurst({ numbers: 300, answerMs: 8000, answerChars: 800, concurrency: 64, oldDefault: false });
