// Opens every page of a running Sagedeck in headless Chromium and walks the
// notebook flow as a person would. Started by tests/browser.rs, which owns the
// server and moto; exits non-zero with a message at the first failed check.
import { openBrowser, step } from './lib.mjs';
import assert from 'node:assert/strict';

const base = process.env.SAGEDECK_URL;
const notebook = process.env.NOTEBOOK_NAME;
const shots = process.env.SCREENSHOT_DIR;
assert.ok(base && notebook, 'SAGEDECK_URL and NOTEBOOK_NAME must be set');

const { browser, page, problems } = await openBrowser({ width: 1280, height: 800 });

const hydrated = () => page.waitForSelector('body[data-hydrated="true"]', { timeout: 30_000 });

try {
  const pages = [
    ['/', 'Overview'], ['/notebooks', 'Notebooks'], ['/training', 'Training'],
    ['/endpoints', 'Endpoints'], ['/scaling', 'Scaling'], ['/lambda', 'Lambda'], ['/iam', 'IAM'],
  ];
  for (const [path, heading] of pages) {
    await page.goto(base + path);
    await hydrated();
    assert.equal((await page.locator('h1').first().textContent()).trim(), heading, `heading of ${path}`);
    const current = await page.locator('nav li a[aria-current="page"]').textContent();
    assert.equal(current.trim(), heading, `nav marks ${path} as current`);
    step(`opened ${path}`);
  }

  // Client-side navigation works after hydration.
  await page.goto(base + '/');
  await hydrated();
  await page.waitForSelector('#aws-chip');
  assert.match(await page.textContent('#aws-chip'), /AWS 123456789012 · us-east-1/);
  assert.match(await page.textContent('#backend-local'), /libtorch check\s*ok/);
  if (shots) await page.screenshot({ path: `${shots}/overview.png`, fullPage: true });
  await page.click('nav >> text=Notebooks');
  await page.waitForSelector('#notebooks');
  step('navigated to Notebooks without a reload');

  const row = page.locator(`tr[data-notebook="${notebook}"]`);
  await row.waitFor();
  assert.equal((await row.locator('td.status').textContent()).trim(), 'InService');
  assert.match(await row.textContent(), /ml\.t3\.medium/);
  assert.match(await row.textContent(), /\$0\.050\/h/);
  step('the moto notebook is listed as InService with its price');
  if (shots) await page.screenshot({ path: `${shots}/notebooks.png`, fullPage: true });

  // Stop asks first; cancel changes nothing.
  await row.getByRole('button', { name: 'Stop' }).click();
  await row.getByRole('button', { name: 'Cancel' }).click();
  assert.equal((await row.locator('td.status').textContent()).trim(), 'InService');
  await row.getByRole('button', { name: 'Stop' }).click();
  await row.getByRole('button', { name: 'Yes, stop' }).click();
  await page.waitForFunction(
    (n) => document.querySelector(`tr[data-notebook="${n}"] td.status`)?.textContent.trim() === 'Stopped',
    notebook, { timeout: 30_000 });
  assert.match(await page.textContent('.notice'), new RegExp(`Stopped ${notebook}: InService → Stopped`));
  step('stopped it after confirming; the list shows Stopped');

  await row.getByRole('button', { name: 'Start' }).click();
  await row.getByRole('button', { name: 'Yes, start' }).click();
  await page.waitForFunction(
    (n) => document.querySelector(`tr[data-notebook="${n}"] td.status`)?.textContent.trim() === 'InService',
    notebook, { timeout: 30_000 });
  step('started it again; the list shows InService');

  await row.getByRole('link', { name: notebook }).click();
  await page.waitForSelector('#notebook-detail');
  assert.match(await page.textContent('#notebook-detail'), /arn:aws:sagemaker:us-east-1:123456789012:notebook-instance\//);
  assert.match(await page.textContent('#notebook-detail'), /\$36\.50\/month/);
  step('the detail view shows the ARN and the monthly estimate');

  await page.goto(base + '/');
  await hydrated();
  await page.waitForSelector('#changes');
  const journal = await page.textContent('#changes');
  assert.match(journal, /notebook\.start/);
  assert.match(journal, /InService → Stopped/);
  step('the overview lists both changes');
  if (shots) await page.screenshot({ path: `${shots}/overview-after.png`, fullPage: true });

  // A new notebook from the form (a role SageMaker may assume, Sagedeck's
  // idle auto-stop), stopped, then deleted behind a confirmation.
  await page.click('nav >> text=Notebooks');
  await page.waitForSelector('#new-notebook select[name="role"] option', { state: 'attached' });
  assert.match(await page.textContent('#new-notebook select[name="instance_type"]'), /ml\.t3\.medium · \$0\.050\/h · \$36\.50\/month/);
  await page.fill('#new-notebook input[name="name"]', 'bad name!');
  await page.click('#create-notebook');
  await page.waitForSelector('#new-notebook .error-panel');
  assert.match(await page.textContent('#new-notebook .error-panel'), /name:/);
  await page.fill('#new-notebook input[name="name"]', 'browser-new');
  await page.click('#create-notebook');
  const created = page.locator('tr[data-notebook="browser-new"]');
  await created.waitFor({ timeout: 30_000 });
  step('created browser-new from the form (a bad name was refused beside it first)');
  await created.getByRole('button', { name: 'Stop' }).click();
  await created.getByRole('button', { name: 'Yes, stop' }).click();
  await page.waitForFunction(() => document.querySelector('tr[data-notebook="browser-new"] td.status')?.textContent.trim() === 'Stopped', null, { timeout: 30_000 });
  await created.getByRole('button', { name: 'Delete' }).click();
  await created.getByRole('button', { name: 'Yes, delete' }).click();
  await page.waitForSelector('tr[data-notebook="browser-new"]', { state: 'detached', timeout: 30_000 });
  step('stopped and deleted it; the list no longer has it');

  assert.deepEqual(problems, [], 'no page or console errors');
  console.log('browser: all checks passed');
} catch (e) {
  if (shots) await page.screenshot({ path: `${shots}/failure.png`, fullPage: true }).catch(() => {});
  console.error(`browser: FAILED at ${page.url()}\n${e.stack || e}`);
  if (problems.length) console.error(problems.join('\n'));
  process.exitCode = 1;
} finally {
  await browser.close();
}
