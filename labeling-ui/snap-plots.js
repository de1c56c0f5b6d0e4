// snap-plots.js - the snapshot view's uPlot charts: an overview of every
// channel over the whole snapshot (drag there picks the window), one plot
// per channel (drag there marks a span), and what is drawn over them:
// saved labels, the pending span, the window and the trigger point.  The
// channel plots' y scales are locked by default (each channel on the range
// its unit spans over the whole snapshot, series.js lockedRanges), so that
// zooming into noise does not make it look like a fault; unlocked, each
// plot fits the window shown.
import uPlot from './uPlot.esm.js';
import { el } from './dom.js';
import { session } from './session.js';
import { channelData, stackedData, lockedRanges } from './series.js';

export const COLORS = ['#2563eb', '#dc2626', '#059669', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#65a30d'];
const color = (i) => COLORS[i % COLORS.length];
const OVERVIEW_HEIGHT = 70;
// Channel plots share about 520 px, each between these heights.
const PLOTS_HEIGHT = 520, PLOT_MIN = 90, PLOT_MAX = 150;
const MIN_DRAG_PX = 2;        // a narrower drag is a click

// A setSelect hook: a drag from t0 to t1 (seconds) goes to onDrag, and the
// selection box is cleared at once (the overlay draws what it meant).
const onSelect = (onDrag) => (u) => {
  if (u.select.width > MIN_DRAG_PX) {
    onDrag(u.posToVal(u.select.left, 'x'), u.posToVal(u.select.left + u.select.width, 'x'));
  }
  u.setSelect({ width: 0, height: 0 }, false);
};

export function overviewPlot(view, full, width, box) {
  const envelope = (c, i) => [{ stroke: color(i), width: 1 }, { stroke: color(i), width: 1 }];
  return new uPlot({
    width, height: OVERVIEW_HEIGHT, padding: [4, 24, 4, 55], legend: { show: false },
    cursor: { drag: { x: true, y: false, setScale: false }, points: { show: false } },
    scales: { x: { time: false } }, axes: [{ show: false }, { show: false }],
    series: [{}, ...full.channels.flatMap(envelope)],
    hooks: {
      setSelect: [onSelect((a, b) => view.setView(a, b))],
      draw: [(u) => drawOverlay(view, u, -1, true)],
    },
  }, stackedData(full), box);
}

// The channel's name and unit, with the checkbox that puts it in or out of
// the spans marked next.
function channelBox(view, c, ch) {
  const pick = (ev) => {
    if (ev.target.checked) view.selected.add(ch);
    else view.selected.delete(ch);
    view.redraw();
  };
  const check = el('input', { type: 'checkbox', checked: true, 'data-chsel': ch, onchange: pick });
  return el('div', { class: 'chan', 'data-ch': ch },
    el('span', { class: 'name' }, el('label', { class: 'chk' }, check), `${c.name} [${c.unit}]`,
      el('span', { class: 'ylock-mark', title: 'y scale locked: Lock y scale above' }, ' · y locked')));
}

// The bar over the channel plots: whether their y scales are locked, and
// to what (units and ranges); view.setYLock applies a change.
export function yLockBar(view, full) {
  const units = [...new Set(full.channels.map((c) => c.unit))];
  const check = el('input', { type: 'checkbox', id: 'wave-lock', checked: view.yLocked,
    onchange: (ev) => view.setYLock(ev.target.checked) });
  const what = el('span', { class: 'hint', id: 'wave-lock-what' });
  const say = () => what.replaceChildren(view.yLocked
    ? `each plot keeps the range of its unit over the whole snapshot while you zoom and pan (one scale per unit: ${units.join(', ')})`
    : 'each plot fits the window shown: compare shapes, not sizes');
  say();
  return { box: el('div', { class: 'ylock' }, el('label', { class: 'chk', title: 'the same y scale however far you zoom, shared by channels of one unit' }, check, 'Lock y scale'), what), say };
}

// A channel's y range: the locked one, or the data in view with a margin.
function yRange(view, ranges, ch) {
  return (u, lo, hi) => (view.yLocked ? ranges[ch] : uPlot.rangeNum(lo, hi, 0.1, true));
}

// The time axis's ticks with their unit: seconds from the snapshot's start
// (toFixed then + drops float noise such as 0.30000000000000004).
const secondsTicks = (u, splits) => splits.map((v) => `${+v.toFixed(6)} s`);

// One plot per channel, cursors in sync, the time axis under the last.
export function channelPlots(view, full, width, box) {
  const n = full.channels.length;
  const ranges = lockedRanges(full);
  const height = Math.max(PLOT_MIN, Math.min(PLOT_MAX, Math.floor(PLOTS_HEIGHT / n)));
  const sync = uPlot.sync('snap' + view.id);
  return full.channels.map((c, ch) => {
    const chanBox = channelBox(view, c, ch);
    box.append(chanBox);
    return new uPlot({
      width, height, padding: [6, 24, 0, 0], legend: { show: false },
      cursor: { sync: { key: sync.key }, drag: { x: true, y: false, setScale: false } },
      scales: { x: { time: false }, y: { range: yRange(view, ranges, ch) } },
      axes: [{ show: ch === n - 1, size: 30, values: secondsTicks }, { size: 55 }],
      series: [{}, { stroke: color(ch), width: 1 }, { stroke: color(ch), width: 1 }],
      bands: [{ series: [1, 2], fill: color(ch) + '55' }],
      hooks: {
        setSelect: [onSelect((a, b) => view.mark(a, b, ch))],
        draw: [(u) => drawOverlay(view, u, ch, false), (u) => showYScale(view, u, chanBox)],
      },
    }, channelData(full, ch), chanBox);
  });
}

// The y range drawn, on the channel's box (what the browser test reads),
// and a lock on its name while locked.
function showYScale(view, u, chanBox) {
  chanBox.dataset.ymin = String(u.scales.y.min);
  chanBox.dataset.ymax = String(u.scales.y.max);
  chanBox.dataset.ylocked = view.yLocked ? '1' : '0';
  chanBox.classList.toggle('locked', view.yLocked);
}

// Saved labels: on the overview all, on a channel those that include it.
function drawLabels(view, u, X, ch, isOverview) {
  const ctx = u.ctx, top = u.bbox.top, dpr = devicePixelRatio;
  for (const l of view.labels.items) {
    if (!isOverview && !l.channels.includes(ch)) continue;
    const i = session.classes.findIndex((c) => c.name === l.class);
    ctx.fillStyle = color(i + 3) + '33';
    ctx.fillRect(X(l.start_s), top, X(l.end_s) - X(l.start_s), u.bbox.height);
    if (isOverview) continue;
    // uPlot leaves the context right-aligned from its y axis: without
    // setting it, the class name ended at the span's start, over the axis.
    // At the plot's foot: its top left holds the channel's name.
    ctx.save();
    ctx.fillStyle = '#111';
    ctx.font = `${11 * dpr}px sans-serif`;
    ctx.textAlign = 'left';
    ctx.textBaseline = 'alphabetic';
    ctx.fillText(l.class, Math.max(X(l.start_s), u.bbox.left) + 3, top + u.bbox.height - 4 * dpr);
    ctx.restore();
  }
}

function drawOverlay(view, u, ch, isOverview) {
  const ctx = u.ctx, top = u.bbox.top, hgt = u.bbox.height;
  const X = (t) => u.valToPos(t, 'x', true);
  ctx.save();
  // Spans that begin or end outside the view are cut at the plot's edges,
  // not painted over the axis.
  ctx.beginPath();
  ctx.rect(u.bbox.left, top, u.bbox.width, hgt);
  ctx.clip();
  drawLabels(view, u, X, ch, isOverview);
  const p = view.pending;
  if (p && (isOverview || view.selected.has(ch))) {
    ctx.fillStyle = '#f59e0b55';
    ctx.fillRect(X(p.start_s), top, X(p.end_s) - X(p.start_s), hgt);
  }
  if (isOverview && view.view) {
    ctx.strokeStyle = '#111'; ctx.lineWidth = 2;
    ctx.strokeRect(X(view.view[0]), top + 1, X(view.view[1]) - X(view.view[0]), hgt - 2);
  }
  // the trigger point
  ctx.strokeStyle = '#ef4444'; ctx.lineWidth = 1.5 * devicePixelRatio; ctx.setLineDash([4, 3]);
  ctx.beginPath(); ctx.moveTo(X(view.trigger), top); ctx.lineTo(X(view.trigger), top + hgt); ctx.stroke();
  ctx.restore();
}
