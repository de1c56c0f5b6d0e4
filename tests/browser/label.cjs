// label.cjs - drives Debian's chromium through playwright-core (from
// labeling-ui/node_modules; no browser is downloaded) against a running
// server: log in, queue, snapshot, drag a span on chosen channels, pick a
// class by key, save, reload, and check through the REST API that the label
// is stored as made.  Env: BASE, USERNAME, PASSWORD, TOKEN (ml token),
// SHOT_DIR (screenshots), CHROMIUM (default /usr/bin/chromium).
// Prints PASS/FAIL lines; exit status 1 on any failure.
'use strict';
const path = require('path');
const fs = require('fs');
const os = require('os');
const root = path.resolve(__dirname, '../..');
const { chromium } = require(require.resolve('playwright-core', { paths: [path.join(root, 'labeling-ui')] }));

const BASE = process.env.BASE;
const SHOT_DIR = process.env.SHOT_DIR || os.tmpdir();
let fails = 0, passes = 0;
const pass = (n) => { passes++; console.log(`PASS browser: ${n}`); };
const fail = (n, why) => { fails++; console.log(`FAIL browser: ${n}: ${why}`); };
const check = (n, ok, why) => (ok ? pass(n) : fail(n, why));

async function apiGet(p, auth = true) {
  const r = await fetch(BASE + p, { headers: auth ? { Authorization: `Bearer ${process.env.TOKEN}` } : {} });
  return { status: r.status, body: await r.json().catch(() => null) };
}

(async () => {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'precursor-chromium-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 800 },
  });
  const page = ctx.pages()[0] || await ctx.newPage();
  const consoleErrors = [];
  // The logged-out probe, the wrong password and the CSRF check answer 401
  // and 403 on purpose; chromium logs those loads.  Anything else counts.
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource: .* (401|403)/.test(m.text())) consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  try {
    // logged out: the API refuses, the page shows the login form
    const anon = await apiGet('/api/v1/queue', false);
    check('logged-out API request refused', anon.status === 401, `status ${anon.status}`);
    await page.goto(BASE + '/');
    await page.waitForSelector('#login', { timeout: 10000 });
    await page.fill('#password', 'wrong-password');
    await page.fill('#username', process.env.USERNAME);
    await page.click('#login button[type=submit]');
    await page.waitForFunction(() => document.getElementById('login-error').textContent.length > 0);
    pass('wrong password refused');
    await page.fill('#password', process.env.PASSWORD);
    await page.click('#login button[type=submit]');
    await page.waitForSelector('#queue tbody tr.row', { timeout: 10000 });
    const cookies = await ctx.cookies(BASE);
    const sc = cookies.find((c) => c.name === 'prc_session');
    check('session cookie HttpOnly SameSite=Strict', sc && sc.httpOnly && sc.sameSite === 'Strict', JSON.stringify(sc));
    const left = await page.textContent('#left');
    check('queue shows how many are left', /^\d+ left to label$/.test(left), left);
    await page.screenshot({ path: path.join(SHOT_DIR, 'ui-queue.png') });

    // open the first (highest score, unlabeled) snapshot
    const id = Number(await page.getAttribute('#queue tbody tr.row', 'data-id'));
    await page.click('#queue tbody tr.row');
    await page.waitForSelector('.plots .chan .u-over', { timeout: 10000 });
    const nch = await page.locator('.plots .chan').count();
    check('snapshot view draws every channel', nch >= 1, `${nch} channels`);
    await page.waitForTimeout(300);

    // channels: all but channel 1 (when there is one)
    const want = [...Array(nch).keys()].filter((c) => nch === 1 || c !== 1);
    if (nch > 1) await page.uncheck('input[data-chsel="1"]');
    // drag from 30% to 45% of channel 0's plot area
    const over = await page.locator('.chan[data-ch="0"] .u-over').boundingBox();
    const y = over.y + over.height / 2;
    await page.mouse.move(over.x + over.width * 0.30, y);
    await page.mouse.down();
    await page.mouse.move(over.x + over.width * 0.38, y, { steps: 5 });
    await page.mouse.move(over.x + over.width * 0.45, y, { steps: 5 });
    await page.mouse.up();
    const span = await page.textContent('#form-span');
    check('drag marks a span', /\d+\.\d+ – \d+\.\d+ s/.test(span), span);
    await page.keyboard.press('4');                 // 4th class in the list
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => /saved label/.test(document.getElementById('status').textContent), null, { timeout: 5000 });
    pass('label saved from the keyboard (class key + Enter)');

    // zoom in by keyboard until the server sends raw samples
    for (let i = 0; i < 12; i++) await page.keyboard.press('+');
    await page.waitForFunction(() => /raw samples/.test(document.getElementById('status').textContent), null, { timeout: 5000 })
      .then(() => pass('keyboard zoom reaches raw samples'), (e) => fail('keyboard zoom reaches raw samples', e.message));
    await page.keyboard.press('0');
    await page.waitForTimeout(400);
    await page.screenshot({ path: path.join(SHOT_DIR, 'ui-snapshot.png') });

    // the label as the ML team sees it
    const classes = (await apiGet('/api/v1/classes')).body.items.map((c) => c.name);
    const labels = await apiGet(`/api/v1/snapshots/${id}/labels`);
    const l = labels.body && labels.body.items[0];
    check('one label stored', labels.status === 200 && labels.body.items.length === 1, JSON.stringify(labels.body));
    if (l) {
      check('label class from key 4', l.class === classes[3], `${l.class} vs ${classes[3]}`);
      check('label channels as selected', JSON.stringify(l.channels) === JSON.stringify(want), `${JSON.stringify(l.channels)} vs ${JSON.stringify(want)}`);
      check('label records who', l.created_by === process.env.USERNAME, l.created_by);
      check('label span inside the snapshot', l.start_s >= 0 && l.end_s > l.start_s, `${l.start_s}..${l.end_s}`);
    }

    // reload: still there
    await page.reload();
    await page.waitForSelector('#labels li[data-label]', { timeout: 10000 });
    pass('label shown after reload');

    // undo removes it, through the API too
    await page.keyboard.press('Escape');
    await page.click('#labels li[data-label] button');
    await page.waitForFunction(() => /deleted label/.test(document.getElementById('status').textContent), null, { timeout: 5000 });
    await page.keyboard.press('u');
    await page.waitForFunction(() => /undid delete/.test(document.getElementById('status').textContent), null, { timeout: 5000 });
    const after = await apiGet(`/api/v1/snapshots/${id}/labels`);
    check('delete then undo keeps one label', after.body.items.length === 1 && after.body.items[0].class === classes[3], JSON.stringify(after.body));
    const hist = await apiGet(`/api/v1/labels/${l.id}/history`);
    check('audit history keeps create and delete', hist.status === 200 && hist.body.items.map((h) => h.action).join() === 'create,delete', JSON.stringify(hist.body));

    // a state-changing request without the CSRF token is refused even with the cookie
    const csrf = await page.evaluate(async (sid) => (await fetch(`/api/v1/snapshots/${sid}/labels`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ start_s: 0, end_s: 0.1, channels: [0], class: 'other' }) })).status, id);
    check('POST without CSRF token refused', csrf === 403, `status ${csrf}`);

    check('no errors in the browser console', consoleErrors.length === 0, consoleErrors.join(' | '));
  } catch (e) {
    fail('browser run', e.stack || String(e));
    await page.screenshot({ path: path.join(SHOT_DIR, 'ui-failure.png') }).catch(() => {});
  } finally {
    await ctx.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
  console.log(`${passes} passed, ${fails} failed`);
  process.exit(fails ? 1 : 0);
})();
