// session.js - who is logged in and the label classes, loaded once per
// login and read by every page.
import { api, setCsrf } from './http.js';

// me: GET /session's answer (username, role, csrf); classes: the label
// classes in key order (key 1 picks classes[0]).
export const session = { me: null, classes: [] };

// Throws the API's error (status 401: nobody is logged in).  Session and
// classes are asked for together: one round trip before the first page.
export async function loadSession() {
  const classes = api('GET', '/api/v1/classes');
  classes.catch(() => {});     // a 401 here is answered by the session's
  session.me = await api('GET', '/api/v1/session');
  setCsrf(session.me.csrf);
  session.classes = (await classes).items;
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
