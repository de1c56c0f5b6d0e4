// spectrum.js - the arithmetic behind the spectra panel (snap-spectrum.js):
// columns into uPlot series, how far the envelope spectrum's axis goes, and
// the one y scale two plots share.  Pure: no DOM.

// [freqs, values] for uPlot: column i starts at i * binHz.
export function spectrumSeries(values, binHz) {
  return [values.map((_, i) => i * binHz), values.slice()];
}

// The envelope spectrum's x range: bearing tones and their first harmonics
// live low, so show up to 3.5 times the highest marker (at least 200 Hz),
// never past Nyquist; 500 Hz when nothing is known.
export function envelopeMaxHz(markers, sampleRate) {
  const nyq = sampleRate / 2;
  const top = Math.max(0, ...(markers || []).map((m) => m.hz));
  return Math.min(nyq, top > 0 ? Math.max(200, 3.5 * top) : 500);
}

// The largest value of any of the series up to xMax Hz, skipping the first
// column (what is left of the mean): the shared top of a row of plots.
export function sharedMax(seriesList, xMax) {
  let m = 0;
  for (const s of seriesList) {
    if (!s) continue;
    const [f, v] = s;
    for (let i = 1; i < v.length && f[i] <= xMax; i++) if (v[i] > m) m = v[i];
  }
  return m;
}
