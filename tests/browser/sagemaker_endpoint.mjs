// The same Test panel on a SageMaker endpoint (moto): the endpoint's page
// shows its variant, a pasted URL goes through sagemaker-runtime as the
// seeds' Lambda sends it ({"url": ...}), and the canned logits come back as
// probability bars with the total latency. Then the operator adds a 5XX
// alarm from the page and rolls out a new model (a second completed job)
// to two instances by canary, rolled back by that alarm: the page shows
// the plan, the endpoint reads as Updating, and once the stand-in (moto has
// no UpdateEndpoint) reports it done, the rollback is offered.
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

  const shots = process.env.SCREENSHOT_DIR;
  await page.selectOption('#alarm-form select[name="alarm_kind"]', 'ErrorRate');
  await page.fill('#alarm-form input[name="alarm_threshold"]', '2');
  await page.waitForFunction(() => document.querySelector('#alarm-explained')?.textContent.includes('5XX errors above 2 % of invocations in 2 of 3 periods of 1 min'));
  await page.click('#put-alarm');
  await page.waitForSelector(`#alarm-table tr[data-alarm="sagedeck-${name}-5xx-rate"]`);
  step(`created the alarm sagedeck-${name}-5xx-rate in CloudWatch from the page`);

  await page.waitForSelector(`#rollout-alarms input[value="sagedeck-${name}-5xx-rate"]`);
  await page.check(`#rollout-alarms input[value="sagedeck-${name}-5xx-rate"]`);
  await page.waitForSelector(`#sagemaker-rollout-form select[name="sm_rollout_job"] option[value="${process.env.NEXT_JOB}"]`, { state: 'attached' });
  await page.selectOption('#sagemaker-rollout-form select[name="sm_rollout_job"]', process.env.NEXT_JOB);
  await page.fill('#sagemaker-rollout-form input[name="sm_rollout_count"]', '2');
  await page.fill('#sagemaker-rollout-form input[name="sm_canary"]', '25');
  await page.waitForFunction(() => document.querySelector('#sagemaker-rollout-plan')?.textContent.startsWith('blue/green canary 25 % of the new fleet, baked 10 min'));
  await page.click('#start-sagemaker-rollout');
  await page.waitForSelector('#sagemaker-deployment[data-status="Updating"]', { timeout: 30_000 });
  await page.waitForSelector('#sagemaker-rollout-table tr[data-state="updating"]');
  if (shots) await page.screenshot({ path: `${shots}/sagemaker-rollout.png`, fullPage: true });
  step('rolled out the next job by canary (25 % of 2 instances, 10 min), guarded by the alarm: the endpoint is Updating');
  // The stand-in reports the deployment done a few seconds after UpdateEndpoint.
  await page.waitForSelector('#sagemaker-rollout-table tr[data-state="completed"]', { timeout: 30_000 });
  await page.waitForSelector('text=Roll back to');
  step('SageMaker reports it done: completed, and the rollback to the earlier configuration is offered');

  assert.deepEqual(unexpected(problems), [], 'no page or console errors');
  console.log('browser: all checks passed');
} catch (e) {
  console.error(`browser: FAILED at ${page.url()}\n${e.stack || e}`);
  if (problems.length) console.error(problems.join('\n'));
  process.exitCode = 1;
} finally {
  await browser.close();
}
