// Incidents list: server-side filters (status, severity, service, env, text) and cursor paging,
// so it stays fast at 100k incidents. Filters live in the URL; the first page refreshes itself
// when another client creates or changes an incident.

import { api } from '../lib/api.js';
import { h, mount, debounce } from '../lib/dom.js';
import { idEl, sevBadge, statusBadge, timeEl, SEVERITIES, STATUSES, ACTIVE } from '../lib/format.js';
import { errorBox, liveReload } from './common.js';

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
  // Cursors of the pages before the current one (for "Previous"), and the current one.
  let cursors = [];
  let cursor = null;
  let next = null;
  let seq = 0;

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
    oninput: debounce((e) => { state.service = e.target.value.trim(); changed(); }, 350) });
  const env = h('select', { id: 'f-env', 'aria-label': 'Environment', onchange: (e) => { state.env = e.target.value; changed(); } },
    h('option', { value: '' }, 'any env'), ['prod', 'staging', 'dev'].map((x) => h('option', { value: x }, x)));
  env.value = state.env;
  const text = h('input', { type: 'search', id: 'f-q', placeholder: 'Filter text…  ( / )', value: state.q, size: 26, 'data-search': '', 'aria-label': 'Text filter',
    oninput: debounce((e) => { state.q = e.target.value.trim(); changed(); }, 300) });

  const notice = h('div');
  const table = h('div');
  const pager = h('div', { class: 'pager' });
  mount(view,
    h('div', { class: 'row' }, h('h1', {}, 'Incidents'), h('span', { class: 'spacer' }),
      h('a', { class: 'btn primary', href: '#/incidents/new', id: 'new-incident', title: 'New incident (n)' }, '+ New incident')),
    h('div', { class: 'filters' }, statusSel, sevBoxes, service, env, text,
      h('button', { type: 'button', onclick: () => { Object.assign(state, { status: '', severity: [], service: '', env: '', q: '' }); ctx.navigate('#/incidents'); } }, 'Clear')),
    notice, table, pager);

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
    cursors = [];
    cursor = null;
    load();
  }

  async function load() {
    const my = ++seq;
    table.setAttribute('aria-busy', 'true');
    showPager(true);
    try {
      const page = await api('/api/incidents', {
        query: {
          status: state.status, severity: state.severity.join(','), service: state.service,
          env: state.env, q: state.q, limit: PAGE, cursor,
        },
      });
      if (my !== seq) return;
      next = page.next_cursor;
      mount(notice, page.partial
        ? h('div', { class: 'notice' }, 'The text filter searched 20,000 incidents without filling this page. Use "Next" to search further, or narrow the other filters.')
        : null);
      showTable(page.items);
    } catch (e) {
      if (my !== seq) return;
      mount(notice, errorBox(e, 'Could not load incidents'));
      mount(table);
      next = null;
    } finally {
      table.removeAttribute('aria-busy');
      showPager();
    }
  }

  function showTable(items) {
    if (!items.length) {
      mount(table, h('div', { class: 'table-wrap' }, h('div', { class: 'empty' },
        cursors.length ? 'No more incidents.' : 'No incidents match these filters.')));
      return;
    }
    mount(table, h('div', { class: 'table-wrap' }, h('table', { class: 'grid', id: 'incident-table' },
      h('thead', {}, h('tr', {},
        ['Sev', 'Id', 'Title', 'Status', 'Service', 'Env', 'Started', 'Owner'].map((c) => h('th', {}, c)))),
      h('tbody', {}, items.map((inc) => {
        const href = `#/incidents/${encodeURIComponent(inc.id)}`;
        return h('tr', { class: 'clickable', 'data-href': href, 'data-id': inc.id,
          onclick: (e) => { if (!e.target.closest('a,button')) ctx.navigate(href); } },
        h('td', {}, sevBadge(inc.severity)),
        h('td', {}, idEl(inc.id, href)),
        h('td', { class: 'title-cell' }, inc.title),
        h('td', {}, statusBadge(inc.status)),
        h('td', {}, inc.service),
        h('td', {}, inc.env),
        h('td', {}, timeEl(inc.started_at)),
        h('td', {}, inc.owner || h('span', { class: 'muted' }, '—')));
      })))));
  }

  function showPager(busy = false) {
    mount(pager,
      h('button', { type: 'button', id: 'prev-page', disabled: busy || !cursors.length, onclick: () => { cursor = cursors.pop() ?? null; load(); } }, '← Previous'),
      h('span', { class: 'muted' }, `page ${cursors.length + 1}`),
      h('button', { type: 'button', id: 'next-page', disabled: busy || !next, onclick: () => { cursors.push(cursor); cursor = next; load(); } }, 'Next →'));
  }

  load();
  return liveReload((ev) => ev.type === 'incident.created' || ev.type === 'incident.updated', () => {
    if (!cursors.length) load();
    else mount(notice, h('div', { class: 'notice' }, 'Incidents changed since this page loaded. ',
      h('a', { href: hashFor(), onclick: () => { cursors = []; cursor = null; load(); } }, 'Back to the first page')));
  });
}
