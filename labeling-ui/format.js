// format.js - how numbers and times read on the pages.  Pure: no DOM.

// An API timestamp in the reader's locale; '' when there is none.
export const fmtTime = (s) => (s ? new Date(s).toLocaleString() : '');

// A day the server counts in UTC (an operational metrics bucket's start)
// written as fmtTime writes dates, so one page does not mix 2026-06-07 with
// 6/7/2026; read in UTC, else west of Greenwich it showed the day before.
export const fmtDay = (s) => (s ? new Date(s).toLocaleDateString(undefined, { timeZone: 'UTC' }) : '');

// A date field's day ('2026-12-07') as the reader's own day: the epoch
// seconds of its local midnight, and of the next one (the end of a "to"
// day), as the times the pages show are local.  Date.parse took the
// string as UTC midnight, hours off the day shown.
export function localDay(day) {
  const [y, m, d] = day.split('-').map(Number);
  return { start: new Date(y, m - 1, d).getTime() / 1000, end: new Date(y, m - 1, d + 1).getTime() / 1000 };
}

// A share 0..1 as a percentage; '—' when unknown.
export const pct = (v) => (v === null || v === undefined ? '—' : `${(100 * v).toFixed(1)} %`);

// A span in seconds, e.g. "0.1250–0.5000 s"; sep goes between the bounds.
export const fmtSpan = (a, b, digits, sep = '–') => `${a.toFixed(digits)}${sep}${b.toFixed(digits)} s`;


// Any value as text for a table cell: a dash when there is none, so no page
// ever shows "null" or "undefined".
export const dash = (v) => (v === null || v === undefined || v === '' ? '—' : String(v));

// A ratio with its support, "0.83 (n = 24)": how many cases it rests on.
export const withSupport = (num, den) => (den > 0 ? `${(num / den).toFixed(2)} (n = ${den})` : '— (n = 0)');
