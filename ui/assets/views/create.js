// New incident form. The API validates; its messages are shown next to the field they name.

import { api } from '../lib/api.js';
import { errorBox, h, mount, toast } from '../lib/dom.js';
import { SEVERITIES } from '../lib/format.js';
import { fieldMarks, sending } from '../lib/form.js';

/**
 * Bind the API's field errors to inputs (`{field: input}`, each with a `.field-error` beside
 * it). Returns a function that shows one (and its error in `box`), or clears them for null.
 */
export function fieldErrors(inputs, box) {
  const mark = fieldMarks(inputs);
  return (e) => {
    mark(e);
    mount(box, e ? errorBox(e, 'Not saved') : null);
  };
}

function field(label, input, opts = {}) {
  return h('label', { class: `field${opts.wide ? ' wide' : ''}` }, label, input, h('span', { class: 'field-error' }));
}

/** `datetime-local` value (browser local time) to RFC 3339 UTC. */
export function localToUtc(v) {
  if (!v) return undefined;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? v : d.toISOString();
}

export function render(view, ctx) {
  const inputs = {
    service: h('input', { type: 'text', name: 'service', required: true, placeholder: 'router', autocomplete: 'off' }),
    env: h('select', { name: 'env' }, ['prod', 'staging', 'dev'].map((x) => h('option', { value: x }, x))),
    severity: h('select', { name: 'severity' }, SEVERITIES.map((s) => h('option', { value: s }, s))),
    title: h('input', { type: 'text', name: 'title', required: true, placeholder: 'What is wrong, in one line' }),
    summary: h('textarea', { name: 'summary', rows: 4, placeholder: 'What is known so far (markdown)' }),
    owner: h('input', { type: 'text', name: 'owner', placeholder: 'who is on it' }),
    started_at: h('input', { type: 'datetime-local', name: 'started_at', step: 1 }),
    labels: h('input', { type: 'text', name: 'labels', placeholder: 'comma,separated' }),
  };
  inputs.severity.value = 'P2';
  const box = h('div');
  const show = fieldErrors(inputs, box);
  const submit = h('button', { class: 'primary', type: 'submit', id: 'create-submit' }, 'Create incident');
  // Sent once however often it is pressed (the button stays disabled until the new incident
  // opens); a refused request keeps everything typed, with the field the API names marked.
  const form = h('form', { class: 'panel stack', id: 'create-form', novalidate: true, onsubmit: (e) => {
    e.preventDefault();
    sending(form, async () => {
      const body = {
        service: inputs.service.value.trim(),
        env: inputs.env.value,
        severity: inputs.severity.value,
        title: inputs.title.value.trim(),
        summary: inputs.summary.value,
      };
      if (inputs.owner.value.trim()) body.owner = inputs.owner.value.trim();
      if (inputs.started_at.value) body.started_at = localToUtc(inputs.started_at.value);
      const labels = inputs.labels.value.split(',').map((x) => x.trim()).filter(Boolean);
      if (labels.length) body.labels = labels;
      const inc = await api('/api/incidents', { method: 'POST', body });
      toast(`Created ${inc.id}`, 'ok');
      ctx.navigate(`#/incidents/${encodeURIComponent(inc.id)}`);
    }, { show, keepDisabled: true });
  } },
  h('div', { class: 'form-grid' },
    field('Service *', inputs.service),
    field('Environment', inputs.env),
    field('Severity', inputs.severity),
    field('Title *', inputs.title, { wide: true }),
    field('Summary', inputs.summary, { wide: true }),
    field('Owner', inputs.owner),
    field('Impact started (your local time; empty = now)', inputs.started_at),
    field('Labels', inputs.labels)),
  box,
  h('div', { class: 'row' }, submit, h('a', { href: '#/incidents' }, 'Cancel')));
  mount(view, h('h1', {}, 'New incident'), form);
  inputs.service.focus();
}
