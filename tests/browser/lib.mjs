// What both browser scripts share: Debian's Chromium launched headless with
// background networking off, and a page that collects page and console errors.
import { chromium } from 'playwright-core';

// How every script starts Chromium, a throwaway browser or a profile on disk.
export const chromiumLaunch = {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
};

export async function openBrowser(viewport) {
  const browser = await chromium.launch(chromiumLaunch);
  const page = await browser.newPage({ viewport });
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console error: ${m.text()}`); });
  return { browser, page, problems };
}

export const step = (what) => console.log(`browser: ${what}`);

// Problems other than failed resource loads: a script that provokes an error
// answer on purpose (a 415, a 503) sees the browser log it as one.
export const unexpected = (problems) => problems.filter((p) => !p.includes('Failed to load resource'));
