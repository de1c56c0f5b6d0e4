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

// A table scrolls sideways inside a box of its own, header row and all, so
// that a narrow window scrolls the table and never the whole page (its
// cells stay on one line: a wrapped time or id reads worse than a scroll).
// Every table reaches the page through showPage or place, which box it.
const SCROLL_BOX = 'table-scroll';

function boxTables(nodes) {
  // null and undefined are skipped, as el() skips them: replaceChildren
  // would show them as the text "null"
  return nodes.filter((n) => n !== null && n !== undefined).map((n) => {
    if (!n || n.nodeType !== Node.ELEMENT_NODE) return n;
    if (n.tagName === 'TABLE') return el('div', { class: SCROLL_BOX }, n);
    for (const t of n.querySelectorAll('table')) {
      if (t.parentElement.classList.contains(SCROLL_BOX)) continue;
      const box = el('div', { class: SCROLL_BOX });
      t.replaceWith(box);
      box.append(t);
    }
    return n;
  });
}

// The page's main area: every page replaces its content.
export const mainBox = () => byId('app');
export function showPage(...nodes) { mainBox().replaceChildren(...boxTables(nodes)); }
// A part of the page (a detail card, say) replaced after the page is shown.
export function place(box, ...nodes) { box.replaceChildren(...boxTables(nodes)); }
export function showError(message) { showPage(el('p', { class: 'error' }, message)); }

// The page's name in the header.
export function crumbs(text) { byId('crumbs').textContent = text; }
