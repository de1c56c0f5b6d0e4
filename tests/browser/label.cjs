// label.cjs - drives Debian's chromium through playwright-core (from
// labeling-ui/node_modules; no browser is downloaded) against a running
// server, the way an operator works: a logged-out request refused; log in; the
// queue; a span labeled by mouse (drag on chosen channels, class key, Enter)
// and another by keyboard only (zoom, pan, m, class key, Enter); the classes
// past the ninth picked by the chooser (c); a focused slider and select
// keeping their arrows; reload and
// see both, as the REST API stores them; the audit trail of a delete and its
// undo; CSRF; an operator refused the admin users page (page and API); an
// admin who adds a user and sets their password in the page (typed twice,
// checked before it is sent, the server's refusal shown), the user logging
// in with it; log out and be refused.
// Env: BASE, USERNAME/PASSWORD (an operator), ADMIN_USERNAME/ADMIN_PASSWORD,
// TOKEN (ml token), ARTIFACTS (screenshots), SHOT_DIR (optional: copies of
// the main views' screenshots, e.g. docs), CHROMIUM (default
// /usr/bin/chromium).  Prints PASS/FAIL lines; exit status 1 on any failure.
'use strict';
const { BASE, ARTIFACTS, sleep, run, finish, login, apiGet, shot: shotAny } = require('./lib.cjs');

// An artifact always; the main views also into SHOT_DIR when asked.
const shot = (page, name, main) => shotAny(page, name, { main, fullPage: false });

// Saved labels are listed at once; the status line may be overwritten by a
// view fetch finishing meanwhile, so saves are awaited on the list.
const labelsShown = (page, n) => page.waitForFunction((k) => document.querySelectorAll('#labels li[data-label]').length === k,
  n, { timeout: 5000 });
const status = (page, re) => page.waitForFunction((src) => new RegExp(src).test(document.getElementById('status').textContent),
  re.source, { timeout: 5000 });

(async () => {
  // The wrong password, the CSRF check, the operator's visit to the admin
  // page, the request after logout and a password the server finds too weak
  // answer 400, 401 and 403 on purpose, and
  // chromium logs those loads; only there are they let through.  The page
  // itself, before login (the session probe) and after, logs nothing.
  let refusalsExpected = false;
  const t = await run({
    name: 'browser', failureShot: 'ui-failure.png',
    allowConsole: (text) => refusalsExpected && /Failed to load resource: .* (400|401|403)/.test(text),
  }, async ({ page, ctx, errors: consoleErrors, pass, fail, check }) => {
    // logged out: the API refuses, the page shows the login form
    const anon = await apiGet('/api/v1/queue', null);
    check('logged-out API request refused', anon.status === 401, `status ${anon.status}`);
    await page.goto(BASE + '/');
    await page.waitForSelector('#login', { timeout: 10000 });
    const probe = await page.evaluate(async () => { const r = await fetch('/api/v1/session'); return [r.status, await r.json()]; });
    check('session probe before login: 200 {"authenticated": false}', probe[0] === 200 && probe[1].authenticated === false, JSON.stringify(probe));
    check('no console errors before login', consoleErrors.length === 0, consoleErrors.join(' | '));
    refusalsExpected = true;
    await login(page, process.env.USERNAME, 'wrong-password');
    await page.waitForFunction(() => document.getElementById('login-error').textContent.length > 0);
    pass('wrong password refused');
    refusalsExpected = false;
    await login(page, process.env.USERNAME, process.env.PASSWORD);
    await page.waitForSelector('#queue tbody tr.row', { timeout: 10000 });
    const cookies = await ctx.cookies(BASE);
    const sc = cookies.find((c) => c.name === 'prc_session');
    check('session cookie HttpOnly SameSite=Strict', sc && sc.httpOnly && sc.sameSite === 'Strict', JSON.stringify(sc));
    const left = await page.textContent('#left');
    check('queue shows how many are left', /^\d+ left to label$/.test(left), left);
    await shot(page, 'ui-queue.png', true);
    // A filter that matches nothing says so (it used to leave an empty table).
    const fromDate = '.filters label:has-text("From") input';
    await page.fill(fromDate, '2099-01-01');
    await page.waitForSelector('#queue-empty', { timeout: 10000 });
    const empty = await page.textContent('#queue-empty');
    await page.fill(fromDate, '');
    await page.waitForSelector('#queue tbody tr.row', { timeout: 10000 });
    check('an empty queue page says why', /matches these filters/.test(empty), empty);

    // open the first (highest score, unlabeled) snapshot
    const id = Number(await page.getAttribute('#queue tbody tr.row', 'data-id'));
    await page.click('#queue tbody tr.row');
    await page.waitForSelector('.plots .chan .u-over', { timeout: 10000 });
    const nch = await page.locator('.plots .chan').count();
    check('snapshot view draws every channel', nch >= 1, `${nch} channels`);
    const ready = await page.evaluate(() => performance.getEntriesByName('snapshot-interactive').length);
    check('snapshot marks itself interactive (Performance API)', ready === 1, `${ready} marks`);
    // a fresh live snapshot: no rule fired, no label in force; the side
    // panel's cards say so in words, never "null"
    await page.waitForSelector('#weak-label', { timeout: 10000 });
    const text = await page.evaluate(() => document.body.innerText);
    const bad = text.match(/.{0,40}\b(null|undefined|NaN|Invalid Date)\b.{0,40}/);
    check('snapshot view (nothing suggested, nothing in force): no "null", "undefined", "NaN" or "Invalid Date" shown', !bad, bad && bad[0]);
    await page.waitForTimeout(300);

    // label 1, by mouse: all channels but 1 (when there is one), drag from
    // 30% to 45% of channel 0's plot area, class key 4, Enter
    const want = [...Array(nch).keys()].filter((c) => nch === 1 || c !== 1);
    if (nch > 1) await page.uncheck('input[data-chsel="1"]');
    const over = await page.locator('.chan[data-ch="0"] .u-over').boundingBox();
    const y = over.y + over.height / 2;
    await page.mouse.move(over.x + over.width * 0.30, y);
    await page.mouse.down();
    await page.mouse.move(over.x + over.width * 0.38, y, { steps: 5 });
    await page.mouse.move(over.x + over.width * 0.45, y, { steps: 5 });
    await page.mouse.up();
    const span = await page.textContent('#form-span');
    check('drag marks a span', /\d+\.\d+ – \d+\.\d+ s/.test(span), span);
    await page.keyboard.press('4');
    await page.keyboard.press('Enter');
    await labelsShown(page, 1);
    pass('label 1 saved (mouse span, class key + Enter)');
    await page.waitForFunction(() => /In force: \S+ \(from a person\)/.test((document.getElementById('weak-card') || {}).textContent || ''), null, { timeout: 10000 })
      .then(() => pass('the Rules card shows the saved label in force at once'), (e) => fail('the Rules card shows the saved label in force', e.message));

    // label 2, keyboard only: whole view, zoom in twice (middle quarter),
    // pan right a quarter of that, m marks the view, 2 picks the class
    for (const k of ['Escape', '0', '+', '+', 'ArrowRight', 'm', '2', 'Enter']) await page.keyboard.press(k);
    await labelsShown(page, 2);
    pass('label 2 saved with the keyboard only (0 + + → m 2 Enter)');

    // Every class has a key: without an equipment type all classes are
    // offered, more than nine; 1-9 pick the first nine and c, the chooser,
    // any of them by its number or a few letters of its name.
    const offered = await page.$$eval('#classes button[data-class]', (bs) => bs.map((b) => [b.dataset.class, b.querySelector('kbd').textContent]));
    check('no equipment type: every class offered, each numbered in order (more than nine)',
      offered.length >= 11 && offered.every(([, k], i) => k === String(i + 1)) && offered.some(([c]) => c === 'blockage'), JSON.stringify(offered));
    const picked = () => page.evaluate(() => ({
      sel: (document.querySelector('#classes button.sel') || {}).dataset?.class, form: document.getElementById('f-class').value,
      focus: document.activeElement.id || document.activeElement.tagName,
    }));
    await page.keyboard.press('c');
    const chooserFocused = await page.evaluate(() => document.activeElement.id);
    await page.keyboard.type('10');
    await page.keyboard.press('Enter');
    const tenth = await picked();
    await page.keyboard.press('c');
    await page.keyboard.type('bloc');
    await page.keyboard.press('Enter');
    const byName = await picked();
    check('c, 10, Enter picks the tenth class; c, "bloc", Enter picks blockage; the keys then are the view\'s again',
      chooserFocused === 'class-find' && tenth.sel === offered[9][0] && tenth.form === offered[9][0] &&
      byName.sel === 'blockage' && byName.form === 'blockage' && byName.focus === 'BODY', JSON.stringify({ chooserFocused, tenth, byName }));

    // A focused form control keeps its own keys: ← moves the Confidence
    // slider and → the class select, and the view does not pan; Escape
    // leaves the select and → pans again.
    const drawn = () => page.evaluate(() => performance.getEntriesByName('view-drawn').length);
    await sleep(500);
    const drawn0 = await drawn();
    await page.focus('#f-conf');
    await page.keyboard.press('ArrowLeft');
    await page.keyboard.press('ArrowLeft');
    const conf = await page.inputValue('#f-conf');
    await page.keyboard.press('1');     // the slider does not keep digits: the first class, so → has one to move to
    await page.focus('#f-class');
    const cls0 = await page.inputValue('#f-class');
    await page.keyboard.press('ArrowRight');
    const cls1 = await page.inputValue('#f-class');
    await sleep(800);
    const drawn1 = await drawn();
    check('← on the focused Confidence slider moves it and 1 still picks a class; → on the focused class select moves it; the view stays',
      conf === '0.9' && cls0 === offered[0][0] && cls1 === offered[1][0] && drawn1 === drawn0,
      JSON.stringify({ conf, cls0, cls1, drawn0, drawn1 }));
    await page.keyboard.press('Escape');
    await page.keyboard.press('ArrowRight');
    await page.waitForFunction((n) => performance.getEntriesByName('view-drawn').length > n, drawn1, { timeout: 10000 })
      .then(() => pass('Escape leaves the select; → pans the view again'), (e) => fail('Escape leaves the select; → pans the view again', e.message));

    // zoom in by keyboard until the server sends raw samples
    for (let i = 0; i < 12; i++) await page.keyboard.press('+');
    await status(page, /raw samples/)
      .then(() => pass('keyboard zoom reaches raw samples'), (e) => fail('keyboard zoom reaches raw samples', e.message));
    await page.keyboard.press('0');
    await page.waitForTimeout(400);
    await shot(page, 'ui-snapshot.png', true);

    // both labels as the ML team sees them
    const meta = (await apiGet(`/api/v1/snapshots/${id}`)).body;
    const dur = (meta.pre_samples + meta.post_samples) / meta.sample_rate;
    const classes = (await apiGet('/api/v1/classes')).body.items.map((c) => c.name);
    const labels = await apiGet(`/api/v1/snapshots/${id}/labels`);
    const items = (labels.body && labels.body.items) || [];
    check('two labels stored', labels.status === 200 && items.length === 2, JSON.stringify(labels.body));
    const byMouse = items.find((l) => l.class === classes[3]), byKeys = items.find((l) => l.class === classes[1]);
    if (byMouse) {
      check('mouse label channels as selected', JSON.stringify(byMouse.channels) === JSON.stringify(want), `${JSON.stringify(byMouse.channels)} vs ${JSON.stringify(want)}`);
      check('mouse label records who', byMouse.created_by === process.env.USERNAME, byMouse.created_by);
      check('mouse label span where dragged', byMouse.start_s > 0.2 * dur && byMouse.end_s < 0.55 * dur && byMouse.end_s > byMouse.start_s,
        `${byMouse.start_s}..${byMouse.end_s} of ${dur}`);
    } else fail('label with class key 4', JSON.stringify(items));
    if (byKeys) {
      // [3/8, 5/8] of the snapshot after two zooms, then a quarter of 1/4 right
      const near = (a, b) => Math.abs(a - b) < 1e-6 * Math.max(1, dur);
      check('keyboard label span is the view it marked', near(byKeys.start_s, dur * 7 / 16) && near(byKeys.end_s, dur * 11 / 16),
        `${byKeys.start_s}..${byKeys.end_s} vs ${dur * 7 / 16}..${dur * 11 / 16}`);
    } else fail('label with class key 2', JSON.stringify(items));

    // reload: both still there.  Every class name drawn on a waveform is
    // recorded: it must start inside the plot, never over the y axis (uPlot
    // leaves the canvas right-aligned, which put the name left of its span).
    await page.addInitScript(() => {
      window.labelTexts = [];
      const fillText = CanvasRenderingContext2D.prototype.fillText;
      CanvasRenderingContext2D.prototype.fillText = function (text, x, ...rest) {
        const chan = this.canvas.closest && this.canvas.closest('.plots .chan');
        const over = chan && chan.querySelector('.u-over');
        if (over) window.labelTexts.push({ text: String(text), x, align: this.textAlign, left: over.offsetLeft * devicePixelRatio });
        return fillText.call(this, text, x, ...rest);
      };
    });
    await page.reload();
    await page.waitForSelector('#labels li[data-label]', { timeout: 10000 });
    const shown = await page.locator('#labels li[data-label]').count();
    check('both labels shown after reload', shown === 2, `${shown} shown`);
    const classNames = new Set(items.map((l) => l.class));
    const namesDrawn = async () => (await page.evaluate(() => window.labelTexts.splice(0))).filter((d) => classNames.has(d.text));
    const inside = (ds) => ds.length > 0 && ds.every((d) => (d.align === 'left' || d.align === 'start') && d.x >= d.left);
    await sleep(300);
    const whole = await namesDrawn();
    // zoomed in twice the mouse label begins left of the view: its name still starts inside
    await page.keyboard.press('+');
    await page.keyboard.press('+');
    await sleep(1000);
    const zoomed = await namesDrawn();
    check('label names drawn inside the plot, whole view and zoomed past a span\'s start', inside(whole) && inside(zoomed),
      JSON.stringify({ whole: whole.slice(0, 4), zoomed: zoomed.slice(0, 4) }));
    await page.keyboard.press('0');

    // delete the first (the mouse label, earliest start) and undo
    await page.keyboard.press('Escape');
    await page.click('#labels li[data-label] button');
    await labelsShown(page, 1);
    await page.keyboard.press('u');
    await labelsShown(page, 2);
    const after = await apiGet(`/api/v1/snapshots/${id}/labels`);
    const cls = after.body.items.map((l) => l.class).sort().join();
    check('delete then undo keeps both labels', after.body.items.length === 2 && cls === [classes[1], classes[3]].sort().join(), JSON.stringify(after.body));
    if (byMouse) {
      const hist = await apiGet(`/api/v1/labels/${byMouse.id}/history`);
      check('audit history keeps create and delete', hist.status === 200 && hist.body.items.map((h) => h.action).join() === 'create,delete', JSON.stringify(hist.body));
    }

    check('no console errors while labeling', consoleErrors.length === 0, consoleErrors.join(' | '));
    // a state-changing request without the CSRF token is refused even with the cookie
    refusalsExpected = true;
    const csrf = await page.evaluate(async (sid) => (await fetch(`/api/v1/snapshots/${sid}/labels`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ start_s: 0, end_s: 0.1, channels: [0], class: 'other' }) })).status, id);
    check('POST without CSRF token refused', csrf === 403, `status ${csrf}`);

    // an operator is refused the admin page: no link, a 403 page, 403 from the API
    check('operator sees no users link', await page.isHidden('#users-link'), 'link visible');
    await page.goto(BASE + '/#/admin/users');
    await page.waitForSelector('#forbidden', { timeout: 10000 });
    const forb = await page.textContent('#forbidden h2');
    check('operator gets the 403 page for /#/admin/users', /403/.test(forb), forb);
    const api403 = await page.evaluate(async () => [(await fetch('/api/v1/users')).status,
      (await fetch('/api/v1/users', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' })).status]);
    check('operator refused GET and POST /api/v1/users', api403[0] === 403 && api403[1] === 403, JSON.stringify(api403));
    await shot(page, 'ui-forbidden.png', false);

    // log out: the browser's next request is refused
    await page.click('#logout');
    await page.waitForSelector('#login', { timeout: 10000 });
    const out = await page.evaluate(async () => (await fetch('/api/v1/queue')).status);
    check('logged-out browser request refused', out === 401, `status ${out}`);

    // an admin adds a user on the users page; the new user logs in
    await login(page, process.env.ADMIN_USERNAME, process.env.ADMIN_PASSWORD);
    await page.waitForSelector('#users-link:not([hidden])', { timeout: 10000 });
    await page.click('#users-link');
    await page.waitForSelector('#users tbody tr', { timeout: 10000 });
    refusalsExpected = false;
    const listed = await page.$$eval('#users tbody tr', (rs) => rs.map((r) => r.dataset.user));
    check('admin users page lists users', listed.includes(process.env.USERNAME) && listed.includes(process.env.ADMIN_USERNAME), listed.join());
    const newPw = 'pw-' + Math.random().toString(36).slice(2, 14);
    await page.fill('#new-username', 'operator2');
    await page.fill('#new-password', newPw);
    await page.selectOption('#new-role', 'operator');
    await page.click('#user-form button[type=submit]');
    await page.waitForSelector('#users tbody tr[data-user="operator2"]', { timeout: 10000 });
    pass('admin adds a user on the users page');
    const lifecycle = await page.evaluate(() => ({
      tokens: !!document.querySelector('#tokens'),
      disable: !!document.querySelector('#users button[data-disable="operator2"]'),
      own: !!document.querySelector('#own-password-form'),
    }));
    check('users page: tokens table, disable buttons, own password form',
      lifecycle.tokens && lifecycle.disable && lifecycle.own, JSON.stringify(lifecycle));
    // the API's times (RFC 3339, UTC, Z, microseconds) read as the instants
    // they are: each token's created and last used, as the page shows them
    const times = await page.evaluate(async () => {
      const items = (await (await fetch('/api/v1/tokens')).json()).items;
      const text = document.querySelector('#tokens').innerText;
      const shown = items.flatMap((t) => [t.created_at, t.last_used_at]).filter((x) => x);
      return { n: shown.length, invalid: /Invalid Date/.test(text),
               missing: shown.filter((x) => !/Z$/.test(x) || !text.includes(new Date(x).toLocaleString())) };
    });
    check('users page: the tokens\' created and last-used times (UTC, Z) shown as those instants',
      times.n > 0 && !times.invalid && times.missing.length === 0, JSON.stringify(times));
    await shot(page, 'ui-users.png', true);

    // the admin sets operator2's password in the page, no dialog: typed
    // twice, hidden; too short or two different ones refused before anything
    // is sent; the server's own refusal shown in the row
    const pwSent = [];
    page.on('request', (r) => { if (/\/api\/v1\/users\/\d+\/password$/.test(r.url())) pwSent.push(r.url()); });
    let dialogs = 0;
    page.on('dialog', (d) => { dialogs++; d.dismiss().catch(() => {}); });
    await page.click('#users button[data-password="operator2"]');
    await page.waitForSelector('#set-password-row[data-password-for="operator2"] #set-password-form', { timeout: 10000 });
    const types = await page.$$eval('#set-password-form input', (is) => is.map((i) => i.type));
    check('Set password: a form in the page, the password asked twice and hidden as typed',
      types.length === 2 && types.every((x) => x === 'password') && dialogs === 0, `${JSON.stringify(types)}, ${dialogs} dialogs`);
    const setPassword = async (a, b) => {
      await page.evaluate(() => { document.getElementById('set-password-error').textContent = ''; });
      await page.fill('#set-password', a);
      await page.fill('#set-password-again', b);
      await page.click('#set-password-form button[type=submit]');
    };
    const pwError = async () => {
      await page.waitForFunction(() => document.getElementById('set-password-error').textContent !== '', null, { timeout: 10000 });
      return page.textContent('#set-password-error');
    };
    await setPassword('short-pw9', 'short-pw9');
    const tooShort = await pwError();
    await setPassword('pw-first-try-1', 'pw-first-try-2');
    const differ = await pwError();
    await sleep(300);
    check('Set password: 9 characters, or two different passwords, refused in the page and never sent',
      /at least 10 characters/.test(tooShort) && /differ/.test(differ) && pwSent.length === 0,
      `${tooShort} | ${differ} | ${pwSent.length} sent`);
    refusalsExpected = true;
    await setPassword('aaaaaaaaaaaa', 'aaaaaaaaaaaa');
    const serverSaid = await pwError();
    refusalsExpected = false;
    check('Set password: the server\'s refusal (too few different characters) shown in the row',
      /too few different characters/.test(serverSaid) && pwSent.length === 1, `${serverSaid} | ${pwSent.length} sent`);
    const setPw = 'pw2-' + Math.random().toString(36).slice(2, 14);
    await setPassword(setPw, setPw);
    await page.waitForFunction(() => /new password for operator2/.test(document.getElementById('user-note').textContent), null, { timeout: 10000 });
    check('Set password: sent once checked, and the page says so', pwSent.length === 2 && dialogs === 0 &&
      !(await page.isVisible('#set-password-row')), `${pwSent.length} sent, ${dialogs} dialogs`);
    await page.click('#logout');
    refusalsExpected = true;
    await login(page, 'operator2', newPw);
    await page.waitForFunction(() => document.getElementById('login-error').textContent.length > 0, null, { timeout: 10000 });
    refusalsExpected = false;
    pass('operator2\'s password before the admin set it is refused');
    await login(page, 'operator2', setPw);
    await page.waitForSelector('#queue tbody tr.row', { timeout: 10000 });
    pass('the new user logs in with the password the admin set and sees the queue');

    check('no errors in the browser console', consoleErrors.length === 0, consoleErrors.join(' | '));
  });
  console.log(`# screenshots in ${ARTIFACTS}`);
  finish(t);
})();
