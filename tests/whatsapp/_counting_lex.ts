/** A Markdown lexer that counts what it is given: work measured without a clock. */
import { lexMarkdown } from "../../src/whatsapp/_blocks.ts";
import type { Lex } from "../../src/whatsapp/markdown.ts";

/**
 * The project's lexer, counting the characters passed to it.
 *
 * @example
 * ```ts
 * const counted = countingLex();
 * createMarkdownStream(undefined, { lex: counted.lex }).push("- a\n");
 * counted.chars; // 4
 * ```
 */
export function countingLex(): { lex: Lex; readonly chars: number } {
  let chars = 0;
  return {
    lex: (markdown, links) => {
      chars += markdown.length;
      return lexMarkdown(markdown, links);
    },
    get chars() {
      return chars;
    },
  };
}
