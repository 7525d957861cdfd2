// Headless Chromium for the dashboard tests (playwright-core driving Debian's chromium): one
// launcher and the page helpers they share.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const ARTIFACTS = path.resolve(import.meta.dirname, '..', 'artifacts');

// A persistent context in a fresh profile folder (context.userDataDir, for the caller to remove).
export async function launchBrowser({ width = 1280, height = 900 } = {}) {
  const { chromium } = await import('playwright-core');
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'chorus-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM, headless: true, viewport: { width, height },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run'],
  });
  context.userDataDir = userDataDir;
  return context;
}

// screenshot(name) and pageWait(what, fn, arg, timeoutMs) for the page that page() returns:
// pageWait waits, in the page, until fn(arg) is truthy, and on timeout saves a screenshot and
// fails with `what`.
export function pageHelpers(page) {
  async function screenshot(name) {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    await page().screenshot({ path: path.join(ARTIFACTS, `dashboard-${name}.png`), fullPage: true });
  }
  async function pageWait(what, fn, arg, timeoutMs = 30000) {
    try {
      return await page().waitForFunction(fn, arg, { timeout: timeoutMs, polling: 100 });
    } catch (e) {
      await screenshot(`failed-${what.replace(/\W+/g, '-')}`).catch(() => {});
      throw new Error(`page never showed ${what} within ${timeoutMs} ms: ${e.message}`);
    }
  }
  return { screenshot, pageWait };
}
