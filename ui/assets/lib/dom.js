// DOM helpers. Everything the console shows from the API goes in as text nodes or attribute
// values, never as HTML: incident content cannot inject markup or script.

/**
 * Create an element. `attrs` keys: `class`, `on<event>` (a function; anything else under an
 * `on…` key is dropped, never set as an inline handler), `dataset` (object),
 * `hidden`/`disabled`/`checked`/`selected`/`value` (properties), anything else as an
 * attribute. Children: strings and numbers become text; null/undefined/false are skipped;
 * arrays are flattened.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    // Event handlers only as functions: an `on…` key with a string (from data) would be an
    // inline script, so it is dropped.
    else if (/^on/i.test(k)) { if (typeof v === 'function') el.addEventListener(k.slice(2), v); }
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

/**
 * Only http(s), mailto, in-page (`#…`) and same-origin relative links; never javascript:,
 * data:, protocol-relative (`//host`) or anything with control characters (browsers strip
 * those before reading the scheme). `blob:` only for this page's own object URLs.
 */
export function safeHref(href) {
  const v = String(href);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(v) || v.trim() !== v) return false;
  if (v.startsWith('#')) return true;
  if (v.startsWith('blob:')) return v.startsWith(`blob:${window.location.origin}/`);
  let u;
  try {
    u = new URL(v, window.location.href);
  } catch {
    return false;
  }
  if (u.protocol === 'http:' || u.protocol === 'https:') {
    // A relative-looking link must stay on this origin (`//evil`, `/\\evil` do not).
    const absolute = /^[a-z][a-z0-9+.-]*:/i.test(v);
    return absolute || u.origin === window.location.origin;
  }
  return u.protocol === 'mailto:';
}

/** Replace an element's children. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** An error block for a failure (its `describe()` when it has one: readable, never swallowed). */
export function errorBox(e, what, retry) {
  const text = e && e.describe ? e.describe() : String((e && e.message) || e);
  const box = h('div', { class: 'error-box', role: 'alert' }, h('strong', {}, what ? `${what}: ` : 'Error: '), text);
  if (retry) {
    box.append(' ', h('button', {
      type: 'button', class: 'retry', onclick: (ev) => { ev.currentTarget.disabled = true; retry(); },
    }, 'Retry'));
  }
  return box;
}

/** A placeholder while `el`'s content loads. */
export function loading(el, text = 'Loading…') {
  mount(el, h('div', { class: 'empty' }, text));
}

/** Show a short message in the corner; errors stay longer. */
export function toast(message, kind = 'info') {
  const box = document.getElementById('toasts');
  if (!box) return;
  const t = h('div', { class: `toast ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, message);
  box.appendChild(t);
  setTimeout(() => t.remove(), kind === 'error' ? 9000 : 3500);
}

/**
 * How long a filter field waits for the next key before it asks the server: short enough
 * that a result is on screen within ~150 ms at 100k incidents (the API answers in < 25 ms),
 * long enough that a word typed at speed is one request.
 */
export const TYPING_MS = 80;

/**
 * Debounce a function; `.cancel()` drops a pending call. With `maxWait`, a call is made at
 * the latest that long after the first of a burst (calls that never stop coming still get
 * through, at most every `maxWait` ms).
 */
export function debounce(fn, ms, maxWait = 0) {
  let t = null;
  let first = 0;
  let lastArgs = [];
  const fire = () => {
    t = null;
    first = 0;
    fn(...lastArgs);
  };
  const run = (...args) => {
    lastArgs = args;
    const now = Date.now();
    if (!first) first = now;
    clearTimeout(t);
    const wait = maxWait > 0 ? Math.max(0, Math.min(ms, first + maxWait - now)) : ms;
    t = setTimeout(fire, wait);
  };
  run.cancel = () => {
    clearTimeout(t);
    t = null;
    first = 0;
  };
  return run;
}
