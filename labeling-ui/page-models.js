// page-models.js - the on-device models: what each was trained from, how
// good it is with the number of windows behind each figure (a precision of
// 1.0 over three windows says little), the alert load it would bring, and
// where it is deployed.  GET /models, GET /models/{id}/deployments.
// Deploying, shadow runs and rollbacks have their own page once the API
// has them; this page shows the deployments the API lists.
import { api } from './http.js';
import { el, crumbs, showPage, showError } from './dom.js';
import { fmtTime, dash, withSupport } from './format.js';

function metricsCells(m) {
  if (!m) return [el('td', {}, '—'), el('td', {}, '—'), el('td', {}, '—'), el('td', {}, '—')];
  const tp = m.tp || 0, fp = m.fp || 0, fn = m.fn || 0;
  const load = m.expected_alerts_per_operator_hour;
  return [
    el('td', { class: 'precision', title: `tp ${tp}, fp ${fp}` }, withSupport(tp, tp + fp)),
    el('td', { class: 'recall', title: `tp ${tp}, fn ${fn}` }, withSupport(tp, tp + fn)),
    el('td', {}, dash(m.windows_scored), m.note ? el('div', { class: 'hint' }, m.note) : null),
    el('td', {}, load === undefined || load === null ? '—' : `${Number(load).toFixed(2)}/h`,
      m.meets_isa18_2_target === false ? el('span', { class: 'pill todo', title: 'over the ISA-18.2 target' }, 'over') : null),
  ];
}

function deploymentsList(items) {
  if (!items.length) return el('p', { class: 'muted' }, 'Not deployed.');
  return el('table', { class: 'deployments' },
    el('thead', {}, el('tr', {}, ['deployment', 'to', 'devices running it now', 'by', 'when'].map((h) => el('th', {}, h)))),
    el('tbody', {}, items.map((d) => el('tr', { 'data-deployment': d.id },
      el('td', {}, `#${d.id}`),
      el('td', {}, d.devices ? d.devices.join(', ') : [d.equipment_type, d.site].filter(Boolean).join(' @ ') || 'all'),
      el('td', {}, dash(d.devices_running_it_now)), el('td', {}, dash(d.created_by)), el('td', {}, fmtTime(d.created_at))))));
}

async function showDeployments(m, box) {
  box.replaceChildren(el('p', { class: 'muted' }, 'Loading…'));
  try {
    const d = await api('GET', `/api/v1/models/${m.id}/deployments`);
    box.replaceChildren(el('h3', {}, `Model #${m.id}: deployments`), deploymentsList(d.items));
  } catch (e) { box.replaceChildren(el('p', { class: 'error' }, e.message)); }
}

export async function showModels() {
  crumbs('Models');
  let list;
  try { list = await api('GET', '/api/v1/models'); } catch (e) { showError(e.message); return; }
  const detail = el('div', { class: 'card', id: 'model-detail' }, el('p', { class: 'muted' }, 'Pick a model to see its deployments.'));
  const rows = list.items.map((m) => el('tr', { class: 'row', 'data-model': m.id, tabindex: 0, onclick: () => showDeployments(m, detail) },
    el('td', {}, `#${m.id}`), el('td', {}, m.kind),
    el('td', {}, el('span', { class: `pill ${m.status === 'done' ? 'done' : 'todo'}` }, m.status), m.error ? el('div', { class: 'error' }, m.error) : null),
    el('td', {}, `${m.dataset_name || `dataset #${m.dataset_id}`} v${m.version}`),
    ...metricsCells(m.metrics),
    el('td', {}, dash(m.deployments)), el('td', {}, fmtTime(m.finished_at || m.created_at))));
  showPage(el('h2', {}, 'Models'),
    el('p', { class: 'hint' }, 'Cross-validated over whole split groups; n is the number of windows each ratio rests on. ' +
      'Train one with POST /api/v1/models {"dataset_id","version","kind"} (ml, admin).'),
    el('table', { id: 'models' },
      el('thead', {}, el('tr', {}, ['id', 'kind', 'status', 'trained from', 'precision', 'recall', 'windows scored',
        'alerts per operator hour', 'deployments', 'when'].map((h) => el('th', {}, h)))),
      el('tbody', {}, rows.length ? rows : [el('tr', {}, el('td', { colspan: 10, class: 'muted' }, 'No models yet.'))])),
    detail);
}
