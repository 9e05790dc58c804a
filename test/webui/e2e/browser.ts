/**
 * Debian's Chromium driven by playwright-core (never `playwright install`):
 * headless, no background network, and the web admin's self-signed
 * certificate trusted by pinning its public key
 * (--ignore-certificate-errors-spki-list), not by ignoring TLS errors.
 */
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { X509Certificate, createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CHROMIUM = '/usr/bin/chromium';
export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const SCREENSHOTS = join(REPO, 'docs', 'screenshots');

export function browserSkipReason(): string | undefined {
  if (!existsSync(CHROMIUM)) return `${CHROMIUM} missing (apt-get install chromium)`;
  return undefined;
}

/** base64(SHA-256(SubjectPublicKeyInfo)) of a PEM certificate, as Chromium's SPKI pin list wants it. */
export function spkiPin(certPem: string): string {
  const spki = new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('base64');
}

export async function launch(certPem: string): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      `--ignore-certificate-errors-spki-list=${spkiPin(certPem)}`,
    ],
  });
}

export async function newContext(browser: Browser, o: { mobile?: boolean } = {}): Promise<BrowserContext> {
  return browser.newContext(
    o.mobile
      ? { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, acceptDownloads: true }
      : { viewport: { width: 1360, height: 900 }, acceptDownloads: true },
  );
}

/** Collects console errors and CSP violations of a page, so tests can assert there are none. */
export function watchConsole(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(String(e)));
  return errors;
}

export async function shot(page: Page, name: string, o: { fullPage?: boolean } = {}): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: o.fullPage ?? true, animations: 'disabled' });
}
