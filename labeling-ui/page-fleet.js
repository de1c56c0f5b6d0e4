// page-fleet.js - the devices: whether each one is well (status, last
// heard of, spool depth, drops), which model it should run and which it
// says it runs, and for admins approval and revocation.  GET /devices and
// POST /devices/{id}/approve|revoke (docs/FLEET.md).  Revocation is final
// for the device id and its key (the server answers approve with 409): a
// machine brought back enrolls again under a new device id and shows up
// here as pending; its history stays under the old id.
import { api } from './http.js';
import { el, crumbs, showPage, showError } from './dom.js';
import { fmtTime, dash } from './format.js';
import { isAdmin } from './session.js';
import { showDemo } from './demo.js';

const COLUMNS = ['device', 'status', 'health', 'equipment', 'site', 'last seen', 'spool', 'drops',
  'agent', 'model assigned', 'model running', ''];

function ago(s) {
  if (s === null || s === undefined || !Number.isFinite(s)) return '—';
  s = Math.max(0, Math.round(s));
  if (s < 120) return `${s} s ago`;
  if (s < 7200) return `${Math.round(s / 60)} min ago`;
  if (s < 172800) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

// How long ago a device was last heard of: its heartbeat's age (the
// server's clock), else its last upload's time against ours; the time
// itself is in the cell's title.
function lastHeard(d) {
  if (d.heartbeat_age_s !== null && d.heartbeat_age_s !== undefined) return ago(d.heartbeat_age_s);
  return d.last_seen ? ago((Date.now() - Date.parse(d.last_seen)) / 1000) : '—';
}

export const REVOKE_CONFIRM = (id) => `Revoke ${id}? From now on its uploads and heartbeats are refused. ` +
  `This cannot be undone: to bring the machine back, enroll it again under a new device id ` +
  `(it appears here as pending); the snapshots and labels of ${id} stay under ${id}.`;

const REVOKED_NOTE = 'revoked for good: enroll the machine again under a new device id';

function actions(d, done) {
  if (d.status === 'revoked') {
    return el('span', { class: 'hint revoked-note', title: 'Revocation is final for this device id and key (docs/FLEET.md)' }, REVOKED_NOTE);
  }
  if (!isAdmin()) return '';
  const act = (verb) => async () => {
    if (verb === 'revoke' && !window.confirm(REVOKE_CONFIRM(d.id))) return;
    try {
      await api('POST', `/api/v1/devices/${encodeURIComponent(d.id)}/${verb}`);
      done(verb === 'revoke' ? `${d.id}: revoked (final: the machine comes back only under a new device id)` : `${d.id}: approved`);
    } catch (e) { done(e.message, true); }
  };
  return [
    d.status === 'pending' ? el('button', { 'data-act': 'approve', onclick: act('approve') }, 'Approve') : null,
    el('button', { 'data-act': 'revoke', onclick: act('revoke') }, 'Revoke'),
  ];
}

function deviceRow(d, done) {
  const model = d.model || {};
  return el('tr', { 'data-device': d.id },
    el('td', {}, d.id, d.demo ? el('span', { class: 'pill demo' }, 'demo') : null),
    el('td', {}, el('span', { class: `pill ${d.status === 'active' ? 'done' : 'todo'}` }, d.status)),
    el('td', { class: 'health' }, dash(d.health)),
    el('td', {}, dash(d.equipment_type)), el('td', {}, dash(d.site)),
    el('td', { title: fmtTime(d.last_seen) }, lastHeard(d)),
    el('td', { class: 'spool' }, dash(d.spool_depth)), el('td', { class: 'drops' }, dash(d.drops)),
    // the build the device runs, from its signed heartbeat (docs/FLEET.md)
    el('td', { class: 'agent-version' }, dash(d.agent_version)),
    // the model's deployments page: how it runs on this device and the others
    el('td', {}, model.assigned ? el('a', { href: `#/deployments/${model.assigned}`, class: 'model-assigned' }, `#${model.assigned}`) : '—'),
    el('td', {}, model.running !== null && model.running !== undefined ? `#${model.running}` : dash(d.model_version)),
    el('td', {}, actions(d, done)));
}

export async function showFleet(note, isErr) {
  crumbs('Fleet');
  let items = [];
  try {
    // every device, the demo ones too (the server leaves them out unless
    // asked): the page hides them itself and says how many it hid
    for (let after = ''; ;) {
      const page = await api('GET', `/api/v1/devices?limit=1000&demo=include${after ? `&after=${encodeURIComponent(after)}` : ''}`);
      items = items.concat(page.items);
      if (!page.next) break;
      after = page.next;
    }
  } catch (e) { showError(e.message); return; }
  const shown = showDemo() ? items : items.filter((d) => !d.demo);
  const done = (msg, bad) => showFleet(msg, bad);
  showPage(el('h2', {}, 'Fleet'),
    el('p', { class: isErr ? 'error' : 'muted', id: 'fleet-note' }, note || `${shown.length} device${shown.length === 1 ? '' : 's'}` +
      (shown.length < items.length ? ` (${items.length - shown.length} demo devices hidden)` : '')),
    el('table', { id: 'fleet' },
      el('thead', {}, el('tr', {}, COLUMNS.map((h) => el('th', {}, h)))),
      el('tbody', {}, shown.map((d) => deviceRow(d, done)))),
    el('p', { class: 'hint' }, 'Health from the latest heartbeat: spool is the snapshots waiting on the device, drops those it had to give up. ' +
      'Model assigned is the deployment in force for the device; running is what its heartbeat reports.'),
    el('p', { class: 'hint', id: 'fleet-lifecycle' }, 'A device enrolls as pending (unless its enrollment token pre-approves it) and uploads once an admin approves it. ' +
      'Revoke a device whose key may be lost or that leaves the fleet: revocation is final for that device id and key, ' +
      'so a machine that comes back enrolls again under a new device id and appears here as pending; what it uploaded before stays under the old id.'));
}
