// Reports: the digests the jobs write (weekly incidents, daily risk, weekly platform
// priorities), filtered by kind and each rendered from its markdown with lib/markdown.js; the
// risk score of the top services over the last 30 days as a line chart (lib/chart.js); and the
// backlog, whose items' status can be changed in place. The risk and backlog rooms may be
// missing from a build: their endpoints then answer 404 and the page says so (no fake data).
//
// URLs: `#/reports?kind=&bl_status=&bl_service=`, `#/reports/<path without reports/>`.

import { api } from '../lib/api.js';
import { debounce, errorBox, h, loading, mount, TYPING_MS } from '../lib/dom.js';
import { lineChart, PALETTE } from '../lib/chart.js';
import { bytes, shorten } from '../lib/format.js';
import { renderMarkdown } from '../lib/markdown.js';
import { emptyTable, linkRow, table } from '../lib/table.js';

export const KINDS = [
  ['incidents_weekly', 'Weekly incidents'],
  ['risk', 'Daily risk'],
  ['platform', 'Weekly platform priorities'],
];
export const BACKLOG_STATUSES = ['open', 'in_progress', 'done', 'wontfix'];
/** Services drawn in the chart (the riskiest first); the rest are in the table under it. */
const CHART_SERVICES = 6;

const enc = (path) => String(path).split('/').map(encodeURIComponent).join('/');
const kindLabel = (k) => (KINDS.find(([x]) => x === k) || [k, k])[1];
/** A report's route: its path without the `reports/` prefix. */
const reportHref = (path) => `#/reports/${enc(String(path).replace(/^reports\//, ''))}`;

/** The first array found under one of `keys` of `data` (or `data` itself when it is one). */
export function listOf(data, ...keys) {
  if (Array.isArray(data)) return data;
  if (!data || typeof data !== 'object') return [];
  for (const k of keys) if (Array.isArray(data[k])) return data[k];
  return [];
}

/** A point's time in ms, from whichever field it has (`ts`, `at`, `timestamp`, …). */
export function pointTime(p) {
  if (!p || typeof p !== 'object') return NaN;
  for (const k of ['ts', 'at', 'timestamp', 'time', 'taken_at', 'computed_at', 'created_at', 'date', 'day']) {
    if (p[k] != null) {
      const t = typeof p[k] === 'number' ? (p[k] < 1e12 ? p[k] * 1000 : p[k]) : Date.parse(p[k]);
      if (Number.isFinite(t)) return t;
    }
  }
  return NaN;
}

const notInBuild = (what, path) => h('div', { class: 'notice not-available' },
  `${what} is not available in this build (the server has no `, h('code', {}, path), ').');

export function render(view, ctx) {
  if (ctx.parts.length > 1) return renderReport(view, ctx, ctx.parts.slice(1).join('/'));
  return renderHome(view, ctx);
}

function renderHome(view, ctx) {
  let alive = true;
  const state = {
    kind: ctx.query.get('kind') || '',
    blStatus: ctx.query.get('bl_status') || '',
    blService: ctx.query.get('bl_service') || '',
  };
  const hashFor = () => {
    const p = new URLSearchParams();
    if (state.kind) p.set('kind', state.kind);
    if (state.blStatus) p.set('bl_status', state.blStatus);
    if (state.blService) p.set('bl_service', state.blService);
    const s = p.toString();
    return `#/reports${s ? `?${s}` : ''}`;
  };
  const remember = () => history.replaceState(null, '', hashFor());

  const kind = h('select', { id: 'rep-kind', 'aria-label': 'Kind of report', onchange: (e) => { state.kind = e.target.value; remember(); loadReports(); } },
    h('option', { value: '' }, 'every kind'), KINDS.map(([k, label]) => h('option', { value: k }, label)));
  kind.value = state.kind;
  const reports = h('div', { id: 'rep-list', 'aria-live': 'polite' });
  const risk = h('div', { id: 'risk-box' });
  const blStatus = h('select', { id: 'bl-status', 'aria-label': 'Backlog status', onchange: (e) => { state.blStatus = e.target.value; remember(); loadBacklog(); } },
    h('option', { value: '' }, 'any status'), BACKLOG_STATUSES.map((s) => h('option', { value: s }, s.replace('_', ' '))));
  blStatus.value = state.blStatus;
  const blService = h('input', {
    type: 'text', id: 'bl-service', size: 16, placeholder: 'service', 'aria-label': 'Backlog service', autocomplete: 'off', value: state.blService,
    oninput: debounce((e) => { state.blService = e.target.value.trim(); remember(); loadBacklog(); }, TYPING_MS * 3),
  });
  const backlog = h('div', { id: 'backlog-box' });
  const blFilters = h('div', { class: 'filters' }, blStatus, blService);

  mount(view, h('h1', {}, 'Reports'),
    h('section', { 'aria-labelledby': 'rep-h' }, h('h2', { id: 'rep-h' }, 'Digests'),
      h('div', { class: 'filters' }, kind), reports),
    h('section', { 'aria-labelledby': 'risk-h' }, h('h2', { id: 'risk-h' }, 'Risk per service, last 30 days'), risk),
    h('section', { 'aria-labelledby': 'bl-h' }, h('h2', { id: 'bl-h' }, 'Backlog'),
      blFilters, backlog));

  let repSeq = 0;
  async function loadReports() {
    const my = ++repSeq;
    loading(reports);
    try {
      const data = await api('/api/reports', { query: { kind: state.kind } });
      if (!alive || my !== repSeq) return;
      const items = listOf(data, 'reports', 'items');
      if (!items.length) {
        mount(reports, emptyTable(state.kind ? `No ${kindLabel(state.kind).toLowerCase()} digest has been written yet.` : 'No digest has been written yet. The jobs write them on their schedule; Run now on the Jobs tab writes one at once.'));
        return;
      }
      mount(reports, table(['Report', 'Kind', 'Path', 'Formats', { label: 'Size', num: true }], items.map((r) => {
        const href = reportHref(r.path);
        return linkRow(href, ctx.navigate, { 'data-path': r.path, 'data-kind': r.kind },
          h('td', {}, h('a', { href }, r.period || r.path)),
          h('td', {}, kindLabel(r.kind)),
          h('td', { class: 'mono small' }, r.path),
          h('td', {}, (r.formats || []).map((f) => h('span', { class: 'tag' }, f))),
          h('td', { class: 'num' }, Number.isFinite(r.bytes) ? bytes(r.bytes) : '—'));
      }), { id: 'report-table' }));
    } catch (e) {
      if (!alive || my !== repSeq) return;
      mount(reports, errorBox(e, 'Could not list reports', loadReports));
    }
  }

  async function loadRisk() {
    loading(risk);
    let top;
    try {
      top = await api('/api/risk', { query: { limit: 20 } });
    } catch (e) {
      if (!alive) return;
      mount(risk, e.status === 404 ? notInBuild('Risk scoring', '/api/risk') : errorBox(e, 'Could not load risk scores', loadRisk));
      return;
    }
    if (!alive) return;
    const services = listOf(top, 'services', 'items', 'scores')
      .map((s) => (typeof s === 'string' ? { service: s } : s))
      .filter((s) => s && (s.service || s.name))
      .map((s) => ({ ...s, service: String(s.service || s.name) }));
    if (!services.length) { mount(risk, emptyTable('No service has a risk score yet (the hourly snapshot job computes them).')); return; }
    const drawn = services.slice(0, CHART_SERVICES);
    const histories = await Promise.all(drawn.map((s) => api(`/api/risk/${encodeURIComponent(s.service)}/history`, { query: { days: 30 } })
      .then((d) => ({ ok: true, points: listOf(d, 'points', 'history', 'items', 'snapshots') }), (e) => ({ ok: false, e }))));
    if (!alive) return;
    const series = drawn.map((s, i) => ({
      name: s.service,
      points: histories[i].ok ? histories[i].points.map((p) => ({ t: pointTime(p), v: Number(p && p.score) })).filter((p) => Number.isFinite(p.t) && Number.isFinite(p.v)) : [],
    }));
    const failed = drawn.map((s, i) => ({ service: s.service, e: histories[i].e })).filter((x) => x.e);
    const shown = series.filter((s) => s.points.length);
    // Every history refused with a 404: the endpoint itself is missing from this build.
    const allMissing = failed.length === drawn.length && failed.every((x) => x.e.status === 404);
    const swatch = (i) => {
      const sw = h('span', { class: 'swatch', 'aria-hidden': 'true' });
      sw.style.backgroundColor = PALETTE[i % PALETTE.length];
      return sw;
    };
    mount(risk,
      allMissing
        ? notInBuild('Risk history', '/api/risk/{service}/history')
        : shown.length
          ? h('figure', { class: 'chart-box panel' },
            lineChart(shown, { id: 'risk-chart', title: 'Risk score (0–100) per service over the last 30 days', yMin: 0, yMax: 100 }),
            h('figcaption', { class: 'legend', id: 'risk-legend' }, shown.map((s, i) => h('span', { class: 'legend-item', 'data-series': s.name }, swatch(i), s.name))))
          : h('div', { class: 'empty panel' }, 'No risk history in the last 30 days for these services.'),
      allMissing ? null : failed.map((x) => errorBox(x.e, `Risk history of ${x.service}`)),
      table(['Service', { label: 'Score', num: true }, 'Band', 'Points'], services.map((s) => {
        const i = drawn.indexOf(s);
        const n = i >= 0 ? series[i].points.length : null;
        return h('tr', { 'data-service': s.service },
          h('td', {}, s.service),
          h('td', { class: 'num' }, Number.isFinite(Number(s.score)) ? String(Math.round(Number(s.score) * 10) / 10) : '—'),
          h('td', {}, s.band ? h('span', { class: `badge st band-${/^[a-z_]+$/.test(s.band) ? s.band : 'x'}` }, s.band) : '—'),
          h('td', { class: 'muted' }, n === null ? 'not drawn' : histories[i].ok ? `${n} in 30 days` : 'history not loaded'));
      }), { id: 'risk-table', class: 'grid compact' }));
  }

  let blSeq = 0;
  async function loadBacklog() {
    const my = ++blSeq;
    if (!backlog.firstChild) loading(backlog);
    let data;
    try {
      data = await api('/api/backlog', { query: { status: state.blStatus, service: state.blService } });
    } catch (e) {
      if (!alive || my !== blSeq) return;
      const missing = e.status === 404;
      // Filters for a list this build does not have would only mislead.
      blFilters.hidden = missing;
      mount(backlog, missing ? notInBuild('The backlog', '/api/backlog') : errorBox(e, 'Could not load the backlog', loadBacklog));
      return;
    }
    blFilters.hidden = false;
    if (!alive || my !== blSeq) return;
    const items = listOf(data, 'items', 'backlog');
    if (!items.length) { mount(backlog, emptyTable('No backlog item matches.')); return; }
    mount(backlog, table(['Item', 'Service', 'Priority', 'Owner', 'Status'], items.map(backlogRow), { id: 'backlog-table' }));
  }

  function backlogRow(it) {
    const id = String(it.id ?? it.key ?? '');
    const err = h('div', { class: 'field-error', role: 'alert' });
    let current = String(it.status || '');
    const statuses = BACKLOG_STATUSES.includes(current) || !current ? BACKLOG_STATUSES : [current, ...BACKLOG_STATUSES];
    const select = h('select', {
      'aria-label': `Status of ${it.title || id}`, 'data-item': id, class: 'bl-status',
      onchange: async (e) => {
        const to = e.target.value;
        select.disabled = true;
        err.textContent = '';
        try {
          const out = await api(`/api/backlog/${encodeURIComponent(id)}`, { method: 'PATCH', body: { status: to } });
          const item = (out && (out.item || out)) || {};
          current = String(item.status || to);
          select.value = current;
          tr.dataset.status = current;
        } catch (ex) {
          // Refused: the row keeps the status the server has, and says why.
          select.value = current;
          err.textContent = ex.describe ? ex.describe() : String(ex.message || ex);
        } finally {
          select.disabled = false;
        }
      },
    }, statuses.map((s) => h('option', { value: s }, s.replace('_', ' '))));
    select.value = current;
    const tr = h('tr', { 'data-item': id, 'data-status': current },
      h('td', { class: 'title-cell' }, it.title ? shorten(it.title, 200) : h('span', { class: 'muted' }, '(untitled)'),
        h('div', { class: 'muted small mono' }, it.key || id), it.why || it.reason ? h('div', { class: 'muted small' }, shorten(it.why || it.reason, 240)) : null),
      h('td', {}, it.service || '—'),
      h('td', {}, it.priority != null ? String(it.priority) : '—'),
      h('td', {}, it.owner || h('span', { class: 'muted' }, '—')),
      h('td', {}, select, err));
    return tr;
  }

  loadReports();
  loadRisk();
  loadBacklog();
  return () => { alive = false; };
}

function renderReport(view, ctx, path) {
  loading(view);
  const back = '#/reports';
  (async () => {
    try {
      const r = await api(`/api/reports/${enc(path)}`);
      document.title = `${r.period || path} · Reports · sofiia`;
      mount(view,
        h('p', { class: 'muted detail-crumbs' }, h('a', { href: back }, '← Reports'), ' / ', h('span', { class: 'mono' }, r.path || `reports/${path}`)),
        h('div', { class: 'row' }, h('span', { class: 'tag' }, kindLabel(r.kind)), r.period ? h('span', { class: 'muted' }, r.period) : null),
        typeof r.markdown === 'string'
          ? h('article', { class: 'panel', id: 'report-body' }, renderMarkdown(r.markdown))
          : h('div', { class: 'notice' }, 'This report has no markdown form.'),
        r.json !== undefined && r.json !== null
          ? h('details', { class: 'panel', id: 'report-json' }, h('summary', {}, 'The same report as JSON'), h('pre', { class: 'json' }, JSON.stringify(r.json, null, 2)))
          : null);
    } catch (e) {
      mount(view, errorBox(e, `Could not open reports/${path}`), h('p', {}, h('a', { href: back }, '← Reports')));
    }
  })();
}
