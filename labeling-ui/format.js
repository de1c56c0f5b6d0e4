// format.js - how numbers and times read on the pages.  Pure: no DOM.

// An API timestamp in the reader's locale; '' when there is none.
export const fmtTime = (s) => (s ? new Date(s).toLocaleString() : '');

// A share 0..1 as a percentage; '—' when unknown.
export const pct = (v) => (v === null || v === undefined ? '—' : `${(100 * v).toFixed(1)} %`);

// A span in seconds, e.g. "0.1250–0.5000 s"; sep goes between the bounds.
export const fmtSpan = (a, b, digits, sep = '–') => `${a.toFixed(digits)}${sep}${b.toFixed(digits)} s`;

