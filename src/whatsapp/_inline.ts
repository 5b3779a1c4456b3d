/**
 * Inline Markdown (marked's inline tokens) → WhatsApp text. Private helper of
 * `markdown.ts`.
 *
 * @module
 */

import type { MarkedToken, Token } from "marked";

/** `markup` writes WhatsApp styles; `plain` writes the bare text (monospace tables). */
export type InlineMode = "markup" | "plain";

interface Style {
  marker: string;
  pair: number;
  /** Written instead of `marker` when the pair is dropped inside a word. */
  literal?: string;
  /** Never styled (plain mode); only its `literal` may show. */
  hidden?: boolean;
}

type Segment =
  | { kind: "text"; text: string }
  | ({ kind: "open" } & Style)
  | ({ kind: "close" } & Style)
  // Code span content: never decoded, restyled or split at newlines.
  | { kind: "code"; text: string };

const STYLE_MARKERS: Record<string, string> = { strong: "*", em: "_", del: "~" };

/**
 * Renders inline tokens. `singleLine` turns line breaks into spaces (table
 * cells); `within` lists the style markers already open around the tokens.
 *
 * @example
 * ```ts
 * import { Lexer } from "marked";
 * const [paragraph] = new Lexer().lex("**Total:** 1,234.50 for order_id");
 * renderInline((paragraph as { tokens: Token[] }).tokens, "markup");
 * // "*Total:* 1,234.50 for order_id"
 * ```
 */
export function renderInline(
  tokens: Token[],
  mode: InlineMode,
  options: { singleLine?: boolean; within?: string[] } = {},
): string {
  const segments: Segment[] = [];
  let pairs = 0;
  const walk = (list: Token[], open: string[]): void => {
    for (const generic of list) {
      const token = generic as MarkedToken;
      switch (token.type) {
        case "strong":
        case "em":
        case "del": {
          const marker = STYLE_MARKERS[token.type];
          // `a*b*c` is Markdown emphasis, but inside a word it is far more
          // likely a literal `*` (a formula, an identifier) than styling.
          const literal = token.type === "em" && /^[*_][^*_]/.test(token.raw)
            ? token.raw[0]
            : undefined;
          // WhatsApp cannot nest a style in itself: `*a *b* c*` would end early.
          const hidden = mode === "plain" || open.includes(marker);
          if (hidden && literal === undefined) {
            walk(token.tokens, open);
            break;
          }
          const pair = pairs++;
          segments.push({ kind: "open", marker, pair, literal, hidden });
          walk(token.tokens, hidden ? open : [...open, marker]);
          segments.push({ kind: "close", marker, pair, literal, hidden });
          break;
        }
        case "codespan": {
          // CommonMark turns line endings inside a code span into spaces.
          const text = token.text.replaceAll("\n", " ");
          if (mode === "markup" && !open.includes("`")) {
            const pair = pairs++;
            segments.push({ kind: "open", marker: "`", pair });
            segments.push({ kind: "code", text });
            segments.push({ kind: "close", marker: "`", pair });
          } else {
            segments.push({ kind: "code", text });
          }
          break;
        }
        case "br":
          segments.push({ kind: "text", text: "\n" });
          break;
        case "escape":
          segments.push({ kind: "text", text: token.text });
          break;
        case "link": {
          walk(token.tokens, open);
          const shown = plainText(token.tokens);
          if (!token.autolink && !sameTarget(shown, token.href)) {
            segments.push({ kind: "text", text: shown === "" ? token.href : ` (${token.href})` });
          }
          break;
        }
        case "image": {
          const alt = decodeEntities(token.text).trim();
          segments.push({ kind: "text", text: alt === "" ? token.href : `${alt} (${token.href})` });
          break;
        }
        case "html":
          // Tags carry no text of their own; only a line break is worth keeping.
          if (/^<br\s*\/?>$/i.test(token.text.trim())) segments.push({ kind: "text", text: "\n" });
          break;
        case "checkbox":
          break;
        case "text":
          if (token.tokens) walk(token.tokens, open);
          else segments.push({ kind: "text", text: decodeEntities(token.text) });
          break;
        default: {
          const other = generic as { tokens?: Token[]; text?: unknown };
          if (other.tokens) walk(other.tokens, open);
          else if (typeof other.text === "string") {
            segments.push({ kind: "text", text: other.text });
          }
        }
      }
    }
  };
  walk(tokens, options.within ?? []);
  let flat = segments;
  if (options.singleLine) {
    flat = flat.map((s) => s.kind === "text" ? { ...s, text: s.text.replaceAll("\n", " ") } : s);
  }
  return assemble(closeAtLineEnds(flat, pairs));
}

/** The text of inline tokens without any styling, for comparisons and table widths. */
export function plainText(tokens: Token[]): string {
  return renderInline(tokens, "plain");
}

function sameTarget(shown: string, href: string): boolean {
  return shown === href || `mailto:${shown}` === href;
}

/**
 * WhatsApp styles never span a line break, so a style that does is closed
 * before each newline and opened again after it.
 */
function closeAtLineEnds(segments: Segment[], firstFreePair: number): Segment[] {
  const out: Segment[] = [];
  const open: Style[] = [];
  let nextPair = firstFreePair;
  for (const segment of segments) {
    if (segment.kind === "open") {
      const { kind: _, ...style } = segment;
      open.push(style);
      out.push(segment);
    } else if (segment.kind === "close") {
      out.push({ kind: "close", ...open.pop()! });
    } else if (segment.kind === "text" && open.length > 0 && segment.text.includes("\n")) {
      segment.text.split("\n").forEach((line, i) => {
        if (i > 0) {
          for (const style of [...open].reverse()) out.push({ kind: "close", ...style });
          out.push({ kind: "text", text: "\n" });
          for (const style of open) {
            style.pair = nextPair++;
            out.push({ kind: "open", ...style });
          }
        }
        if (line !== "") out.push({ kind: "text", text: line });
      });
    } else {
      out.push(segment);
    }
  }
  return out;
}

/**
 * Joins the segments, keeping a pair of style markers only where WhatsApp
 * will honour it: at word boundaries, around content that neither starts nor
 * ends with a space and does not contain the marker itself. Everywhere else
 * the pair is dropped rather than left as stray `*` or `_` on the screen
 * (Markdown allows `foo**bar**baz`; WhatsApp shows `foo*bar*baz` literally).
 */
function assemble(segments: Segment[]): string {
  const chars = segments.map((s) => s.kind === "open" || s.kind === "close" ? "" : s.text);
  const before = (index: number): string => {
    for (let i = index - 1; i >= 0; i--) if (chars[i] !== "") return chars[i].slice(-1);
    return "";
  };
  const after = (index: number): string => {
    for (let i = index + 1; i < chars.length; i++) if (chars[i] !== "") return chars[i][0];
    return "";
  };
  const opens = new Map<number, number>();
  const dropped = new Set<number>();
  const literal = new Set<number>();
  segments.forEach((segment, index) => {
    if (segment.kind === "open") opens.set(segment.pair, index);
    if (segment.kind !== "close") return;
    const start = opens.get(segment.pair)!;
    const content = chars.slice(start + 1, index).join("");
    const inWord = !isBoundary(before(start)) || !isBoundary(after(index));
    const honoured = !segment.hidden && content.trim() === content && content !== "" &&
      !content.includes(segment.marker) && !inWord;
    if (!honoured) dropped.add(segment.pair);
    if (!honoured && inWord && segment.literal) literal.add(segment.pair);
  });
  let text = "";
  let plain = "";
  const flush = () => {
    // Three literal backticks would open a WhatsApp monospace block.
    text += plain.replaceAll("```", "``\u200B`");
    plain = "";
  };
  for (const segment of segments) {
    if (segment.kind === "text") plain += segment.text;
    else {
      flush();
      if (segment.kind === "code") text += segment.text.replaceAll("```", "``\u200B`");
      else if (literal.has(segment.pair)) plain += segment.literal;
      else if (!dropped.has(segment.pair)) text += segment.marker;
    }
  }
  flush();
  return text;
}

/** Whether a style marker may touch `char` (the neighbouring character, "" at an edge). */
function isBoundary(char: string): boolean {
  return char === "" || !/[\p{L}\p{N}\p{M}*_~`]/u.test(char);
}

const NAMED_ENTITIES: Record<string, string> = {
  amp: "&",
  lt: "<",
  gt: ">",
  quot: '"',
  apos: "'",
  nbsp: "\u00A0",
  copy: "©",
  reg: "®",
  trade: "™",
  hellip: "…",
  mdash: "—",
  ndash: "–",
  euro: "€",
  pound: "£",
  yen: "¥",
  cent: "¢",
  deg: "°",
  times: "×",
  divide: "÷",
  middot: "·",
  bull: "•",
  laquo: "«",
  raquo: "»",
  rarr: "→",
  larr: "←",
};

/**
 * Resolves HTML character references, which marked leaves in text tokens for
 * an HTML renderer to pass on; WhatsApp would show them literally.
 *
 * @example
 * ```ts
 * decodeEntities("R&amp;D &euro; 5"); // "R&D € 5"
 * ```
 */
export function decodeEntities(text: string): string {
  if (!text.includes("&")) return text;
  return text.replace(/&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z]+);/g, (whole, name) => {
    if (name[0] !== "#") return NAMED_ENTITIES[name] ?? whole;
    const code = name[1] === "x" || name[1] === "X"
      ? parseInt(name.slice(2), 16)
      : parseInt(name.slice(1), 10);
    return code > 0 && code <= 0x10ffff && (code < 0xd800 || code > 0xdfff)
      ? String.fromCodePoint(code)
      : "\uFFFD";
  });
}
