// The same Test panel on a SageMaker endpoint (moto): the endpoint's page
// shows its variant, a pasted URL goes through sagemaker-runtime as the
// seeds' Lambda sends it ({"url": ...}), and the canned logits come back as
// probability bars with the total latency.
import { openBrowser, step, unexpected } from './lib.mjs';
import assert from 'node:assert/strict';

const base = process.env.SAGEDECK_URL;
const name = process.env.ENDPOINT_NAME;
assert.ok(base && name, 'SAGEDECK_URL and ENDPOINT_NAME must be set');

const { browser, page, problems } = await openBrowser({ width: 1280, height: 900 });

try {
  await page.goto(base + '/endpoints');
  await page.waitForSelector('body[data-hydrated="true"]', { timeout: 30_000 });
  await page.waitForSelector(`#endpoints tr[data-endpoint="${name}"][data-backend="sagemaker"]`);
  await page.click(`#endpoints tr[data-endpoint="${name}"] a`);
  await page.waitForURL(new RegExp(`/endpoints/sagemaker/${name}$`));
  await page.waitForSelector('#endpoint[data-status="InService"]');
  assert.match(await page.textContent('#variants'), /AllTraffic.*ml\.m5\.large/s);
  step(`opened ${name}: InService, variant AllTraffic on ml.m5.large`);

  await page.fill('.url-form input[name="url"]', 'https://example.com/dog.jpg');
  await page.click('text=Invoke with URL');
  await page.waitForSelector('#test-panel[data-state="done"]', { timeout: 30_000 });
  assert.equal(await page.locator('#predictions .bar-row').count(), 4);
  assert.equal(await page.getAttribute('#predictions .bar-row >> nth=0', 'data-class'), 'class 1');
  assert.match(await page.textContent('#latency'), /Total [\d.]+ ms \(through the console and sagemaker-runtime\)/);
  step('a pasted URL went through sagemaker-runtime; the bars show class 1 first');

  assert.deepEqual(unexpected(problems), [], 'no page or console errors');
  console.log('browser: all checks passed');
} catch (e) {
  console.error(`browser: FAILED at ${page.url()}\n${e.stack || e}`);
  if (problems.length) console.error(problems.join('\n'));
  process.exitCode = 1;
} finally {
  await browser.close();
}
