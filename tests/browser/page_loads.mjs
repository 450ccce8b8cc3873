// Page-load benchmark (scripts/bench.sh pages): for each page, the server's
// time to the whole HTML (p50/p99 over many requests), and in Chromium the
// time from navigation to a hydrated page, cold (a fresh browser context:
// empty cache), warm (the same context, second visit) and returning (a
// profile on disk, a visit seconds after the first), with the bytes the
// browser transferred. Figures, not assertions: docs/benchmarks.md keeps them.
import { openBrowser } from './lib.mjs';
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

async function serverTimes(path) {
  const times = [];
  let bytes = 0;
  for (let i = 0; i < requests; i++) {
    const t0 = performance.now();
    const r = await fetch(base + path);
    const body = await r.text();
    times.push(performance.now() - t0);
    bytes = body.length;
  }
  return { p50: quantile(times, 0.5), p99: quantile(times, 0.99), bytes };
}

// Marks the moment the shell sets data-hydrated on <body>.
const marker = () => {
  new MutationObserver((_, observer) => {
    if (document.body && document.body.dataset.hydrated === 'true') {
      window.__hydratedAt = performance.now();
      observer.disconnect();
    }
  }).observe(document, { attributes: true, subtree: true, attributeFilter: ['data-hydrated'] });
};

async function load(context, path) {
  const page = await context.newPage();
  await page.addInitScript(marker);
  await page.goto(base + path);
  await page.waitForSelector('body[data-hydrated="true"]', { timeout: 60_000 });
  const result = await page.evaluate(() => {
    const resources = performance.getEntriesByType('resource');
    const nav = performance.getEntriesByType('navigation')[0];
    const transferred = resources.reduce((n, r) => n + (r.transferSize || 0), nav ? nav.transferSize : 0);
    const wasm = resources.filter((r) => r.name.endsWith('.wasm')).reduce((n, r) => n + (r.encodedBodySize || 0), 0);
    return { hydrated: window.__hydratedAt, transferred, wasm };
  });
  await page.close();
  return result;
}

const { browser } = await openBrowser({ width: 1280, height: 900 });
console.log('page | server p50 ms | server p99 ms | HTML KB | hydrated cold ms (median) | hydrated warm ms (median) | hydrated returning ms (median) | transferred cold KB | wasm on the wire KB');
console.log('---|---|---|---|---|---|---|---|---');
for (const path of pages) {
  const server = await serverTimes(path);
  const cold = [];
  const warm = [];
  const returning = [];
  let first;
  for (let i = 0; i < loads; i++) {
    const context = await browser.newContext();
    const c = await load(context, path);
    const w = await load(context, path);
    await context.close();
    cold.push(c.hydrated);
    warm.push(w.hydrated);
    // Playwright's contexts are off the record, where Chromium keeps no
    // compiled wasm; a person's profile does, a few seconds after a module
    // ran. "Returning" is a visit after that, in a profile on disk.
    const dir = mkdtempSync('/tmp/sagedeck-profile-');
    const profile = await chromium.launchPersistentContext(dir, {
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    await load(profile, path);
    await new Promise((r) => setTimeout(r, 3000));
    returning.push((await load(profile, path)).hydrated);
    await profile.close();
    rmSync(dir, { recursive: true, force: true });
    first = first || c;
  }
  console.log(
    `${path} | ${server.p50.toFixed(1)} | ${server.p99.toFixed(1)} | ${(server.bytes / 1024).toFixed(0)} | ` +
      `${quantile(cold, 0.5).toFixed(0)} | ${quantile(warm, 0.5).toFixed(0)} | ${quantile(returning, 0.5).toFixed(0)} | ${(first.transferred / 1024).toFixed(0)} | ${(first.wasm / 1024).toFixed(0)}`,
  );
}
await browser.close();
