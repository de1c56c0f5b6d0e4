// deployments.cjs - the deployments page in a real browser (Debian chromium
// through playwright-core, launched by lib.cjs), against the server
// tests/integration/model_loop.sh left behind: a good model promoted to
// active and a bad one forced active and rolled back on loop-dev-1.
//  - #/deployments/<bad model>: the forced active deployment shows the
//    device as rolled back with the rollback's numbers (alerts per hour
//    against the budget); the rollbacks card names the device; the shadow
//    deployment the device returned to shows the predicted alarm fraction,
//    the API's number;
//  - the alarm budget card shows the fleet setting; an admin saves a change
//    and the API has it;
//  - 800 px wide, its tables scroll in their own boxes, never the page;
//  - an operator sees the shadow deployment without Promote, and why.
// Env: BASE, ADMIN_USERNAME/ADMIN_PASSWORD, OP_USERNAME/OP_PASSWORD, TOKEN
// (ml token), BAD (model id), CHROMIUM.  Prints PASS/FAIL lines; exit status 1 on any failure.
'use strict';
const { BASE, run, finish, login, apiGet, tableBoxes, checkTableBoxes } = require('./lib.cjs');

const body = async (p) => (await apiGet(p)).body;

(async () => {
  // a load refused 401 is let through (the visit starts logged out); every
  // other console error counts
  const t = await run({
    name: 'browser-deployments', viewport: { width: 1400, height: 900 }, failName: 'deployments page',
    allowConsole: (text) => /Failed to load resource: .* 401/.test(text),
  }, async ({ page, errors, check }) => {
    await page.goto(`${BASE}/#/deployments/${process.env.BAD}`);
    await login(page, process.env.ADMIN_USERNAME, process.env.ADMIN_PASSWORD);
    await page.waitForSelector('#rollbacks', { timeout: 15000 });
    const bad = await body(`/api/v1/models/${process.env.BAD}/deployments`);
    const dep = bad.items[0];
    const row = page.locator(`#deployment-${dep.id} tr[data-device="loop-dev-1"]`);
    const text = (await row.count()) ? await row.innerText() : '';
    check('rolled-back device shown with its numbers', /rolled back/.test(text) && /alerts\/hour/.test(text) &&
      /budget/.test(text), JSON.stringify(text));
    const rb = await page.locator('#rollbacks').innerText();
    check('rollbacks card names the device', rb.includes('loop-dev-1') && rb.includes('alerts/hour'), rb.slice(0, 200));

    const back = bad.items.find((x) => x.mode === 'shadow');
    const d = back.devices_status[0];
    const cell = await page.locator(`#deployment-${back.id} tr[data-device="loop-dev-1"]`).innerText().catch(() => '');
    // a prediction of 0 reads as the bound the held-out windows resolve
    const pct = (f) => { const p = 100 * f; return `${p >= 1 || p === 0 ? p.toFixed(2) : p.toPrecision(2)} %`; };
    const want = d.predicted_alarm_fraction === 0 && d.predicted_fraction_floor > 0
      ? `< ${pct(d.predicted_fraction_floor)}` : pct(d.predicted_alarm_fraction);
    check('the deployment it returned to shows the predicted alarm fraction', cell.includes(want) &&
      /shadow/.test(cell), `${JSON.stringify(cell)} lacks ${want}`);

    await page.fill('#alarm-budget input[name=per_operator_hour]', '700');
    await page.click('#alarm-budget button[type=submit]');
    let saved = 0;
    for (let i = 0; i < 20 && saved !== 700; i++) {
      await new Promise((r) => setTimeout(r, 250));
      saved = (await body('/api/v1/alarm-budget')).per_operator_hour;
    }
    check('admin changes the alarm budget from the page', saved === 700, `API says ${saved}`);
    await page.waitForSelector('#budget-note:has-text("saved")', { timeout: 10000 }).catch(() => {});
    const savedNote = await page.textContent('#budget-note').catch(() => '');
    check('the page says the budget was saved', savedNote === 'Alarm budget saved.', savedNote);
    // 800 px wide: the deployments' tables scroll in their own boxes, not the page
    await page.setViewportSize({ width: 800, height: 800 });
    checkTableBoxes(check, 'the deployments page at 800 px', await tableBoxes(page), true);
    await page.setViewportSize({ width: 1400, height: 900 });
    // the Fleet page's "model assigned" leads to that model's deployments page
    const dev = await body('/api/v1/devices/loop-dev-1');
    await page.click('#fleet-link');
    await page.waitForSelector('#fleet tr[data-device="loop-dev-1"]', { timeout: 10000 });
    const assignedHref = await page.getAttribute('#fleet tr[data-device="loop-dev-1"] a.model-assigned', 'href').catch(() => null);
    check('Fleet: the assigned model links to its deployments page',
      dev && dev.model && dev.model.assigned && assignedHref === `#/deployments/${dev.model.assigned}`,
      `${assignedHref} vs ${JSON.stringify(dev && dev.model)}`);
    // an operator sees the shadow deployment without Promote, and why
    await page.click('#logout');
    await login(page, process.env.OP_USERNAME, process.env.OP_PASSWORD);
    await page.waitForSelector('#logout:not([hidden])', { timeout: 10000 });
    await page.evaluate((h) => { location.hash = h; }, `#/deployments/${process.env.BAD}`);
    await page.waitForSelector(`#deployment-${back.id}`, { timeout: 10000 });
    const card = page.locator(`#deployment-${back.id}`);
    const line = await card.locator('.promote-read-only').innerText().catch(() => '');
    check('operator: a shadow deployment without Promote, saying it needs the ml or admin role',
      (await card.locator('button').count()) === 0 && /needs the ml or admin role/.test(line), JSON.stringify(line));
    check('no console errors', errors.length === 0, errors.join(' | '));
  });
  finish(t);
})();
