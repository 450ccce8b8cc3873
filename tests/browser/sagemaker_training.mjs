// An operator uploads the demo set to S3 (moto) from the Training page, then
// launches a 4-instance SageMaker training job running Sagedeck's train.py,
// opens its page and its merged per-host log, filters by host, searches and
// downloads it. Then the AWS calls of one open Training tab and of ten are
// counted over a minute each.
import { openBrowser, step, unexpected } from './lib.mjs';
import assert from 'node:assert/strict';

const base = process.env.SAGEDECK_URL;
const job = process.env.JOB_NAME;
const minute = Number(process.env.TAB_WINDOW_MS || 60_000);
assert.ok(base && job, 'SAGEDECK_URL and JOB_NAME must be set');

const { browser, page, problems } = await openBrowser({ width: 1280, height: 1000 });

async function calls() {
  // The page's cookies go with this request, so it must echo the CSRF token as the page's own fetch does.
  const csrf = (await page.context().cookies()).find((c) => c.name === 'sagedeck_csrf')?.value;
  const r = await page.request.post(base + '/api/aws/calls', { headers: { accept: 'application/json', 'x-sagedeck-csrf': csrf } });
  return (await r.json());
}

try {
  await page.goto(base + '/training');
  await page.waitForSelector('body[data-hydrated="true"]', { timeout: 30_000 });
  await page.waitForSelector('#new-sagemaker-job form');

  // The demo set to S3: made, uploaded with a progress bar, all 3,000 files.
  await page.click('#make-demo');
  await page.waitForSelector('.dataset-report', { timeout: 120_000 });
  await page.fill('#dataset-uploads input[name="upload_destination"]', 's3://no-such-bucket/demo');
  await page.click('#start-upload');
  await page.waitForSelector('#upload-error >> text=cannot be read, so nothing was uploaded');
  step('an upload to a bucket that does not exist is refused in words');
  await page.fill('#dataset-uploads input[name="upload_destination"]', 's3://dogs/datasets/demo');
  await page.click('#start-upload');
  await page.waitForSelector('#upload-list .upload .progress-bar');
  await page.waitForSelector('#upload-list .upload[data-status="Completed"]', { timeout: 120_000 });
  assert.match(await page.textContent('#upload-list .upload[data-status="Completed"] .upload-counts'), /^3000 of 3000 files sent/);
  step('the demo set is in S3: 3000 files sent, the progress bar at its end');

  const form = '#new-sagemaker-job ';
  assert.equal(await page.inputValue(form + 'select[name="architecture"]'), 'resnet50');
  await page.fill(form + 'input[name="name"]', job);
  await page.fill(form + 'input[name="instance_count"]', 'four');
  await page.click('#launch-sagemaker-job');
  await page.waitForSelector('.field-error[data-field="instance_count"]');
  step('a non-number in Instances is refused beside the field');
  await page.fill(form + 'input[name="instance_count"]', '4');
  await page.fill(form + 'input[name="train_s3"]', 's3://dogs/train');
  await page.fill(form + 'input[name="output_s3"]', 's3://dogs/output');
  const cli = await page.textContent('#cli-preview');
  assert.match(cli, /"InstanceCount": 4/);
  assert.ok(cli.includes(`aws s3 cp sourcedir.tar.gz s3://dogs/output/${job}/source/sourcedir.tar.gz`), cli);
  assert.match(cli, /"sagemaker_program": "\\"train.py\\""/);
  assert.match(cli, /"Name": "valid:loss"/);
  step("the AWS CLI equivalent shows InstanceCount 4, the upload of Sagedeck's code and its metric definitions");
  await page.click('#launch-sagemaker-job');
  await page.waitForURL(new RegExp(`/training/sagemaker/${job}$`), { timeout: 30_000 });
  await page.waitForSelector('#sagemaker-job');
  assert.match(await page.textContent('#job-instances'), /^4 × ml\.m5\.xlarge$/);
  step(`launched ${job} on 4 instances; its page shows them`);
  // moto marks it Completed at once: it can be served here or deployed.
  await page.waitForSelector('#job-actions #deploy-here');
  await page.waitForSelector('#training-metrics');
  step('its page offers to serve its model and has a metrics section');

  await page.waitForSelector('#merged-log[data-lines="8"]', { timeout: 30_000 });
  const hosts = await page.locator('.host-filter button[data-host]').count();
  assert.equal(hosts, 4);
  const firstHosts = await page.$$eval('#merged-log .log-line', (l) => l.slice(0, 4).map((e) => e.dataset.host));
  assert.equal(new Set(firstHosts).size, 4, 'lines of the four hosts interleave by time');
  await page.click('.host-filter button[data-host$="algo-2-1763800000"]');
  await page.waitForSelector('#merged-log[data-lines="2"]');
  await page.click('.host-filter >> text=All hosts');
  await page.fill('input[name="log-search"]', 'epoch 1');
  await page.waitForSelector('#merged-log[data-lines="4"]');
  const href = await page.getAttribute('#download-log', 'href');
  assert.ok(href.startsWith('data:text/plain') && decodeURIComponent(href).includes('epoch 1 host 3'));
  step('merged log: 4 hosts, 8 lines; filtered to one host, searched, downloadable');

  // Parity: "Run locally" prefills the local form with the same hyperparameters.
  await page.click('#run-locally');
  await page.waitForSelector('#prefilled-from-sagemaker');
  assert.equal(await page.inputValue('#new-local-job input[name="learning_rate"]'), '0.001');
  assert.equal(await page.inputValue('#new-local-job input[name="batch_size"]'), '32');
  assert.equal(await page.inputValue('#new-local-job input[name="epochs"]'), '5');
  assert.equal(await page.inputValue('#new-local-job input[name="name"]'), `${job}-local`);
  step('"Run locally" prefilled the local form with lr 0.001, batch 32, 5 epochs');

  await page.goto(base + '/training');
  await page.waitForSelector('body[data-hydrated="true"]');
  await page.waitForSelector(`#jobs tr[data-sagemaker-job="${job}"]`);
  step('the job list shows it beside the local jobs');

  // AWS calls: one tab for a minute, then ten tabs for a minute.
  await page.goto(base + '/training');
  const c0 = await calls();
  await page.waitForTimeout(minute);
  const c1 = await calls();
  const tabs = [];
  for (let i = 0; i < 10; i++) {
    const p = await browser.newPage();
    await p.goto(base + '/training');
    tabs.push(p);
  }
  // The second minute starts once all ten are open.
  const c1b = await calls();
  await page.waitForTimeout(minute);
  const c2 = await calls();
  const one = c1.total - c0.total;
  const ten = c2.total - c1b.total;
  console.log(`browser: AWS calls in a minute: ${one} with 1 tab, ${ten} with 11 tabs`);
  console.log(`browser: per operation, 1 tab: ${JSON.stringify(c1.per_operation.map(([k, v]) => [k, v - (c0.per_operation.find((x) => x[0] === k)?.[1] || 0)]))}`);
  console.log(`browser: per operation, 11 tabs: ${JSON.stringify(c2.per_operation.map(([k, v]) => [k, v - (c1b.per_operation.find((x) => x[0] === k)?.[1] || 0)]))}`);
  // The poller runs on its own ~30 s clock whatever is open, so a minute
  // holds one or two of its cycles; the identity check runs at most once a
  // minute. Ten times the tabs may not add more than that phase difference.
  assert.ok(ten <= one + 1, `tabs multiplied AWS calls: ${one} → ${ten}`);
  for (const p of tabs) await p.close();

  assert.deepEqual(unexpected(problems), [], 'no page or console errors');
  console.log('browser: all checks passed');
} catch (e) {
  console.error(`browser: FAILED at ${page.url()}\n${e.stack || e}`);
  if (problems.length) console.error(problems.join('\n'));
  process.exitCode = 1;
} finally {
  await browser.close();
}
