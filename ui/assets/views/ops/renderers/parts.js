// What the result renderers share: lists, numbers as definition lists, the JSON fallback.

import { h } from '../../../lib/dom.js';

/** Strings (or anything, as JSON) as a list; "None." when there are none. */
export const list = (items, cls) => (Array.isArray(items) && items.length
  ? h('ol', { class: cls || 'plain-list' }, items.map((x) => h('li', {}, typeof x === 'string' ? x : JSON.stringify(x))))
  : h('p', { class: 'muted' }, 'None.'));

/** An object's values by dotted key, one level of nesting flattened (`objective.availability`). */
function flat(obj) {
  const out = [];
  for (const [k, v] of Object.entries(obj || {})) {
    if (v && typeof v === 'object' && !Array.isArray(v)) for (const [k2, v2] of Object.entries(v)) out.push([`${k}.${k2}`, v2]);
    else out.push([k, v]);
  }
  return out;
}

/** Scalars of an object as a definition list (numbers rounded for reading). */
export function numbers(obj) {
  const entries = flat(obj).filter(([, v]) => v !== null && v !== undefined);
  if (!entries.length) return h('p', { class: 'muted' }, 'None.');
  return h('dl', { class: 'kv' }, entries.map(([k, v]) => [h('dt', {}, k.replace(/_/g, ' ')), h('dd', { class: typeof v === 'number' ? 'num-val' : '' },
    typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(Math.abs(v) < 1 ? 4 : 2))
      : v && typeof v === 'object' ? h('span', { class: 'mono' }, JSON.stringify(v)) : String(v ?? '—'))]));
}

/** A result the renderers could not show: as JSON (never an exception in a view). */
export function jsonFallback(r, what, e) {
  console.warn(`${what} rendering failed; showing JSON`, e);
  let text;
  try {
    text = JSON.stringify(r, null, 2);
  } catch {
    text = String(r);
  }
  return h('pre', { class: 'json panel' }, text);
}
