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
  '[': ['edge', { edge: 'start', f: -0.05 }],
  ']': ['edge', { edge: 'start', f: 0.05 }],
  '{': ['edge', { edge: 'end', f: -0.05 }],
  '}': ['edge', { edge: 'end', f: 0.05 }],
};

// ev: { key, ctrlKey, metaKey, altKey, inText } where inText is true when
// the focus is in a text field (typing there is not a command; Escape
// leaves the field).  Returns null (not ours: leave the event alone) or
// { action, arg } whose default the caller prevents, except for 'blur'.
// 'class' carries the class's index, 0 for key 1.
export function keyAction(ev) {
  if (ev.inText) return ev.key === 'Escape' ? { action: 'blur' } : null;
  if (ev.ctrlKey && ev.key === 'z') return { action: 'undo' };
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return null;
  if (/^[1-9]$/.test(ev.key)) return { action: 'class', arg: Number(ev.key) - 1 };
  const a = Object.prototype.hasOwnProperty.call(ACTIONS, ev.key) ? ACTIONS[ev.key] : null;
  return a ? { action: a[0], arg: a[1] } : null;
}

// Whether a focused element takes typed text (then keys are not commands).
export function isTextField(tagName, type) {
  return tagName === 'TEXTAREA' || (tagName === 'INPUT' && type === 'text');
}
