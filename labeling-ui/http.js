// http.js - the REST API as the pages call it (docs/UI.md): JSON in and
// out, the session cookie, the CSRF token on every state-changing request,
// and errors thrown as Error with the API's message and the HTTP status.
import { LITTLE_ENDIAN, parseSamples } from './samples.js';

// Set at login and on reload from GET /session; cleared at logout.
let csrf = null;
export function setCsrf(token) { csrf = token || null; }

// Called on every 401: a session that ended on the server (expired, or its
// password changed) is told by the next request's answer (app.js shows the
// login form again).
let onUnauthorized = null;
export function whenUnauthorized(f) { onUnauthorized = f; }

async function apiError(r) {
  const j = await r.json().catch(() => ({}));
  // after the body is read: the caller's handling of this error follows
  // in the same task, before the one the handler queues
  if (r.status === 401 && onUnauthorized) onUnauthorized();
  const e = new Error((j.error && j.error.message) || r.statusText);
  e.status = r.status;
  e.body = j;   // the numbers some refusals carry (a 409 on promotion)
  return e;
}

// The answer's JSON, null for 204; throws on a non-2xx answer.
export async function api(method, path, body) {
  const headers = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && csrf) headers['X-CSRF-Token'] = csrf;
  const r = await fetch(path, {
    method, headers, credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (r.status === 204) return null;
  if (!r.ok) throw await apiError(r);
  return r.json().catch(() => ({}));
}

// GET /snapshots/{id}/samples?query in the binary form (schema/SAMPLES.md),
// JSON on a big-endian host.  meta (GET /snapshots/{id}) names the channels.
export async function fetchSamples(id, query, meta) {
  const path = `/api/v1/snapshots/${id}/samples?${query}`;
  if (!LITTLE_ENDIAN) return api('GET', path);
  const r = await fetch(`${path}&format=bin`, { credentials: 'same-origin' });
  if (!r.ok) throw await apiError(r);
  return parseSamples(await r.arrayBuffer(), meta);
}
