/**
 * A real browser for the dashboard tests: Debian's chromium driven by playwright-core, headless,
 * with a fresh profile each time. When chromium is missing the setup installs it with apt-get
 * (as root), else the tests skip with the reason printed.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/** Flags from the machine notes: no sandbox (root in a container), no network of its own. */
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Where screenshots go (gitignored). */
export const ARTIFACTS = resolve(import.meta.dirname, '../../test-artifacts/dashboard');

/**
 * Makes sure chromium is there. Resolves `undefined` when it is, else the reason the browser
 * tests cannot run (printed by the caller before skipping).
 */
export function ensureChromium(): string | undefined {
  if (existsSync(CHROMIUM)) return undefined;
  if (process.platform !== 'linux' || process.getuid?.() !== 0)
    return `${CHROMIUM} is missing and these tests do not run as root, so they cannot install it: run \`apt-get install -y chromium\``;
  try {
    console.log(`[dashboard tests] ${CHROMIUM} is missing: apt-get install -y chromium`);
    execFileSync('apt-get', ['install', '-y', 'chromium'], {
      stdio: 'inherit',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      timeout: 15 * 60_000,
    });
  } catch (e) {
    return `apt-get install -y chromium failed (${(e as Error).message}); install chromium to run the dashboard tests`;
  }
  return existsSync(CHROMIUM)
    ? undefined
    : `apt-get installed chromium but ${CHROMIUM} is still missing`;
}

/** A browser profile, its pages, and every URL any of its pages requested. */
export interface TestBrowser {
  context: BrowserContext;
  page: Page;
  requests: string[];
  close(): Promise<void>;
}

export async function openBrowser(): Promise<TestBrowser> {
  const profile = mkdtempSync(join(tmpdir(), 'keel-dashboard-profile-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    viewport: { width: 1280, height: 860 },
    colorScheme: 'light',
  });
  const requests: string[] = [];
  context.on('request', (r) => requests.push(r.url()));
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    context,
    page,
    requests,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Saves a full-page screenshot as `test-artifacts/dashboard/<name>.png`. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}
