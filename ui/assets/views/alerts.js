// Alerts: the alerts Alertmanager (and the generic intake) sent, grouped by alert group and
// filtered by status in the URL; one alert's detail; silences (list, create, expire); ack;
// and the intake counts per source. Refreshed live on alert.received / alert.resolved.
//
// URLs: `#/alerts?status=&service=`, `#/alerts/<fingerprint>`.

import { api } from '../lib/api.js';
import { errorBox, h, loading, mount } from '../lib/dom.js';
import { liveReload } from '../lib/live.js';
import { emptyTable, table } from '../lib/table.js';
import { localTime } from './jobs.js';

export const STATUSES = ['firing', 'resolved', 'suppressed'];
const enc = encodeURIComponent;
const isAlertEvent = (ev) => ev.type === 'alert.received' || ev.type === 'alert.resolved';

const chips = (labels) => h('ul', { class: 'chips', 'aria-label': 'Labels' },
  Object.entries(labels || {}).map(([k, v]) => h('li', { class: 'chip' }, `${k}=${v}`)));
const statusBadge = (s) => h('span', { class: `badge st al-${s}`, 'data-status': s }, s);
const incidentLink = (id) => (id ? h('a', { href: `#/incidents/${enc(id)}`, class: 'incident-link' }, id) : h('span', { class: 'muted' }, '—'));
const msg = (e) => (e && typeof e.describe === 'function' ? e.describe() : (e && e.message) || String(e));

export function render(view, ctx) {
  if (ctx.parts.length > 1) return renderAlert(view, ctx, decodeURIComponent(ctx.parts[1]));
  let alive = true;
  const state = { status: ctx.query.get('status') || '', service: ctx.query.get('service') || '' };
  const remember = () => {
    const p = new URLSearchParams();
    if (state.status) p.set('status', state.status);
    if (state.service) p.set('service', state.service);
    const s = p.toString();
    history.replaceState(null, '', `#/alerts${s ? `?${s}` : ''}`);
  };
  const status = h('select', { id: 'al-status', 'aria-label': 'Alert status', onchange: (e) => { state.status = e.target.value; remember(); load(); } },
    h('option', { value: '' }, 'any status'), STATUSES.map((s) => h('option', { value: s }, s)));
  status.value = state.status;
  const list = h('div', { id: 'al-list', 'aria-live': 'polite' });
  const stats = h('div', { id: 'al-stats' });
  const silences = h('div', { id: 'sil-list' });
  const silMsg = h('p', { id: 'sil-msg', role: 'status', 'aria-live': 'polite' });
  const matchers = h('input', { type: 'text', id: 'sil-matchers', name: 'matchers', required: true, placeholder: 'alertname="X", service="api"', autocomplete: 'off' });
  const hours = h('input', { type: 'number', id: 'sil-hours', name: 'hours', min: 1, value: 2 });
  const reason = h('input', { type: 'text', id: 'sil-reason', name: 'reason', placeholder: 'why' });
  const form = h('form', { id: 'sil-form', class: 'filters', onsubmit: createSilence },
    h('label', { for: 'sil-matchers' }, 'Matchers'), matchers,
    h('label', { for: 'sil-hours' }, 'Hours'), hours,
    h('label', { for: 'sil-reason' }, 'Reason'), reason,
    h('button', { type: 'submit', class: 'btn primary' }, 'Silence'), silMsg);

  mount(view, h('h1', {}, 'Alerts'),
    h('section', { 'aria-labelledby': 'al-h' }, h('h2', { id: 'al-h' }, 'Alerts by group'), h('div', { class: 'filters' }, status), list),
    h('section', { 'aria-labelledby': 'sil-h' }, h('h2', { id: 'sil-h' }, 'Silences'), form, silences),
    h('section', { 'aria-labelledby': 'st-h' }, h('h2', { id: 'st-h' }, 'Intake per source'), stats));

  async function createSilence(e) {
    e.preventDefault();
    const ms = matchers.value.split(/,(?=(?:[^"]*"[^"]*")*[^"]*$)/).map((s) => s.trim()).filter(Boolean);
    const until = new Date(Date.now() + Number(hours.value || 1) * 3600e3).toISOString();
    mount(silMsg, 'Saving…');
    silMsg.className = '';
    try {
      const s = await api('/api/alerts/silences', { method: 'POST', body: { matchers: ms, until, reason: reason.value } });
      mount(silMsg, `Silence ${s.id || ''} created.`);
      loadSilences();
    } catch (err) {
      silMsg.className = 'error';
      mount(silMsg, msg(err));
    }
  }

  let seq = 0;
  async function load() {
    const my = ++seq;
    if (!list.firstChild) loading(list);
    try {
      const data = await api('/api/alerts', { query: { status: state.status, service: state.service } });
      if (!alive || my !== seq) return;
      const items = data.items || [];
      if (!items.length) { mount(list, emptyTable(state.status ? `No ${state.status} alert.` : 'No alert has arrived yet.')); return; }
      const groups = new Map();
      for (const a of items) { const k = a.group_key || '—'; if (!groups.has(k)) groups.set(k, []); groups.get(k).push(a); }
      mount(list, [...groups].map(([k, as]) => h('section', { class: 'al-group' },
        h('h3', {}, h('code', {}, k), ` (${as.length})`),
        table(['Alert', 'Status', 'Labels', 'Incident', 'Starts', 'Ends', { label: 'Flaps', num: true }, ''], as.map((a) => h('tr', { 'data-fingerprint': a.fingerprint, class: 'al-row' },
          h('td', {}, h('a', { href: `#/alerts/${enc(a.fingerprint)}` }, a.summary || a.labels?.alertname || a.fingerprint)),
          h('td', {}, statusBadge(a.status), a.suppressed_by ? h('span', { class: 'muted' }, ` by ${a.suppressed_by}`) : null),
          h('td', {}, chips(a.labels)),
          h('td', {}, incidentLink(a.incident_id)),
          h('td', {}, localTime(a.starts_at)),
          h('td', {}, localTime(a.ends_at)),
          h('td', { class: 'num' }, String(a.flaps ?? 0)),
          h('td', {}, ackButton(a))))))));
    } catch (e) {
      if (alive && my === seq) mount(list, errorBox(e, 'the alerts', load));
    }
  }

  async function loadSilences() {
    try {
      const data = await api('/api/alerts/silences');
      if (!alive) return;
      const items = Array.isArray(data) ? data : (data.items || data.silences || []);
      if (!items.length) { mount(silences, emptyTable('No silence.')); return; }
      mount(silences, table(['Matchers', 'Until', 'Reason', 'State', ''], items.map((s) => h('tr', { 'data-silence': s.id },
        h('td', {}, h('ul', { class: 'chips', 'aria-label': 'Matchers' }, (s.matchers || []).map((m) => h('li', { class: 'chip' }, typeof m === 'string' ? m : JSON.stringify(m))))),
        h('td', {}, localTime(s.ends_at)),
        h('td', {}, s.reason || ''),
        h('td', {}, s.expired_at ? 'expired' : 'active'),
        h('td', {}, s.expired_at ? null : h('button', { type: 'button', class: 'btn', onclick: async (e) => {
          try { await api(`/api/alerts/silences/${enc(s.id)}/expire`, { method: 'POST', body: {} }); loadSilences(); } catch (err) { e.target.replaceWith(h('span', { class: 'error' }, msg(err))); }
        } }, 'Expire'))))));
    } catch (e) { if (alive) mount(silences, errorBox(e, 'the silences', loadSilences)); }
  }

  async function loadStats() {
    try {
      const data = await api('/api/alerts/stats');
      if (!alive) return;
      const src = Object.entries(data.sources || {});
      if (!src.length) { mount(stats, emptyTable('No notification received yet.')); return; }
      mount(stats, table(['Source', { label: 'Notifications', num: true }, { label: 'Alerts', num: true }, { label: 'Dedup ratio', num: true }], src.map(([k, s]) => h('tr', {},
        h('td', {}, k), h('td', { class: 'num' }, String(s.notifications ?? '—')), h('td', { class: 'num' }, String(s.alerts ?? '—')),
        h('td', { class: 'num' }, s.dedup_ratio == null ? '—' : Number(s.dedup_ratio).toFixed(2))))));
    } catch (e) { if (alive) mount(stats, errorBox(e, 'the stats', loadStats)); }
  }

  load(); loadSilences(); loadStats();
  const off = liveReload(isAlertEvent, () => { if (alive) { load(); loadStats(); } }, 250);
  return () => { alive = false; off(); };
}

function ackButton(a) {
  const out = h('span', { class: 'ack-result', role: 'status' });
  return h('span', {}, h('button', { type: 'button', class: 'btn', disabled: !!a.acked_at, onclick: async () => {
    try { await api('/api/alerts/ack', { method: 'POST', body: { fingerprint: a.fingerprint } }); mount(out, ' acked'); } catch (e) { out.className = 'ack-result error'; mount(out, ` ${msg(e)}`); }
  } }, a.acked_at ? 'Acked' : 'Ack'), out);
}

function renderAlert(view, ctx, fp) {
  let alive = true;
  const box = h('div', { id: 'al-detail' });
  mount(view, h('p', {}, h('a', { href: '#/alerts' }, '← Alerts')), h('h1', {}, 'Alert ', h('code', {}, fp)), box);
  async function load() {
    try {
      const a = await api(`/api/alerts/${enc(fp)}`);
      if (!alive) return;
      mount(box, h('dl', { class: 'kv' },
        h('dt', {}, 'Status'), h('dd', {}, statusBadge(a.status), a.suppressed_by ? ` by ${a.suppressed_by}` : ''),
        h('dt', {}, 'Summary'), h('dd', {}, a.summary || '—'),
        h('dt', {}, 'Labels'), h('dd', {}, chips(a.labels)),
        h('dt', {}, 'Annotations'), h('dd', {}, chips(a.annotations)),
        h('dt', {}, 'Group'), h('dd', {}, h('code', {}, a.group_key || '—')),
        h('dt', {}, 'Incident'), h('dd', {}, incidentLink(a.incident_id)),
        h('dt', {}, 'Starts'), h('dd', {}, localTime(a.starts_at)),
        h('dt', {}, 'Ends'), h('dd', {}, localTime(a.ends_at)),
        h('dt', {}, 'Flaps'), h('dd', {}, String(a.flaps ?? 0)),
        h('dt', {}, 'Notifications'), h('dd', {}, String(a.notifications ?? 0)),
        h('dt', {}, 'Ack'), h('dd', {}, ackButton(a))));
    } catch (e) { if (alive) mount(box, errorBox(e, 'the alert', load)); }
  }
  load();
  const off = liveReload(isAlertEvent, () => { if (alive) load(); }, 250);
  return () => { alive = false; off(); };
}
