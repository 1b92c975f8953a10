// Follow-ups: every open follow-up of every incident, filtered on the server (overdue only,
// service, env, owner), latest due first by default (the most recently missed lead), paged by
// cursor with the total shown. Filters and the page live in the URL. Each row can be closed in
// place; the list refreshes itself when a timeline changes.

import { api } from '../lib/api.js';
import { debounce, TYPING_MS, h, mount, toast } from '../lib/dom.js';
import { idEl, timeEl } from '../lib/format.js';
import { liveReload } from '../lib/live.js';
import { cursorList, emptyTable, listHash, pageInUrl, table } from '../lib/table.js';

const PAGE = 50;
const num = (n) => Number(n).toLocaleString('en-US');

export function render(view, ctx) {
  const q = ctx.query;
  const state = {
    overdue: q.get('overdue') === '1',
    service: q.get('service') || '',
    env: q.get('env') || '',
    owner: q.get('owner') || '',
    order: q.get('order') === 'soonest' ? 'soonest' : 'latest',
  };
  const overdue = h('label', { class: 'check' },
    h('input', { type: 'checkbox', id: 'fl-overdue', checked: state.overdue, onchange: (e) => { state.overdue = e.target.checked; list.reset(); } }),
    'overdue only');
  const field = (id, key, placeholder) => h('input', {
    type: 'text', id, placeholder, value: state[key], size: 14, 'aria-label': placeholder, autocomplete: 'off',
    oninput: debounce((e) => { state[key] = e.target.value.trim(); list.reset(); }, TYPING_MS),
  });
  const env = h('select', { id: 'fl-env', 'aria-label': 'Environment', onchange: (e) => { state.env = e.target.value; list.reset(); } },
    h('option', { value: '' }, 'any env'), ['prod', 'staging', 'dev'].map((x) => h('option', { value: x }, x)));
  env.value = state.env;
  const order = h('select', { id: 'fl-order', 'aria-label': 'Order', onchange: (e) => { state.order = e.target.value; list.reset(); } },
    h('option', { value: 'latest' }, 'latest due first'), h('option', { value: 'soonest' }, 'earliest due first'));
  order.value = state.order;
  const summary = h('div', { class: 'list-meta muted', id: 'fl-total', 'aria-live': 'polite' });

  const list = cursorList({
    what: 'follow-ups',
    pager: { prev: 'fl-prev', next: 'fl-next', label: 'fl-page' },
    ...pageInUrl('followups', q, (at) => hashFor(at)),
    fetchPage: (cursor) => api('/api/followups', {
      query: {
        overdue: state.overdue ? 'true' : '', service: state.service, env: state.env,
        owner: state.owner, order: state.order === 'latest' ? '' : state.order, limit: PAGE, cursor,
      },
    }),
    note: (page) => {
      mount(summary, `${num(page.total)} open follow-up${page.total === 1 ? '' : 's'}${state.overdue ? ' past due' : ''} · ${state.order === 'latest' ? 'latest due first' : 'earliest due first'}`);
      return null;
    },
    render: showTable,
    backHref: () => hashFor({}),
  });

  mount(view,
    h('div', { class: 'row' }, h('h1', {}, 'Follow-ups'), h('span', { class: 'spacer' }),
      h('a', { class: 'btn', href: '#/incidents' }, '← Incidents')),
    h('div', { class: 'filters' }, overdue, field('fl-service', 'service', 'service'), env, field('fl-owner', 'owner', 'owner'), order),
    summary,
    list.el);

  function hashFor(at) {
    return listHash('#/followups', {
      overdue: state.overdue ? '1' : '', service: state.service, env: state.env, owner: state.owner,
      order: state.order === 'latest' ? '' : state.order,
    }, at);
  }

  function showTable(items, { first }) {
    if (!items.length) return emptyTable(first ? 'No open follow-ups match these filters.' : 'No more follow-ups.');
    return table(['Follow-up', 'Owner', 'Due', 'Priority', 'Service', 'Env', 'Incident', ''], items.map((f) => {
      const incHref = `#/incidents/${encodeURIComponent(f.incident_id)}`;
      const close = h('button', { type: 'button', class: 'small', 'data-close': f.event_id, onclick: async () => {
        close.disabled = true;
        try {
          await api(`/api/incidents/${encodeURIComponent(f.incident_id)}/followups/${encodeURIComponent(f.event_id)}/close`, { method: 'POST', body: {} });
          toast(`Follow-up closed: ${f.title}`, 'ok');
          list.load();
        } catch (e) {
          close.disabled = false;
          toast(e.describe ? e.describe() : String(e), 'error');
        }
      } }, 'Close');
      return h('tr', { 'data-event': f.event_id },
        h('td', { class: 'title-cell' }, f.title),
        h('td', {}, f.owner || h('span', { class: 'muted' }, '—')),
        h('td', { class: f.overdue ? 'overdue' : undefined }, f.due ? timeEl(f.due) : h('span', { class: 'muted' }, 'no date')),
        h('td', {}, f.priority),
        h('td', {}, f.service),
        h('td', {}, f.env),
        h('td', {}, idEl(f.incident_id, incHref)),
        h('td', {}, close));
    }), { id: 'followup-table' });
  }

  list.load();
  return liveReload((ev) => ev.type === 'incident.event' || ev.type === 'incident.updated', list.changed, 400);
}
