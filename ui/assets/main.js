// The console shell: header (backend state, env, build), navigation (a menu on narrow
// screens), hash router, theme and keyboard shortcuts. Each view module exports
// `render(container, ctx)` and may return a cleanup function, called when the view is left.
//
// Every view has its own URL (`#/incidents/inc_…`, `#/incidents?status=open`), so links can be
// pasted into a chat. Tabs are shown only for rooms the server reports in `/api/health`.

import { api, settings } from './lib/api.js';
import { h, mount, toast } from './lib/dom.js';
import { refreshRelativeTimes } from './lib/format.js';
import * as live from './lib/live.js';
import * as overview from './views/overview.js';
import * as incidents from './views/incidents.js';
import * as incident from './views/incident.js';
import * as followups from './views/followups.js';
import * as events from './views/events.js';
import * as ops from './views/ops.js';
import * as runbooks from './views/runbooks.js';
import * as jobs from './views/jobs.js';
import * as alerts from './views/alerts.js';
import * as reports from './views/reports.js';
import * as settingsView from './views/settings.js';

/** Every tab of SPEC §10, in order. `view` is set for the rooms this build implements. */
const TABS = [
  { room: 'overview', label: 'Overview', key: 'g o', view: overview },
  { room: 'nodes', label: 'Nodes' },
  { room: 'incidents', label: 'Incidents', key: 'g i', view: incidents },
  // A page of the incidents room without a tab of its own.
  { room: 'followups', label: 'Follow-ups', view: followups, within: 'incidents' },
  { room: 'ops', label: 'Ops', key: 'g p', view: ops },
  { room: 'runbooks', label: 'Runbooks', key: 'g r', view: runbooks },
  { room: 'alerts', label: 'Alerts', key: 'g a', view: alerts, probe: '/api/alerts/stats' },
  { room: 'jobs', label: 'Jobs', key: 'g j', view: jobs, probe: '/api/jobs' },
  { room: 'reports', label: 'Reports', key: 'g t', view: reports, probe: '/api/reports' },
  { room: 'events', label: 'Events', key: 'g e', view: events },
  { room: 'chat', label: 'Chat' },
  { room: 'settings', label: 'Settings', key: 'g s', view: settingsView },
];

let rooms = new Set(['overview', 'incidents', 'runbooks', 'events', 'settings']);
// Rooms a server has without listing them in `/api/health` yet (a build from before its
// room list named them): found by asking the tab's `probe` endpoint once. Anything but a 404
// (a list, or a 401 before the key is set) means the room is there.
const probed = new Set();
/** Rooms whose probe has answered (there or not): not asked again. */
const settled = new Set();
let probing = null;

function probeRooms() {
  if (probing) return probing;
  const ask = TABS.filter((t) => t.probe && !rooms.has(t.room) && !settled.has(t.room));
  if (!ask.length) return null;
  probing = Promise.all(ask.map((t) => api(t.probe, { timeoutMs: HEALTH_TIMEOUT_MS })
    .then(() => 'yes', (e) => (e.status === 404 ? 'no' : e.status === 0 ? 'retry' : 'yes'))
    .then((answer) => {
      if (answer !== 'retry') settled.add(t.room);
      if (answer === 'yes') probed.add(t.room);
      return answer;
    })))
    .then((answers) => {
      probing = null;
      // The tabs found join the nav; a page of one of these rooms (which waited) is shown.
      renderNav();
      if (ask.some((t) => t.room === (parseHash().parts[0] || 'overview'))) route_();
      return answers;
    });
  return probing;
}

const hasRoom = (room) => rooms.has(room) || probed.has(room);
let cleanup = null;
export const health = { ok: null, data: null, error: null };

/** Parse `#/a/b?x=1` into path segments and a query. */
export function parseHash(hash = window.location.hash) {
  const raw = hash.replace(/^#\/?/, '');
  const [path, q = ''] = raw.split('?');
  const decode = (x) => { try { return decodeURIComponent(x); } catch { return x; } };
  return { parts: path.split('/').filter(Boolean).map(decode), query: new URLSearchParams(q) };
}

/** Go to a route (adds a history entry). */
export function navigate(route) {
  if (window.location.hash === route) route_();
  else window.location.hash = route;
}

function renderNav() {
  const { parts } = parseHash();
  const first = parts[0] || 'overview';
  const current = (TABS.find((t) => t.room === first) || {}).within || first;
  const nav = document.getElementById('nav');
  mount(nav, TABS.filter((t) => t.view && !t.within && hasRoom(t.room)).map((t) =>
    h('a', {
      href: `#/${t.room}`,
      class: current === t.room ? 'active' : '',
      'aria-current': current === t.room ? 'page' : undefined,
    }, t.label, t.key ? h('span', { class: 'key' }, t.key) : null)));
}

// Narrow screens (app.css's first breakpoint): the sections are behind the header's menu
// button, a disclosure. Escape, choosing a tab, a new route or a tap outside closes it (that
// tap does nothing else: it cannot open the row under the menu by accident).
const NARROW = window.matchMedia('(max-width: 840px)');
const navIsOpen = () => document.body.classList.contains('nav-open');

function setNav(open) {
  const toggle = document.getElementById('nav-toggle');
  if (open) {
    // The header wraps to two lines on a phone: the menu opens right below it.
    const top = document.querySelector('.top').getBoundingClientRect().bottom;
    document.documentElement.style.setProperty('--nav-top', `${Math.max(0, Math.round(top))}px`);
  }
  document.body.classList.toggle('nav-open', open);
  toggle.setAttribute('aria-expanded', String(open));
  if (open) {
    const nav = document.getElementById('nav');
    (nav.querySelector('a.active') || nav.querySelector('a'))?.focus();
  }
}

function setupNav() {
  const toggle = document.getElementById('nav-toggle');
  const nav = document.getElementById('nav');
  toggle.addEventListener('click', () => setNav(!navIsOpen()));
  // A tab chosen: closed, and focus goes to the page it opens.
  nav.addEventListener('click', (e) => {
    if (!navIsOpen() || !e.target.closest('a')) return;
    setNav(false);
    document.getElementById('view').focus({ preventScroll: true });
  });
  // Tabbing out of the open menu closes it.
  nav.addEventListener('focusout', (e) => {
    const to = e.relatedTarget;
    if (navIsOpen() && to && !nav.contains(to) && to !== toggle) setNav(false);
  });
  document.addEventListener('click', (e) => {
    if (!navIsOpen() || nav.contains(e.target) || toggle.contains(e.target)) return;
    // A dialog opened over the menu (help) takes its own clicks; the menu just closes.
    if (e.target.closest('dialog[open]')) { setNav(false); return; }
    e.preventDefault();
    e.stopPropagation();
    setNav(false);
  }, true);
  NARROW.addEventListener('change', () => { if (navIsOpen()) setNav(false); });
}

function route_() {
  const { parts, query } = parseHash();
  const view = document.getElementById('view');
  if (navIsOpen()) setNav(false);
  if (cleanup) {
    try { cleanup(); } catch (e) { console.error(e); }
    cleanup = null;
  }
  renderNav();
  const room = parts[0] || 'overview';
  const tab = TABS.find((t) => t.room === room && t.view && hasRoom(t.within || t.room));
  const ctx = { parts, query, navigate, reconnect, setTheme, health };
  mount(view);
  if (!tab && probing && TABS.some((t) => t.room === room && t.probe)) {
    // Still finding out whether this server has the room: the probe routes again.
    mount(view, h('div', { class: 'empty' }, 'Loading…'));
    return;
  }
  if (!tab) {
    mount(view, h('h1', {}, 'Not found'),
      h('p', {}, 'This console has no page at ', h('code', {}, window.location.hash || '#/'), '. ',
        h('a', { href: '#/overview' }, 'Go to the overview'), '.'));
    return;
  }
  const mod = room === 'incidents' && parts[1] ? incident : tab.view;
  document.title = `${tab.label} · sofiia`;
  try {
    cleanup = mod.render(view, ctx) || null;
  } catch (e) {
    console.error(e);
    mount(view, h('div', { class: 'error-box' }, h('strong', {}, 'This view failed: '), String(e.message || e)));
  }
}

// The header's health light: asked every HEALTH_EVERY_MS, and a server that does not answer
// within HEALTH_TIMEOUT_MS (stopped, paused, overloaded) turns it red within seconds.
const HEALTH_EVERY_MS = 5000;
const HEALTH_TIMEOUT_MS = 4000;

async function checkHealth() {
  const conn = document.getElementById('conn');
  try {
    const data = await api('/api/health', { timeoutMs: HEALTH_TIMEOUT_MS });
    Object.assign(health, { ok: true, data, error: null });
    conn.textContent = 'BFF: ✓';
    conn.className = 'conn ok';
    conn.title = `Connected to ${settings.base}`;
    const env = String(data.env || 'dev');
    const badge = document.getElementById('env-badge');
    badge.hidden = false;
    badge.textContent = env;
    badge.className = `env-badge env-${env}`;
    badge.title = env === 'prod' ? 'PRODUCTION: changes here affect live incidents' : `Environment: ${env}`;
    document.body.classList.toggle('env-prod', env === 'prod');
    document.getElementById('build').textContent = `v${data.version} · ${data.build_id}`;
    if (Array.isArray(data.rooms)) {
      const next = new Set(data.rooms);
      const changed = next.size !== rooms.size || [...next].some((r) => !rooms.has(r));
      rooms = next;
      if (changed) route_();
    }
    probeRooms();
  } catch (e) {
    Object.assign(health, { ok: false, error: e });
    conn.textContent = 'BFF: ✗';
    conn.className = 'conn bad';
    conn.title = e.describe ? e.describe() : String(e);
  }
}

function showLiveState(s) {
  const el = document.getElementById('live');
  if (s.status === 'open') {
    el.textContent = 'live: ✓';
    el.className = 'conn ok';
    el.title = 'Receiving live events';
  } else if (s.status === 'connecting') {
    el.textContent = 'live: connecting…';
    el.className = 'conn wait';
  } else {
    el.textContent = `live: ✗ retry in ${Math.ceil(s.retryInMs / 1000)} s`;
    el.className = 'conn bad';
    el.title = s.silent
      ? 'The server stopped sending (no heartbeat); views may be out of date. Reconnecting with backoff.'
      : 'The live event stream is down; views still load on demand. Reconnecting with backoff.';
  }
}

// Theme: explicit choice in localStorage, else the system's.
const THEME_KEY = 'sofiia.theme';
export function applyTheme() {
  const chosen = localStorage.getItem(THEME_KEY);
  const dark = chosen ? chosen === 'dark' : window.matchMedia('(prefers-color-scheme: dark)').matches;
  document.documentElement.dataset.theme = dark ? 'dark' : 'light';
}
export function setTheme(value) {
  if (value) localStorage.setItem(THEME_KEY, value);
  else localStorage.removeItem(THEME_KEY);
  applyTheme();
}

/** Whether keys go into a text field (shortcuts stay off there; checkboxes do not count). */
function typing(target) {
  if (!target) return false;
  if (target.isContentEditable || target.tagName === 'TEXTAREA' || target.tagName === 'SELECT') return true;
  return target.tagName === 'INPUT' && !['checkbox', 'radio', 'button', 'submit', 'reset', 'file'].includes(target.type);
}

let pendingG = 0;
function onKey(e) {
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  if (document.querySelector('dialog[open]')) return;
  if (e.key === 'Escape' && navIsOpen()) {
    e.preventDefault();
    setNav(false);
    document.getElementById('nav-toggle').focus();
    return;
  }
  if (e.key === 'Escape' && typing(e.target)) { e.target.blur(); return; }
  if (typing(e.target)) return;
  const go = { o: '#/overview', i: '#/incidents', p: '#/ops', r: '#/runbooks', a: '#/alerts', j: '#/jobs', t: '#/reports', e: '#/events', s: '#/settings' };
  if (pendingG && Date.now() - pendingG < 1500 && go[e.key]) {
    pendingG = 0;
    e.preventDefault();
    navigate(go[e.key]);
    return;
  }
  pendingG = 0;
  switch (e.key) {
    case 'g': pendingG = Date.now(); break;
    case '/': {
      const s = document.querySelector('[data-search]');
      if (s) { e.preventDefault(); s.focus(); s.select?.(); }
      break;
    }
    case 'n': e.preventDefault(); navigate('#/incidents/new'); break;
    case '?': document.getElementById('help').showModal(); break;
    case 'j': case 'k': moveSelection(e.key === 'j' ? 1 : -1); break;
    case 'Enter': {
      // Only when nothing else has focus (a focused button or link handles Enter itself).
      const a = document.activeElement;
      if (a && a !== document.body && a.id !== 'view') break;
      const sel = document.querySelector('tr.sel[data-href]');
      if (sel) navigate(sel.dataset.href);
      break;
    }
    default:
  }
}

function moveSelection(step) {
  const rows = [...document.querySelectorAll('tr[data-href]')];
  if (!rows.length) return;
  const cur = rows.findIndex((r) => r.classList.contains('sel'));
  const next = Math.max(0, Math.min(rows.length - 1, cur === -1 ? 0 : cur + step));
  rows.forEach((r) => r.classList.remove('sel'));
  rows[next].classList.add('sel');
  rows[next].scrollIntoView({ block: 'nearest' });
}

/** Reconnect everything after Settings changed the key or backend URL. */
export function reconnect() {
  live.connect();
  checkHealth();
}

function start() {
  applyTheme();
  window.matchMedia('(prefers-color-scheme: dark)').addEventListener('change', applyTheme);
  document.getElementById('theme-toggle').addEventListener('click', () => {
    setTheme(document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark');
  });
  document.getElementById('help-btn').addEventListener('click', () => document.getElementById('help').showModal());
  setupNav();
  window.addEventListener('hashchange', route_);
  document.addEventListener('keydown', onKey);
  live.onState(showLiveState);
  live.onEvent((ev) => {
    if (ev.type === 'error' && ev.data && ev.data.message) toast(ev.data.message, 'error');
  });
  live.connect();
  checkHealth();
  setInterval(checkHealth, HEALTH_EVERY_MS);
  setInterval(() => refreshRelativeTimes(), 30000);
  if (!window.location.hash) window.location.replace('#/overview');
  probeRooms();
  route_();
}

start();
