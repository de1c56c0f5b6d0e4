// page-queue.js - the queue of snapshots to label, best first, with
// filters, paging and each row's alert (alerts.js).  The filters live for
// the session, so coming back from a snapshot shows the same page.  Sort
// "least certain" (active learning) puts first what a done centroid or
// few-shot model is least sure of, and shows what it predicts.
import { api } from './http.js';
import { el, crumbs, showPage, showError } from './dom.js';
import { fmtTime, localDay } from './format.js';
import { snapshotHash, matchRoute } from './router.js';
import { decorateQueue } from './alerts.js';
import { demoParam } from './demo.js';
import { sessionEpoch, stillCurrent } from './session.js';

const PAGE_ROWS = 100;
// How many recent models the Sort select looks through for least-certain options.
const MODELS_LOOKED_AT = 20;
const MODEL_OPTIONS = 5;
const Q = {
  sort: 'score', model: '', device: '', equipment_type: '', site: '', min_score: '', from: '', to: '',
  unlabeled: false, offset: 0,
};
const COLUMNS = ['', 'id', 'device', 'equipment', 'site', 'trigger time', 'score', 'detector', 'shape'];
const columns = () => (Q.model ? [...COLUMNS, 'model says'] : COLUMNS);

// Dates are whole days of the reader's, as the trigger times show: "to"
// includes its day.
function queueQuery() {
  const p = new URLSearchParams({ sort: Q.sort, limit: PAGE_ROWS, offset: Q.offset });
  if (Q.model) p.set('model', Q.model);
  for (const k of ['device', 'equipment_type', 'site', 'min_score']) if (Q[k] !== '') p.set(k, Q[k]);
  if (Q.from) p.set('from', localDay(Q.from).start);
  if (Q.to) p.set('to', localDay(Q.to).end);
  if (Q.unlabeled) p.set('unlabeled', 1);
  p.set('demo', demoParam());
  return p;
}

// A filter change starts again at the first page.
function setFilter(key, value) {
  Q[key] = value;
  Q.offset = 0;
  showQueue();
}

function facetSelect(key, values) {
  return el('select', { onchange: (ev) => setFilter(key, ev.target.value) },
    el('option', { value: '' }, 'all'), values.map((v) => el('option', { value: v, selected: Q[key] === v }, v)));
}

function filterInput(key, type, extra = {}) {
  return el('input', { type, value: Q[key], ...extra, onchange: (ev) => setFilter(key, ev.target.value) });
}

// The models whose uncertainty may order the queue: done, of a kind that
// predicts a class (an anomaly model does not), the newest few.  A role
// that may not list models, or a failed list, offers none.
async function uncertainModels() {
  try {
    const list = await api('GET', `/api/v1/models?limit=${MODELS_LOOKED_AT}`);
    return list.items.filter((m) => m.status === 'done' && m.kind !== 'anomaly').slice(0, MODEL_OPTIONS);
  } catch (e) {
    return [];
  }
}

// Sort options: the plain sorts, then "least certain" per model (value
// uncertain:<id>); the model in use stays offered even when older.
function sortSelect(models) {
  const opts = ['score', 'time', 'device'].map((v) => el('option', { value: v, selected: Q.sort === v }, v));
  const ids = models.map((m) => String(m.id));
  for (const m of models) {
    opts.push(el('option', { value: `uncertain:${m.id}`, selected: Q.sort === 'uncertain' && Q.model === String(m.id) },
      `least certain (model #${m.id}, ${m.kind})`));
  }
  if (Q.model && !ids.includes(Q.model)) {
    opts.push(el('option', { value: `uncertain:${Q.model}`, selected: true }, `least certain (model #${Q.model})`));
  }
  return el('select', {
    id: 'sort',
    onchange: (ev) => {
      const [sort, model] = ev.target.value.split(':');
      Q.sort = sort;
      Q.model = model || '';
      Q.offset = 0;
      showQueue();
    },
  }, opts);
}

function filterBar(q, models) {
  const sort = sortSelect(models);
  const unlabeled = el('input', {
    type: 'checkbox', checked: Q.unlabeled,
    onchange: (ev) => { Q.unlabeled = ev.target.checked; showQueue(); },
  });
  return el('div', { class: 'card filters' },
    el('label', {}, 'Sort', sort),
    el('label', {}, 'Device', facetSelect('device', q.facets.devices)),
    el('label', {}, 'Equipment type', facetSelect('equipment_type', q.facets.equipment_types)),
    el('label', {}, 'Site', facetSelect('site', q.facets.sites)),
    el('label', {}, 'Min score',
      filterInput('min_score', 'number', { step: '0.05', min: 0, max: 1, style: 'width:70px' })),
    el('label', {}, 'From', filterInput('from', 'date')),
    el('label', {}, 'To', filterInput('to', 'date')),
    el('label', {}, 'Unlabeled only', unlabeled),
    el('span', { class: 'grow' }),
    el('strong', { id: 'left' }, `${q.left} left to label`), el('span', { class: 'muted' }, ` of ${q.total}`));
}

// A row opens its snapshot on click, or on Enter once tabbed to.
// What the model predicts for the row's snapshot: its class and how sure
// (the margin to the runner-up in the title); a dash when it did not.
function predictionCell(p) {
  if (!p) return el('td', { class: 'muted', title: 'not predicted: another device, received after the model\'s version, or beyond its cap' }, '—');
  return el('td', { class: 'prediction', title: `margin ${p.margin.toFixed(3)} to the next class` },
    `${p.class} ${(p.probability * 100).toFixed(0)}%`);
}

function queueRow(s) {
  const open = () => { location.hash = snapshotHash(s.id); };
  const state = s.labeled_at
    ? el('span', { class: 'pill done' }, 'labeled')
    : el('span', { class: 'pill todo' }, 'to do');
  return el('tr', {
    class: 'row' + (s.labeled_at ? ' labeled' : ''), 'data-id': s.id, tabindex: 0, onclick: open,
    onkeydown: (ev) => { if (ev.key === 'Enter') { ev.preventDefault(); open(); } },
  },
  el('td', {}, state),
  el('td', {}, '#' + s.id, s.demo ? el('span', { class: 'pill demo', title: 'demo history (make run), not the live fleet' }, 'demo') : ''),
  el('td', {}, s.device_id),
  el('td', {}, s.equipment_type || '—'), el('td', {}, s.site || '—'),
  el('td', {}, fmtTime(s.trigger_time)), el('td', {}, s.score.toFixed(3)), el('td', {}, s.detector),
  el('td', {}, `${s.channel_count} ch × ${s.duration_s.toFixed(2)} s`),
  Q.model ? predictionCell(s.model_prediction) : null);
}

// An empty page says why: the filters, the demo switch, or nothing uploaded yet.
function emptyRow(q) {
  const filtered = ['device', 'equipment_type', 'site', 'min_score', 'from', 'to'].some((k) => Q[k] !== '') || Q.unlabeled;
  const why = Q.offset > 0 && q.total > 0 ? 'No snapshot on this page: go back a page.'
    : filtered ? 'No snapshot matches these filters.'
      : 'No snapshot yet: devices upload one when a detector triggers.' +
        (demoParam() === 'exclude' ? ' The demo history stays hidden unless "show demo data" is ticked.' : '');
  return el('tr', { id: 'queue-empty' }, el('td', { colspan: columns().length, class: 'muted' }, why));
}

function pager(total) {
  const go = (offset) => { Q.offset = offset; showQueue(); };
  return el('p', {},
    el('button', { disabled: Q.offset === 0, onclick: () => go(Math.max(0, Q.offset - PAGE_ROWS)) }, '‹ prev'), ' ',
    el('button', { disabled: Q.offset + PAGE_ROWS >= total, onclick: () => go(Q.offset + PAGE_ROWS) }, 'next ›'),
    el('span', { class: 'hint' },
      '  Click a row (or Tab to it and Enter) to label it; in a snapshot, n jumps to the next unlabeled one.'));
}

// The newest queue asked for: an older answer (filters changed, the page
// left, or a logout meanwhile) is not shown.
let asked = 0;

export async function showQueue() {
  crumbs('Queue');
  const seq = ++asked, epoch = sessionEpoch();
  const current = () => seq === asked && stillCurrent(epoch) && matchRoute(location.hash).page === 'queue';
  let q, models;
  try {
    [q, models] = await Promise.all([api('GET', '/api/v1/queue?' + queueQuery()), uncertainModels()]);
  } catch (e) {
    // a model gone or refused: the next visit sorts by score again
    if (Q.model) Object.assign(Q, { sort: 'score', model: '', offset: 0 });
    if (current()) showError(e.message);
    return;
  }
  if (!current()) return;
  const table = el('table', { id: 'queue' },
    el('thead', {}, el('tr', {}, columns().map((h) => el('th', {}, h)))),
    el('tbody', {}, q.items.length ? q.items.map(queueRow) : emptyRow(q)));
  showPage(filterBar(q, models), table, pager(q.total));
  decorateQueue(table);
}

// The next snapshot to label in the queue's order, other than current; the
// queue when there is none.
export async function nextUnlabeled(current) {
  const epoch = sessionEpoch();
  const model = Q.model ? `&model=${Q.model}` : '';
  const q = await api('GET', `/api/v1/queue?unlabeled=1&limit=2&sort=${Q.sort}${model}&demo=${demoParam()}`);
  if (!stillCurrent(epoch)) return;
  const next = q.items.find((s) => s.id !== current);
  location.hash = next ? snapshotHash(next.id) : '#/queue';
}
