// The whole console against an account set up by hand (tests/fixtures/
// hand_made_account.py): every page reads what the person made under their
// own names, judges it right, and says so plainly. Charts read out the value
// under the cursor with clock times; no page warns about reactive reads.
import { openBrowser, step, unexpected } from './lib.mjs';
import assert from 'node:assert/strict';

const base = process.env.SAGEDECK_URL;
const shots = process.env.SCREENSHOT_DIR;
assert.ok(base, 'SAGEDECK_URL must be set');

const { browser, page, problems } = await openBrowser({ width: 1280, height: 1000 });
const warnings = [];
page.on('console', (m) => { if (m.type() === 'warning') warnings.push(`${page.url()}: ${m.text()}`); });

async function open(path) {
  await page.goto(base + path);
  await page.waitForSelector('body[data-hydrated="true"]', { timeout: 30_000 });
}
const text = async (selector) => (await page.textContent(selector)).replace(/\s+/g, ' ').trim();

try {
  await open('/');
  step(`overview: ${(await text('main')).slice(0, 120)}…`);

  // A stopped notebook costs nothing per hour.
  await open('/notebooks');
  const notebook = page.locator('#notebooks tr[data-notebook="flowers-notebook"]');
  await notebook.waitFor({ timeout: 30_000 });
  assert.match(await notebook.locator('.hourly').textContent(), /stopped/);
  step(`notebook: ${(await notebook.textContent()).replace(/\s+/g, ' ').trim()}`);

  // A completed tuning job with an empty FailureReason: no red panel, no "None yet." beside "1 done".
  await open('/training/tuning/flowers-hpo-1120');
  await page.waitForSelector('#tuning-job[data-status="Completed"]', { timeout: 30_000 });
  assert.equal(await page.locator('#tuning-job .error-panel').count(), 0, 'no Failed panel on a completed job');
  const tuning = await text('#tuning-job');
  assert.ok(!(tuning.includes('1 done') && tuning.includes('None yet.')), tuning);
  step(`tuning job: ${tuning.slice(0, 160)}…`);

  // The endpoint's charts: clock times on the axis, the latest values under
  // each chart, and the value under the cursor when it moves.
  await open('/endpoints/sagemaker/flowers-prod');
  await page.waitForSelector('#metrics-summary', { timeout: 30_000 });
  const summary = await text('#metrics-summary');
  assert.ok(!summary.includes('-0'), summary);
  const chart = page.locator('#metrics figure.chart[data-chart="Invocations per period"]');
  await chart.locator('.chart-readout .readout-at').waitFor();
  assert.match(await chart.locator('.chart-readout').textContent(), /latest · \d{4}-\d\d-\d\d \d\d:\d\d UTC/);
  const ticks = await chart.locator('svg .axis text').allTextContents();
  assert.ok(ticks.filter((t) => /^\d\d:\d\d$/.test(t)).length >= 2, `clock times on the axis: ${ticks}`);
  const box = await chart.locator('svg').boundingBox();
  await page.mouse.move(box.x + box.width * 0.55, box.y + box.height * 0.4);
  // A vertical line has no width: wait for it to be there, not "visible".
  await chart.locator('svg line.cursor').waitFor({ state: 'attached' });
  const hovered = await chart.locator('.chart-readout').textContent();
  assert.ok(!hovered.includes('latest'), hovered);
  assert.match(hovered, /\d\d:\d\d UTC.*Invocations (\d+|—)/);
  step(`endpoint: ${summary.slice(0, 80)} · axis ${ticks.filter((t) => /:/.test(t)).join(' ')} · under the cursor: ${hovered.replace(/\s+/g, ' ')}`);
  if (shots) await page.screenshot({ path: `${shots}/hand-made-endpoint.png`, fullPage: true });

  // Scaling: the person's own policy, listed, shown, simulated and edited in place.
  await open('/scaling');
  const row = page.locator('#scaling-endpoints tr[data-endpoint="flowers-prod"]');
  await row.waitFor({ timeout: 30_000 });
  assert.match(await row.locator('.row-policy').textContent(), /flowers-invocations-scaling: 1–4 instances · target 25/);
  await open('/scaling/sagemaker/flowers-prod');
  await page.waitForSelector('#target-policies tr[data-policy="flowers-invocations-scaling"]', { timeout: 30_000 });
  assert.match(await text('#editing-note'), /Editing the policy flowers-invocations-scaling, made outside Sagedeck/);
  assert.equal(await page.inputValue('input[name="target_value"]'), '25');
  assert.equal(await page.inputValue('input[name="scale_in_cooldown_s"]'), '30');
  assert.equal(await page.inputValue('input[name="max_instances"]'), '4');
  const currentPeak = (await text('#sim-summary tbody tr:first-child td:nth-child(2)'));
  assert.equal(currentPeak, '4', 'the current policy is simulated as it is, not as a fixed instance');
  await page.fill('input[name="target_value"]', '30');
  await page.click('#apply-policy');
  await page.waitForSelector('#applied, #policy-editor .error-panel', { timeout: 30_000 });
  assert.equal(await page.locator('#policy-editor .error-panel').count(), 0, await page.textContent('#policy-editor'));
  await page.waitForFunction(() => document.querySelector('#variants .policy-summary')?.textContent.includes('target 30'));
  assert.match(await text('#variants .policy-summary'), /^flowers-invocations-scaling: 1–4 instances · target 30/);
  assert.equal(await page.locator('#target-policies tbody tr').count(), 1, 'edited in place: no second policy');
  step(`scaling: ${await text('#editing-note')}`);
  if (shots) await page.screenshot({ path: `${shots}/hand-made-scaling.png`, fullPage: true });

  // The function: its metrics charted, its capacity judged with the endpoint's measured speed.
  await open('/lambda/aws/flowers-classify');
  await page.waitForSelector('#capacity-measured', { timeout: 30_000 });
  assert.match(await text('#capacity-measured'), /ModelLatency 183\.0 ms \+ OverheadLatency 9\.0 ms.*UTC/);
  // Unreserved, it may run as many at once as the account allows: far more than 4 instances absorb.
  assert.match(await text('#capacity-warnings'), /\(4 instances × 328\).*Reserve at most 4/);
  const calls = page.locator('#function-metrics figure.chart[data-chart="Invocations, errors, throttles"]');
  await calls.waitFor({ timeout: 30_000 });
  assert.ok(Number(await calls.getAttribute('data-points')) > 0, 'the function has points to chart');
  assert.ok(Number(await page.getAttribute('#function-metrics-summary', 'data-throttles')) > 0);
  // Provisioned concurrency is unsupported here: the form says so and is empty and disabled.
  assert.ok(await page.isDisabled('input[name="provisioned"]'));
  assert.equal(await page.inputValue('input[name="provisioned"]'), '');
  step(`function: ${await text('#capacity')} · ${await text('#function-metrics-summary')}`);
  if (shots) await page.screenshot({ path: `${shots}/hand-made-function.png`, fullPage: true });

  // IAM: ranked by reach, the scale explained.
  await open('/iam');
  await page.click('#review-aws');
  await page.waitForSelector('#roles tbody tr', { timeout: 30_000 });
  const order = await page.locator('#roles tbody tr').evaluateAll((rows) => rows.map((r) => `${r.dataset.role}=${r.dataset.score}`));
  assert.equal(order[0], 'ops-admin=90', order.join(' '));
  assert.ok(order.indexOf('partner-readonly=60') > order.indexOf('power-user=70'), order.join(' '));
  assert.match(await text('#risk-scale'), /90 administrator/);
  step(`IAM ranking: ${order.join(' ')}`);

  // The journal: the scaling edit, readable, with its diff on demand.
  await open('/journal');
  const edit = page.locator('#changes tr[data-action="scaling.put"]').first();
  await edit.waitFor({ timeout: 30_000 });
  assert.match(await edit.locator('.change-summary').textContent(), /flowers-invocations-scaling: 1–4 instances · target 25 .*→ flowers-invocations-scaling: 1–4 instances · target 30 /);
  await edit.locator('.change-diff summary').click();
  await edit.locator('.diff-removed', { hasText: '"target_value": 25.0' }).waitFor();
  await edit.locator('.diff-added', { hasText: '"target_value": 30.0' }).waitFor();
  step(`journal: ${(await edit.locator('.change-summary').textContent()).trim()}`);

  assert.deepEqual(warnings.filter((w) => /reactive|outside|untracked/i.test(w)), [], 'no reactive-scope warnings');
  assert.deepEqual(unexpected(problems), [], 'no page or console errors');
  console.log('browser: all checks passed');
} catch (e) {
  if (shots) await page.screenshot({ path: `${shots}/hand-made-failure.png`, fullPage: true }).catch(() => {});
  console.error(`browser: FAILED at ${page.url()}\n${e.stack || e}`);
  if (problems.length) console.error(problems.join('\n'));
  if (warnings.length) console.error(warnings.join('\n'));
  process.exitCode = 1;
} finally {
  await browser.close();
}
