// keys.js - the snapshot view's keyboard: a key press -> the action it
// stands for.  The view (snap-view.js) carries the action out; this module
// only decides, so the mapping can be read (and tested) in one place.
// Pure: no DOM; callers pass the event's fields.

// Keys without modifiers.  arg is the action's argument: the pan step as
// a fraction of the window, the zoom factor.
const ACTIONS = {
  Enter: ['save'],
  m: ['mark-view'],
  Escape: ['clear'],
  ArrowLeft: ['pan', -0.25],
  ArrowRight: ['pan', 0.25],
  '+': ['zoom', 0.5],
  '=': ['zoom', 0.5],
  '-': ['zoom', 2],
  _: ['zoom', 2],
  0: ['whole'],
  n: ['next'],
  u: ['undo'],
  c: ['find-class'],
  '[': ['edge', { edge: 'start', f: -0.05 }],
  ']': ['edge', { edge: 'start', f: 0.05 }],
  '{': ['edge', { edge: 'end', f: -0.05 }],
  '}': ['edge', { edge: 'end', f: 0.05 }],
};

// Keys a focused form control keeps for itself.  A control that takes
// typing (a text or number field, a date, a text area) keeps every key but
// Escape, which leaves it; a select keeps what moves it (arrows, Home, End,
// the page keys, space and its type-to-find letters) and leaves Enter (save)
// and Escape (leave it) to the view; the others keep only the keys they act
// on: a slider its arrows, Home, End and page keys, a checkbox its space, a
// button Enter and space, a link Enter (it follows the link: the header's
// pages, the context's snapshots; the view took it to save, and the link
// went nowhere).  Every other key stays the view's (a digit picks a class
// with the Confidence slider focused; an arrow moves the slider).
const ARROWS = ['ArrowLeft', 'ArrowRight', 'ArrowUp', 'ArrowDown'];
const MOVES = [...ARROWS, 'Home', 'End', 'PageUp', 'PageDown'];
const KEPT = {
  range: new Set(MOVES),
  checkbox: new Set([' ']),
  radio: new Set([' ', ...ARROWS]),
  button: new Set(['Enter', ' ']),
  select: new Set([...MOVES, ' ']),
  link: new Set(['Enter']),
};
const BUTTON_INPUTS = new Set(['button', 'submit', 'reset', 'image', 'file', 'color']);

// What the focused element (tagName, and type for an input) is, for keys:
// 'typing', 'select', 'range', 'checkbox', 'radio', 'button', 'link', or
// null (no control: the page, a plot).
export function controlKind(tagName, type) {
  switch (tagName) {
    case 'TEXTAREA': return 'typing';
    case 'SELECT': return 'select';
    case 'BUTTON': return 'button';
    case 'A': return 'link';
    case 'INPUT':
      if (type === 'range' || type === 'checkbox' || type === 'radio') return type;
      return BUTTON_INPUTS.has(type) ? 'button' : 'typing';
    default: return null;
  }
}

// Whether a control of that kind keeps key for itself; plain: pressed
// without Ctrl, Alt or Meta (a select finds its options by plain letters).
export function controlKeeps(kind, key, plain = true) {
  if (kind === 'typing') return key !== 'Escape';
  if (kind === 'select') return KEPT.select.has(key) || (plain && key.length === 1);
  return !!kind && KEPT[kind].has(key);
}

// ev: { key, ctrlKey, metaKey, altKey, tagName, type } where tagName and
// type are the focused element's.  Returns null (not ours: leave the event
// alone) or { action, arg } whose default the caller prevents, except for
// 'blur' (leave the field).  'class' carries the class's index, 0 for key
// 1; 'find-class' is c, the chooser for any class by name or number
// (findClass below), the way to the classes past the ninth.
export function keyAction(ev) {
  const kind = controlKind(ev.tagName, ev.type);
  if (controlKeeps(kind, ev.key, !(ev.ctrlKey || ev.metaKey || ev.altKey))) return null;
  if (ev.key === 'Escape' && (kind === 'typing' || kind === 'select')) return { action: 'blur' };
  if (ev.ctrlKey && ev.key === 'z') return { action: 'undo' };
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return null;
  if (/^[1-9]$/.test(ev.key)) return { action: 'class', arg: Number(ev.key) - 1 };
  const a = Object.prototype.hasOwnProperty.call(ACTIONS, ev.key) ? ACTIONS[ev.key] : null;
  return a ? { action: a[0], arg: a[1] } : null;
}

// The class a text typed in the chooser names, among names (the view's
// classes in their order): its number (1 for the first) or its name, whole,
// or the start of it or of one of its words ("bl" for blockage, "imb" for
// phase_imbalance), or a part of it, the first of these that names one
// class.  { index } when one does, else { candidates: [index, ...] }: the
// classes the text could mean (none, or several: type more).
export function findClass(names, text) {
  const t = String(text).trim().toLowerCase();
  if (!t) return { candidates: [] };
  if (/^\d+$/.test(t)) {
    const i = Number(t) - 1;
    return i >= 0 && i < names.length ? { index: i } : { candidates: [] };
  }
  const lower = names.map((n) => n.toLowerCase());
  const ways = [
    (n) => n === t,
    (n) => n.startsWith(t),
    (n) => n.split(/[_\s-]+/).some((w) => w.startsWith(t)),
    (n) => n.includes(t),
  ];
  for (const matches of ways) {
    const hits = lower.flatMap((n, i) => (matches(n) ? [i] : []));
    if (hits.length === 1) return { index: hits[0] };
    if (hits.length > 1) return { candidates: hits };
  }
  return { candidates: [] };
}
