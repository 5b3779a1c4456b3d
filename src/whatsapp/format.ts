/**
 * Fitting answers into WhatsApp messages: Markdown → WhatsApp text (see
 * `markdown.ts`), cut into parts of at most `MAX_SMS_CHARS`, at once
 * or while the answer is still streaming.
 *
 * Parts are cut where a reader expects a pause: a paragraph break, else a
 * line break, a sentence end, a space, and only as a last resort between two
 * grapheme clusters (never inside an emoji, a flag or a letter with its
 * accents). A ``` block or a table card that fits in a part is never cut; a
 * longer block is closed at the end of one part and reopened in the next.
 *
 * @module
 */
import { nextPart, type SplitState, TEXT_START } from "./_split.ts";
import { createMarkdownStream, type Lex, markdownToWhatsApp } from "./markdown.ts";

/**
 * Part markers: `none`; `count` marks parts `(1)`, `(2)` … and the last
 * `(3/3)`, so parts can go out while the answer streams; `total` marks every
 * part `(1/3)`, which needs the whole answer before the first part is sent.
 */
export type PartMarkers = "none" | "count" | "total";

/** Room a marker takes: a line break and `(20/20)`. */
export const MARKER_ROOM = 8;

/**
 * Splits WhatsApp text into parts of at most `maxChars` UTF-16 code units
 * (what Twilio's 1,600-character limit counts). Outside code blocks, joining
 * the parts gives back `text` exactly.
 *
 * @example
 * ```ts
 * splitMessage("first paragraph\n\nsecond paragraph", 20);
 * // ["first paragraph\n\n", "second paragraph"]
 * ```
 */
export function splitMessage(text: string, maxChars: number): string[] {
  if (maxChars < 1) throw new RangeError("maxChars must be at least 1");
  const cutter = createCutter(maxChars);
  cutter.add(text);
  return cutter.take(true);
}

/**
 * Converts an AYD answer and splits it into parts.
 *
 * @example
 * ```ts
 * formatAnswer("**3** late orders", 1600); // ["*3* late orders"]
 * ```
 */
export function formatAnswer(markdown: string, maxChars: number): string[] {
  return splitMessage(markdownToWhatsApp(markdown), maxChars);
}

/** Turns a streamed Markdown answer into WhatsApp parts as they become final. */
export interface PartStream {
  /** Takes the next piece of the answer; returns the parts that are now final. */
  push(markdown: string): string[];
  /** Ends the answer; returns the remaining parts. */
  end(): string[];
}

/** How a {@linkcode PartStream} works beyond the size of a part. */
export interface PartStreamOptions {
  /**
   * Parts kept. Once the stream has given out one part more than this (so
   * the caller knows the answer ran longer), it reads no more of the answer:
   * `push` and `end` return nothing further and cost nothing.
   */
  maxParts?: number;
  /** The Markdown lexer; tests pass one that counts what it is given. */
  lex?: Lex;
}

/**
 * A part is final once its cut is chosen and the next part has begun; it
 * never changes after that. All the parts, in order, equal
 * {@linkcode formatAnswer} of the whole answer (up to `maxParts` + 1 of
 * them). `onFallback` hears of an answer the Markdown parser failed on; the
 * rest of it then goes out as written.
 *
 * @example
 * ```ts
 * const stream = createPartStream(1600, undefined, { maxParts: 20 });
 * for await (const delta of answerDeltas) for (const part of stream.push(delta)) send(part);
 * for (const part of stream.end()) send(part);
 * ```
 */
export function createPartStream(
  maxChars: number,
  onFallback?: (error: unknown) => void,
  options: PartStreamOptions = {},
): PartStream {
  const { maxParts = Infinity, lex } = options;
  const markdown = createMarkdownStream(onFallback, { lex });
  const cutter = createCutter(maxChars);
  let given = 0;
  const giveOut = (parts: string[]): string[] => {
    const kept = parts.slice(0, maxParts + 1 - given);
    given += kept.length;
    return kept;
  };
  return {
    push(piece) {
      if (given > maxParts) return [];
      const text = markdown.push(piece);
      // Where the next cut goes depends only on the text so far.
      if (text === "") return [];
      cutter.add(text);
      return giveOut(cutter.take(false));
    },
    end() {
      if (given > maxParts) return [];
      cutter.add(markdown.end());
      return giveOut(cutter.take(true));
    },
  };
}

/**
 * A part as sent: trailing whitespace dropped, marker added.
 *
 * @example
 * ```ts
 * labelPart("Top customers…\n\n", 0, undefined, "count"); // "Top customers…\n(1)"
 * labelPart("…the end.", 2, 3, "count"); // "…the end.\n(3/3)"
 * ```
 */
export function labelPart(
  part: string,
  index: number,
  total: number | undefined,
  markers: PartMarkers,
): string {
  const body = part.trimEnd();
  if (markers === "none" || total === 1) return body;
  if (total === undefined || (markers === "count" && index < total - 1)) {
    return `${body}\n(${index + 1})`;
  }
  return `${body}\n(${index + 1}/${total})`;
}

/**
 * Cuts text that may still be growing at its end. Below 40 characters a part
 * has no room to close and reopen code blocks, so they are cut as plain text.
 */
function createCutter(maxChars: number) {
  let pending = "";
  let state: SplitState = TEXT_START;
  return {
    add(text: string) {
      pending += text;
    },
    take(complete: boolean): string[] {
      const parts: string[] = [];
      while (pending !== "") {
        const piece = nextPart(pending, state, maxChars, complete, { code: maxChars >= 40 });
        if (!piece) break;
        if (piece.consumed === 0) throw new Error("splitter made no progress");
        parts.push(piece.part);
        pending = pending.slice(piece.consumed);
        state = piece.next;
      }
      return parts;
    },
  };
}
