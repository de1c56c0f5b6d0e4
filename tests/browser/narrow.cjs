// narrow.cjs - every page in a window 800 px wide (a laptop's half screen,
// a tablet), as an admin, against the server run.sh filled (live and demo
// snapshots, the dataset and models pages.cjs made): the page itself never
// scrolls sideways; each table wider than the window scrolls inside its own
// box, its header row moving with its columns and staying at the box's top
// (lib.cjs tableBoxes).  The deployments page's are checked by
// deployments.cjs, where a model is deployed.
// Env: BASE, ADMIN_USERNAME/ADMIN_PASSWORD, TOKEN (ml token), ARTIFACTS,
// CHROMIUM.  Prints PASS/FAIL lines; exit status 1 on any failure.
'use strict';
const { BASE, run, finish, login, api, shot, tableBoxes, checkTableBoxes } = require('./lib.cjs');

// hash, what shows once the page is drawn, whether a table of it is wider
// than 800 px (the pages whose one-line cells need more room), and what to
// open on it first.
const PAGES = [
  ['#/queue', '#queue tbody tr', true],
  ['#/rules', '#rules tbody tr', true],
  ['#/ops', '#ops-table tbody tr', true],
  ['#/fleet', '#fleet tbody tr', true],
  ['#/datasets', '#datasets tbody tr[data-dataset]', true, async (page) => {
    await page.click('#datasets tbody tr[data-dataset]');
    await page.waitForSelector('table.versions', { timeout: 10000 });
  }],
  ['#/models', '#models tbody tr[data-model]', true, async (page) => {
    await page.click('#models tbody tr[data-model]');
    await page.waitForSelector('#model-deployments-link', { timeout: 10000 });
  }],
  ['#/classes', '#assets tbody tr', true],
  ['#/admin/users', '#users tbody tr', false],
  ['#/deployments', '#alarm-budget', false],
];

(async () => {
  const t = await run({ name: 'browser-narrow', viewport: { width: 800, height: 800 }, failureShot: 'ui-narrow-failure.png' },
    async ({ page, errors, check }) => {
    await page.goto(BASE + '/#/queue');
    await login(page, process.env.ADMIN_USERNAME, process.env.ADMIN_PASSWORD);
    await page.waitForSelector('#logout:not([hidden])', { timeout: 10000 });
    for (const [hash, ready, wantWide, open] of PAGES) {
      await page.evaluate((h) => { location.hash = h; }, hash);
      await page.waitForSelector(ready, { timeout: 15000 });
      if (open) await open(page);
      checkTableBoxes(check, `${hash} at 800 px`, await tableBoxes(page), wantWide);
    }
    await shot(page, 'ui-narrow-users.png', { main: false, fullPage: false });
    // the header wraps its parts rather than push the page sideways, with a
    // long page name and a long user name (loop-admin's pushed it by 12 px)
    const model = (await api('GET', '/api/v1/models')).body.items[0];
    await page.evaluate((h) => { location.hash = h; }, `#/deployments/${model.id}`);
    await page.waitForSelector('#alarm-budget', { timeout: 15000 });
    const header = await page.evaluate(() => {
      document.getElementById('who').textContent = 'a-rather-long-user-name (operator)';
      return { over: document.documentElement.scrollWidth - innerWidth, crumbs: document.getElementById('crumbs').textContent };
    });
    check('the header wraps a long page name and user name instead of scrolling the page', header.over <= 0, JSON.stringify(header));
    // the snapshot view: its side panel goes under the plots (no table)
    const snap = (await api('GET', '/api/v1/queue?limit=1')).body.items[0];
    await page.evaluate((h) => { location.hash = h; }, `#/snapshot/${snap.id}`);
    await page.waitForSelector('.plots .chan .u-over', { timeout: 15000 });
    await page.waitForSelector('#spectra .spectrum-cell canvas', { timeout: 15000 });
    checkTableBoxes(check, '#/snapshot at 800 px', await tableBoxes(page), false);
    await page.evaluate(() => { location.hash = '#/queue'; });
    await page.waitForSelector('#queue tbody tr', { timeout: 15000 });
    await shot(page, 'ui-narrow-queue.png', { main: false, fullPage: false });
    check('no errors in the browser console', errors.length === 0, errors.join(' | '));
  });
  finish(t);
})();
