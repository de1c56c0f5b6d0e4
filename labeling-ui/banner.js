// banner.js - a falling alert follow-through shows as a red banner on
// every page, not only on the metrics page, because the point is that
// nobody can miss it.  Refreshed every few minutes and after anything that
// changes it (a disposition, a visit to the metrics page).
import { api } from './http.js';
import { el, byId } from './dom.js';
import { session, sessionEpoch, stillCurrent } from './session.js';
import { demoParam } from './demo.js';

const REFRESH_MS = 5 * 60 * 1000;
let timer = null;

// Gone at logout: the login form shows no figures of the fleet.
export function clearBanner() {
  const b = byId('ft-banner');
  if (b) b.remove();
}

export async function refreshBanner() {
  let m;
  if (!session.me) return clearBanner();   // logged out: the timer keeps running, the API would say 401
  const epoch = sessionEpoch();
  try { m = await api('GET', `/api/v1/metrics/operational?bucket=week&demo=${demoParam()}`); } catch (e) { return; }
  if (!stillCurrent(epoch)) return;        // an answer that lands after a logout is not shown
  let b = byId('ft-banner');
  if (!m.warning) { if (b) b.remove(); return; }
  if (!b) {
    b = el('div', { id: 'ft-banner', class: 'ft-banner', role: 'alert' });
    byId('top').after(b);
  }
  b.replaceChildren(el('strong', {}, 'Alert follow-through is falling: '), m.warning, ' ',
    el('a', { href: '#/ops' }, 'see the operational metrics'));
}

// Called at every login; one timer for the page's life.
export function startBanner() {
  refreshBanner();
  if (!timer) timer = setInterval(refreshBanner, REFRESH_MS);
}
