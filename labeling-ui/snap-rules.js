// snap-rules.js - what the operators' rules say about a snapshot, in the
// side panel: the weak label (class, where it came from: one rule, a vote,
// an alert's disposition), each rule's vote, and the label in force (a
// person's wins).  GET /snapshots/{id}/weak-label.
import { api } from './http.js';
import { el } from './dom.js';

const SOURCES = { rule: 'one rule', vote: 'a vote of the rules', disposition: "an alert's disposition", human: 'a person' };

function votesList(votes) {
  if (!votes || !votes.length) return el('p', { class: 'muted' }, 'no rule fired on this snapshot');
  return el('ul', { class: 'votes', id: 'rule-votes' }, votes.map((v) => el('li', { 'data-rule': v.rule_id },
    el('a', { href: '#/rules' }, `rule #${v.rule_id}`), ' votes ', el('strong', {}, v.class),
    v.weight !== 1 ? ` (weight ${v.weight})` : '')));
}

export function weakLabelCard(id) {
  const card = el('div', { class: 'card', id: 'weak-card' }, el('h3', {}, 'Rules'), el('p', { class: 'muted' }, 'Loading…'));
  api('GET', `/api/v1/snapshots/${id}/weak-label`).then((w) => {
    const weak = w.weak;
    const eff = w.effective;
    card.replaceChildren(el('h3', {}, 'Rules'),
      weak
        ? el('p', { id: 'weak-label' }, 'Suggested: ', el('strong', { 'data-class': weak.class }, weak.class),
          ` from ${SOURCES[weak.source] || weak.source}`,
          weak.confidence !== undefined && weak.confidence !== null ? ` (confidence ${Number(weak.confidence).toFixed(2)})` : '')
        : el('p', { id: 'weak-label', class: 'muted' }, 'No suggestion: no rule fired and no alert was closed with a class.'),
      votesList(weak && weak.votes),
      eff ? el('p', { class: 'hint' }, `In force: ${eff.class} (from ${SOURCES[eff.source] || eff.source})`) : null);
  }, (e) => { card.replaceChildren(el('h3', {}, 'Rules'), el('p', { class: 'error' }, e.message)); });
  return card;
}
