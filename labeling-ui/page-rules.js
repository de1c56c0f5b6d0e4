// page-rules.js - the rules (labeling functions) with their coverage,
// overlap, conflict and accuracy, what those numbers mean, and the editor
// (rule-editor.js) to write or change one.
import { api } from './http.js';
import { el, crumbs, showPage, showError } from './dom.js';
import { pct } from './format.js';
import { ruleEditor } from './rule-editor.js';
import { canOperate, OPERATE_NOTE } from './session.js';
import { demoParam } from './demo.js';

const COLUMNS = ['name', 'rule', 'class', 'weight', 'enabled', 'hits', 'coverage', 'overlap', 'conflict', 'accuracy',
  'labeled hits', 'by equipment type', ''];
const DEFINITIONS = [
  ['coverage', 'share of all stored snapshots the rule fires on (the demo history\'s counted only while "show demo data" is ticked, ' +
    'as everywhere; so are the figures below)'],
  ['overlap', 'share of all snapshots where it fires together with another enabled rule'],
  ['conflict', 'share of all snapshots where another enabled rule fires for a different class'],
  ['accuracy', 'among its hits with human labels, the share whose human classes include the rule\'s class ' +
    '(n/a: no labeled hit)'],
  ['by equipment type', 'the same figures over the snapshots the rule applies to (those with every channel it ' +
    'reads), per equipment type, with the counts behind them; accuracy with its 95% interval, withheld below ' +
    '5 labeled hits'],
  ['weak labels', 'one rule firing gives a label marked "rule", several a weighted vote marked "vote"; ' +
    'a disposition ranks above both; human labels are never replaced'],
];

function accuracyCell(r) {
  if (r.accuracy === null) return el('span', { class: 'muted', title: 'none of its hits has a human label' }, 'n/a');
  return pct(r.accuracy);
}

function byTypeCell(r) {
  const types = r.by_equipment_type || [];
  if (!types.length) return el('span', { class: 'muted' }, '—');
  return types.map((t) => el('div', {},
    `${t.equipment_type || '(no type)'}: ${t.hits}/${t.snapshots} (${pct(t.coverage)}), `,
    t.accuracy === null
      ? el('span', { class: 'muted', title: t.accuracy_refused || '' }, `accuracy withheld (${t.labeled_hits} labeled)`)
      : `accuracy ${pct(t.accuracy)} [${pct(t.accuracy_ci[0])}–${pct(t.accuracy_ci[1])}] of ${t.labeled_hits}`));
}

function toggleButton(r) {
  // A refusal (an ml user: rules need an operator) is said on the page, not
  // left as an unhandled rejection with the button doing nothing.
  const toggle = async () => {
    try {
      await api('PATCH', `/api/v1/rules/${r.id}`, { enabled: !r.enabled });
    } catch (e) { showRules(`${r.name}: ${e.message}`, true); return; }
    showRules(`${r.name} ${r.enabled ? 'disabled' : 'enabled'}`);
  };
  return el('button', { onclick: toggle }, r.enabled ? 'Disable' : 'Enable');
}

function ruleRow(r, editor) {
  return el('tr', { 'data-rule': r.id, 'data-name': r.name },
    el('td', { class: 'name' }, r.name), el('td', { class: 'expr' }, el('code', {}, r.expr)), el('td', {}, r.class), el('td', {}, String(r.weight)),
    el('td', {}, r.enabled ? 'on' : el('span', { class: 'muted' }, 'off')),
    el('td', { class: 'num' }, String(r.hits ?? '—')),
    el('td', { class: 'num cov' }, pct(r.coverage)), el('td', { class: 'num' }, pct(r.overlap)),
    el('td', { class: 'num' + (r.conflict > 0 ? ' warn' : '') }, pct(r.conflict)),
    el('td', { class: 'num acc' }, accuracyCell(r)),
    el('td', { class: 'num' }, String(r.labeled_hits ?? '—')),
    el('td', { class: 'bytype' }, byTypeCell(r)),
    el('td', {}, editor ? [el('button', { onclick: () => editor.load(r) }, 'Edit'), ' ', toggleButton(r)] : null));
}

function rulesTable(rules, editor) {
  const rows = rules.map((r) => ruleRow(r, editor));
  const none = el('tr', {}, el('td', { colspan: COLUMNS.length, class: 'muted' }, 'no rules yet: write one below'));
  // data-demo: whether the figures count the demo history (demo.js)
  return el('table', { id: 'rules', 'data-demo': demoParam() },
    el('thead', {}, el('tr', {}, COLUMNS.map((h) => el('th', {}, h)))),
    el('tbody', {}, rows.length ? rows : [none]));
}

export async function showRules(note, isErr) {
  crumbs('Rules');
  let list, classes;
  try {
    [list, classes] = await Promise.all([api('GET', `/api/v1/rules?demo=${demoParam()}`), api('GET', '/api/v1/classes')]);
  } catch (e) { showError(e.message); return; }
  // A role that may not write rules (ml) reads them: no editor, no buttons.
  const editor = canOperate() ? ruleEditor(classes.items, (msg) => showRules(msg)) : null;
  const defs = el('dl', { class: 'card defs' }, DEFINITIONS.flatMap(([t, d]) => [el('dt', {}, t), el('dd', {}, d)]));
  showPage(el('h2', {}, 'Rules (labeling functions)'), el('p', { class: isErr ? 'error' : 'muted', id: 'rule-note', role: isErr ? 'alert' : null }, note || ''),
    rulesTable(list.items, editor),
    editor ? editor.node : el('p', { class: 'hint', id: 'rules-read-only' }, `Read only: writing, changing and switching rules ${OPERATE_NOTE}.`),
    defs);
}
