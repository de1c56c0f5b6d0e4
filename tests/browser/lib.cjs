// lib.cjs - what every browser test here shares: Debian's chromium launched
// headless through playwright-core (from labeling-ui/node_modules; no
// browser is downloaded) in a throwaway profile, every error the page logs
// or throws collected, PASS/FAIL lines and their count, the login form
// filled in, the REST API called with a token, screenshots kept.
// A test calls run() with its body and exits with finish()'s status:
//
//   const t = await run({ name: 'browser-x', viewport: {...} }, async ({ page, errors, check }) => {
//     ...
//     check('no errors in the browser console', errors.length === 0, errors.join(' | '));
//   });
//   finish(t);
//
// Env: BASE (the server), TOKEN (the default API token), ARTIFACTS (where
// screenshots go; a temporary folder when unset), SHOT_DIR (optional: the
// main views copied there too), CHROMIUM (default /usr/bin/chromium).
'use strict';
const path = require('path');
const fs = require('fs');
const os = require('os');
const root = path.resolve(__dirname, '../..');
const { chromium } = require(require.resolve('playwright-core', { paths: [path.join(root, 'labeling-ui')] }));

const BASE = process.env.BASE;
const ARTIFACTS = process.env.ARTIFACTS || fs.mkdtempSync(path.join(os.tmpdir(), 'precursor-shots-'));
const SHOT_DIR = process.env.SHOT_DIR ? path.resolve(process.env.SHOT_DIR) : '';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// PASS/FAIL lines prefixed with the test's name, counted.
function reporter(name) {
  const t = { name, passes: 0, fails: 0 };
  t.pass = (n) => { t.passes++; console.log(`PASS ${name}: ${n}`); };
  t.fail = (n, why) => { t.fails++; console.log(`FAIL ${name}: ${n}: ${why}`); };
  t.check = (n, ok, why) => (ok ? t.pass(n) : t.fail(n, why));
  return t;
}

// Every console error and uncaught exception of page, in the array
// returned, except the console lines allow(text) lets through (a refusal a
// test provokes on purpose; uncaught exceptions are never let through).
function captureErrors(page, allow) {
  const errors = [];
  page.on('console', (m) => {
    if (m.type() === 'error' && !(allow && allow(m.text()))) errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(String(e)));
  return errors;
}

// The login form (already shown or on its way) filled in and sent.
async function login(page, user, pw) {
  await page.waitForSelector('#login', { timeout: 10000 });
  await page.fill('#username', user);
  await page.fill('#password', pw);
  await page.click('#login button[type=submit]');
}

// The REST API with a bearer token (TOKEN by default; null: none).
// { status, body } (body null when the answer is not JSON).
async function api(method, p, body, token = process.env.TOKEN) {
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch(BASE + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: r.status, body: await r.json().catch(() => null) };
}

const apiGet = (p, token) => api('GET', p, undefined, token);

// A screenshot into ARTIFACTS, and into SHOT_DIR too when it is one of the
// main views (main) and SHOT_DIR is set.
async function shot(page, name, { main = true, fullPage = true } = {}) {
  await page.screenshot({ path: path.join(ARTIFACTS, name), fullPage });
  if (main && SHOT_DIR) fs.copyFileSync(path.join(ARTIFACTS, name), path.join(SHOT_DIR, name));
}

// Launch chromium, run body({ page, ctx, errors, pass, fail, check }) and
// close it whatever happens.  A throw is one more failure (named
// opts.failName, 'browser run' by default) with a screenshot
// (opts.failureShot in ARTIFACTS) when asked.  opts: name (the PASS/FAIL
// prefix) or reporter (one made by reporter(), for a test whose helpers
// check outside body), viewport, allowConsole (see captureErrors).  Returns
// the counts.
async function run(opts, body) {
  const t = opts.reporter || reporter(opts.name);
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'precursor-chromium-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
    viewport: opts.viewport || { width: 1280, height: 800 },
  });
  const page = ctx.pages()[0] || await ctx.newPage();
  const errors = captureErrors(page, opts.allowConsole);
  try {
    await body({ page, ctx, errors, pass: t.pass, fail: t.fail, check: t.check });
  } catch (e) {
    t.fail(opts.failName || 'browser run', e.stack || String(e));
    if (opts.failureShot) await page.screenshot({ path: path.join(ARTIFACTS, opts.failureShot) }).catch(() => {});
  } finally {
    await ctx.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
  return t;
}

// The page's tables as a narrow window shows them (docs/UI.md: every table
// scrolls sideways in its own box, never the page): how far the page itself
// runs past the window (pageOver, > 0: it scrolls sideways), and per table
// whether it sits in its box (boxed), is wider than it (wide) and, for a
// wide one, how far scrolling the box to its end moved the header row and
// the body (scrolled, bodyScrolled: the same when they move together),
// whether the page moved instead (pageScrollX), whether the header row is
// inside the box's rectangle (headerInBox) and, for a box that also scrolls
// down, whether the header row stays at its top (headerStays).  Each box is
// put back where it was.
async function tableBoxes(page) {
  return page.evaluate(async () => {
    const frame = () => new Promise((r) => requestAnimationFrame(() => r()));
    const left = (e) => (e ? e.getBoundingClientRect().left : null);
    const out = { pageOver: document.documentElement.scrollWidth - innerWidth, tables: [] };
    // uPlot's legends are tables of its own, drawn within the chart's width
    for (const t of document.querySelectorAll('#app table:not(.u-legend)')) {
      const box = t.parentElement;
      const r = { table: t.id || t.className || 'table', boxed: box.classList.contains('table-scroll'), wide: false };
      out.tables.push(r);
      if (!r.boxed) { r.wide = t.getBoundingClientRect().right > innerWidth; continue; }
      r.wide = box.scrollWidth > box.clientWidth + 1;
      if (!r.wide) continue;
      r.overflowX = getComputedStyle(box).overflowX;
      const th = t.querySelector('th'), td = t.querySelector('td');
      const before = [left(th), left(td)];
      box.scrollLeft = box.scrollWidth;
      await frame();
      r.scrolled = before[0] - left(th);
      r.bodyScrolled = td ? before[1] - left(td) : r.scrolled;
      r.pageScrollX = window.scrollX;
      const b = box.getBoundingClientRect(), h = th.getBoundingClientRect();
      r.headerInBox = h.top >= b.top - 1 && h.bottom <= b.bottom + 1;
      box.scrollLeft = 0;
      if (box.scrollHeight > box.clientHeight + 1) {
        box.scrollTop = box.scrollHeight;
        await frame();
        r.headerStays = Math.abs(th.getBoundingClientRect().top - box.getBoundingClientRect().top) <= 1;
        box.scrollTop = 0;
      }
    }
    return out;
  });
}

// The checks on tableBoxes' answer for one page: the page does not scroll
// sideways; every table is in its box; each wide one scrolls in it, header
// row and body together, the page staying put.  wantWide: the page has a
// table wider than the window (so the check above is not empty).  A page
// without tables gets the first check only.
function checkTableBoxes(check, where, boxes, wantWide) {
  const wide = boxes.tables.filter((x) => x.wide);
  check(`${where}: the page does not scroll sideways`, boxes.pageOver <= 0, JSON.stringify(boxes));
  if (!boxes.tables.length && !wantWide) return;
  check(`${where}: every table scrolls in its own box, header row with it${wantWide ? ` (${wide.length} wider than the window)` : ''}`,
    boxes.tables.every((x) => x.boxed) && (!wantWide || wide.length > 0) &&
    wide.every((x) => x.overflowX === 'auto' && x.scrolled > 0 && Math.abs(x.bodyScrolled - x.scrolled) <= 1 &&
      x.pageScrollX === 0 && x.headerInBox && x.headerStays !== false), JSON.stringify(boxes.tables));
}

// The count line, and the exit status: 1 on any failure.
function finish(t) {
  console.log(`${t.passes} passed, ${t.fails} failed`);
  process.exit(t.fails ? 1 : 0);
}

module.exports = {
  BASE, ARTIFACTS, SHOT_DIR, sleep, run, finish, login, api, apiGet, shot, captureErrors, reporter, tableBoxes, checkTableBoxes,
};
