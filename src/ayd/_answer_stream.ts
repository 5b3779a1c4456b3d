/**
 * Reading one answer's Server-Sent Events stream, the same in both modes.
 * Private to `src/ayd/`.
 *
 * @module
 */
import { createParser } from "eventsource-parser";
import { call } from "./_http.ts";
import { readText } from "./_read_text.ts";

/** What one answer stream carried. */
export interface AydAnswer {
  text: string;
  imageUrls: string[];
}

/**
 * Reads the whole answer: text deltas are concatenated, chart URLs
 * collected; SQL, status and unknown events and lines that are not JSON
 * are skipped. The answer ends when the connection closes or at
 * `data: [DONE]`, whichever is first. `onText` sees each text delta.
 */
export async function readAnswerStream(
  body: ReadableStream<Uint8Array>,
  baseUrl: string,
  signal?: AbortSignal,
  onText?: (delta: string) => void,
): Promise<AydAnswer> {
  const answer: AydAnswer = { text: "", imageUrls: [] };
  let over = false;
  const parser = createParser({
    onEvent({ data }) {
      if (over) return;
      // `[DONE]` ends the answer even when the connection stays open (a proxy's keep-alive).
      if (data.trim() === "[DONE]") return void (over = true);
      const event = parseEvent(data);
      if (event?.isText && typeof event.content === "string") {
        answer.text += event.content;
        onText?.(event.content);
      } else if (event?.isImage && typeof event.url === "string") {
        const url = chartUrl(event.url, baseUrl);
        if (url) answer.imageUrls.push(url);
      }
    },
  });
  await call(async () => {
    try {
      await readText(body, (text) => {
        parser.feed(text);
        if (over) throw END_OF_ANSWER; // cancels the rest of the stream
      });
    } catch (error) {
      if (error !== END_OF_ANSWER) throw error;
    }
  }, signal);
  // AYD ends by closing the connection; a last event may lack its blank line.
  if (!over) parser.feed("\n\n");
  return answer;
}

/** Thrown from inside the stream reader to stop at `[DONE]`. */
const END_OF_ANSWER = new Error("end of answer");

/** A chart's absolute http(s) URL (Twilio fetches it), or undefined. */
function chartUrl(raw: string, baseUrl: string): string | undefined {
  try {
    const url = new URL(raw, baseUrl);
    return url.protocol === "https:" || url.protocol === "http:" ? url.href : undefined;
  } catch {
    return undefined;
  }
}

function parseEvent(data: string): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(data);
    return typeof value === "object" && value !== null ? value : undefined;
  } catch {
    return undefined; // `[DONE]` and other non-JSON lines
  }
}
