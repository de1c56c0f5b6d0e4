// session.js - who is logged in and the label classes, loaded once per
// login and read by every page.
import { api, setCsrf } from './http.js';

// me: GET /session's answer (username, role, csrf); classes: the label
// classes in key order (key 1 picks classes[0]).
export const session = { me: null, classes: [] };

// Throws the API's error; status 401 when nobody is logged in (the probe
// answers 200 {"authenticated": false} then, so the browser logs no error
// before login).  The classes are asked for only once someone is.
export async function loadSession() {
  const me = await api('GET', '/api/v1/session');
  if (!me.authenticated) {
    session.me = null;
    const e = new Error('not logged in');
    e.status = 401;
    throw e;
  }
  session.me = me;
  setCsrf(me.csrf);
  session.classes = (await api('GET', '/api/v1/classes')).items;
}

export async function logIn(username, password) {
  session.me = await api('POST', '/api/v1/session', { username, password });
  setCsrf(session.me.csrf);
}

export async function logOut() {
  await api('DELETE', '/api/v1/session').catch(() => {});
  session.me = null;
  setCsrf(null);
}

export const isAdmin = () => !!session.me && session.me.role === 'admin';
