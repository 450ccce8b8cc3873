// An operator deploys a trained local job from the Endpoints page, then
// tests it: picks a JPEG, drops a grayscale PNG on the Test panel, sees the
// top-5 bars and the latency split, reads the raw response, and sees an
// unsupported file refused in words. Then rolls out version 2 by canary
// while requests arrive, and rolls back to version 1 in one click.
import { openBrowser, step, unexpected } from './lib.mjs';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

const base = process.env.SAGEDECK_URL;
const shots = process.env.SCREENSHOT_DIR;
const images = process.env.IMAGES_DIR;
assert.ok(base && images, 'SAGEDECK_URL and IMAGES_DIR must be set');

const { browser, page, problems } = await openBrowser({ width: 1280, height: 1000 });

async function drop(name, type, bytes) {
  const dataTransfer = await page.evaluateHandle(({ name, type, b64 }) => {
    const data = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const dt = new DataTransfer();
    dt.items.add(new File([data], name, { type }));
    return dt;
  }, { name, type, b64: Buffer.from(bytes).toString('base64') });
  await page.dispatchEvent('.dropzone', 'drop', { dataTransfer });
}

try {
  await page.goto(base + '/endpoints');
  await page.waitForSelector('body[data-hydrated="true"]', { timeout: 30_000 });
  assert.match(await page.textContent('main'), /No endpoints yet/);
  await page.waitForSelector('#deploy-local select[name="job"] option', { state: 'attached' });
  await page.fill('#deploy-local input[name="name"]', 'browser-shapes');
  await page.fill('#deploy-local input[name="instances"]', '2');
  await page.click('#deploy-local-button');
  await page.waitForURL(/\/endpoints\/local\/browser-shapes$/, { timeout: 60_000 });
  await page.waitForSelector('#endpoint[data-status="InService"]');
  assert.match(await page.textContent('#instances'), /^2 × local/);
  step('deployed the trained job as browser-shapes with 2 replicas');

  await page.setInputFiles('#test-file', `${images}/photo.jpg`);
  await page.waitForSelector('#test-panel[data-state="done"]', { timeout: 30_000 });
  assert.equal(await page.locator('#predictions .bar-row').count(), 5);
  const latency = await page.textContent('#latency');
  assert.match(latency, /Total [\d.]+ ms · model [\d.]+ ms · overhead [\d.]+ ms/);
  const top = await page.getAttribute('#predictions .bar-row >> nth=0', 'data-class');
  step(`picked photo.jpg: top class ${top}; ${latency.trim()}`);

  await page.check('#show-raw');
  assert.match(await page.textContent('#raw-response'), /^\[\[-?\d/);
  step('the raw response is the logits, [[...]]');

  await drop('gray.png', 'image/png', readFileSync(`${images}/gray.png`));
  await page.waitForFunction(() => document.querySelector('.test-answer .muted')?.textContent.includes('gray.png'));
  await page.waitForSelector('#test-panel[data-state="done"]', { timeout: 30_000 });
  assert.equal(await page.locator('#predictions .bar-row').count(), 5);
  assert.match(await page.textContent('.test-answer'), /PNG 320×240 L8/);
  if (shots) await page.screenshot({ path: `${shots}/endpoint-test.png`, fullPage: true });
  step('dropped a grayscale PNG on the panel: bars again');

  await drop('notes.txt', 'text/plain', Buffer.from('not an image'));
  await page.waitForSelector('#test-panel[data-state="failed"] .error-panel');
  assert.match(await page.textContent('.error-panel'), /text\/plain is not accepted/);
  step('a text file is refused in words (415)');

  // The charts pick the invocations up on their next refresh.
  await page.waitForFunction(() => Number(document.querySelector('#metrics-summary')?.dataset.invocations) >= 3, null, { timeout: 30_000 });
  step(`metrics: ${(await page.textContent('#metrics-summary')).trim()}`);

  // A new version by canary while requests arrive, then one click back.
  await page.waitForSelector('#version-table tr[data-version="1"][data-live="true"]');
  await page.fill('#rollout-form input[name="canary_percent"]', '50');
  await page.fill('#rollout-form input[name="hold_seconds"]', '5');
  await page.fill('#rollout-form input[name="bake_seconds"]', '2');
  await page.waitForFunction(() => document.querySelector('#rollout-plan')?.textContent.startsWith('canary 50 % for 5 s, then 100 %; bake 2 s'));
  await page.click('#start-rollout');
  await page.waitForSelector('#rollout-running[data-percent="50"]', { timeout: 30_000 });
  const png = readFileSync(`${images}/photo.png`).toString('base64');
  const versions = await page.evaluate(async (b64) => {
    const body = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    // The CSRF token echoed from its cookie, as the console's own client does.
    const csrf = document.cookie.split(';').map((c) => c.trim().split('=')).find(([k]) => k === 'sagedeck_csrf')?.[1] ?? '';
    const seen = {};
    for (let i = 0; i < 30; i++) {
      const r = await fetch('/endpoints/browser-shapes/invocations', { method: 'POST', headers: { 'content-type': 'image/png', 'x-sagedeck-csrf': csrf }, body });
      const v = `${r.status} v${r.headers.get('x-sagedeck-model-version')}`;
      seen[v] = (seen[v] || 0) + 1;
    }
    return seen;
  }, png);
  assert.deepEqual(Object.keys(versions).sort(), ['200 v1', '200 v2'], JSON.stringify(versions));
  // The page's next look (every second while a rollout runs) counts them per version.
  await page.waitForFunction(() => {
    const cells = [...document.querySelectorAll('#rollout-compare tbody tr:first-child td')].map((td) => Number(td.textContent));
    return cells.length === 2 && cells[0] > 0 && cells[1] > 0;
  });
  if (shots) await page.screenshot({ path: `${shots}/endpoint-rollout.png`, fullPage: true });
  step(`canary at 50 %: 30 requests answered ${JSON.stringify(versions)}; both versions compared side by side`);
  await page.waitForSelector('#version-table tr[data-version="2"][data-live="true"]', { timeout: 30_000 });
  assert.match(await page.textContent('#rollout-table tr[data-state="completed"]'), /version 2 serves all traffic/);
  await page.click('text=Roll back to v1');
  await page.click('text=Yes, roll back to v1');
  await page.waitForSelector('#version-table tr[data-version="1"][data-live="true"]', { timeout: 30_000 });
  step('the rollout completed (version 2 live), and one click rolled back to version 1');

  // A shadow test of the chosen job (the live model's own job) on the test split: they must agree everywhere.
  await page.fill('input[name="shadow_folder"]', `${process.env.DATA_DIR}/test`);
  await page.click('#run-shadow');
  await page.waitForSelector('#shadow-report', { timeout: 60_000 });
  assert.equal(await page.getAttribute('#shadow-report', 'data-agreement'), '100.0');
  step(`shadow test: ${(await page.textContent('#shadow-agreement')).trim()}`);

  await page.click('text=← All endpoints');
  await page.waitForSelector('#endpoints tr[data-endpoint="browser-shapes"][data-backend="local"]');
  step('the list shows browser-shapes, running locally');

  // The filters live in the URL and are counted on the server.
  await page.selectOption('select[name="status-filter"]', 'Failed');
  await page.waitForURL(/\/endpoints\?status=Failed$/);
  await page.waitForSelector('text=No endpoint matches these filters.');
  await page.reload();
  await page.waitForSelector('text=No endpoint matches these filters.');
  await page.selectOption('select[name="status-filter"]', 'InService');
  await page.fill('input[name="name-filter"]', 'SHAPES');
  await page.waitForURL(/\/endpoints\?status=InService&q=SHAPES$/);
  await page.waitForSelector('#endpoints tr[data-endpoint="browser-shapes"]');
  assert.match(await page.textContent('#endpoints-count'), /^1 of 1 endpoint · 1 local, 0 on SageMaker/);
  step('the status and name filters are in the URL, survive a reload and count what matches');

  assert.deepEqual(unexpected(problems), [], 'no page or console errors');
  console.log('browser: all checks passed');
} catch (e) {
  if (shots) await page.screenshot({ path: `${shots}/endpoints-failure.png`, fullPage: true }).catch(() => {});
  console.error(`browser: FAILED at ${page.url()}\n${e.stack || e}`);
  if (problems.length) console.error(problems.join('\n'));
  process.exitCode = 1;
} finally {
  await browser.close();
}
