/**
 * What a person reads before the answer to a voice note: what the bridge
 * understood, in WhatsApp italics, so a misheard question is seen at once.
 *
 * @module
 */

const PREFIX = "🎤 _";
const SUFFIX = "_";

/**
 * `🎤 _the transcript_`, on one line and at most `maxChars` long (cut at a
 * word, with "…"). Underscores, which would end the italics early, become
 * spaces.
 *
 * @example
 * ```ts
 * transcriptEcho("how many orders\nshipped late?"); // "🎤 _how many orders shipped late?_"
 * ```
 */
export function transcriptEcho(transcript: string, maxChars = 1600): string {
  const words = transcript.replace(/_/g, " ").replace(/\s+/g, " ").trim();
  const room = maxChars - PREFIX.length - SUFFIX.length;
  if (words.length <= room) return PREFIX + words + SUFFIX;
  const cut = words.slice(0, room - 1);
  const atWord = cut.lastIndexOf(" ") > room / 2 ? cut.slice(0, cut.lastIndexOf(" ")) : cut;
  // Never end on half of a surrogate pair.
  const whole = /[\uD800-\uDBFF]$/.test(atWord) ? atWord.slice(0, -1) : atWord;
  return PREFIX + whole.trimEnd() + "…" + SUFFIX;
}
