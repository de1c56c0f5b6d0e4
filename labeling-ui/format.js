// format.js - how numbers and times read on the pages.  Pure: no DOM.

// An API timestamp in the reader's locale; '' when there is none.
export const fmtTime = (s) => (s ? new Date(s).toLocaleString() : '');

// A share 0..1 as a percentage; '—' when unknown.
export const pct = (v) => (v === null || v === undefined ? '—' : `${(100 * v).toFixed(1)} %`);

// A span in seconds, e.g. "0.1250–0.5000 s"; sep goes between the bounds.
export const fmtSpan = (a, b, digits, sep = '–') => `${a.toFixed(digits)}${sep}${b.toFixed(digits)} s`;


// Any value as text for a table cell: a dash when there is none, so no page
// ever shows "null" or "undefined".
export const dash = (v) => (v === null || v === undefined || v === '' ? '—' : String(v));

// A ratio with its support, "0.83 (n = 24)": how many cases it rests on.
export const withSupport = (num, den) => (den > 0 ? `${(num / den).toFixed(2)} (n = ${den})` : '— (n = 0)');
