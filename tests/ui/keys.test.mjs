// keys.test.mjs - the snapshot view's keyboard map.
import test from 'node:test';
import assert from 'node:assert/strict';
import { keyAction, controlKind, controlKeeps, findClass } from '../../labeling-ui/keys.js';

// A key pressed with the focus on the page (BODY) or, with focus: [tagName,
// type], on that element.
const press = (key, mods = {}, focus = ['BODY', undefined]) =>
  keyAction({ key, ctrlKey: false, metaKey: false, altKey: false, tagName: focus[0], type: focus[1], ...mods });
const TEXT = ['INPUT', 'text'], AREA = ['TEXTAREA', 'textarea'], RANGE = ['INPUT', 'range'],
  SELECT = ['SELECT', 'select-one'], CHECKBOX = ['INPUT', 'checkbox'], BUTTON = ['BUTTON', 'button'];

test('every documented key maps to its action', () => {
  const want = {
    Enter: { action: 'save', arg: undefined },
    m: { action: 'mark-view', arg: undefined },
    Escape: { action: 'clear', arg: undefined },
    ArrowLeft: { action: 'pan', arg: -0.25 },
    ArrowRight: { action: 'pan', arg: 0.25 },
    '+': { action: 'zoom', arg: 0.5 },
    '=': { action: 'zoom', arg: 0.5 },
    '-': { action: 'zoom', arg: 2 },
    _: { action: 'zoom', arg: 2 },
    0: { action: 'whole', arg: undefined },
    n: { action: 'next', arg: undefined },
    u: { action: 'undo', arg: undefined },
    c: { action: 'find-class', arg: undefined },
    '[': { action: 'edge', arg: { edge: 'start', f: -0.05 } },
    ']': { action: 'edge', arg: { edge: 'start', f: 0.05 } },
    '{': { action: 'edge', arg: { edge: 'end', f: -0.05 } },
    '}': { action: 'edge', arg: { edge: 'end', f: 0.05 } },
  };
  for (const [k, a] of Object.entries(want)) assert.deepEqual(press(k), a, k);
});

test('digits 1-9 pick the class of that rank', () => {
  for (let d = 1; d <= 9; d++) assert.deepEqual(press(String(d)), { action: 'class', arg: d - 1 });
});

test('other keys are not ours', () => {
  for (const k of ['a', 'M', 'N', 'U', 'ArrowUp', 'Tab', ' ', 'F1', '10', 'constructor', 'toString', '']) {
    assert.equal(press(k), null, JSON.stringify(k));
  }
});

test('ctrl+z undoes; other modified keys are left to the browser', () => {
  assert.deepEqual(press('z', { ctrlKey: true }), { action: 'undo' });
  assert.equal(press('z'), null);
  assert.equal(press('u', { ctrlKey: true }), null);
  assert.equal(press('1', { metaKey: true }), null);
  assert.equal(press('Enter', { altKey: true }), null);
  assert.equal(press('+', { ctrlKey: true }), null);
});

test('in a text field every key types; Escape leaves the field', () => {
  for (const f of [TEXT, AREA, ['INPUT', 'number'], ['INPUT', 'date'], ['INPUT', 'search'], ['INPUT', 'password']]) {
    for (const k of ['1', 'c', 'm', 'n', 'u', 'Enter', '+', '0', 'ArrowLeft', 'ArrowRight', ' ']) assert.equal(press(k, {}, f), null, `${f} ${k}`);
    assert.equal(press('z', { ctrlKey: true }, f), null, `${f} ctrl+z`);
    assert.deepEqual(press('Escape', {}, f), { action: 'blur' }, `${f} Escape`);
  }
});

test('the Confidence slider keeps its arrows, Home, End and page keys; the rest are the view\'s', () => {
  for (const k of ['ArrowLeft', 'ArrowRight', 'ArrowUp', 'ArrowDown', 'Home', 'End', 'PageUp', 'PageDown']) {
    assert.equal(press(k, {}, RANGE), null, k);
  }
  assert.deepEqual(press('2', {}, RANGE), { action: 'class', arg: 1 });
  assert.deepEqual(press('Enter', {}, RANGE), { action: 'save', arg: undefined });
  assert.deepEqual(press('Escape', {}, RANGE), { action: 'clear', arg: undefined });
  assert.deepEqual(press('z', { ctrlKey: true }, RANGE), { action: 'undo' });
});

test('a select keeps what moves it and its type-to-find; Enter saves, Escape leaves it', () => {
  for (const k of ['ArrowLeft', 'ArrowRight', 'ArrowUp', 'ArrowDown', 'Home', 'End', 'PageUp', 'PageDown', ' ', 'b', '2', '0', 'm', 'n']) {
    assert.equal(press(k, {}, SELECT), null, k);
  }
  assert.deepEqual(press('Enter', {}, SELECT), { action: 'save', arg: undefined });
  assert.deepEqual(press('Escape', {}, SELECT), { action: 'blur' });
  assert.deepEqual(press('z', { ctrlKey: true }, SELECT), { action: 'undo' });
});

test('a checkbox keeps its space, a button Enter and space; the rest are the view\'s', () => {
  assert.equal(press(' ', {}, CHECKBOX), null);
  assert.deepEqual(press('ArrowRight', {}, CHECKBOX), { action: 'pan', arg: 0.25 });
  assert.deepEqual(press('0', {}, CHECKBOX), { action: 'whole', arg: undefined });
  assert.deepEqual(press('Enter', {}, CHECKBOX), { action: 'save', arg: undefined });
  for (const f of [BUTTON, ['INPUT', 'submit']]) {
    assert.equal(press('Enter', {}, f), null, `${f} Enter`);
    assert.equal(press(' ', {}, f), null, `${f} space`);
    assert.deepEqual(press('ArrowLeft', {}, f), { action: 'pan', arg: -0.25 }, `${f} ArrowLeft`);
    assert.deepEqual(press('1', {}, f), { action: 'class', arg: 0 }, `${f} 1`);
  }
});

test('a link keeps Enter (it follows the link, saves nothing); the rest are the view\'s', () => {
  const LINK = ['A', undefined];
  assert.equal(press('Enter', {}, LINK), null);
  assert.deepEqual(press('ArrowRight', {}, LINK), { action: 'pan', arg: 0.25 });
  assert.deepEqual(press('1', {}, LINK), { action: 'class', arg: 0 });
  assert.deepEqual(press('Escape', {}, LINK), { action: 'clear', arg: undefined });
});

test('controlKind: what a focused element is for keys', () => {
  const want = [[TEXT, 'typing'], [AREA, 'typing'], [['INPUT', 'number'], 'typing'], [['INPUT', 'date'], 'typing'],
    [RANGE, 'range'], [CHECKBOX, 'checkbox'], [['INPUT', 'radio'], 'radio'], [SELECT, 'select'], [BUTTON, 'button'],
    [['INPUT', 'submit'], 'button'], [['BODY', undefined], null], [['A', undefined], 'link'], [['DIV', undefined], null]];
  for (const [[tag, type], kind] of want) assert.equal(controlKind(tag, type), kind, `${tag} ${type}`);
  assert.equal(controlKeeps(null, 'ArrowLeft'), false);
  assert.equal(controlKeeps('select', 'z', false), false);
});

// The classes of a device without an equipment type, in their order.
const ALL = ['normal', 'bearing_outer_race', 'bearing_inner_race', 'imbalance', 'misalignment', 'rotor_bar',
  'cavitation', 'sensor_fault', 'other', 'phase_imbalance', 'blockage'];

test('findClass: every class by its number, the tenth and eleventh too', () => {
  for (let i = 0; i < ALL.length; i++) assert.deepEqual(findClass(ALL, String(i + 1)), { index: i });
  assert.deepEqual(findClass(ALL, ' 10 '), { index: 9 });
  assert.deepEqual(findClass(ALL, '12'), { candidates: [] });
  assert.deepEqual(findClass(ALL, '0'), { candidates: [] });
});

test('findClass: by name, whole, a unique start, a word\'s start, a part', () => {
  assert.deepEqual(findClass(ALL, 'blockage'), { index: 10 });
  assert.deepEqual(findClass(ALL, 'BL'), { index: 10 });
  assert.deepEqual(findClass(ALL, 'ph'), { index: 9 });
  assert.deepEqual(findClass(ALL, 'imbalance'), { index: 3 }, 'the whole name wins over phase_imbalance');
  assert.deepEqual(findClass(ALL, 'imb'), { index: 3 }, 'the name\'s start wins over a word\'s');
  assert.deepEqual(findClass(ALL, 'outer'), { index: 1 });
  assert.deepEqual(findClass(ALL, 'tion'), { index: 6 });
});

test('findClass: several classes or none', () => {
  assert.deepEqual(findClass(ALL, 'bearing'), { candidates: [1, 2] });
  assert.deepEqual(findClass(ALL, 'b'), { candidates: [1, 2, 10] });
  assert.deepEqual(findClass(ALL, 'race'), { candidates: [1, 2] });
  assert.deepEqual(findClass(ALL, 'xyz'), { candidates: [] });
  assert.deepEqual(findClass(ALL, '  '), { candidates: [] });
});
