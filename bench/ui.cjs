// ui.cjs - time the labeling UI's snapshot view in headless chromium (Debian's,
// driven by playwright-core from labeling-ui/node_modules): log in once, then
// load /#/snapshot/ID afresh N times and read the page's own Performance API
// marks.  'snapshot-interactive' is set once every waveform is drawn and the
// key handlers are attached; its startTime is milliseconds from the start of
// the navigation.  Env: BASE, USERNAME, PASSWORD, SNAPSHOT, RUNS (default 30),
// CHROMIUM.  Prints one line per load and median / p95 / max.
'use strict';
const path = require('path');
const fs = require('fs');
const os = require('os');
const root = path.resolve(__dirname, '..');
const { chromium } = require(require.resolve('playwright-core', { paths: [path.join(root, 'labeling-ui')] }));

const { BASE, USERNAME, PASSWORD, SNAPSHOT } = process.env;
const RUNS = Number(process.env.RUNS || 30), WARMUP = 3;

const q = (v, p) => { const s = [...v].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]; };

(async () => {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'precursor-bench-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 800 },
  });
  const page = ctx.pages()[0] || await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  let rc = 0;
  try {
    await page.goto(BASE + '/');
    await page.waitForSelector('#login', { timeout: 10000 });
    await page.fill('#username', USERNAME);
    await page.fill('#password', PASSWORD);
    await page.click('#login button[type=submit]');
    await page.waitForSelector('#queue', { timeout: 10000 });
    const rows = { ready: [], drawn: [], nav: [], dcl: [], own: [] };
    for (let i = 0; i < WARMUP + RUNS; i++) {
      await page.goto('about:blank');
      await page.goto(`${BASE}/#/snapshot/${SNAPSHOT}`);
      await page.waitForFunction(() => performance.getEntriesByName('snapshot-interactive').length > 0, null, { timeout: 20000 });
      const m = await page.evaluate(() => {
        const at = (n) => performance.getEntriesByName(n)[0].startTime;
        // baseline of the same load: the page's own HTML parsed (DOMContentLoaded)
        const dcl = performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd;
        return { dcl, nav: at('snapshot-nav'), drawn: at('snapshot-drawn'), ready: at('snapshot-interactive'),
          chans: document.querySelectorAll('.plots .chan').length };
      });
      if (m.chans < 1) throw new Error('no waveform drawn');
      if (i < WARMUP) continue;
      m.own = m.ready - m.dcl;
      for (const k of Object.keys(rows)) rows[k].push(m[k]);
      console.log(`load ${i - WARMUP + 1}: route ${m.nav.toFixed(1)} ms, drawn ${m.drawn.toFixed(1)} ms, interactive ${m.ready.toFixed(1)} ms (${m.chans} channels)`);
    }
    for (const [k, label] of [['dcl', 'baseline: DOMContentLoaded'], ['nav', 'snapshot route entered'], ['drawn', 'waveforms drawn'],
      ['ready', 'interactive'], ['own', 'interactive - baseline']]) {
      console.log(`${label.padEnd(24)} median ${q(rows[k], 0.5).toFixed(1)} ms  p95 ${q(rows[k], 0.95).toFixed(1)} ms  max ${Math.max(...rows[k]).toFixed(1)} ms  (${RUNS} loads, from navigation start)`);
    }
    if (errors.length) { console.log('page errors: ' + errors.join(' | ')); rc = 1; }
  } catch (e) {
    console.log('bench failed: ' + (e.stack || e));
    rc = 1;
  } finally {
    await ctx.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
  process.exit(rc);
})();
