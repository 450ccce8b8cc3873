// An operator opens a SageMaker endpoint's scaling page, types a policy
// (a bad maximum is refused as they type), compares it with the current
// fixed size in the simulator, applies it, edits it, and reverts the edit
// from the changes list.
import { openBrowser, step, unexpected } from './lib.mjs';
import assert from 'node:assert/strict';

const base = process.env.SAGEDECK_URL;
const shots = process.env.SCREENSHOT_DIR;
const name = process.env.ENDPOINT_NAME;
assert.ok(base && name, 'SAGEDECK_URL and ENDPOINT_NAME must be set');

const { browser, page, problems } = await openBrowser({ width: 1280, height: 1200 });
const summary = () => page.textContent('#variants .policy-summary');

try {
  await page.goto(base + '/scaling');
  await page.waitForSelector('body[data-hydrated="true"]', { timeout: 30_000 });
  await page.click(`#scaling-endpoints tr[data-endpoint="${name}"] a`);
  await page.waitForURL(new RegExp(`/scaling/sagemaker/${name}$`));
  await page.waitForSelector('#policy-editor input[name="max_instances"]');
  assert.match(await summary(), /none: fixed instance count/);
  step('opened the endpoint: no auto-scaling yet');

  await page.fill('#policy-editor input[name="max_instances"]', '0');
  await page.waitForSelector('.field-error[data-field="max_instances"]');
  assert.ok(await page.isDisabled('#apply-policy'), 'Apply is off while the form is wrong');
  step(`max 0 refused as typed: ${(await page.textContent('.field-error[data-field="max_instances"]')).trim()}`);

  await page.fill('#policy-editor input[name="max_instances"]', '4');
  await page.waitForSelector('.field-error', { state: 'detached' });
  // The simulator compares the fixed single instance with the policy on a spike.
  await page.waitForSelector('#sim-summary');
  const peak = await page.textContent('#sim-summary tbody tr:first-child');
  assert.match(peak, /Peak instances\s*1\s*[2-4]/);
  step(`simulated on a spike: ${peak.replace(/\s+/g, ' ').trim()}`);
  await page.selectOption('#sim-source', 'daily');
  await page.waitForFunction(() => document.querySelector('#sim-events')?.children.length > 0);
  step('a daily cycle: the proposed policy scales out and in');
  if (shots) await page.screenshot({ path: `${shots}/scaling-simulator.png`, fullPage: true });

  await page.click('#apply-policy');
  await page.waitForFunction(() => document.querySelector('#variants .policy-summary')?.textContent.includes('target 25'));
  step(`applied: ${(await summary()).trim()}`);

  await page.fill('#policy-editor input[name="target_value"]', '40');
  await page.click('#apply-policy');
  await page.waitForFunction(() => document.querySelector('#variants .policy-summary')?.textContent.includes('target 40'));
  await page.waitForFunction(() => document.querySelectorAll('#scaling-changes tr[data-action="scaling.put"]').length === 2);
  step('edited the target to 40; two changes listed');

  // The newest change (to 40) is the first row; revert it.
  await page.click('#scaling-changes tr[data-action="scaling.put"] >> nth=0 >> button.revert');
  await page.waitForFunction(() => document.querySelector('#variants .policy-summary')?.textContent.includes('target 25'));
  await page.waitForFunction(() => document.querySelector('#scaling-changes')?.textContent.includes('reverts #'));
  step(`reverted from the journal: ${(await summary()).trim()}`);
  if (shots) await page.screenshot({ path: `${shots}/scaling-reverted.png`, fullPage: true });

  await page.goto(base + '/journal');
  await page.waitForSelector('body[data-hydrated="true"]');
  await page.fill('#journal-filter', 'scaling.');
  await page.waitForFunction(() => document.querySelectorAll('#changes tbody tr').length === 3);
  step('the journal page lists the three scaling changes');

  assert.deepEqual(unexpected(problems), [], 'no page or console errors');
  console.log('browser: all checks passed');
} catch (e) {
  if (shots) await page.screenshot({ path: `${shots}/scaling-failure.png`, fullPage: true }).catch(() => {});
  console.error(`browser: FAILED at ${page.url()}\n${e.stack || e}`);
  if (problems.length) console.error(problems.join('\n'));
  process.exitCode = 1;
} finally {
  await browser.close();
}
