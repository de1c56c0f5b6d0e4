// ui.cjs - time the labeling UI's snapshot view in headless chromium (Debian's,
// driven by playwright-core from labeling-ui/node_modules): log in once, then
// load /#/snapshot/ID afresh N times and read the page's own Performance API
// marks.  'snapshot-interactive' is set once every waveform is drawn and the
// key handlers are attached; its startTime is milliseconds from the start of
// the navigation.  Then zoom and pan by key (zoomPan): ZOOM_ROUNDS rounds
// with each key sent as soon as the last window is drawn, then half as many
// with a rest of ZOOM_REST_MS before each key (the spectra of the last
// window are then on their way when it comes).  Env: BASE, USERNAME,
// PASSWORD, SNAPSHOT, RUNS (default 30), ZOOM_ROUNDS (4), ZOOM_REST_MS
// (400), CHROMIUM.  Prints one line per load, median / p95 / max, and where
// the time went (each answer received, the page's marks; per step the key
// to the request, the request and its parse, the draw).
'use strict';
const path = require('path');
const fs = require('fs');
const os = require('os');
const root = path.resolve(__dirname, '..');
const { chromium } = require(require.resolve('playwright-core', { paths: [path.join(root, 'labeling-ui')] }));

const { BASE, USERNAME, PASSWORD, SNAPSHOT } = process.env;
const RUNS = Number(process.env.RUNS || 30), WARMUP = 3, ZOOM_ROUNDS = Number(process.env.ZOOM_ROUNDS || 4);
const ZOOM_REST_MS = Number(process.env.ZOOM_REST_MS || 400);

const q = (v, p) => { const s = [...v].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]; };

// Zoom and pan as an operator does, by key, on the snapshot last loaded: each
// step from the key press to the new window drawn ('view-drawn', set by the
// page once the samples are fetched and every channel redrawn), and the part
// of it after the key's pause (the page waits FETCH_AFTER_MS for keys to
// stop before it fetches): fetch, decode and draw.
async function zoomPan(page, rounds, restMs) {
  const keys = ['+', '+', '+', 'ArrowRight', 'ArrowRight', 'ArrowLeft', '+', '+', 'ArrowRight', '-', '-', '-', '-', '-', '0'];
  const total = [], work = [], fetch = [], draw = [], wait = [];
  for (let round = 0; round < rounds; round++) {
    for (const key of keys) {
      if (restMs) await page.waitForTimeout(restMs);
      const t = await page.evaluate(async (k) => {
        const before = performance.getEntriesByName('view-drawn').length;
        const t0 = performance.now();
        document.dispatchEvent(new KeyboardEvent('keydown', { key: k, bubbles: true }));
        const deadline = t0 + 10000;
        while (performance.getEntriesByName('view-drawn').length === before && performance.now() < deadline) {
          await new Promise((r) => setTimeout(r, 1));
        }
        const m = performance.getEntriesByName('view-drawn');
        if (m.length === before) return null;
        const last = m[m.length - 1];
        return { total: last.startTime - t0, work: last.startTime - last.detail.fetchStart,
          fetch: last.detail.fetchEnd - last.detail.fetchStart, draw: last.startTime - last.detail.fetchEnd,
          wait: last.detail.fetchStart - t0 };
      }, key);
      if (!t) throw new Error(`no redraw after key ${key}`);
      total.push(t.total);
      work.push(t.work);
      fetch.push(t.fetch);
      draw.push(t.draw);
      wait.push(t.wait);
    }
  }
  const how = restMs ? `, ${restMs} ms rest before each key` : ', each key as soon as the last window is drawn';
  console.log(`zoom/pan${how}:`);
  console.log(`zoom/pan: key -> redrawn      median ${q(total, 0.5).toFixed(1)} ms  p95 ${q(total, 0.95).toFixed(1)} ms  max ${Math.max(...total).toFixed(1)} ms  (${total.length} steps)`);
  for (const [v, label] of [[work, 'fetch + draw only'], [wait, '  key to fetch start'], [fetch, '  fetch + parse'], [draw, '  draw']]) {
    console.log(`zoom/pan: ${label.padEnd(20)}median ${q(v, 0.5).toFixed(1)} ms  p95 ${q(v, 0.95).toFixed(1)} ms  max ${Math.max(...v).toFixed(1)} ms`);
  }
}

// The page asks for the spectra of what it shows once it is interactive
// (and after a zoom or pan, once the view rests): a third of a second of
// the server's CPU for a million samples per channel.  The next load waits
// for them, as an operator's next snapshot comes after this one's spectra:
// reloading at once would time each load against the last one's spectra.
async function spectraSettled(page) {
  await page.waitForFunction(() => {
    const s = document.getElementById('spectra-status');
    return !s || (s.textContent !== '' && !/^computing/.test(s.textContent));
  }, null, { timeout: 30000 });
}

(async () => {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'precursor-bench-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 800 },
  });
  // The first animation frame that starts with the snapshot interactive
  // (its waveforms drawn into their canvases): the same point in time
  // whatever a page's own marks measure, so two builds of the page compare.
  await ctx.addInitScript(() => {
    const probe = () => {
      if (performance.getEntriesByName('snapshot-interactive').length) performance.mark('bench-frame');
      else requestAnimationFrame(probe);
    };
    requestAnimationFrame(probe);
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
    const rows = { ready: [], drawn: [], nav: [], dcl: [], own: [], js: [], session: [], classes: [], samples: [], fetched: [], frame: [] };
    for (let i = 0; i < WARMUP + RUNS; i++) {
      await page.goto('about:blank');
      await page.goto(`${BASE}/#/snapshot/${SNAPSHOT}`);
      await page.waitForFunction(() => performance.getEntriesByName('bench-frame').length > 0, null, { timeout: 20000 });
      const m = await page.evaluate(() => {
        const at = (n) => { const e = performance.getEntriesByName(n)[0]; return e ? e.startTime : NaN; };
        // baseline of the same load: the page's own HTML parsed (DOMContentLoaded)
        const dcl = performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd;
        // where the time went: each resource's answer received, from navigation start
        const res = (re) => { const e = performance.getEntriesByType('resource').find((r) => re.test(r.name)); return e ? e.responseEnd : NaN; };
        return { dcl, nav: at('snapshot-nav'), drawn: at('snapshot-drawn'), ready: at('snapshot-interactive'), frame: at('bench-frame'),
          js: res(/\/ui\/app\.js/), session: res(/\/api\/v1\/session/), classes: res(/\/api\/v1\/classes/),
          samples: res(/\/samples\?/), fetched: at('snapshot-fetched'),
          chans: document.querySelectorAll('.plots .chan').length };
      });
      if (m.chans < 1) throw new Error('no waveform drawn');
      await spectraSettled(page);
      if (i < WARMUP) continue;
      m.own = m.ready - m.dcl;
      for (const k of Object.keys(rows)) rows[k].push(m[k]);
      console.log(`load ${i - WARMUP + 1}: route ${m.nav.toFixed(1)} ms, drawn ${m.drawn.toFixed(1)} ms, interactive ${m.ready.toFixed(1)} ms, first frame ${m.frame.toFixed(1)} ms (${m.chans} channels)`);
    }
    for (const [k, label] of [['js', '  app.js received'], ['dcl', 'baseline: DOMContentLoaded'], ['session', '  session answered'],
      ['classes', '  classes answered'], ['nav', 'snapshot route entered'], ['samples', '  samples answered'],
      ['fetched', '  all answers in'], ['drawn', 'waveforms drawn'], ['ready', 'interactive'], ['frame', 'first frame interactive'], ['own', 'interactive - baseline']]) {
      console.log(`${label.padEnd(24)} median ${q(rows[k], 0.5).toFixed(1)} ms  p95 ${q(rows[k], 0.95).toFixed(1)} ms  max ${Math.max(...rows[k]).toFixed(1)} ms  (${RUNS} loads, from navigation start)`);
    }
    await zoomPan(page, ZOOM_ROUNDS, 0);
    await spectraSettled(page);
    // An operator who looks at each window: the spectra of the last one are
    // being computed when the next key comes.
    await zoomPan(page, Math.max(1, ZOOM_ROUNDS >> 1), ZOOM_REST_MS);
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
