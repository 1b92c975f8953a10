// postmortem_draft's result: the draft rendered, what was attached to the incident and the
// follow-ups added; and its brief for the incident page.

import { h } from '../../../lib/dom.js';
import { bytes, idEl, sevBadge, timeEl } from '../../../lib/format.js';
import { renderMarkdown } from '../../../lib/markdown.js';
import { table } from '../../../lib/table.js';
import { runHref } from '../parts.js';
import { jsonFallback } from './parts.js';

/** Follow-ups as the postmortem proposed them. */
function followupsTable(items) {
  if (!Array.isArray(items) || !items.length) return h('p', { class: 'muted' }, 'No follow-ups.');
  return table(['Follow-up', 'Owner', 'Due', 'Pri'], items.map((f) => h('tr', {},
      h('td', { class: 'title-cell' }, f.title),
      h('td', {}, f.owner || '—'),
      h('td', {}, f.due ? timeEl(f.due) : '—'),
      h('td', {}, f.priority ? sevBadge(f.priority) : ''))), { class: 'grid compact pm-followups' }, { wrap: false });
}

function artifactsTable(items, incidentId) {
  if (!Array.isArray(items) || !items.length) return h('p', { class: 'muted' }, 'No artifacts.');
  return table(['Name', 'Size', 'sha256'], items.map((a) => h('tr', { 'data-name': a.name },
      h('td', { class: 'mono' }, incidentId ? h('a', { href: `#/incidents/${encodeURIComponent(incidentId)}` }, a.name) : a.name),
      h('td', { class: 'num' }, typeof a.size === 'number' ? bytes(a.size) : '—'),
      h('td', { class: 'mono', title: a.sha256 || '' }, String(a.sha256 || '').slice(0, 10)))), { class: 'grid compact pm-artifacts' }, { wrap: false });
}

/** The full result (the run page). */
export function postmortemResult(r) {
  return h('div', { class: 'cols postmortem-result' },
    h('section', { class: 'panel', id: 'pm-markdown' }, h('h2', {}, 'Draft'), renderMarkdown(r.markdown || '')),
    h('div', { class: 'stack' },
      h('section', { class: 'panel' }, h('h2', {}, 'Postmortem'),
        h('dl', { class: 'kv' },
          h('dt', {}, 'Incident'), h('dd', {}, r.incident_id ? idEl(r.incident_id, `#/incidents/${encodeURIComponent(r.incident_id)}`) : '—'),
          h('dt', {}, 'Triage'), h('dd', {}, r.triage_run_id ? idEl(r.triage_run_id, runHref(r.triage_run_id)) : '—',
            r.triage ? h('span', { class: 'muted' }, r.triage === 'sub_run' ? ' (run for this draft)' : ' (an earlier triage)') : null)),
          r.triage_error ? h('div', { class: 'notice' }, `Drafted without a triage: ${r.triage_error}`) : null),
      h('section', { class: 'panel', id: 'pm-artifacts' }, h('h2', {}, 'Attached to the incident'), artifactsTable(r.artifacts, r.incident_id)),
      h('section', { class: 'panel', id: 'pm-followups' }, h('h2', {}, 'Follow-ups added'), followupsTable(r.followups))));
}

/** The postmortem's headline for the incident page. */
export function postmortemBrief(r) {
  try {
    const artifacts = Array.isArray(r.artifacts) ? r.artifacts : [];
    const followups = Array.isArray(r.followups) ? r.followups : [];
    return h('div', { class: 'stack pm-brief' },
      h('p', {}, `Attached ${artifacts.map((a) => a && a.name).filter(Boolean).join(', ') || 'nothing'}; ${followups.length} follow-ups added to the timeline.`),
      h('details', { open: true }, h('summary', {}, 'Draft'), h('div', { class: 'viewer' }, renderMarkdown(typeof r.markdown === 'string' ? r.markdown : ''))));
  } catch (e) {
    return jsonFallback(r, 'postmortem brief', e);
  }
}
