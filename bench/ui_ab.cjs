// ui_ab.cjs - bench/ui_ab.sh's page part: two servers (SIDES, a JSON array
// of { name, BASE, USERNAME, PASSWORD, SNAPSHOT }), one headless chromium
// context each, logged in; then /#/snapshot/ID loaded afresh on each in
// turn (the order alternating), 3 warm-up loads and RUNS timed ones per
// side, each load waiting for its spectra as bench/ui.cjs does.  Per load
// the first animation frame that starts with 'snapshot-interactive' set (the
// bench's own probe, the same point whatever a build's marks mean), and
// where it went: app.js received, DOMContentLoaded, the samples answered.
'use strict';
const path = require('path');
const fs = require('fs');
const os = require('os');
const root = path.resolve(__dirname, '..');
const { chromium } = require(require.resolve('playwright-core', { paths: [path.join(root, 'labeling-ui')] }));

const RUNS = Number(process.env.RUNS || 30), WARMUP = 3;
const sides = JSON.parse(process.env.SIDES);
const q = (v, p) => { const s = [...v].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]; };

async function open(s) {
  s.profile = fs.mkdtempSync(path.join(os.tmpdir(), 'precursor-bench-ab-'));
  s.ctx = await chromium.launchPersistentContext(s.profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 800 },
  });
  await s.ctx.addInitScript(() => {
    const probe = () => {
      if (performance.getEntriesByName('snapshot-interactive').length) performance.mark('bench-frame');
      else requestAnimationFrame(probe);
    };
    requestAnimationFrame(probe);
  });
  s.page = s.ctx.pages()[0] || await s.ctx.newPage();
  s.errors = [];
  s.page.on('pageerror', (e) => s.errors.push(String(e)));
  await s.page.goto(s.BASE + '/');
  await s.page.waitForSelector('#login', { timeout: 10000 });
  await s.page.fill('#username', s.USERNAME);
  await s.page.fill('#password', s.PASSWORD);
  await s.page.click('#login button[type=submit]');
  await s.page.waitForSelector('#queue', { timeout: 10000 });
  s.rows = { frame: [], js: [], dcl: [], samples: [] };
}

async function load(s) {
  await s.page.goto('about:blank');
  await s.page.goto(`${s.BASE}/#/snapshot/${s.SNAPSHOT}`);
  await s.page.waitForFunction(() => performance.getEntriesByName('bench-frame').length > 0, null, { timeout: 20000 });
  const m = await s.page.evaluate(() => {
    const res = (re) => { const e = performance.getEntriesByType('resource').find((r) => re.test(r.name)); return e ? e.responseEnd : NaN; };
    return { frame: performance.getEntriesByName('bench-frame')[0].startTime, js: res(/\/ui\/app\.js/),
      dcl: performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd, samples: res(/\/samples\?/) };
  });
  await s.page.waitForFunction(() => {
    const e = document.getElementById('spectra-status');
    return !e || (e.textContent !== '' && !/^computing/.test(e.textContent));
  }, null, { timeout: 30000 });
  return m;
}

(async () => {
  let rc = 0;
  try {
    for (const s of sides) await open(s);
    for (let i = 0; i < WARMUP + RUNS; i++) {
      for (const s of i % 2 ? sides : [...sides].reverse()) {
        const m = await load(s);
        if (i >= WARMUP) for (const k of Object.keys(s.rows)) s.rows[k].push(m[k]);
      }
    }
    for (const s of sides) {
      console.log(`${s.name}: ` + [['frame', 'first frame interactive'], ['js', 'app.js received'], ['dcl', 'DOMContentLoaded'], ['samples', 'samples answered']]
        .map(([k, label]) => `${label} median ${q(s.rows[k], 0.5).toFixed(1)} ms p95 ${q(s.rows[k], 0.95).toFixed(1)} ms`).join('; ') + ` (${RUNS} loads)`);
      if (s.errors.length) { console.log(`${s.name}: page errors: ${s.errors.join(' | ')}`); rc = 1; }
    }
  } catch (e) {
    console.log('bench failed: ' + (e.stack || e));
    rc = 1;
  } finally {
    for (const s of sides) {
      if (s.ctx) await s.ctx.close();
      if (s.profile) fs.rmSync(s.profile, { recursive: true, force: true });
    }
  }
  process.exit(rc);
})();
