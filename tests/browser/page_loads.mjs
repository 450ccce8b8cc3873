// Page-load benchmark (scripts/bench.sh pages): for each page, the server's
// time to the whole HTML (p50/p99 over many requests, after WARMUP=5 not
// counted), and in Chromium the
// time from navigation to a hydrated page, cold (a fresh browser context:
// empty cache), warm (the same context, second visit, a new tab), returning
// (a profile on disk, a new tab seconds after the first visit) and same tab
// (that tab loading the page again, as a reload or a typed address does),
// with the bytes the browser transferred. Figures, not assertions:
// docs/benchmarks.md keeps them.
import { chromiumLaunch, openBrowser } from './lib.mjs';
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';

const base = process.env.SAGEDECK_URL;
const pages = (process.env.PAGES || '/,/training,/endpoints,/scaling,/lambda,/iam,/journal,/notebooks').split(',');
const requests = Number(process.env.REQUESTS || 200);
const loads = Number(process.env.LOADS || 5);

const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};

// The first requests of each page are not counted: they time this client
// warming up (Node's fetch compiling its own code; on the first page the
// browser just launched beside it): 70-230 ms for the first / here, while
// curl had a fresh console's first answer in 9 ms. In a p99 of 200 they
// were the p99.
const warmup = Number(process.env.WARMUP || 5);

async function serverTimes(path) {
  const get = async () => {
    const t0 = performance.now();
    const body = await (await fetch(base + path)).text();
    return { ms: performance.now() - t0, bytes: body.length };
  };
  for (let i = 0; i < warmup; i++) await get();
  const times = [];
  let bytes = 0;
  for (let i = 0; i < requests; i++) {
    const r = await get();
    times.push(r.ms);
    bytes = r.bytes;
  }
  return { p50: quantile(times, 0.5), p99: quantile(times, 0.99), bytes };
}

// Logs the moment the shell sets data-hydrated on <body>, on the Performance
// API's clock (from navigation start). The benchmark waits for this console
// line instead of asking the page: Playwright's waitForSelector injects and
// runs its own script in the page while it loads (about 10 ms of the main
// thread in a trace), which the measurement would otherwise count.
const MARK = 'sagedeck-hydrated ';
const marker = (mark) => {
  new MutationObserver((_, observer) => {
    if (document.body && document.body.dataset.hydrated === 'true') {
      console.debug(mark + performance.now());
      observer.disconnect();
    }
  }).observe(document, { attributes: true, subtree: true, attributeFilter: ['data-hydrated'] });
};

// Navigates `page` to `path` and answers the time to hydrated and what the
// load transferred.
async function visit(page, path) {
  let onConsole;
  const hydrated = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${path} did not hydrate in 60 s`)), 60_000);
    onConsole = (m) => {
      if (m.text().startsWith(MARK)) {
        clearTimeout(timer);
        resolve(Number(m.text().slice(MARK.length)));
      }
    };
    page.on('console', onConsole);
  });
  await page.goto(base + path, { waitUntil: 'commit' });
  const at = await hydrated;
  page.off('console', onConsole);
  const bytes = await page.evaluate(() => {
    const resources = performance.getEntriesByType('resource');
    const nav = performance.getEntriesByType('navigation')[0];
    const transferred = resources.reduce((n, r) => n + (r.transferSize || 0), nav ? nav.transferSize : 0);
    const wasm = resources.filter((r) => r.name.endsWith('.wasm')).reduce((n, r) => n + (r.encodedBodySize || 0), 0);
    return { transferred, wasm };
  });
  return { hydrated: at, ...bytes };
}

async function newTab(context) {
  const page = await context.newPage();
  await page.addInitScript(marker, MARK);
  return page;
}

// A new tab's visit, the tab closed after it.
async function load(context, path) {
  const page = await newTab(context);
  const result = await visit(page, path);
  await page.close();
  return result;
}

const pause = (ms) => new Promise((r) => setTimeout(r, ms));

const { browser } = await openBrowser({ width: 1280, height: 900 });
console.log('page | server p50 ms | server p99 ms | HTML KB | hydrated cold ms (median) | hydrated warm ms (median) | hydrated returning ms (median) | hydrated same tab ms (median) | transferred cold KB | wasm on the wire KB');
console.log('---|---|---|---|---|---|---|---|---|---');
for (const path of pages) {
  const server = await serverTimes(path);
  const cold = [];
  const warm = [];
  const returning = [];
  const sameTab = [];
  let first;
  for (let i = 0; i < loads; i++) {
    const context = await browser.newContext();
    const c = await load(context, path);
    const w = await load(context, path);
    await context.close();
    cold.push(c.hydrated);
    warm.push(w.hydrated);
    // Playwright's contexts are off the record; a person's profile is on
    // disk. "Returning" is a new tab in such a profile, seconds after a
    // first visit; "same tab" is that tab loading the page again 3 s later,
    // in the renderer that already runs the page's module.
    const dir = mkdtempSync('/tmp/sagedeck-profile-');
    const profile = await chromium.launchPersistentContext(dir, chromiumLaunch);
    await load(profile, path);
    await pause(3000);
    const tab = await newTab(profile);
    returning.push((await visit(tab, path)).hydrated);
    await pause(3000);
    sameTab.push((await visit(tab, path)).hydrated);
    await profile.close();
    rmSync(dir, { recursive: true, force: true });
    first = first || c;
  }
  console.log(
    `${path} | ${server.p50.toFixed(1)} | ${server.p99.toFixed(1)} | ${(server.bytes / 1024).toFixed(0)} | ` +
      `${quantile(cold, 0.5).toFixed(0)} | ${quantile(warm, 0.5).toFixed(0)} | ${quantile(returning, 0.5).toFixed(0)} | ${quantile(sameTab, 0.5).toFixed(0)} | ${(first.transferred / 1024).toFixed(0)} | ${(first.wasm / 1024).toFixed(0)}`,
  );
}
await browser.close();
