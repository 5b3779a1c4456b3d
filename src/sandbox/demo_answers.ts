/**
 * What the demo AYD knows: a few scripted topics answered in Markdown, as a
 * real AYD chatbot answers, and a helpful fallback listing them.
 *
 * @module
 */

/** One scripted answer: Markdown text and, for charts, image paths. */
export interface DemoAnswer {
  topic: string;
  markdown: string;
  /** Paths on the sandbox server, e.g. `/sandbox/charts/revenue.svg`. */
  charts: string[];
}

/** The questions the demo answers, as the fallback suggests them. */
export const DEMO_TOPICS = ["late orders", "top customers", "revenue chart", "long report"];

const LATE_ORDERS = `## Late orders last week

**3 orders** shipped after their promised date:

| Order | Customer | Days late |
|------:|----------|----------:|
| 1042 | Acme GmbH | 2 |
| 1057 | Globex | 1 |
| 1063 | Initech | 4 |

Most delays came from the _Rotterdam_ warehouse. Order \`1063\` is still ~~in transit~~ delivered as of today.`;

const TOP_CUSTOMERS = `### Top customers this quarter

| Customer | Country | Orders | Revenue (EUR) | Account manager |
|----------|---------|-------:|--------------:|-----------------|
| Acme GmbH | Germany | 128 | 412,300.00 | Maria Schneider |
| Globex Corporation | United States | 97 | 388,950.50 | James Whitfield |
| Initech Solutions | United Kingdom | 85 | 301,120.75 | Priya Raman |

Together they bring **42%** of the quarter's revenue.`;

const REVENUE_CHART = `Here is **monthly revenue** for this year:

- Highest: *June*, EUR 1.31M
- Lowest: *February*, EUR 0.74M
- Trend: up **18%** since January

The chart follows.`;

const MONTHS = ["January", "February", "March", "April", "May", "June"];

function longReport(): string {
  const sections = MONTHS.map((month, i) =>
    `### ${month}\n\n` +
    `Revenue reached **EUR ${(0.9 + i * 0.08).toFixed(2)}M** from ${310 + i * 17} orders. ` +
    `The average basket was EUR ${(412 + i * 9).toFixed(2)} and ${4 + (i % 3)}% of orders ` +
    `shipped late, mostly from the _Rotterdam_ warehouse. Returns stayed below ${2 + (i % 2)}%, ` +
    `and the three largest customers placed ${28 + i * 3}% of all orders. ` +
    `Support answered ${520 + i * 40} tickets with a median first reply of ${3 + (i % 4)} hours; ` +
    `the most common topic was delivery tracking, followed by invoice corrections and ` +
    `address changes.`
  );
  return `## Half-year report\n\n${sections.join("\n\n")}\n\n` +
    "**Summary:** revenue grew every month; late shipments are the one number to watch.";
}

const FALLBACK =
  `I'm the **demo** AskYourDatabase chatbot of this sandbox: I only know a few topics.

Try one of these:
${DEMO_TOPICS.map((topic) => `- *${topic}*`).join("\n")}

Send *help* for the bridge's own help, *reset* to start a new conversation.`;

/**
 * The scripted answer for `question`, by keyword; anything else gets the
 * fallback.
 *
 * @example
 * ```ts
 * demoAnswer("Which orders were late?").topic; // "late orders"
 * ```
 */
export function demoAnswer(question: string): DemoAnswer {
  const q = question.toLowerCase();
  const answer = (topic: string, markdown: string, charts: string[] = []) => ({
    topic,
    markdown,
    charts,
  });
  if (/\blate\b/.test(q)) return answer("late orders", LATE_ORDERS);
  if (/customer/.test(q)) return answer("top customers", TOP_CUSTOMERS);
  if (/revenue|chart/.test(q)) {
    return answer("revenue chart", REVENUE_CHART, ["/sandbox/charts/revenue.svg"]);
  }
  if (/report|long/.test(q)) return answer("long report", longReport());
  return answer("fallback", FALLBACK);
}

/**
 * The revenue chart as an SVG bar chart (served by the sandbox, no internet needed).
 *
 * @example
 * ```ts
 * new Response(revenueChartSvg(), { headers: { "content-type": "image/svg+xml" } });
 * ```
 */
export function revenueChartSvg(): string {
  const values = [0.92, 0.74, 1.02, 1.08, 1.17, 1.31];
  const bars = values.map((value, i) => {
    const height = Math.round(value * 120);
    const x = 50 + i * 55;
    return `<rect x="${x}" y="${200 - height}" width="36" height="${height}" fill="#25a244"/>` +
      `<text x="${x + 18}" y="${192 - height}" text-anchor="middle">${value.toFixed(2)}</text>` +
      `<text x="${x + 18}" y="218" text-anchor="middle">${MONTHS[i].slice(0, 3)}</text>`;
  }).join("");
  return `<svg xmlns="http://www.w3.org/2000/svg" width="400" height="250" ` +
    `viewBox="0 0 400 250" font-family="sans-serif" font-size="12">` +
    `<rect width="400" height="250" fill="#fff"/>` +
    `<text x="200" y="240" text-anchor="middle" font-weight="bold">Revenue, EUR millions</text>` +
    `<line x1="40" y1="200" x2="390" y2="200" stroke="#999"/>${bars}</svg>`;
}
