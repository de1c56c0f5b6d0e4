// alerts.js - alert dispositions in one click: a column of the queue and a
// card of the snapshot view.  A disposition may change the follow-through,
// so each one refreshes the banner.
import { api } from './http.js';
import { el } from './dom.js';
import { fmtTime } from './format.js';
import { refreshBanner } from './banner.js';
import { canOperate, OPERATE_NOTE } from './session.js';

// [value, button text, what it means]
const DISPOSITIONS = [
  ['action_taken', 'Action taken', 'the alert led to maintenance action'],
  ['no_fault_found', 'No fault found', 'investigated, nothing wrong (labels the snapshot normal)'],
  ['not_actionable', 'Not actionable', 'could not or need not act on it'],
  ['duplicate', 'Duplicate', 'the same event as an earlier alert'],
];
const CARD_HINT = 'Work order and outcome go with the disposition button you press. ' +
  'An alert with no disposition after the acknowledgement window counts as ignored.';

// snapshot id -> its alert, for the snapshots that have one.
async function alertsById(ids) {
  if (!ids.length) return new Map();
  const r = await api('GET', `/api/v1/alerts?limit=500&ids=${ids.join(',')}`);
  return new Map(r.items.map((a) => [a.snapshot_id, a]));
}

function statePill(a) {
  const s = a ? a.state : 'open';
  const txt = a && a.disposition ? a.disposition.replace(/_/g, ' ') : s;
  return el('span', { class: `pill alert-${s}`, 'data-state': s }, txt);
}

const dispoClass = (a, d) => 'dispo' + (a && a.disposition === d ? ' sel' : '');
const initials = (label) => label.split(' ').map((w) => w[0]).join('').toUpperCase();

// One click records the disposition; extra() may add work order and outcome.
async function dispose(id, disposition, extra) {
  return api('POST', `/api/v1/alerts/${id}/disposition`, { disposition, ...(extra ? extra() : {}) });
}

// Queue: one more column with the alert's state and the four dispositions.
export async function decorateQueue(table) {
  const rows = [...table.querySelectorAll('tbody tr[data-id]')];
  const head = table.querySelector('thead tr');
  if (!head || head.querySelector('.alert-col')) return;
  head.append(el('th', { class: 'alert-col' }, 'alert'));
  const cells = new Map(rows.map((r) => {
    const td = el('td', { class: 'alert-cell' });
    r.append(td);
    return [Number(r.dataset.id), td];
  }));
  let byId;
  try { byId = await alertsById([...cells.keys()]); } catch (e) {
    // said once, in the column's head, rather than an empty column
    head.querySelector('.alert-col').append(el('div', { class: 'error', id: 'alerts-error' }, `not loaded: ${e.message}`));
    return;
  }
  for (const [id, td] of cells) fillQueueCell(td, id, byId.get(id));
}

// The row's own click and Enter open the snapshot, so the buttons keep
// their events to themselves.  A role that may not close alerts (ml) sees
// the state alone.
function fillQueueCell(td, id, a) {
  if (!canOperate()) {
    td.replaceChildren(statePill(a));
    td.title = `closing an alert ${OPERATE_NOTE}`;
    return;
  }
  const btn = ([d, label, title]) => el('button', {
    class: dispoClass(a, d), 'data-dispo': d, title: `${label}: ${title}`,
    onclick: async (ev) => {
      ev.stopPropagation();
      try {
        await dispose(id, d);
        const m = await alertsById([id]);
        fillQueueCell(td, id, m.get(id));
        refreshBanner();
      } catch (e) { td.append(el('span', { class: 'error' }, e.message)); }
    },
    onkeydown: (ev) => ev.stopPropagation(),
  }, initials(label));
  td.replaceChildren(statePill(a), ' ', ...DISPOSITIONS.map(btn));
}

// Snapshot view: a card with state, work order, outcome and the buttons.
export function alertCard(id) {
  const card = el('div', { class: 'card', id: 'alert-card' },
    el('h3', {}, 'Alert'), el('span', { class: 'muted' }, 'Loading…'));
  renderAlertCard(card, id);
  return card;
}

async function renderAlertCard(card, id, note) {
  let a;
  try { a = (await alertsById([id])).get(id); } catch (e) {
    card.replaceChildren(el('h3', {}, 'Alert'), el('p', { class: 'error' }, e.message));
    return;
  }
  const wo = el('input', {
    id: 'a-wo', type: 'text', maxlength: 100, placeholder: 'WO-…', value: (a && a.work_order) || '',
  });
  const outcome = el('input', { id: 'a-outcome', type: 'text', maxlength: 2000, value: (a && a.outcome) || '' });
  const status = el('div', { id: 'alert-status', class: 'muted' }, note || '');
  const extra = () => {
    const x = {};
    if (wo.value.trim()) x.work_order = wo.value.trim();
    if (outcome.value.trim()) x.outcome = outcome.value.trim();
    return x;
  };
  const buttons = DISPOSITIONS.map(([d, label, title]) => el('button', {
    class: dispoClass(a, d), 'data-dispo': d, title,
    onclick: async () => {
      try {
        await dispose(id, d, extra);
        renderAlertCard(card, id, `recorded: ${label.toLowerCase()}`);
        refreshBanner();
      } catch (e) { status.textContent = e.message; status.className = 'error'; }
    },
  }, label));
  // replaceChildren, unlike el(), would show a null child as the text "null".
  const ackedNote = a && a.acknowledged_at
    ? [el('div', { class: 'hint' }, `acknowledged ${fmtTime(a.acknowledged_at)}`)]
    : [];
  if (!canOperate()) {
    // read only: what was recorded, and who may record more
    const recorded = [['Work order', a && a.work_order], ['Outcome', a && a.outcome]]
      .filter(([, v]) => v).map(([k, v]) => el('div', {}, `${k}: ${v}`));
    card.replaceChildren(el('h3', {}, 'Alert ', statePill(a)), ...ackedNote, ...recorded,
      el('p', { class: 'hint', id: 'alert-read-only' }, `Acknowledging an alert and recording its disposition ${OPERATE_NOTE}.`));
    return;
  }
  card.replaceChildren(el('h3', {}, 'Alert ', statePill(a)), ...ackedNote,
    el('p', { class: 'dispos' }, ackButton(card, id, a, status), ' ', ...buttons),
    el('label', {}, 'Work order', wo), el('label', {}, 'Outcome', outcome), status,
    el('div', { class: 'hint' }, CARD_HINT));
}

function ackButton(card, id, a, status) {
  const acked = !!(a && a.acknowledged_at);
  return el('button', {
    id: 'a-ack', disabled: acked,
    onclick: async () => {
      try {
        await api('POST', `/api/v1/alerts/${id}/ack`);
        renderAlertCard(card, id, 'acknowledged');
      } catch (e) { status.textContent = e.message; status.className = 'error'; }
    },
  }, acked ? 'Acknowledged' : 'Acknowledge');
}
