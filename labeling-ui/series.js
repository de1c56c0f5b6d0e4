// series.js - uPlot data from a samples answer (samples.js or the JSON
// form).  Every plot draws a band between two series, max and min per
// column; raw samples give the same values twice, so one drawing path
// serves both modes.  Pure: no DOM.

// [t, max, min] for channel ch.
export function channelData(s, ch) {
  const c = s.channels[ch];
  return [s.t, c.values || c.max, c.values || c.min];
}

// The overview: every channel scaled to its own range and stacked (channel
// i between i and i + 0.9), so a large-valued channel does not flatten the
// others.  [t, max0, min0, max1, min1, ...].
export function stackedData(s) {
  const d = [s.t];
  s.channels.forEach((c, i) => {
    const hi = c.values || c.max, lo = c.values || c.min;
    const top = Math.max(...hi), bot = Math.min(...lo), k = top > bot ? 1 / (top - bot) : 0;
    const place = (v) => i + (v - bot) * k * 0.9;
    d.push(hi.map(place), lo.map(place));
  });
  return d;
}

// The locked y range of each channel over the whole snapshot (s: its first
// answer, channels carrying their unit), shared by the channels of one
// unit so that, say, the axis that vibrates most is visibly the tallest,
// and padded by pad of the span on both sides.  [[lo, hi], ...] by channel;
// a flat unit gets a span of 1 around its value.
export function lockedRanges(s, pad = 0.05) {
  const byUnit = new Map();
  s.channels.forEach((c) => {
    const hi = c.values || c.max, lo = c.values || c.min;
    const r = byUnit.get(c.unit) || [Infinity, -Infinity];
    for (let i = 0; i < hi.length; i++) {
      if (lo[i] < r[0]) r[0] = lo[i];
      if (hi[i] > r[1]) r[1] = hi[i];
    }
    byUnit.set(c.unit, r);
  });
  return s.channels.map((c) => {
    const [lo, hi] = byUnit.get(c.unit);
    if (!(lo <= hi)) return [-1, 1];
    const m = hi > lo ? (hi - lo) * pad : 0.5;
    return [lo - m, hi + m];
  });
}
