// page-queue.js - the queue of snapshots to label, best first, with
// filters, paging and each row's alert (alerts.js).  The filters live for
// the session, so coming back from a snapshot shows the same page.
import { api } from './http.js';
import { el, crumbs, showPage, showError } from './dom.js';
import { fmtTime, localDay } from './format.js';
import { snapshotHash, matchRoute } from './router.js';
import { decorateQueue } from './alerts.js';
import { demoParam } from './demo.js';
import { sessionEpoch, stillCurrent } from './session.js';

const PAGE_ROWS = 100;
const Q = {
  sort: 'score', device: '', equipment_type: '', site: '', min_score: '', from: '', to: '',
  unlabeled: false, offset: 0,
};
const COLUMNS = ['', 'id', 'device', 'equipment', 'site', 'trigger time', 'score', 'detector', 'shape'];

// Dates are whole days of the reader's, as the trigger times show: "to"
// includes its day.
function queueQuery() {
  const p = new URLSearchParams({ sort: Q.sort, limit: PAGE_ROWS, offset: Q.offset });
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

function filterBar(q) {
  const sort = el('select', { id: 'sort', onchange: (ev) => { Q.sort = ev.target.value; showQueue(); } },
    ['score', 'time', 'device'].map((v) => el('option', { value: v, selected: Q.sort === v }, v)));
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
  el('td', {}, `${s.channel_count} ch × ${s.duration_s.toFixed(2)} s`));
}

// An empty page says why: the filters, the demo switch, or nothing uploaded yet.
function emptyRow(q) {
  const filtered = ['device', 'equipment_type', 'site', 'min_score', 'from', 'to'].some((k) => Q[k] !== '') || Q.unlabeled;
  const why = Q.offset > 0 && q.total > 0 ? 'No snapshot on this page: go back a page.'
    : filtered ? 'No snapshot matches these filters.'
      : 'No snapshot yet: devices upload one when a detector triggers.' +
        (demoParam() === 'exclude' ? ' The demo history stays hidden unless "show demo data" is ticked.' : '');
  return el('tr', { id: 'queue-empty' }, el('td', { colspan: COLUMNS.length, class: 'muted' }, why));
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
  let q;
  try {
    q = await api('GET', '/api/v1/queue?' + queueQuery());
  } catch (e) {
    if (current()) showError(e.message);
    return;
  }
  if (!current()) return;
  const table = el('table', { id: 'queue' },
    el('thead', {}, el('tr', {}, COLUMNS.map((h) => el('th', {}, h)))),
    el('tbody', {}, q.items.length ? q.items.map(queueRow) : emptyRow(q)));
  showPage(filterBar(q), table, pager(q.total));
  decorateQueue(table);
}

// The next snapshot to label in the queue's order, other than current; the
// queue when there is none.
export async function nextUnlabeled(current) {
  const epoch = sessionEpoch();
  const q = await api('GET', `/api/v1/queue?unlabeled=1&limit=2&sort=${Q.sort}&demo=${demoParam()}`);
  if (!stillCurrent(epoch)) return;
  const next = q.items.find((s) => s.id !== current);
  location.hash = next ? snapshotHash(next.id) : '#/queue';
}
