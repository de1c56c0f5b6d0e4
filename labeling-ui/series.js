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
