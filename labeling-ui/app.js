// app.js - the labeling UI's entry (index.html loads it): log in, then show
// the page the location hash names (router.js), and again on every change
// of the hash.  Each page is a module of its own (page-*.js) built from the
// shared ones (http.js, dom.js, format.js, ...); docs/UI.md describes the
// pages.  Plain ES modules, served flat from labeling-ui/dist/ with uPlot
// copied beside them by scripts/ui-build.sh.
import { byId, showError } from './dom.js';
import { whenUnauthorized } from './http.js';
import { session, loadSession, logOut, endSession, isAdmin, probablySignedIn, preloadClasses } from './session.js';
import { matchRoute } from './router.js';
import { startBanner, refreshBanner, clearBanner } from './banner.js';
import { showDemo, setShowDemo } from './demo.js';
import { showLogin } from './page-login.js';
import { showQueue } from './page-queue.js';
import { showSnapshot, closeSnapshot, preloadSnapshot } from './page-snapshot.js';
import { showUsers, showAccount } from './page-users.js';
import { showRules } from './page-rules.js';
import { showOps } from './page-ops.js';
import { showFleet } from './page-fleet.js';
import { showDatasets } from './page-datasets.js';
import { showModels } from './page-models.js';
import { showClasses } from './page-classes.js';
import { showDeployments } from './page-deployments.js';

const PAGES = {
  queue: () => showQueue(),
  snapshot: (p) => showSnapshot(p.id),
  users: () => showUsers(),
  account: () => showAccount(),
  rules: () => showRules(),
  ops: () => showOps(),
  fleet: () => showFleet(),
  datasets: () => showDatasets(),
  models: (p) => showModels(p.model),
  classes: () => showClasses(),
  deployments: (p) => showDeployments(p.model),
};

function route() {
  if (!session.me) return;
  closeSnapshot();
  const { page, params } = matchRoute(location.hash);
  return PAGES[page](params);
}

// Who is logged in, in the header; the users link for admins only.
function showSignedIn() {
  byId('who').textContent = `${session.me.username} (${session.me.role})`;
  byId('logout').hidden = false;
  byId('users-link').hidden = !isAdmin();
  byId('demo-switch').hidden = false;
  byId('show-demo').checked = showDemo();
}

function toLogin(msg) {
  clearBanner();
  byId('who').textContent = '';
  byId('logout').hidden = true;
  byId('users-link').hidden = true;
  byId('demo-switch').hidden = true;
  showLogin(start, msg);
}

async function start() {
  const signedIn = loadSession();     // first on the wire: it decides what shows
  // A page opened by someone signed in: the label classes, and on a
  // snapshot its own requests, go out now, beside the session's, not one
  // round trip later.
  if (probablySignedIn()) {
    preloadClasses();
    const first = matchRoute(location.hash);
    if (first.page === 'snapshot') preloadSnapshot(first.params.id);
  }
  try {
    await signedIn;
  } catch (e) {
    if (e.status === 401) return toLogin();
    if (session.me) showSignedIn();
    showError(e.message);
    return;
  }
  showSignedIn();
  // The banner's figures (a query over months of alerts) wait for the page
  // asked for to be shown: they are not what the operator opened the page
  // for, and on the server they would compete with its requests.
  Promise.resolve(route()).finally(startBanner);
}

// A session that ended on the server while the page was open (12 h, or a
// new password set): the next answer is a 401, and the login form comes
// back with why, instead of the API's "missing or invalid bearer token" on
// the page; logging in again shows the page the address names.  Shown
// after the page that asked has handled its refusal (a task later), so
// that its error does not replace the form.
const SESSION_ENDED = 'Your session has ended (it expired, or your password was changed): log in again.';
whenUnauthorized(() => {
  if (!session.me) return;          // not signed in: a login refused, a stale preload
  closeSnapshot();
  endSession();
  setTimeout(() => toLogin(SESSION_ENDED), 0);
});

byId('logout').addEventListener('click', async () => {
  closeSnapshot();        // its keys and timers go with the page
  await logOut();
  byId('users-link').hidden = true;
  location.hash = '#/queue';
  toLogin();
});
// Demo data on or off: the banner and the page shown follow at once.
byId('show-demo').addEventListener('change', (ev) => {
  setShowDemo(ev.target.checked);
  refreshBanner();
  route();
});
window.addEventListener('hashchange', route);

start();
