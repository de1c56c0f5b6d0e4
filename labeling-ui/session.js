// session.js - who is logged in and the label classes, loaded once per
// login and read by every page.
import { api, setCsrf } from './http.js';

// me: GET /session's answer (username, role, csrf); classes: the label
// classes in key order (key 1 picks classes[0]), filled once classesLoaded
// (a promise) resolves; epoch: counts logins and logouts, so that an answer
// that arrives after one is dropped.
export const session = { me: null, classes: [], classesLoaded: Promise.resolve(), epoch: 0 };

// A page that awaits an answer takes the epoch before asking and shows the
// answer only when it is still current: nobody logged out or in meanwhile.
export const sessionEpoch = () => session.epoch;
export const stillCurrent = (epoch) => epoch === session.epoch && !!session.me;

// Throws the API's error; status 401 when nobody is logged in (the probe
// answers 200 {"authenticated": false} then, so the browser logs no error
// before login).  The classes are asked for only once someone is (or beside
// this call, preloadClasses, when someone probably is), and not
// waited for here: the page shown asks for its own data meanwhile, and the
// one that names classes (the snapshot page) awaits session.classesLoaded,
// which rejects with the API's error.
export async function loadSession() {
  let me, classes;
  try {
    me = await api('GET', '/api/v1/session');
  } finally {
    classes = classesEarly;         // asked for beside this call, if at all
    classesEarly = null;
  }
  if (!me.authenticated) {
    session.me = null;
    rememberSignedIn(false);
    const e = new Error('not logged in');
    e.status = 401;
    throw e;
  }
  session.me = me;
  setCsrf(me.csrf);
  rememberSignedIn(true);
  session.classesLoaded = (classes || api('GET', '/api/v1/classes')).then((j) => { session.classes = j.items; });
  session.classesLoaded.catch(() => {});    // reported by the page that awaits it
}

// The classes asked for beside GET /session by a page opened signed in
// (app.js); loadSession takes them over.
let classesEarly = null;
export function preloadClasses() {
  classesEarly = api('GET', '/api/v1/classes');
  classesEarly.catch(() => {});     // a stale hint: loadSession drops them
}

export async function logIn(username, password) {
  session.me = await api('POST', '/api/v1/session', { username, password });
  session.epoch++;
  setCsrf(session.me.csrf);
  rememberSignedIn(true);
}

// The server ended the session (it expired, or the password changed):
// forgotten here as at logout, without asking the server again.
export function endSession() {
  session.epoch++;
  session.me = null;
  rememberSignedIn(false);
  setCsrf(null);
}

export async function logOut() {
  session.epoch++;        // before the DELETE: answers in flight are stale from now
  session.me = null;
  rememberSignedIn(false);
  await api('DELETE', '/api/v1/session').catch(() => {});
  setCsrf(null);
}

// Whether this browser was signed in when the page last knew (the session
// cookie itself is HttpOnly): a page opened on a snapshot then asks for the
// snapshot's data beside GET /session instead of after it (app.js).  Only
// a hint: the session's answer still decides, and a stale hint costs a few
// answers 401 that are dropped.
const SIGNED_IN_KEY = 'precursor.signedIn';
function rememberSignedIn(yes) {
  try {
    if (yes === (localStorage.getItem(SIGNED_IN_KEY) === '1')) return;   // a write per load costs a ms or two
    if (yes) localStorage.setItem(SIGNED_IN_KEY, '1'); else localStorage.removeItem(SIGNED_IN_KEY);
  } catch { /* no storage: no hint */ }
}
export const probablySignedIn = () => { try { return localStorage.getItem(SIGNED_IN_KEY) === '1'; } catch { return false; } };

export const isAdmin = () => !!session.me && session.me.role === 'admin';

// What each role may write, as the server's routes allow it
// (server/routes.c): labels, alert acknowledgements and dispositions, rules
// and the taxonomy take an operator or an admin; datasets, exports,
// training and deployments the ml role or an admin.  A page offers a write
// only to a role that may make it, and says who may, rather than show a
// button that always ends in a 403.
const hasRole = (...roles) => !!session.me && roles.includes(session.me.role);
export const canOperate = () => hasRole('operator', 'admin');
export const canModel = () => hasRole('ml', 'admin');
export const OPERATE_NOTE = 'needs the operator or admin role';
export const MODEL_NOTE = 'needs the ml or admin role';
