// Forms: sending once at a time (a double press sends once), fields generated from a JSON
// schema, and the API's 422 answers (`error.field`) shown beside the field they name, with the
// message in the field's `.field-error`.

import { errorBox, h, mount, toast } from './dom.js';

/** Forms, buttons and keys with a send in flight. */
const inFlight = new Set();

/** Whether a send under `key` (see `sending`) is in flight: buttons drawn meanwhile start disabled. */
export const isSending = (key) => inFlight.has(key);

/**
 * The attributes of a button drawn while `key` may be in flight: disabled while it is, and
 * marked with the key, so the send re-enables this button (not only the one pressed, which a
 * reload may have replaced) when it fails.
 */
export const sendAttrs = (key) => ({ disabled: inFlight.has(key), 'data-send-key': String(key) });

/**
 * Send from a form or from buttons, once at a time. `target`: a form (its submit buttons are
 * disabled), a button, or an array of buttons (a decision's Allow and Drop: pressing either
 * while one is sent does nothing). While `send()` runs, another call for any of them (or for
 * the same `key`) is ignored, the buttons are disabled and the form (or each button) has
 * `aria-busy="true"`; afterwards the buttons this disabled are enabled again (in `finally`),
 * unless `keepDisabled` and the send succeeded (the caller replaces them: the view navigates
 * away, or the list they are in is drawn again).
 *
 * `key`: what else makes two sends the same, for buttons that a reload may draw anew while
 * one is sent (an item's id): draw them with `...sendAttrs(key)`.
 *
 * `send` makes the request and, on success, clears the input and confirms (a toast). On an
 * error the input is left as it is and the error shown: by `show(e)` when given (called with
 * null before sending, like `fieldErrors`); else the field it names is marked by `marks` (a
 * `fieldMarks` function) and the error goes in `box` as an `errorBox` headed `what`, or in an
 * error toast when there is no box. Resolves to what `send` returned; undefined when ignored
 * or failed (never rejects).
 */
export async function sending(target, send, { key, show, marks, box, what = 'Not saved', keepDisabled = false } = {}) {
  const form = target instanceof HTMLFormElement ? target : null;
  const buttons = form
    ? [...form.querySelectorAll('button[type=submit], button:not([type]), input[type=submit]')]
    : (Array.isArray(target) ? target : [target]).filter(Boolean);
  const keys = [...(form ? [form] : []), ...buttons, ...(key === undefined ? [] : [key])];
  if (keys.some((k) => inFlight.has(k))) return undefined;
  const busy = form ? [form] : buttons;
  // Only the buttons enabled now are enabled again (one disabled for another reason stays).
  const disabled = buttons.filter((b) => !b.disabled);
  for (const k of keys) inFlight.add(k);
  for (const b of disabled) b.disabled = true;
  for (const el of busy) el.setAttribute('aria-busy', 'true');
  const report = (e) => {
    if (show) return show(e);
    if (marks) marks(e);
    if (box) mount(box, e ? errorBox(e, what) : null);
    else if (e) toast(e.describe ? e.describe() : String(e.message || e), 'error');
    return undefined;
  };
  let ok = false;
  try {
    report(null);
    const out = await send();
    ok = true;
    return out;
  } catch (e) {
    report(e);
    return undefined;
  } finally {
    for (const k of keys) inFlight.delete(k);
    for (const el of busy) el.removeAttribute('aria-busy');
    if (!(ok && keepDisabled)) {
      for (const b of disabled) b.disabled = false;
      // Buttons of the same key drawn anew while this was sent.
      if (key !== undefined) {
        for (const b of document.querySelectorAll('[data-send-key]')) if (b.dataset.sendKey === String(key)) b.disabled = false;
      }
    }
  }
}

const escapeRe = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Marks for field errors. `fields`: a Map (or object) of field name → `{input, err}` (`err`
 * the element for the message) or → the input itself (its message goes in the
 * `.field-error` beside it). Returns `show(e)`: clears every mark, then marks the field
 * `e.field` names, or the nearest enclosing one the form has (`a.b[0].c` → `a.b.c`, `a.b`,
 * `a`), and focuses it; true when one was marked. With `prefix`, names without it get it
 * (`time_range.from` → `input.time_range.from`).
 */
export function fieldMarks(fields, { prefix = '' } = {}) {
  const map = fields instanceof Map ? fields : new Map(Object.entries(fields));
  const parts = (f) => (f && f.input ? f : { input: f, err: f.parentElement && f.parentElement.querySelector('.field-error') });
  return (e) => {
    for (const f of map.values()) {
      const { input, err } = parts(f);
      input.classList.remove('invalid');
      input.removeAttribute('aria-invalid');
      if (err) err.textContent = '';
    }
    if (!e || !e.field) return false;
    const field = String(e.field);
    let key = !prefix || field === prefix || field.startsWith(`${prefix}.`) ? field : `${prefix}.${field}`;
    key = key.replace(/\[(\d+)\]/g, '');
    while (key && !map.has(key)) key = key.includes('.') ? key.slice(0, key.lastIndexOf('.')) : '';
    if (!map.has(key)) return false;
    const { input, err } = parts(map.get(key));
    input.classList.add('invalid');
    input.setAttribute('aria-invalid', 'true');
    if (err) err.textContent = String(e.message).replace(new RegExp(`^${escapeRe(field)}: `), '');
    if (input.focus) input.focus();
    return true;
  };
}

/** The type of a schema (`["string","null"]` → "string"). */
function typeOf(s) {
  if (!s || typeof s !== 'object') return 'any';
  let t = s.type;
  if (Array.isArray(t)) t = t.find((x) => x !== 'null');
  if (!t && Array.isArray(s.enum)) t = 'string';
  if (!t && s.properties) t = 'object';
  return t || 'any';
}

/**
 * Fields for a JSON schema of type object (nested objects as fieldsets), named from `input`.
 * Returns `{el, read, showError, fields}`: `read()` gives the input (empty fields left out,
 * so the graph's defaults apply) or throws a `fieldError`; `showError(e)` marks the field an
 * API error names (`input.time_range.from`), see `fieldMarks`.
 */
export function schemaFields(schema) {
  const fields = new Map();

  function hint(s, extra) {
    const parts = [];
    if (s.description) parts.push(s.description);
    if (extra) parts.push(extra);
    if (s.minimum !== undefined && s.maximum !== undefined) parts.push(`${s.minimum}–${s.maximum}`);
    else if (s.minimum !== undefined) parts.push(`≥ ${s.minimum}`);
    else if (s.maximum !== undefined) parts.push(`≤ ${s.maximum}`);
    if (s.default !== undefined && typeOf(s) !== 'object') parts.push(`default ${JSON.stringify(s.default)}`);
    return parts.length ? h('span', { class: 'hint' }, parts.join(' · ')) : null;
  }

  function label(name, required) {
    return h('span', { class: 'field-name' }, h('span', { class: 'mono' }, name), required ? h('span', { class: 'req', title: 'required' }, ' *') : null);
  }

  /** One property: `{el, read}`. */
  function build(name, s, path, required) {
    const t = typeOf(s);
    const id = `f-${path.replace(/[^a-zA-Z0-9_]+/g, '-')}`;
    if (t === 'object' && s.properties) {
      const inner = buildObject(s, path);
      const err = h('span', { class: 'field-error' });
      const fs = h('fieldset', { class: 'wide schema-object', id, 'data-field': path },
        h('legend', {}, label(name, required), s.description ? h('span', { class: 'hint' }, ` · ${s.description}`) : null),
        inner.el, err);
      fields.set(path, { input: fs, err });
      return {
        el: fs,
        read: () => {
          const v = inner.read();
          return Object.keys(v).length || required ? v : undefined;
        },
      };
    }
    let input;
    let read;
    let extra = null;
    let wide = false;
    let inline = false;
    if (Array.isArray(s.enum)) {
      const values = s.enum;
      input = h('select', { id, name: path },
        !required || s.default === undefined ? h('option', { value: '' }, s.default === undefined ? '—' : `— (default ${s.default})`) : null,
        values.map((v, i) => h('option', { value: String(i) }, String(v))));
      if (s.default !== undefined) {
        const i = values.findIndex((v) => v === s.default);
        if (i >= 0) input.value = String(i);
      }
      read = () => (input.value === '' ? undefined : values[Number(input.value)]);
    } else if (t === 'boolean') {
      input = h('input', { type: 'checkbox', id, name: path, checked: s.default === true });
      inline = true;
      read = () => (input.checked === (s.default === true) && !required ? undefined : input.checked);
    } else if (t === 'integer' || t === 'number') {
      input = h('input', {
        type: 'number', id, name: path, min: s.minimum, max: s.maximum,
        step: t === 'integer' ? 1 : 'any', placeholder: s.default !== undefined ? String(s.default) : '',
      });
      read = () => {
        if (input.validity && input.validity.badInput) throw fieldError(path, `${name} must be a number`);
        if (input.value.trim() === '') return undefined;
        return Number(input.value);
      };
    } else if (t === 'array' && typeOf(s.items) === 'string') {
      input = h('input', { type: 'text', id, name: path, placeholder: 'comma, separated', autocomplete: 'off' });
      extra = 'comma-separated';
      read = () => {
        const v = input.value.split(',').map((x) => x.trim()).filter(Boolean);
        return v.length ? v : undefined;
      };
    } else if (t === 'string') {
      const long = (s.maxLength && s.maxLength > 400) || s.format === 'markdown';
      if (long) {
        input = h('textarea', { id, name: path, rows: 3 });
        wide = true;
      } else {
        input = h('input', { type: 'text', id, name: path, autocomplete: 'off' });
        if (s.format === 'date-time') {
          input.placeholder = 'YYYY-MM-DDThh:mm:ssZ';
          extra = `RFC 3339, e.g. ${new Date(Math.floor(Date.now() / 3600000) * 3600000).toISOString().replace('.000Z', 'Z')}`;
        } else if (s.default !== undefined) {
          input.placeholder = String(s.default);
        }
      }
      read = () => (input.value.trim() === '' ? undefined : input.value.trim());
    } else {
      // Anything the form cannot show as a plain field: JSON text.
      input = h('textarea', { id, name: path, rows: 3, class: 'mono', placeholder: 'JSON' });
      wide = true;
      extra = 'JSON';
      read = () => {
        if (input.value.trim() === '') return undefined;
        try {
          return JSON.parse(input.value);
        } catch (e) {
          throw fieldError(path, `${name} is not valid JSON (${e.message})`);
        }
      };
    }
    const err = h('span', { class: 'field-error' });
    fields.set(path, { input, err });
    const el = inline
      ? h('div', { class: 'field check-field', 'data-field': path }, h('label', { class: 'check' }, input, label(name, required)), hint(s, extra), err)
      : h('label', { class: `field${wide ? ' wide' : ''}`, 'data-field': path }, label(name, required), input, hint(s, extra), err);
    return { el, read };
  }

  function buildObject(s, path) {
    const req = new Set(s.required || []);
    const props = Object.entries(s.properties || {});
    // Required fields first, then the rest in the schema's order.
    props.sort((a, b) => Number(req.has(b[0])) - Number(req.has(a[0])));
    const parts = props.map(([name, p]) => [name, build(name, p, `${path}.${name}`, req.has(name))]);
    return {
      el: h('div', { class: 'form-grid' }, parts.map(([, p]) => p.el)),
      read: () => {
        const out = {};
        for (const [name, p] of parts) {
          const v = p.read();
          if (v !== undefined) out[name] = v;
        }
        return out;
      },
    };
  }

  const root = buildObject(schema || {}, 'input');

  const showError = fieldMarks(fields, { prefix: 'input' });

  return { el: root.el, read: root.read, showError, fields };
}

/** A client-side error for one field, shaped like the API's 422 (`field`, `describe()`). */
export function fieldError(field, message) {
  const e = new Error(message);
  e.field = field;
  e.describe = () => `Invalid input: ${message}.`;
  return e;
}
