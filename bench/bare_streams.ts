/**
 * The memory floor: the same AYD answer streams, opened and read by a bare
 * script with the bridge's own AYD client and nothing else (no server, no
 * KV, no Twilio, no formatting). Announces itself like main.ts, then prints
 * `streams.done` once every answer has been read.
 */
import { askAyd, createAydSession } from "../src/ayd/client.ts";

const options = {
  baseUrl: Deno.env.get("AYD_BASE_URL")!,
  apiKey: Deno.env.get("ASKYOURDATABASE_API_KEY")!,
  chatId: Deno.env.get("ASKYOURDATABASE_CHAT_ID")!,
};
const streams = Number(Deno.env.get("STREAMS"));
console.log(JSON.stringify({ event: "service.started", url: options.baseUrl }));
const { token } = await createAydSession(options, "+15550000000", { now: Date.now() });
await Promise.all(Array.from({ length: streams }, (_, i) => askAyd(options, token, `q${i}`)));
console.log(JSON.stringify({ event: "streams.done" }));
// Stay up until the benchmark has read the peak and stops us.
setInterval(() => {}, 60_000);
