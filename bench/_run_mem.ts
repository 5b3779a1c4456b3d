import { memory } from "./memory.ts";
await memory({ conversations: 1000, holdMs: 10_000 });
