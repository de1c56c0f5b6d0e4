// page-ops.js - the operational metrics: follow-through and precision,
// alert rates against the ISA-18.2 lines, floods, time to acknowledge,
// chattering, bad actors, with each number's definition beside it.
import uPlot from './uPlot.esm.js';
import { api } from './http.js';
import { el, crumbs, showPage, showError, mainBox } from './dom.js';
import { pct, fmtDay } from './format.js';
import { refreshBanner } from './banner.js';
import { demoParam } from './demo.js';

const OPS = { bucket: 'week', from: '', to: '' };
let opsPlots = [];

const DISPOSITION_COLUMNS = ['action_taken', 'no_fault_found', 'not_actionable', 'duplicate', 'ignored', 'pending'];
const TABLE_HEAD = ['from', 'alerts', 'follow-through', 'precision', 'per op-hour', 'max /10 min', 'median ack',
  'chattering', 'action', 'no fault', 'not actionable', 'duplicate', 'ignored', 'pending'];
// ISA-18.2: alerts per operator-hour acceptable / at most; alerts in 10 min.
const RATE_OK = 6, RATE_MAX = 12, FLOOD_MAX = 10;
// Follow-through below this is shown in red in the table.
const FOLLOW_THROUGH_LOW = 0.7;
const AMBER = '#d97706', RED = '#dc2626';

const CHARTS = {
  ft: ['chart-ft', (m) => `Follow-through and operational precision per ${m.bucket}`,
    'Follow-through = alerts investigated (action taken or no fault found) / (alerts − duplicates − pending). ' +
    'Operational precision = action taken / alerts with a disposition. An alert with no disposition after the ' +
    'acknowledgement window is ignored and counts against follow-through.'],
  rate: ['chart-rate', () => 'Alerts per operator-hour',
    'Alerts / hours in the bucket / sites with alerts (one operator per site). ' +
    'ISA-18.2: about 6 per hour is acceptable (amber line), 12 at most (red line).'],
  flood: ['chart-flood', () => 'Most alerts at one site in 10 minutes',
    'The largest number of alerts at one site within any 10 minutes of the bucket. ' +
    'ISA-18.2: no more than 10 (red line); above is an alarm flood.'],
  ack: ['chart-ack', () => 'Median time to acknowledge, and chattering',
    'Median minutes from trigger to acknowledgement (acknowledged alerts only). ' +
    'Chattering: alerts that are the third or later from one device within 60 s.'],
};

function controls(m) {
  const set = (key) => (ev) => { OPS[key] = ev.target.value; showOps(); };
  return el('div', { class: 'card filters' },
    el('label', {}, 'Bucket', el('select', { id: 'ops-bucket', onchange: set('bucket') },
      ['week', 'month'].map((b) => el('option', { value: b, selected: OPS.bucket === b }, b)))),
    el('label', {}, 'From', el('input', { type: 'date', value: OPS.from, onchange: set('from') })),
    el('label', {}, 'To', el('input', { type: 'date', value: OPS.to, onchange: set('to') })),
    el('span', { class: 'muted' }, `acknowledgement window ${(m.ack_window_s / 3600).toFixed(1)} h`));
}

// The newest follow-through, loud when the server sees it falling.
function followThrough(m) {
  const last = m.buckets.filter((b) => b.follow_through !== null).slice(-1)[0];
  if (!m.warning) {
    // With no bucket to measure, "Follow-through —: no falling trend" said nothing.
    return el('div', { class: 'ft-ok', id: 'ft-ok' }, last ? `Follow-through ${pct(last.follow_through)}: no falling trend.`
      : 'Follow-through: nothing to measure yet: every alert in the range is pending or a duplicate, or there is none.');
  }
  return el('div', { class: 'ft-warning', id: 'ft-warning', role: 'alert' },
    el('div', { class: 'big' }, `Follow-through ${last ? pct(last.follow_through) : ''}`), el('div', {}, m.warning),
    el('div', {}, 'Operators are no longer acting on alerts. ' +
      'Look at the bad actors and the false alarms below before the next alert is missed.'));
}

// [card, the box its chart goes in]
function chartCard(m, [id, title, def]) {
  const box = el('div', { class: 'chart', id });
  return [el('div', { class: 'card chart-card' }, el('h3', {}, title(m)), box, el('p', { class: 'def' }, def)), box];
}

// A draw hook: dashed horizontal lines [value, colour] with their values.
const refLines = (lines) => (u) => {
  const ctx = u.ctx, dpr = devicePixelRatio;
  ctx.save();
  for (const [v, color] of lines) {
    const y = u.valToPos(v, 'y', true);
    if (y < u.bbox.top || y > u.bbox.top + u.bbox.height) continue;
    ctx.strokeStyle = color; ctx.lineWidth = 2 * dpr; ctx.setLineDash([6, 4]);
    ctx.beginPath(); ctx.moveTo(u.bbox.left, y); ctx.lineTo(u.bbox.left + u.bbox.width, y); ctx.stroke();
    ctx.fillStyle = color; ctx.font = `${11 * dpr}px sans-serif`;
    ctx.fillText(String(v), u.bbox.left + 4, y - 4);
  }
  ctx.restore();
};

// rows' key names each row (device_id, rule); head is its column's name.
function actorsCard(rows, key, head, share, what) {
  return el('div', { class: 'card' },
    el('h3', {}, `Bad actors: top ${what}`),
    el('p', { class: 'def' },
      `The 10 ${what} with the most alerts in the range; together ${pct(share)} of all alerts.`),
    el('table', { class: 'small', id: `actors-${what}` },
      el('thead', {}, el('tr', {}, el('th', {}, head), el('th', {}, 'alerts'), el('th', {}, 'share'))),
      el('tbody', {}, rows.map((r) => el('tr', {}, el('td', {}, r[key]),
        el('td', { class: 'num' }, String(r.alerts)), el('td', { class: 'num' }, pct(r.share)))))));
}

function rateClass(v) {
  return v > RATE_MAX ? ' bad' : v > RATE_OK ? ' warn' : '';
}

function bucketRow(b) {
  const num = (extra, text) => el('td', { class: 'num' + extra }, text);
  const ftLow = b.follow_through !== null && b.follow_through < FOLLOW_THROUGH_LOW;
  const rate = b.alerts_per_operator_hour;
  const ack = b.median_time_to_ack_s;
  return el('tr', {},
    el('td', {}, fmtDay(b.start)), num('', String(b.alerts)),
    num(ftLow ? ' bad' : '', pct(b.follow_through)),
    num('', pct(b.operational_precision)),
    num(rateClass(rate), rate === null ? '—' : rate.toFixed(2)),
    num(b.max_alerts_per_10min > FLOOD_MAX ? ' bad' : '', String(b.max_alerts_per_10min)),
    num('', ack === null ? '—' : `${(ack / 60).toFixed(1)} min`),
    num('', String(b.chattering)),
    ...DISPOSITION_COLUMNS.map((k) => num('', String(b.counts[k]))));
}

function bucketTable(buckets) {
  return el('table', { class: 'small', id: 'ops-table' },
    el('thead', {}, el('tr', {}, TABLE_HEAD.map((h) => el('th', {}, h)))),
    el('tbody', {}, buckets.map(bucketRow)));
}

// y ranges from 0 to at least floor, so the reference lines always show.
const fromZero = (floor) => (u, lo, hi) => [0, Math.max(floor, hi * 1.1)];
const pctAxis = (u, vals) => vals.map((v) => `${Math.round(v * 100)} %`);

function drawCharts(boxes, buckets, width) {
  const xs = buckets.map((b) => Date.parse(b.start) / 1000);
  const col = (f) => buckets.map(f);
  const plot = (box, series, data, opts = {}) => {
    opsPlots.push(new uPlot({
      width, height: 220, legend: { show: true },
      scales: { x: { time: true }, y: opts.y || {} },
      axes: [{}, { size: 55, values: opts.yfmt }],
      series: [{}, ...series], hooks: opts.hooks || {},
    }, [xs, ...data], box));
  };
  plot(boxes.ft, [{ label: 'follow-through', stroke: RED, width: 3, points: { show: true } },
    { label: 'operational precision', stroke: '#2563eb', width: 2 }],
  [col((b) => b.follow_through), col((b) => b.operational_precision)], { y: { range: [0, 1] }, yfmt: pctAxis });
  plot(boxes.rate, [{ label: 'alerts / operator-hour', stroke: '#7c3aed', width: 2, points: { show: true } }],
    [col((b) => b.alerts_per_operator_hour)],
    { y: { range: fromZero(RATE_MAX + 1) }, hooks: { draw: [refLines([[RATE_OK, AMBER], [RATE_MAX, RED]])] } });
  plot(boxes.flood, [{ label: 'max alerts in 10 min', stroke: '#0891b2', width: 2, points: { show: true } }],
    [col((b) => b.max_alerts_per_10min)],
    { y: { range: fromZero(FLOOD_MAX + 1) }, hooks: { draw: [refLines([[FLOOD_MAX, RED]])] } });
  plot(boxes.ack, [{ label: 'median ack (min)', stroke: '#059669', width: 2, points: { show: true } },
    { label: 'chattering', stroke: '#db2777', width: 1, dash: [4, 3] }],
  [col((b) => (b.median_time_to_ack_s === null ? null : b.median_time_to_ack_s / 60)), col((b) => b.chattering)],
  { y: { range: fromZero(1) } });
}

export async function showOps() {
  crumbs('Operations');
  opsPlots.forEach((p) => p.destroy());
  opsPlots = [];
  const p = new URLSearchParams({ bucket: OPS.bucket, demo: demoParam() });
  if (OPS.from) p.set('from', OPS.from);
  if (OPS.to) p.set('to', OPS.to);
  let m;
  try { m = await api('GET', '/api/v1/metrics/operational?' + p); } catch (e) { showError(e.message); return; }
  refreshBanner();
  const cards = {}, boxes = {};
  for (const [k, c] of Object.entries(CHARTS)) [cards[k], boxes[k]] = chartCard(m, c);
  const width = Math.max(420, Math.min(620, Math.floor((mainBox().clientWidth || 1240) / 2) - 40));
  const actors = el('div', { class: 'charts' },
    actorsCard(m.bad_actors.devices, 'device_id', 'device', m.bad_actors.devices_top10_share, 'devices'),
    actorsCard(m.bad_actors.rules, 'rule', 'rule', m.bad_actors.rules_top10_share, 'rules'));
  showPage(el('h2', {}, 'Operational metrics'), followThrough(m), controls(m),
    el('div', { class: 'charts' }, Object.values(cards)), actors,
    el('div', { class: 'card' }, el('h3', {}, `Per ${m.bucket}`), bucketTable(m.buckets)));
  drawCharts(boxes, m.buckets, width);
}
