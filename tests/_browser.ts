/**
 * A real headless Chromium for the browser tests, driven by puppeteer-core
 * (playwright-core needs Deno's `--allow-all` to load). The browser is
 * Debian's `chromium` package, which `.ci/run` installs when missing; without
 * it the browser tests fail and say how to install it.
 */
import puppeteer, { type Browser, type Page } from "puppeteer-core";

export type { Browser, Page };

const CANDIDATES = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"];

/**
 * `CHROMIUM_PATH`, else the first Chromium found in the usual places; throws
 * with how to install one if none.
 *
 * @example
 * ```ts
 * puppeteer.launch({ executablePath: findChromium() });
 * ```
 */
export function findChromium(): string {
  const given = Deno.env.get("CHROMIUM_PATH");
  for (const path of given ? [given] : CANDIDATES) {
    try {
      if (Deno.statSync(path).isFile) return path;
    } catch { /* not there */ }
  }
  throw new Error(
    `No Chromium found (${given ? `CHROMIUM_PATH=${given}` : CANDIDATES.join(", ")}). ` +
      "Install Debian's package: apt-get install -y chromium (bash .ci/run does it), " +
      "or set CHROMIUM_PATH to a Chromium or Chrome executable.",
  );
}

/**
 * Launches headless Chromium; dispose it (or call `close()`) when done.
 * `args` adds Chromium flags (e.g. a fake microphone).
 *
 * @example
 * ```ts
 * await using browser = await launchBrowser();
 * const page = await browser.newPage();
 * ```
 */
export async function launchBrowser(args: string[] = []): Promise<Browser & AsyncDisposable> {
  const browser = await puppeteer.launch({
    executablePath: findChromium(),
    headless: true,
    // Root in a container has no user namespaces for Chromium's sandbox.
    args: [
      "--no-sandbox",
      "--disable-dev-shm-usage",
      "--disable-gpu",
      "--disable-partial-raster",
      "--disable-threaded-animation",
      "--disable-checker-imaging",
      ...args,
    ],
  });
  return Object.assign(browser, { [Symbol.asyncDispose]: () => browser.close() });
}

/**
 * Runs `fn` with a fresh browser and closes it afterwards, whatever happens.
 *
 * @example
 * ```ts
 * await withBrowser(async (browser) => {
 *   const page = await browser.newPage();
 *   await page.goto(url);
 * });
 * ```
 */
export async function withBrowser<T>(fn: (browser: Browser) => Promise<T>): Promise<T> {
  const browser = await launchBrowser();
  try {
    return await fn(browser);
  } finally {
    await browser.close();
  }
}

/**
 * The texts of every element matching `selector`, in document order.
 *
 * @example
 * ```ts
 * const replies = await textsOf(page, ".msg.theirs .text");
 * ```
 */
export function textsOf(page: Page, selector: string): Promise<string[]> {
  return page.$$eval(selector, (elements) => elements.map((e) => e.textContent ?? ""));
}
