// An operator sets up the Lambda in front of a SageMaker endpoint (in moto)
// from the Lambda page, reads the scoped policy it got, opens the function,
// sees the provisioned form disabled where it cannot be used, reserves concurrency, reads the
// capacity check, and test-invokes the function.
import { openBrowser, step, unexpected } from './lib.mjs';
import assert from 'node:assert/strict';

const base = process.env.SAGEDECK_URL;
const shots = process.env.SCREENSHOT_DIR;
const endpoint = process.env.ENDPOINT_NAME;
assert.ok(base && endpoint, 'SAGEDECK_URL and ENDPOINT_NAME must be set');

const { browser, page, problems } = await openBrowser({ width: 1280, height: 1100 });

try {
  await page.goto(base + '/lambda');
  await page.waitForSelector('body[data-hydrated="true"]', { timeout: 30_000 });
  await page.waitForSelector(`#setup-aws select[name="endpoint"] option[value="${endpoint}"]`, { state: 'attached' });
  await page.click('#setup-button');
  await page.waitForSelector('#setup-report', { timeout: 60_000 });
  const policy = await page.textContent('#setup-report pre');
  assert.match(policy, /sagemaker:InvokeEndpoint/);
  assert.match(policy, new RegExp(`endpoint/${endpoint}`));
  assert.doesNotMatch(policy, /"Resource": "\*"/);
  step(`set up: ${(await page.locator('#setup-report li').allTextContents()).join(' | ')}`);
  if (shots) await page.screenshot({ path: `${shots}/lambda-setup.png`, fullPage: true });

  await page.click('#setup-report a');
  await page.waitForURL(new RegExp(`/lambda/aws/${endpoint}-invoke$`));
  await page.waitForSelector('#concurrency input[name="reserved"]');
  assert.equal((await page.textContent('#function-endpoint')).trim(), endpoint);
  assert.match(await page.textContent('#provisioned-note'), /not supported by this AWS endpoint/);
  step('the function page: endpoint named, provisioned concurrency reported as unsupported by moto');

  // Unsupported here, so the form is empty and disabled rather than filled in vain.
  assert.ok(await page.isDisabled('#concurrency input[name="qualifier"]'));
  assert.ok(await page.isDisabled('#concurrency input[name="provisioned"]'));
  assert.equal(await page.inputValue('#concurrency input[name="provisioned"]'), '');
  assert.ok(await page.isDisabled('#save-provisioned'));
  step('provisioned concurrency: the form is empty and disabled where the endpoint cannot set it');

  await page.fill('#concurrency input[name="reserved"]', '5');
  await page.click('#save-reserved');
  await page.waitForFunction(() => document.querySelector('#reserved-now')?.textContent.trim() === '5');
  step('reserved concurrency 5 saved and read back');
  assert.ok(await page.isVisible('#capacity'));

  await page.fill('#event', '{"url": "https://example.com/dog.jpg"}');
  await page.click('#invoke-button');
  await page.waitForSelector('#invoke-result, #test-invoke .error-panel', { timeout: 30_000 });
  step(`test invocation: ${(await page.textContent('#test-invoke')).replace(/\s+/g, ' ').slice(0, 160)}`);
  if (shots) await page.screenshot({ path: `${shots}/lambda-function.png`, fullPage: true });

  await page.goto(base + '/journal');
  await page.waitForSelector('body[data-hydrated="true"]');
  await page.waitForSelector('#changes tr[data-action="lambda.reserved"] button.revert');
  await page.click('#changes tr[data-action="lambda.reserved"] >> nth=0 >> button.revert');
  await page.waitForFunction(() => document.querySelector('#changes')?.textContent.includes('reverts #'));
  step('reverted the reservation from the journal');

  assert.deepEqual(unexpected(problems), [], 'no page or console errors');
  console.log('browser: all checks passed');
} catch (e) {
  if (shots) await page.screenshot({ path: `${shots}/lambda-failure.png`, fullPage: true }).catch(() => {});
  console.error(`browser: FAILED at ${page.url()}\n${e.stack || e}`);
  if (problems.length) console.error(problems.join('\n'));
  process.exitCode = 1;
} finally {
  await browser.close();
}
