/**
 * WhatsApp's own markup rendered as HTML, the way the app shows a message:
 * `*bold*`, `_italic_`, `~strike~`, `` `code` ``, ```` ``` ```` blocks, `> `
 * quotes and bare links. The sandbox page runs this very function in the
 * browser (it is inlined with `toString()`), so it uses nothing from outside
 * its own body.
 *
 * @module
 */

/**
 * Escapes `text` first, then styles it; a marker is honoured only at word
 * boundaries and within one line, as WhatsApp does, so `order_id` and `a*b`
 * stay as they are.
 *
 * @example
 * ```ts
 * renderWhatsApp("*3 orders* by `customer_id` <b>");
 * // "<strong>3 orders</strong> by <code>customer_id</code> &lt;b&gt;"
 * ```
 */
export function renderWhatsApp(text: string): string {
  const held: string[] = [];
  // Finished HTML is parked behind a private-use placeholder so later rules skip it.
  const hold = (html: string) => "\uE000" + (held.push(html) - 1) + "\uE001";
  let html = text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
  // A block's own line breaks around it would show as blank lines.
  html = html.replace(
    /```\n?([\s\S]*?)\n?```\n?/g,
    (_all, code: string) => hold(`<pre>${code}</pre>`),
  );
  html = html.replace(/`([^`\n]+)`/g, (_all, code: string) => hold(`<code>${code}</code>`));
  html = html.replace(
    /\bhttps?:\/\/[^\s\uE000]+[^\s\uE000.,;:!?)\]]/g,
    (url) => hold(`<a href="${url}" target="_blank" rel="noopener noreferrer">${url}</a>`),
  );
  const styles: [string, string][] = [["\\*", "strong"], ["_", "em"], ["~", "del"]];
  for (const [marker, tag] of styles) {
    const pattern = new RegExp(
      `(^|[\\s\\p{P}\\p{S}])${marker}(?=[^\\s${marker}])([^\\n]*?[^\\s${marker}])${marker}` +
        `(?=$|[\\s\\p{P}\\p{S}])`,
      "gmu",
    );
    html = html.replace(pattern, `$1<${tag}>$2</${tag}>`);
  }
  html = html.replace(/^&gt; ?(.*)$/gm, '<span class="quote">$1</span>');
  for (let i = held.length - 1; i >= 0; i--) {
    html = html.replace("\uE000" + i + "\uE001", () => held[i]);
  }
  return html;
}
