// page-classes.js - the taxonomy behind the labels: equipment types (with
// their shaft speed and bearing geometry, which mark the spectra), failure
// modes (each adds its class), classes of their own, and assets.  Operators
// and admins add and change them; a bearing is picked from the table of
// common bearings (search by designation: it fills the geometry) or given
// by its figures, and the defect frequencies it gives at the shaft speed
// are shown as orders and in Hz.  GET /taxonomy, GET /classes, GET
// /bearings, POST /taxonomy/types|failure-modes|classes|assets
// (docs/RULES.md).
import { api } from './http.js';
import { el, crumbs, showPage, showError } from './dom.js';
import { dash } from './format.js';
import { canOperate, OPERATE_NOTE } from './session.js';
import { defectText, assetKinematics, findBearing } from './taxonomy.js';

const num = (v) => (v === '' || v === undefined ? undefined : Number(v));

// The geometry a form's fields hold (null without balls).
function fieldsBearing(f) {
  if (f.balls.value === '') return null;
  return { balls: num(f.balls.value), ball_mm: num(f.ball.value), pitch_mm: num(f.pitch.value), contact_deg: num(f.contact.value || 0) };
}

const sameGeometry = (a, b) => a && b && a.balls === b.balls && a.ball_mm === b.ball_mm &&
  a.pitch_mm === b.pitch_mm && a.contact_deg === b.contact_deg;

// The body's shaft_hz and bearing from a form's fields, left out when empty:
// the table's designation while the fields still hold its geometry, else
// the figures as typed.
function kinematics(f, bearings) {
  const body = {};
  if (f.shaft.value !== '') body.shaft_hz = num(f.shaft.value);
  const picked = findBearing(bearings, f.bname.value);
  const typed = fieldsBearing(f);
  if (picked && sameGeometry(picked, typed)) body.bearing_designation = picked.designation;
  else if (typed) body.bearing = typed;
  return body;
}

function bearingText(b, designation) {
  if (!b) return '—';
  return `${designation ? `${designation}: ` : ''}${b.balls} × ${b.ball_mm} mm on ${b.pitch_mm} mm, ${b.contact_deg}°`;
}

// The bearing search (the table's designations as choices) and the
// geometry fields it fills; under them, the defect frequencies the form's
// figures give at its shaft speed.
function kinematicsFields(prefix, bearings) {
  const defects = el('span', { class: 'hint defects', id: `${prefix}-defects` });
  const update = (f) => {
    const t = defectText(fieldsBearing(f), num(f.shaft.value));
    defects.textContent = t ? `Defect frequencies: ${t}` : '';
  };
  const pick = input('bname', { id: `${prefix}-bname`, list: 'bearing-list', placeholder: 'search: 6205, SKF, FAG…', style: 'width:170px', autocomplete: 'off' });
  const fill = (ev) => {
    const f = ev.target.form, b = findBearing(bearings, ev.target.value);
    if (!b) return;
    f.balls.value = b.balls;
    f.ball.value = b.ball_mm;
    f.pitch.value = b.pitch_mm;
    f.contact.value = b.contact_deg;
    update(f);
  };
  pick.addEventListener('input', fill);
  pick.addEventListener('change', fill);
  return {
    fields: [el('label', {}, 'Shaft Hz', input('shaft', { type: 'number', step: 'any', min: 0, style: 'width:80px' })),
      el('label', {}, 'Bearing', pick),
      el('label', {}, 'balls', input('balls', { type: 'number', min: 3, max: 100, style: 'width:60px' })),
      el('label', {}, 'ball mm', input('ball', { type: 'number', step: 'any', style: 'width:70px' })),
      el('label', {}, 'pitch mm', input('pitch', { type: 'number', step: 'any', style: 'width:70px' })),
      el('label', {}, 'contact °', input('contact', { type: 'number', step: 'any', min: 0, max: 60, style: 'width:60px' })),
      defects],
    watch: (f) => f.addEventListener('input', () => update(f)),
  };
}

// A table cell with one defect frequency a line (the four in one line are
// wider than the tables).
function defectsCell(b, shaftHz) {
  const t = defectText(b, shaftHz);
  return el('td', { class: 'defects' }, t ? t.split(' · ').map((x) => el('div', {}, x)) : '—');
}

function bearingList(bearings) {
  return el('datalist', { id: 'bearing-list' }, bearings.map((b) => el('option', { value: b.designation },
    `${b.manufacturer} ${b.kind}: ${b.balls} × ${b.ball_mm} mm on ${b.pitch_mm} mm, ${b.contact_deg}°`)));
}

function input(name, attrs = {}) {
  return el('input', { name, id: `tx-${name}`, ...attrs });
}

// A small form that POSTs its fields; done(message) re-renders the page.
// None (null) for a role that may not write the taxonomy (ml).
function form(id, title, fields, toBody, path, done) {
  if (!canOperate()) return null;
  const err = el('span', { class: 'error' });
  const f = el('form', { class: 'filters', id }, ...fields, el('button', { class: 'primary', type: 'submit' }, title), err);
  f.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try { await api('POST', path, toBody(f)); done(`${title}: done`); } catch (e) { err.textContent = ` ${e.message}`; }
  });
  return f;
}

function typesCard(tax, bearings, done) {
  const kin = kinematicsFields('type-form', bearings);
  const f = form('type-form', 'Save type', [
    el('label', {}, 'Name', input('name', { required: true, pattern: '[a-z0-9_]{1,64}' })),
    el('label', {}, 'Parent', el('select', { name: 'parent', id: 'tx-parent' }, el('option', { value: '' }, '—'),
      tax.types.map((t) => el('option', { value: t.name }, t.name)))),
    el('label', {}, 'Description', input('description')), ...kin.fields],
  (x) => ({ name: x.name.value, ...(x.parent.value ? { parent: x.parent.value } : {}), ...(x.description.value ? { description: x.description.value } : {}), ...kinematics(x, bearings) }),
  '/api/v1/taxonomy/types', done);
  if (f) kin.watch(f);
  return el('div', { class: 'card' }, el('h3', {}, 'Equipment types'),
    el('table', { id: 'types' },
      el('thead', {}, el('tr', {}, ['type', 'parent', 'shaft Hz', 'bearing', 'defect frequencies', 'description'].map((h) => el('th', {}, h)))),
      el('tbody', {}, tax.types.map((t) => el('tr', { 'data-type': t.name },
        el('td', {}, t.name), el('td', {}, dash(t.parent)), el('td', {}, dash(t.shaft_hz)), el('td', {}, bearingText(t.bearing, t.bearing_designation)),
        defectsCell(t.bearing, t.shaft_hz),
        el('td', {}, dash(t.description)))))),
    el('p', { class: 'hint' }, 'A type of the same name is updated. Shaft speed and bearing geometry mark shaft harmonics and BPFO, BPFI, BSF, FTF on the snapshot spectra.'),
    f);
}

function modesCard(tax, done) {
  const f = form('mode-form', 'Add failure mode', [
    el('label', {}, 'Type', el('select', { name: 'equipment_type', id: 'tx-mode-type' }, tax.types.map((t) => el('option', { value: t.name }, t.name)))),
    el('label', {}, 'Mode', input('mode', { required: true })), el('label', {}, 'Mechanism', input('mechanism')),
    el('label', {}, 'Cause', input('cause')), el('label', {}, 'Class', input('klass', { required: true, pattern: '[a-z0-9_]{1,64}' }))],
  (x) => ({ equipment_type: x.equipment_type.value, mode: x.mode.value, mechanism: x.mechanism.value, cause: x.cause.value, class: x.klass.value }),
  '/api/v1/taxonomy/failure-modes', done);
  return el('div', { class: 'card' }, el('h3', {}, 'Failure modes'),
    el('table', { id: 'modes' },
      el('thead', {}, el('tr', {}, ['type', 'mode', 'mechanism', 'cause', 'class'].map((h) => el('th', {}, h)))),
      el('tbody', {}, tax.failure_modes.map((m) => el('tr', {},
        el('td', {}, m.equipment_type), el('td', {}, m.mode), el('td', {}, dash(m.mechanism)), el('td', {}, dash(m.cause)), el('td', {}, m.class))))),
    el('p', { class: 'hint' }, 'A failure mode adds its class to its type (and the types related to it).'), f);
}

function classesCard(classes, tax, done) {
  const f = form('class-form', 'Add class', [
    el('label', {}, 'Name', input('cname', { required: true, pattern: '[a-z0-9_]{1,64}' })),
    el('label', {}, 'Description', input('cdesc')),
    el('label', {}, 'Type', el('select', { name: 'ctype', id: 'tx-ctype' }, el('option', { value: '' }, 'every type'),
      tax.types.map((t) => el('option', { value: t.name }, t.name))))],
  (x) => ({ name: x.cname.value, ...(x.cdesc.value ? { description: x.cdesc.value } : {}), ...(x.ctype.value ? { equipment_type: x.ctype.value } : {}) }),
  '/api/v1/taxonomy/classes', done);
  return el('div', { class: 'card' }, el('h3', {}, 'Classes'),
    el('table', { id: 'classes-table' },
      el('thead', {}, el('tr', {}, ['class', 'type', 'description'].map((h) => el('th', {}, h)))),
      el('tbody', {}, classes.map((c) => el('tr', { 'data-class': c.name },
        el('td', {}, c.name), el('td', {}, c.equipment_type || 'every type'), el('td', {}, dash(c.description)))))),
    el('p', { class: 'hint' }, 'In a snapshot, keys 1-9 pick the classes of its equipment type in this order, and c any of them by number or name.'), f);
}

function assetsCard(tax, bearings, done) {
  const kin = kinematicsFields('asset-form', bearings);
  const f = form('asset-form', 'Save asset', [
    el('label', {}, 'Id', input('aid', { required: true, pattern: '[A-Za-z0-9._\\-]{1,64}' })),
    el('label', {}, 'Type', el('select', { name: 'atype', id: 'tx-atype' }, tax.types.map((t) => el('option', { value: t.name }, t.name)))),
    el('label', {}, 'Site', input('asite')), ...kin.fields],
  (x) => ({ id: x.aid.value, equipment_type: x.atype.value, ...(x.asite.value ? { site: x.asite.value } : {}), ...kinematics(x, bearings) }),
  '/api/v1/taxonomy/assets', done);
  if (f) kin.watch(f);
  // what the asset turns at: its own figures, else its type's
  const turns = (a) => assetKinematics(a, tax.types);
  return el('div', { class: 'card' }, el('h3', {}, 'Assets'),
    el('table', { id: 'assets' },
      el('thead', {}, el('tr', {}, ['asset', 'type', 'site', 'shaft Hz', 'bearing', 'defect frequencies', 'devices'].map((h) => el('th', {}, h)))),
      el('tbody', {}, tax.assets.length ? tax.assets.map((a) => el('tr', { 'data-asset': a.id },
        el('td', {}, a.id), el('td', {}, a.equipment_type), el('td', {}, dash(a.site)), el('td', {}, dash(a.shaft_hz)),
        el('td', {}, bearingText(a.bearing, a.bearing_designation)),
        defectsCell(turns(a).bearing, turns(a).shaft_hz),
        el('td', {}, a.devices.join(', ') || '—')))
        : el('tr', { id: 'assets-empty' }, el('td', { colspan: 7, class: 'muted' },
          f ? 'No asset yet: save one with the form below, then assign devices to it.' : 'No asset yet.')))),
    el('p', { class: 'hint' }, "An asset's shaft speed and bearing win over its type's (its defect frequencies are computed from what wins). " +
      'Pick a bearing from the table of common bearings (GET /api/v1/bearings) or type its geometry. Assign a device with POST /api/v1/devices/{id}/asset.'), f);
}

export async function showClasses(note) {
  crumbs('Classes');
  let tax, classes, bearings;
  try {
    [tax, classes, bearings] = await Promise.all([api('GET', '/api/v1/taxonomy'), api('GET', '/api/v1/classes'),
      api('GET', '/api/v1/bearings')]);
  } catch (e) { showError(e.message); return; }
  const done = (msg) => showClasses(msg);
  const readOnly = canOperate() ? null
    : el('p', { class: 'hint', id: 'tx-read-only' }, `Read only: adding classes, equipment types, failure modes and assets ${OPERATE_NOTE}.`);
  showPage(el('h2', {}, 'Classes and taxonomy'), readOnly, el('p', { class: 'muted', id: 'tx-note' }, note || ''), bearingList(bearings.items),
    classesCard(classes.items, tax, done), typesCard(tax, bearings.items, done), modesCard(tax, done), assetsCard(tax, bearings.items, done));
}
