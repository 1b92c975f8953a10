// Incidents list: server-side filters (status, severity, service, env, text) and cursor paging,
// so it stays fast at 100k incidents. Filters live in the URL; the first page refreshes itself
// when another client creates or changes an incident.

import { api } from '../lib/api.js';
import { h, mount, debounce } from '../lib/dom.js';
import { idEl, sevBadge, statusBadge, timeEl, SEVERITIES, STATUSES, ACTIVE } from '../lib/format.js';
import { liveReload } from '../lib/live.js';
import { cursorList, emptyTable, linkRow, table } from '../lib/table.js';

const PAGE = 50;

export function render(view, ctx) {
  const q = ctx.query;
  const state = {
    status: q.get('status') || '',
    severity: (q.get('severity') || '').split(',').filter(Boolean),
    service: q.get('service') || '',
    env: q.get('env') || '',
    q: q.get('q') || '',
  };
  const statusSel = h('select', { id: 'f-status', 'aria-label': 'Status', onchange: (e) => { state.status = e.target.value; changed(); } },
    h('option', { value: '' }, 'any status'),
    h('option', { value: ACTIVE.join(',') }, 'active (open, ack, mitigated)'),
    STATUSES.map((s) => h('option', { value: s }, s)));
  statusSel.value = state.status;
  if (statusSel.value !== state.status) {
    statusSel.appendChild(h('option', { value: state.status }, state.status));
    statusSel.value = state.status;
  }
  const sevBoxes = h('fieldset', {}, h('legend', {}, 'severity'),
    SEVERITIES.map((s) => h('label', { class: 'check' },
      h('input', { type: 'checkbox', value: s, checked: state.severity.includes(s), 'aria-label': `Severity ${s}`,
        onchange: (e) => {
          state.severity = e.target.checked ? [...state.severity, s] : state.severity.filter((x) => x !== s);
          state.severity.sort();
          changed();
        } }),
      sevBadge(s))));
  const service = h('input', { type: 'text', id: 'f-service', placeholder: 'service', value: state.service, size: 14, 'aria-label': 'Service',
    oninput: debounce((e) => { state.service = e.target.value.trim(); changed(); }, 120) });
  const env = h('select', { id: 'f-env', 'aria-label': 'Environment', onchange: (e) => { state.env = e.target.value; changed(); } },
    h('option', { value: '' }, 'any env'), ['prod', 'staging', 'dev'].map((x) => h('option', { value: x }, x)));
  env.value = state.env;
  const text = h('input', { type: 'search', id: 'f-q', placeholder: 'Filter text…  ( / )', value: state.q, size: 26, 'data-search': '', 'aria-label': 'Text filter',
    oninput: debounce((e) => { state.q = e.target.value.trim(); changed(); }, 120) });

  const list = cursorList({
    what: 'incidents',
    pager: { prev: 'prev-page', next: 'next-page' },
    fetchPage: (cursor) => api('/api/incidents', {
      query: {
        status: state.status, severity: state.severity.join(','), service: state.service,
        env: state.env, q: state.q, limit: PAGE, cursor,
      },
    }),
    note: (page) => (page.partial
      ? h('div', { class: 'notice' }, 'The text filter searched 20,000 incidents without filling this page. Use "Next" to search further, or narrow the other filters.')
      : null),
    render: showTable,
    backHref: () => hashFor(),
  });
  mount(view,
    h('div', { class: 'row' }, h('h1', {}, 'Incidents'), h('span', { class: 'spacer' }),
      h('a', { class: 'btn primary', href: '#/incidents/new', id: 'new-incident', title: 'New incident (n)' }, '+ New incident')),
    h('div', { class: 'filters' }, statusSel, sevBoxes, service, env, text,
      h('button', { type: 'button', onclick: () => { Object.assign(state, { status: '', severity: [], service: '', env: '', q: '' }); ctx.navigate('#/incidents'); } }, 'Clear')),
    list.el);

  function hashFor() {
    const p = new URLSearchParams();
    if (state.status) p.set('status', state.status);
    if (state.severity.length) p.set('severity', state.severity.join(','));
    if (state.service) p.set('service', state.service);
    if (state.env) p.set('env', state.env);
    if (state.q) p.set('q', state.q);
    const s = p.toString();
    return `#/incidents${s ? `?${s}` : ''}`;
  }

  function changed() {
    // Keep the URL shareable without re-rendering the view.
    history.replaceState(null, '', hashFor());
    list.reset();
  }

  function showTable(items, { first }) {
    if (!items.length) return emptyTable(first ? 'No incidents match these filters.' : 'No more incidents.');
    return table(['Sev', 'Id', 'Title', 'Status', 'Service', 'Env', 'Started', 'Owner'], items.map((inc) => {
      const href = `#/incidents/${encodeURIComponent(inc.id)}`;
      return linkRow(href, ctx.navigate, { 'data-id': inc.id },
        h('td', {}, sevBadge(inc.severity)),
        h('td', {}, idEl(inc.id, href)),
        h('td', { class: 'title-cell' }, inc.title),
        h('td', {}, statusBadge(inc.status)),
        h('td', {}, inc.service),
        h('td', {}, inc.env),
        h('td', {}, timeEl(inc.started_at)),
        h('td', {}, inc.owner || h('span', { class: 'muted' }, '—')));
    }), { id: 'incident-table' });
  }

  list.load();
  return liveReload((ev) => ev.type === 'incident.created' || ev.type === 'incident.updated', list.changed);
}
