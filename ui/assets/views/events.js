// Events: the live stream from `/ws/events` with a type filter and pause, and below it the
// recent timeline events stored on the server (so the tab is useful right after a reload).

import { api } from '../lib/api.js';
import { errorBox, h, mount } from '../lib/dom.js';
import { eventType, idEl, sevBadge, timeEl, utc } from '../lib/format.js';
import * as live from '../lib/live.js';
import { labelCells, table } from '../lib/table.js';
import { incidentIdOf } from './common.js';

const KNOWN = ['incident.created', 'incident.updated', 'incident.event', 'incident.artifact', 'hello', 'error'];

export function render(view, ctx) {
  const state = { type: ctx.query.get('types') || '', paused: false };
  const typeSel = h('select', { id: 'ev-type', 'aria-label': 'Event type', onchange: (e) => { state.type = e.target.value; history.replaceState(null, '', state.type ? `#/events?types=${encodeURIComponent(state.type)}` : '#/events'); redraw(); } },
    h('option', { value: '' }, 'all types'));
  const addType = (t) => {
    if (![...typeSel.options].some((o) => o.value === t)) typeSel.appendChild(h('option', { value: t }, t));
  };
  KNOWN.forEach(addType);
  if (state.type) addType(state.type);
  typeSel.value = state.type;
  const pause = h('button', { type: 'button', id: 'ev-pause', onclick: () => { state.paused = !state.paused; pause.textContent = state.paused ? 'Resume' : 'Pause'; if (!state.paused) redraw(); } }, 'Pause');
  const count = h('span', { class: 'muted' });
  const tbody = h('tbody', { id: 'ev-rows' });
  const stored = h('div');
  const streamTable = h('table', { class: 'grid stream' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Time'), h('th', {}, 'Type'), h('th', {}, 'Concerns'), h('th', {}, 'Data'))),
    tbody);
  mount(view,
    h('h1', {}, 'Events'),
    h('div', { class: 'filters' }, typeSel, pause, count),
    h('p', { class: 'muted' }, 'Live from ', h('code', {}, '/ws/events'), ' since this page was opened, newest first.'),
    h('div', { class: 'table-wrap' }, streamTable),
    h('h2', {}, 'Recent timeline events (stored)'),
    stored);

  function row(ev) {
    const incId = incidentIdOf(ev);
    const d = ev.data || {};
    const inc = d.incident;
    const what = inc ? h('span', {}, sevBadge(inc.severity), ' ', inc.title)
      : d.event ? h('span', {}, eventType(d.event.type), ' ', d.event.message)
        : d.artifact ? h('span', { class: 'mono' }, d.artifact.name)
          : d.message || '';
    return h('tr', { 'data-type': ev.type },
      h('td', { title: utc(ev.ts) }, timeEl(ev.ts)),
      h('td', {}, h('span', { class: 'badge st' }, ev.type)),
      h('td', {}, incId ? idEl(incId, `#/incidents/${encodeURIComponent(incId)}`) : '', h('div', { class: 'title-cell' }, what)),
      h('td', { class: 'json' }, h('details', {}, h('summary', {}, 'json'), h('pre', {}, JSON.stringify(ev.data, null, 2)))));
  }

  function redraw() {
    const items = live.received().filter((ev) => !state.type || ev.type === state.type);
    mount(tbody, items.length
      ? items.slice(-200).reverse().map(row)
      : h('tr', {}, h('td', { colspan: 4, class: 'empty' }, 'Waiting for events…')));
    labelCells(streamTable);
    count.textContent = `${items.length} received`;
  }

  async function loadStored() {
    try {
      const page = await api('/api/events/recent', { query: { limit: 50 } });
      mount(stored, page.items.length
        ? table(null, page.items.map(({ event, incident }) => h('tr', {},
          h('td', {}, timeEl(event.ts)),
          h('td', {}, eventType(event.type)),
          h('td', {}, idEl(event.incident_id, `#/incidents/${encodeURIComponent(event.incident_id)}`)),
          h('td', {}, incident ? sevBadge(incident.severity) : ''),
          h('td', { class: 'title-cell' }, event.message),
          h('td', { class: 'muted' }, event.actor))), { class: 'grid compact' }, { wrap: false })
        : h('p', { class: 'muted' }, 'No stored events yet.'));
    } catch (e) {
      mount(stored, errorBox(e, 'Could not load stored events', loadStored));
    }
  }

  redraw();
  loadStored();
  const off = live.onEvent((ev) => {
    addType(ev.type);
    if (!state.paused) redraw();
    if (ev.type.startsWith('incident.')) loadStoredSoon();
  });
  let t = null;
  function loadStoredSoon() {
    clearTimeout(t);
    t = setTimeout(loadStored, 500);
  }
  return () => { off(); clearTimeout(t); };
}
