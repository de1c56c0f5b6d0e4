// rule-editor.js - the form that writes or changes a rule.  It validates
// as you type (the server parses; the answer names the class and channels)
// and shows a parse error with a caret under the position the server names.
import { api } from './http.js';
import { el } from './dom.js';

const VALIDATE_AFTER_MS = 250;    // typing pause before asking the server
const PLACEHOLDER = 'kurtosis(ch("accel_x")) > 6 and band_energy(ch("accel_x"), 300, 900) > 0.4 => bearing_outer_race';
const LANGUAGE = 'condition => class. Channel features: rms peak crest kurtosis mean std dominant_freq of ' +
  'ch("name"); band_energy(ch("name"), lo_hz, hi_hz) is the fraction of the channel\'s power in the band ' +
  '(0..1). abs min max; + - * /; < <= > >= == !=; and or not. Metadata: equipment_type site device detector ' +
  '(strings), score sample_rate. A rule that cannot be decided (missing channel, division by zero) abstains. ' +
  'At most 1024 bytes, 256 nodes, 32 levels.';

function languageHelp(classes) {
  const names = classes.map((c) => c.name + (c.equipment_type ? ` (${c.equipment_type})` : '')).join(', ');
  return el('details', { class: 'hint' }, el('summary', {}, 'Language'),
    el('p', {}, LANGUAGE), el('p', {}, 'Classes: ', names));
}

class RuleEditor {
  // onSaved(note) shows the rules again with a note on what was saved.
  constructor(classes, onSaved) {
    this.onSaved = onSaved;
    this.editing = null;        // the rule being changed; null for a new one
    this.seq = 0;               // the newest validation: older answers are dropped
    this.timer = null;
    this.name = el('input', { id: 'rule-name', type: 'text', maxlength: 100, required: true });
    this.expr = el('textarea', {
      id: 'rule-expr', rows: 3, maxlength: 1024, spellcheck: 'false', placeholder: PLACEHOLDER,
    });
    this.weight = el('input', { id: 'rule-weight', type: 'number', min: 0.1, max: 100, step: 0.1, value: 1 });
    this.enabled = el('input', { id: 'rule-enabled', type: 'checkbox', checked: true });
    this.result = el('div', { id: 'rule-check', class: 'rule-check' });
    this.title = el('h3', {}, 'New rule');
    this.expr.addEventListener('input', () => {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.validate(), VALIDATE_AFTER_MS);
    });
    this.node = this.form(classes);
    this.load(null);
  }

  form(classes) {
    const buttons = el('div', { class: 'filters' },
      el('label', {}, 'Weight', this.weight), el('label', {}, 'Enabled', this.enabled),
      el('button', { type: 'button', id: 'rule-validate', onclick: () => this.validate() }, 'Validate'),
      el('button', { class: 'primary', type: 'submit', id: 'rule-save' }, 'Save'),
      el('button', { type: 'button', onclick: () => this.load(null) }, 'New'));
    return el('form', { class: 'card rule-form', id: 'rule-form', onsubmit: (ev) => this.save(ev) },
      this.title, el('label', {}, 'Name', this.name), el('label', {}, 'Rule', this.expr),
      buttons, this.result, languageHelp(classes));
  }

  // The expression with the character at pos marked (a space past the end).
  showParseError(text, pos, msg) {
    const p = Math.max(0, Math.min(pos, text.length));
    this.result.className = 'rule-check bad';
    this.result.replaceChildren(el('div', { class: 'error', id: 'rule-error' }, msg),
      el('pre', { class: 'expr-pos' },
        text.slice(0, p), el('mark', { id: 'rule-error-at' }, text.slice(p, p + 1) || ' '), text.slice(p + 1)),
      el('div', { class: 'hint' }, `position ${p} (0-based)`));
  }

  // True when the server accepts the expression as it is now.
  async validate() {
    const my = ++this.seq, text = this.expr.value;
    if (!text.trim()) { this.result.replaceChildren(); return false; }
    let v;
    try { v = await api('POST', '/api/v1/rules/validate', { expr: text }); } catch (e) {
      this.result.className = 'rule-check bad';
      this.result.replaceChildren(el('div', { class: 'error', id: 'rule-error' }, e.message));
      return false;
    }
    if (my !== this.seq) return false;
    if (!v.valid) { this.showParseError(text, v.error.position, v.error.message); return false; }
    this.result.className = 'rule-check ok';
    this.result.replaceChildren(el('span', { id: 'rule-valid' }, `valid: labels ${v.class}`),
      v.channels.length ? ` · channels ${v.channels.join(', ')}` : '');
    return true;
  }

  async save(ev) {
    ev.preventDefault();
    if (!(await this.validate())) return;
    const body = {
      name: this.name.value.trim(), expr: this.expr.value, weight: Number(this.weight.value),
      enabled: this.enabled.checked,
    };
    try {
      const r = this.editing
        ? await api('PATCH', `/api/v1/rules/${this.editing.id}`, body)
        : await api('POST', '/api/v1/rules', body);
      this.onSaved(`saved rule #${r.id} (${body.name})`);
    } catch (e) {
      // The server checks again; a parse error names its position.
      const m = /position (\d+)/.exec(e.message);
      if (m) this.showParseError(this.expr.value, Number(m[1]), e.message);
      else {
        this.result.className = 'rule-check bad';
        this.result.replaceChildren(el('div', { class: 'error', id: 'rule-error' }, e.message));
      }
    }
  }

  // Fill the form with rule r to change it, or empty it for a new rule.
  load(r) {
    this.editing = r;
    this.title.textContent = r ? `Edit rule #${r.id}` : 'New rule';
    this.name.value = r ? r.name : '';
    this.expr.value = r ? r.expr : '';
    this.weight.value = r ? r.weight : 1;
    this.enabled.checked = r ? r.enabled : true;
    this.result.replaceChildren();
    if (r) { this.validate(); this.node.scrollIntoView({ behavior: 'smooth' }); }
  }
}

// { node, load(rule) }
export const ruleEditor = (classes, onSaved) => new RuleEditor(classes, onSaved);
