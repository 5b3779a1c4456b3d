/**
 * Block-level Markdown (marked's top-level tokens) → WhatsApp text. Private
 * helper of `markdown.ts` and of the part stream.
 *
 * @module
 */

import { Lexer } from "marked";
import type { Links, MarkedToken, Token, Tokens, TokensList } from "marked";
import { decodeEntities, renderInline } from "./_inline.ts";
import { renderTable } from "./_table.ts";

/** Separates blocks: WhatsApp shows a blank line between paragraphs. */
export const BLOCK_SEPARATOR = "\n\n";
const RULE = "──────────";
const BULLETS = ["•", "◦", "▪"];
const LIST_INDENT = "   ";

/**
 * Lexes Markdown with GFM (tables, strikethrough, autolinks). `links` carries
 * reference definitions from earlier text when lexing only a tail of it.
 *
 * @example
 * ```ts
 * lexMarkdown("# Sales\n\nUp 4%").map((t) => t.type); // ["heading", "space", "paragraph"]
 * ```
 */
export function lexMarkdown(markdown: string, links: Links = {}): TokensList {
  const lexer = new Lexer({ gfm: true });
  Object.assign(lexer.tokens.links, links);
  return lexer.lex(markdown);
}

/**
 * Line endings as marked sees them; done before lexing so that token `raw`
 * lengths are offsets into the text.
 *
 * @example
 * ```ts
 * normalizeNewlines("a\r\nb\rc"); // "a\nb\nc"
 * ```
 */
export function normalizeNewlines(text: string): string {
  return text.replace(/\r\n?/g, "\n");
}

/**
 * Renders one top-level token; "" for tokens that show nothing (blank lines,
 * link definitions, HTML comments).
 *
 * @example
 * ```ts
 * renderBlock(lexMarkdown("## Top **customers**")[0]); // "*Top customers*"
 * ```
 */
export function renderBlock(generic: Token): string {
  const token = generic as MarkedToken;
  switch (token.type) {
    case "space":
    case "def":
      return "";
    case "heading":
      return tidy(renderInline([strong(token.tokens)], "markup"));
    case "paragraph":
      return tidy(renderInline(token.tokens, "markup"));
    case "text":
      return tidy(token.tokens ? renderInline(token.tokens, "markup") : decodeEntities(token.text));
    case "code":
      return codeBlock(token.text);
    case "table":
      return renderTable(token);
    case "list":
      return renderList(token, 0);
    case "blockquote": {
      const inner = token.tokens.map(renderBlock).filter((b) => b !== "").join(BLOCK_SEPARATOR);
      return inner.split("\n").map((line) => line === "" ? ">" : `> ${line}`).join("\n");
    }
    case "hr":
      return RULE;
    case "html":
      return tidy(stripHtml(token.text));
    default: {
      const other = generic as { tokens?: Token[]; text?: unknown };
      if (other.tokens) return tidy(renderInline(other.tokens, "markup"));
      return typeof other.text === "string" ? tidy(other.text) : "";
    }
  }
}

function strong(tokens: Token[]): Tokens.Strong {
  return { type: "strong", raw: "", text: "", tokens };
}

/**
 * A WhatsApp monospace block. The language tag is dropped (WhatsApp would
 * show it as a line of code), and so is trailing whitespace.
 */
function codeBlock(code: string): string {
  const lines = code.split("\n").map((line) => line.trimEnd());
  while (lines.length > 0 && lines[0] === "") lines.shift();
  while (lines.length > 0 && lines.at(-1) === "") lines.pop();
  if (lines.length === 0) return "";
  // Three backticks inside would end the block early.
  return "```\n" + lines.join("\n").replaceAll("```", "``\u200B`") + "\n```";
}

/** Trims every line, drops surplus blank lines. */
function tidy(text: string): string {
  return text.split("\n").map((line) => line.trim()).join("\n").replace(/\n{3,}/g, "\n\n")
    .trim();
}

function stripHtml(html: string): string {
  const text = html
    .replace(/<!--[\s\S]*?(?:-->|$)/g, "")
    .replace(/<(script|style)\b[\s\S]*?(?:<\/\1\s*>|$)/gi, "")
    .replace(/<br\s*\/?>/gi, "\n")
    .replace(/<\/?[A-Za-z][^>]*>/g, "");
  return decodeEntities(text).replaceAll("```", "``\u200B`");
}

/**
 * Lists: `• item` (`◦` and `▪` deeper), `3. item` keeping the source's
 * start number, 3 more spaces per nesting level. Code blocks, tables and
 * quotes inside an item start at the left edge: WhatsApp only recognises
 * ``` and `>` there.
 */
function renderList(list: Tokens.List, level: number): string {
  const indent = LIST_INDENT.repeat(level);
  const start = typeof list.start === "number" ? list.start : 1;
  const lines: string[] = [];
  list.items.forEach((item, i) => {
    let marker = list.ordered ? `${start + i}.` : BULLETS[Math.min(level, BULLETS.length - 1)];
    if (item.task) marker = list.ordered ? `${marker} ${box(item)}` : box(item);
    const hanging = indent + " ".repeat(marker.length + 1);
    let first = true;
    for (const child of item.tokens) {
      const token = child as MarkedToken;
      if (token.type === "checkbox" || token.type === "space") continue;
      if (token.type === "list") {
        if (first) lines.push(indent + marker);
        first = false;
        lines.push(renderList(token, level + 1));
        continue;
      }
      const text = renderBlock(token);
      if (text === "") continue;
      if (token.type === "text" || token.type === "paragraph") {
        text.split("\n").forEach((line, n) => {
          if (first && n === 0) lines.push(`${indent}${marker} ${line}`);
          else lines.push(line === "" ? "" : hanging + line);
        });
      } else {
        if (first) lines.push(indent + marker);
        lines.push(text);
      }
      first = false;
    }
    if (first) lines.push(indent + marker);
  });
  return lines.join("\n");
}

function box(item: Tokens.ListItem): string {
  return item.checked ? "☑" : "☐";
}
