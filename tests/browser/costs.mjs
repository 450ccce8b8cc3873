// The Costs page as an operator reads it: what runs and its price, the
// totals, sorting, the month's chart, and an idle endpoint deleted from the
// idle list. Started by tests/browser.rs, which owns the server, moto and
// the Pricing API stand-in (two endpoints aged two days, one called).
import { openBrowser, step } from './lib.mjs';
import assert from 'node:assert/strict';

const base = process.env.SAGEDECK_URL;
const shots = process.env.SCREENSHOT_DIR;
assert.ok(base, 'SAGEDECK_URL must be set');

const { browser, page, problems } = await openBrowser({ width: 1280, height: 900 });
const hydrated = () => page.waitForSelector('body[data-hydrated="true"]', { timeout: 30_000 });

try {
  await page.goto(base + '/costs');
  await hydrated();
  assert.equal((await page.locator('h1').first().textContent()).trim(), 'Costs');
  assert.match(await page.textContent('#price-source'), /AWS region us-east-1 · prices: AWS Pricing API/);

  // Two endpoints at $0.13/h and a notebook at $0.05/h: $0.31 an hour.
  const hourly = Number(await page.getAttribute('#cost-now .big-number', 'data-hourly'));
  assert.ok(Math.abs(hourly - 0.31) < 1e-6, `running now: ${hourly}`);
  assert.match(await page.textContent('#cost-now'), /\$7\.44 a day · \$226\.30 a month/);
  const names = async () => page.locator('#cost-lines tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.name));
  assert.deepEqual((await names()).slice(-1), ['browser-costs-nb'], 'the cheapest last when sorted by price');
  step('the running-now card sums two endpoints and a notebook at Pricing API prices');

  await page.click('#cost-lines th button[data-sort="Resource"]');
  await page.waitForFunction(() => document.querySelector('#cost-lines th[aria-sort="descending"] button')?.dataset.sort === 'Resource');
  assert.deepEqual(await names(), ['quiet-dogs', 'busy-dogs', 'browser-costs-nb']);
  await page.click('#cost-lines th button[data-sort="Resource"]');
  assert.deepEqual(await names(), ['browser-costs-nb', 'busy-dogs', 'quiet-dogs']);
  step('sorting by name both ways');

  // Two days up: the month has spend, drawn per day.
  const month = Number(await page.getAttribute('#cost-month .big-number', 'data-usd'));
  assert.ok(month > 0, `month so far: ${month}`);
  assert.ok((await page.locator('#daily-spend rect.spend-bar').count()) >= 1, 'a bar per day');
  step(`the month so far: $${month.toFixed(2)}, charted per day`);

  const idle = page.locator('#idle-list tr[data-name="quiet-dogs"]');
  await idle.waitFor();
  assert.equal(await page.locator('#idle-list tr[data-name="busy-dogs"]').count(), 0, 'the called endpoint is not idle');
  assert.match(await idle.textContent(), /no invocations in the last 24 h/);
  if (shots) await page.screenshot({ path: `${shots}/costs.png`, fullPage: true });
  await idle.getByRole('button', { name: 'Delete' }).click();
  assert.match(await idle.textContent(), /configuration and model are kept/);
  await idle.getByRole('button', { name: 'Yes, delete' }).click();
  await page.waitForSelector('#idle-list tr[data-name="quiet-dogs"]', { state: 'detached', timeout: 30_000 });
  step('deleted the idle endpoint from the idle list after confirming');

  // The window is in the URL: a shared link shows the same view.
  await page.fill('input[name="idle"]', '72');
  await page.click('text=Look again');
  await page.waitForURL(/\/costs\?idle=72/);
  await hydrated();
  assert.match(await page.textContent('#idle-list'), /Nothing has been idle for 72 hours/);
  step('a 72-hour window from the form, kept in the URL');

  // The journal can bring the endpoint back from its kept configuration.
  await page.goto(base + '/journal');
  await hydrated();
  const deletion = page.locator('tr', { hasText: 'endpoint.sagemaker.delete' }).first();
  await deletion.waitFor();
  assert.ok(await deletion.getByRole('button', { name: 'Revert' }).count() === 1, 'the deletion offers a revert');
  step('the journal offers to recreate it');

  // A schedule made on the notebook's page shows there and on the Costs page.
  await page.goto(base + '/notebooks/browser-costs-nb');
  await hydrated();
  await page.fill('input[name="schedule-when"]', 'weekdays 7pm');
  assert.match(await page.textContent('#schedule-reads-as'), /^when:/, 'a text it cannot read is explained as it is typed');
  await page.fill('input[name="schedule-when"]', 'weekdays 19:00');
  assert.equal((await page.textContent('#schedule-reads-as')).trim(), 'weekdays at 19:00');
  await page.fill('input[name="schedule-zone"]', 'Europe/Berlin');
  await page.click('#schedules button[type="submit"]');
  const scheduled = page.locator('#schedules tr[data-schedule]');
  await scheduled.first().waitFor({ timeout: 15_000 });
  assert.match(await scheduled.first().textContent(), /stop notebook browser-costs-nb.*weekdays at 19:00 \(Europe\/Berlin\)/);
  assert.match(await scheduled.first().locator('.next-run').textContent(), /19:00 CET/);
  if (shots) await page.screenshot({ path: `${shots}/notebook-schedule.png`, fullPage: true });
  step('a weekday-evening stop scheduled on the notebook page, next run at 19:00 CET');
  await page.goto(base + '/costs');
  await hydrated();
  await page.locator('.schedule-list tr[data-schedule]').first().waitFor();
  assert.match(await page.textContent('.schedule-list'), /stop notebook browser-costs-nb/);
  step('the Costs page lists it with its next run');

  // The notebook's role: its IAM review score, one click from its review.
  await page.goto(base + '/notebooks/browser-costs-nb');
  await hydrated();
  const score = page.locator('#role-score a');
  await score.waitFor({ timeout: 20_000 });
  assert.match(await score.textContent(), /^IAM review: risk \d+ of 99$/);
  await score.click();
  await page.waitForURL(/\/iam\?role=AmazonSageMaker-ExecutionRole/);
  await page.waitForSelector('#role[data-role="AmazonSageMaker-ExecutionRole"]', { timeout: 20_000 });
  step("the notebook page shows its role's IAM risk and opens its review");

  assert.deepEqual(problems, [], 'no page or console errors');
  console.log('browser: all checks passed');
} catch (e) {
  if (shots) await page.screenshot({ path: `${shots}/failure-costs.png`, fullPage: true }).catch(() => {});
  console.error(`browser: FAILED at ${page.url()}\n${e.stack || e}`);
  if (problems.length) console.error(problems.join('\n'));
  process.exitCode = 1;
} finally {
  await browser.close();
}
