// spans.js - the labeled spans of a snapshot as data: making a span from a
// drag or a window, the bodies the labels API takes, and the label list's
// edits.  The view (snap-view.js) does the drawing and the requests.
// Pure: no DOM.

// A span [a, b] (seconds) clamped to the snapshot [0, duration]; null when
// nothing is left of it (or a bound is not a number).
export function makeSpan(a, b, duration) {
  const start = Math.max(0, a), end = Math.min(duration, b);
  return end > start ? { start_s: start, end_s: end } : null;
}

// The channels a new span applies to: the selected ones, or the channel it
// was drawn on when none is selected.
export function spanChannels(selected, ch) {
  const out = new Set(selected);
  if (!out.size) out.add(ch);
  return out;
}

// POST /snapshots/{id}/labels body for a new span.  fields holds the form's
// confidence, notes, failure_mode, mechanism and cause.
export function newLabelBody(span, channels, klass, fields) {
  return {
    ...span, channels: [...channels].sort((x, y) => x - y), class: klass,
    confidence: fields.confidence, notes: fields.notes,
    failure_mode: fields.failure_mode, mechanism: fields.mechanism, cause: fields.cause,
  };
}

// The body that stores a deleted label again (undo of a delete): the same
// span and fields; the server gives it a new id and a fresh audit trail.
export function restoreBody(label) {
  const { start_s, end_s, channels, confidence, notes, failure_mode, mechanism, cause } = label;
  return { start_s, end_s, channels, class: label.class, confidence, notes, failure_mode, mechanism, cause };
}

export function withoutLabel(labels, id) {
  return labels.filter((x) => x.id !== id);
}

// The span with one edge ('start' or 'end') moved by d seconds, kept inside
// [0, duration] and at least a millisecond long (an edge cannot pass the
// other); null when span is missing.
export function moveSpanEdge(span, edge, d, duration) {
  if (!span) return null;
  const MIN = 0.001;
  let { start_s: a, end_s: b } = span;
  if (edge === 'start') a = Math.min(Math.max(0, a + d), b - MIN);
  else b = Math.max(Math.min(duration, b + d), a + MIN);
  return a >= 0 && b > a ? { start_s: a, end_s: b } : null;
}

// The view [a, b] shifted (same width) just enough to show time t: an edge
// moved past the view takes the view with it.
export function followEdge([a, b], t) {
  if (t < a) return [t, t + (b - a)];
  if (t > b) return [t - (b - a), t];
  return [a, b];
}
