// Incidents list: server-side filters (status, severity, service, env, text), sort and cursor
// paging, so it stays fast at 100k incidents. Filters, sort and the page live in the URL (the
// cursors before it in the history entry, for "Previous"); the first page refreshes itself
// when another client creates or changes an incident. It opens on the active incidents.
//
// The text filter is complete: when a page's search stops at the server's scan budget the list
// asks again from where it stopped, with progress shown, until the page is full or every
// candidate was read (or the operator presses Stop, and then it says so instead of "no more").
// An incident id pasted into it opens that incident. The service field offers the services
// the server knows, matched by prefix without regard to case.

import { api } from '../lib/api.js';
import { h, mount, debounce, TYPING_MS } from '../lib/dom.js';
import { idEl, sevBadge, statusBadge, timeEl, SEVERITIES, STATUSES, ACTIVE } from '../lib/format.js';
import { liveReload } from '../lib/live.js';
import { cursorList, emptyTable, linkRow, listHash, pageInUrl, table } from '../lib/table.js';

const PAGE = 50;
const ACTIVE_Q = ACTIVE.join(',');
const ID_RE = /^inc_\d{8}_\d{4}_[A-Za-z0-9]{1,32}$/;
const SORTS = [
  ['created', 'newest first'],
  ['severity', 'severity (P0 first)'],
  ['updated', 'recently updated'],
  ['started', 'recently started'],
];
const num = (n) => Number(n).toLocaleString('en-US');

export function render(view, ctx) {
  const q = ctx.query;
  const state = {
    // No status in the URL: the active ones. `any` lists every status.
    status: q.has('status') ? q.get('status') || 'any' : ACTIVE_Q,
    severity: (q.get('severity') || '').split(',').filter(Boolean),
    service: q.get('service') || '',
    env: q.get('env') || '',
    q: q.get('q') || '',
    sort: SORTS.some(([v]) => v === q.get('sort')) ? q.get('sort') : 'created',
  };
  // Some known services, for the picker's suggestions (a failure only loses them).
  let services = null;

  const statusSel = h('select', { id: 'f-status', 'aria-label': 'Status', onchange: (e) => { state.status = e.target.value; changed(); } },
    h('option', { value: ACTIVE_Q }, 'active (open, ack, mitigated)'),
    h('option', { value: 'any' }, 'any status'),
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
  const serviceList = h('datalist', { id: 'f-service-list' });
  const serviceHint = h('div', { class: 'hint', id: 'f-service-hint', 'aria-live': 'polite' });
  const idHint = h('div', { class: 'hint', 'aria-live': 'polite' });
  const service = h('input', { type: 'text', id: 'f-service', placeholder: 'service', value: state.service, size: 14, 'aria-label': 'Service',
    list: 'f-service-list', autocomplete: 'off', spellcheck: 'false',
    oninput: debounce((e) => { state.service = e.target.value.trim(); changed(); }, TYPING_MS) });
  const env = h('select', { id: 'f-env', 'aria-label': 'Environment', onchange: (e) => { state.env = e.target.value; changed(); } },
    h('option', { value: '' }, 'any env'), ['prod', 'staging', 'dev'].map((x) => h('option', { value: x }, x)));
  env.value = state.env;
  const text = h('input', { type: 'search', id: 'f-q', placeholder: 'Filter text or paste an id…  ( / )', value: state.q, size: 28, 'data-search': '', 'aria-label': 'Text filter',
    oninput: debounce((e) => { state.q = e.target.value.trim(); if (ID_RE.test(state.q)) openId(state.q); else changed(); }, TYPING_MS) });
  const sortSel = h('select', { id: 'f-sort', 'aria-label': 'Sort', onchange: (e) => { state.sort = e.target.value; changed(); } },
    SORTS.map(([v, label]) => h('option', { value: v }, label)));
  sortSel.value = state.sort;
  const summary = h('div', { class: 'list-meta muted', id: 'incident-total', 'aria-live': 'polite' });

  const list = cursorList({
    what: 'incidents',
    pager: { prev: 'prev-page', next: 'next-page', label: 'page-no' },
    ...pageInUrl('incidents', q, (at) => hashFor(at)),
    fetchPage,
    note: (page) => {
      showSummary(page);
      if (page.partial) {
        return h('div', { class: 'notice', id: 'text-partial' },
          `Stopped after searching ${num(page.searchedTotal)} of ${num(page.candidates)} incidents. `,
          'The matches so far are below; "Next →" searches on from there.');
      }
      return null;
    },
    render: showTable,
    backHref: () => hashFor({ cursor: null }),
  });
  mount(view,
    h('div', { class: 'row' }, h('h1', {}, 'Incidents'), h('span', { class: 'spacer' }),
      h('a', { class: 'btn', href: '#/followups', id: 'to-followups' }, 'Follow-ups'),
      h('a', { class: 'btn primary', href: '#/incidents/new', id: 'new-incident', title: 'New incident (n)' }, '+ New incident')),
    h('div', { class: 'filters' }, statusSel, sevBoxes,
      h('span', { class: 'picker' }, service, serviceList), env, text, sortSel,
      h('button', { type: 'button', id: 'f-clear', onclick: () => { ctx.navigate('#/incidents?status=any'); } }, 'Clear')),
    serviceHint,
    idHint,
    summary,
    list.el);

  /** The list's URL: filters, sort and (when not the first) the page. */
  function hashFor(at = {}) {
    return listHash('#/incidents', {
      status: state.status === ACTIVE_Q ? '' : state.status || 'any',
      severity: state.severity.join(','), service: state.service, env: state.env, q: state.q,
      sort: state.sort === 'created' ? '' : state.sort,
    }, at);
  }

  function changed() {
    mount(idHint);
    list.reset();
  }

  /** An id typed or pasted: open it when it exists, else say so (the list shows no match). */
  async function openId(id) {
    try {
      await api(`/api/incidents/${encodeURIComponent(id)}`);
      ctx.navigate(`#/incidents/${encodeURIComponent(id)}`);
    } catch (e) {
      changed();
      if (e.status === 404) mount(idHint, h('span', { id: 'id-missing' }, `No incident has the id ${id}; the list shows what the text filter finds.`));
    }
  }

  /**
   * The service filter as sent, resolved on the server: a name equal to a known one (any case)
   * is that service; a prefix of several is `prefix*` (every service starting with it, however
   * many); a name no service starts with is sent as typed (it matches nothing) and said so.
   */
  async function servicesFor(typed) {
    if (!typed) return { send: '', hint: null };
    let r;
    try {
      r = await api('/api/incidents/services', { query: { prefix: typed, limit: 8 } });
    } catch {
      return { send: typed, hint: null };
    }
    const first = r.services[0];
    if (first && first.service.toLowerCase() === typed.toLowerCase() && !r.services.slice(1).some((s) => s.service.toLowerCase() === typed.toLowerCase())) {
      return { send: first.service, hint: null };
    }
    if (r.total) {
      return {
        send: `${typed}*`,
        hint: h('span', {}, `Services starting with “${typed}”: `, r.services.map((s, i) => [i ? ', ' : '',
          h('a', { href: '#', 'data-service': s.service, onclick: (e) => { e.preventDefault(); pick(s.service); } }, s.service)]),
        r.total > r.services.length ? ` and ${num(r.total - r.services.length)} more` : ''),
      };
    }
    const some = (services || []).slice(0, 8).map((s) => s.service).join(', ');
    return { send: typed, hint: h('span', { class: 'warn' }, `No service starts with “${typed}”.`, some ? ` Known: ${some}${services.length > 8 ? ', …' : ''}.` : '') };
  }

  function pick(name) {
    service.value = name;
    state.service = name;
    changed();
  }

  async function loadServices() {
    try {
      const r = await api('/api/incidents/services', { query: { limit: 200 } });
      services = r.services;
      mount(serviceList, services.map((s) => h('option', { value: s.service }, `${num(s.incidents)} incidents`)));
    } catch { services = null; }
  }

  async function fetchPage(cursor, { current, progress }) {
    const svc = await servicesFor(state.service);
    if (!current()) return { items: [] };
    mount(serviceHint, svc.hint);
    const query = {
      status: state.status === 'any' ? '' : state.status,
      severity: state.severity.join(','), service: svc.send,
      env: state.env, q: state.q, sort: state.sort === 'created' ? '' : state.sort,
    };
    // This load's own Stop (a later load, a live refresh or Retry, searches to the end again).
    const run = { stopped: false };
    let items = [];
    let searched = 0;
    let at = cursor;
    for (;;) {
      const page = await api('/api/incidents', { query: { ...query, limit: PAGE - items.length, cursor: at } });
      items = items.concat(page.items);
      searched += page.scanned || 0;
      const full = items.length >= PAGE;
      if (!page.partial || full || !page.next_cursor || run.stopped || !current()) {
        return { ...page, items, searchedTotal: searched };
      }
      at = page.next_cursor;
      progress(h('div', { class: 'notice', id: 'text-progress', role: 'status' },
        `Searching the text of ${num(searched)} of ${num(page.candidates)} incidents… ${items.length} found. `,
        h('button', { type: 'button', id: 'text-stop', onclick: () => { run.stopped = true; } }, 'Stop')));
    }
  }

  function showSummary(page) {
    const sortLabel = SORTS.find(([v]) => v === state.sort)[1];
    if (page.total != null) {
      mount(summary, `${num(page.total)} incident${page.total === 1 ? '' : 's'} · ${sortLabel}`);
    } else if (page.candidates != null) {
      mount(summary, page.partial
        ? `Text search: ${num(page.searchedTotal)} of ${num(page.candidates)} incidents searched so far · ${sortLabel}`
        : `Text search over ${num(page.candidates)} incidents · ${sortLabel}`);
    } else {
      mount(summary);
    }
  }

  function showTable(items, { first, page }) {
    if (!items.length) {
      if (page && page.partial) return emptyTable('No matches in the incidents searched so far. "Next →" searches on.');
      return emptyTable(first ? 'No incidents match these filters.' : 'No more incidents.');
    }
    return table(['Sev', 'Id', 'Title', 'Status', 'Service', 'Env', 'Started', 'Updated', 'Owner'], items.map((inc) => {
      const href = `#/incidents/${encodeURIComponent(inc.id)}`;
      return linkRow(href, ctx.navigate, { 'data-id': inc.id },
        h('td', {}, sevBadge(inc.severity)),
        h('td', {}, idEl(inc.id, href)),
        h('td', { class: 'title-cell' }, inc.title),
        h('td', {}, statusBadge(inc.status)),
        h('td', {}, inc.service),
        h('td', {}, inc.env),
        h('td', {}, timeEl(inc.started_at)),
        h('td', {}, timeEl(inc.updated_at)),
        h('td', {}, inc.owner || h('span', { class: 'muted' }, '—')));
    }), { id: 'incident-table' });
  }

  // A URL with an id in the text filter lists it (the server looks it up) rather than
  // jumping again.
  loadServices();
  list.load();
  return liveReload((ev) => ev.type === 'incident.created' || ev.type === 'incident.updated', () => {
    loadServices();
    return list.changed();
  });
}
