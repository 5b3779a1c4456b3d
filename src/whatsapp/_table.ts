/**
 * GFM tables → WhatsApp: an aligned monospace block when narrow, one card per
 * row otherwise. Private helper of `markdown.ts`.
 *
 * @module
 */

import type { Tokens } from "marked";
import { plainText, renderInline } from "./_inline.ts";

/**
 * Widest table line, in monospace columns, shown as an aligned block: about
 * what a phone shows of a WhatsApp monospace block in portrait without
 * wrapping. Wider tables become cards, since wrapped rows are unreadable.
 */
export const MONOSPACE_TABLE_WIDTH = 32;

const COLUMN_GAP = "  ";
const graphemes = new Intl.Segmenter("en", { granularity: "grapheme" });

/**
 * Columns `text` takes in a monospace font: East Asian wide characters and
 * emoji count 2, combining marks and zero-width characters 0, the rest 1.
 *
 * @example
 * ```ts
 * displayWidth("Zürich"); // 6
 * displayWidth("北京"); // 4
 * displayWidth("📦"); // 2
 * ```
 */
export function displayWidth(text: string): number {
  let width = 0;
  for (const { segment } of graphemes.segment(text)) width += graphemeWidth(segment);
  return width;
}

function graphemeWidth(cluster: string): number {
  const first = cluster.codePointAt(0)!;
  if (isWideCodePoint(first)) return 2;
  if (/\p{Extended_Pictographic}/u.test(cluster)) {
    return /\p{Emoji_Presentation}|\uFE0F/u.test(cluster) ? 2 : 1;
  }
  if (/^\p{Regional_Indicator}/u.test(cluster)) return 2;
  return /^[\p{Mn}\p{Me}\p{Cf}\p{Cc}]+$/u.test(cluster) ? 0 : 1;
}

function isWideCodePoint(cp: number): boolean {
  return (cp >= 0x1100 && cp <= 0x115f) || (cp >= 0x2e80 && cp <= 0x303e) ||
    (cp >= 0x3041 && cp <= 0x33ff) || (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x4e00 && cp <= 0x9fff) || (cp >= 0xa000 && cp <= 0xa4cf) ||
    (cp >= 0xac00 && cp <= 0xd7a3) || (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) || (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) || (cp >= 0x20000 && cp <= 0x3fffd);
}

/**
 * Renders a whole table.
 *
 * @example
 * ```ts
 * import { Lexer } from "marked";
 * const [table] = new Lexer().lex("| Month | Orders |\n|---|--:|\n| Jan | 1,204 |");
 * renderTable(table as Tokens.Table);
 * // "```\nMonth  Orders\n-----  ------\nJan     1,204\n```"
 * ```
 */
export function renderTable(table: Tokens.Table): string {
  if (!isWideTable(table, table.rows.length)) return monospace(table);
  if (table.rows.length === 0) return table.header.map((c) => plainText(c.tokens)).join(" · ");
  return table.rows.map((_, i) => renderCard(table, i)).join("\n\n");
}

/**
 * Whether the header and the first `rowCount` rows already make the table too
 * wide for a monospace block. Later rows can only widen it, so a streaming
 * caller may show those rows as cards before the table ends.
 *
 * @example
 * ```ts
 * import { Lexer } from "marked";
 * const [table] = new Lexer().lex("| a | b |\n|---|---|\n| 1 | 2 |");
 * isWideTable(table as Tokens.Table, 1); // false
 * ```
 */
export function isWideTable(table: Tokens.Table, rowCount: number): boolean {
  return isTooWide(measureColumns(table, 0, rowCount));
}

/**
 * Monospace widths of the columns of the header and of rows `from` to `to`,
 * widening `widths` (those of the rows before `from`), so that a growing table
 * measures each row once.
 *
 * @example
 * ```ts
 * import { Lexer } from "marked";
 * const [table] = new Lexer().lex("| a | b |\n|---|---|\n| 1 | 22 |\n| 333 | 4 |");
 * const first = measureColumns(table as Tokens.Table, 0, 1); // [1, 2]
 * measureColumns(table as Tokens.Table, 1, 2, first); // [3, 2]
 * ```
 */
export function measureColumns(
  table: Tokens.Table,
  from: number,
  to: number,
  widths: number[] = table.header.map((head) => Math.max(1, displayWidth(cellText(head.tokens)))),
): number[] {
  const measured = [...widths];
  for (const row of table.rows.slice(from, to)) {
    table.header.forEach((_, i) => {
      if (row[i]) measured[i] = Math.max(measured[i], displayWidth(cellText(row[i].tokens)));
    });
  }
  return measured;
}

/**
 * Whether columns of these widths make a line too wide for a monospace block.
 *
 * @example
 * ```ts
 * isTooWide([10, 10]); // false
 * isTooWide([20, 20]); // true
 * ```
 */
export function isTooWide(widths: number[]): boolean {
  const total = widths.reduce((sum, w) => sum + w, 0) + COLUMN_GAP.length * (widths.length - 1);
  return total > MONOSPACE_TABLE_WIDTH;
}

/**
 * One row as a card: a `*Column:* value` line per cell, cell markup kept as
 * WhatsApp markup.
 *
 * @example
 * ```ts
 * import { Lexer } from "marked";
 * const [table] = new Lexer().lex("| order_id | status |\n|---|---|\n| 1042 | **late** |");
 * renderCard(table as Tokens.Table, 0); // "*order_id:* 1042\n*status:* *late*"
 * ```
 */
export function renderCard(table: Tokens.Table, row: number): string {
  const lines = table.header.map((head, i) => {
    const cell = table.rows[row][i];
    const value = cell ? renderInline(cell.tokens, "markup", { singleLine: true }).trim() : "";
    const label = cellText(head.tokens);
    if (label === "") return value;
    // A label that itself contains `*` would end the bold early.
    const shown = label.includes("*") ? `${label}:` : `*${label}:*`;
    return value === "" ? shown : `${shown} ${value}`;
  });
  return lines.filter((line) => line !== "").join("\n");
}

function monospace(table: Tokens.Table): string {
  const grid = plainGrid(table, table.rows.length);
  const widths = columnWidths(grid);
  const align = table.header.map((_, i) => {
    const stated = table.align[i];
    if (stated === "right" || stated === "center") return stated;
    return isNumericColumn(grid.slice(1).map((row) => row[i])) ? "right" : "left";
  });
  const line = (cells: string[]) =>
    cells.map((cell, i) => pad(cell, widths[i], align[i])).join(COLUMN_GAP).trimEnd();
  const lines = [line(grid[0]), widths.map((w) => "-".repeat(w)).join(COLUMN_GAP)];
  for (const row of grid.slice(1)) lines.push(line(row));
  return "```\n" + lines.join("\n") + "\n```";
}

function plainGrid(table: Tokens.Table, rowCount: number): string[][] {
  const rows = [table.header, ...table.rows.slice(0, rowCount)];
  return rows.map((row) => table.header.map((_, i) => row[i] ? cellText(row[i].tokens) : ""));
}

function cellText(tokens: Tokens.TableCell["tokens"]): string {
  return renderInline(tokens, "plain", { singleLine: true }).trim();
}

function columnWidths(grid: string[][]): number[] {
  return grid[0].map((_, i) => Math.max(1, ...grid.map((row) => displayWidth(row[i]))));
}

function pad(cell: string, width: number, align: "left" | "right" | "center"): string {
  const room = width - displayWidth(cell);
  if (align === "right") return " ".repeat(room) + cell;
  if (align === "center") {
    const left = Math.floor(room / 2);
    return " ".repeat(left) + cell + " ".repeat(room - left);
  }
  return cell + " ".repeat(room);
}

// Amounts as AYD writes them: `1,234.50`, `€ 1.234,50`, `-0.5%`, `1e6`, `$12k`.
const NUMBER =
  /^[-+−]?\p{Sc}?\s?[-+−]?\d[\d,.'\u00A0\u202F ]*(?:[eE][-+]?\d+)?\s?(?:%|\p{Sc}|[kKmMbB])?$/u;
const NO_VALUE = /^(?:|-|–|—|n\/a|null)$/i;

function isNumericColumn(cells: string[]): boolean {
  const values = cells.filter((cell) => !NO_VALUE.test(cell));
  return values.length > 0 && values.every((cell) => NUMBER.test(cell));
}
