// snap-view.js - one open snapshot: the window shown, the channels
// selected, the span being labeled and the class picked, and what mouse and
// keys do to them.  Drawing is snap-plots.js, the side panel snap-side.js,
// the saved labels snap-labels.js; the rules they follow are the pure
// modules range.js, spans.js and keys.js.
import { fetchSamples } from './http.js';
import { byId } from './dom.js';
import { fmtSpan } from './format.js';
import { session } from './session.js';
import { moveSpanEdge, followEdge } from './spans.js';
import { clampView, zoomView, panView, viewPx, viewQuery } from './range.js';
import { channelData } from './series.js';
import { makeSpan, spanChannels, newLabelBody } from './spans.js';
import { keyAction, isTextField } from './keys.js';
import { overviewPlot, channelPlots } from './snap-plots.js';
import { LabelList } from './snap-labels.js';
import { readLabelForm, showFormSpan, showFormClass, showLabelList } from './snap-side.js';
import { nextUnlabeled } from './page-queue.js';

// A new window is fetched once the keys or drags that move it pause.
const FETCH_AFTER_MS = 30;

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
};

export class SnapshotView {
  constructor(id, meta, labels, plotsBox, overviewBox) {
    Object.assign(this, { id, meta, plotsBox, overviewBox });
    this.labels = new LabelList(id, labels);
    this.plots = [];
    this.overview = null;
    this.pending = null;        // { start_s, end_s } being labeled
    this.klass = null;
    this.fetchSeq = 0;          // the newest window asked for: older answers are dropped
    this.closed = false;
    this.onKey = (e) => this.key(e);
    this.classes = session.classes;   // page-snapshot.js sets the equipment type's
    this.spectra = null;              // the spectra panel (snap-spectrum.js)
  }

  // full: the first samples answer, over the whole snapshot.
  build(full, width) {
    this.duration = full.samples / full.sample_rate;
    this.trigger = full.trigger_s;
    this.view = [0, this.duration];
    this.selected = new Set(full.channels.map((_, i) => i));
    this.overview = overviewPlot(this, full, width, this.overviewBox);
    this.plots = channelPlots(this, full, width, this.plotsBox);
    this.showLabels();
  }

  // Keys are taken only once the waveforms are drawn.
  listen() { document.addEventListener('keydown', this.onKey); }

  destroy() {
    this.closed = true;
    clearTimeout(this.fetchTimer);
    document.removeEventListener('keydown', this.onKey);
    this.plots.forEach((p) => p.destroy());
    if (this.overview) this.overview.destroy();
    if (this.spectra) this.spectra.destroy();
  }

  setView(a, b) {
    this.view = clampView(a, b, this.duration, this.meta.sample_rate);
    this.overview.redraw(false);
    clearTimeout(this.fetchTimer);
    this.fetchTimer = setTimeout(() => this.fetchView(), FETCH_AFTER_MS);
  }

  async fetchView() {
    const seq = ++this.fetchSeq;
    const [a, b] = this.view;
    const fetchStart = performance.now();
    const px = viewPx(this.plots[0].bbox.width, devicePixelRatio);
    const s = await fetchSamples(this.id, viewQuery(this.view, px), this.meta);
    if (seq !== this.fetchSeq || this.closed) return;
    this.plots.forEach((p, ch) => { p.setData(channelData(s, ch), false); p.setScale('x', { min: a, max: b }); });
    // bench/ui.cjs times zoom and pan from the key to this mark.
    performance.mark('view-drawn', { detail: { fetchStart } });
    const what = s.mode === 'raw' ? 'raw samples' : 'min/max per pixel';
    this.status(`view ${fmtSpan(a, b, 3)} · ${what} (${s.i1 - s.i0} samples)`);
    if (this.spectra) this.spectra.update();
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
    this.status(`span ${fmtSpan(span.start_s, span.end_s, 4)} on channels ${chans}: pick a class (1-9), Enter saves`);
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
    if (!this.pending) return this.status('drag on a waveform to mark a span first', true);
    if (!this.klass) return this.status('pick a class first (keys 1-9)', true);
    const body = newLabelBody(this.pending, this.selected, this.klass, readLabelForm());
    try {
      const l = await this.labels.create(body);
      this.pending = null;
      this.status(`saved label #${l.id} (${l.class})`);
      this.showLabels();
      this.redraw();
    } catch (e) { this.status(e.message, true); }
  }

  async remove(l) {
    try {
      await this.labels.remove(l);
      this.showLabels();
      this.redraw();
      this.status(`deleted label #${l.id} (u undoes)`);
    } catch (e) { this.status(e.message, true); }
  }

  async undoLast() {
    try {
      const u = await this.labels.undoLast();
      if (!u) return this.status('nothing to undo');
      this.showLabels();
      this.redraw();
      this.status(`undid ${u.op} of a ${u.label.class} label`);
    } catch (e) { this.status(e.message, true); }
  }

  next() { return nextUnlabeled(this.id); }

  key(e) {
    const t = e.target;
    const a = keyAction({
      key: e.key, ctrlKey: e.ctrlKey, metaKey: e.metaKey, altKey: e.altKey,
      inText: !!t && isTextField(t.tagName, t.type),
    });
    if (!a) return;
    if (a.action === 'blur') { t.blur(); return; }
    e.preventDefault();
    RUN[a.action](this, a.arg);
  }
}
