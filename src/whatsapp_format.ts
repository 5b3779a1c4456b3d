/**
 * Fitting answers into WhatsApp messages.
 *
 * @module
 */

const graphemes = new Intl.Segmenter("en", { granularity: "grapheme" });

/**
 * Splits `text` into consecutive parts of at most `maxChars` UTF-16 code
 * units (what Twilio's 1,600-character limit counts, or stricter), cutting at
 * a paragraph break, else a line break, else a space, else between grapheme
 * clusters. Joining the parts gives back `text` exactly.
 *
 * @example
 * ```ts
 * splitMessage("first paragraph\n\nsecond paragraph", 20);
 * // ["first paragraph\n\n", "second paragraph"]
 * ```
 */
export function splitMessage(text: string, maxChars: number): string[] {
  if (maxChars < 1) throw new RangeError("maxChars must be at least 1");
  const parts: string[] = [];
  let rest = text;
  while (rest.length > maxChars) {
    const cut = cutPoint(rest, maxChars);
    parts.push(rest.slice(0, cut));
    rest = rest.slice(cut);
  }
  if (rest.length > 0) {
    const last = parts.length - 1;
    // A tail of only whitespace would be an empty-looking message.
    if (last >= 0 && rest.trim() === "" && parts[last].length + rest.length <= maxChars) {
      parts[last] += rest;
    } else {
      parts.push(rest);
    }
  }
  return parts;
}

/** Where to end the next part of `text`, which is longer than `max`. */
function cutPoint(text: string, max: number): number {
  const window = text.slice(0, max);
  // A boundary in the first third would leave a stub of a part; look further.
  const floor = Math.floor(max / 3);
  for (const boundary of [/\n[ \t]*\n/g, /\n/g, /[ \t]/g]) {
    const end = lastMatchEnd(window, boundary);
    if (end > floor) return extendOverWhitespace(text, end, max);
  }
  return lastGraphemeBoundary(text, max);
}

function lastMatchEnd(window: string, pattern: RegExp): number {
  let end = -1;
  for (const match of window.matchAll(pattern)) end = match.index + match[0].length;
  return end;
}

/** Keeps a run of whitespace with the part it follows, while it fits. */
function extendOverWhitespace(text: string, end: number, max: number): number {
  while (end < max && /\s/.test(text[end])) end++;
  return end;
}

function lastGraphemeBoundary(text: string, max: number): number {
  let boundary = 0;
  // The look-ahead shows whether the cluster straddling `max` ends there.
  for (const { index } of graphemes.segment(text.slice(0, max + 64))) {
    if (index > max) break;
    boundary = index;
  }
  if (boundary > 0) return boundary;
  // One grapheme longer than a whole part: cut it between code points.
  const high = text.charCodeAt(max - 1);
  return high >= 0xd800 && high <= 0xdbff ? max - 1 : max;
}
