/**
 * What the Markdown stream knows about its unfinished text between two
 * lexes, so that the lines a push adds are read on their own instead of
 * with the whole unfinished block (a table, a list, a code block is
 * unfinished until a blank line, and lexing it again on every line made
 * streaming quadratic). Private helper of `markdown.ts`.
 *
 * The contract: {@linkcode extendOpen} only says "nothing new is final" (or
 * hands over the new rows of a table, or the tokens of the text a table
 * ended in) when lexing the whole unfinished text again would say the same;
 * whenever it cannot tell, it says so, and the stream lexes the whole text.
 *
 * @module
 */

import type { Links, Token, Tokens, TokensList } from "marked";
import { isTooWide, measureColumns } from "./_table.ts";

/** Lexes Markdown with reference definitions from earlier text (see `lexMarkdown`). */
export type Lex = (markdown: string, links: Links) => TokensList;

/** A table that is all the unfinished text (but blank lines before it): a row a line. */
export interface OpenTable {
  kind: "table";
  /** The blank lines before it, as lexed. */
  lead: Token[];
  /** Its text so far. */
  text: string;
  /** The header and delimiter lines; lexed with new lines, they give the new rows. */
  prefix: string;
  table: Tokens.Table;
  /** Whether its rows go out as cards while it grows: only at the head of the text. */
  cards: boolean;
  /** Column widths of the header and the first `measured` rows. */
  widths?: number[];
  measured: number;
  /** Too wide for a monospace block (later rows only widen it). */
  wide: boolean;
}

/** Anything else that is not final yet. */
export interface OpenText {
  /** `list`, `fence`, `indented`: one list or code block is all the unfinished text. */
  kind: "list" | "fence" | "indented" | "other";
  /**
   * Lines without a blank line, heading, rule or setext underline cannot make
   * any of it final: only those end a block at the top level (and blank
   * space that marked trims off the end of a list).
   */
  quiet: boolean;
  /** A list may be open at the end: marked trims blank space off a list's end. */
  list: boolean;
  /** For `list`: its text from the start of its last item seen by a lex. */
  lastItems: string;
}

export type OpenBlock = OpenTable | OpenText;

/**
 * What lines added to an open block make: nothing new final (`same`), new
 * rows of the open table, or (when they end the table) the tokens a lex of
 * the whole unfinished text gives.
 */
export type Extension =
  | { kind: "same" }
  | { kind: "rows"; rows: Tokens.TableCell[][] }
  | { kind: "lexed"; tokens: TokensList };

const SAME: Extension = { kind: "same" };

// Wider than marked's rules on purpose: a false alarm only costs a lex.
// A line that could seal a block: blank, a heading, a rule, a setext underline.
const SEAL_LINE = /^[^\S\n]*(?:#|[-=*_](?:[-=*_]|[^\S\n])*$|$)/m;
// A line ending in blank space: at the end of a list that space is left over
// and lexes as a blank line.
const BLANK_END = /[^\S\n]$/m;
const BULLET = /^[^\S\n]*(?:[*+-]|\d{1,9}[.)])(?:[^\S\n]|$)/m;
// A table's delimiter row: lexed at once, the table is then followed row by row.
const DELIMITER_ROW = /^[ \t|:-]*-[ \t|:-]*$/m;
// A line that could close a fenced code block.
const FENCE_LINE = /^[^\S\n]*(?:```|~~~)/m;
// A line that is not blank and not indented as code: it ends indented code.
const UNINDENTED = /^(?! {4}| {0,3}\t|[ \t]*$)/m;
const LAST_LINE_BLANK = /(?:^|\n)[ \t]*$/;
// An <a> tag: marked carries "inside a link" from one table cell to the next.
const ANCHOR = /<a\s/i;

/**
 * What a lex of `lines` (the unfinished text, none of it final) shows for
 * the lines that follow.
 *
 * @example
 * ```ts
 * import { lexMarkdown } from "./_blocks.ts";
 * describeOpen(lexMarkdown("- a\n- b\n"), "- a\n- b\n").kind; // "list"
 * ```
 */
export function describeOpen(tokens: Token[], lines: string): OpenBlock {
  let last = tokens.length;
  while (last > 0 && tokens[last - 1].type === "space") last--;
  let first = 0;
  while (first < last && tokens[first].type === "space") first++;
  const start = tokens.slice(0, first).reduce((sum, token) => sum + token.raw.length, 0);
  const only = last - first === 1 ? tokens[first] : undefined;
  if (only?.type === "table") {
    const table = only as Tokens.Table;
    const text = lines.slice(start);
    // Lines of only tabs are rows once a real row follows them, not before.
    if (ANCHOR.test(text) || table.rows.length !== text.split("\n").length - 3) {
      return { kind: "other", quiet: false, list: false, lastItems: "" };
    }
    const prefix = text.slice(0, text.indexOf("\n", text.indexOf("\n") + 1) + 1);
    const lead = tokens.slice(0, first);
    return {
      kind: "table",
      lead,
      text,
      prefix,
      table,
      cards: first === 0,
      measured: 0,
      wide: false,
    };
  }
  // A single line may still become a table's header.
  const quiet = last === tokens.length && lines.indexOf("\n") < lines.length - 1;
  const list = tokens[last - 1]?.type === "list";
  if (only?.type === "list") {
    const items = (only as Tokens.List).items;
    const lastItem = items.slice(0, -1).reduce((sum, item) => sum + item.raw.length, start);
    return { kind: "list", quiet, list, lastItems: lines.slice(lastItem) };
  }
  const code = only?.type === "code" ? only as Tokens.Code : undefined;
  const kind = !code
    ? "other"
    : code.codeBlockStyle === "indented"
    ? "indented"
    : FENCE_LINE.test(code.raw.slice(code.raw.indexOf("\n") + 1))
    ? "other"
    : "fence";
  return { kind, quiet, list, lastItems: "" };
}

/**
 * Takes `added` (whole lines) into `open` without lexing the whole
 * unfinished text (see {@linkcode Extension}); undefined when only a whole
 * lex can tell. `open` is updated in place.
 *
 * @example
 * ```ts
 * import { lexMarkdown } from "./_blocks.ts";
 * const open = describeOpen(lexMarkdown("- a\n- b\n"), "- a\n- b\n");
 * extendOpen(open, "- c\n", lexMarkdown, {}); // { kind: "same" }
 * extendOpen(open, "\n", lexMarkdown, {}); // { kind: "same" }: a list may go on after a blank line
 * extendOpen(open, "Then\n", lexMarkdown, {}); // undefined: the list has ended
 * ```
 */
export function extendOpen(
  open: OpenBlock,
  added: string,
  lex: Lex,
  links: Links,
): Extension | undefined {
  if (open.kind === "table") return tableRows(open, added, lex, links);
  const lines = added.slice(0, -1);
  // Inside a code block, only a line that can end it counts.
  if (open.kind === "fence" || open.kind === "indented") {
    if (!(open.kind === "fence" ? FENCE_LINE : UNINDENTED).test(lines)) {
      // Blank lines at the end of indented code are not part of it.
      if (open.kind === "indented") open.quiet = !LAST_LINE_BLANK.test(lines);
      return SAME;
    }
    open.kind = "other";
  }
  const bullet = BULLET.test(lines);
  if (
    open.quiet && !SEAL_LINE.test(lines) && !DELIMITER_ROW.test(lines) &&
    !((open.list || bullet) && BLANK_END.test(lines))
  ) {
    open.list ||= bullet;
    if (open.kind === "list") open.lastItems += added;
    return SAME;
  }
  if (open.kind === "list") return listGoesOn(open, added, lex, links);
  return undefined;
}

/**
 * The rows `added` makes, or the whole text's tokens if it ends the table.
 * marked reads table rows line by line (a line ends the table or is a row,
 * whatever follows), a row's cells depend only on its line and the header,
 * and what follows the table lexes the same after the header alone.
 */
function tableRows(
  open: OpenTable,
  added: string,
  lex: Lex,
  links: Links,
): Extension | undefined {
  if (ANCHOR.test(added)) return undefined;
  const tokens = tryLex(lex, open.prefix + added, links);
  const table = tokens?.[0]?.type === "table" ? tokens[0] as Tokens.Table : undefined;
  if (!tokens || !table) return undefined;
  // A line of only tabs is a row, but rows of nothing but them are none.
  const rowLines = table.raw.slice(open.prefix.length).split("\n").filter((line) => line !== "");
  if (table.rows.length !== rowLines.length) return undefined;
  // A link definition after the table changes how its earlier rows read.
  if (Object.keys(tokens.links).length > Object.keys(links).length) return undefined;
  open.table.rows.push(...table.rows);
  const text = open.text + added;
  if (tokens.length === 1) {
    open.text = text;
    return { kind: "rows", rows: table.rows };
  }
  // Its raw runs past the header as far in the whole text as in the window.
  const raw = text.slice(0, table.raw.length - open.prefix.length + open.text.length);
  const whole = [...open.lead, { ...open.table, raw }, ...tokens.slice(1)] as TokensList;
  whole.links = tokens.links;
  return { kind: "lexed", tokens: whole };
}

/**
 * Whether the list still holds all the text. marked reads a list item by
 * item, each from its own first line on, so lexing from the start of the
 * last item seen gives the same items from there as the whole list.
 */
function listGoesOn(open: OpenText, added: string, lex: Lex, links: Links): Extension | undefined {
  const window = open.lastItems + added;
  const tokens = tryLex(lex, window, links);
  if (tokens?.[0]?.type !== "list" || tokens.slice(1).some((t) => t.type !== "space")) {
    return undefined;
  }
  const items = (tokens[0] as Tokens.List).items;
  open.lastItems = window.slice(items.slice(0, -1).reduce((sum, item) => sum + item.raw.length, 0));
  open.quiet = tokens.length === 1;
  return SAME;
}

/**
 * Whether the header and first `rowCount` rows of the open table are too
 * wide for a monospace block, measuring only rows not measured before.
 *
 * @example
 * ```ts
 * import { lexMarkdown } from "./_blocks.ts";
 * const lines = "| a | b |\n|---|---|\n| 1 | 2 |\n";
 * const open = describeOpen(lexMarkdown(lines), lines) as OpenTable;
 * isWideSoFar(open, 1); // false
 * ```
 */
export function isWideSoFar(open: OpenTable, rowCount: number): boolean {
  if (open.wide || rowCount <= open.measured) return open.wide;
  open.widths = measureColumns(open.table, open.measured, rowCount, open.widths);
  open.measured = rowCount;
  return open.wide = isTooWide(open.widths);
}

function tryLex(lex: Lex, markdown: string, links: Links): TokensList | undefined {
  try {
    return lex(markdown, links);
  } catch {
    // The whole lex meets the same failure and reports it.
    return undefined;
  }
}
