// The newcomer's path through local training in headless Chromium: make the
// demo set, queue a job from the form, watch the progress bar and the charts
// move without reloading, and read the test accuracy of the artifact.
import { openBrowser, step } from './lib.mjs';
import assert from 'node:assert/strict';

const base = process.env.SAGEDECK_URL;
const shots = process.env.SCREENSHOT_DIR;
assert.ok(base, 'SAGEDECK_URL must be set');

const { browser, page, problems } = await openBrowser({ width: 1280, height: 900 });

try {
  await page.goto(base + '/training');
  await page.waitForSelector('body[data-hydrated="true"]', { timeout: 30_000 });
  assert.match(await page.textContent('#jobs, .empty'), /No training jobs yet/);
  step('the Training page says there are no jobs yet');

  await page.click('#make-demo');
  await page.waitForSelector('.dataset-report[data-can-train="true"]', { timeout: 120_000 });
  assert.match(await page.textContent('.dataset-report'), /5 classes, 3000 usable images, 0 skipped/);
  assert.match(await page.inputValue('input[name="dataset"]'), /datasets\/demo-shapes$/);
  step('made the demo set; the form holds its path and the check shows 5 classes');

  // A mistake is shown beside its field and blocks queuing.
  await page.fill('input[name="epochs"]', 'ten');
  await page.click('#queue-job');
  await page.waitForSelector('.field-error[data-field="epochs"]');
  assert.ok(await page.isDisabled('#queue-job'));
  step('a non-number in Epochs is refused beside the field');

  await page.fill('input[name="name"]', 'browser-demo');
  await page.fill('input[name="epochs"]', '3');
  await page.fill('input[name="image_size"]', '32');
  await page.click('#queue-job');
  await page.waitForURL(/\/training\/local\/\d+$/, { timeout: 60_000 });
  step(`queued; now on ${page.url()}`);

  // Live: the bar and the per-step chart move while we stay on the page.
  await page.waitForFunction(() => {
    const bar = document.querySelector('#job .progress-bar');
    return bar && parseFloat(bar.style.width) > 0 && parseFloat(bar.style.width) < 100;
  }, null, { timeout: 120_000 });
  await page.waitForFunction(() => Number(document.querySelector('[data-chart="Training loss per step"]')?.dataset.points) > 5, null, { timeout: 120_000 });
  assert.match(await page.textContent('#progress-text'), /Epoch \d\/3/);
  if (shots) await page.screenshot({ path: `${shots}/training-running.png`, fullPage: true });
  step(`progress moves: "${(await page.textContent('#progress-text')).trim()}"`);

  // Wait for the job to finish whichever way, then say how: a failed or
  // stalled job reports its status, progress and log instead of a bare timeout.
  const finished = '#job[data-status="Completed"], #job[data-status="Failed"], #job[data-status="Cancelled"], #job[data-status="Interrupted"]';
  try {
    await page.waitForSelector(finished, { timeout: 300_000 });
  } catch (e) {
    const seen = await page.evaluate(() => ({
      status: document.querySelector('#job')?.dataset.status,
      progress: document.querySelector('#progress-text')?.textContent,
      log: document.querySelector('#log')?.textContent?.slice(-2000),
      errors: [...document.querySelectorAll('.error-panel')].map((p) => p.textContent),
    }));
    throw new Error(`the job did not finish in 5 min; the page shows ${JSON.stringify(seen)}\n${e.message}`);
  }
  const status = await page.getAttribute('#job', 'data-status');
  assert.equal(status, 'Completed', `the job ended ${status}: ${await page.textContent('#log').catch(() => '')}`);
  await page.waitForSelector('#test-accuracy');
  const accuracy = await page.textContent('#test-accuracy');
  assert.match(accuracy, /^\d+\.\d %$/);
  assert.equal(await page.getAttribute('[data-chart="Accuracy per epoch"]', 'data-points'), '6');
  assert.match(await page.textContent('#artifact'), /model\.safetensors/);
  assert.match(await page.textContent('#log'), /artifact written to/);
  if (shots) await page.screenshot({ path: `${shots}/training-done.png`, fullPage: true });
  step(`completed with ${accuracy} test accuracy; the artifact is listed`);

  await page.click('text=← All training');
  await page.waitForSelector('#jobs tr[data-job][data-status="Completed"]');
  step('the job list shows it Completed');

  // The filters live in the URL: a view can be shared and reloaded.
  await page.selectOption('select[name="status-filter"]', 'Failed');
  await page.waitForURL(/\/training\?status=Failed$/);
  await page.waitForSelector('text=No job matches these filters.');
  await page.reload();
  await page.waitForSelector('text=No job matches these filters.');
  assert.equal(await page.inputValue('select[name="status-filter"]'), 'Failed');
  await page.selectOption('select[name="status-filter"]', 'Completed');
  await page.waitForURL(/\/training\?status=Completed$/);
  await page.waitForSelector('#jobs tr[data-job][data-status="Completed"]');
  assert.match(await page.textContent('#jobs-count'), /^1 of 1 job · 1 local, 0 on SageMaker/);
  step('the status filter is in the URL, survives a reload and counts what matches');

  assert.deepEqual(problems, [], 'no page or console errors');
  console.log('browser: all checks passed');
} catch (e) {
  if (shots) await page.screenshot({ path: `${shots}/training-failure.png`, fullPage: true }).catch(() => {});
  console.error(`browser: FAILED at ${page.url()}\n${e.stack || e}`);
  if (problems.length) console.error(problems.join('\n'));
  process.exitCode = 1;
} finally {
  await browser.close();
}
