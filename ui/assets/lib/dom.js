// DOM helpers. Everything the console shows from the API goes in as text nodes or attribute
// values, never as HTML: incident content cannot inject markup or script.

/**
 * Create an element. `attrs` keys: `class`, `on<event>` (a function), `dataset` (object),
 * `hidden`/`disabled`/`checked`/`selected`/`value` (properties), anything else as an
 * attribute. Children: strings and numbers become text; null/undefined/false are skipped;
 * arrays are flattened.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (['hidden', 'disabled', 'checked', 'selected', 'value', 'open'].includes(k)) el[k] = v;
    else if (k === 'href' && !safeHref(String(v))) continue;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** Only http(s), mailto, in-page and relative links; never javascript: or data:. */
export function safeHref(href) {
  const v = href.trim().toLowerCase();
  if (v.startsWith('#') || v.startsWith('/') || v.startsWith('./') || v.startsWith('../')) return true;
  if (v.startsWith('http://') || v.startsWith('https://') || v.startsWith('mailto:')) return true;
  if (v.startsWith('blob:')) return true;
  return !/^[a-z][a-z0-9+.-]*:/.test(v);
}

/** Replace an element's children. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** Show a short message in the corner; errors stay longer. */
export function toast(message, kind = 'info') {
  const box = document.getElementById('toasts');
  if (!box) return;
  const t = h('div', { class: `toast ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, message);
  box.appendChild(t);
  setTimeout(() => t.remove(), kind === 'error' ? 9000 : 3500);
}

/** Debounce a function. */
export function debounce(fn, ms) {
  let t = null;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
}
