/**
 * Debian's headless Chromium for the browser tests, through playwright-core: one launch for every test file, with
 * the flags this closed network needs (no background networking: Chromium's own connections would be refused many
 * at a time) and every request to a host other than loopback blocked and remembered (Bull Board's page asks for
 * Google Fonts). The tests skip, with the reason, only when /usr/bin/chromium is absent.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
export const HAVE_CHROMIUM = existsSync(CHROMIUM);
if (!HAVE_CHROMIUM) console.warn(`browser tests skipped: ${CHROMIUM} is absent (CI installs it: apt-get install -y chromium)`);

const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export interface Browser {
  context: BrowserContext;
  /** URLs of requests to hosts other than loopback, each aborted. */
  blocked: string[];
  /** Closes the browser and removes its profile. */
  close(): Promise<void>;
}

/** A fresh persistent context (its own empty profile) logged in with `credentials` when given. */
export async function launchBrowser(opts: { credentials?: { username: string; password: string }; viewport?: { width: number; height: number }; acceptDownloads?: boolean } = {}): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'upscale-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    args: ARGS,
    headless: true,
    acceptDownloads: opts.acceptDownloads ?? false,
    viewport: opts.viewport ?? { width: 1280, height: 800 },
    ...(opts.credentials ? { httpCredentials: opts.credentials } : {}),
  });
  const blocked: string[] = [];
  await context.route('**/*', (route) => {
    const host = new URL(route.request().url()).hostname;
    if (host === '127.0.0.1' || host === 'localhost' || host === '[::1]') return route.continue();
    blocked.push(route.request().url());
    return route.abort();
  });
  return {
    context,
    blocked,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
