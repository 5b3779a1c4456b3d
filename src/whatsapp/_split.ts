/**
 * Where to end the next message part. Private engine of `format.ts`,
 * shared by the one-shot splitters and the part stream so that both cut the
 * same text at the same places.
 *
 * @module
 */

/** A WhatsApp monospace block starts and ends with a line of exactly this. */
export const FENCE = "```";
/** Ends a part cut inside a code block; the next part starts with {@linkcode FENCE}. */
export const CLOSE_FENCE = "\n" + FENCE;

/** What the splitter knows about the text before `rest`. */
export interface SplitState {
  /** The previous part was cut inside a code block (so this one reopens it). */
  inCode: boolean;
  /** `rest` starts at the beginning of a line. */
  atLineStart: boolean;
}

/** The state at the start of a text. */
export const TEXT_START: SplitState = { inCode: false, atLineStart: true };

/** One part, and how much of `rest` it took. */
export interface Piece {
  part: string;
  consumed: number;
  next: SplitState;
}

/**
 * `code`: keep ``` blocks and `*Label:*` cards whole when they fit in a part,
 * close and reopen a code block cut in two. Off, the text is plain.
 */
export interface SplitRules {
  code: boolean;
}

interface Block {
  /** Start of the opening fence line; -1 when the block was opened in an earlier part. */
  open: number;
  /** First character after the opening fence line. */
  content: number;
  /** Start of the closing fence line, when seen. */
  close?: number;
}

interface Layout {
  blocks: Block[];
  /** Lines starting before this index are classified. */
  known: number;
  view: string;
  ended: boolean;
}

type Place = "out" | "code" | "bad" | "unknown";

/**
 * The next part of `rest`, at most `max` UTF-16 units including any fences
 * added, or undefined when the choice could still depend on text not yet
 * seen (only when `complete` is false: `rest` may grow at its end).
 *
 * Preference: a card or code block that fits in a part is never cut (the cut
 * goes before it); then the last paragraph break, line break, sentence end,
 * space, grapheme boundary — each only past the first third of the part, so
 * that no part is a stub.
 *
 * @example
 * ```ts
 * nextPart("alpha beta gamma", TEXT_START, 12, true, { code: true })?.part; // "alpha beta "
 * ```
 */
export function nextPart(
  rest: string,
  state: SplitState,
  max: number,
  complete: boolean,
  rules: SplitRules,
): Piece | undefined {
  const prefix = !rules.code || !state.inCode ? "" : rest.startsWith("\n") ? FENCE : FENCE + "\n";
  const cap = max - prefix.length;
  if (rest.length <= cap) {
    if (!complete) return undefined;
    return { part: prefix + rest, consumed: rest.length, next: TEXT_START };
  }
  // Every rule below reads at most this far, so a longer `rest` cannot change the choice.
  const view = rest.slice(0, cap + max + 64);
  const layout = rules.code
    ? scanFences(view, state, complete && view.length === rest.length)
    : { blocks: [], known: Infinity, view, ended: complete && view.length === rest.length };
  const chosen = rules.code ? keepUnitWhole(layout, cap, max) : undefined;
  if (chosen === "unknown") return undefined;
  const cut = chosen ?? chooseCut(layout, cap);
  if (cut === undefined) return undefined;
  const inCode = cut.place === "code";
  let end = cut.at;
  // A run of whitespace stays with the part it follows, while it fits.
  if (!inCode) { while (end < cap && /\s/.test(view[end])) end++; }
  return {
    part: prefix + view.slice(0, end) +
      (!inCode ? "" : view[end - 1] === "\n" ? FENCE : CLOSE_FENCE),
    consumed: end,
    next: { inCode, atLineStart: view[end - 1] === "\n" },
  };
}

/** Finds the code blocks in `view` (fence lines are whole lines of exactly ```). */
function scanFences(view: string, state: SplitState, ended: boolean): Layout {
  const blocks: Block[] = [];
  let current: Block | undefined = state.inCode ? { open: -1, content: 0 } : undefined;
  let known = Infinity;
  let start = 0;
  let atLineStart = state.atLineStart;
  while (true) {
    const newline = view.indexOf("\n", start);
    const line = view.slice(start, newline === -1 ? view.length : newline);
    if (newline === -1 && !ended && atLineStart && FENCE.startsWith(line.slice(0, 3))) {
      // The last line may still grow into (or out of) a fence.
      known = start;
      break;
    }
    if (atLineStart && line === FENCE) {
      if (current) {
        current.close = start;
        blocks.push(current);
        current = undefined;
      } else {
        current = { open: start, content: start + FENCE.length + 1 };
      }
    }
    if (newline === -1) break;
    start = newline + 1;
    atLineStart = true;
  }
  if (current) {
    // An unclosed block runs to the end of the text, when the end is known.
    if (ended && known === Infinity) current.close = view.length + 1;
    blocks.push(current);
  }
  return { blocks, known, view, ended };
}

/** Where a cut at `at` falls: outside code, at a usable place inside, or unusable. */
function place(layout: Layout, at: number): Place {
  for (const block of layout.blocks) {
    if (at <= block.open) break;
    const close = block.close;
    if (close !== undefined && at >= close + FENCE.length) continue;
    if (at <= block.content) return "bad";
    // Cutting right before the closing fence would leave an empty block.
    if (close !== undefined) return at < close - 1 ? "code" : "bad";
    return at < layout.known - 1 ? "code" : "unknown";
  }
  return at > layout.known ? "unknown" : "out";
}

/**
 * A code block or a card (a paragraph whose first line starts `*Label:*`)
 * that crosses the end of the part but fits in a part of its own moves whole
 * to the next part.
 */
function keepUnitWhole(
  layout: Layout,
  cap: number,
  max: number,
): { at: number; place: Place } | "unknown" | undefined {
  const { view } = layout;
  let start: number | undefined;
  const where = place(layout, cap);
  if (where === "unknown") return "unknown";
  if (where !== "out") {
    const block = layout.blocks.find((b) => b.open < cap && (b.close ?? Infinity) >= cap);
    if (!block || block.open < 0) return undefined;
    if (block.close === undefined) {
      if (layout.known - block.open > max) return undefined;
      return "unknown";
    }
    if (block.close + FENCE.length - block.open > max) return undefined;
    start = block.open;
  } else {
    const unit = cardAround(layout, cap, max);
    if (unit === "unknown") return unit;
    start = unit;
  }
  if (start === undefined || view.slice(0, start).trim() === "") return undefined;
  return { at: start, place: "out" };
}

/** The start of a card that crosses `cap` and fits in `max`, if there is one. */
function cardAround(layout: Layout, cap: number, max: number): number | "unknown" | undefined {
  const { view } = layout;
  let start = 0;
  for (const match of view.slice(0, cap).matchAll(/\n[ \t]*\n/g)) {
    start = match.index + match[0].length;
  }
  for (const block of layout.blocks) {
    const end = block.close === undefined ? Infinity : block.close + FENCE.length;
    if (end <= cap) start = Math.max(start, end);
  }
  const firstLineEnd = view.indexOf("\n", start);
  const firstLine = view.slice(start, firstLineEnd === -1 ? view.length : firstLineEnd);
  if (!firstLine.startsWith("*") || !firstLine.includes(":*")) return undefined;
  const after = view.slice(start).search(/\n[ \t]*\n|\n```(?:\n|$)/);
  let end = after === -1 ? undefined : start + after;
  if (end === undefined && layout.ended) end = view.length;
  if (end === undefined) return view.length - start > max ? undefined : "unknown";
  if (end <= cap || end - start > max) return undefined;
  return start;
}

/** The best cut by boundary preference, or undefined when more text is needed. */
function chooseCut(layout: Layout, cap: number): { at: number; place: Place } | undefined {
  const { view } = layout;
  const window = view.slice(0, cap);
  const floor = Math.floor(cap / 3);
  const boundaries: RegExp[] = [/\n[ \t]*\n/g, /\n/g, /[.?!][ \t]+|[。！？]/g, /[ \t]/g];
  for (const [tier, pattern] of boundaries.entries()) {
    let best: { at: number; place: Place } | undefined;
    for (const match of window.matchAll(pattern)) {
      const end = match.index + match[0].length;
      // Inside code only line breaks (cut before the newline) and spaces are usable.
      const candidates: number[] = tier === 1 ? [end, match.index] : [end];
      // A heading stays with what it heads.
      if (tier === 0 && endsWithHeading(window, match.index)) continue;
      for (const at of candidates) {
        const where = place(layout, at);
        if (where === "unknown") return undefined;
        const usable = where === "out" ? tier !== 0 || true : where === "code" && tier !== 2;
        if (!usable || at <= floor || at > cap - (where === "code" ? CLOSE_FENCE.length : 0)) {
          continue;
        }
        if (!best || at > best.at) best = { at, place: where };
      }
    }
    if (best) return best;
  }
  return graphemeCut(layout, cap);
}

/** Whether the block ending at `end` is one bold line, as headings are rendered. */
function endsWithHeading(text: string, end: number): boolean {
  const start = text.lastIndexOf("\n", end - 1) + 1;
  return start > 0 && text[start - 2] === "\n" && /^\*[^*\n]+\*$/.test(text.slice(start, end));
}

const graphemes = new Intl.Segmenter("en", { granularity: "grapheme" });

/** The last grapheme boundary that fits; a cluster longer than a part is cut between code points. */
function graphemeCut(layout: Layout, cap: number): { at: number; place: Place } | undefined {
  const { view } = layout;
  // The look-ahead shows whether the cluster straddling `cap` ends there.
  if (view.length < cap + 64 && !layout.ended) return undefined;
  const starts: number[] = [];
  for (const { index } of graphemes.segment(view.slice(0, cap + 64))) {
    if (index > cap) break;
    if (index > 0) starts.push(index);
  }
  if (view.length <= cap + 64 && cap >= view.length) starts.push(view.length);
  for (const at of starts.reverse()) {
    const where = place(layout, at);
    if (where === "unknown") return undefined;
    if (where === "out" || (where === "code" && at + CLOSE_FENCE.length <= cap)) {
      return { at, place: where };
    }
  }
  const high = view.charCodeAt(cap - 1);
  return { at: high >= 0xd800 && high <= 0xdbff ? cap - 1 : cap, place: "out" };
}
