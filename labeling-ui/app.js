// app.js - the labeling UI: login, queue, snapshot view with synchronized
// waveforms, span labeling by mouse and keyboard, context.  Plain ES module;
// uPlot is copied next to it from npm by scripts/ui-build.sh.  Samples are
// always fetched decimated for the visible range (min/max per pixel column
// on the server), so the page never holds a whole long snapshot; they travel
// in the compact binary form of schema/SAMPLES.md, viewed in place as typed
// arrays.  Performance marks ('snapshot-drawn', 'snapshot-interactive') let
// bench/ui.sh time a snapshot from navigation to usable.
import uPlot from './uPlot.esm.js';
import * as D from './domain.js';   // rules, alert dispositions, operational metrics

const app = document.getElementById('app');
const COLORS = ['#2563eb', '#dc2626', '#059669', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#65a30d'];
const S = { me: null, classes: [], snap: null };

// ---- HTTP ------------------------------------------------------------------
async function api(method, path, body) {
  const h = {};
  if (body !== undefined) h['Content-Type'] = 'application/json';
  if (method !== 'GET' && S.me && S.me.csrf) h['X-CSRF-Token'] = S.me.csrf;
  const r = await fetch(path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
  if (r.status === 204) return null;
  const j = await r.json().catch(() => ({}));
  if (!r.ok) {
    const e = new Error((j.error && j.error.message) || r.statusText);
    e.status = r.status;
    throw e;
  }
  return j;
}

// Binary samples (schema/SAMPLES.md): typed arrays over the answer itself.
// They view little-endian bytes, so a big-endian browser keeps using JSON.
const LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

async function samples(id, query, meta) {
  if (!LITTLE) return api('GET', `/api/v1/snapshots/${id}/samples?${query}`);
  const r = await fetch(`/api/v1/snapshots/${id}/samples?${query}&format=bin`, { credentials: 'same-origin' });
  if (!r.ok) {
    const j = await r.json().catch(() => ({}));
    const e = new Error((j.error && j.error.message) || r.statusText);
    e.status = r.status;
    throw e;
  }
  return parseSamples(await r.arrayBuffer(), meta);
}

function parseSamples(buf, meta) {
  const dv = new DataView(buf);
  if (buf.byteLength < 64 || String.fromCharCode(...new Uint8Array(buf, 0, 4)) !== 'PRSS' || dv.getUint16(4, true) !== 1) {
    throw new Error('samples: not a PRSS v1 answer');
  }
  const raw = dv.getUint8(6) === 1, vt = dv.getUint8(7), nch = dv.getUint32(8, true), P = dv.getUint32(12, true);
  const VA = vt === 2 ? Float64Array : Float32Array, vb = VA.BYTES_PER_ELEMENT;
  const need = 64 + 8 * P + nch * P * vb * (raw ? 1 : 2);
  if (buf.byteLength !== need) throw new Error(`samples: ${buf.byteLength} bytes, header says ${need}`);
  const out = {
    i0: Number(dv.getBigUint64(16, true)), i1: Number(dv.getBigUint64(24, true)),
    samples: Number(dv.getBigUint64(32, true)), sample_rate: dv.getFloat64(40, true),
    trigger_s: dv.getFloat64(48, true), pre_samples: dv.getUint32(56, true),
    mode: raw ? 'raw' : 'minmax', px: raw ? undefined : P, t: new Float64Array(buf, 64, P), channels: [],
  };
  let off = 64 + 8 * P;
  for (let c = 0; c < nch; c++) {
    const m = (meta && meta.channels && meta.channels[c]) || {};
    const ch = { name: m.name || `ch${c}`, unit: m.unit || '' };
    if (raw) { ch.values = new VA(buf, off, P); off += P * vb; }
    else { ch.min = new VA(buf, off, P); ch.max = new VA(buf, off + P * vb, P); off += 2 * P * vb; }
    out.channels.push(ch);
  }
  return out;
}

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'class') e.className = v;
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? '' : v);
  }
  for (const k of kids.flat()) if (k !== null && k !== undefined) e.append(k.nodeType ? k : String(k));
  return e;
}
const fmtTime = (s) => s ? new Date(s).toLocaleString() : '';

// ---- login -----------------------------------------------------------------
function showLogin(msg) {
  document.getElementById('who').textContent = '';
  document.getElementById('logout').hidden = true;
  const err = el('p', { class: 'error', id: 'login-error' }, msg || '');
  const form = el('form', { class: 'card login', id: 'login' },
    el('h2', {}, 'Log in'),
    el('label', { for: 'username' }, 'Username'), el('input', { id: 'username', name: 'username', autocomplete: 'username', required: true }),
    el('label', { for: 'password' }, 'Password'), el('input', { id: 'password', name: 'password', type: 'password', autocomplete: 'current-password', required: true }),
    el('p', {}, el('button', { class: 'primary', type: 'submit' }, 'Log in')), err);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      S.me = await api('POST', '/api/v1/session', { username: form.username.value, password: form.password.value });
      await start();
    } catch (e) { err.textContent = e.message; }
  });
  app.replaceChildren(form);
  form.username.focus();
}

async function start() {
  // Session and classes together: one round trip before the first view.
  const classes = api('GET', '/api/v1/classes');
  classes.catch(() => {});     // a 401 here is answered by the session's
  try {
    S.me = await api('GET', '/api/v1/session');
  } catch (e) {
    if (e.status === 401) return showLogin();
    app.replaceChildren(el('p', { class: 'error' }, e.message));
    return;
  }
  document.getElementById('who').textContent = `${S.me.username} (${S.me.role})`;
  document.getElementById('logout').hidden = false;
  document.getElementById('users-link').hidden = S.me.role !== 'admin';
  try {
    S.classes = (await classes).items;
  } catch (e) { app.replaceChildren(el('p', { class: 'error' }, e.message)); return; }
  D.init({ api, el, fmtTime, app });
  route();
}

document.getElementById('logout').addEventListener('click', async () => {
  await api('DELETE', '/api/v1/session').catch(() => {});
  S.me = null;
  document.getElementById('users-link').hidden = true;
  location.hash = '#/queue';
  showLogin();
});

function route() {
  if (!S.me) return;
  if (S.snap) { S.snap.destroy(); S.snap = null; }
  const m = location.hash.match(/^#\/snapshot\/(\d+)/);
  if (m) return showSnapshot(Number(m[1]));
  if (/^#\/admin\/users/.test(location.hash)) return showUsers();
  if (/^#\/rules/.test(location.hash)) return D.showRules();
  if (/^#\/ops/.test(location.hash)) return D.showOps();
  showQueue();
}
window.addEventListener('hashchange', route);

// ---- queue -----------------------------------------------------------------
const Q = { sort: 'score', device: '', equipment_type: '', site: '', min_score: '', from: '', to: '', unlabeled: false, offset: 0 };

async function showQueue() {
  document.getElementById('crumbs').textContent = 'Queue';
  const p = new URLSearchParams({ sort: Q.sort, limit: 100, offset: Q.offset });
  for (const k of ['device', 'equipment_type', 'site', 'min_score']) if (Q[k] !== '') p.set(k, Q[k]);
  if (Q.from) p.set('from', Date.parse(Q.from) / 1000);
  if (Q.to) p.set('to', Date.parse(Q.to) / 1000 + 86400);
  if (Q.unlabeled) p.set('unlabeled', 1);
  let q;
  try { q = await api('GET', '/api/v1/queue?' + p); } catch (e) { app.replaceChildren(el('p', { class: 'error' }, e.message)); return; }
  const sel = (key, values) => el('select', { onchange: (ev) => { Q[key] = ev.target.value; Q.offset = 0; showQueue(); } },
    el('option', { value: '' }, 'all'), values.map((v) => el('option', { value: v, selected: Q[key] === v }, v)));
  const inp = (key, type, extra = {}) => el('input', { type, value: Q[key], ...extra, onchange: (ev) => { Q[key] = ev.target.value; Q.offset = 0; showQueue(); } });
  const filters = el('div', { class: 'card filters' },
    el('label', {}, 'Sort', el('select', { id: 'sort', onchange: (ev) => { Q.sort = ev.target.value; showQueue(); } },
      ['score', 'time', 'device'].map((v) => el('option', { value: v, selected: Q.sort === v }, v)))),
    el('label', {}, 'Device', sel('device', q.facets.devices)),
    el('label', {}, 'Equipment type', sel('equipment_type', q.facets.equipment_types)),
    el('label', {}, 'Site', sel('site', q.facets.sites)),
    el('label', {}, 'Min score', inp('min_score', 'number', { step: '0.05', min: 0, max: 1, style: 'width:70px' })),
    el('label', {}, 'From', inp('from', 'date')),
    el('label', {}, 'To', inp('to', 'date')),
    el('label', {}, 'Unlabeled only', el('input', { type: 'checkbox', checked: Q.unlabeled, onchange: (ev) => { Q.unlabeled = ev.target.checked; showQueue(); } })),
    el('span', { class: 'grow' }),
    el('strong', { id: 'left' }, `${q.left} left to label`), el('span', { class: 'muted' }, ` of ${q.total}`));
  const open = (s) => { location.hash = `#/snapshot/${s.id}`; };
  const rows = q.items.map((s) => el('tr', { class: 'row' + (s.labeled_at ? ' labeled' : ''), 'data-id': s.id, tabindex: 0, onclick: () => open(s),
    onkeydown: (ev) => { if (ev.key === 'Enter') { ev.preventDefault(); open(s); } } },
    el('td', {}, s.labeled_at ? el('span', { class: 'pill done' }, 'labeled') : el('span', { class: 'pill todo' }, 'to do')),
    el('td', {}, '#' + s.id), el('td', {}, s.device_id), el('td', {}, s.equipment_type || '—'), el('td', {}, s.site || '—'),
    el('td', {}, fmtTime(s.trigger_time)), el('td', {}, s.score.toFixed(3)), el('td', {}, s.detector),
    el('td', {}, `${s.channel_count} ch × ${s.duration_s.toFixed(2)} s`)));
  const table = el('table', { id: 'queue' },
    el('thead', {}, el('tr', {}, ['', 'id', 'device', 'equipment', 'site', 'trigger time', 'score', 'detector', 'shape'].map((h) => el('th', {}, h)))),
    el('tbody', {}, rows));
  const pager = el('p', {},
    el('button', { disabled: Q.offset === 0, onclick: () => { Q.offset = Math.max(0, Q.offset - 100); showQueue(); } }, '‹ prev'), ' ',
    el('button', { disabled: Q.offset + 100 >= q.total, onclick: () => { Q.offset += 100; showQueue(); } }, 'next ›'),
    el('span', { class: 'hint' }, '  Click a row (or Tab to it and Enter) to label it; in a snapshot, n jumps to the next unlabeled one.'));
  app.replaceChildren(filters, table, pager);
  D.decorateQueue(table);
}

// ---- users (admin page) ------------------------------------------------------
// The server answers /api/v1/users to admins only; anyone else who comes here
// sees its 403 as a page of its own.
async function showUsers(note) {
  document.getElementById('crumbs').textContent = 'Users';
  let list;
  try { list = await api('GET', '/api/v1/users'); } catch (e) {
    app.replaceChildren(el('div', { class: 'card forbidden', id: 'forbidden' },
      el('h2', {}, e.status === 403 ? '403 Forbidden' : `Error ${e.status || ''}`), el('p', {}, e.message),
      el('p', {}, el('a', { href: '#/queue' }, 'Back to the queue'))));
    return;
  }
  const err = el('p', { class: 'error', id: 'user-error' });
  const form = el('form', { class: 'card filters', id: 'user-form' },
    el('label', {}, 'Username', el('input', { name: 'username', id: 'new-username', required: true, maxlength: 64, pattern: '[A-Za-z0-9._\\-]+', autocomplete: 'off' })),
    el('label', {}, 'Password (10+ characters)', el('input', { name: 'password', id: 'new-password', type: 'password', required: true, minlength: 10, autocomplete: 'new-password' })),
    el('label', {}, 'Role', el('select', { name: 'role', id: 'new-role' }, ['operator', 'ml', 'admin'].map((r) => el('option', { value: r }, r)))),
    el('button', { class: 'primary', type: 'submit' }, 'Add user'), err);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const u = await api('POST', '/api/v1/users', { username: form.username.value, password: form.password.value, role: form.role.value });
      showUsers(`added ${u.username} (${u.role})`);
    } catch (e) { err.textContent = e.message; }
  });
  const table = el('table', { id: 'users' },
    el('thead', {}, el('tr', {}, ['username', 'role', 'created', ''].map((h) => el('th', {}, h)))),
    el('tbody', {}, list.items.map((u) => el('tr', { 'data-user': u.username },
      el('td', {}, u.username), el('td', {}, u.role), el('td', {}, fmtTime(u.created_at)), el('td', {}, u.disabled ? 'disabled' : '')))));
  app.replaceChildren(el('h2', {}, 'Users'), form, el('p', { class: 'muted', id: 'user-note' }, note || ''), table);
}

async function nextUnlabeled(current) {
  const q = await api('GET', '/api/v1/queue?unlabeled=1&limit=2&sort=' + Q.sort);
  const next = q.items.find((s) => s.id !== current);
  if (next) location.hash = `#/snapshot/${next.id}`;
  else { location.hash = '#/queue'; }
}

// ---- snapshot view -----------------------------------------------------------
async function showSnapshot(id) {
  performance.mark('snapshot-nav', { detail: { id } });
  document.getElementById('crumbs').textContent = `Snapshot #${id}`;
  // Lay the frame out first so the plot width (hence px) is known, then ask
  // for everything at once: one round trip to a drawn snapshot.
  const plotsBox = el('div', { class: 'plots' });
  const overviewBox = el('div', { class: 'overview' });
  const sideBox = el('div', { class: 'side' });
  const headBox = el('div', { class: 'card' }, el('span', { class: 'muted' }, 'Loading…'));
  app.replaceChildren(headBox, el('div', { class: 'snap' }, el('div', { class: 'card' }, overviewBox, plotsBox), sideBox));
  const width = () => Math.max(400, plotsBox.clientWidth || 900);
  const px = Math.min(2000, width());
  let meta, labels, ctx, full;
  try {
    [meta, labels, ctx, full] = await Promise.all([api('GET', `/api/v1/snapshots/${id}`), api('GET', `/api/v1/snapshots/${id}/labels`),
      api('GET', `/api/v1/snapshots/${id}/context`), samples(id, `px=${px}`)]);
  } catch (e) { app.replaceChildren(el('p', { class: 'error' }, e.message)); return; }
  if (!location.hash.startsWith(`#/snapshot/${id}`)) return;     // navigated away meanwhile
  for (const [i, c] of full.channels.entries()) Object.assign(c, meta.channels[i] || {});
  const v = new SnapshotView(id, meta, labels.items, plotsBox, overviewBox);
  S.snap = v;
  const side = v.sidePanel(ctx);
  const head = el('div', { class: 'card', id: 'snap-head' },
    el('strong', {}, `${meta.device_id} · seq ${meta.seq}`), ' · ', fmtTime(meta.trigger_time), ' · ',
    `${meta.detector} score ${Number(meta.score).toFixed(3)}`, ' · ', `${meta.sample_rate} Hz`,
    el('div', { class: 'classes', id: 'classes' }, S.classes.map((c, i) => el('button', { 'data-class': c.name, title: c.description, onclick: () => v.pickClass(c.name) },
      i < 9 ? el('kbd', {}, String(i + 1)) : null, c.name))),
    el('div', { class: 'hint' }, 'Drag on a waveform, or m for the whole view, to mark a span · 1-9 class · Enter save · Esc cancel · ←/→ pan · +/− zoom · 0 whole · n next unlabeled · u undo'),
    el('div', { id: 'status' }));
  headBox.replaceWith(head);
  sideBox.replaceWith(side);
  side.prepend(D.alertCard(id));
  v.build(full, width());
  performance.mark('snapshot-drawn', { detail: { id } });
  v.listen();
  performance.mark('snapshot-interactive', { detail: { id } });
  performance.measure('snapshot-ready', 'snapshot-nav', 'snapshot-interactive');
}

class SnapshotView {
  constructor(id, meta, labels, plotsBox, overviewBox) {
    Object.assign(this, { id, meta, labels, plotsBox, overviewBox });
    this.plots = [];
    this.pending = null;        // {start_s, end_s} being labeled
    this.klass = null;
    this.undo = [];             // stack of {op, label}
    this.fetchSeq = 0;
    this.onKey = (e) => this.key(e);
  }

  // Keys are taken only once the waveforms are drawn.
  listen() { document.addEventListener('keydown', this.onKey); }

  destroy() {
    document.removeEventListener('keydown', this.onKey);
    this.plots.forEach((p) => p.destroy());
    if (this.overview) this.overview.destroy();
  }

  build(full, width) {
    const n = full.channels.length;
    this.duration = full.samples / full.sample_rate;
    this.trigger = full.trigger_s;
    this.view = [0, this.duration];
    this.nch = n;
    this.selected = new Set(full.channels.map((_, i) => i));
    const sync = uPlot.sync('snap' + this.id);
    const self = this;
    const h = Math.max(90, Math.min(150, Math.floor(520 / n)));
    // Overview: every channel's envelope over the whole snapshot; drag
    // there picks the detail window.
    this.overview = new uPlot({
      width, height: 70, padding: [4, 24, 4, 55], legend: { show: false }, cursor: { drag: { x: true, y: false, setScale: false }, points: { show: false } },
      scales: { x: { time: false } }, axes: [{ show: false }, { show: false }],
      series: [{}, ...full.channels.flatMap((c, i) => [{ stroke: COLORS[i % 8], width: 1 }, { stroke: COLORS[i % 8], width: 1 }])],
      hooks: {
        setSelect: [(u) => { if (u.select.width > 2) { self.setView(u.posToVal(u.select.left, 'x'), u.posToVal(u.select.left + u.select.width, 'x')); } u.setSelect({ width: 0, height: 0 }, false); }],
        draw: [(u) => self.drawOverlay(u, -1, true)],
      },
    }, this.stacked(full), this.overviewBox);
    this.plots = full.channels.map((c, ch) => {
      const box = el('div', { class: 'chan', 'data-ch': ch },
        el('span', { class: 'name' }, el('label', { class: 'chk' }, el('input', { type: 'checkbox', checked: true, 'data-chsel': ch,
          onchange: (ev) => { ev.target.checked ? this.selected.add(ch) : this.selected.delete(ch); this.redraw(); } })), `${c.name} [${c.unit}]`));
      this.plotsBox.append(box);
      return new uPlot({
        width, height: h, padding: [6, 24, 0, 0], legend: { show: false },
        cursor: { sync: { key: sync.key }, drag: { x: true, y: false, setScale: false } },
        scales: { x: { time: false } },
        axes: [{ show: ch === n - 1, size: 30 }, { size: 55 }],
        series: [{}, { stroke: COLORS[ch % 8], width: 1 }, { stroke: COLORS[ch % 8], width: 1 }],
        bands: [{ series: [1, 2], fill: COLORS[ch % 8] + '55' }],
        hooks: {
          setSelect: [(u) => { if (u.select.width > 2) self.mark(u.posToVal(u.select.left, 'x'), u.posToVal(u.select.left + u.select.width, 'x'), ch); u.setSelect({ width: 0, height: 0 }, false); }],
          draw: [(u) => self.drawOverlay(u, ch, false)],
        },
      }, this.toData(full, ch), box);
    });
    this.renderLabels();
  }

  // uPlot data from a /samples answer: x, then max/min per channel (raw:
  // the same values twice, so one drawing path serves both modes).
  toData(s, ch) {
    const pick = ch === null ? s.channels.map((_, i) => i) : [ch];
    const d = [s.t];
    for (const i of pick) {
      const c = s.channels[i];
      d.push(c.values || c.max, c.values || c.min);
    }
    return d;
  }

  // Overview data: every channel scaled to its own range and stacked, so a
  // large-valued channel does not flatten the others.
  stacked(s) {
    const d = [s.t];
    s.channels.forEach((c, i) => {
      const hi = c.values || c.max, lo = c.values || c.min;
      const top = Math.max(...hi), bot = Math.min(...lo), k = top > bot ? 1 / (top - bot) : 0;
      d.push(hi.map((v) => i + (v - bot) * k * 0.9), lo.map((v) => i + (v - bot) * k * 0.9));
    });
    return d;
  }

  setView(a, b) {
    const span = Math.max(b - a, 8 / this.meta.sample_rate);
    a = Math.max(0, Math.min(a, this.duration - span));
    this.view = [a, Math.min(this.duration, a + span)];
    this.overview.redraw(false);
    clearTimeout(this.fetchTimer);
    this.fetchTimer = setTimeout(() => this.fetchView(), 30);
  }

  async fetchView() {
    const seq = ++this.fetchSeq;
    const [a, b] = this.view;
    const px = Math.round(this.plots[0].bbox.width / devicePixelRatio) || 1000;
    const s = await samples(this.id, `from_s=${a}&to_s=${b}&px=${Math.min(8192, px)}`, this.meta);
    if (seq !== this.fetchSeq || S.snap !== this) return;    // a newer view won
    this.lastMode = s.mode;
    this.plots.forEach((p, ch) => { p.setData(this.toData(s, ch), false); p.setScale('x', { min: a, max: b }); });
    this.status(`view ${a.toFixed(3)}–${b.toFixed(3)} s · ${s.mode === 'raw' ? 'raw samples' : 'min/max per pixel'} (${s.i1 - s.i0} samples)`);
  }

  zoom(f) {
    const [a, b] = this.view, c = (a + b) / 2, w = (b - a) * f;
    this.setView(c - w / 2, c + w / 2);
  }

  pan(f) {
    const [a, b] = this.view, w = b - a;
    this.setView(a + w * f, b + w * f);
  }

  drawOverlay(u, ch, isOverview) {
    const ctx = u.ctx, top = u.bbox.top, hgt = u.bbox.height;
    const X = (t) => u.valToPos(t, 'x', true);
    ctx.save();
    for (const l of this.labels) {
      if (!isOverview && !l.channels.includes(ch)) continue;
      const i = S.classes.findIndex((c) => c.name === l.class);
      ctx.fillStyle = COLORS[(i + 3) % 8] + '33';
      ctx.fillRect(X(l.start_s), top, X(l.end_s) - X(l.start_s), hgt);
      if (!isOverview) { ctx.fillStyle = '#111'; ctx.font = `${11 * devicePixelRatio}px sans-serif`; ctx.fillText(l.class, X(l.start_s) + 3, top + 12 * devicePixelRatio); }
    }
    if (this.pending && (isOverview || this.selected.has(ch))) {
      ctx.fillStyle = '#f59e0b55';
      ctx.fillRect(X(this.pending.start_s), top, X(this.pending.end_s) - X(this.pending.start_s), hgt);
    }
    if (isOverview && this.view) {
      ctx.strokeStyle = '#111'; ctx.lineWidth = 2;
      ctx.strokeRect(X(this.view[0]), top + 1, X(this.view[1]) - X(this.view[0]), hgt - 2);
    }
    // trigger point
    ctx.strokeStyle = '#ef4444'; ctx.lineWidth = 1.5 * devicePixelRatio; ctx.setLineDash([4, 3]);
    ctx.beginPath(); ctx.moveTo(X(this.trigger), top); ctx.lineTo(X(this.trigger), top + hgt); ctx.stroke();
    ctx.restore();
  }

  redraw() { this.plots.forEach((p) => p.redraw(false)); if (this.overview) this.overview.redraw(false); }

  mark(a, b, ch) {
    a = Math.max(0, a); b = Math.min(this.duration, b);
    if (!(b > a)) return;
    this.pending = { start_s: a, end_s: b };
    if (!this.selected.size) this.selected.add(ch);
    this.redraw();
    this.renderForm();
    this.status(`span ${a.toFixed(4)}–${b.toFixed(4)} s on channels ${[...this.selected].join(', ')}: pick a class (1-9), Enter saves`);
  }

  pickClass(name) {
    this.klass = name;
    document.querySelectorAll('#classes button').forEach((b) => b.classList.toggle('sel', b.dataset.class === name));
    const f = document.getElementById('f-class');
    if (f) f.value = name;
  }

  status(msg, err) {
    const s = document.getElementById('status');
    if (s) { s.textContent = msg; s.className = err ? 'error' : 'muted'; }
  }

  async save() {
    if (!this.pending) return this.status('drag on a waveform to mark a span first', true);
    if (!this.klass) return this.status('pick a class first (keys 1-9)', true);
    const f = (id) => document.getElementById(id);
    const body = {
      ...this.pending, channels: [...this.selected].sort((x, y) => x - y), class: this.klass,
      confidence: Number(f('f-conf').value), notes: f('f-notes').value,
      failure_mode: f('f-mode').value, mechanism: f('f-mech').value, cause: f('f-cause').value,
    };
    try {
      const l = await api('POST', `/api/v1/snapshots/${this.id}/labels`, body);
      this.labels.push(l);
      this.undo.push({ op: 'create', label: l });
      this.pending = null;
      this.status(`saved label #${l.id} (${l.class})`);
      this.renderLabels();
      this.redraw();
    } catch (e) { this.status(e.message, true); }
  }

  async remove(l) {
    try {
      await api('DELETE', `/api/v1/labels/${l.id}`);
      this.labels = this.labels.filter((x) => x.id !== l.id);
      this.undo.push({ op: 'delete', label: l });
      this.renderLabels(); this.redraw();
      this.status(`deleted label #${l.id} (u undoes)`);
    } catch (e) { this.status(e.message, true); }
  }

  async undoLast() {
    const u = this.undo.pop();
    if (!u) return this.status('nothing to undo');
    try {
      if (u.op === 'create') {
        await api('DELETE', `/api/v1/labels/${u.label.id}`);
        this.labels = this.labels.filter((x) => x.id !== u.label.id);
      } else {
        const { start_s, end_s, channels, confidence, notes, failure_mode, mechanism, cause } = u.label;
        const l = await api('POST', `/api/v1/snapshots/${this.id}/labels`, { start_s, end_s, channels, class: u.label.class, confidence, notes, failure_mode, mechanism, cause });
        this.labels.push(l);
      }
      this.renderLabels(); this.redraw();
      this.status(`undid ${u.op} of a ${u.label.class} label`);
    } catch (e) { this.status(e.message, true); }
  }

  key(e) {
    const t = e.target;
    if (t && (t.tagName === 'TEXTAREA' || (t.tagName === 'INPUT' && t.type === 'text'))) {
      if (e.key === 'Escape') t.blur();
      return;
    }
    if (e.ctrlKey && e.key === 'z') { e.preventDefault(); return this.undoLast(); }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const k = e.key;
    if (k >= '1' && k <= '9') { const c = S.classes[Number(k) - 1]; if (c) this.pickClass(c.name); }
    else if (k === 'Enter') this.save();
    else if (k === 'm') this.mark(this.view[0], this.view[1], 0);
    else if (k === 'Escape') { this.pending = null; this.redraw(); this.status('span cleared'); }
    else if (k === 'ArrowLeft') this.pan(-0.25);
    else if (k === 'ArrowRight') this.pan(0.25);
    else if (k === '+' || k === '=') this.zoom(0.5);
    else if (k === '-' || k === '_') this.zoom(2);
    else if (k === '0') this.setView(0, this.duration);
    else if (k === 'n') nextUnlabeled(this.id);
    else if (k === 'u') this.undoLast();
    else return;
    e.preventDefault();
  }

  renderForm() {
    const f = document.getElementById('form-span');
    if (f) f.textContent = this.pending ? `${this.pending.start_s.toFixed(4)} – ${this.pending.end_s.toFixed(4)} s` : 'none: drag on a waveform';
  }

  renderLabels() {
    const ul = document.getElementById('labels');
    if (!ul) return;
    ul.replaceChildren(...this.labels.map((l) => el('li', { 'data-label': l.id },
      el('strong', {}, l.class), ` ${l.start_s.toFixed(3)}–${l.end_s.toFixed(3)} s · ch ${l.channels.join(',')} · ${l.created_by} `,
      el('span', { class: 'hint' }, fmtTime(l.created_at)), ' ',
      el('button', { title: 'delete', onclick: () => this.remove(l) }, '✕'))));
    if (!this.labels.length) ul.append(el('li', { class: 'muted' }, 'no labels yet'));
  }

  sidePanel(ctx) {
    const ctxList = (items) => el('ul', { class: 'ctx' }, items.length ? items.map((s) => el('li', {},
      el('a', { href: `#/snapshot/${s.id}` }, `#${s.id} ${s.device_id}`), ` ${fmtTime(s.trigger_time)} · ${Number(s.score).toFixed(2)} `,
      s.labeled ? el('span', { class: 'pill done' }, (s.classes || []).join(', ') || 'labeled') : el('span', { class: 'pill todo' }, 'to do'))) : [el('li', { class: 'muted' }, 'none')]);
    return el('div', { class: 'side' },
      el('div', { class: 'card' }, el('h3', {}, 'New label'),
        el('div', {}, 'Span: ', el('span', { id: 'form-span' }, 'none: drag on a waveform')),
        el('label', {}, 'Class', el('select', { id: 'f-class', onchange: (ev) => this.pickClass(ev.target.value) },
          el('option', { value: '' }, '—'), S.classes.map((c, i) => el('option', { value: c.name }, `${i < 9 ? i + 1 + ' ' : ''}${c.name}`)))),
        el('label', {}, 'Confidence', el('input', { id: 'f-conf', type: 'range', min: 0, max: 1, step: 0.05, value: 1 })),
        el('label', {}, 'Failure mode', el('input', { id: 'f-mode', type: 'text', maxlength: 200 })),
        el('label', {}, 'Mechanism', el('input', { id: 'f-mech', type: 'text', maxlength: 200 })),
        el('label', {}, 'Cause', el('input', { id: 'f-cause', type: 'text', maxlength: 200 })),
        el('label', {}, 'Notes', el('textarea', { id: 'f-notes', rows: 2, maxlength: 4000 })),
        el('p', {}, el('button', { class: 'primary', id: 'save', onclick: () => this.save() }, 'Save (Enter)'), ' ',
          el('button', { onclick: () => this.undoLast() }, 'Undo (u)'), ' ',
          el('button', { onclick: () => nextUnlabeled(this.id) }, 'Next (n)'))),
      el('div', { class: 'card' }, el('h3', {}, 'Labels'), el('ul', { class: 'labels', id: 'labels' })),
      el('div', { class: 'card' }, el('h3', {}, 'Same device, recent'), ctxList(ctx.device),
        el('h3', {}, `Same equipment type (${ctx.equipment_type || 'unknown'})`), ctxList(ctx.equipment)));
  }
}

start();
