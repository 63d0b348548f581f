// Debian's Chromium, headless, driven by playwright-core (never a downloaded browser),
// with a fresh profile and the flags this machine's closed network needs.

import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 375, height: 740 };

export const SCREENSHOTS = resolve(import.meta.dirname, '../../../../test-artifacts/screenshots');

export interface Browser {
  context: BrowserContext;
  page: Page;
  /** Saves a full-page PNG as test-artifacts/screenshots/<name>-<size>.png. */
  screenshot: (name: string, size: 'desktop' | 'phone') => Promise<string>;
  close: () => Promise<void>;
}

export async function launch(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    // Never a silent skip: a missing browser is a failed test (CI or not).
    throw new Error(`${CHROMIUM} is missing: run ./dev services (it installs Debian's chromium)`);
  }
  const profile = await mkdtemp(join(tmpdir(), 'dw-e2e-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: DESKTOP,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync'
    ]
  });
  await mkdir(SCREENSHOTS, { recursive: true });
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    context,
    page,
    async screenshot(name, size) {
      const path = join(SCREENSHOTS, `${name}-${size}.png`);
      await page.screenshot({ path, fullPage: true });
      return path;
    },
    async close() {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    }
  };
}
