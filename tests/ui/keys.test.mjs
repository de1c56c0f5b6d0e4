// keys.test.mjs - the snapshot view's keyboard map.
import test from 'node:test';
import assert from 'node:assert/strict';
import { keyAction, isTextField } from '../../labeling-ui/keys.js';

const press = (key, mods = {}) =>
  keyAction({ key, ctrlKey: false, metaKey: false, altKey: false, inText: false, ...mods });

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

test('in a text field keys type text; Escape leaves the field', () => {
  for (const k of ['1', 'm', 'n', 'u', 'Enter', '+', 'ArrowLeft']) assert.equal(press(k, { inText: true }), null, k);
  assert.equal(press('z', { inText: true, ctrlKey: true }), null);
  assert.deepEqual(press('Escape', { inText: true }), { action: 'blur' });
});

test('isTextField: text inputs and text areas, not the other controls', () => {
  assert.equal(isTextField('TEXTAREA', 'textarea'), true);
  assert.equal(isTextField('INPUT', 'text'), true);
  assert.equal(isTextField('INPUT', 'range'), false);
  assert.equal(isTextField('INPUT', 'checkbox'), false);
  assert.equal(isTextField('SELECT', 'select-one'), false);
  assert.equal(isTextField('BODY', undefined), false);
});
