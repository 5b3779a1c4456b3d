/**
 * AskYourDatabase answers are Markdown; WhatsApp shows none of it. This turns
 * them into WhatsApp's own formatting, parsed with marked (GFM).
 *
 * What WhatsApp gets:
 * - `**bold**` → `*bold*`, `_italic_` → `_italic_`, `~~strike~~` → `~strike~`,
 *   `` `code` `` stays, fenced and indented code → a ``` block without the
 *   language tag; headings → a bold line;
 * - lists → `• item` (`◦`, `▪` when nested, 3 spaces per level), `3. item`
 *   keeping the start number; quotes → `> ` lines; rules → `──────────`;
 * - links → `text (url)`, or `url` when the text is the url; images → `alt (url)`;
 *   HTML tags dropped (their text kept, `<br>` → line break), entities resolved;
 * - tables → an aligned monospace block when the widest line fits
 *   {@linkcode MONOSPACE_TABLE_WIDTH} columns, else one `*Column:* value` card per row.
 *
 * Literal text passes through byte for byte: numbers (`€ 1.234,50`, `1e6`) and
 * identifiers (`order_id`, `a*b`) are never escaped or rewritten. WhatsApp has
 * no escape syntax, and it does not style markers inside a word, so
 * `total_amount_usd` is safe as it is. What the converter must not do is *add*
 * a marker WhatsApp would misread: a style pair is only written where
 * WhatsApp honours it (at word boundaries, around content without edge spaces
 * or the marker itself, within one line); elsewhere the text goes out
 * unstyled rather than with stray `*` or `_`.
 *
 * If the parser fails on an answer (marked 18.2.1 throws on some malformed
 * nesting, e.g. `- [\n  >*\n<`), the text goes out as written rather than
 * not at all.
 *
 * @module
 */

import type { Links, Token, Tokens } from "marked";
import { BLOCK_SEPARATOR, lexMarkdown, normalizeNewlines, renderBlock } from "./_blocks.ts";
import { isWideTable, renderCard } from "./_table.ts";

export { displayWidth, MONOSPACE_TABLE_WIDTH } from "./_table.ts";

/**
 * Converts an AYD answer from Markdown to WhatsApp text: blocks separated by
 * one blank line, no trailing whitespace, no Markdown syntax left over.
 *
 * @example
 * ```ts
 * markdownToWhatsApp("## Late orders\n\n**3** orders by `customer_id`:\n\n- 1042\n- 1043");
 * // "*Late orders*\n\n*3* orders by `customer_id`:\n\n• 1042\n• 1043"
 * ```
 */
export function markdownToWhatsApp(
  markdown: string,
  onFallback?: (error: unknown) => void,
): string {
  const text = normalizeNewlines(markdown);
  try {
    return lexMarkdown(text).map(renderBlock).filter((block) => block !== "")
      .join(BLOCK_SEPARATOR);
  } catch (error) {
    onFallback?.(error);
    return asWritten(text);
  }
}

/** The answer as AYD wrote it, for when it cannot be parsed: only blank space tidied. */
function asWritten(text: string): string {
  return text.replace(/[ \t]+$/gm, "").replace(/\n{3,}/g, "\n\n").trim();
}

/** Converts an answer that arrives in pieces; see {@linkcode createMarkdownStream}. */
export interface MarkdownStream {
  /** Takes the next piece of Markdown; returns the WhatsApp text that became final. */
  push(markdown: string): string;
  /** Ends the answer; returns the rest of the WhatsApp text. */
  end(): string;
}

/**
 * Converts Markdown as it streams in. A block is final once the next block
 * has begun (later text cannot change it), and the rows of a table already
 * too wide for a monospace block are final card by card. All the pieces
 * returned, concatenated, equal {@linkcode markdownToWhatsApp} of the whole.
 *
 * @example
 * ```ts
 * const stream = createMarkdownStream();
 * stream.push("**Late:** 3 orders\n\nDet"); // "*Late:* 3 orders"
 * stream.push("ails follow."); // ""
 * stream.end(); // "\n\nDetails follow."
 * ```
 */
export function createMarkdownStream(onFallback?: (error: unknown) => void): MarkdownStream {
  // Markdown not yet final; it always starts at a block boundary.
  let source = "";
  // Once the parser fails, the rest goes out as written, at the end.
  let failed = false;
  let heldReturn = false;
  // Rows of the table at the head of `source` already given out as cards.
  let cardsOut = 0;
  let started = false;
  const links: Links = {};

  const emit = (block: string): string => {
    if (block === "") return "";
    const text = (started ? BLOCK_SEPARATOR : "") + block;
    started = true;
    return text;
  };

  const take = (final: boolean): string => {
    // A line still being written can parse as the start of a new block
    // ("1" before "1. b"), making the block before it look finished.
    const lines = final ? source : source.slice(0, source.lastIndexOf("\n") + 1);
    let tokens: ReturnType<typeof lexMarkdown>;
    try {
      tokens = lexMarkdown(lines, links);
    } catch (error) {
      failed = true;
      onFallback?.(error);
      return final ? emit(asWritten(source)) : "";
    }
    Object.assign(links, tokens.links);
    let last = tokens.length;
    if (!final) { while (last > 0 && tokens[last - 1].type === "space") last--; }
    const complete = final ? tokens.length : finalBlocks(tokens, last, lines);
    let text = "";
    let consumed = 0;
    tokens.slice(0, complete).forEach((token, i) => {
      text += i === 0 && cardsOut > 0
        ? restOfCards(token as Tokens.Table, cardsOut).map(emit).join("")
        : emit(renderBlock(token));
      consumed += token.raw.length;
    });
    if (complete > 0) cardsOut = 0;
    source = source.slice(consumed);
    const open = tokens[complete];
    if (!final && open?.type === "table" && complete < last) {
      // The last row may be cut mid-line; the ones before it are whole.
      const table = open as Tokens.Table;
      const whole = table.rows.length - 1;
      if (whole > cardsOut && isWideTable(table, whole)) {
        for (; cardsOut < whole; cardsOut++) text += emit(renderCard(table, cardsOut));
      }
    }
    return text;
  };

  return {
    push(markdown) {
      let piece = (heldReturn ? "\r" : "") + markdown;
      // A "\r" at the end may be half of a "\r\n" still on its way.
      heldReturn = piece.endsWith("\r");
      if (heldReturn) piece = piece.slice(0, -1);
      source += normalizeNewlines(piece);
      // Blocks only end at line breaks.
      if (failed || !(piece.includes("\n") || piece.includes("\r"))) return "";
      return take(false);
    },
    end() {
      if (heldReturn) source += "\n";
      heldReturn = false;
      return failed ? emit(asWritten(source)) : take(true);
    },
  };
}

/**
 * How many of the leading `tokens` no later text can change. A blank line or
 * a heading seals everything before it: marked can otherwise re-read earlier
 * lines once a later one arrives (a `-` line turns the lines above into a
 * setext heading). The last block (`last` excludes trailing blank lines) may
 * still grow, unless `isClosed` says nothing can extend it.
 */
function finalBlocks(tokens: Token[], last: number, lines: string): number {
  let sealed = 0;
  for (let i = 0; i < last - 1; i++) {
    const type = tokens[i].type;
    if (tokens[i + 1].type === "space" || type === "heading" || type === "hr") sealed = i + 1;
  }
  return last > 0 && isClosed(tokens[last - 1].type, lines) ? last : sealed;
}

/** Whether the block of `type` that ends `lines` is over whatever follows. */
function isClosed(type: string, lines: string): boolean {
  if (type === "heading" || type === "hr") return true;
  if (type === "paragraph") return /\n[ \t]*\n$/.test(lines);
  // marked lets a line of only a tab continue a table; only spaces end it.
  if (type === "table") return /\n *\n$/.test(lines);
  return false;
}

function restOfCards(table: Tokens.Table, from: number): string[] {
  return table.rows.slice(from).map((_, i) => renderCard(table, from + i));
}
