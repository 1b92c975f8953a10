// Ops: the graph runner's room. Graphs and their input forms (generated from each graph's
// JSON schema), one run followed live (node chain, events, cancel, the result rendered for
// incident_triage and postmortem_draft), the run history, and work waiting for a person.
//
// URLs: `#/ops`, `#/ops/graphs/<name>`, `#/ops/runs?graph=&status=`, `#/ops/runs/<run_id>`.

import { api } from '../lib/api.js';
import { h, mount, toast } from '../lib/dom.js';
import { bytes, eventType, idEl, sevBadge, timeEl, utc } from '../lib/format.js';
import { renderMarkdown } from '../lib/markdown.js';
import { ACTIVE_RUN, RUN_STATUSES, cancelRun, currentNode, followRun, isRunId, listGraphs, nodeStateTracker, notRunIdError, startRun } from '../lib/runs.js';
import { errorBox, liveReload, loading } from './common.js';

const enc = (path) => String(path).split('/').map(encodeURIComponent).join('/');
export const runHref = (id) => `#/ops/runs/${encodeURIComponent(id)}`;
const graphHref = (name) => `#/ops/graphs/${encodeURIComponent(name)}`;

export function render(view, ctx) {
  const [, a, b] = ctx.parts;
  if (a === 'runs' && b) return isRunId(b) ? renderRun(view, ctx, b) : renderNotRunId(view, b);
  if (a === 'runs') return renderHistory(view, ctx);
  if (a === 'graphs' && b) return renderGraph(view, ctx, b);
  return renderHome(view, ctx);
}

// ---- small pieces -------------------------------------------------------------------------

export function runStatusBadge(status) {
  return h('span', { class: `badge st rs-${status}`, 'data-status': status }, status);
}

/** The node chain; with `states` (from nodeStates) each node shows how far it got. */
function chain(nodes, states) {
  return h('ol', { class: 'chain' }, nodes.map((n) => {
    const s = states ? states.get(n.name) || { state: 'pending' } : null;
    const label = s ? s.state : '';
    return h('li', {
      class: s ? `n-${s.state}` : '',
      'data-node': n.name,
      'data-state': s ? s.state : undefined,
      title: `${n.name}${n.safe_to_repeat ? '' : ' (not repeated after an interruption)'}${s ? `: ${label}` : ''}${s && s.error ? ` · ${s.error}` : ''}`,
    }, h('span', { class: 'mono' }, n.name),
    s && s.state === 'done' && typeof s.elapsed_ms === 'number' ? h('span', { class: 'n-ms' }, ms(s.elapsed_ms)) : null,
    s && s.state !== 'done' && s.state !== 'pending' ? h('span', { class: 'n-ms' }, label) : null);
  }));
}

function ms(n) {
  if (typeof n !== 'number') return '';
  return n < 1000 ? `${Math.round(n)} ms` : `${(n / 1000).toFixed(n < 10000 ? 2 : 1)} s`;
}

function duration(from, to) {
  const a = Date.parse(from);
  const b = to ? Date.parse(to) : Date.now();
  if (Number.isNaN(a) || Number.isNaN(b)) return '—';
  return ms(Math.max(0, b - a));
}

// ---- home ---------------------------------------------------------------------------------

function renderHome(view, ctx) {
  const graphsBox = h('div', { id: 'ops-graphs' });
  const requeue = requeueSection();
  const runs = runTable(ctx, { limit: 10, paging: false });
  mount(view,
    h('div', { class: 'row' }, h('h1', {}, 'Ops'), h('span', { class: 'spacer' }),
      h('a', { class: 'btn', href: '#/ops/runs', id: 'ops-history-link' }, 'Run history →')),
    h('section', {}, h('h2', {}, 'Graphs'), graphsBox),
    requeue.el,
    h('section', {}, h('div', { class: 'row section-head' }, h('h2', {}, 'Recent runs'), h('span', { class: 'spacer' }), h('a', { href: '#/ops/runs' }, 'All runs')), runs.el));
  loading(graphsBox);
  listGraphs(true).then((graphs) => {
    if (!graphs.length) {
      mount(graphsBox, h('div', { class: 'table-wrap' }, h('div', { class: 'empty' }, 'This server has no graphs registered.')));
      return;
    }
    mount(graphsBox, h('div', { class: 'table-wrap' }, h('table', { class: 'grid', id: 'graph-table' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Graph'), h('th', {}, 'What it does'), h('th', {}, 'Nodes'), h('th', { class: 'num' }, 'Timeout'), h('th', {}))),
      h('tbody', {}, graphs.map((g) => {
        const href = graphHref(g.name);
        return h('tr', { class: 'clickable', 'data-href': href, 'data-graph': g.name, onclick: (e) => { if (!e.target.closest('a,button')) ctx.navigate(href); } },
          h('td', {}, h('a', { href, class: 'mono' }, g.name)),
          h('td', { class: 'title-cell' }, g.description || ''),
          h('td', {}, chain(g.nodes || [])),
          h('td', { class: 'num' }, `${g.default_timeout_s} s`),
          h('td', {}, h('a', { class: 'btn', href }, 'Start…')));
      })))));
  }).catch((e) => mount(graphsBox, errorBox(e, 'Could not list graphs')));
  return () => { runs.cleanup(); requeue.cleanup(); };
}

// ---- requeue: work waiting for a person's decision -----------------------------------------

function requeueSection() {
  const body = h('div', { id: 'requeue' });
  const el = h('section', { id: 'requeue-section', hidden: true }, h('h2', {}, 'Waiting for a decision'), body);
  let seq = 0;
  // A server without the requeue room (404/405): not asked again while this view lives.
  let unsupported = false;
  async function load() {
    if (unsupported) return;
    const my = ++seq;
    try {
      const r = await api('/v1/requeue');
      if (my !== seq) return;
      el.hidden = false;
      const items = r.items || [];
      if (!items.length) {
        mount(body, h('p', { class: 'muted' }, 'Nothing is waiting for a decision.'));
        return;
      }
      mount(body, h('div', { class: 'table-wrap' }, h('table', { class: 'grid compact', id: 'requeue-table' },
        h('thead', {}, h('tr', {}, ['Item', 'Kind', 'Run', 'Node', 'Reason', 'Status', 'Since', ''].map((c) => h('th', {}, c)))),
        h('tbody', {}, items.map((it) => h('tr', { 'data-id': it.id },
          h('td', {}, idEl(it.id)),
          h('td', {}, it.kind),
          h('td', {}, it.run_id ? idEl(it.run_id, runHref(it.run_id)) : '—', it.graph ? h('div', { class: 'muted mono' }, it.graph) : null),
          h('td', { class: 'mono' }, it.node || '—'),
          h('td', { class: 'title-cell' }, it.reason || ''),
          h('td', {}, h('span', { class: 'badge st' }, it.status)),
          h('td', {}, timeEl(it.created_at)),
          h('td', {}, it.status === 'pending'
            ? [h('button', { type: 'button', class: 'primary requeue-allow', onclick: (e) => resolve(it, true, e.currentTarget) }, 'Allow'), ' ',
              h('button', { type: 'button', class: 'danger requeue-drop', onclick: (e) => resolve(it, false, e.currentTarget) }, 'Drop')]
            : null)))))));
    } catch (e) {
      if (my !== seq) return;
      // Servers without the requeue room answer 404: the section stays hidden.
      if (e.status === 404 || e.status === 405) { el.hidden = true; unsupported = true; return; }
      el.hidden = false;
      mount(body, errorBox(e, 'Could not list waiting work'));
    }
  }
  async function resolve(it, allow, button) {
    // Both of the row's buttons wait for the answer: one decision, one POST.
    const row = button && button.closest('tr');
    const buttons = row ? [...row.querySelectorAll('button')] : [];
    if (buttons.some((b) => b.disabled)) return;
    for (const b of buttons) b.disabled = true;
    try {
      await api(`/v1/requeue/${encodeURIComponent(it.id)}/resolve`, { method: 'POST', body: { allow } });
      toast(allow ? `Allowed ${it.id}` : `Dropped ${it.id}`, 'ok');
    } catch (e) {
      toast(e.describe ? e.describe() : String(e), 'error');
    } finally {
      for (const b of buttons) b.disabled = false;
    }
    load();
  }
  load();
  const cleanup = liveReload((ev) => !unsupported && (ev.type === 'ops.run' || ev.type.startsWith('ops.requeue')), load, 400);
  return { el, cleanup };
}

// ---- run history --------------------------------------------------------------------------

/**
 * A table of runs, newest first. `opts`: `graph`, `status` (fixed filters), `limit`,
 * `paging` (Previous/Next by cursor). Refreshes on `ops.run` while showing the first page.
 */
function runTable(ctx, opts) {
  const state = { graph: opts.graph || '', status: opts.status || '' };
  let cursors = [];
  let cursor = null;
  let next = null;
  let seq = 0;
  const notice = h('div');
  const table = h('div', { class: 'run-table' });
  const pager = h('div', { class: 'pager' });
  const el = h('div', {}, notice, table, opts.paging ? pager : null);

  async function load() {
    const my = ++seq;
    table.setAttribute('aria-busy', 'true');
    showPager(true);
    try {
      const page = await api('/v1/runs', { query: { graph: state.graph, status: state.status, limit: opts.limit || 50, cursor } });
      if (my !== seq) return;
      next = page.next_cursor || null;
      mount(notice);
      show(page.items || []);
    } catch (e) {
      if (my !== seq) return;
      next = null;
      mount(notice, errorBox(e, 'Could not load runs'));
      mount(table);
    } finally {
      if (my === seq) {
        table.removeAttribute('aria-busy');
        showPager();
      }
    }
  }

  function show(items) {
    if (!items.length) {
      mount(table, h('div', { class: 'table-wrap' }, h('div', { class: 'empty' },
        cursors.length ? 'No more runs.' : state.graph || state.status ? 'No runs match these filters.' : 'No runs yet. Start one from a graph above.')));
      return;
    }
    mount(table, h('div', { class: 'table-wrap' }, h('table', { class: 'grid', id: 'run-table' },
      h('thead', {}, h('tr', {}, ['Run', 'Graph', 'Status', 'Created', 'Took', 'Agent', 'Error'].map((c) => h('th', { class: c === 'Took' ? 'num' : undefined }, c)))),
      h('tbody', {}, items.map((r) => {
        const href = runHref(r.run_id);
        return h('tr', { class: 'clickable', 'data-href': href, 'data-id': r.run_id, 'data-status': r.status, 'data-graph': r.graph,
          onclick: (e) => { if (!e.target.closest('a,button')) ctx.navigate(href); } },
        h('td', {}, idEl(r.run_id, href)),
        h('td', { class: 'mono' }, r.graph),
        h('td', {}, runStatusBadge(r.status)),
        h('td', {}, timeEl(r.created_at)),
        h('td', { class: 'num' }, r.finished_at ? duration(r.created_at, r.finished_at) : h('span', { class: 'muted' }, '…')),
        h('td', { class: 'muted' }, r.agent_id || '—'),
        h('td', { class: 'title-cell err-cell', title: r.error || '' }, r.error ? shorten(r.error, 140) : ''));
      })))));
  }

  function showPager(busy = false) {
    if (!opts.paging) return;
    mount(pager,
      h('button', { type: 'button', id: 'runs-prev', disabled: busy || !cursors.length, onclick: () => { cursor = cursors.pop() ?? null; load(); } }, '← Previous'),
      h('span', { class: 'muted' }, `page ${cursors.length + 1}`),
      h('button', { type: 'button', id: 'runs-next', disabled: busy || !next, onclick: () => { cursors.push(cursor); cursor = next; load(); } }, 'Next →'));
  }

  load();
  const cleanup = liveReload((ev) => ev.type === 'ops.run' && (!state.graph || (ev.data && ev.data.graph === state.graph)), () => {
    if (!cursors.length) load();
    else mount(notice, h('div', { class: 'notice' }, 'Runs changed since this page loaded. ',
      h('a', { href: '#', onclick: (e) => { e.preventDefault(); cursors = []; cursor = null; load(); } }, 'Back to the first page')));
  }, 300);
  return {
    el,
    cleanup,
    setFilter(f) {
      Object.assign(state, f);
      cursors = [];
      cursor = null;
      load();
    },
  };
}

function shorten(s, n) {
  const t = String(s);
  return t.length > n ? `${t.slice(0, n - 1)}…` : t;
}

function renderHistory(view, ctx) {
  const state = { graph: ctx.query.get('graph') || '', status: ctx.query.get('status') || '' };
  const runs = runTable(ctx, { ...state, limit: 50, paging: true });
  const graphSel = h('select', { id: 'runs-graph', 'aria-label': 'Graph', onchange: (e) => { state.graph = e.target.value; changed(); } },
    h('option', { value: '' }, 'any graph'));
  if (state.graph) graphSel.appendChild(h('option', { value: state.graph }, state.graph));
  graphSel.value = state.graph;
  const statusSel = h('select', { id: 'runs-status', 'aria-label': 'Status', onchange: (e) => { state.status = e.target.value; changed(); } },
    h('option', { value: '' }, 'any status'), RUN_STATUSES.map((s) => h('option', { value: s }, s)));
  statusSel.value = state.status;
  function hashFor() {
    const p = new URLSearchParams();
    if (state.graph) p.set('graph', state.graph);
    if (state.status) p.set('status', state.status);
    const s = p.toString();
    return `#/ops/runs${s ? `?${s}` : ''}`;
  }
  function changed() {
    history.replaceState(null, '', hashFor());
    runs.setFilter(state);
  }
  listGraphs().then((graphs) => {
    for (const g of graphs) {
      if (![...graphSel.options].some((o) => o.value === g.name)) graphSel.appendChild(h('option', { value: g.name }, g.name));
    }
    graphSel.value = state.graph;
  }).catch(() => { /* the table reports connection problems */ });
  document.title = 'Runs · sofiia';
  mount(view,
    h('p', { class: 'muted detail-crumbs' }, h('a', { href: '#/ops' }, '← Ops')),
    h('h1', {}, 'Run history'),
    h('div', { class: 'filters' }, graphSel, statusSel,
      h('button', { type: 'button', id: 'runs-clear', onclick: () => { state.graph = ''; state.status = ''; graphSel.value = ''; statusSel.value = ''; changed(); } }, 'Clear')),
    runs.el);
  return runs.cleanup;
}

// ---- a graph and its input form -----------------------------------------------------------

function renderGraph(view, ctx, name) {
  loading(view);
  let runs = null;
  let disposed = false;
  listGraphs().then((graphs) => {
    if (disposed) return;
    const g = graphs.find((x) => x.name === name);
    if (!g) {
      mount(view, h('h1', {}, 'Graph ', h('span', { class: 'mono' }, name)),
        errorBox(new Error(`this server has no graph named ${name}; the graphs it has are listed on the Ops page`), 'Not found'),
        h('p', {}, h('a', { href: '#/ops' }, '← Ops')));
      return;
    }
    document.title = `${g.name} · sofiia`;
    runs = runTable(ctx, { graph: g.name, limit: 10, paging: false });
    mount(view,
      h('p', { class: 'muted detail-crumbs' }, h('a', { href: '#/ops' }, '← Ops'), ' / ', h('span', { class: 'mono' }, g.name)),
      h('h1', {}, 'Run ', h('span', { class: 'mono' }, g.name)),
      g.description ? h('p', {}, g.description) : null,
      chain(g.nodes || []),
      h('p', { class: 'muted' }, `Overall timeout ${g.default_timeout_s} s unless the input sets one. Definition `, h('span', { class: 'mono' }, g.definition_hash || '—'), '.'),
      inputForm(g, ctx),
      h('div', { class: 'row section-head' }, h('h2', {}, `Recent ${g.name} runs`), h('span', { class: 'spacer' }),
        h('a', { href: `#/ops/runs?graph=${encodeURIComponent(g.name)}` }, 'All of them')),
      runs.el);
    const first = view.querySelector('#run-form input, #run-form select, #run-form textarea');
    if (first) first.focus();
  }).catch((e) => {
    if (!disposed) mount(view, errorBox(e, 'Could not load graphs'), h('p', {}, h('a', { href: '#/ops' }, '← Ops')));
  });
  return () => { disposed = true; if (runs) runs.cleanup(); };
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
 * A form for a JSON schema of type object. Returns `{el, read, showError}`: `read()` gives the
 * input (empty fields left out, so the graph's defaults apply) or throws a field error;
 * `showError(e)` puts an API error beside the field it names (`input.time_range.from`).
 */
function schemaFields(schema) {
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

  function showError(e) {
    for (const { input, err } of fields.values()) {
      input.classList.remove('invalid');
      input.removeAttribute('aria-invalid');
      err.textContent = '';
    }
    if (!e || !e.field) return false;
    // The field named, or the nearest enclosing one the form has (`input.a.b` → `input.a`).
    const field = String(e.field);
    let key = field.startsWith('input') ? field : `input.${field}`;
    key = key.replace(/\[(\d+)\]/g, '');
    while (key && !fields.has(key)) key = key.includes('.') ? key.slice(0, key.lastIndexOf('.')) : '';
    const f = fields.get(key);
    if (!f) return false;
    f.input.classList.add('invalid');
    f.input.setAttribute('aria-invalid', 'true');
    f.err.textContent = String(e.message).replace(new RegExp(`^${field.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `), '');
    if (f.input.focus) f.input.focus();
    return true;
  }

  return { el: root.el, read: root.read, showError, fields };
}

function fieldError(field, message) {
  const e = new Error(message);
  e.field = field;
  e.describe = () => `Invalid input: ${message}.`;
  return e;
}

function inputForm(g, ctx) {
  const form = schemaFields(g.input_schema || {});
  const box = h('div', { id: 'run-form-error' });
  const submit = h('button', { type: 'submit', class: 'primary', id: 'run-submit' }, `Start ${g.name}`);
  const note = h('p', { class: 'muted' }, h('span', { class: 'req' }, '*'), ' required. Empty fields are left out, so the graph\'s defaults apply.');
  const el = h('form', { class: 'panel stack', id: 'run-form', novalidate: true, 'data-graph': g.name, onsubmit: async (e) => {
    e.preventDefault();
    form.showError(null);
    mount(box);
    let input;
    try {
      input = form.read();
    } catch (err) {
      form.showError(err);
      mount(box, errorBox(err, 'Not started'));
      return;
    }
    submit.disabled = true;
    try {
      const r = await startRun(g.name, input);
      toast(`Started ${r.run_id}`, 'ok');
      // Only if the operator is still on this form (not if they went elsewhere meanwhile).
      if (el.isConnected) ctx.navigate(runHref(r.run_id));
    } catch (err) {
      form.showError(err);
      mount(box, errorBox(err, 'Not started'));
    } finally {
      submit.disabled = false;
    }
  } }, h('h2', {}, 'Input'), form.el, note, box, h('div', { class: 'row' }, submit));
  return el;
}

// ---- one run ------------------------------------------------------------------------------

/** `#/ops/runs/<x>` where x cannot be a run id: say so, request nothing. */
function renderNotRunId(view, id) {
  document.title = 'Not a run · sofiia';
  mount(view,
    h('p', { class: 'muted detail-crumbs' }, h('a', { href: '#/ops' }, '← Ops'), ' / ', h('a', { href: '#/ops/runs' }, 'Runs')),
    h('h1', {}, 'Not a run id'),
    h('div', { class: 'error-box', role: 'alert', id: 'run-not-id' }, h('strong', {}, 'Not a run id: '),
      h('code', {}, String(id)), ' is not a run id. Run ids look like ', h('code', {}, 'gr_1a2b3c4d5e'), '; open a run from the ',
      h('a', { href: '#/ops/runs' }, 'run history'), '.'));
  return null;
}

/** Event rows shown at once; older ones behind "Show all". */
export const EVENT_ROWS = 500;

function renderRun(view, ctx, id) {
  const head = h('div');
  const facts = h('div');
  const chainBox = h('div', { id: 'run-chain' });
  const errBox = h('div', { id: 'run-error' });
  const resultBox = h('section', { id: 'run-result' });
  const eventsBody = h('tbody', { id: 'run-events' });
  const eventsCount = h('span', { class: 'muted', id: 'run-events-count' });
  const eventsMore = h('div', { id: 'run-events-more' });
  const inputBox = h('div');
  const main = h('div', { class: 'stack' }, facts, chainBox, errBox, resultBox,
    h('section', { class: 'panel' }, h('h2', {}, 'Events ', eventsCount), eventsMore,
      h('div', { class: 'table-wrap' }, h('table', { class: 'grid compact run-events' },
        h('thead', {}, h('tr', {}, h('th', { class: 'num' }, '#'), h('th', {}, 'Time'), h('th', {}, 'Type'), h('th', {}, 'Node'), h('th', {}, 'Details'))),
        eventsBody))),
    inputBox);
  mount(view, head, main);
  loading(facts);
  document.title = `${id} · sofiia`;

  let graph = null;
  let resultKey = null;
  let inputShown = false;
  let last = null;
  let graphAsked = false;
  let cancelling = false;
  const tracker = nodeStateTracker();
  const follower = followRun(id, (s) => {
    last = s;
    if (s.run && !graphAsked) {
      // The node chain comes from the graph's definition (nodes not reached yet included).
      graphAsked = true;
      listGraphs().then((gs) => {
        graph = gs.find((g) => g.name === s.run.graph) || null;
        if (graph && last) draw(last);
      }).catch(() => { /* the chain falls back to the nodes seen in events */ });
    }
    draw(s);
  });

  function draw({ run, events, error, retrying }) {
    if (!run) {
      if (error) {
        mount(head, h('h1', {}, 'Run ', h('span', { class: 'mono' }, id)));
        mount(facts, errorBox(error, 'Could not load this run'),
          retrying ? h('p', { class: 'muted', id: 'run-retrying' }, 'Trying again…') : null,
          h('p', {}, h('a', { href: '#/ops' }, '← Ops')));
      }
      return;
    }
    const active = ACTIVE_RUN.includes(run.status);
    const cancel = active ? h('button', {
      type: 'button', class: 'danger', id: 'run-cancel', disabled: Boolean(run.cancel_requested) || cancelling,
      onclick: async () => {
        if (cancelling) return;
        cancelling = true;
        draw(last);
        try {
          await cancelRun(id);
          toast(`Cancel requested for ${id}`, 'ok');
        } catch (err) {
          toast(err.describe ? err.describe() : String(err), 'error');
        } finally {
          cancelling = false;
        }
        follower.refresh();
        draw(last);
      },
    }, run.cancel_requested ? 'Cancelling…' : cancelling ? 'Cancelling…' : 'Cancel run') : null;
    mount(head,
      h('p', { class: 'muted detail-crumbs' }, h('a', { href: '#/ops' }, '← Ops'), ' / ', h('a', { href: '#/ops/runs' }, 'Runs'), ' / ', idEl(run.run_id)),
      h('div', { class: 'detail-head' }, runStatusBadge(run.status), h('h1', { id: 'run-title' }, h('a', { href: graphHref(run.graph), class: 'mono' }, run.graph)),
        active ? h('span', { class: 'muted', id: 'run-at' }, run.status === 'queued' ? 'waiting for a worker' : `at ${currentNode(run, events) || '…'}`) : null,
        h('span', { class: 'spacer' }), cancel),
      error ? errorBox(error, 'Could not refresh this run (showing what was loaded)') : null);
    mount(facts, h('section', { class: 'panel' }, h('dl', { class: 'kv run-facts' },
      h('dt', {}, 'Run'), h('dd', {}, idEl(run.run_id)),
      h('dt', {}, 'Created'), h('dd', {}, timeEl(run.created_at)),
      h('dt', {}, 'Started'), h('dd', {}, timeEl(run.started_at)),
      h('dt', {}, 'Finished'), h('dd', {}, timeEl(run.finished_at)),
      h('dt', {}, 'Took'), h('dd', {}, run.started_at ? duration(run.started_at, run.finished_at) : '—', active ? ' so far' : ''),
      h('dt', {}, 'Timeout'), h('dd', {}, `${run.timeout_s} s`),
      run.agent_id ? [h('dt', {}, 'Agent'), h('dd', { class: 'mono' }, run.agent_id)] : null,
      run.cancel_requested ? [h('dt', {}, 'Cancel'), h('dd', { id: 'run-cancel-requested' }, 'requested')] : null)));
    const defined = graph && graph.nodes && graph.nodes.length ? graph.nodes : null;
    const states = tracker.states(defined || [], run, events);
    mount(chainBox, chain(defined || [...states.keys()].map((n) => ({ name: n, safe_to_repeat: true })), states));
    mount(errBox, run.error ? h('div', { class: 'error-box', role: 'alert' }, h('strong', {}, `Run ${run.status}: `), run.error) : null);

    const key = `${run.status}|${run.finished_at}|${run.result != null}`;
    if (key !== resultKey) {
      resultKey = key;
      if (run.result != null) mount(resultBox, h('h2', {}, 'Result'), renderResult(run.graph, run.result));
      else mount(resultBox, active ? h('p', { class: 'muted' }, 'The result appears here when the run finishes.') : null);
    }

    drawEvents(run, events);

    if (!inputShown) {
      inputShown = true;
      mount(inputBox, h('details', { class: 'panel' }, h('summary', {}, 'Input'), h('pre', { class: 'json' }, JSON.stringify(run.input, null, 2))));
    }
  }

  // Event rows: appended as events arrive (the follower keeps them sorted), the oldest
  // dropped beyond EVENT_ROWS unless "Show all"; redrawn when a replay filled in earlier ones.
  let showAll = false;
  let shownTotal = 0;
  let lastShownSeq = 0;
  let rowsFrom = 0;
  let atNode = null;
  let moreKey = null;
  function drawEvents(run, events) {
    const t0 = Date.parse(run.created_at);
    const appendOnly = shownTotal > 0 && events.length >= shownTotal && events[shownTotal - 1].seq === lastShownSeq;
    const row = (ev) => {
      // Tool calls carry no node: they belong to the node started last.
      if (ev.type === 'node_start') atNode = ev.node;
      const tr = eventRow(ev, atNode, t0);
      if (ev.type === 'node_end' || ev.type === 'node_error') atNode = null;
      return tr;
    };
    if (appendOnly) {
      if (events.length > shownTotal) {
        const frag = document.createDocumentFragment();
        for (let i = shownTotal; i < events.length; i++) frag.appendChild(row(events[i]));
        eventsBody.appendChild(frag);
      }
      if (!showAll) {
        const over = events.length - rowsFrom - EVENT_ROWS;
        for (let i = 0; i < over; i++) eventsBody.firstChild.remove();
        if (over > 0) rowsFrom += over;
      }
    } else {
      rowsFrom = showAll ? 0 : Math.max(0, events.length - EVENT_ROWS);
      atNode = nodeBefore(events, rowsFrom);
      const frag = document.createDocumentFragment();
      for (let i = rowsFrom; i < events.length; i++) frag.appendChild(row(events[i]));
      mount(eventsBody, frag);
    }
    shownTotal = events.length;
    lastShownSeq = events.length ? events[events.length - 1].seq : 0;
    eventsCount.textContent = `(${events.length})`;
    const mk = `${rowsFrom}|${showAll}|${rowsFrom ? events.length : 0}`;
    if (mk !== moreKey) {
      moreKey = mk;
      mount(eventsMore, rowsFrom > 0
        ? h('p', { class: 'muted' }, `Showing the last ${events.length - rowsFrom} of ${events.length} events. `,
          h('button', { type: 'button', id: 'run-events-all', onclick: () => { showAll = true; shownTotal = 0; if (last) draw(last); } }, 'Show all'))
        : showAll && events.length > EVENT_ROWS
          ? h('p', { class: 'muted' }, h('button', { type: 'button', id: 'run-events-fewer', onclick: () => { showAll = false; shownTotal = 0; if (last) draw(last); } }, `Show only the last ${EVENT_ROWS}`))
          : null);
    }
  }

  return () => follower.stop();
}

/** The node a tool call at index `i` belongs to (the last node started and not ended before it). */
function nodeBefore(events, i) {
  for (let j = i - 1; j >= 0; j--) {
    const ev = events[j];
    if (ev.type === 'node_start') return ev.node;
    if (ev.type === 'node_end' || ev.type === 'node_error') return null;
  }
  return null;
}

function eventRow(ev, atNode, t0) {
  const offset = Date.parse(ev.ts) - t0;
  return h('tr', { 'data-seq': ev.seq, 'data-type': ev.type },
    h('td', { class: 'num' }, ev.seq),
    h('td', {}, timeEl(ev.ts), Number.isFinite(offset) ? h('span', { class: 'muted small', title: 'since the run was created' }, ` +${ms(Math.max(0, offset))}`) : null),
    h('td', {}, eventType(ev.type)),
    h('td', { class: 'mono' }, ev.node || (atNode && ev.type.startsWith('tool_') ? h('span', { class: 'muted', title: 'during this node' }, atNode) : '')),
    h('td', { class: 'title-cell', title: ev.details && Object.keys(ev.details).length ? JSON.stringify(ev.details) : '' }, eventDetails(ev)));
}

function eventDetails(ev) {
  const d = ev.details || {};
  switch (ev.type) {
    case 'node_end':
      return `${ms(d.elapsed_ms)} → ${d.next || 'end'}`;
    case 'tool_call':
      return [h('span', { class: 'mono' }, `${d.tool}${d.action ? `.${d.action}` : ''}`), ` attempt ${d.attempt ?? 1}`, d.params_bytes !== undefined ? ` · ${bytes(d.params_bytes)} params` : ''];
    case 'tool_result':
      return [h('span', { class: 'mono' }, `${d.tool}${d.action ? `.${d.action}` : ''}`), ' ',
        d.ok ? h('span', { class: 'ok-text' }, 'ok') : h('span', { class: 'bad-text' }, `failed${d.code ? ` (${d.code})` : ''}`),
        d.elapsed_ms !== undefined ? ` · ${ms(d.elapsed_ms)}` : ''];
    case 'subrun':
      return ['child run ', d.run_id ? idEl(d.run_id, runHref(d.run_id)) : '', d.graph ? ` (${d.graph})` : ''];
    case 'node_error':
    case 'run_failed':
      return h('span', { class: 'bad-text' }, d.message || d.error || compact(d));
    default:
      return compact(d);
  }
}

function compact(d) {
  const entries = Object.entries(d || {}).filter(([, v]) => v !== null && v !== undefined);
  if (!entries.length) return '';
  return entries.map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' · ');
}

// ---- results ------------------------------------------------------------------------------

export function renderResult(graph, result) {
  try {
    if (graph === 'incident_triage') return triageResult(result);
    if (graph === 'postmortem_draft') return postmortemResult(result);
  } catch (e) {
    console.error('result rendering failed', e);
  }
  return h('pre', { class: 'json panel' }, JSON.stringify(result, null, 2));
}

const list = (items, cls) => (Array.isArray(items) && items.length
  ? h('ol', { class: cls || 'plain-list' }, items.map((x) => h('li', {}, typeof x === 'string' ? x : JSON.stringify(x))))
  : h('p', { class: 'muted' }, 'None.'));

/** A source's state: ok, not configured, or unavailable with its reason. */
export function sourceState(v) {
  const s = String(v ?? 'unknown');
  if (s === 'ok') return h('span', { class: 'badge src src-ok' }, 'ok');
  if (s === 'not_configured') return h('span', { class: 'badge src src-off', title: 'No such source in config/observability_sources.yml for this env' }, 'not configured');
  if (s.startsWith('skipped')) {
    const reason = s.replace(/^skipped:?\s*/, '');
    return h('span', {}, h('span', { class: 'badge src src-off' }, 'skipped'), reason ? h('span', { class: 'muted small' }, ` ${reason}`) : null);
  }
  if (s.startsWith('unavailable')) {
    const reason = s.replace(/^unavailable:?\s*/, '');
    return h('span', {}, h('span', { class: 'badge src src-bad' }, 'unavailable'), reason ? h('span', { class: 'src-reason' }, ` ${reason}`) : null);
  }
  return h('span', { class: 'badge src' }, s);
}

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
function numbers(obj) {
  const entries = flat(obj).filter(([, v]) => v !== null && v !== undefined);
  if (!entries.length) return h('p', { class: 'muted' }, 'None.');
  return h('dl', { class: 'kv' }, entries.map(([k, v]) => [h('dt', {}, k.replace(/_/g, ' ')), h('dd', { class: typeof v === 'number' ? 'num-val' : '' },
    typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(Math.abs(v) < 1 ? 4 : 2))
      : v && typeof v === 'object' ? h('span', { class: 'mono' }, JSON.stringify(v)) : String(v ?? '—'))]));
}

function causesTable(causes, limit) {
  const items = (Array.isArray(causes) ? causes : []).filter((c) => c && typeof c === 'object').sort((a, b) => (a.rank ?? 99) - (b.rank ?? 99)).slice(0, limit || undefined);
  if (!items.length) return h('p', { class: 'muted' }, 'No suspected root cause: the sources gave nothing to rank.');
  return h('table', { class: 'grid compact causes' },
    h('thead', {}, h('tr', {}, h('th', { class: 'num' }, '#'), h('th', {}, 'Suspected cause'), h('th', {}, 'Kind'), h('th', { class: 'num' }, 'Score'))),
    h('tbody', {}, items.map((c) => h('tr', { 'data-rank': c.rank },
      h('td', { class: 'num' }, c.rank ?? ''),
      h('td', { class: 'title-cell' }, h('div', { class: 'cause' }, c.cause),
        Array.isArray(c.evidence) && c.evidence.length ? h('ul', { class: 'evidence' }, c.evidence.map((x) => h('li', {}, String(x)))) : null),
      h('td', {}, c.kind ? h('span', { class: 'tag' }, c.kind) : ''),
      h('td', { class: 'num' }, typeof c.score === 'number' ? c.score.toFixed(2) : c.score ?? '')))));
}

/** A result the renderers could not show: as JSON (never an exception in a view). */
function jsonFallback(r, what, e) {
  console.warn(`${what} rendering failed; showing JSON`, e);
  let text;
  try {
    text = JSON.stringify(r, null, 2);
  } catch {
    text = String(r);
  }
  return h('pre', { class: 'json panel' }, text);
}

/** The triage's headline: summary and the top causes (the incident page shows this much). */
export function triageBrief(r, limit = 3) {
  try {
    return h('div', { class: 'stack triage-brief' },
      h('p', { class: 'triage-summary' }, (r && r.summary) || h('span', { class: 'muted' }, 'No summary.')),
      causesTable(r.suspected_root_causes, limit));
  } catch (e) {
    return jsonFallback(r, 'triage brief', e);
  }
}

function triageResult(r) {
  const refs = r.references || {};
  const metrics = refs.metrics || {};
  const w = r.window || {};
  const snippets = Array.isArray(refs.runbook_snippets) ? refs.runbook_snippets : [];
  const logs = Array.isArray(refs.log_samples) ? refs.log_samples : [];
  const traces = refs.traces && Array.isArray(refs.traces.traces) ? refs.traces.traces : [];
  const sources = r.sources || {};
  const arr = (x) => (Array.isArray(x) ? x : []);
  const deploys = arr(refs.deploys);
  const clusters = arr(refs.log_clusters);
  const related = arr(refs.related_incidents);
  return h('div', { class: 'stack triage-result' },
    h('section', { class: 'panel' }, h('h2', {}, 'Summary'),
      h('p', { class: 'triage-summary' }, r.summary || h('span', { class: 'muted' }, 'No summary.')),
      h('dl', { class: 'kv' },
        h('dt', {}, 'Service'), h('dd', { class: 'mono' }, r.service || '—'),
        h('dt', {}, 'Env'), h('dd', {}, r.env || '—'),
        h('dt', {}, 'Symptom'), h('dd', {}, r.symptom || '—'),
        h('dt', {}, 'Window'), h('dd', {}, w.from ? h('span', { title: `${utc(w.from)} → ${utc(w.to)}` }, `${utc(w.from)} → ${utc(w.to)}`) : '—',
          w.clamped ? h('span', { class: 'muted' }, ' (clamped to what the sources allow)') : null),
        r.incident_id ? [h('dt', {}, 'Incident'), h('dd', {}, idEl(r.incident_id, `#/incidents/${encodeURIComponent(r.incident_id)}`))] : null)),
    h('div', { class: 'cols' },
      h('div', { class: 'stack' },
        h('section', { class: 'panel', id: 'triage-causes' }, h('h2', {}, 'Suspected root causes'), causesTable(r.suspected_root_causes)),
        h('section', { class: 'panel' }, h('h2', {}, 'Impact'),
          typeof r.impact_assessment === 'string' || r.impact_assessment == null
            ? h('p', {}, r.impact_assessment || h('span', { class: 'muted' }, 'Not assessed.'))
            : numbers(r.impact_assessment)),
        h('div', { class: 'two' },
          h('section', { class: 'panel', id: 'triage-mitigations' }, h('h2', {}, 'Mitigate now'), list(r.mitigations_now)),
          h('section', { class: 'panel', id: 'triage-next' }, h('h2', {}, 'Check next'), list(r.next_checks))),
        h('section', { class: 'panel', id: 'triage-logs' }, h('h2', {}, `Log samples (${logs.length})`),
          logs.length ? h('pre', { class: 'log-samples' }, logs.join('\n')) : h('p', { class: 'muted' }, 'No log lines.')),
        h('section', { class: 'panel', id: 'triage-runbooks' }, h('h2', {}, `Runbook snippets (${snippets.length})`),
          snippets.length
            ? h('ol', { class: 'hits' }, snippets.map((s) => h('li', { class: 'hit', 'data-path': s.path },
              h('a', { class: 'hit-title', href: `#/runbooks/${enc(s.path)}${s.anchor ? `?s=${encodeURIComponent(s.anchor)}` : ''}` }, s.heading || s.path),
              h('div', { class: 'muted mono small' }, s.path),
              h('div', { class: 'snippet' }, s.text || ''))))
            : h('p', { class: 'muted' }, 'No runbook matched.'))),
      h('div', { class: 'stack' },
        h('section', { class: 'panel', id: 'triage-sources' }, h('h2', {}, 'Sources'),
          h('table', { class: 'grid compact' }, h('tbody', {}, ['metrics', 'logs', 'traces', 'runbooks', ...Object.keys(sources).filter((k) => !['metrics', 'logs', 'traces', 'runbooks'].includes(k))]
            .filter((k) => k in sources)
            .map((k) => h('tr', { 'data-source': k }, h('td', {}, k), h('td', {}, sourceState(sources[k]))))))),
        h('section', { class: 'panel', id: 'triage-slo' }, h('h2', {}, 'SLO and alerts'),
          h('dl', { class: 'kv' }, h('dt', {}, 'Firing alerts'), h('dd', {}, metrics.alerts_count ?? '—')),
          metrics.slo && typeof metrics.slo === 'object' ? numbers(metrics.slo) : h('p', { class: 'muted' }, 'No SLO numbers for this service and env.')),
        h('section', { class: 'panel', id: 'triage-deploys' }, h('h2', {}, `Deploys (${deploys.length})`),
          deploys.length
            ? h('ul', { class: 'plain-list' }, deploys.map((d) => h('li', {}, timeEl(d.ts), ' ', d.version ? h('span', { class: 'tag mono' }, d.version) : null, d.message || '',
              d.incident_id ? [' ', idEl(d.incident_id, `#/incidents/${encodeURIComponent(d.incident_id)}`)] : null)))
            : h('p', { class: 'muted' }, 'No deploy recorded on a timeline of this service in or just before the window.')),
        clusters.length ? h('section', { class: 'panel', id: 'triage-clusters' }, h('h2', {}, 'Error log clusters'),
          h('table', { class: 'grid compact' }, h('tbody', {}, clusters.map((c) => h('tr', {},
            h('td', { class: 'num' }, c.count ?? ''),
            h('td', { class: 'title-cell mono small', title: c.sample || '' }, c.template || c.sample || '')))))) : null,
        related.length ? h('section', { class: 'panel', id: 'triage-related' }, h('h2', {}, 'Other active incidents'),
          h('ul', { class: 'plain-list' }, related.map((i) => h('li', {}, i.severity ? sevBadge(i.severity) : null, ' ',
            h('a', { href: `#/incidents/${encodeURIComponent(i.id)}` }, i.title || i.id), i.status ? h('span', { class: 'muted' }, ` · ${i.status}`) : null)))) : null,
        metrics.cost && metrics.cost.estimated ? h('section', { class: 'panel', id: 'triage-cost' }, h('h2', {}, 'Estimated cost'),
          h('dl', { class: 'kv' },
            h('dt', {}, 'Total'), h('dd', {}, `${metrics.cost.total} ${metrics.cost.currency || ''}`),
            metrics.cost.failed_requests != null ? [h('dt', {}, 'Failed requests'), h('dd', {}, String(metrics.cost.failed_requests))] : null,
            metrics.cost.unavailable_minutes != null ? [h('dt', {}, 'Unavailable'), h('dd', {}, `${metrics.cost.unavailable_minutes} min`)] : null)) : null,
        h('section', { class: 'panel', id: 'triage-traces' }, h('h2', {}, `Traces (${traces.length})`),
          traces.length
            ? h('ul', { class: 'plain-list' }, traces.slice(0, 20).map((t) => h('li', { class: 'mono' },
              typeof t === 'string' ? t : [t.trace_id || t.traceID || t.id || '',
                t.found === false ? h('span', { class: 'muted' }, ' · not found') : null,
                typeof t.duration_ms === 'number' ? ` · ${ms(t.duration_ms)}` : '',
                t.error_spans ? h('span', { class: 'bad-text' }, ` · ${t.error_spans} error spans`) : null,
                Array.isArray(t.error_services) && t.error_services.length ? ` · ${t.error_services.join(', ')}` : ''])))
            : h('p', { class: 'muted' }, 'No traces.')))));
}

/** Follow-ups as the postmortem proposed them. */
function followupsTable(items) {
  if (!Array.isArray(items) || !items.length) return h('p', { class: 'muted' }, 'No follow-ups.');
  return h('table', { class: 'grid compact pm-followups' },
    h('thead', {}, h('tr', {}, ['Follow-up', 'Owner', 'Due', 'Pri'].map((c) => h('th', {}, c)))),
    h('tbody', {}, items.map((f) => h('tr', {},
      h('td', { class: 'title-cell' }, f.title),
      h('td', {}, f.owner || '—'),
      h('td', {}, f.due ? timeEl(f.due) : '—'),
      h('td', {}, f.priority ? sevBadge(f.priority) : '')))));
}

function artifactsTable(items, incidentId) {
  if (!Array.isArray(items) || !items.length) return h('p', { class: 'muted' }, 'No artifacts.');
  return h('table', { class: 'grid compact pm-artifacts' },
    h('thead', {}, h('tr', {}, ['Name', 'Size', 'sha256'].map((c) => h('th', {}, c)))),
    h('tbody', {}, items.map((a) => h('tr', { 'data-name': a.name },
      h('td', { class: 'mono' }, incidentId ? h('a', { href: `#/incidents/${encodeURIComponent(incidentId)}` }, a.name) : a.name),
      h('td', { class: 'num' }, typeof a.size === 'number' ? bytes(a.size) : '—'),
      h('td', { class: 'mono', title: a.sha256 || '' }, String(a.sha256 || '').slice(0, 10))))));
}

function postmortemResult(r) {
  return h('div', { class: 'cols postmortem-result' },
    h('section', { class: 'panel', id: 'pm-markdown' }, h('h2', {}, 'Draft'), renderMarkdown(r.markdown || '')),
    h('div', { class: 'stack' },
      h('section', { class: 'panel' }, h('h2', {}, 'Postmortem'),
        h('dl', { class: 'kv' },
          h('dt', {}, 'Incident'), h('dd', {}, r.incident_id ? idEl(r.incident_id, `#/incidents/${encodeURIComponent(r.incident_id)}`) : '—'),
          h('dt', {}, 'Triage'), h('dd', {}, r.triage_run_id ? idEl(r.triage_run_id, runHref(r.triage_run_id)) : '—',
            r.triage ? h('span', { class: 'muted' }, r.triage === 'sub_run' ? ' (run for this draft)' : ' (an earlier triage)') : null)),
          r.triage_error ? h('div', { class: 'notice' }, `Drafted without a triage: ${r.triage_error}`) : null),
      h('section', { class: 'panel', id: 'pm-artifacts' }, h('h2', {}, 'Attached to the incident'), artifactsTable(r.artifacts, r.incident_id)),
      h('section', { class: 'panel', id: 'pm-followups' }, h('h2', {}, 'Follow-ups added'), followupsTable(r.followups))));
}

/** The postmortem's headline for the incident page. */
export function postmortemBrief(r) {
  try {
    const artifacts = Array.isArray(r.artifacts) ? r.artifacts : [];
    const followups = Array.isArray(r.followups) ? r.followups : [];
    return h('div', { class: 'stack pm-brief' },
      h('p', {}, `Attached ${artifacts.map((a) => a && a.name).filter(Boolean).join(', ') || 'nothing'}; ${followups.length} follow-ups added to the timeline.`),
      h('details', { open: true }, h('summary', {}, 'Draft'), h('div', { class: 'viewer' }, renderMarkdown(typeof r.markdown === 'string' ? r.markdown : ''))));
  } catch (e) {
    return jsonFallback(r, 'postmortem brief', e);
  }
}
