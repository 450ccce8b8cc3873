// Sign-in in headless Chromium: a page sends a stranger to the sign-in form,
// a wrong password is refused in words, the viewer lands where they were
// going, sees who they are, is refused an operator's action by the server
// (with the reason on the page), finds that refusal in the journal under
// their name, and signs out. Every page runs under the console's CSP: any
// violation would show up as a console error and fail the run.
import { openBrowser, step, unexpected } from './lib.mjs';
import assert from 'node:assert/strict';

const base = process.env.SAGEDECK_URL;
const password = process.env.PASSWORD;
const shots = process.env.SCREENSHOT_DIR;
assert.ok(base && password, 'SAGEDECK_URL and PASSWORD must be set');

const { browser, page, problems } = await openBrowser({ width: 1280, height: 900 });
const csp = [];
page.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) csp.push(m.text()); });

try {
  await page.goto(base + '/training');
  assert.match(page.url(), /\/login\?next=\/training$/);
  step('a stranger is sent to the sign-in form');

  await page.fill('#login-name', 'viewer');
  await page.fill('#login-password', 'not the password');
  await page.click('#login-submit');
  await page.waitForSelector('#login-error');
  assert.match(await page.textContent('#login-error'), /Wrong user name or password/);
  step('a wrong password is refused in words');

  await page.fill('#login-name', 'viewer');
  await page.fill('#login-password', password);
  await page.click('#login-submit');
  await page.waitForURL(base + '/training');
  await page.waitForSelector('body[data-hydrated="true"]', { timeout: 30_000 });
  await page.waitForSelector('#account');
  assert.equal((await page.textContent('#account')).trim(), 'viewer · viewer');
  const cookies = await page.context().cookies();
  const session = cookies.find((c) => c.name === 'sagedeck_session');
  assert.ok(session && session.httpOnly && session.sameSite === 'Lax', JSON.stringify(cookies));
  step('signed in: back on /training, the header names the viewer; the session cookie is HttpOnly, SameSite=Lax');

  await page.waitForFunction(() => document.querySelector('#make-demo')?.disabled === true);
  assert.equal(await page.getAttribute('#make-demo', 'title'), 'Needs the operator role');
  step("the viewer's Make-the-demo-set button is greyed out, saying which role it needs");

  // Hiding a button is not a check: call the server function from the page
  // itself, with its session cookie and the CSRF token echoed as the
  // console's own client sends it.
  const answer = await page.evaluate(async () => {
    const csrf = document.cookie.split(';').map((c) => c.trim().split('=')).find(([k]) => k === 'sagedeck_csrf')?.[1] ?? '';
    const r = await fetch('/api/training/datasets/demo', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-sagedeck-csrf': csrf },
    });
    return { status: r.status, body: await r.json() };
  });
  assert.equal(answer.status, 403, JSON.stringify(answer));
  assert.match(answer.body.message, /viewer is signed in as viewer, and POST \/api\/training\/datasets\/demo needs the operator role/);
  step('the server refuses the same call made by hand from the page (403, the role named)');

  await page.goto(base + '/journal');
  await page.waitForSelector('body[data-hydrated="true"]');
  await page.fill('#journal-actor', 'viewer');
  await page.waitForURL(/\/journal\?user=viewer$/);
  await page.selectOption('#journal-outcome', 'failed');
  // The filters live in the URL: the view can be shared and reloaded.
  await page.waitForURL(/\/journal\?user=viewer&outcome=failed$/);
  // The unfiltered list already holds the refusal: wait for the filters'
  // answer (only the viewer's failures) rather than for that row.
  await page.waitForFunction(() => {
    const rows = [...document.querySelectorAll('#changes tbody tr')].map((e) => e.dataset.action);
    return rows.includes('auth.denied') && rows.every((a) => a === 'auth.denied' || a === 'auth.login');
  }, null, { timeout: 15_000 }).catch(() => {});
  // The rows and their count are two answers: a refusal journaled between
  // them (the server journals them as they happen) shows in one and not yet
  // the other, so read both again from a reload until they agree.
  let rows = [];
  let count = '';
  for (let attempt = 0; attempt < 5; attempt++) {
    if (attempt > 0) {
      await page.reload();
      await page.waitForSelector('body[data-hydrated="true"]');
      await page.waitForSelector('#journal-count');
    }
    rows = await page.$$eval('#changes tbody tr', (r) => r.map((e) => e.dataset.action));
    count = await page.textContent('#journal-count');
    if (new RegExp(`^${rows.length} of ${rows.length} changes? matching`).test(count)) break;
  }
  assert.ok(rows.length >= 1 && rows.every((a) => a === 'auth.denied' || a === 'auth.login'), rows.join(','));
  if (shots) await page.screenshot({ path: `${shots}/journal-denied.png`, fullPage: true });
  assert.match(count, new RegExp(`^${rows.length} of ${rows.length} changes? matching`), `rows: ${rows.join(',')}`);
  await page.reload();
  await page.waitForSelector('body[data-hydrated="true"]');
  assert.equal(await page.inputValue('#journal-actor'), 'viewer');
  assert.equal(await page.inputValue('#journal-outcome'), 'failed');
  step(`the journal, filtered to the viewer's failures, lists the refusal (${rows.length} rows, counted) and keeps the filters in its URL`);

  await page.click('#sign-out');
  await page.waitForURL(/\/login/);
  await page.goto(base + '/');
  assert.match(page.url(), /\/login\?next=\/$/);
  step('signed out: pages send to the sign-in form again');

  assert.deepEqual(csp, [], 'no Content-Security-Policy violations');
  assert.deepEqual(unexpected(problems), [], 'no page or console errors');
  console.log('browser: all checks passed');
} catch (e) {
  if (shots) await page.screenshot({ path: `${shots}/auth-failure.png`, fullPage: true }).catch(() => {});
  console.error(`browser: FAILED at ${page.url()}\n${e.stack || e}`);
  if (problems.length) console.error(problems.join('\n'));
  process.exitCode = 1;
} finally {
  await browser.close();
}
