// snap-side.js - the snapshot view's side panel: the new label's form, the
// saved labels, the context.  The view (snap-view.js) reads the form when
// it saves and redraws the lists after each edit.
import { el, byId } from './dom.js';
import { fmtSpan, fmtTime } from './format.js';
import { contextCard } from './context.js';
import { canOperate } from './session.js';

const NO_SPAN = 'none: drag on a waveform';

function textField(label, id) {
  return el('label', {}, label, el('input', { id, type: 'text', maxlength: 200 }));
}

function newLabelCard(view) {
  const classOption = (c, i) => el('option', { value: c.name }, `${i + 1} ${c.name}`);
  return el('div', { class: 'card' }, el('h3', {}, 'New label'),
    el('div', {}, 'Span: ', el('span', { id: 'form-span' }, NO_SPAN)),
    el('label', {}, 'Class', el('select', { id: 'f-class', onchange: (ev) => view.pickClass(ev.target.value) },
      el('option', { value: '' }, '—'), view.classes.map(classOption))),
    el('label', {}, 'Confidence', el('input', { id: 'f-conf', type: 'range', min: 0, max: 1, step: 0.05, value: 1 })),
    textField('Failure mode', 'f-mode'), textField('Mechanism', 'f-mech'), textField('Cause', 'f-cause'),
    el('label', {}, 'Notes', el('textarea', { id: 'f-notes', rows: 2, maxlength: 4000 })),
    el('p', {}, el('button', { class: 'primary', id: 'save', onclick: () => view.save() }, 'Save (Enter)'), ' ',
      el('button', { onclick: () => view.undoLast() }, 'Undo (u)'), ' ',
      el('button', { onclick: () => view.next() }, 'Next (n)')));
}

export function sidePanel(view, ctx) {
  return el('div', { class: 'side' },
    canOperate() ? newLabelCard(view) : null,
    el('div', { class: 'card' }, el('h3', {}, 'Labels'), el('ul', { class: 'labels', id: 'labels' })),
    contextCard(ctx));
}

// The form's fields for spans.js newLabelBody().
export function readLabelForm() {
  return {
    confidence: Number(byId('f-conf').value), notes: byId('f-notes').value,
    failure_mode: byId('f-mode').value, mechanism: byId('f-mech').value, cause: byId('f-cause').value,
  };
}

export function showFormSpan(span) {
  const f = byId('form-span');
  if (f) f.textContent = span ? fmtSpan(span.start_s, span.end_s, 4, ' – ') : NO_SPAN;
}

export function showFormClass(name) {
  const f = byId('f-class');
  if (f) f.value = name;
}

// The saved labels, each with its delete button.
export function showLabelList(items, onDelete) {
  const ul = byId('labels');
  if (!ul) return;
  ul.replaceChildren(...items.map((l) => el('li', { 'data-label': l.id },
    el('strong', {}, l.class), ` ${fmtSpan(l.start_s, l.end_s, 3)} · ch ${l.channels.join(',')} · ${l.created_by} `,
    el('span', { class: 'hint' }, fmtTime(l.created_at)),
    canOperate() ? [' ', el('button', { title: 'delete', onclick: () => onDelete(l) }, '✕')] : null)));
  if (!items.length) ul.append(el('li', { class: 'muted' }, 'no labels yet'));
}
