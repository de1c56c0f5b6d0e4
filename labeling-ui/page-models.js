// page-models.js - the on-device models: what each was trained from, how
// good it is with the number of windows behind each figure (a precision of
// 1.0 over three windows says little), the alert load it would bring, and
// where it is deployed, and the evaluation every training run stores: the
// learner against k-NN and centroid baselines on the same windows and folds,
// accuracy and per-class recall with 95 % intervals and their support, and
// each figure the labels cannot support shown as refused with the reason;
// what transfer from related equipment brought (the learner with and
// without the borrowed windows, and where they came from), and the
// features the model reads with what it takes on the device.
// GET /models, GET /models/{id}, GET /models/{id}/deployments.  '#/models/N'
// opens model N; while a model trains the list is asked again until it is
// done, so a model trained from the datasets page is followed here.
// How each deployment runs per device, promotion and rollbacks are on the
// model's deployments page (page-deployments.js), linked from its detail.
import { api } from './http.js';
import { el, crumbs, showPage, showError, place } from './dom.js';
import { fmtTime, dash, withSupport } from './format.js';
import { matchRoute, modelHash } from './router.js';
import { sessionEpoch, stillCurrent } from './session.js';
import { followUntilMoved } from './follow.js';

const FOLLOW_MS = 2000;
const unfinished = (m) => m.status === 'queued' || m.status === 'training';
let shown = { seq: 0, open: null };     // the latest showModels and the model it opened

// "71.0 % [62.1, 78.6]" with its support, or "refused" (the reason is listed
// below the tables, and in the cell's title).
function figure(f, cls) {
  if (!f) return el('td', { class: cls }, '—');
  if (f.value === null || f.value === undefined) {
    return el('td', { class: `${cls} refused`, title: f.reason || '' }, el('span', { class: 'pill todo' }, 'refused'));
  }
  const p = (v) => (100 * v).toFixed(1);
  return el('td', { class: cls, title: `${f.hits} of ${f.n}` },
    `${p(f.value)} % [${p(f.lo)}, ${p(f.hi)}]`, el('div', { class: 'hint' }, `n = ${f.n}`));
}

// Every learner the run evaluated: the model's own first, then the baselines.
function learners(ev) {
  return [ev.fewshot, ...(ev.baselines || [])].filter(Boolean);
}

// Why each refused figure is refused, one line per learner and figure.
function refusals(ev) {
  const out = [];
  for (const r of learners(ev)) {
    const who = `${r.method} (${r.features} features)`;
    if (r.reason) out.push(`${who}: ${r.reason}`);
    for (const [name, f] of [['accuracy', r.accuracy], ['false alarms', r.false_alarm], ['detection', r.detection]]) {
      if (f && (f.value === null || f.value === undefined) && f.reason) out.push(`${who}, ${name}: ${f.reason}`);
    }
    for (const f of r.recall || []) {
      if (f && (f.value === null || f.value === undefined) && f.reason) out.push(`${who}, recall of ${f.class}: ${f.reason}`);
    }
  }
  return out;
}

const signedPoints = (d) => `${d >= 0 ? '+' : '−'}${Math.abs(100 * d).toFixed(1)} points`;

// Transfer from related equipment: on or off, the types looked at (used,
// or why not), and the learner without the borrowed windows beside the
// model, on the same target windows and folds.
function transferView(mt, ev) {
  const t = mt.transfer;
  if (!t) return null;
  const box = el('div', { id: 'eval-transfer' }, el('h4', {}, 'Transfer from related equipment'));
  if (!t.enabled) {
    box.append(el('p', { class: 'muted' }, `Off: ${dash(t.reason)}.`));
    return box;
  }
  const types = t.types || [];
  const used = types.filter((x) => x.used);
  box.append(el('p', { class: 'hint', id: 'eval-transfer-summary' },
    `${t.windows} windows from ${t.types_used} related type${t.types_used === 1 ? '' : 's'} ` +
    `(${t.labeled_windows} labeled with a shared class, taught as weak labels of weight ${t.weight}; ` +
    'their normal windows unlabeled, standardising their own domain). Never tested: the figures are about this version’s machines.' +
    (t.reason ? ` ${t.reason}.` : '')));
  if (types.length) {
    box.append(el('table', { id: 'eval-transfer-types' },
      el('thead', {}, el('tr', {}, ['related type', 'shared classes', 'windows', 'labeled', 'used'].map((h) => el('th', {}, h)))),
      el('tbody', {}, types.map((x) => el('tr', { 'data-type': x.equipment_type },
        el('td', {}, x.equipment_type), el('td', {}, (x.shared_classes || []).join(', ') || '—'),
        el('td', {}, dash(x.windows)), el('td', {}, dash(x.labeled_windows)),
        el('td', { class: x.used ? '' : 'refused' }, x.used ? `yes (dataset #${x.dataset_id} v${x.version})` : `no: ${dash(x.reason)}`))))));
  }
  const cmp = ev && ev.transfer;
  if (cmp && ev.fewshot) {
    box.append(el('table', { id: 'eval-transfer-compare' },
      el('thead', {}, el('tr', {}, ['learner', 'accuracy', 'false alarms', 'detection'].map((h) => el('th', {}, h)))),
      el('tbody', {},
        el('tr', { 'data-learner': 'with' }, el('td', {}, 'with transfer (this model)'), figure(ev.fewshot.accuracy, 'accuracy'),
          figure(ev.fewshot.false_alarm, 'false-alarm'), figure(ev.fewshot.detection, 'detection')),
        el('tr', { 'data-learner': 'without' }, el('td', {}, 'without transfer'), figure(cmp.without.accuracy, 'accuracy'),
          figure(cmp.without.false_alarm, 'false-alarm'), figure(cmp.without.detection, 'detection')))),
    el('p', { id: 'eval-transfer-change', class: 'hint' },
      typeof cmp.accuracy_change === 'number' ? `Transfer changed the accuracy by ${signedPoints(cmp.accuracy_change)}.`
        : `Change not reported: ${dash(cmp.accuracy_change_reason)}.`));
  } else if (used.length === 0) {
    box.append(el('p', { class: 'muted', id: 'eval-transfer-change' }, 'No related window was used: the model is the learner on this version alone.'));
  }
  return box;
}

// The feature set, how many features the model reads, and its size.
function featuresView(m) {
  const mt = m.metrics || {};
  const f = mt.features;
  if (!f && mt.n_features === undefined) return null;
  const k = f && f.kinematics;
  const parts = [];
  if (f) parts.push(`feature set "${f.set}" v${f.version}, windows of ${f.window} samples at ${f.sample_rate} Hz`);
  if (mt.n_features !== undefined) parts.push(`${mt.n_features} features`);
  if (mt.blob_bytes !== undefined) parts.push(`signed blob ${mt.blob_bytes} bytes`);
  // the blob's figures are float32: shown to the precision they were given in
  const g = (v) => Number(Number(v).toPrecision(6));
  if (k && k.bearing_balls == null) parts.push(`orders of the shaft at ${g(k.shaft_hz)} Hz; ${k.bearing_reason || 'no bearing geometry: no defect energies'}`);
  else if (k) parts.push(`bearing defect energies at ${g(k.shaft_hz)} Hz, ${k.bearing_balls} × ${g(k.ball_mm)} mm on ${g(k.pitch_mm)} mm, ${g(k.contact_deg)}°`);
  else if (f && f.kinematics_reason) parts.push(`no defect frequencies: ${f.kinematics_reason}`);
  // a fleet whose machines turn differently: each read at its own speed
  if (k && f.kinematics_distinct > 1) {
    const [lo, hi] = f.shaft_hz_range || [];
    parts.push(`the machines turn ${f.kinematics_distinct} ways (${g(lo)} to ${g(hi)} Hz): each window read at its own machine's defect frequencies, ` +
      "the speed above is the model's own blob's, and a device that turns otherwise gets a blob of its own");
  }
  if (f && f.set_reason) parts.push(`no spectrum: ${f.set_reason}`);
  // a window longer than the spectral sets read: how much of it they read
  if (f && f.window_reason) parts.push(f.window_reason);
  // the relations set's map of normal operation: what it was fitted on,
  // with the devices' unlabeled scheduled baselines it read beside the version
  const r = f && f.relations;
  if (r) {
    const u = r.unlabeled;
    parts.push(`relations map of rank ${r.rank} over ${r.channels} channels, fitted on ${r.fit_windows} windows` +
      (u ? ` (${u.fit_windows} of them from the ${u.windows} unlabeled windows of ${u.snapshots} scheduled baseline snapshots the devices sent before the version was frozen)` : ''));
  }
  return el('p', { id: 'eval-features', class: 'hint' }, `Features: ${parts.join('; ')}.`);
}

function evaluationView(m) {
  const mt = m.metrics || {};
  const ev = mt.evaluation;
  const box = el('div', { id: 'model-eval' }, el('h3', {}, `Model #${m.id}: evaluation`));
  if (!ev) {
    box.append(el('p', { class: 'muted' }, m.status === 'done' ? 'No evaluation stored (trained before evaluations were).' : `Not trained (${m.status}).`));
    const fv = featuresView(m);
    if (fv) box.append(fv);
    return box;
  }
  if (!ev.fewshot || ev.reason) {
    box.append(el('p', { class: 'refused' }, `Not evaluated: ${dash(ev.reason)}`));
    return box;
  }
  const all = learners(ev);
  box.append(el('p', { class: 'hint' }, `${dash(ev.cv)}; ${dash(ev.folds)} folds. ` +
    "Each learner is tested on the same windows, never by a model that saw their group's labels; 95 % Wilson intervals."));
  const rowId = (r) => `${r.method}|${r.features}`;
  box.append(el('table', { id: 'eval-summary' },
    el('thead', {}, el('tr', {}, ['learner', 'features', 'accuracy', 'false alarms (normal called a fault)', 'detection (faults called a fault)'].map((h) => el('th', {}, h)))),
    el('tbody', {}, all.map((r, i) => el('tr', { 'data-learner': rowId(r), class: i === 0 ? 'own' : '' },
      el('td', {}, i === 0 ? `${r.method} (this model)` : r.method), el('td', {}, r.features),
      figure(r.accuracy, 'accuracy'), figure(r.false_alarm, 'false-alarm'), figure(r.detection, 'detection'))))));
  const withRecall = all.find((r) => r.recall) || { recall: [] };
  const classes = withRecall.recall.map((f) => f.class);
  box.append(el('table', { id: 'eval-recall' },
    el('thead', {}, el('tr', {}, ['class', 'support (windows tested)', ...all.map((r) => `recall: ${r.method}, ${r.features}`)].map((h) => el('th', {}, h)))),
    el('tbody', {}, classes.map((c, k) => el('tr', { 'data-class': c },
      el('td', {}, c), el('td', { class: 'support' }, dash(withRecall.recall[k].support)),
      ...all.map((r) => figure((r.recall || [])[k], 'recall')))))));
  const why = refusals(ev);
  if (ev.transfer && ev.transfer.without) {
    const w = ev.transfer.without;
    for (const line of refusals({ fewshot: { ...w, features: `${w.features}, without transfer` } })) why.push(line);
  }
  box.append(el('h4', {}, 'Refused figures'),
    why.length ? el('ul', { id: 'eval-refusals' }, why.map((w) => el('li', {}, w)))
      : el('p', { id: 'eval-refusals', class: 'muted' }, 'None: every figure rests on enough windows.'));
  if (mt.device) {
    const d = mt.device;
    box.append(el('p', { id: 'eval-device', class: 'hint' },
      `On the device: ${d.param_bytes} bytes of parameters (budget ${d.flash_budget_bytes} of flash), ` +
      `${d.model_ram_bytes} bytes of RAM for scoring (budget ${d.ram_budget_bytes})` +
      (d.prototypes ? `, ${d.prototypes} prototypes` : '') +
      `; the feature window takes ${d.window_ram_bytes} bytes and the feature set's scratch ${d.feature_scratch_bytes}.`));
  }
  if (mt.device_reference) {
    // each device centred on its own reference windows, served its own blob
    const r = mt.device_reference;
    box.append(el('p', { id: 'eval-device-reference', class: 'hint' },
      `Each device its own reference: ${r.own_reference} of ${r.devices} device${r.devices === 1 ? '' : 's'} ` +
      `had reference windows (${r.reference_windows} in all) and get a blob centred on them; ` +
      'any other device runs the model\'s own center.'));
  }
  const fv = featuresView(m);
  if (fv) box.append(fv);
  const tv = transferView(mt, ev);
  if (tv) box.append(tv);
  return box;
}

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

async function showDetail(m, box) {
  shown.open = m.id;
  box.replaceChildren(el('p', { class: 'muted' }, 'Loading…'));
  try {
    const [full, d] = await Promise.all([api('GET', `/api/v1/models/${m.id}`),
      api('GET', `/api/v1/models/${m.id}/deployments`)]);
    place(box, evaluationView(full),
      el('h3', {}, `Model #${m.id}: deployments`), deploymentsList(d.items),
      el('p', {}, el('a', { href: `#/deployments/${m.id}`, id: 'model-deployments-link' },
        'How it runs on each device, promotion and rollbacks ›')));
  } catch (e) { box.replaceChildren(el('p', { class: 'error' }, e.message)); }
}

// Under a few-shot model's kind: what transfer brought, in a word.
function transferNote(m) {
  const t = m.metrics && m.metrics.transfer;
  if (m.kind !== 'fewshot' || !t) return null;
  if (!t.enabled) return el('div', { class: 'hint transfer' }, 'transfer off');
  // on, but no related type had a window to lend: "0 windows from 0 types" read like a fault
  if (!t.types_used) return el('div', { class: 'hint transfer' }, 'transfer: no related window used');
  return el('div', { class: 'hint transfer' }, `transfer: ${t.windows} windows from ${t.types_used} type${t.types_used === 1 ? '' : 's'}`);
}

// The statuses of a list, to tell whether anything moved.
const statuses = (list) => list.items.map((m) => `${m.id}:${m.status}`).join(' ');

// While a model of the list trains and this page is still the one shown,
// ask again every FOLLOW_MS; show the page anew once a status moves.
function follow(list, seq, epoch) {
  followUntilMoved({
    state: list,
    unfinished: (l) => l.items.some(unfinished),
    key: statuses,
    wait: () => new Promise((r) => setTimeout(r, FOLLOW_MS)),
    current: () => seq === shown.seq && stillCurrent(epoch) && matchRoute(location.hash).page === 'models',
    fetch: () => api('GET', '/api/v1/models'),
    changed: () => showModels(shown.open),
  });
}

export async function showModels(openId = null) {
  crumbs('Models');
  const seq = ++shown.seq, epoch = sessionEpoch();
  shown.open = null;
  let list;
  try { list = await api('GET', '/api/v1/models'); } catch (e) { showError(e.message); return; }
  if (seq !== shown.seq) return;      // another showModels since
  const detail = el('div', { class: 'card', id: 'model-detail' }, el('p', { class: 'muted' }, 'Pick a model to see its evaluation and deployments.'));
  // A row opens on click, or on Enter once tabbed to (it takes the focus);
  // the address names it, without loading the page again.
  const open = (m) => { history.replaceState(null, '', modelHash(m.id)); showDetail(m, detail); };
  const rows = list.items.map((m) => el('tr', {
    class: 'row', 'data-model': m.id, tabindex: 0, onclick: () => open(m),
    onkeydown: (ev) => { if (ev.key === 'Enter') { ev.preventDefault(); open(m); } },
  },
    el('td', {}, `#${m.id}`), el('td', {}, m.kind, transferNote(m)),
    el('td', {}, el('span', { class: `pill ${m.status === 'done' ? 'done' : 'todo'}` }, m.status), m.error ? el('div', { class: 'error' }, m.error) : null),
    el('td', {}, `${m.dataset_name || `dataset #${m.dataset_id}`} v${m.version}`),
    ...metricsCells(m.metrics),
    el('td', {}, dash(m.deployments)), el('td', {}, fmtTime(m.finished_at || m.created_at))));
  showPage(el('h2', {}, 'Models'),
    el('p', { class: 'hint' }, 'Cross-validated over whole split groups; n is the number of windows each ratio rests on. ' +
      'Train one from a dataset version on the Datasets page, or with POST /api/v1/models {"dataset_id","version","kind"}, ' +
      'kind anomaly, classifier or fewshot (ml, admin); a fewshot model also learns from related equipment types\' labels ' +
      'of shared failure modes unless "transfer": false.'),
    el('table', { id: 'models' },
      el('thead', {}, el('tr', {}, ['id', 'kind', 'status', 'trained from', 'precision', 'recall', 'windows scored',
        'alerts per operator hour', 'deployments', 'when'].map((h) => el('th', {}, h)))),
      el('tbody', {}, rows.length ? rows : [el('tr', {}, el('td', { colspan: 10, class: 'muted' }, 'No models yet.'))])),
    detail);
  if (openId !== null) {
    const m = list.items.find((x) => x.id === openId);
    if (m) showDetail(m, detail);
    else place(detail, el('p', { class: 'error' }, `Model #${openId}: no such model.`));
  }
  follow(list, seq, epoch);
}
