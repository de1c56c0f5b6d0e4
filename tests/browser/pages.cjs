// pages.cjs - the pages for every part and the analyst's snapshot view in a
// real browser (Debian chromium through playwright-core, launched as
// label.cjs does), against a server holding the demo history and a live
// simulated agent's snapshots:
//  - Classes: the empty assets table says so; an asset with shaft speed and
//    bearing geometry and a class added through the page's forms, listed after;
//  - the snapshot view of a demo bearing snapshot on that asset: spectrum
//    and envelope spectrum beside a normal snapshot of the same machine,
//    each row on one y scale, shaft and bearing markers, the rules' votes
//    and weak label, only the type's classes on keys 1-9, a span edge moved
//    by keyboard past the view; the waveforms' y scales locked (one per
//    unit, kept through a zoom) and freed by the switch;
//  - Fleet: live devices only until "show demo data", health columns;
//    at the end, an admin revokes the live device (revocation is final);
//  - Datasets: an admin creates a dataset, freezes a version, exports it
//    with a progress bar and downloads the file (a zip: npz);
//  - Models: a trained model with its metrics and their support, and its
//    deployments;
//  - Queue: after training, Sort offers "least certain" per done model that
//    predicts a class, and orders the rows as the API's sort=uncertain does;
//  - a queue answer that arrives after logout does not replace the login form;
//  - a snapshot or a model that does not exist is said so (the snapshot's
//    page with a link back to the queue);
//  - no page shows "null", "undefined", "NaN" or "Invalid Date" (a time it
//    could not read), and the console stays clean.
// Env: BASE, USERNAME/PASSWORD (operator), ADMIN_USERNAME/ADMIN_PASSWORD,
// TOKEN (ml token), OPTOKEN (operator token), ADMINTOKEN, ARTIFACTS, SHOT_DIR (optional:
// the main views copied there as docs/ui-*.png), CHROMIUM.  Prints
// PASS/FAIL lines; exit status 1 on any failure.
'use strict';
const { BASE, sleep, run, finish, login: fillLogin, api, shot, reporter } = require('./lib.cjs');

const t = reporter('browser-pages');
const { pass, fail, check } = t;

async function login(page, user, pw, load = true) {
  if (load) await page.goto(BASE + '/#/queue');
  await fillLogin(page, user, pw);
  await page.waitForSelector('#logout:not([hidden])', { timeout: 10000 });
}

// The page's visible text has no null, undefined, NaN or Invalid Date.
async function noNulls(page, where) {
  const text = await page.evaluate(() => document.body.innerText);
  const bad = text.match(/.{0,40}\b(null|undefined|NaN|Invalid Date)\b.{0,40}/);
  check(`${where}: no "null", "undefined", "NaN" or "Invalid Date" shown`, !bad, bad && bad[0]);
}

async function classesPage(page) {
  await page.click('#classes-link');
  await page.waitForSelector('#types tbody tr', { timeout: 10000 });
  const noAssets = await page.textContent('#assets tbody');
  check('Classes page: the assets table says it is empty before the first asset', /No asset yet/.test(noAssets), noAssets);
  await page.fill('#asset-form [name=aid]', 'demo-fan-7');
  await page.selectOption('#asset-form [name=atype]', 'rotating');
  for (const [k, v] of [['shaft', '25'], ['balls', '9'], ['ball', '7.94'], ['pitch', '39.04'], ['contact', '0']]) {
    await page.fill(`#asset-form [name=${k}]`, v);
  }
  await page.click('#asset-form button[type=submit]');
  await page.waitForSelector('#assets tr[data-asset="demo-fan-7"]', { timeout: 10000 });
  const row = await page.textContent('#assets tr[data-asset="demo-fan-7"]');
  check('Classes page: an asset saved with shaft speed and bearing geometry', /25/.test(row) && /9 × 7\.94 mm on 39\.04 mm/.test(row), row);
  // A bearing picked from the table: the search fills its geometry, the
  // form shows its defect frequencies at the shaft speed, and the asset is
  // saved with the designation (GET /api/v1/bearings, bearing_designation).
  const table = await api('GET', '/api/v1/bearings?q=6203');
  check('GET /api/v1/bearings?q=6203 finds the CWRU fan-end bearing and the Paderborn one, with their orders',
    table.status === 200 && table.body.items.some((b) => b.designation === 'SKF 6203-2RS JEM' && Math.abs(b.orders.bpfo - 3.053) < 0.001) &&
    table.body.items.some((b) => b.designation === 'FAG 6203'), JSON.stringify(table.body));
  const choices = await page.$$eval('#bearing-list option', (os) => os.map((o) => o.value));
  check('Classes page: the bearing search offers the table\'s designations', choices.includes('SKF 6203-2RS JEM') && choices.includes('Rexnord ZA-2115'), choices.join());
  await page.fill('#asset-form [name=aid]', 'demo-fan-8');
  await page.selectOption('#asset-form [name=atype]', 'fan');
  await page.fill('#asset-form [name=shaft]', '24.5');
  await page.fill('#asset-form [name=bname]', 'SKF 6203-2RS JEM');
  const filled = await page.$$eval('#asset-form input', (is) => Object.fromEntries(is.map((i) => [i.name, i.value])));
  check('Classes page: picking a bearing fills its geometry', filled.balls === '8' && filled.ball === '6.746' && filled.pitch === '28.5' && filled.contact === '0',
    JSON.stringify(filled));
  const live = await page.textContent('#asset-form-defects');
  check('Classes page: the form shows the defect frequencies at the shaft speed (orders and Hz)',
    /BPFO 3\.053× = 74\.80 Hz/.test(live) && /BPFI 4\.947× = 121\.20 Hz/.test(live) && /FTF 0\.382×/.test(live), live);
  await page.click('#asset-form button[type=submit]');
  await page.waitForSelector('#assets tr[data-asset="demo-fan-8"]', { timeout: 10000 });
  const row8 = await page.textContent('#assets tr[data-asset="demo-fan-8"]');
  const tax8 = (await api('GET', '/api/v1/taxonomy')).body.assets.find((a) => a.id === 'demo-fan-8');
  check('Classes page: the asset is saved with the bearing\'s designation and the table\'s geometry',
    tax8 && tax8.bearing_designation === 'SKF 6203-2RS JEM' && tax8.bearing.balls === 8 && tax8.bearing.pitch_mm === 28.5 &&
    /SKF 6203-2RS JEM: 8 × 6\.746 mm on 28\.5 mm/.test(row8) && /BPFO 3\.053× = 74\.80 Hz/.test(row8), `${row8} ${JSON.stringify(tax8)}`);
  const fan = await page.textContent('#types tr[data-type="fan"] td.defects');
  check('Classes page: a type\'s defect frequencies at its shaft speed (the fan\'s 6205 at 25 Hz)', /BPFO 3\.585× = 89\.62 Hz/.test(fan), fan);
  await page.fill('#class-form [name=cname]', 'belt_slip');
  await page.fill('#class-form [name=cdesc]', 'belt slipping on its pulley');
  await page.selectOption('#class-form [name=ctype]', 'fan');
  await page.click('#class-form button[type=submit]');
  await page.waitForSelector('#classes-table tr[data-class="belt_slip"]', { timeout: 10000 });
  const cls = (await api('GET', '/api/v1/classes')).body.items.map((c) => c.name);
  check('Classes page: a class added, as the API lists it', cls.includes('belt_slip') && cls.includes('blockage') && cls.includes('phase_imbalance'), cls.join());
  await noNulls(page, 'Classes page');
  await shot(page, 'ui-classes.png');
}

// Each channel plot's drawn y range (snap-plots.js puts it on the box).
const yScales = (page) => page.$$eval('.plots .chan', (cs) => cs.map((c) => ({
  name: c.querySelector('.name').textContent, min: Number(c.dataset.ymin), max: Number(c.dataset.ymax),
  locked: c.dataset.ylocked, mark: getComputedStyle(c.querySelector('.ylock-mark')).display !== 'none',
})));

// A key, then the window it asked for drawn (the 'view-drawn' mark).
async function keyAndDraw(page, key) {
  const n = await page.evaluate(() => performance.getEntriesByName('view-drawn').length);
  await page.keyboard.press(key);
  await page.waitForFunction((k) => performance.getEntriesByName('view-drawn').length > k, n, { timeout: 10000 });
}

// The waveforms: locked by default, one scale per unit, kept through a
// zoom; unlocked, each fits the window (the zoomed quarter spans less).
async function waveformScales(page) {
  await page.evaluate(() => document.activeElement && document.activeElement.blur());
  const whole = await yScales(page);
  const g = whole.filter((c) => / \[g\]/.test(c.name));
  check('waveforms: y scales locked by default, and it shows (switch and a mark on each channel)',
    (await page.isChecked('#wave-lock')) && whole.length > 0 && whole.every((c) => c.locked === '1' && c.mark) &&
    /one scale per unit/.test(await page.textContent('#wave-lock-what')), JSON.stringify(whole));
  check('waveforms: channels of one unit share one y scale, another unit its own',
    g.length >= 2 && g.every((c) => c.min === g[0].min && c.max === g[0].max) &&
    whole.some((c) => !/ \[g\]/.test(c.name) && (c.min !== g[0].min || c.max !== g[0].max)), JSON.stringify(whole));
  await keyAndDraw(page, '0');
  for (let i = 0; i < 2; i++) await keyAndDraw(page, '+');
  const zoomed = await yScales(page);
  check('waveforms: the locked y scales do not move when zooming in',
    JSON.stringify(zoomed.map((c) => [c.min, c.max])) === JSON.stringify(whole.map((c) => [c.min, c.max])),
    `${JSON.stringify(whole)} -> ${JSON.stringify(zoomed)}`);
  await page.uncheck('#wave-lock');
  await page.waitForFunction(() => [...document.querySelectorAll('.plots .chan')].every((c) => c.dataset.ylocked === '0'), null, { timeout: 10000 });
  const free = await yScales(page);
  check('waveforms: unlocked, each plot fits the window (the quieter channels span less), no lock mark',
    free.every((c) => !c.mark) && free.some((c, i) => c.max - c.min < 0.9 * (whole[i].max - whole[i].min)), `${JSON.stringify(whole)} -> ${JSON.stringify(free)}`);
  await page.check('#wave-lock');
  await page.waitForFunction(() => [...document.querySelectorAll('.plots .chan')].every((c) => c.dataset.ylocked === '1'), null, { timeout: 10000 });
  const again = await yScales(page);
  check('waveforms: locked again, back to the shared ranges',
    JSON.stringify(again.map((c) => [c.min, c.max])) === JSON.stringify(whole.map((c) => [c.min, c.max])), JSON.stringify(again));
  await keyAndDraw(page, '0');
}

async function analystView(page) {
  const a = await api('POST', '/api/v1/devices/demo-bearing-2/asset', { asset_id: 'demo-fan-7' }, process.env.OPTOKEN);
  check('demo bearing assigned to the asset', a.status === 200, JSON.stringify(a.body));
  // the newest demo bearing snapshot a person labeled outer race and the rules voted on
  const q = (await api('GET', '/api/v1/snapshots?demo=only&limit=1000')).body.items
    .filter((s) => s.device_id === 'demo-bearing-2').reverse();
  let id = null;
  for (const s of q) {
    const w = (await api('GET', `/api/v1/snapshots/${s.id}/weak-label`)).body;
    if (w && w.human.includes('bearing_outer_race') && w.weak && w.weak.votes.length) { id = s.id; break; }
  }
  if (!id) throw new Error('no demo outer-race snapshot with rule votes');
  await page.goto(`${BASE}/#/snapshot/${id}`);
  await page.waitForSelector('.plots .chan .u-over', { timeout: 10000 });
  await page.waitForSelector('#spectra .spectrum-cell canvas', { timeout: 15000 });
  await page.waitForFunction(() => /shaft 25 Hz/.test(document.getElementById('spectra-status').textContent), null, { timeout: 15000 });
  const cells = await page.$$eval('#spectra .spectrum-cell', (cs) => cs.map((c) => ({ y: c.dataset.ymax, m: c.dataset.markers })));
  check('spectrum and envelope spectrum beside a normal snapshot (2 x 2 plots)', cells.length === 4, JSON.stringify(cells));
  check('each row shares one y scale', cells.length === 4 && cells[0].y === cells[1].y && cells[2].y === cells[3].y && Number(cells[0].y) > 0,
    JSON.stringify(cells));
  check('shaft harmonics and bearing defect frequencies marked', cells.length && /1x/.test(cells[0].m) && /BPFO/.test(cells[2].m) && /BPFI/.test(cells[2].m),
    JSON.stringify(cells));
  const status = await page.textContent('#spectra-status');
  check('the spectra say where the kinematics come from', /from the asset/.test(status) && /9 × 7\.94/.test(status), status);
  const ref = await page.textContent('#spectra-ref');
  check('the reference is the same machine, labeled normal', /labeled normal on the same device/.test(ref), ref);
  // compare with another of the machine's recent snapshots instead: the right-hand plots follow
  const other = await page.$$eval('#spectra-compare option', (os) => os.map((o) => [o.value, o.textContent])
    .filter(([, t]) => /^#\d+ .*\(same device/.test(t)));
  check('the compare list offers the machine\'s recent snapshots', other.length > 0, 'none offered');
  if (other.length) {
    await page.selectOption('#spectra-compare', other[0][0]);
    const want = other[0][1].match(/#(\d+)/)[1];
    await page.waitForFunction((wid) => [...document.querySelectorAll('#spectra .u-title')].some((t) => t.textContent.endsWith(` #${wid}`)), want, { timeout: 15000 });
    const ys = await page.$$eval('#spectra .spectrum-cell', (cs) => cs.map((c) => c.dataset.ymax));
    check(`compared with #${want}: its plots drawn, still one y scale per row`, ys.length === 4 && ys[0] === ys[1] && ys[2] === ys[3], JSON.stringify(ys));
    await page.selectOption('#spectra-compare', '1');
    await page.waitForFunction(() => [...document.querySelectorAll('#spectra .u-title')].some((t) => /normal #/.test(t.textContent)), null, { timeout: 15000 });
  }
  // labeled snapshots of the machine and its type, the newest of each class:
  // another demo bearing's imbalance, say, picked and drawn
  const labeled = await page.$$eval('#spectra-compare optgroup', (gs) => gs.filter((g) => /^labeled/.test(g.label))
    .flatMap((g) => [...g.querySelectorAll('option')].map((o) => [o.value, o.textContent])));
  const classesOffered = new Set(labeled.map(([, t]) => t.split(' · ')[0]));
  const otherDevice = labeled.filter(([, t]) => /demo-bearing-3/.test(t) && !/^normal/.test(t));
  check('the compare list offers labeled snapshots of the type, several classes, other machines too',
    classesOffered.size >= 3 && otherDevice.length > 0, JSON.stringify(labeled));
  if (otherDevice.length) {
    const [value, text] = otherDevice[0];
    const [cls, rest] = text.split(' · ');
    const lid = rest.match(/#(\d+)/)[1];
    await page.selectOption('#spectra-compare', value);
    await page.waitForFunction((wid) => [...document.querySelectorAll('#spectra .u-title')].some((t) => t.textContent.endsWith(` #${wid}`)), lid, { timeout: 15000 });
    const line = await page.textContent('#spectra-ref');
    const titles = await page.$$eval('#spectra .u-title', (ts) => ts.map((t) => t.textContent));
    check(`compared with #${lid}, labeled ${cls} on another machine of the type: its class named`,
      line.includes(`labeled ${cls} on the same equipment type (demo-bearing-3)`) && titles.some((t) => t.includes(`${cls} #${lid}`)),
      `${line} | ${titles}`);
    await page.selectOption('#spectra-compare', '1');
    await page.waitForFunction(() => [...document.querySelectorAll('#spectra .u-title')].some((t) => /normal #/.test(t.textContent)), null, { timeout: 15000 });
  }
  // the envelope spectrum's strongest line sits at BPFO (89.6 Hz): the demo's outer-race fault
  const sp = (await api('GET', `/api/v1/snapshots/${id}/spectrum?bins=1024`)).body;
  const env = sp.channels[0].envelope;
  let k = 1;
  for (let i = 1; i < env.length && i * sp.bin_hz < 400; i++) if (env[i] > env[k]) k = i;
  const peak = k * sp.bin_hz, bpfo = sp.kinematics.markers.find((m) => m.name === 'BPFO').hz;
  check('the envelope spectrum peaks at the bearing\'s outer-race frequency', Math.abs(peak - bpfo) < 4 * sp.bin_hz + 3, `peak ${peak} Hz, BPFO ${bpfo} Hz`);

  await waveformScales(page);

  // rotating machinery: the untyped classes and rotating's own, none of a pump's, motor's or fan's
  const all = (await api('GET', '/api/v1/classes')).body.items;
  const want = all.filter((c) => !c.equipment_type || c.equipment_type === 'rotating').map((c) => c.name);
  const shown = await page.$$eval('#classes button[data-class]', (bs) => bs.map((b) => b.dataset.class));
  check('only the equipment type\'s classes, in order', JSON.stringify(shown) === JSON.stringify(want) &&
    shown.includes('bearing_outer_race') && !shown.some((c) => ['cavitation', 'blockage', 'rotor_bar', 'belt_slip'].includes(c)),
  `${shown} vs ${want}`);
  await page.keyboard.press('2');
  const sel = await page.getAttribute('#classes button.sel', 'data-class');
  check('key 2 picks the type\'s second class', sel === want[1], `${sel} vs ${want[1]}`);

  await page.waitForSelector('#weak-label', { timeout: 10000 });
  const weak = await page.textContent('#weak-card');
  check('the rules\' weak label and its source are shown', /Suggested: bearing_outer_race/.test(weak) && /vote|rule/.test(weak), weak);
  const votes = await page.locator('#rule-votes li').count();
  check('each rule\'s vote is listed', votes >= 2, `${votes} votes`);

  // zoom to the middle quarter, mark it, then move the end edge a whole view to the right
  for (const key of ['Escape', '0', '+', '+', 'm']) await page.keyboard.press(key);
  const before = await page.textContent('#form-span');
  for (let i = 0; i < 24; i++) await page.keyboard.press('}');
  const after = await page.textContent('#form-span');
  const b0 = Number((before.match(/– ([\d.]+) s$/) || [])[1]);
  const a1 = Number((after.match(/– ([\d.]+) s$/) || [])[1]);
  const dur = (await api('GET', `/api/v1/snapshots/${id}`)).body;
  const total = (dur.pre_samples + dur.post_samples) / dur.sample_rate;
  check('the span\'s end moved by keyboard beyond the view it was marked in', a1 > b0 + total / 4 * 0.9, `${before} -> ${after}`);
  await page.keyboard.press('Escape');
  await noNulls(page, 'snapshot view');
  await shot(page, 'ui-spectra.png');
}

// Log out while the queue's answer is on its way: the answer (fetched while
// logged in, held back until after the logout) must not replace the login
// form with the queue.
async function logoutRace(page) {
  let asked, delivered;
  const wasAsked = new Promise((r) => { asked = r; });
  const wasDelivered = new Promise((r) => { delivered = r; });
  await page.route('**/api/v1/queue?*', async (route) => {
    const answer = await route.fetch();
    asked();
    await sleep(1500);
    await route.fulfill({ response: answer }).catch(() => {});
    delivered(answer.status());
  });
  await page.evaluate(() => { location.hash = '#/fleet'; });
  await page.waitForSelector('#fleet', { timeout: 10000 });
  await page.evaluate(() => { location.hash = '#/queue'; });
  await wasAsked;
  await page.click('#logout');
  await page.waitForSelector('#login', { timeout: 10000 });
  const status = await wasDelivered;
  await sleep(500);
  const queueShown = await page.locator('#queue').count();
  const loginShown = await page.isVisible('#login');
  check('a queue answer that arrives after logout is dropped: the login form stays',
    status === 200 && loginShown && queueShown === 0, `answer ${status}, login shown ${loginShown}, queue tables ${queueShown}`);
  await page.unroute('**/api/v1/queue?*');
  await page.waitForSelector('#logout', { state: 'hidden', timeout: 10000 });
}

async function fleetPage(page) {
  await page.click('#fleet-link');
  await page.waitForSelector('#fleet tbody tr', { timeout: 10000 });
  let ids = await page.$$eval('#fleet tbody tr', (rs) => rs.map((r) => r.dataset.device));
  check('Fleet: the live device, no demo devices by default', ids.includes('pump-07') && !ids.some((d) => d.startsWith('demo-')), ids.join());
  const health = await page.textContent('#fleet tr[data-device="pump-07"] td.health');
  check('Fleet: health, spool and drops from the heartbeat', health.trim() !== '' && health.trim() !== '—', health);
  const version = await page.textContent('#fleet tr[data-device="pump-07"] td.agent-version');
  check('Fleet: the agent build the device runs, from its heartbeat', /^\d+\.\d+\.\d+\S*( \(git [^)]+\))?$/.test(version.trim()), version);
  await page.check('#show-demo');
  await page.waitForSelector('#fleet tr[data-device="demo-bearing-2"]', { timeout: 10000 });
  ids = await page.$$eval('#fleet tbody tr', (rs) => rs.map((r) => r.dataset.device));
  check('Fleet: "show demo data" shows the demo devices', ids.includes('demo-pump-2'), ids.join());
  await page.uncheck('#show-demo');
  await page.waitForFunction(() => !document.querySelector('#fleet tr[data-device="demo-bearing-2"]'), null, { timeout: 10000 });
  await noNulls(page, 'Fleet page');
  await shot(page, 'ui-fleet.png');
}

async function revokeFromFleet(page) {
  await page.click('#fleet-link');
  await page.waitForSelector('#fleet tr[data-device="pump-07"] button[data-act="revoke"]', { timeout: 10000 });
  let asked = '';
  page.once('dialog', (d) => { asked = d.message(); d.accept(); });
  await page.click('#fleet tr[data-device="pump-07"] button[data-act="revoke"]');
  await page.waitForFunction(() => /revoke/.test(document.getElementById('fleet-note').textContent), null, { timeout: 10000 });
  check('Fleet: revoking asks first, saying it is final and how the machine comes back',
    /cannot be undone/.test(asked) && /new device id/.test(asked), asked);
  const dev = (await api('GET', '/api/v1/devices/pump-07')).body;
  const left = await page.locator('#fleet tr[data-device="pump-07"] button').count();
  check('Fleet: an admin revokes a device from the page', dev.status === 'revoked' && left === 0, `${dev.status}, ${left} buttons left`);
  const row = await page.textContent('#fleet tr[data-device="pump-07"]');
  const life = await page.textContent('#fleet-lifecycle');
  check('Fleet: a revoked row says it is final and what to do instead of approving',
    /revoked for good/.test(row) && /new device id/.test(row) && /revocation is final/.test(life), `${row} | ${life}`);
  const again = await api('POST', '/api/v1/devices/pump-07/approve', undefined, process.env.ADMINTOKEN);
  check('Fleet: an admin cannot approve a revoked device: 409, saying to enroll under a new id',
    again.status === 409 && /new device id/.test(again.body.error.message), `${again.status} ${JSON.stringify(again.body)}`);
}

async function datasetsPage(page) {
  await page.click('#datasets-link');
  await page.waitForSelector('#ds-create', { state: 'attached', timeout: 10000 });
  const empty = await page.evaluate(() => ({
    row: (document.getElementById('datasets-empty') || {}).textContent || '', detail: !!document.getElementById('ds-detail'),
  }));
  check('Datasets: an empty list says how to begin, and offers no dataset to pick',
    /No datasets yet: define one under New dataset above/.test(empty.row) && !empty.detail, JSON.stringify(empty));
  await page.click('details.card summary');
  await page.click('#ds-create');
  await page.waitForSelector('#datasets tbody tr[data-dataset]', { timeout: 10000 });
  const dsId = Number(await page.getAttribute('#datasets tbody tr[data-dataset]', 'data-dataset'));
  await page.click(`#datasets tr[data-dataset="${dsId}"]`);
  await page.waitForSelector('button[data-act="freeze"]', { timeout: 10000 });
  const noVersion = await page.textContent(`#versions-${dsId} tbody`);
  check('Datasets: a definition with no version says so', /No version frozen yet/.test(noVersion), noVersion);
  await page.click('button[data-act="freeze"]');
  await page.waitForSelector(`#versions-${dsId} tr[data-version="1"]`, { timeout: 30000 });
  pass('Datasets: created from the page and a version frozen');
  await page.click(`#versions-${dsId} tr[data-version="1"] button[data-act="export"]`);
  await page.waitForSelector(`#versions-${dsId} tr[data-version="1"] progress`, { timeout: 10000 });
  await page.waitForSelector(`#versions-${dsId} tr[data-version="1"] a.download`, { timeout: 60000 });
  const prog = await page.getAttribute(`#versions-${dsId} tr[data-version="1"] progress`, 'value');
  const href = await page.getAttribute(`#versions-${dsId} tr[data-version="1"] a.download`, 'href');
  const file = await page.evaluate(async (h) => {
    const r = await fetch(h);
    const b = new Uint8Array(await r.arrayBuffer());
    return [r.status, b.length, String.fromCharCode(b[0], b[1])];
  }, href);
  check('Datasets: the export\'s progress bar reaches 100 % and the file downloads (npz: a zip)',
    Number(prog) === 100 && file[0] === 200 && file[1] > 1000 && file[2] === 'PK', `progress ${prog}, ${JSON.stringify(file)}`);
  // shown again, the version lists the file among its exported ones
  await page.click(`#datasets tr[data-dataset="${dsId}"]`);
  await page.waitForSelector(`#versions-${dsId} tr[data-version="1"] td.files a.file`, { timeout: 10000 });
  const kept = await page.getAttribute(`#versions-${dsId} tr[data-version="1"] td.files a.file`, 'href');
  const keptText = await page.textContent(`#versions-${dsId} tr[data-version="1"] td.files`);
  check('Datasets: a version lists its exported files, the export just made among them (GET /api/v1/export-jobs)',
    kept === href && /^npz \(\d+ KiB\)$/.test(keptText), `${kept} vs ${href}: ${keptText}`);
  await noNulls(page, 'Datasets page');
  await shot(page, 'ui-datasets.png');
  return dsId;
}

// A model trained from the datasets page (still open on version 1): the
// page goes to the model's address, and the models page follows the
// training to its end without a reload.
async function modelsPage(page, dsId) {
  const row = `#versions-${dsId} tr[data-version="1"]`;
  await page.selectOption(`${row} select[data-act="train-kind"]`, 'classifier');
  const hidden = await page.isHidden(`${row} input[data-act="train-transfer"]`);
  check('Datasets: transfer and relations are offered for few-shot models only', hidden, `hidden ${hidden}`);
  await page.click(`${row} button[data-act="train"]`);
  await page.waitForFunction(() => /^#\/models\/\d+$/.test(location.hash), null, { timeout: 10000 });
  const id = Number((await page.evaluate(() => location.hash)).split('/')[2]);
  const queued = (await api('GET', `/api/v1/models/${id}`)).body;
  check('Datasets: Train queues a classifier on the version and opens its page',
    queued && queued.kind === 'classifier' && queued.dataset_id === dsId && queued.version === 1, JSON.stringify(queued));
  await page.waitForSelector(`#models tr[data-model="${id}"]`, { timeout: 10000 });
  await page.waitForFunction((i) => {
    const r = document.querySelector(`#models tr[data-model="${i}"] .pill`);
    return r && (r.textContent === 'done' || r.textContent === 'failed');
  }, id, { timeout: 120000 });
  await page.waitForSelector('#model-detail #model-eval', { timeout: 10000 });
  const model = (await api('GET', `/api/v1/models/${id}`)).body;
  const pill = await page.textContent(`#models tr[data-model="${id}"] .pill`);
  check('Models: the page follows the training to its end, no reload, and opens the model',
    model.status === 'done' && pill === 'done', `${model.status} ${pill} ${model.error}`);
  const list = await api('GET', '/api/v1/models');
  check('GET /api/v1/models lists it', list.status === 200 && list.body.items.some((x) => x.id === id), JSON.stringify(list.body));
  await page.click('#models-link');
  await page.waitForSelector(`#models tr[data-model="${id}"]`, { timeout: 10000 });
  const prec = await page.textContent(`#models tr[data-model="${id}"] td.precision`);
  const mt = model && model.metrics;
  check('Models: precision with its support, as the API counts it',
    model.status === 'done' && mt && prec.includes(`(n = ${mt.tp + mt.fp})`), `${model && model.status} ${prec} ${JSON.stringify(mt)}`);
  // by keyboard, as the queue's rows open: Tab to the row, Enter
  await page.focus(`#models tr[data-model="${id}"]`);
  await page.keyboard.press('Enter');
  await page.waitForSelector('#model-detail h3', { timeout: 10000 });
  await page.waitForSelector('#model-deployments-link', { timeout: 10000 });
  const depHref = await page.getAttribute('#model-deployments-link', 'href');
  check('Models: a model opens by Enter, its deployments with a link to its deployments page',
    depHref === `#/deployments/${id}`, depHref);
  await noNulls(page, 'Models page');
  await shot(page, 'ui-models.png');
}

// A version of the demo bearing's labeled history in 256-sample windows
// split by day, so leave-one-group-out has groups; its machines turn as the
// asset classesPage gave it (25 Hz, a 6205): the demo has two bearings, and
// the envelope set needs a speed and a bearing for every machine of the
// version, so the second is put on the same asset.
async function demoBearingDataset() {
  const a = await api('POST', '/api/v1/devices/demo-bearing-3/asset', { asset_id: 'demo-fan-7' }, process.env.OPTOKEN);
  check('the second demo bearing assigned to the asset', a.status === 200, JSON.stringify(a.body));
  const ds = await api('POST', '/api/v1/datasets', {
    name: 'demo bearing, spectra', filter: { sources: ['human', 'rule', 'vote'], equipment_types: ['rotating'], sites: ['demo-site'] },
    window: { length_s: 0.128, stride_s: 0.128, edge: 'majority' }, split: { by: 'day', fractions: [1, 0, 0], seed: 1 },
  });
  const v = ds.body && ds.body.id ? await api('POST', `/api/v1/datasets/${ds.body.id}/versions`) : null;
  check('a dataset of the demo bearing\'s labeled history, frozen', ds.status === 201 && v && v.status === 201,
    `${ds.status} ${JSON.stringify(ds.body)} ${v && v.status} ${JSON.stringify(v && v.body)}`);
  return v && v.status === 201 ? ds.body.id : null;
}

// The few-shot model on a version: the page shows the evaluation
// the API stored, figure for figure: each learner's accuracy (value and
// interval, or refused), per-class recall with its support, and every
// refusal's reason.
async function fewshotEvaluation(page, dsId, wantSet) {
  const m = await api('POST', '/api/v1/models', { dataset_id: dsId, version: 1, kind: 'fewshot' });
  check('a few-shot model is queued for training', m.status === 202 || m.status === 201, JSON.stringify(m.body));
  let model = null;
  for (let i = 0; i < 180 && m.body && m.body.id; i++) {
    model = (await api('GET', `/api/v1/models/${m.body.id}`)).body;
    if (model.status === 'done' || model.status === 'failed') break;
    await sleep(1000);
  }
  const ev = model && model.metrics && model.metrics.evaluation;
  check('few-shot model trained, with an evaluation in its metrics', model && model.status === 'done' && ev,
    `${model && model.status} ${model && model.error} ${JSON.stringify(model && model.metrics).slice(0, 300)}`);
  if (wantSet) {
    check('the evaluation says how many windows carried only a rule\'s label (taught with weight 0.5, never scored)',
      ev && Number.isInteger(ev.weak_labels_not_scored) && ev.weak_labels_not_scored >= 0, JSON.stringify(ev && ev.weak_labels_not_scored));
    const f = model.metrics.features;
    check(`few-shot model read feature set "${wantSet}" with the asset's kinematics`,
      f.set === wantSet && f.kinematics && f.kinematics.shaft_hz === 25 && f.kinematics.bearing_balls === 9,
      JSON.stringify(f));
  }
  if (!ev) return;
  // the models page is open already: load it again for the new model's row
  await page.reload();
  await page.waitForSelector(`#models tr[data-model="${m.body.id}"]`, { timeout: 10000 });
  await page.click(`#models tr[data-model="${m.body.id}"]`);
  await page.waitForSelector('#model-eval #eval-summary', { timeout: 10000 });
  const learners = [ev.fewshot, ...ev.baselines];
  const pctText = (f) => (f.value === null ? 'refused' : `${(100 * f.value).toFixed(1)} % [${(100 * f.lo).toFixed(1)}, ${(100 * f.hi).toFixed(1)}]`);
  const rows = await page.$$eval('#eval-summary tbody tr', (rs) => rs.map((r) => [r.dataset.learner, r.querySelector('td.accuracy').innerText]));
  check('Models: the evaluation lists the learner and its three baselines, in the API\'s order',
    rows.length === 4 && rows.every((r, i) => r[0] === `${learners[i].method}|${learners[i].features}`), JSON.stringify(rows));
  const acc = learners.map((l, i) => [l.accuracy ? pctText(l.accuracy) : '—', rows[i] ? rows[i][1] : '']);
  check('Models: each learner\'s accuracy with its interval (or refused) as the API has it',
    acc.every(([want, got]) => got.startsWith(want)), JSON.stringify(acc));
  const rec = await page.$$eval('#eval-recall tbody tr', (rs) => rs.map((r) => [r.dataset.class, r.querySelector('td.support').innerText,
    r.querySelector('td.recall').innerText]));
  check('Models: per-class recall of the learner with its support',
    rec.length === ev.fewshot.recall.length && ev.fewshot.recall.every((f, k) => rec[k][0] === f.class &&
      rec[k][1] === String(f.support) && rec[k][2].startsWith(pctText(f))), JSON.stringify({ rec, api: ev.fewshot.recall }));
  const why = await page.textContent('#eval-refusals');
  const reasons = [];
  for (const l of learners) {
    if (l.reason) reasons.push(l.reason);
    for (const f of [l.accuracy, l.false_alarm, l.detection, ...(l.recall || [])]) if (f && f.value === null && f.reason) reasons.push(f.reason);
  }
  check(`Models: every refused figure's reason is shown (${reasons.length})`,
    reasons.every((r) => why.includes(r)) && (reasons.length > 0 || /None/.test(why)), `${why.slice(0, 300)} | ${reasons.join(' | ')}`);
  const dev = await page.textContent('#eval-device');
  check('Models: the device footprint against its budget', dev.includes(`${model.metrics.device.param_bytes} bytes of parameters`) &&
    model.metrics.device.param_bytes <= 8192, dev);
  const feats = await page.textContent('#eval-features');
  check('Models: the features the model reads, how many, and the blob\'s size, as the API has them',
    feats.includes(`${model.metrics.n_features} features`) && feats.includes(`signed blob ${model.metrics.blob_bytes} bytes`) &&
    feats.includes(`feature set "${model.metrics.features.set}"`), feats);
  const tr = model.metrics.transfer;
  const trText = await page.textContent('#eval-transfer');
  check('Models: transfer from related equipment, as the API recorded it (windows, types, each type used or why not)',
    tr && tr.enabled === true && model.transfer === true && trText.includes(`${tr.windows} windows from ${tr.types_used} related type`) &&
    (tr.types || []).every((x) => trText.includes(x.equipment_type) && (x.used || trText.includes(x.reason))), `${trText.slice(0, 400)} | ${JSON.stringify(tr).slice(0, 400)}`);
  if (ev.transfer) {
    const cmp = await page.$$eval('#eval-transfer-compare tbody tr', (rs) => rs.map((r) => r.querySelector('td.accuracy').innerText));
    check('Models: the learner with and without transfer, on the same windows', cmp.length === 2 &&
      cmp[1].startsWith(ev.transfer.without.accuracy.value === null ? 'refused' : pctText(ev.transfer.without.accuracy)), JSON.stringify(cmp));
  }
  await noNulls(page, 'Models page with an evaluation');
  await shot(page, 'ui-models-evaluation.png');
}

// The deployments page of a model that does not exist says so (the
// deployments' API answers it an empty list, which read "not deployed").
// Drops the one console error chromium logs for GET /models/{id}'s 404.
// Active learning: after training, the queue's Sort offers "least certain"
// per done centroid or few-shot model; choosing one lists the rows in the
// API's order (sort=uncertain), the model's predictions by margin, smallest
// first among the unlabeled, and a column with the model's class.
async function uncertainQueue(page) {
  await page.evaluate(() => { location.hash = '#/queue'; });
  await page.waitForSelector('#queue', { timeout: 10000 });
  const options = await page.$$eval('#sort option', (os) => os.map((o) => [o.value, o.textContent]));
  const uncertain = options.filter(([v]) => v.startsWith('uncertain:'));
  check('Queue: Sort offers "least certain" for a done model that predicts a class',
    uncertain.length > 0 && uncertain.every(([, text]) => /^least certain \(model #\d+, (classifier|fewshot)\)$/.test(text)),
    JSON.stringify(options));
  if (!uncertain.length) return;
  const id = uncertain[0][0].split(':')[1];
  await page.selectOption('#sort', uncertain[0][0]);
  await page.waitForFunction(() => [...document.querySelectorAll('#queue th')].some((th) => th.textContent === 'model says'),
    null, { timeout: 10000 });
  const demo = await page.evaluate(() => (localStorage.getItem('precursor.showDemo') === '1' ? 'include' : 'exclude'));
  const q = (await api('GET', `/api/v1/queue?sort=uncertain&model=${id}&limit=100&demo=${demo}`)).body;
  const shown = await page.$$eval('#queue tbody tr[data-id]', (rs) => rs.map((r) => Number(r.dataset.id)));
  const cells = await page.locator('#queue td.prediction').count();
  const margins = q.items.filter((s) => !s.labeled_at && s.model_prediction).map((s) => s.model_prediction.margin);
  check('Queue: least certain first, rows in the API\'s order, the model\'s class shown where it predicted',
    JSON.stringify(shown) === JSON.stringify(q.items.map((s) => s.id)) &&
      margins.every((m, i) => i === 0 || m >= margins[i - 1]) &&
      cells === q.items.filter((s) => s.model_prediction).length,
    JSON.stringify({ shown: shown.slice(0, 10), api: q.items.slice(0, 10).map((s) => s.id), margins: margins.slice(0, 10), cells }));
  // the model's version is labeled snapshots (demo ones, maybe): ranked after
  // every unlabeled one, perhaps not on the first page, but predicted
  const all = (await api('GET', `/api/v1/queue?sort=uncertain&model=${id}&limit=500&demo=include`)).body;
  const predicted = all.items.filter((s) => s.model_prediction);
  check('Queue: the model predicted snapshots, each with a class, a probability and a margin',
    predicted.length > 0 && predicted.every((s) => typeof s.model_prediction.class === 'string' &&
      s.model_prediction.probability > 0 && s.model_prediction.probability <= 1 &&
      s.model_prediction.margin >= 0 && s.model_prediction.margin <= 1),
    JSON.stringify(predicted.slice(0, 3)));
  await page.selectOption('#sort', 'score');
  await page.waitForFunction(() => ![...document.querySelectorAll('#queue th')].some((th) => th.textContent === 'model says'),
    null, { timeout: 10000 });
}

async function unknownModel(page, consoleErrors) {
  const before = consoleErrors.length;
  await page.evaluate(() => { location.hash = '#/deployments/999999'; });
  await page.waitForSelector('#no-such-model', { timeout: 10000 });
  const text = await page.textContent('#deployments');
  const extra = consoleErrors.splice(before).filter((e) => !/status of 404/.test(e));
  consoleErrors.push(...extra);
  check('Deployments: a model that does not exist is said so, not "not deployed"',
    /There is no model 999999/.test(text) && !/not deployed/.test(text), text);
}

// A snapshot that does not exist: the server's answer and a way back to
// the queue, which the link leads to.  Drops the console errors chromium
// logs for its 404s.
async function unknownSnapshot(page, consoleErrors) {
  const before = consoleErrors.length;
  await page.evaluate(() => { location.hash = '#/snapshot/99999999'; });
  await page.waitForSelector('#snapshot-error', { timeout: 10000 });
  const text = await page.textContent('#snapshot-error');
  const href = await page.getAttribute('#snapshot-error a#snapshot-back', 'href');
  await page.click('#snapshot-back');
  await page.waitForSelector('#queue', { timeout: 10000 });
  const extra = consoleErrors.splice(before).filter((e) => !/status of 404/.test(e));
  consoleErrors.push(...extra);
  check('a snapshot that does not exist: the server\'s answer and a link back to the queue that works',
    /Snapshot #99999999: no such snapshot/.test(text) && href === '#/queue', `${text} | ${href}`);
}

(async () => {
  // every console error counts, from the first visit (logged out, answered
  // 200 by the session probe) to the end
  await run({ reporter: t, viewport: { width: 1400, height: 900 }, failureShot: 'ui-pages-failure.png' },
    async ({ page, errors: consoleErrors }) => {
    await login(page, process.env.USERNAME, process.env.PASSWORD);
    await page.waitForSelector('#queue tbody tr.row', { timeout: 10000 });
    const demoRows = await page.locator('#queue .pill.demo').count();
    check('queue: no demo snapshots by default', demoRows === 0, `${demoRows} demo rows`);
    await noNulls(page, 'queue');
    await classesPage(page);
    await analystView(page);
    await logoutRace(page);
    await login(page, process.env.ADMIN_USERNAME, process.env.ADMIN_PASSWORD, false);
    await fleetPage(page);
    const dsId = await datasetsPage(page);
    await modelsPage(page, dsId);
    const bearingDs = await demoBearingDataset();
    await fewshotEvaluation(page, bearingDs || dsId, bearingDs ? 'envelope' : null);
    await uncertainQueue(page);
    await revokeFromFleet(page);
    await unknownModel(page, consoleErrors);
    await unknownSnapshot(page, consoleErrors);
    check('no errors in the browser console', consoleErrors.length === 0, consoleErrors.join(' | '));
  });
  finish(t);
})();
