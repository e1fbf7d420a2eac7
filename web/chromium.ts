/**
 * Debian's Chromium, headless, driven through `puppeteer-core` (pinned in deno.json; it never downloads a browser: it
 * is pointed at the Debian binary). Used by tests/browser_test.ts, bench/browser_heap.ts and bench/browser_run.ts.
 *
 * @module
 */
import puppeteer, { type Browser } from "puppeteer-core";

/** The Chromium binary: `$CHROMIUM`, or Debian's `/usr/bin/chromium`. */
export const CHROMIUM = Deno.env.get("CHROMIUM") ?? "/usr/bin/chromium";

/** Whether Chromium is installed (the browser tests are skipped, with this reason, when it is not). */
export function chromiumMissing(): string | undefined {
  try {
    Deno.statSync(CHROMIUM);
    return undefined;
  } catch {
    return `${CHROMIUM} is not installed (apt-get install chromium; .ci/run does it)`;
  }
}

/** The flags every launch uses: no sandbox (root in CI), no GPU, nothing reaching out to the network. */
export const CHROMIUM_FLAGS: readonly string[] = Object.freeze([
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-dev-shm-usage",
]);

/** A launched browser with its own fresh profile folder; `close()` removes it. */
export interface LaunchedBrowser {
  browser: Browser;
  close(): Promise<void>;
}

/** Launches headless Chromium with a fresh `--user-data-dir` (and `extra` flags). */
export async function launchChromium(extra: string[] = []): Promise<LaunchedBrowser> {
  const profile = await Deno.makeTempDir({ prefix: "convpress-chromium-" });
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [...CHROMIUM_FLAGS, `--user-data-dir=${profile}`, ...extra],
    defaultViewport: { width: 1100, height: 900 },
  });
  return {
    browser,
    async close() {
      await browser.close().catch(() => {});
      await Deno.remove(profile, { recursive: true }).catch(() => {});
    },
  };
}
