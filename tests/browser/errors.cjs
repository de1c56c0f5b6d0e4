// errors.cjs - an error from the server is shown in words on the page,
// never only in the console: answers the server gives rarely (a database
// that went away, an export that failed on its worker, a refused
// acknowledgement) are made up by intercepting the page's requests, as an
// admin, against the server run.sh filled (live snapshots with alerts, the
// dataset pages.cjs froze):
//  - the queue's alert column when the alerts cannot be read;
//  - a dataset export whose job failed: its reason beside the bar;
//  - a refused Acknowledge in the snapshot view's alert card, as an error;
//  - the rule editor's check refused (not a parse error);
//  - a session that ends on the server while the page is open (its cookie
//    gone): the login form comes back saying so, not the API's "missing or
//    invalid bearer token", and logging in again shows the page asked for.
// Env: BASE, ADMIN_USERNAME/ADMIN_PASSWORD, TOKEN (ml token), ARTIFACTS,
// CHROMIUM.  Prints PASS/FAIL lines; exit status 1 on any failure.
'use strict';
const { BASE, run, finish, login, apiGet, shot } = require('./lib.cjs');

// The error answer the server gives, {"error":{"code","message"}}.
const refuse = (status, message) => (r) => r.fulfill({
  status, contentType: 'application/json', body: JSON.stringify({ error: { code: 'test', message } }),
});

async function open(page, hash, ready) {
  await page.evaluate((h) => { location.hash = h; }, hash);
  await page.waitForSelector(ready, { timeout: 10000 });
}

(async () => {
  // chromium logs each made-up refusal as a failed load: those are allowed
  const t = await run({
    name: 'browser-errors', viewport: { width: 1280, height: 900 }, failureShot: 'ui-errors-failure.png',
    allowConsole: (text) => /status of (401|403|409|503)/.test(text),
  }, async ({ page, errors, check }) => {
    const snap = (await apiGet('/api/v1/queue?limit=1')).body.items[0];
    const ds = (await apiGet('/api/v1/datasets')).body.items.find((d) => d.versions > 0);

    await page.route('**/api/v1/alerts?*', refuse(503, 'database unavailable'));
    await page.goto(BASE + '/#/queue');
    await login(page, process.env.ADMIN_USERNAME, process.env.ADMIN_PASSWORD);
    await page.waitForSelector('#queue tbody tr.row', { timeout: 10000 });
    await page.waitForSelector('#alerts-error', { timeout: 10000 }).catch(() => {});
    const alertsErr = await page.textContent('#alerts-error').catch(() => '');
    check('queue: alerts that cannot be read are said so in the alert column\'s head',
      /not loaded: database unavailable/.test(alertsErr), alertsErr || 'nothing shown');
    await page.unroute('**/api/v1/alerts?*');

    // an export whose job failed on its worker
    await page.route('**/api/v1/datasets/*/versions/*/export-jobs', (r) => r.fulfill({
      status: 202, contentType: 'application/json', body: JSON.stringify({ id: 424242, status: 'queued' }),
    }));
    await page.route('**/api/v1/export-jobs/424242', (r) => r.fulfill({
      status: 200, contentType: 'application/json',
      body: JSON.stringify({ id: 424242, status: 'failed', percent: 40, rows_done: 4, rows_total: 10, error: 'no space left on device' }),
    }));
    await open(page, '#/datasets', `#datasets tr[data-dataset="${ds.id}"]`);
    await page.click(`#datasets tr[data-dataset="${ds.id}"]`);
    await page.waitForSelector(`#versions-${ds.id} [data-act=export]`, { timeout: 10000 });
    await page.click(`#versions-${ds.id} [data-act=export]`);
    await page.waitForSelector('.export-error', { timeout: 5000 }).catch(() => {});
    const exportBox = await page.textContent(`#versions-${ds.id} .export-box`);
    check('Datasets: a failed export says why, beside its bar', /failed/.test(exportBox) && /no space left on device/.test(exportBox), exportBox);
    await shot(page, 'ui-errors-export.png', { main: false });

    // a refused acknowledgement
    await page.route('**/api/v1/alerts/*/ack', refuse(409, 'the alert was acknowledged meanwhile'));
    await open(page, `#/snapshot/${snap.id}`, '#alert-card #a-ack');
    await page.click('#a-ack');
    await page.waitForSelector('#alert-status.error', { timeout: 5000 }).catch(() => {});
    const ackErr = await page.$eval('#alert-status', (e) => ({ cls: e.className, text: e.textContent }));
    check('snapshot: a refused Acknowledge is shown as an error, in words',
      ackErr.cls === 'error' && /acknowledged meanwhile/.test(ackErr.text), JSON.stringify(ackErr));

    // the rule editor's check refused by the server (not a parse error)
    await page.route('**/api/v1/rules/validate', refuse(503, 'database unavailable'));
    await open(page, '#/rules', '#rule-expr');
    await page.fill('#rule-expr', 'kurtosis(ch("accel_x")) > 4 => bearing_outer_race');
    await page.click('#rule-validate');
    await page.waitForSelector('#rule-error', { timeout: 5000 }).catch(() => {});
    const ruleErr = await page.textContent('#rule-check');
    check('rules: a refused check is shown as an error, in words',
      (await page.$('#rule-check.bad #rule-error')) !== null && /database unavailable/.test(ruleErr), ruleErr);

    await page.unroute('**/api/v1/rules/validate');

    // the session ends on the server (expired, a new password): its cookie goes
    await page.context().clearCookies();
    await page.evaluate(() => { location.hash = '#/fleet'; });
    await page.waitForSelector('#login', { timeout: 10000 }).catch(() => {});
    const ended = await page.evaluate(() => ({
      form: !!document.getElementById('login'), why: (document.getElementById('login-error') || {}).textContent || '',
      page: document.getElementById('app').textContent.slice(0, 120), who: document.getElementById('who').textContent,
    }));
    check('a session ended on the server: the login form again, saying why, nobody shown as signed in',
      ended.form && /session has ended/.test(ended.why) && !/bearer/.test(ended.page) && ended.who === '', JSON.stringify(ended));
    if (ended.form) {
      await login(page, process.env.ADMIN_USERNAME, process.env.ADMIN_PASSWORD);
      await page.waitForSelector('#fleet', { timeout: 10000 }).catch(() => {});
      check('logging in again shows the page asked for', (await page.$('#fleet')) !== null, await page.evaluate(() => location.hash));
    }

    check('no errors in the browser console', errors.length === 0, errors.join(' | '));
  });
  finish(t);
})();
