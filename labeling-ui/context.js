// context.js - what else happened around a snapshot: the same device's
// recent snapshots and those of the same equipment type, each a link with
// its labels, so a labeler sees whether this is one of a series.
import { el } from './dom.js';
import { fmtTime } from './format.js';
import { snapshotHash } from './router.js';

function contextItem(s) {
  const state = s.labeled
    ? el('span', { class: 'pill done' }, (s.classes || []).join(', ') || 'labeled')
    : el('span', { class: 'pill todo' }, 'to do');
  return el('li', {},
    el('a', { href: snapshotHash(s.id) }, `#${s.id} ${s.device_id}`),
    ` ${fmtTime(s.trigger_time)} · ${Number(s.score).toFixed(2)} `, state);
}

function contextList(items) {
  return el('ul', { class: 'ctx' }, items.length ? items.map(contextItem) : [el('li', { class: 'muted' }, 'none')]);
}

// ctx: GET /snapshots/{id}/context
export function contextCard(ctx) {
  return el('div', { class: 'card' },
    el('h3', {}, 'Same device, recent'), contextList(ctx.device),
    el('h3', {}, `Same equipment type (${ctx.equipment_type || 'unknown'})`), contextList(ctx.equipment));
}
