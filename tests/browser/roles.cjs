// roles.cjs - what each role is offered, against the server run.sh filled
// (live and demo snapshots, the datasets and models pages.cjs made): a page
// offers a write only to a role the server lets make it (server/routes.c)
// and says who may, instead of a button that always ends in a 403.
//  - ml (reads labels, rules and the taxonomy; writes datasets and models):
//    the queue shows each alert's state without disposition buttons; the
//    snapshot view has no class buttons, label form, delete or alert
//    buttons, says it is read only, and Enter sends no label; the rules page
//    has no Edit, Enable/Disable or editor; the Classes page no forms; the
//    Datasets page still offers Freeze, Export and Train;
//  - operator: the Datasets page has no New dataset, Freeze, Export or
//    Train, and says they need the ml or admin role; the rules page still
//    offers Edit and Disable, the queue its dispositions;
//  - no console error: nothing is sent that the server refuses.
//  - admin: no Disable on their own row in the users page (a 409).
//  - everyone: their name in the header opens their account page, where
//    they change their own password (the operator's is checked).
// Env: BASE, USERNAME/PASSWORD (an operator), ML_USERNAME/ML_PASSWORD, ADMIN_USERNAME/ADMIN_PASSWORD,
// TOKEN (ml token), ARTIFACTS, CHROMIUM.  Prints PASS/FAIL lines; exit
// status 1 on any failure.
'use strict';
const { BASE, sleep, run, finish, login, apiGet, shot } = require('./lib.cjs');

async function signIn(page, user, pw) {
  await page.goto(BASE + '/#/queue');
  await login(page, user, pw);
  await page.waitForSelector('#logout:not([hidden])', { timeout: 10000 });
}

async function signOut(page) {
  await page.click('#logout');
  await page.waitForSelector('#login', { timeout: 10000 });
}

// Goes to hash and waits for ready.
async function open(page, hash, ready) {
  await page.evaluate((h) => { location.hash = h; }, hash);
  await page.waitForSelector(ready, { timeout: 10000 });
}

const count = (page, sel) => page.locator(sel).count();

// The page's visible text has no null, undefined or NaN (a part a role is
// not offered must leave nothing behind).
async function noNulls(page, check, where) {
  const text = await page.evaluate(() => document.body.innerText);
  const bad = text.match(/.{0,40}\b(null|undefined|NaN)\b.{0,40}/);
  check(`${where}: no "null", "undefined" or "NaN" shown`, !bad, bad && bad[0]);
}

(async () => {
  const t = await run({ name: 'browser-roles', viewport: { width: 1280, height: 900 }, failureShot: 'ui-roles-failure.png' },
    async ({ page, errors, check }) => {
    const snap = (await apiGet('/api/v1/queue?limit=1')).body.items[0];
    const ds = (await apiGet('/api/v1/datasets')).body.items.find((d) => d.versions > 0);

    // ---- ml ----------------------------------------------------------
    await signIn(page, process.env.ML_USERNAME, process.env.ML_PASSWORD);
    await page.waitForSelector('#queue tbody tr.row td.alert-cell .pill', { timeout: 10000 });
    check('ml, queue: each alert\'s state, no disposition buttons',
      (await count(page, '#queue td.alert-cell button')) === 0 && (await count(page, '#queue td.alert-cell .pill')) > 0,
      `${await count(page, '#queue td.alert-cell button')} buttons`);

    await open(page, `#/snapshot/${snap.id}`, '#snap-head');
    await page.waitForSelector('#alert-card h3 .pill', { timeout: 10000 });
    const head = await page.textContent('#snap-head');
    check('ml, snapshot: no class buttons nor label form, and it says labeling needs an operator',
      (await count(page, '#classes button')) === 0 && (await count(page, '#save, #f-class, #class-find')) === 0 &&
        /Read only: labeling needs the operator or admin role/.test(head), head);
    check('ml, snapshot: the alert card has no Acknowledge or disposition buttons, and says who may',
      (await count(page, '#alert-card button')) === 0 && /needs the operator or admin role/.test(await page.textContent('#alert-card')),
      await page.textContent('#alert-card'));
    // keys still move the view; Enter sends no label (it would be a 403)
    await page.evaluate(() => document.activeElement && document.activeElement.blur());
    const before = (await apiGet(`/api/v1/snapshots/${snap.id}/labels`)).body.items.length;
    await page.keyboard.press('m');
    await page.keyboard.press('1');
    await page.keyboard.press('Enter');
    await sleep(300);
    const status = await page.textContent('#status');
    const labels = (await apiGet(`/api/v1/snapshots/${snap.id}/labels`)).body.items.length;
    check('ml, snapshot: Enter says labeling is not theirs and sends nothing',
      /Read only: labeling needs the operator or admin role/.test(status) && labels === before, `${status} (${before} labels, then ${labels})`);
    await noNulls(page, check, 'ml, snapshot');
    await shot(page, 'ui-roles-ml-snapshot.png', { main: false });

    await open(page, '#/rules', '#rules tbody tr');
    check('ml, rules: no Edit, Enable/Disable or editor, and it says who may write rules',
      (await count(page, '#rules button')) === 0 && (await count(page, '#rule-form')) === 0 &&
        /writing, changing and switching rules needs the operator or admin role/.test(await page.textContent('#rules-read-only')),
      `${await count(page, '#rules button')} buttons, ${await count(page, '#rule-form')} editors`);

    await noNulls(page, check, 'ml, rules');
    await open(page, '#/classes', '#types tbody tr');
    check('ml, Classes: no forms, and it says who may add to the taxonomy',
      (await count(page, '#app form')) === 0 && /needs the operator or admin role/.test(await page.textContent('#tx-read-only')),
      `${await count(page, '#app form')} forms`);

    await noNulls(page, check, 'ml, Classes');
    await open(page, '#/datasets', `#datasets tr[data-dataset="${ds.id}"]`);
    await page.click(`#datasets tr[data-dataset="${ds.id}"]`);
    await page.waitForSelector(`#versions-${ds.id} tbody tr[data-version]`, { timeout: 10000 });
    check('ml, Datasets: New dataset, Freeze, Export and Train offered',
      (await count(page, '#ds-create')) === 1 && (await count(page, '[data-act=freeze]')) === 1 &&
        (await count(page, '[data-act=export]')) > 0 && (await count(page, '[data-act=train]')) > 0, 'missing');
    await signOut(page);

    // ---- operator ------------------------------------------------------
    await signIn(page, process.env.USERNAME, process.env.PASSWORD);
    await page.waitForSelector('#queue tbody tr.row td.alert-cell .pill', { timeout: 10000 });
    check('operator, queue: the disposition buttons offered', (await count(page, '#queue td.alert-cell button[data-dispo]')) > 0, 'none');
    await open(page, '#/datasets', `#datasets tr[data-dataset="${ds.id}"]`);
    await page.click(`#datasets tr[data-dataset="${ds.id}"]`);
    await page.waitForSelector(`#versions-${ds.id} tbody tr[data-version]`, { timeout: 10000 });
    const heads = await page.$$eval(`#versions-${ds.id} th`, (ths) => ths.map((th) => th.textContent));
    check('operator, Datasets: no New dataset, Freeze, Export or Train, and it says they need the ml or admin role',
      (await count(page, '#ds-create, [data-act=freeze], [data-act=export], [data-act=train]')) === 0 &&
        !heads.includes('export') && /needs the ml or admin role/.test(await page.textContent('#ds-read-only')),
      heads.join());
    await noNulls(page, check, 'operator, Datasets');
    await shot(page, 'ui-roles-operator-datasets.png', { main: false });
    await open(page, '#/rules', '#rules tbody tr');
    check('operator, rules: Edit, Disable and the editor offered',
      (await count(page, '#rules button:has-text("Edit")')) > 0 && (await count(page, '#rule-form')) === 1, 'missing');
    // their own password, from their name in the header, whatever the role
    await page.click('#who');
    await page.waitForSelector('#own-password-form', { timeout: 10000 });
    const acct = await page.textContent('#account-who');
    check('operator: their name in the header opens their account, with the change of their own password',
      acct.includes(process.env.USERNAME) && /role operator/.test(acct) && (await count(page, '#forbidden')) === 0, acct);
    await noNulls(page, check, 'operator, account');
    await signOut(page);

    // ---- admin -----------------------------------------------------------
    // the server refuses an admin's disabling of their own account
    await signIn(page, process.env.ADMIN_USERNAME, process.env.ADMIN_PASSWORD);
    await open(page, '#/admin/users', '#users tbody tr');
    const me = process.env.ADMIN_USERNAME;
    check('admin, users: no Disable on their own row, Disable on the others\'',
      (await count(page, `#users tr[data-user="${me}"] [data-disable]`)) === 0 &&
        (await count(page, `#users tr[data-user="${me}"] [data-password]`)) === 1 &&
        (await count(page, `#users tr[data-user="${process.env.USERNAME}"] [data-disable]`)) === 1,
      await page.textContent(`#users tr[data-user="${me}"]`));

    check('no errors in the browser console', errors.length === 0, errors.join(' | '));
  });
  finish(t);
})();
