// page-snapshot.js - the snapshot page: its frame, the one round trip that
// fills it, and the performance marks that time it (bench/ui.sh reads
// 'snapshot-drawn' and 'snapshot-interactive', from navigation start).
// The view itself is snap-view.js.
import { api, fetchSamples } from './http.js';
import { el, crumbs, showPage } from './dom.js';
import { fmtTime } from './format.js';
import { session, canOperate, OPERATE_NOTE } from './session.js';
import { plotWidth, firstPx } from './range.js';
import { snapshotHash } from './router.js';
import { SnapshotView } from './snap-view.js';
import { sidePanel } from './snap-side.js';
import { alertCard } from './alerts.js';
import { SpectrumPanel } from './snap-spectrum.js';
import { weakLabelCard } from './snap-rules.js';
import { classesForType } from './taxonomy.js';
import { findClass } from './keys.js';
import { demoParam } from './demo.js';

const KEYS_HINT = 'Drag on a waveform, or m for the whole view, to mark a span · [ ] move its start, { } its end ' +
  '(the view follows) · 1-9 class, c any class by name or number · Enter save · Esc cancel · ←/→ pan · +/− zoom · ' +
  '0 whole · n next unlabeled · u undo';
// For a role that may not label (ml): the keys that move through snapshots.
const READ_KEYS_HINT = 'Drag on the overview picks the window · ←/→ pan · +/− zoom · 0 whole · n next unlabeled';

let current = null;

// Leaving the page: the view lets go of its keys and plots.
export function closeSnapshot() {
  if (current) { current.destroy(); current = null; }
}

// The class chooser (key c): a class's number or a few letters of its name,
// Enter picks it and gives the keys back to the view; while typing, the
// buttons it could mean are marked.  Escape leaves it (keys.js).
function classChooser(v) {
  const input = el('input', {
    id: 'class-find', type: 'text', size: 16, autocomplete: 'off', spellcheck: 'false',
    placeholder: 'name or number', 'aria-label': 'class by name or number (key c)',
  });
  const found = () => findClass(v.classes.map((c) => c.name), input.value);
  const mark = (indexes) => document.querySelectorAll('#classes button[data-class]')
    .forEach((b, i) => b.classList.toggle('match', indexes.includes(i)));
  input.addEventListener('input', () => {
    const f = found();
    mark(f.index !== undefined ? [f.index] : f.candidates);
    v.status(f.index !== undefined ? `Enter picks ${v.classes[f.index].name}`
      : f.candidates.length ? `${f.candidates.length} classes match: type more` : 'no class matches');
  });
  input.addEventListener('keydown', (ev) => {
    if (ev.key !== 'Enter') return;
    ev.preventDefault();
    const f = found();
    if (f.index === undefined) {
      v.status(f.candidates.length ? `${f.candidates.length} classes match: type more` : 'no class matches', true);
      return;
    }
    v.pickClass(v.classes[f.index].name);
    input.blur();
    v.status(`class ${v.classes[f.index].name}: Enter saves`);
  });
  input.addEventListener('blur', () => { input.value = ''; mark([]); });
  return el('label', { class: 'class-find', title: 'key c: a class by its number or a few letters of its name, then Enter' },
    el('kbd', {}, 'c'), input);
}

// The header: what the snapshot is, the class buttons (the classes of its
// equipment type, in their order: keys 1-9 pick the first nine, c any of
// them), the status line.  A button clicked with the mouse gives the keys
// back to the view (Enter saves, not clicks it again); one reached by Tab
// keeps them, as a focused control does.
function snapshotHead(v, meta, equipmentType) {
  const classButton = (c, i) => el('button', {
    'data-class': c.name, title: c.description,
    onclick: (ev) => { v.pickClass(c.name); if (ev.detail > 0) ev.currentTarget.blur(); },
  }, el('kbd', {}, String(i + 1)), c.name);
  return el('div', { class: 'card', id: 'snap-head' },
    el('strong', {}, `${meta.device_id} · seq ${meta.seq}`), ' · ', fmtTime(meta.trigger_time), ' · ',
    `${meta.detector} score ${Number(meta.score).toFixed(3)}`, ' · ', `${meta.sample_rate} Hz`,
    meta.demo ? el('span', { class: 'pill demo', title: 'demo history (make run), not the live fleet' }, 'demo') : null,
    canOperate()
      ? el('div', { class: 'classes', id: 'classes', 'data-equipment-type': equipmentType || '' },
        el('span', { class: 'hint' }, equipmentType ? `classes of ${equipmentType}: ` : 'all classes (no equipment type): '),
        v.classes.map(classButton), classChooser(v))
      : el('p', { class: 'hint', id: 'label-read-only' }, `Read only: labeling ${OPERATE_NOTE}.`),
    el('div', { class: 'hint' }, canOperate() ? KEYS_HINT : READ_KEYS_HINT),
    el('div', { id: 'status' }));
}

// Metadata, labels, context and the whole snapshot's samples at once.
function load(id, px) {
  return Promise.all([api('GET', `/api/v1/snapshots/${id}`), api('GET', `/api/v1/snapshots/${id}/labels`),
    api('GET', `/api/v1/snapshots/${id}/context?demo=${demoParam()}`), fetchSamples(id, `px=${px}`)]);
}

// The page's frame, laid out first so that the plot width (hence px) is
// known before anything is asked for.
function layFrame() {
  const f = {
    plotsBox: el('div', { class: 'plots' }), overviewBox: el('div', { class: 'overview' }),
    sideBox: el('div', { class: 'side' }), headBox: el('div', { class: 'card' }, el('span', { class: 'muted' }, 'Loading…')),
  };
  showPage(f.headBox, el('div', { class: 'snap' }, el('div', { class: 'card' }, f.overviewBox, f.plotsBox), f.sideBox));
  f.width = () => plotWidth(f.plotsBox.clientWidth);
  return f;
}

// Laid out and asked for before the session has answered (app.js, on a
// page opened on snapshot id): showSnapshot takes it over when its frame is
// still the one shown.
let early = null;
export function preloadSnapshot(id) {
  const frame = layFrame();
  const answers = load(id, firstPx(frame.width()));
  answers.catch(() => {});    // not signed in after all: the login page shows, nothing waits
  early = { id, frame, answers };
}

// The classes offered for a snapshot: the untyped ones and those of its
// equipment type and the type's ancestors (taxonomy.js), all of them when
// the device has no type.
async function classesFor(equipmentType) {
  if (!equipmentType) return session.classes;
  try {
    return classesForType(session.classes, (await api('GET', '/api/v1/taxonomy')).types, equipmentType);
  } catch (e) { return session.classes; }
}

// A snapshot that cannot be shown (deleted, a mistyped id): what the server
// said, and the way back to the queue.
function showSnapshotError(id, e) {
  showPage(el('div', { class: 'card', id: 'snapshot-error' },
    el('p', { class: 'error' }, `Snapshot #${id}: ${e.message}${e.status === 404 ? ' (deleted, or a mistyped id)' : ''}.`),
    el('p', {}, el('a', { href: '#/queue', id: 'snapshot-back' }, 'Back to the queue'))));
}

export async function showSnapshot(id) {
  performance.mark('snapshot-nav', { detail: { id } });
  crumbs(`Snapshot #${id}`);
  // Everything at once: one round trip to a drawn snapshot (already on its
  // way when the page opened here), and the label classes if they are
  // still on theirs (session.js).
  let frame, answers;
  if (early && early.id === id && early.frame.plotsBox.isConnected) ({ frame, answers } = early);
  early = null;
  if (!frame) {
    frame = layFrame();
    answers = load(id, firstPx(frame.width()));
  }
  const { plotsBox, overviewBox, sideBox, headBox, width } = frame;
  let meta, labels, ctx, full, classes;
  try {
    [[meta, labels, ctx, full]] = await Promise.all([answers, session.classesLoaded]);
    performance.mark('snapshot-fetched', { detail: { id } });
    classes = await classesFor(ctx.equipment_type);
  } catch (e) {
    if (location.hash.startsWith(snapshotHash(id))) showSnapshotError(id, e);
    return;
  }
  if (!location.hash.startsWith(snapshotHash(id))) return;     // navigated away meanwhile
  for (const [i, c] of full.channels.entries()) Object.assign(c, meta.channels[i] || {});
  const v = new SnapshotView(id, meta, labels.items, plotsBox, overviewBox);
  v.classes = classes;
  current = v;
  const side = sidePanel(v, ctx);
  headBox.replaceWith(snapshotHead(v, meta, ctx.equipment_type));
  sideBox.replaceWith(side);
  side.prepend(alertCard(id));
  side.insertBefore(weakLabelCard(id), side.children[1] || null);
  v.onLabelsChanged = () => { const c = document.getElementById('weak-card'); if (c) c.replaceWith(weakLabelCard(id)); };
  v.build(full, width());
  v.spectra = new SpectrumPanel(v, ctx);
  plotsBox.after(v.spectra.card);     // under the waveforms, as wide as they are
  // uPlot draws a new plot in a microtask: let it, so that the mark below
  // follows the drawing.
  await Promise.resolve();
  performance.mark('snapshot-drawn', { detail: { id } });
  if (v.closed) return;
  v.listen();
  performance.mark('snapshot-interactive', { detail: { id } });
  performance.measure('snapshot-ready', 'snapshot-nav', 'snapshot-interactive');
  v.followSpectra(0);
}
