// One run, followed live: its facts, the node chain with each node's state, the events as
// they arrive (the last EVENT_ROWS at once), cancel, and the result rendered for its graph.
//
// URL: `#/ops/runs/<run_id>`.

import { errorBox, h, loading, mount, toast } from '../../lib/dom.js';
import { bytes, duration, eventType, idEl, ms, timeEl } from '../../lib/format.js';
import { ACTIVE_RUN, cancelRun, currentNode, followRun, listGraphs, nodeStateTracker } from '../../lib/runs.js';
import { labelCells } from '../../lib/table.js';
import { chain, graphHref, runHref, runStatusBadge } from './parts.js';
import { renderResult } from './renderers/index.js';

/** `#/ops/runs/<x>` where x cannot be a run id: say so, request nothing. */
export function renderNotRunId(view, id) {
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

export function renderRun(view, ctx, id) {
  const head = h('div');
  const facts = h('div');
  const chainBox = h('div', { id: 'run-chain' });
  const errBox = h('div', { id: 'run-error' });
  const resultBox = h('section', { id: 'run-result' });
  const eventsBody = h('tbody', { id: 'run-events' });
  const eventsTable = h('table', { class: 'grid compact run-events' },
    h('thead', {}, h('tr', {}, h('th', { class: 'num' }, '#'), h('th', {}, 'Time'), h('th', {}, 'Type'), h('th', {}, 'Node'), h('th', {}, 'Details'))),
    eventsBody);
  const eventsCount = h('span', { class: 'muted', id: 'run-events-count' });
  const eventsMore = h('div', { id: 'run-events-more' });
  const inputBox = h('div');
  const main = h('div', { class: 'stack' }, facts, chainBox, errBox, resultBox,
    h('section', { class: 'panel' }, h('h2', {}, 'Events ', eventsCount), eventsMore,
      h('div', { class: 'table-wrap' }, eventsTable)),
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
        labelCells(eventsTable, frag.children);
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
      labelCells(eventsTable, frag.children);
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
