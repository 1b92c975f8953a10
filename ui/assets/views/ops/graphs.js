// The graphs: the Ops home (every graph with its node chain, work waiting for a decision, the
// recent runs) and one graph's page with its input form, generated from the graph's JSON
// schema; a 422 is shown beside the field it names.
//
// URLs: `#/ops`, `#/ops/graphs/<name>`.

import { errorBox, h, loading, mount, toast } from '../../lib/dom.js';
import { schemaFields, sending } from '../../lib/form.js';
import { listGraphs, startRun } from '../../lib/runs.js';
import { emptyTable, linkRow, table } from '../../lib/table.js';
import { chain, graphHref, runHref } from './parts.js';
import { requeueSection } from './requeue.js';
import { runTable } from './runs.js';

/** The Ops home: the graphs, work waiting for a decision, the recent runs. */
export function renderHome(view, ctx) {
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
    mount(graphsBox, !graphs.length ? emptyTable('This server has no graphs registered.')
      : table(['Graph', 'What it does', 'Nodes', { label: 'Timeout', num: true }, ''], graphs.map((g) => {
        const href = graphHref(g.name);
        return linkRow(href, ctx.navigate, { 'data-graph': g.name },
          h('td', {}, h('a', { href, class: 'mono' }, g.name)),
          h('td', { class: 'title-cell' }, g.description || ''),
          h('td', {}, chain(g.nodes || [])),
          h('td', { class: 'num' }, `${g.default_timeout_s} s`),
          h('td', {}, h('a', { class: 'btn', href }, 'Start…')));
      }), { id: 'graph-table' }));
  }).catch((e) => mount(graphsBox, errorBox(e, 'Could not list graphs')));
  return () => { runs.cleanup(); requeue.cleanup(); };
}

/** A graph's page: what it does, its nodes, the form that starts it, its recent runs. */
export function renderGraph(view, ctx, name) {
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

/**
 * The form that starts a run of `g`; on success the run page opens. One run per press (the
 * button stays disabled until the run page opens); a refused input keeps every value, with
 * the field it names marked.
 */
function inputForm(g, ctx) {
  const form = schemaFields(g.input_schema || {});
  const box = h('div', { id: 'run-form-error' });
  const submit = h('button', { type: 'submit', class: 'primary', id: 'run-submit' }, `Start ${g.name}`);
  const note = h('p', { class: 'muted' }, h('span', { class: 'req' }, '*'), ' required. Empty fields are left out, so the graph\'s defaults apply.');
  const el = h('form', { class: 'panel stack', id: 'run-form', novalidate: true, 'data-graph': g.name, onsubmit: (e) => {
    e.preventDefault();
    sending(el, async () => {
      const r = await startRun(g.name, form.read());
      toast(`Started ${r.run_id}`, 'ok');
      // Only if the operator is still on this form (not if they went elsewhere meanwhile).
      if (el.isConnected) ctx.navigate(runHref(r.run_id));
    }, { marks: form.showError, box, what: 'Not started', keepDisabled: true });
  } }, h('h2', {}, 'Input'), form.el, note, box, h('div', { class: 'row' }, submit));
  return el;
}
