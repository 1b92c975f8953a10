// Run history: runs newest first, filtered by graph and status (in the URL), paged by cursor
// and refreshed live; the same table shows the recent runs on the Ops home and a graph's page.
//
// URL: `#/ops/runs?graph=&status=` (and `cursor=&page=` past the first page).

import { api } from '../../lib/api.js';
import { h, mount } from '../../lib/dom.js';
import { duration, idEl, shorten, timeEl } from '../../lib/format.js';
import { liveReload } from '../../lib/live.js';
import { RUN_STATUSES, listGraphs } from '../../lib/runs.js';
import { cursorList, emptyTable, linkRow, listHash, pageInUrl, table } from '../../lib/table.js';
import { runHref, runStatusBadge } from './parts.js';

/**
 * A table of runs, newest first. `opts`: `graph`, `status` (fixed filters), `limit`,
 * `paging` (Previous/Next by cursor), `url(at)` (the page's URL, to keep the page in it).
 * Refreshes on `ops.run` while showing the first page.
 */
export function runTable(ctx, opts) {
  const state = { graph: opts.graph || '', status: opts.status || '' };
  const list = cursorList({
    what: 'runs',
    class: 'run-table',
    pager: opts.paging ? { prev: 'runs-prev', next: 'runs-next' } : null,
    ...(opts.url ? pageInUrl('runs', ctx.query, opts.url) : {}),
    fetchPage: (cursor) => api('/v1/runs', { query: { graph: state.graph, status: state.status, limit: opts.limit || 50, cursor } }),
    render: (items, { first }) => {
      if (!items.length) {
        return emptyTable(!first ? 'No more runs.' : state.graph || state.status ? 'No runs match these filters.' : 'No runs yet. Start one from a graph above.');
      }
      return table(['Run', 'Graph', 'Status', 'Created', { label: 'Took', num: true }, 'Agent', 'Error'], items.map((r) => {
        const href = runHref(r.run_id);
        return linkRow(href, ctx.navigate, { 'data-id': r.run_id, 'data-status': r.status, 'data-graph': r.graph },
          h('td', {}, idEl(r.run_id, href)),
          h('td', { class: 'mono' }, r.graph),
          h('td', {}, runStatusBadge(r.status)),
          h('td', {}, timeEl(r.created_at)),
          h('td', { class: 'num' }, r.finished_at ? duration(r.created_at, r.finished_at) : h('span', { class: 'muted' }, '…')),
          h('td', { class: 'muted' }, r.agent_id || '—'),
          h('td', { class: 'title-cell err-cell', title: r.error || '' }, r.error ? shorten(r.error, 140) : ''));
      }), { id: 'run-table' });
    },
  });
  list.load();
  const cleanup = liveReload((ev) => ev.type === 'ops.run' && (!state.graph || (ev.data && ev.data.graph === state.graph)), list.changed, 300);
  return {
    el: list.el,
    cleanup,
    setFilter(f) {
      Object.assign(state, f);
      list.reset();
    },
  };
}

/** The run history page. */
export function render(view, ctx) {
  const state = { graph: ctx.query.get('graph') || '', status: ctx.query.get('status') || '' };
  const runs = runTable(ctx, { ...state, limit: 50, paging: true, url: (at) => hashFor(at) });
  const graphSel = h('select', { id: 'runs-graph', 'aria-label': 'Graph', onchange: (e) => { state.graph = e.target.value; changed(); } },
    h('option', { value: '' }, 'any graph'));
  if (state.graph) graphSel.appendChild(h('option', { value: state.graph }, state.graph));
  graphSel.value = state.graph;
  const statusSel = h('select', { id: 'runs-status', 'aria-label': 'Status', onchange: (e) => { state.status = e.target.value; changed(); } },
    h('option', { value: '' }, 'any status'), RUN_STATUSES.map((s) => h('option', { value: s }, s)));
  statusSel.value = state.status;
  function hashFor(at = {}) {
    return listHash('#/ops/runs', { graph: state.graph, status: state.status }, at);
  }
  function changed() {
    // The list's move to its first page puts the filters in the URL.
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
