/**
 * Golden tests: realistic AYD answers (`tests/fixtures/golden/*.md`) and the
 * WhatsApp parts they become (`*.txt`, parts separated by a `----- part N -----`
 * line). After a deliberate change of the output, rewrite the goldens with
 * `UPDATE_GOLDEN=1 deno test -A tests/whatsapp/golden_test.ts` and review the diff.
 */
import assert from "node:assert/strict";
import { formatAnswer } from "../../src/whatsapp/format.ts";

const DIR = new URL("../fixtures/golden/", import.meta.url);
const update = Deno.env.get("UPDATE_GOLDEN") === "1";

function render(parts: string[]): string {
  return parts.map((part, i) => `----- part ${i + 1} -----\n${part}`).join("\n") + "\n";
}

const inputs = [...Deno.readDirSync(DIR)].filter((e) => e.name.endsWith(".md")).map((e) => e.name)
  .sort();

Deno.test("golden - every fixture has its expected output", () => {
  assert.ok(inputs.length >= 6, "the fixtures are there");
});

for (const name of inputs) {
  Deno.test(`golden - ${name}`, async () => {
    const markdown = await Deno.readTextFile(new URL(name, DIR));
    const actual = render(formatAnswer(markdown, 1600));
    const goldenUrl = new URL(name.replace(/\.md$/, ".txt"), DIR);
    if (update) await Deno.writeTextFile(goldenUrl, actual);
    assert.equal(actual, await Deno.readTextFile(goldenUrl));
  });
}
