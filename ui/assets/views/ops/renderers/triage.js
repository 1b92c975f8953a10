// incident_triage's report: summary, suspected root causes, impact, what to do now and next,
// and the evidence (sources, SLO, deploys, logs, traces, runbook snippets); and its brief for
// the incident page.

import { h } from '../../../lib/dom.js';
import { idEl, ms, sevBadge, timeEl, utc } from '../../../lib/format.js';
import { table } from '../../../lib/table.js';
import { jsonFallback, list, numbers } from './parts.js';

const enc = (path) => String(path).split('/').map(encodeURIComponent).join('/');

/** A source's state: ok, not configured, or unavailable with its reason. */
export function sourceState(v) {
  const s = String(v ?? 'unknown');
  if (s === 'ok') return h('span', { class: 'badge src src-ok' }, 'ok');
  if (s === 'not_configured') return h('span', { class: 'badge src src-off', title: 'No such source in config/observability_sources.yml for this env' }, 'not configured');
  if (s.startsWith('skipped')) {
    const reason = s.replace(/^skipped:?\s*/, '');
    return h('span', {}, h('span', { class: 'badge src src-off' }, 'skipped'), reason ? h('span', { class: 'muted small' }, ` ${reason}`) : null);
  }
  if (s.startsWith('unavailable')) {
    const reason = s.replace(/^unavailable:?\s*/, '');
    return h('span', {}, h('span', { class: 'badge src src-bad' }, 'unavailable'), reason ? h('span', { class: 'src-reason' }, ` ${reason}`) : null);
  }
  return h('span', { class: 'badge src' }, s);
}

function causesTable(causes, limit) {
  const items = (Array.isArray(causes) ? causes : []).filter((c) => c && typeof c === 'object').sort((a, b) => (a.rank ?? 99) - (b.rank ?? 99)).slice(0, limit || undefined);
  if (!items.length) return h('p', { class: 'muted' }, 'No suspected root cause: the sources gave nothing to rank.');
  return table([{ label: '#', num: true }, 'Suspected cause', 'Kind', { label: 'Score', num: true }], items.map((c) => h('tr', { 'data-rank': c.rank },
      h('td', { class: 'num' }, c.rank ?? ''),
      h('td', { class: 'title-cell' }, h('div', { class: 'cause' }, c.cause),
        Array.isArray(c.evidence) && c.evidence.length ? h('ul', { class: 'evidence' }, c.evidence.map((x) => h('li', {}, String(x)))) : null),
      h('td', {}, c.kind ? h('span', { class: 'tag' }, c.kind) : ''),
      h('td', { class: 'num' }, typeof c.score === 'number' ? c.score.toFixed(2) : c.score ?? ''))), { class: 'grid compact causes' }, { wrap: false });
}

/** The triage's headline: summary and the top causes (the incident page shows this much). */
export function triageBrief(r, limit = 3) {
  try {
    return h('div', { class: 'stack triage-brief' },
      h('p', { class: 'triage-summary' }, (r && r.summary) || h('span', { class: 'muted' }, 'No summary.')),
      causesTable(r.suspected_root_causes, limit));
  } catch (e) {
    return jsonFallback(r, 'triage brief', e);
  }
}

/** The full report (the run page). */
export function triageResult(r) {
  const refs = r.references || {};
  const metrics = refs.metrics || {};
  const w = r.window || {};
  const snippets = Array.isArray(refs.runbook_snippets) ? refs.runbook_snippets : [];
  const logs = Array.isArray(refs.log_samples) ? refs.log_samples : [];
  const traces = refs.traces && Array.isArray(refs.traces.traces) ? refs.traces.traces : [];
  const sources = r.sources || {};
  const arr = (x) => (Array.isArray(x) ? x : []);
  const deploys = arr(refs.deploys);
  const clusters = arr(refs.log_clusters);
  const related = arr(refs.related_incidents);
  return h('div', { class: 'stack triage-result' },
    h('section', { class: 'panel' }, h('h2', {}, 'Summary'),
      h('p', { class: 'triage-summary' }, r.summary || h('span', { class: 'muted' }, 'No summary.')),
      h('dl', { class: 'kv' },
        h('dt', {}, 'Service'), h('dd', { class: 'mono' }, r.service || '—'),
        h('dt', {}, 'Env'), h('dd', {}, r.env || '—'),
        h('dt', {}, 'Symptom'), h('dd', {}, r.symptom || '—'),
        h('dt', {}, 'Window'), h('dd', {}, w.from ? h('span', { title: `${utc(w.from)} → ${utc(w.to)}` }, `${utc(w.from)} → ${utc(w.to)}`) : '—',
          w.clamped ? h('span', { class: 'muted' }, ' (clamped to what the sources allow)') : null),
        r.incident_id ? [h('dt', {}, 'Incident'), h('dd', {}, idEl(r.incident_id, `#/incidents/${encodeURIComponent(r.incident_id)}`))] : null)),
    h('div', { class: 'cols' },
      h('div', { class: 'stack' },
        h('section', { class: 'panel', id: 'triage-causes' }, h('h2', {}, 'Suspected root causes'), causesTable(r.suspected_root_causes)),
        h('section', { class: 'panel' }, h('h2', {}, 'Impact'),
          typeof r.impact_assessment === 'string' || r.impact_assessment == null
            ? h('p', {}, r.impact_assessment || h('span', { class: 'muted' }, 'Not assessed.'))
            : numbers(r.impact_assessment)),
        h('div', { class: 'two' },
          h('section', { class: 'panel', id: 'triage-mitigations' }, h('h2', {}, 'Mitigate now'), list(r.mitigations_now)),
          h('section', { class: 'panel', id: 'triage-next' }, h('h2', {}, 'Check next'), list(r.next_checks))),
        h('section', { class: 'panel', id: 'triage-logs' }, h('h2', {}, `Log samples (${logs.length})`),
          logs.length ? h('pre', { class: 'log-samples' }, logs.join('\n')) : h('p', { class: 'muted' }, 'No log lines.')),
        h('section', { class: 'panel', id: 'triage-runbooks' }, h('h2', {}, `Runbook snippets (${snippets.length})`),
          snippets.length
            ? h('ol', { class: 'hits' }, snippets.map((s) => h('li', { class: 'hit', 'data-path': s.path },
              h('a', { class: 'hit-title', href: `#/runbooks/${enc(s.path)}${s.anchor ? `?s=${encodeURIComponent(s.anchor)}` : ''}` }, s.heading || s.path),
              h('div', { class: 'muted mono small' }, s.path),
              h('div', { class: 'snippet' }, s.text || ''))))
            : h('p', { class: 'muted' }, 'No runbook matched.'))),
      h('div', { class: 'stack' },
        h('section', { class: 'panel', id: 'triage-sources' }, h('h2', {}, 'Sources'),
          table(null, ['metrics', 'logs', 'traces', 'runbooks', ...Object.keys(sources).filter((k) => !['metrics', 'logs', 'traces', 'runbooks'].includes(k))]
            .filter((k) => k in sources)
            .map((k) => h('tr', { 'data-source': k }, h('td', {}, k), h('td', {}, sourceState(sources[k])))), { class: 'grid compact' }, { wrap: false })),
        h('section', { class: 'panel', id: 'triage-slo' }, h('h2', {}, 'SLO and alerts'),
          h('dl', { class: 'kv' }, h('dt', {}, 'Firing alerts'), h('dd', {}, metrics.alerts_count ?? '—')),
          metrics.slo && typeof metrics.slo === 'object' ? numbers(metrics.slo) : h('p', { class: 'muted' }, 'No SLO numbers for this service and env.')),
        h('section', { class: 'panel', id: 'triage-deploys' }, h('h2', {}, `Deploys (${deploys.length})`),
          deploys.length
            ? h('ul', { class: 'plain-list' }, deploys.map((d) => h('li', {}, timeEl(d.ts), ' ', d.version ? h('span', { class: 'tag mono' }, d.version) : null, d.message || '',
              d.incident_id ? [' ', idEl(d.incident_id, `#/incidents/${encodeURIComponent(d.incident_id)}`)] : null)))
            : h('p', { class: 'muted' }, 'No deploy recorded on a timeline of this service in or just before the window.')),
        clusters.length ? h('section', { class: 'panel', id: 'triage-clusters' }, h('h2', {}, 'Error log clusters'),
          table(null, clusters.map((c) => h('tr', {},
            h('td', { class: 'num' }, c.count ?? ''),
            h('td', { class: 'title-cell mono small', title: c.sample || '' }, c.template || c.sample || ''))), { class: 'grid compact' }, { wrap: false })) : null,
        related.length ? h('section', { class: 'panel', id: 'triage-related' }, h('h2', {}, 'Other active incidents'),
          h('ul', { class: 'plain-list' }, related.map((i) => h('li', {}, i.severity ? sevBadge(i.severity) : null, ' ',
            h('a', { href: `#/incidents/${encodeURIComponent(i.id)}` }, i.title || i.id), i.status ? h('span', { class: 'muted' }, ` · ${i.status}`) : null)))) : null,
        metrics.cost && metrics.cost.estimated ? h('section', { class: 'panel', id: 'triage-cost' }, h('h2', {}, 'Estimated cost'),
          h('dl', { class: 'kv' },
            h('dt', {}, 'Total'), h('dd', {}, `${metrics.cost.total} ${metrics.cost.currency || ''}`),
            metrics.cost.failed_requests != null ? [h('dt', {}, 'Failed requests'), h('dd', {}, String(metrics.cost.failed_requests))] : null,
            metrics.cost.unavailable_minutes != null ? [h('dt', {}, 'Unavailable'), h('dd', {}, `${metrics.cost.unavailable_minutes} min`)] : null)) : null,
        h('section', { class: 'panel', id: 'triage-traces' }, h('h2', {}, `Traces (${traces.length})`),
          traces.length
            ? h('ul', { class: 'plain-list' }, traces.slice(0, 20).map((t) => h('li', { class: 'mono' },
              typeof t === 'string' ? t : [t.trace_id || t.traceID || t.id || '',
                t.found === false ? h('span', { class: 'muted' }, ' · not found') : null,
                typeof t.duration_ms === 'number' ? ` · ${ms(t.duration_ms)}` : '',
                t.error_spans ? h('span', { class: 'bad-text' }, ` · ${t.error_spans} error spans`) : null,
                Array.isArray(t.error_services) && t.error_services.length ? ` · ${t.error_services.join(', ')}` : ''])))
            : h('p', { class: 'muted' }, 'No traces.')))));
}
