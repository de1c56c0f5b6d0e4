// snap-view.js - one open snapshot: the window shown, the channels
// selected, the span being labeled and the class picked, and what mouse and
// keys do to them.  Drawing is snap-plots.js, the side panel snap-side.js,
// the saved labels snap-labels.js; the rules they follow are the pure
// modules range.js, spans.js and keys.js.
import { fetchSamples } from './http.js';
import { byId } from './dom.js';
import { fmtSpan } from './format.js';
import { session, canOperate, OPERATE_NOTE } from './session.js';
import { moveSpanEdge, followEdge } from './spans.js';
import { clampView, zoomView, panView, viewPx, viewQuery } from './range.js';
import { channelData } from './series.js';
import { makeSpan, spanChannels, newLabelBody } from './spans.js';
import { keyAction } from './keys.js';
import { latestOnly } from './latest.js';
import { overviewPlot, channelPlots, yLockBar } from './snap-plots.js';
import { LabelList } from './snap-labels.js';
import { readLabelForm, showFormSpan, showFormClass, showLabelList } from './snap-side.js';
import { nextUnlabeled } from './page-queue.js';

// The spectra follow the window once it has rested this long: they cost
// the server two FFTs of the window for the channel shown (tens of ms for a
// million samples), CPU the next window's samples would share.  (The server
// computes them on a thread of their own, so they no longer hold up the
// connection thread those samples may be asked on.)
const SPECTRA_AFTER_MS = 300;

// Whether the waveforms' y scales are locked: on unless the operator
// turned it off, kept in localStorage like the demo switch.
const YLOCK_KEY = 'precursor.waveYLock';
const yLockSaved = () => { try { return localStorage.getItem(YLOCK_KEY) !== '0'; } catch { return true; } };
const saveYLock = (on) => { try { localStorage.setItem(YLOCK_KEY, on ? '1' : '0'); } catch { /* this page only */ } };

// keys.js actions -> what they do to view v.
const RUN = {
  class: (v, i) => { const c = v.classes[i]; if (c) v.pickClass(c.name); },
  edge: (v, a) => v.moveEdge(a.edge, a.f),
  save: (v) => v.save(),
  'mark-view': (v) => v.mark(v.view[0], v.view[1], 0),
  clear: (v) => v.clearSpan(),
  pan: (v, f) => v.setView(...panView(v.view, f)),
  zoom: (v, f) => v.setView(...zoomView(v.view, f)),
  whole: (v) => v.setView(0, v.duration),
  next: (v) => v.next(),
  undo: (v) => v.undoLast(),
  'find-class': () => { const f = byId('class-find'); if (f) { f.focus(); f.select(); } },
};

export class SnapshotView {
  constructor(id, meta, labels, plotsBox, overviewBox) {
    Object.assign(this, { id, meta, plotsBox, overviewBox });
    this.labels = new LabelList(id, labels);
    this.plots = [];
    this.overview = null;
    this.pending = null;        // { start_s, end_s } being labeled
    this.klass = null;
    // the window's samples and its spectra, one request of each at a time
    // for the newest window (latest.js)
    this.askSamples = latestOnly((moved) => this.fetchView(moved));
    this.askSpectra = latestOnly(() => (this.closed || !this.spectra ? null : this.spectra.update()));
    this.closed = false;
    this.onKey = (e) => this.key(e);
    this.classes = session.classes;   // page-snapshot.js sets the equipment type's
    this.spectra = null;              // the spectra panel (snap-spectrum.js)
    this.yLocked = yLockSaved();
    this.onLabelsChanged = null;      // page-snapshot.js: the Rules card's "in force" follows
  }

  // full: the first samples answer, over the whole snapshot.
  build(full, width) {
    this.duration = full.samples / full.sample_rate;
    this.trigger = full.trigger_s;
    this.view = [0, this.duration];
    this.selected = new Set(full.channels.map((_, i) => i));
    this.overview = overviewPlot(this, full, width, this.overviewBox);
    this.yBar = yLockBar(this, full);
    this.plotsBox.append(this.yBar.box);
    this.plots = channelPlots(this, full, width, this.plotsBox);
    this.showLabels();
  }

  // Keys are taken only once the waveforms are drawn.
  listen() { document.addEventListener('keydown', this.onKey); }

  destroy() {
    this.closed = true;
    clearTimeout(this.spectraTimer);
    document.removeEventListener('keydown', this.onKey);
    this.plots.forEach((p) => p.destroy());
    if (this.overview) this.overview.destroy();
    if (this.spectra) this.spectra.destroy();
  }

  // The window's samples are asked for at once, with one request in flight:
  // keys that arrive while it is (a held key repeats every 30 ms or so)
  // only move the window, and the newest window is asked for when the
  // answer lands; that answer, now stale, is not drawn.
  setView(a, b) {
    this.view = clampView(a, b, this.duration, this.meta.sample_rate);
    this.overview.redraw(false);
    clearTimeout(this.spectraTimer);
    this.askSamples();
  }

  async fetchView(moved) {
    const [a, b] = this.view;
    const fetchStart = performance.now();
    const px = viewPx(this.plots[0].bbox.width, devicePixelRatio);
    let s;
    try {
      s = await fetchSamples(this.id, viewQuery(this.view, px), this.meta);
    } catch (e) {
      if (!this.closed) this.status(e.message, true);
      return;
    }
    if (moved() || this.closed) return;
    const fetchEnd = performance.now();
    // batch: drawn now, not in a microtask, so the mark below follows the draw
    this.plots.forEach((p, ch) => p.batch(() => { p.setData(channelData(s, ch), false); p.setScale('x', { min: a, max: b }); }));
    // bench/ui.cjs times zoom and pan from the key to this mark.
    performance.mark('view-drawn', { detail: { fetchStart, fetchEnd } });
    const what = s.mode === 'raw' ? 'raw samples' : 'min/max per pixel';
    this.status(`view ${fmtSpan(a, b, 3)} · ${what} (${s.i1 - s.i0} samples)`);
    this.followSpectra();
  }

  // The spectra of the window once it has rested (after ms), one request at
  // a time: a window that moved while they were computed is asked for when
  // they land.
  followSpectra(after = SPECTRA_AFTER_MS) {
    clearTimeout(this.spectraTimer);
    this.spectraTimer = setTimeout(this.askSpectra, after);
  }

  // Lock or free the waveforms' y scales: setting x again has uPlot range y
  // anew (snap-plots.js yRange reads yLocked).
  setYLock(on) {
    this.yLocked = on;
    saveYLock(on);
    this.yBar.say();
    this.plots.forEach((p) => p.setScale('x', { min: p.scales.x.min, max: p.scales.x.max }));
    this.status(on ? 'y scales locked: one per unit, over the whole snapshot' : 'y scales fit the window shown');
  }

  // [ ] { }: move the pending span's start or end edge by a fraction of the
  // view's width, past the view's edges if need be (the view follows, so a
  // span can be longer than any one view).  With no span yet, the view is
  // the span.
  moveEdge(edge, f) {
    const base = this.pending || { start_s: this.view[0], end_s: this.view[1] };
    const span = moveSpanEdge(base, edge, f * (this.view[1] - this.view[0]), this.duration);
    if (!span) return;
    this.pending = span;
    const [a, b] = followEdge(this.view, edge === 'start' ? span.start_s : span.end_s);
    if (a !== this.view[0] || b !== this.view[1]) this.setView(a, b);
    this.redraw();
    showFormSpan(this.pending);
    this.status(`span ${fmtSpan(span.start_s, span.end_s, 4)}: [ ] move its start, { } its end, Enter saves`);
  }

  redraw() {
    this.plots.forEach((p) => p.redraw(false));
    if (this.overview) this.overview.redraw(false);
  }

  // A span dragged on channel ch (or the window, by key) becomes the
  // pending one.
  mark(a, b, ch) {
    const span = makeSpan(a, b, this.duration);
    if (!span) return;
    this.pending = span;
    this.selected = spanChannels(this.selected, ch);
    this.redraw();
    showFormSpan(this.pending);
    const chans = [...this.selected].join(', ');
    this.status(`span ${fmtSpan(span.start_s, span.end_s, 4)} on channels ${chans}: pick a class (1-9, or c), Enter saves`);
  }

  clearSpan() {
    this.pending = null;
    this.redraw();
    this.status('span cleared');
  }

  pickClass(name) {
    this.klass = name;
    document.querySelectorAll('#classes button').forEach((b) => b.classList.toggle('sel', b.dataset.class === name));
    showFormClass(name);
  }

  status(msg, err) {
    const s = byId('status');
    if (s) { s.textContent = msg; s.className = err ? 'error' : 'muted'; }
  }

  showLabels() {
    showLabelList(this.labels.items, (l) => this.remove(l));
  }

  async save() {
    if (!canOperate()) return this.status(`Read only: labeling ${OPERATE_NOTE}`, true);
    if (!this.pending) return this.status('drag on a waveform to mark a span first', true);
    if (!this.klass) return this.status('pick a class first (keys 1-9, or c and its name or number)', true);
    const body = newLabelBody(this.pending, this.selected, this.klass, readLabelForm());
    try {
      const l = await this.labels.create(body);
      this.pending = null;
      this.status(`saved label #${l.id} (${l.class})`);
      this.showLabels();
      if (this.onLabelsChanged) this.onLabelsChanged();
      this.redraw();
    } catch (e) { this.status(e.message, true); }
  }

  async remove(l) {
    try {
      await this.labels.remove(l);
      this.showLabels();
      if (this.onLabelsChanged) this.onLabelsChanged();
      this.redraw();
      this.status(`deleted label #${l.id} (u undoes)`);
    } catch (e) { this.status(e.message, true); }
  }

  async undoLast() {
    try {
      const u = await this.labels.undoLast();
      if (!u) return this.status('nothing to undo');
      this.showLabels();
      if (this.onLabelsChanged) this.onLabelsChanged();
      this.redraw();
      this.status(`undid ${u.op} of a ${u.label.class} label`);
    } catch (e) { this.status(e.message, true); }
  }

  next() { return nextUnlabeled(this.id); }

  // A focused form control keeps its own keys (keys.js): the slider its
  // arrows, a text field everything but Escape.
  key(e) {
    const t = e.target;
    const a = keyAction({
      key: e.key, ctrlKey: e.ctrlKey, metaKey: e.metaKey, altKey: e.altKey,
      tagName: t && t.tagName, type: t && t.type,
    });
    if (!a) return;
    if (a.action === 'blur') { t.blur(); return; }
    e.preventDefault();
    RUN[a.action](this, a.arg);
  }
}
