// snap-spectrum.js - the snapshot view's spectra, what a vibration analyst
// names a fault by: for one channel at a time, the amplitude spectrum and
// the envelope spectrum of the span in view (GET /snapshots/{id}/spectrum,
// computed by the server), beside the same of a normal snapshot of the same
// machine (context.reference) or another picked (a labeled one of its type,
// a recent one), each row on one locked y scale so that
// "bigger" means bigger.  Markers: shaft harmonics and bearing defect
// frequencies when the asset's or type's kinematics are known.  Drawn with
// uPlot; the waveforms stay snap-plots.js's.
import uPlot from './uPlot.esm.js';
import { api } from './http.js';
import { el } from './dom.js';
import { fmtTime } from './format.js';
import { snapshotHash } from './router.js';
import { spectrumSeries, envelopeMaxHz, sharedMax } from './spectrum.js';

const HEIGHT = 170;
const MIN_SAMPLES = 64;
const MARK_COLORS = { shaft: '#6b7280', bearing: '#b45309' };

// uPlot plugin: a dashed vertical line and its name at every marker in range.
function markersPlugin(markers) {
  return {
    hooks: {
      draw: [(u) => {
        const { ctx } = u;
        const { left, top, width, height } = u.bbox;
        const [lo, hi] = [u.scales.x.min, u.scales.x.max];
        ctx.save();
        ctx.font = `${10 * devicePixelRatio}px sans-serif`;
        ctx.setLineDash([4 * devicePixelRatio, 3 * devicePixelRatio]);
        for (const m of markers) {
          if (m.hz < lo || m.hz > hi) continue;
          const x = Math.round(u.valToPos(m.hz, 'x', true));
          ctx.strokeStyle = MARK_COLORS[m.kind] || '#6b7280';
          ctx.fillStyle = ctx.strokeStyle;
          ctx.beginPath();
          ctx.moveTo(x, top);
          ctx.lineTo(x, top + height);
          ctx.stroke();
          ctx.fillText(m.name, Math.min(x + 2 * devicePixelRatio, left + width - 30 * devicePixelRatio), top + 11 * devicePixelRatio);
        }
        ctx.restore();
      }],
    },
  };
}

function plot(box, title, data, xMax, yMax, markers, width, unit) {
  box.dataset.ymax = String(yMax);     // the row's shared top, readable by tests
  box.dataset.markers = markers.filter((m) => m.hz <= xMax).map((m) => m.name).join(' ');
  const opts = {
    title, width, height: HEIGHT,
    plugins: [markersPlugin(markers)],
    scales: { x: { time: false, range: [0, xMax] }, y: { range: [0, yMax > 0 ? yMax * 1.05 : 1] } },
    axes: [{ label: 'Hz' }, { label: unit, size: 60 }],
    series: [{ label: 'Hz' }, { label: 'amplitude', stroke: '#2563eb', width: 1, points: { show: false } }],
    legend: { show: false },
  };
  return new uPlot(opts, data, box);
}

// The card under the waveforms.  view: the SnapshotView (its id, meta and
// the span it shows); ctx: GET /snapshots/{id}/context.
export class SpectrumPanel {
  constructor(view, ctx) {
    this.view = view;
    this.ref = ctx && ctx.reference ? { ...ctx.reference, normal: true } : null;
    this.refBox = el('div', { class: 'hint', id: 'spectra-ref' });
    this.channel = 0;
    this.plots = [];
    this.locked = null;           // [yMaxSpectrum, yMaxEnvelope] while the y scale is locked
    this.seq = 0;
    this.box = el('div', { class: 'spectra', id: 'spectra' });
    this.status = el('div', { class: 'hint', id: 'spectra-status' });
    const chSel = el('select', { id: 'spectra-channel', onchange: (ev) => { this.channel = Number(ev.target.value); this.update(); } },
      view.meta.channels.map((c, i) => el('option', { value: i }, `${c.name} [${c.unit}]`)));
    const lock = el('input', { type: 'checkbox', id: 'spectra-lock',
      onchange: (ev) => { this.locked = ev.target.checked ? this.lastMax : null; this.update(); } });
    this.card = el('div', { class: 'spectra-panel', id: 'spectra-card' },
      el('h3', {}, 'Spectra of the span in view'),
      el('div', { class: 'filters' },
        el('label', {}, 'Channel', chSel),
        el('label', { title: 'what the right-hand plots show' }, 'Compare with', this.compareSelect(ctx)),
        el('label', { title: 'keep the y scales as they are while panning, zooming or changing channel' }, 'Lock y scale', lock),
        el('button', { id: 'spectra-refresh', onclick: () => this.update() }, 'Spectra of this view')),
      this.refBox, this.box, this.status);
    this.refLine();
  }

  // The normal reference first; then labeled snapshots of this machine and
  // its equipment type, the newest few of each class (what a fault of each
  // kind looks like here); then the same device's recent snapshots and the
  // same type's on other devices (GET .../context).
  compareSelect(ctx) {
    const groups = [];
    const notRef = (c) => !this.ref || c.id !== this.ref.id;
    if (this.ref) groups.push(['normal reference', [[this.ref, `normal #${this.ref.id} (${this.ref.same_device ? 'same device' : this.ref.device_id})${this.ref.demo ? ' · demo' : ''}`]]]);
    const labeled = (ctx.labeled || []).filter(notRef).map((c) => [{ ...c, labeled: c.class },
      `${c.class} · #${c.id} ${c.device_id}${c.same_device ? ' (same device)' : ''} · ${fmtTime(c.trigger_time)}${c.demo ? ' · demo' : ''}`]);
    if (labeled.length) groups.push([`labeled, newest of each class (${ctx.equipment_type || 'this device'})`, labeled]);
    for (const [list, what] of [[ctx.device || [], 'same device'], [ctx.equipment || [], 'same type']]) {
      const opts = list.filter(notRef).map((c) => [{ ...c, same_device: what === 'same device' },
        `#${c.id} ${c.device_id} (${what}${c.classes && c.classes.length ? `: ${c.classes.join(', ')}` : ''})`]);
      if (opts.length) groups.push([`recent, ${what}`, opts]);
    }
    this.choices = [null];
    const optgroups = groups.map(([label, opts]) => el('optgroup', { label }, opts.map(([c, text]) => {
      this.choices.push(c);
      return el('option', { value: this.choices.length - 1, selected: c === this.ref }, text);
    })));
    return el('select', {
      id: 'spectra-compare',
      onchange: (ev) => { this.ref = this.choices[Number(ev.target.value)]; this.refLine(); this.update(); },
    }, el('option', { value: 0 }, 'nothing'), optgroups);
  }

  refLine() {
    if (!this.ref) {
      this.refBox.replaceChildren('No snapshot of this machine or type is labeled normal yet: pick one to compare with above.');
      return;
    }
    const what = this.ref.normal ? 'the newest snapshot labeled normal on '
      : this.ref.labeled ? `a snapshot labeled ${this.ref.labeled} on ` : 'a snapshot of ';
    const where = (this.ref.same_device ? 'the same device' : `the same equipment type (${this.ref.device_id})`)
      + (this.ref.demo ? ', from the demo history' : '');
    this.refBox.replaceChildren('Right: ', what, where, ', ',
      el('a', { href: snapshotHash(this.ref.id) }, `#${this.ref.id}`), ` (${fmtTime(this.ref.trigger_time)}), whole snapshot.`);
  }

  destroy() {
    this.seq++;
    this.plots.forEach((p) => p.destroy());
    this.plots = [];
  }

  async update() {
    const seq = ++this.seq;
    const [a, b] = this.view.view;
    // A spectrum of a handful of samples says nothing (the server refuses
    // fewer than 16): keep the last one and say why.
    if ((b - a) * this.view.meta.sample_rate < MIN_SAMPLES) {
      this.status.className = 'hint';
      this.status.textContent = `the view holds fewer than ${MIN_SAMPLES} samples: zoom out for its spectra`;
      return;
    }
    // The channel shown only: the server's two FFTs of the span per channel
    // are most of what the spectra cost.
    const channel = `&channel=${encodeURIComponent(this.view.meta.channels[this.channel].name)}`;
    const q = `from_s=${a}&to_s=${b}&bins=1024${channel}`;
    this.status.textContent = 'computing spectra…';
    let cur, ref = null;
    try {
      [cur, ref] = await Promise.all([api('GET', `/api/v1/snapshots/${this.view.id}/spectrum?${q}`),
        this.ref ? api('GET', `/api/v1/snapshots/${this.ref.id}/spectrum?bins=1024${channel}`) : null]);
    } catch (e) {
      if (seq === this.seq) { this.status.textContent = e.message; this.status.className = 'error'; }
      return;
    }
    if (seq !== this.seq || this.view.closed) return;
    this.draw(cur, ref);
  }

  draw(cur, ref) {
    this.plots.forEach((p) => p.destroy());
    this.plots = [];
    const ch = cur.channels[0];
    if (!ch) { this.status.textContent = 'no spectra for this channel'; return; }
    const rch = ref ? ref.channels.find((c) => c.name === ch.name) : null;
    const kin = cur.kinematics || {};
    const markers = kin.markers || [];
    const envMax = envelopeMaxHz(markers, cur.sample_rate);
    const spec = spectrumSeries(ch.spectrum, cur.bin_hz);
    const env = spectrumSeries(ch.envelope, cur.bin_hz);
    const rspec = rch ? spectrumSeries(rch.spectrum, ref.bin_hz) : null;
    const renv = rch ? spectrumSeries(rch.envelope, ref.bin_hz) : null;
    const nyq = cur.sample_rate / 2;
    // One y scale per row, this snapshot and the reference alike.
    this.lastMax = [sharedMax([spec, rspec], nyq), sharedMax([env, renv], envMax)];
    const [ys, ye] = this.locked || this.lastMax;
    const cols = rch ? 2 : 1;
    const width = Math.max(280, Math.floor((this.box.clientWidth || 900) / cols) - 12);
    const cell = () => el('div', { class: 'spectrum-cell' });
    const cells = [cell(), cell(), cell(), cell()].slice(0, 2 * cols);
    this.box.replaceChildren(...cells);
    this.box.style.gridTemplateColumns = `repeat(${cols}, 1fr)`;
    this.plots.push(plot(cells[0], `spectrum · ${ch.name} · this snapshot`, spec, nyq, ys, markers, width, ch.unit));
    const refName = `${this.ref && this.ref.normal ? 'normal ' : this.ref && this.ref.labeled ? `${this.ref.labeled} ` : ''}#${this.ref ? this.ref.id : ''}`;
    if (rch) this.plots.push(plot(cells[1], `spectrum · ${ch.name} · ${refName}`, rspec, nyq, ys, markers, width, ch.unit));
    this.plots.push(plot(cells[cols], `envelope spectrum · ${cur.envelope_band_hz.map((x) => Math.round(x)).join('–')} Hz band`, env, envMax, ye, markers, width, ch.unit));
    if (rch) this.plots.push(plot(cells[cols + 1], `envelope spectrum · ${refName}`, renv, envMax, ye, markers, width, ch.unit));
    const known = kin.shaft_hz
      ? `shaft ${kin.shaft_hz} Hz (from the ${kin.shaft_from === 'asset' ? 'asset' : 'equipment type'})` +
        (kin.bearing ? `, bearing ${kin.bearing.balls} × ${kin.bearing.ball_mm} mm on ${kin.bearing.pitch_mm} mm` : ', no bearing geometry')
      : 'no shaft speed or bearing geometry known for this machine: set them on its asset or equipment type (Classes page)';
    this.status.className = 'hint';
    this.status.textContent = `span ${cur.from_s.toFixed(3)}–${cur.to_s.toFixed(3)} s · ${known}` +
      (this.locked ? ' · y scale locked' : '');
  }
}
