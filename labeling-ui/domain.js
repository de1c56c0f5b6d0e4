// domain.js - the pages of issue 6 in the labeling UI: rules (labeling
// functions with their coverage, overlap, conflict and accuracy; an editor
// that validates as you type and points at the parse error), alert
// dispositions in one click (queue rows and the snapshot view), and the
// operational metrics page (uPlot charts against the ISA-18.2 lines, bad
// actors, definitions next to the numbers).  A falling follow-through shows
// as a red banner on every page, not only on the metrics page, because the
// point is that nobody can miss it.  app.js calls init() once and the
// show*/decorate* functions from its router and views.
import uPlot from './uPlot.esm.js';

let api, el, fmtTime, app;

let timer = null;
export function init(ctx) {
  ({ api, el, fmtTime, app } = ctx);
  refreshBanner();
  if (!timer) timer = setInterval(refreshBanner, 5 * 60 * 1000);   // start() runs again after a login
}

const pct = (v) => (v === null || v === undefined ? '—' : `${(100 * v).toFixed(1)} %`);
const crumbs = (t) => { document.getElementById('crumbs').textContent = t; };

// ---- follow-through banner ---------------------------------------------------
async function refreshBanner() {
  let m;
  try { m = await api('GET', '/api/v1/metrics/operational?bucket=week'); } catch (e) { return; }
  let b = document.getElementById('ft-banner');
  if (!m.warning) { if (b) b.remove(); return; }
  if (!b) {
    b = el('div', { id: 'ft-banner', class: 'ft-banner', role: 'alert' });
    document.getElementById('top').after(b);
  }
  b.replaceChildren(el('strong', {}, 'Alert follow-through is falling: '), m.warning, ' ',
    el('a', { href: '#/ops' }, 'see the operational metrics'));
}

// ---- alert dispositions ------------------------------------------------------
const DISPOSITIONS = [
  ['action_taken', 'Action taken', 'the alert led to maintenance action'],
  ['no_fault_found', 'No fault found', 'investigated, nothing wrong (labels the snapshot normal)'],
  ['not_actionable', 'Not actionable', 'could not or need not act on it'],
  ['duplicate', 'Duplicate', 'the same event as an earlier alert'],
];

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

// One click records the disposition; extra() may add work order and outcome.
async function dispose(id, disposition, extra) {
  return api('POST', `/api/v1/alerts/${id}/disposition`, { disposition, ...(extra ? extra() : {}) });
}

// Queue: one more column with the alert's state and the four dispositions.
// The row's own click opens the snapshot, so the buttons stop the event.
export async function decorateQueue(table) {
  const rows = [...table.querySelectorAll('tbody tr[data-id]')];
  const head = table.querySelector('thead tr');
  if (!head || head.querySelector('.alert-col')) return;
  head.append(el('th', { class: 'alert-col' }, 'alert'));
  const cells = new Map(rows.map((r) => { const td = el('td', { class: 'alert-cell' }); r.append(td); return [Number(r.dataset.id), td]; }));
  let byId;
  try { byId = await alertsById([...cells.keys()]); } catch (e) { return; }
  for (const [id, td] of cells) fillQueueCell(td, id, byId.get(id));
}

function fillQueueCell(td, id, a) {
  const btn = ([d, label, title]) => el('button', {
    class: 'dispo' + (a && a.disposition === d ? ' sel' : ''), 'data-dispo': d, title: `${label}: ${title}`,
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
  }, label.split(' ').map((w) => w[0]).join('').toUpperCase());
  td.replaceChildren(statePill(a), ' ', ...DISPOSITIONS.map(btn));
}

// Snapshot view: a card with state, work order, outcome and the buttons.
export function alertCard(id) {
  const card = el('div', { class: 'card', id: 'alert-card' }, el('h3', {}, 'Alert'), el('span', { class: 'muted' }, 'Loading…'));
  renderAlertCard(card, id);
  return card;
}

async function renderAlertCard(card, id, note) {
  let a;
  try { a = (await alertsById([id])).get(id); } catch (e) { card.replaceChildren(el('h3', {}, 'Alert'), el('p', { class: 'error' }, e.message)); return; }
  const wo = el('input', { id: 'a-wo', type: 'text', maxlength: 100, placeholder: 'WO-…', value: (a && a.work_order) || '' });
  const outcome = el('input', { id: 'a-outcome', type: 'text', maxlength: 2000, value: (a && a.outcome) || '' });
  const status = el('div', { id: 'alert-status', class: 'muted' }, note || '');
  const extra = () => {
    const x = {};
    if (wo.value.trim()) x.work_order = wo.value.trim();
    if (outcome.value.trim()) x.outcome = outcome.value.trim();
    return x;
  };
  const buttons = DISPOSITIONS.map(([d, label, title]) => el('button', {
    class: 'dispo' + (a && a.disposition === d ? ' sel' : ''), 'data-dispo': d, title,
    onclick: async () => {
      try {
        await dispose(id, d, extra);
        renderAlertCard(card, id, `recorded: ${label.toLowerCase()}`);
        refreshBanner();
      } catch (e) { status.textContent = e.message; status.className = 'error'; }
    },
  }, label));
  const ack = el('button', {
    id: 'a-ack', disabled: !!(a && a.acknowledged_at),
    onclick: async () => {
      try { await api('POST', `/api/v1/alerts/${id}/ack`); renderAlertCard(card, id, 'acknowledged'); } catch (e) { status.textContent = e.message; }
    },
  }, a && a.acknowledged_at ? 'Acknowledged' : 'Acknowledge');
  card.replaceChildren(el('h3', {}, 'Alert ', statePill(a)),
    a && a.acknowledged_at ? el('div', { class: 'hint' }, `acknowledged ${fmtTime(a.acknowledged_at)}`) : null,
    el('p', { class: 'dispos' }, ack, ' ', ...buttons),
    el('label', {}, 'Work order', wo), el('label', {}, 'Outcome', outcome), status,
    el('div', { class: 'hint' }, 'Work order and outcome go with the disposition button you press. An alert with no disposition after the acknowledgement window counts as ignored.'));
}

// ---- rules -------------------------------------------------------------------
export async function showRules(note) {
  crumbs('Rules');
  let list, classes;
  try { [list, classes] = await Promise.all([api('GET', '/api/v1/rules'), api('GET', '/api/v1/classes')]); } catch (e) {
    app.replaceChildren(el('p', { class: 'error' }, e.message)); return;
  }
  const editor = ruleEditor(null, classes.items);
  const rows = list.items.map((r) => el('tr', { 'data-rule': r.id, 'data-name': r.name },
    el('td', {}, r.name), el('td', {}, el('code', {}, r.expr)), el('td', {}, r.class), el('td', {}, String(r.weight)),
    el('td', {}, r.enabled ? 'on' : el('span', { class: 'muted' }, 'off')),
    el('td', { class: 'num' }, String(r.hits ?? '—')),
    el('td', { class: 'num cov' }, pct(r.coverage)), el('td', { class: 'num' }, pct(r.overlap)),
    el('td', { class: 'num' + (r.conflict > 0 ? ' warn' : '') }, pct(r.conflict)),
    el('td', { class: 'num acc' }, r.accuracy === null ? el('span', { class: 'muted', title: 'none of its hits has a human label' }, 'n/a') : pct(r.accuracy)),
    el('td', { class: 'num' }, String(r.labeled_hits ?? '—')),
    el('td', {}, el('button', { onclick: () => editor.load(r) }, 'Edit'), ' ',
      el('button', { onclick: async () => { await api('PATCH', `/api/v1/rules/${r.id}`, { enabled: !r.enabled }); showRules(`${r.name} ${r.enabled ? 'disabled' : 'enabled'}`); } }, r.enabled ? 'Disable' : 'Enable'))));
  const table = el('table', { id: 'rules' },
    el('thead', {}, el('tr', {}, ['name', 'rule', 'class', 'weight', 'enabled', 'hits', 'coverage', 'overlap', 'conflict', 'accuracy', 'labeled hits', ''].map((h) => el('th', {}, h)))),
    el('tbody', {}, rows.length ? rows : [el('tr', {}, el('td', { colspan: 12, class: 'muted' }, 'no rules yet: write one below'))]));
  const defs = el('dl', { class: 'card defs' },
    el('dt', {}, 'coverage'), el('dd', {}, 'share of all stored snapshots the rule fires on'),
    el('dt', {}, 'overlap'), el('dd', {}, 'share of all snapshots where it fires together with another enabled rule'),
    el('dt', {}, 'conflict'), el('dd', {}, 'share of all snapshots where another enabled rule fires for a different class'),
    el('dt', {}, 'accuracy'), el('dd', {}, 'among its hits with human labels, the share whose human classes include the rule\'s class (n/a: no labeled hit)'),
    el('dt', {}, 'weak labels'), el('dd', {}, 'one rule firing gives a label marked "rule", several a weighted vote marked "vote"; a disposition ranks above both; human labels are never replaced'));
  app.replaceChildren(el('h2', {}, 'Rules (labeling functions)'), el('p', { class: 'muted', id: 'rule-note' }, note || ''), table, editor.node, defs);
}

function ruleEditor(rule, classes) {
  let editing = null;
  const name = el('input', { id: 'rule-name', type: 'text', maxlength: 100, required: true });
  const expr = el('textarea', { id: 'rule-expr', rows: 3, maxlength: 1024, spellcheck: 'false',
    placeholder: 'kurtosis(ch("accel_x")) > 6 and band_energy(ch("accel_x"), 300, 900) > 0.4 => bearing_outer_race' });
  const weight = el('input', { id: 'rule-weight', type: 'number', min: 0.1, max: 100, step: 0.1, value: 1 });
  const enabled = el('input', { id: 'rule-enabled', type: 'checkbox', checked: true });
  const result = el('div', { id: 'rule-check', class: 'rule-check' });
  const title = el('h3', {}, 'New rule');
  let timer = null, seq = 0;

  // Show the expression with a caret under the error position.
  const showError = (text, pos, msg) => {
    const p = Math.max(0, Math.min(pos, text.length));
    result.className = 'rule-check bad';
    result.replaceChildren(el('div', { class: 'error', id: 'rule-error' }, msg),
      el('pre', { class: 'expr-pos' }, text.slice(0, p), el('mark', { id: 'rule-error-at' }, text.slice(p, p + 1) || ' '), text.slice(p + 1)),
      el('div', { class: 'hint' }, `position ${p} (0-based)`));
  };
  const validate = async () => {
    const my = ++seq, text = expr.value;
    if (!text.trim()) { result.replaceChildren(); return false; }
    let v;
    try { v = await api('POST', '/api/v1/rules/validate', { expr: text }); } catch (e) { result.textContent = e.message; return false; }
    if (my !== seq) return false;
    if (!v.valid) { showError(text, v.error.position, v.error.message); return false; }
    result.className = 'rule-check ok';
    result.replaceChildren(el('span', { id: 'rule-valid' }, `valid: labels ${v.class}`), v.channels.length ? ` · channels ${v.channels.join(', ')}` : '');
    return true;
  };
  expr.addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(validate, 250); });
  const save = async (ev) => {
    ev.preventDefault();
    if (!(await validate())) return;
    const body = { name: name.value.trim(), expr: expr.value, weight: Number(weight.value), enabled: enabled.checked };
    try {
      const r = editing ? await api('PATCH', `/api/v1/rules/${editing.id}`, body) : await api('POST', '/api/v1/rules', body);
      showRules(`saved rule #${r.id} (${body.name})`);
    } catch (e) {
      const m = /position (\d+)/.exec(e.message);
      if (m) showError(expr.value, Number(m[1]), e.message);
      else { result.className = 'rule-check bad'; result.replaceChildren(el('div', { class: 'error', id: 'rule-error' }, e.message)); }
    }
  };
  const form = el('form', { class: 'card rule-form', id: 'rule-form', onsubmit: save },
    title,
    el('label', {}, 'Name', name),
    el('label', {}, 'Rule', expr),
    el('div', { class: 'filters' }, el('label', {}, 'Weight', weight), el('label', {}, 'Enabled', enabled),
      el('button', { type: 'button', id: 'rule-validate', onclick: validate }, 'Validate'),
      el('button', { class: 'primary', type: 'submit', id: 'rule-save' }, 'Save'),
      el('button', { type: 'button', onclick: () => load(null) }, 'New')),
    result,
    el('details', { class: 'hint' }, el('summary', {}, 'Language'),
      el('p', {}, 'condition => class. Channel features: rms peak crest kurtosis mean std dominant_freq of ch("name"); band_energy(ch("name"), lo_hz, hi_hz) is the fraction of the channel\'s power in the band (0..1). abs min max; + - * /; < <= > >= == !=; and or not. Metadata: equipment_type site device detector (strings), score sample_rate. A rule that cannot be decided (missing channel, division by zero) abstains. At most 1024 bytes, 256 nodes, 32 levels.'),
      el('p', {}, 'Classes: ', classes.map((c) => c.name + (c.equipment_type ? ` (${c.equipment_type})` : '')).join(', '))));
  const load = (r) => {
    editing = r;
    title.textContent = r ? `Edit rule #${r.id}` : 'New rule';
    name.value = r ? r.name : '';
    expr.value = r ? r.expr : '';
    weight.value = r ? r.weight : 1;
    enabled.checked = r ? r.enabled : true;
    result.replaceChildren();
    if (r) { validate(); form.scrollIntoView({ behavior: 'smooth' }); }
  };
  load(rule);
  return { node: form, load };
}

// ---- operational metrics -----------------------------------------------------
const OPS = { bucket: 'week', from: '', to: '' };
let opsPlots = [];

export async function showOps() {
  crumbs('Operations');
  opsPlots.forEach((p) => p.destroy());
  opsPlots = [];
  const p = new URLSearchParams({ bucket: OPS.bucket });
  if (OPS.from) p.set('from', OPS.from);
  if (OPS.to) p.set('to', OPS.to);
  let m;
  try { m = await api('GET', '/api/v1/metrics/operational?' + p); } catch (e) { app.replaceChildren(el('p', { class: 'error' }, e.message)); return; }
  refreshBanner();
  const controls = el('div', { class: 'card filters' },
    el('label', {}, 'Bucket', el('select', { id: 'ops-bucket', onchange: (ev) => { OPS.bucket = ev.target.value; showOps(); } },
      ['week', 'month'].map((b) => el('option', { value: b, selected: OPS.bucket === b }, b)))),
    el('label', {}, 'From', el('input', { type: 'date', value: OPS.from, onchange: (ev) => { OPS.from = ev.target.value; showOps(); } })),
    el('label', {}, 'To', el('input', { type: 'date', value: OPS.to, onchange: (ev) => { OPS.to = ev.target.value; showOps(); } })),
    el('span', { class: 'muted' }, `acknowledgement window ${(m.ack_window_s / 3600).toFixed(1)} h`));
  const B = m.buckets;
  const last = B.filter((b) => b.follow_through !== null).slice(-1)[0];
  const warn = m.warning
    ? el('div', { class: 'ft-warning', id: 'ft-warning', role: 'alert' },
      el('div', { class: 'big' }, `Follow-through ${last ? pct(last.follow_through) : ''}`), el('div', {}, m.warning),
      el('div', {}, 'Operators are no longer acting on alerts. Look at the bad actors and the false alarms below before the next alert is missed.'))
    : el('div', { class: 'ft-ok', id: 'ft-ok' }, `Follow-through ${last ? pct(last.follow_through) : '—'}: no falling trend.`);
  const xs = B.map((b) => Date.parse(b.start) / 1000);
  const W = Math.max(420, Math.min(620, Math.floor((app.clientWidth || 1240) / 2) - 40));
  const chartCard = (id, title, def) => { const box = el('div', { class: 'chart', id }); return [el('div', { class: 'card chart-card' }, el('h3', {}, title), box, el('p', { class: 'def' }, def)), box]; };
  const [c1, b1] = chartCard('chart-ft', `Follow-through and operational precision per ${m.bucket}`,
    'Follow-through = alerts investigated (action taken or no fault found) / (alerts − duplicates − pending). Operational precision = action taken / alerts with a disposition. An alert with no disposition after the acknowledgement window is ignored and counts against follow-through.');
  const [c2, b2] = chartCard('chart-rate', 'Alerts per operator-hour',
    'Alerts / hours in the bucket / sites with alerts (one operator per site). ISA-18.2: about 6 per hour is acceptable (amber line), 12 at most (red line).');
  const [c3, b3] = chartCard('chart-flood', 'Most alerts at one site in 10 minutes',
    'The largest number of alerts at one site within any 10 minutes of the bucket. ISA-18.2: no more than 10 (red line); above is an alarm flood.');
  const [c4, b4] = chartCard('chart-ack', 'Median time to acknowledge, and chattering',
    'Median minutes from trigger to acknowledgement (acknowledged alerts only). Chattering: alerts that are the third or later from one device within 60 s.');
  const refLines = (lines) => (u) => {
    const ctx = u.ctx;
    ctx.save();
    for (const [v, color] of lines) {
      const y = u.valToPos(v, 'y', true);
      if (y < u.bbox.top || y > u.bbox.top + u.bbox.height) continue;
      ctx.strokeStyle = color; ctx.lineWidth = 2 * devicePixelRatio; ctx.setLineDash([6, 4]);
      ctx.beginPath(); ctx.moveTo(u.bbox.left, y); ctx.lineTo(u.bbox.left + u.bbox.width, y); ctx.stroke();
      ctx.fillStyle = color; ctx.font = `${11 * devicePixelRatio}px sans-serif`;
      ctx.fillText(String(v), u.bbox.left + 4, y - 4);
    }
    ctx.restore();
  };
  const nul = (v) => (v === null ? null : v);
  const plot = (box, series, data, opts = {}) => {
    const u = new uPlot({
      width: W, height: 220, legend: { show: true },
      scales: { x: { time: true }, y: opts.y || {} },
      axes: [{}, { size: 55, values: opts.yfmt }],
      series: [{}, ...series], hooks: opts.hooks || {},
    }, [xs, ...data], box);
    opsPlots.push(u);
    return u;
  };
  const charts = el('div', { class: 'charts' }, c1, c2, c3, c4);
  const actors = (rows, key, share, what) => el('div', { class: 'card' },
    el('h3', {}, `Bad actors: top ${what}`), el('p', { class: 'def' }, `The 10 ${what} with the most alerts in the range; together ${pct(share)} of all alerts.`),
    el('table', { class: 'small', id: `actors-${what}` }, el('thead', {}, el('tr', {}, el('th', {}, key), el('th', {}, 'alerts'), el('th', {}, 'share'))),
      el('tbody', {}, rows.map((r) => el('tr', {}, el('td', {}, r[key]), el('td', { class: 'num' }, String(r.alerts)), el('td', { class: 'num' }, pct(r.share)))))));
  const numbers = el('table', { class: 'small', id: 'ops-table' },
    el('thead', {}, el('tr', {}, ['from', 'alerts', 'follow-through', 'precision', 'per op-hour', 'max /10 min', 'median ack', 'chattering', 'action', 'no fault', 'not actionable', 'duplicate', 'ignored', 'pending'].map((h) => el('th', {}, h)))),
    el('tbody', {}, B.map((b) => el('tr', {},
      el('td', {}, b.start.slice(0, 10)), el('td', { class: 'num' }, String(b.alerts)),
      el('td', { class: 'num' + (b.follow_through !== null && b.follow_through < 0.7 ? ' bad' : '') }, pct(b.follow_through)),
      el('td', { class: 'num' }, pct(b.operational_precision)),
      el('td', { class: 'num' + (b.alerts_per_operator_hour > 12 ? ' bad' : b.alerts_per_operator_hour > 6 ? ' warn' : '') }, b.alerts_per_operator_hour === null ? '—' : b.alerts_per_operator_hour.toFixed(2)),
      el('td', { class: 'num' + (b.max_alerts_per_10min > 10 ? ' bad' : '') }, String(b.max_alerts_per_10min)),
      el('td', { class: 'num' }, b.median_time_to_ack_s === null ? '—' : `${(b.median_time_to_ack_s / 60).toFixed(1)} min`),
      el('td', { class: 'num' }, String(b.chattering)),
      ...['action_taken', 'no_fault_found', 'not_actionable', 'duplicate', 'ignored', 'pending'].map((k) => el('td', { class: 'num' }, String(b.counts[k])))))));
  app.replaceChildren(el('h2', {}, 'Operational metrics'), warn, controls, charts,
    el('div', { class: 'charts' }, actors(m.bad_actors.devices, 'device_id', m.bad_actors.devices_top10_share, 'devices'),
      actors(m.bad_actors.rules, 'rule', m.bad_actors.rules_top10_share, 'rules')),
    el('div', { class: 'card' }, el('h3', {}, `Per ${m.bucket}`), numbers));
  const pctAxis = (u, vals) => vals.map((v) => `${Math.round(v * 100)} %`);
  plot(b1, [{ label: 'follow-through', stroke: '#dc2626', width: 3, points: { show: true } },
    { label: 'operational precision', stroke: '#2563eb', width: 2 }],
  [B.map((b) => nul(b.follow_through)), B.map((b) => nul(b.operational_precision))], { y: { range: [0, 1] }, yfmt: pctAxis });
  plot(b2, [{ label: 'alerts / operator-hour', stroke: '#7c3aed', width: 2, points: { show: true } }],
    [B.map((b) => nul(b.alerts_per_operator_hour))],
    { y: { range: (u, lo, hi) => [0, Math.max(13, hi * 1.1)] }, hooks: { draw: [refLines([[6, '#d97706'], [12, '#dc2626']])] } });
  plot(b3, [{ label: 'max alerts in 10 min', stroke: '#0891b2', width: 2, points: { show: true } }],
    [B.map((b) => b.max_alerts_per_10min)],
    { y: { range: (u, lo, hi) => [0, Math.max(11, hi * 1.1)] }, hooks: { draw: [refLines([[10, '#dc2626']])] } });
  plot(b4, [{ label: 'median ack (min)', stroke: '#059669', width: 2, points: { show: true } },
    { label: 'chattering', stroke: '#db2777', width: 1, dash: [4, 3] }],
  [B.map((b) => (b.median_time_to_ack_s === null ? null : b.median_time_to_ack_s / 60)), B.map((b) => b.chattering)], { y: { range: (u, lo, hi) => [0, Math.max(1, hi * 1.1)] } });
}
