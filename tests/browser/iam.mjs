// An operator reviews the account's roles (moto): the Lambda role with
// AmazonSageMakerFullAccess comes first, critical, with its flagged
// statements marked; then types into the live editor and watches a finding
// appear, disappear, and a JSON error located to its line.
import { openBrowser, step, unexpected } from './lib.mjs';
import assert from 'node:assert/strict';

const base = process.env.SAGEDECK_URL;
const shots = process.env.SCREENSHOT_DIR;
assert.ok(base, 'SAGEDECK_URL must be set');

const { browser, page, problems } = await openBrowser({ width: 1280, height: 1100 });
const scoped = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'sagemaker:InvokeEndpoint', Resource: 'arn:aws:sagemaker:us-east-1:123456789012:endpoint/dogs' }] }, null, 2);

try {
  await page.goto(base + '/iam');
  await page.waitForSelector('body[data-hydrated="true"]', { timeout: 30_000 });
  await page.click('#review-aws');
  await page.waitForSelector('#roles tbody tr', { timeout: 30_000 });
  const first = await page.getAttribute('#roles tbody tr >> nth=0', 'data-role');
  assert.ok(['dogs-lambda-role', 'dogs-invoke-role'].includes(first), `riskiest first, got ${first}`);
  assert.match(await page.textContent('#roles tbody tr >> nth=0'), /critical/);
  step(`roles reviewed: ${(await page.locator('#roles tbody tr').allTextContents()).map((t) => t.replace(/\s+/g, ' ').trim()).join(' | ')}`);
  await page.waitForSelector('#role-findings li[data-rule="managed-full-access"]');
  // The graph: the Lambda role reaches training jobs (critical path); the scoped one only its endpoint's absence.
  assert.ok(await page.locator('#iam-graph .node[data-label="create training jobs"]').count() === 1);
  assert.ok(await page.locator('#iam-graph .edge.sev-critical').count() > 0);
  step(`graph: ${await page.locator('#iam-graph .node').count()} nodes, ${await page.locator('#iam-graph .edge').count()} links`);
  assert.ok(await page.locator('#role .stmt.flagged').count() > 0, 'flagged statements are marked in the documents');
  step(`the role's first finding: ${(await page.textContent('#role-findings li >> nth=0')).replace(/\s+/g, ' ').slice(0, 140)}`);
  if (shots) await page.screenshot({ path: `${shots}/iam-review.png`, fullPage: true });

  // The endpoint's Lambda role: propose the fix, apply it, roll it back.
  await page.click('#roles tr[data-role="dogs-invoke-role"] button');
  await page.waitForSelector('#role[data-role="dogs-invoke-role"] #plan-fix');
  await page.click('#plan-fix');
  await page.waitForSelector('#fix-diff tr[data-what="Create a training job"].changed');
  step(`the fix: ${(await page.textContent('#fix-plan p')).trim()}`);
  await page.click('#apply-fix');
  await page.waitForSelector('#fix-applied', { timeout: 30_000 });
  step(`applied: ${(await page.textContent('#fix-applied .ok-note')).trim()}`);
  if (shots) await page.screenshot({ path: `${shots}/iam-fix.png`, fullPage: true });
  await page.click('#rollback-fix');
  await page.waitForSelector('#fix-rolled-back', { timeout: 30_000 });
  step((await page.textContent('#fix-rolled-back')).trim());
  await page.click('#review-aws');
  await page.waitForFunction(() => !document.querySelector('#review-aws').disabled && !document.querySelector('#fix-rolled-back'));
  await page.waitForFunction(() => document.querySelector('#roles tr[data-role="dogs-invoke-role"]')?.dataset.score === '80');
  step('reviewed again: the role is back to its old policies (score 80: it can pass any role to SageMaker)');
  assert.match(await page.textContent('#risk-scale'), /90 administrator/);

  // The same account offline: an exported file opened in the page, judged in the browser.
  await page.setInputFiles('#details-file', process.env.DETAILS_FILE);
  await page.waitForFunction(() => document.querySelector('#roles-card h2')?.textContent.includes('account.json'));
  // Ranked by reach: the administrator role another account may assume comes first.
  assert.equal(await page.getAttribute('#roles tbody tr >> nth=0', 'data-role'), 'partner-role');
  step(`offline file: ${(await page.textContent('#roles-card h2')).trim()}`);

  // The live editor starts with the seeds' scoped policy: clean.
  await page.waitForSelector('#editor-clean');
  await page.fill('#policy-text', scoped.replace('sagemaker:InvokeEndpoint', 'sagemaker:*'));
  await page.waitForSelector('#editor-findings li[data-rule="service-wildcard"]');
  step('typed sagemaker:* — the service-wildcard finding appeared');
  await page.fill('#policy-text', scoped);
  await page.waitForSelector('#editor-clean');
  step('put InvokeEndpoint back — the finding disappeared');
  await page.fill('#policy-text', scoped.replace('"Effect": "Allow",', '"Effect": "Allow"'));
  await page.waitForSelector('#editor-error');
  const line = await page.getAttribute('#editor-error', 'data-line');
  assert.equal(line, '6');
  step(`broke the JSON — ${(await page.textContent('#editor-error')).trim()}`);

  // The journal shows the fix and its rollback readably: a summary in the
  // row (no escaped JSON), the Revert column on a 1280-px screen, the diff on demand.
  await page.goto(base + '/journal');
  await page.waitForSelector('body[data-hydrated="true"]', { timeout: 30_000 });
  const fixRow = page.locator('#changes tr[data-action="iam.fix"]').last();
  await fixRow.waitFor();
  const summary = (await fixRow.locator('.change-summary').textContent()).trim();
  assert.match(summary, /managed: AmazonSageMakerFullAccess → inline: invoke-one-endpoint \(\d statements?\)/, summary);
  assert.ok(!summary.includes('\\') && !summary.includes('Statement'), `no escaped JSON in the row: ${summary}`);
  const lastCell = await fixRow.locator('td').last().boundingBox();
  assert.ok(lastCell.x + lastCell.width <= 1280, `the row fits the screen: ends at ${lastCell.x + lastCell.width}px`);
  await fixRow.locator('.change-diff summary').click();
  await fixRow.locator('.diff-added', { hasText: 'sagemaker:InvokeEndpoint' }).first().waitFor();
  assert.ok(await fixRow.locator('.diff-removed', { hasText: 'AmazonSageMakerFullAccess' }).count() === 1);
  step(`journal: "${summary}", ${await fixRow.locator('.change-diff summary').textContent()}`);
  if (shots) await page.screenshot({ path: `${shots}/iam-journal.png`, fullPage: true });

  assert.deepEqual(unexpected(problems), [], 'no page or console errors');
  console.log('browser: all checks passed');
} catch (e) {
  if (shots) await page.screenshot({ path: `${shots}/iam-failure.png`, fullPage: true }).catch(() => {});
  console.error(`browser: FAILED at ${page.url()}\n${e.stack || e}`);
  if (problems.length) console.error(problems.join('\n'));
  process.exitCode = 1;
} finally {
  await browser.close();
}
