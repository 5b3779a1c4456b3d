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

import type { Links, Token, Tokens, TokensList } from "marked";
import { BLOCK_SEPARATOR, lexMarkdown, normalizeNewlines, renderBlock } from "./_blocks.ts";
import {
  describeOpen,
  extendOpen,
  isWideSoFar,
  type Lex,
  type OpenBlock,
  type OpenTable,
} from "./_open_block.ts";
import { renderCard } from "./_table.ts";

export type { Lex } from "./_open_block.ts";

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

/** How a {@linkcode MarkdownStream} reads Markdown. */
export interface MarkdownStreamOptions {
  /** The Markdown lexer; tests pass one that counts what it is given. */
  lex?: Lex;
}

/**
 * Converts Markdown as it streams in. A block is final once the next block
 * has begun (later text cannot change it), and the rows of a table already
 * too wide for a monospace block are final card by card. All the pieces
 * returned, concatenated, equal {@linkcode markdownToWhatsApp} of the whole.
 *
 * A push costs about what it adds: the lines it completes are read on their
 * own (a table row, a list item, a line of code) while they only extend the
 * block still open, and the whole unfinished text is lexed again only when
 * they may end it.
 *
 * @example
 * ```ts
 * const stream = createMarkdownStream();
 * stream.push("**Late:** 3 orders\n\nDet"); // "*Late:* 3 orders"
 * stream.push("ails follow."); // ""
 * stream.end(); // "\n\nDetails follow."
 * ```
 */
export function createMarkdownStream(
  onFallback?: (error: unknown) => void,
  options: MarkdownStreamOptions = {},
): MarkdownStream {
  const lex = options.lex ?? lexMarkdown;
  // Markdown not yet final, starting at a block boundary: `lexed` (what `open`
  // describes), then whole lines not read since, then the line being written.
  let lexed = "";
  let fresh = "";
  let partial = "";
  let open: OpenBlock | undefined;
  // Once the parser fails, the rest goes out as written, at the end.
  let failed = false;
  let heldReturn = false;
  // Rows of the table at the head of the text already given out as cards.
  let cardsOut = 0;
  let started = false;
  const links: Links = {};

  const emit = (block: string): string => {
    if (block === "") return "";
    const text = (started ? BLOCK_SEPARATOR : "") + block;
    started = true;
    return text;
  };

  // The last row may still be cut mid-line; the ones before it are whole.
  const cards = (table: OpenTable): string => {
    const whole = table.table.rows.length - 1;
    let text = "";
    if (whole > cardsOut && isWideSoFar(table, whole)) {
      for (; cardsOut < whole; cardsOut++) text += emit(renderCard(table.table, cardsOut));
    }
    return text;
  };

  const lexAll = (final: boolean): string => {
    // A line still being written can parse as the start of a new block
    // ("1" before "1. b"), making the block before it look finished.
    const lines = lexed + fresh + (final ? partial : "");
    if (final) partial = "";
    let tokens: TokensList;
    try {
      tokens = lex(lines, links);
    } catch (error) {
      failed = true;
      onFallback?.(error);
      lexed = lines;
      fresh = "";
      return final ? emit(asWritten(lines)) : "";
    }
    return settle(tokens, lines, final);
  };

  // Gives out what `tokens`, the lex of `lines`, shows is final.
  const settle = (tokens: TokensList, lines: string, final: boolean): string => {
    fresh = "";
    open = undefined;
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
    lexed = lines.slice(consumed);
    if (final) return text;
    // What follows what became final was lexed behind it; alone it may read
    // differently, so the next push lexes it alone before trusting it.
    if (complete === 0) open = describeOpen(tokens, lines);
    const head = tokens[complete];
    if (head?.type === "table" && complete < last) {
      text += cards(open?.kind === "table" ? open : tableAt(head as Tokens.Table));
    }
    return text;
  };

  const take = (): string => {
    const extended = open && extendOpen(open, fresh, lex, links);
    if (!extended) return lexAll(false);
    if (extended.kind === "lexed") return settle(extended.tokens, lexed + fresh, false);
    lexed += fresh;
    fresh = "";
    return extended.kind === "rows" && open?.kind === "table" && open.cards ? cards(open) : "";
  };

  return {
    push(markdown) {
      let piece = (heldReturn ? "\r" : "") + markdown;
      // A "\r" at the end may be half of a "\r\n" still on its way.
      heldReturn = piece.endsWith("\r");
      if (heldReturn) piece = piece.slice(0, -1);
      piece = normalizeNewlines(piece);
      // Blocks only end at line breaks.
      const lineEnd = piece.lastIndexOf("\n") + 1;
      if (lineEnd === 0) {
        partial += piece;
        return "";
      }
      fresh += partial + piece.slice(0, lineEnd);
      partial = piece.slice(lineEnd);
      return failed ? "" : take();
    },
    end() {
      if (heldReturn) partial += "\n";
      heldReturn = false;
      return failed ? emit(asWritten(lexed + fresh + partial)) : lexAll(true);
    },
  };
}

/** A table seen for the first time, nothing of it measured yet. */
function tableAt(table: Tokens.Table): OpenTable {
  return {
    kind: "table",
    lead: [],
    text: "",
    prefix: "",
    table,
    cards: true,
    measured: 0,
    wide: false,
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
