// dom.js - building and placing elements.  Nothing here runs at import
// time, so modules that import it load outside a browser too.

// el('button', { class: 'primary', onclick: f }, 'Save'): attributes
// named on* become listeners; true is an empty attribute, false, null and
// undefined leave it out; children are nodes or text, nested arrays
// flattened, null and undefined skipped.
export function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'class') e.className = v;
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? '' : v);
  }
  for (const k of kids.flat()) if (k !== null && k !== undefined) e.append(k.nodeType ? k : String(k));
  return e;
}

export const byId = (id) => document.getElementById(id);

// The page's main area: every page replaces its content.
export const mainBox = () => byId('app');
export function showPage(...nodes) { mainBox().replaceChildren(...nodes); }
export function showError(message) { showPage(el('p', { class: 'error' }, message)); }

// The page's name in the header.
export function crumbs(text) { byId('crumbs').textContent = text; }
