// Incident detail: fields, status and severity changes, timeline, notes, follow-ups and
// artifacts. Reloads itself when a live event concerns this incident.

import { api } from '../lib/api.js';
import { errorBox, h, loading, mount, toast } from '../lib/dom.js';
import { bytes, eventType, idEl, sevBadge, statusBadge, timeEl, utc, SEVERITIES, STATUSES } from '../lib/format.js';
import { renderMarkdown } from '../lib/markdown.js';
import { liveReload } from '../lib/live.js';
import { ACTIVE_RUN, currentNode, followRun, listGraphs, nodeStateTracker, startRun } from '../lib/runs.js';
import { sendAttrs, sending } from '../lib/form.js';
import { table } from '../lib/table.js';
import { incidentIdOf } from './common.js';
import { fieldErrors, render as renderCreate } from './create.js';
import { runHref, runStatusBadge } from './ops/parts.js';
import { postmortemBrief } from './ops/renderers/postmortem.js';
import { triageBrief } from './ops/renderers/triage.js';

/** Event types an operator may append by hand (the rest are written by sofiia itself). */
const NOTE_TYPES = ['note', 'deploy', 'mitigation', 'alert', 'escalation', 'triage', 'postmortem', 'correlation'];

/** The buttons each status offers: [target status, label]. */
const MOVES = {
  open: [['acknowledged', 'Acknowledge'], ['mitigated', 'Mitigate'], ['resolved', 'Resolve'], ['closed', 'Close']],
  acknowledged: [['mitigated', 'Mitigate'], ['resolved', 'Resolve'], ['closed', 'Close']],
  mitigated: [['resolved', 'Resolve'], ['closed', 'Close'], ['open', 'Reopen']],
  resolved: [['closed', 'Close'], ['open', 'Reopen']],
  closed: [['open', 'Reopen']],
};

export function render(view, ctx) {
  const id = ctx.parts[1];
  if (id === 'new') return renderCreate(view, ctx);
  const path = `/api/incidents/${encodeURIComponent(id)}`;
  let detail = null;
  let extraEvents = [];
  const viewerState = { name: null };
  const forms = { note: null, followup: null, upload: null };

  const head = h('div');
  const opsBox = h('div', { class: 'ops-box', id: 'incident-runs' });
  const body = h('div');
  mount(view, head, opsBox, body);
  loading(body);

  let busy = 0;
  let loads = 0;
  let disposed = false;
  async function load() {
    const my = ++loads;
    busy++;
    try {
      const d = await api(path);
      // Timelines longer than one page: fetch the rest (up to 10 pages of 500).
      let more = [];
      let truncated = d.events_truncated;
      for (let n = 0; truncated && n < 10; n++) {
        const all = [...d.events, ...more];
        const page = await api(`${path}/events`, { query: { after: all[all.length - 1].seq, limit: 500 } });
        more = more.concat(page.items);
        truncated = Boolean(page.next_cursor);
      }
      // A newer load started meanwhile, or the view was left: drop this one.
      if (my !== loads || disposed) return;
      detail = d;
      extraEvents = more;
      detail.events_truncated = truncated;
      show();
    } catch (e) {
      if (my !== loads || disposed) return;
      mount(head, h('h1', {}, 'Incident ', h('span', { class: 'mono' }, id)));
      mount(body, errorBox(e, 'Could not load this incident', () => { loading(body); load(); }), h('p', {}, h('a', { href: '#/incidents' }, '← All incidents')));
    } finally {
      busy--;
    }
  }

  function show() {
    const inc = detail.incident;
    const events = [...detail.events, ...extraEvents];
    document.title = `${inc.id} · sofiia`;
    mount(head,
      h('p', { class: 'muted detail-crumbs' }, h('a', { href: '#/incidents' }, '← Incidents'), ' / ', idEl(inc.id)),
      h('div', { class: 'detail-head' }, sevBadge(inc.severity), h('h1', { id: 'incident-title' }, inc.title), statusBadge(inc.status)),
      actions(inc));
    const followups = events.filter((e) => e.type === 'followup');
    // Forms are made once and moved into each new render, so a reload caused by another
    // client keeps what the operator typed, the file they chose and any error shown.
    forms.note = forms.note || noteForm();
    forms.followup = forms.followup || followupForm();
    forms.upload = forms.upload || uploadForm();
    mount(body, h('div', { class: 'cols' },
      h('div', { class: 'stack' },
        h('section', { class: 'panel' }, h('h2', {}, 'Summary'),
          inc.summary ? renderMarkdown(inc.summary) : h('p', { class: 'muted' }, 'No summary yet.')),
        h('section', { class: 'panel', id: 'timeline-panel' }, h('h2', {}, `Timeline (${events.length}${detail.events_truncated ? '+' : ''})`),
          timeline(events),
          detail.events_truncated ? h('p', { class: 'muted' }, `Showing the first ${events.length} events; the rest are at `, h('code', {}, `GET ${path}/events?after=${events[events.length - 1].seq}`), '.') : null,
          forms.note)),
      h('div', { class: 'stack' },
        h('section', { class: 'panel' }, h('h2', {}, 'Details'), fields(inc), editForm(inc)),
        h('section', { class: 'panel', id: 'followups-panel' }, h('h2', {}, `Follow-ups (${followups.filter((f) => f.meta.status !== 'done').length} open)`),
          followupTable(followups), forms.followup),
        h('section', { class: 'panel', id: 'artifacts-panel' }, h('h2', {}, `Artifacts (${detail.artifacts.length})`),
          artifactTable(detail.artifacts), forms.upload, viewer),
        h('section', { class: 'panel', id: 'related-panel' }, h('h2', {}, 'Related incidents'), relatedBox))));
    loadRelated();
    // Keep an open artifact open across reloads (artifacts never change once written).
    if (viewerState.name && !detail.artifacts.some((a) => a.name === viewerState.name)) {
      viewerState.name = null;
      mount(viewer);
    }
  }

  const changeKey = `change:${path}`;
  function actions(inc) {
    const note = h('input', { type: 'text', id: 'change-note', placeholder: 'optional note for the change', size: 30, 'aria-label': 'Note for the change' });
    const sev = h('select', { id: 'severity-select', 'aria-label': 'Severity' }, SEVERITIES.map((s) => h('option', { value: s }, s)));
    sev.value = inc.severity;
    // One change at a time: the status and severity buttons wait for the answer together (a
    // double press does not move the status twice, also when a reload draws them again
    // meanwhile) and stay disabled until the incident is shown changed; on an error the note
    // stays.
    const patch = async (body, what) => {
      const done = await sending(buttons, async () => {
        const message = note.value.trim();
        if (message) body.message = message;
        await api(path, { method: 'PATCH', body });
        toast(what, 'ok');
        note.value = '';
        return true;
      }, { key: changeKey, keepDisabled: true });
      if (done) await load();
    };
    const moves = (MOVES[inc.status] || []).map(([to, label]) => h('button', {
      type: 'button', 'data-status': to, class: to === 'open' ? 'danger' : '', ...sendAttrs(changeKey),
      onclick: () => patch({ status: to }, `Status: ${to}`),
    }, label));
    const apply = h('button', { type: 'button', id: 'severity-apply', ...sendAttrs(changeKey), onclick: () => {
      if (sev.value !== inc.severity) patch({ severity: sev.value }, `Severity: ${sev.value}`);
    } }, 'Set severity');
    const buttons = [...moves, apply];
    return h('div', { class: 'actions', role: 'toolbar', 'aria-label': 'Incident actions' },
      moves,
      h('span', { class: 'muted' }, '·'),
      sev,
      apply,
      note,
      h('span', { class: 'spacer' }),
      h('button', { type: 'button', id: 'inc-triage', disabled: running('incident_triage'),
        title: 'Run incident_triage: metrics, logs, traces, runbooks and SLO for this service around the impact window',
        onclick: () => startOps('incident_triage', triageInput(inc)) }, 'Triage'),
      h('button', { type: 'button', id: 'inc-postmortem', disabled: running('postmortem_draft'),
        title: 'Run postmortem_draft: attaches postmortem.md / .json and adds follow-ups to the timeline',
        onclick: () => startOps('postmortem_draft', { incident_id: inc.id }) }, 'Draft postmortem'));
  }

  // ---- graph runs started from this page (triage, postmortem), followed live inline ----
  const LABELS = { incident_triage: 'Triage', postmortem_draft: 'Postmortem draft' };
  const opsRuns = new Map();
  const running = (graph) => {
    const r = opsRuns.get(graph);
    return Boolean(r && (r.starting || (r.run && ACTIVE_RUN.includes(r.run.status))));
  };
  const syncButtons = () => {
    for (const [graph, id] of [['incident_triage', 'inc-triage'], ['postmortem_draft', 'inc-postmortem']]) {
      const b = head.querySelector(`#${id}`);
      if (b) b.disabled = running(graph);
    }
  };

  async function startOps(graph, input) {
    const prev = opsRuns.get(graph);
    if (prev && prev.follower) prev.follower.stop();
    const el = h('section', { class: 'panel ops-run', 'data-graph': graph });
    const entry = { el, starting: true, run: null, follower: null };
    opsRuns.set(graph, entry);
    if (prev && prev.el.parentNode) prev.el.replaceWith(el);
    else opsBox.appendChild(el);
    mount(el, h('div', { class: 'row' }, h('h2', {}, LABELS[graph]), h('span', { class: 'muted' }, 'starting…')));
    syncButtons();
    let started;
    try {
      started = await startRun(graph, input);
    } catch (e) {
      // The page was left (or this panel replaced) meanwhile: nothing to show it in.
      if (disposed || opsRuns.get(graph) !== entry) return;
      entry.starting = false;
      syncButtons();
      el.dataset.status = 'failed';
      mount(el, h('div', { class: 'row' }, h('h2', {}, LABELS[graph]), h('span', { class: 'spacer' }), closeBtn(graph, entry)),
        errorBox(e, `${LABELS[graph]} did not start`));
      return;
    }
    // Left while the run was starting: do not follow it from a dead view (its handlers and
    // poll timer would outlive the page).
    if (disposed || opsRuns.get(graph) !== entry) return;
    entry.starting = false;
    entry.tracker = nodeStateTracker();
    const nodesP = listGraphs().then((gs) => (gs.find((g) => g.name === graph) || {}).nodes || []).catch(() => []);
    let nodes = [];
    nodesP.then((n) => { nodes = n; if (entry.last && !disposed) drawRun(graph, entry, entry.last, nodes); });
    let finishedSeen = false;
    entry.follower = followRun(started.run_id, (s) => {
      entry.last = s;
      if (s.run) entry.run = s.run;
      drawRun(graph, entry, s, nodes);
      syncButtons();
      if (s.run && !ACTIVE_RUN.includes(s.run.status) && !finishedSeen) {
        finishedSeen = true;
        // The run wrote to this incident (artifacts, timeline): show it now.
        load();
      }
    });
  }

  function closeBtn(graph, entry) {
    return h('button', { type: 'button', class: 'copy ops-close', title: 'Hide', 'aria-label': 'Hide', onclick: () => {
      if (entry.follower) entry.follower.stop();
      entry.el.remove();
      if (opsRuns.get(graph) === entry) opsRuns.delete(graph);
      syncButtons();
    } }, '✕');
  }

  function drawRun(graph, entry, { run, events, error }, nodes) {
    const el = entry.el;
    if (!run) {
      if (error) mount(el, h('div', { class: 'row' }, h('h2', {}, LABELS[graph]), h('span', { class: 'spacer' }), closeBtn(graph, entry)), errorBox(error, 'Could not follow the run'));
      return;
    }
    el.dataset.status = run.status;
    el.dataset.runId = run.run_id;
    const active = ACTIVE_RUN.includes(run.status);
    const at = currentNode(run, events);
    let content = null;
    // The result is rendered defensively (the brief renderers fall back to JSON); anything
    // else that throws here still leaves the panel showing the run's state.
    try {
      content = runContent(graph, entry, run, events, nodes, active);
    } catch (e) {
      console.warn('run panel content failed', e);
      content = h('pre', { class: 'json' }, JSON.stringify(run.result ?? run.error ?? null, null, 2));
    }
    mount(el,
      h('div', { class: 'row' }, h('h2', {}, LABELS[graph]), runStatusBadge(run.status),
        active ? h('span', { class: 'muted ops-at' }, run.status === 'queued' ? 'waiting for a worker' : `at ${at || '…'}`) : null,
        h('a', { href: runHref(run.run_id), class: 'ops-open' }, active ? 'Follow the run →' : 'Full run →'),
        h('span', { class: 'spacer' }), closeBtn(graph, entry)),
      error ? errorBox(error, 'Lost track of the run for a moment') : null,
      content);
  }

  function runContent(graph, entry, run, events, nodes, active) {
    let content = null;
    if (active) {
      const states = entry.tracker.states(nodes, run, events);
      content = nodes.length ? h('ol', { class: 'chain' }, nodes.map((n) => {
        const st = states.get(n.name) || { state: 'pending' };
        return h('li', { class: `n-${st.state}`, 'data-node': n.name }, h('span', { class: 'mono' }, n.name));
      })) : null;
    } else if (run.status === 'succeeded' && run.result) {
      content = graph === 'incident_triage' ? triageBrief(run.result) : postmortemBrief(run.result);
    } else if (run.error) {
      content = h('div', { class: 'error-box', role: 'alert' }, h('strong', {}, `${LABELS[graph]} ${run.status}: `), run.error);
    }
    return content;
  }

  /** incident_triage's input: this incident's service and env, around its impact window. */
  function triageInput(inc) {
    const M15 = 15 * 60 * 1000;
    const DAY = 24 * 3600 * 1000;
    const now = Date.now();
    const started = Date.parse(inc.started_at || inc.created_at);
    const end = inc.resolved_at || (inc.status === 'closed' ? inc.closed_at : null);
    const to = end ? Date.parse(end) + M15 : now;
    let from = Math.max(started - M15, now - DAY);
    // Resolved more than a day ago: the last day before the end instead (never from > to).
    if (from >= to) from = Math.max(started - M15, to - DAY);
    const iso = (t) => new Date(t).toISOString().replace(/\.\d{3}Z$/, 'Z');
    return {
      service: inc.service,
      env: inc.env,
      symptom: inc.title,
      incident_id: inc.id,
      time_range: { from: iso(from), to: iso(to) },
    };
  }

  function fields(inc) {
    const rows = [
      ['Service', inc.service], ['Env', inc.env], ['Owner', inc.owner || '—'],
      ['Impact started', timeEl(inc.started_at)],
      ...STATUSES.slice(1).map((s) => [`${s[0].toUpperCase()}${s.slice(1)}`, inc[`${s}_at`] ? timeEl(inc[`${s}_at`]) : '—']),
      ['Created', h('span', {}, timeEl(inc.created_at), ' by ', inc.created_by)],
      ['Updated', timeEl(inc.updated_at)],
      ['Labels', inc.labels.length ? inc.labels.map((l) => h('span', { class: 'tag' }, l)) : '—'],
      ['Fingerprints', inc.fingerprints.length ? inc.fingerprints.map((f) => h('span', { class: 'tag mono' }, f)) : '—'],
    ];
    return h('dl', { class: 'kv' }, rows.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
  }

  function editForm(inc) {
    const inputs = {
      title: h('input', { type: 'text', value: inc.title }),
      owner: h('input', { type: 'text', value: inc.owner || '' }),
      service: h('input', { type: 'text', value: inc.service }),
      labels: h('input', { type: 'text', value: inc.labels.join(', ') }),
      summary: h('textarea', { rows: 5 }, inc.summary),
    };
    const box = h('div');
    const showErr = fieldErrors(inputs, box);
    const f = (label, el) => h('label', { class: 'field' }, label, el, h('span', { class: 'field-error' }));
    return h('details', {}, h('summary', {}, 'Edit details'),
      h('form', { class: 'stack', id: 'edit-form', onsubmit: (e) => {
        e.preventDefault();
        sending(e.currentTarget, async () => {
          const body = {};
          if (inputs.title.value.trim() !== inc.title) body.title = inputs.title.value.trim();
          if (inputs.owner.value.trim() !== (inc.owner || '')) body.owner = inputs.owner.value.trim();
          if (inputs.service.value.trim() !== inc.service) body.service = inputs.service.value.trim();
          const labels = inputs.labels.value.split(',').map((x) => x.trim()).filter(Boolean);
          if (labels.join(',') !== inc.labels.join(',')) body.labels = labels;
          if (inputs.summary.value !== inc.summary) body.summary = inputs.summary.value;
          if (!Object.keys(body).length) { toast('Nothing changed'); return; }
          await api(path, { method: 'PATCH', body });
          toast('Saved', 'ok');
          await load();
        }, { show: showErr });
      } },
      f('Title', inputs.title), f('Owner', inputs.owner), f('Service', inputs.service), f('Labels', inputs.labels), f('Summary (markdown)', inputs.summary),
      box, h('button', { type: 'submit', class: 'primary' }, 'Save')));
  }

  // The API gives a timeline oldest first by event time (ts, then seq): shown newest first.
  function timeline(events) {
    if (!events.length) return h('p', { class: 'muted' }, 'No events.');
    return h('ol', { class: 'timeline', id: 'timeline' }, [...events].reverse().map((ev) => h('li', { 'data-type': ev.type, 'data-id': ev.id },
      h('span', {}, timeEl(ev.ts)),
      h('span', {}, eventType(ev.type)),
      h('div', {},
        h('div', { class: 'msg' }, eventText(ev)),
        h('div', { class: 'actor' }, ev.actor,
          // Written by a graph run (triage, postmortem, its follow-ups): link to the run.
          ev.meta && typeof ev.meta.run_id === 'string' && ev.meta.run_id.startsWith('gr_')
            ? [' · ', h('a', { href: runHref(ev.meta.run_id), class: 'mono run-link' }, ev.meta.run_id)] : null)))));
  }

  function eventText(ev) {
    if (ev.type === 'followup') {
      const m = ev.meta || {};
      return `${m.title || ev.message}${m.owner ? ` · ${m.owner}` : ''}${m.due ? ` · due ${utc(m.due)}` : ''}${m.status === 'done' ? ' · done' : ''}`;
    }
    return ev.message;
  }

  function noteForm() {
    const type = h('select', { id: 'note-type', 'aria-label': 'Event type' }, NOTE_TYPES.map((t) => h('option', { value: t }, t)));
    const message = h('textarea', { id: 'note-message', rows: 2, placeholder: 'Add to the timeline…', 'aria-label': 'Message' });
    const box = h('div');
    // Disabled while sending (a second press cannot add it twice); cleared and confirmed on
    // success; on an error the text stays for another try.
    const submit = h('button', { type: 'submit', class: 'primary', id: 'note-submit' }, 'Add');
    return h('form', { class: 'stack', id: 'note-form', onsubmit: (e) => {
      e.preventDefault();
      sending(e.currentTarget, async () => {
        await api(`${path}/events`, { method: 'POST', body: { type: type.value, message: message.value } });
        message.value = '';
        toast('Added to the timeline');
        await load();
      }, { box, what: 'Not added' });
    } }, h('h3', {}, 'Add to the timeline'), message, h('div', { class: 'row' }, type, submit), box);
  }

  function followupTable(items) {
    if (!items.length) return h('p', { class: 'muted' }, 'No follow-ups.');
    const now = Date.now();
    return table(['Follow-up', 'Owner', 'Due', 'Pri', ''], items.map((ev) => {
        const m = ev.meta || {};
        const open = m.status !== 'done';
        const overdue = open && m.due && Date.parse(m.due) < now;
        return h('tr', { 'data-id': ev.id, class: overdue ? 'is-overdue' : '' },
          h('td', { class: 'title-cell' }, open ? m.title : h('del', {}, m.title)),
          h('td', {}, m.owner || '—'),
          h('td', { class: overdue ? 'overdue' : '' }, m.due ? timeEl(m.due) : '—', overdue ? ' overdue' : ''),
          h('td', {}, m.priority ? sevBadge(m.priority) : ''),
          h('td', {}, open
            ? h('button', { type: 'button', class: 'close-followup', ...sendAttrs(`close:${ev.id}`), onclick: async (e) => {
              // Closed once; the button stays disabled until the list shows it done.
              const done = await sending(e.currentTarget, async () => {
                await api(`${path}/followups/${encodeURIComponent(ev.id)}/close`, { method: 'POST', body: {} });
                toast('Follow-up closed', 'ok');
                return true;
              }, { key: `close:${ev.id}`, keepDisabled: true });
              if (done) await load();
            } }, 'Done')
            : h('span', { class: 'muted' }, 'done')));
      }), { class: 'grid compact', id: 'followups' }, { wrap: false });
  }

  function followupForm() {
    const inputs = {
      'meta.title': h('input', { type: 'text', id: 'fu-title', placeholder: 'What must happen', 'aria-label': 'Follow-up title' }),
      'meta.owner': h('input', { type: 'text', id: 'fu-owner', placeholder: 'owner', size: 10, 'aria-label': 'Owner' }),
      'meta.due': h('input', { type: 'date', id: 'fu-due', 'aria-label': 'Due date' }),
      'meta.priority': h('select', { id: 'fu-priority', 'aria-label': 'Priority' }, SEVERITIES.map((s) => h('option', { value: s }, s))),
    };
    inputs['meta.priority'].value = 'P2';
    const box = h('div');
    const showErr = fieldErrors(inputs, box);
    const f = (label, el) => h('label', { class: 'field' }, label, el, h('span', { class: 'field-error' }));
    // Like the note form: one follow-up per press, cleared and confirmed, kept on an error.
    const submit = h('button', { type: 'submit', id: 'fu-submit' }, 'Add follow-up');
    return h('form', { class: 'stack', id: 'followup-form', onsubmit: (e) => {
      e.preventDefault();
      sending(e.currentTarget, async () => {
        const meta = { title: inputs['meta.title'].value.trim(), priority: inputs['meta.priority'].value };
        if (inputs['meta.owner'].value.trim()) meta.owner = inputs['meta.owner'].value.trim();
        if (inputs['meta.due'].value) meta.due = inputs['meta.due'].value;
        await api(`${path}/events`, { method: 'POST', body: { type: 'followup', message: meta.title, meta } });
        inputs['meta.title'].value = '';
        inputs['meta.owner'].value = '';
        inputs['meta.due'].value = '';
        inputs['meta.priority'].value = 'P2';
        toast(`Follow-up added: ${meta.title}`);
        await load();
      }, { show: showErr });
    } }, h('h3', {}, 'Add a follow-up'),
    h('div', { class: 'form-grid narrow' }, h('div', { class: 'wide' }, f('Title', inputs['meta.title'])), f('Owner', inputs['meta.owner']), f('Due', inputs['meta.due']), f('Priority', inputs['meta.priority'])),
    box, submit);
  }

  const viewer = h('div', { id: 'artifact-viewer' });
  const relatedBox = h('div', { id: 'related' });
  let relatedRetry = null;

  async function loadRelated() {
    clearTimeout(relatedRetry);
    try {
      const r = await api(`${path}/related`);
      if (disposed) return;
      // Recorded once per press (the list is drawn again by the reload that follows).
      const noteKey = `correlate:${id}`;
      const note = h('button', { type: 'button', id: 'related-note', ...sendAttrs(noteKey), onclick: async (e) => {
        const done = await sending(e.currentTarget, async () => {
          await api('/v1/tools/incident_intelligence_tool', { method: 'POST', body: { action: 'correlate', incident_id: id, append_note: true } });
          toast('Correlation recorded on the timeline', 'ok');
          return true;
        }, { key: noteKey, keepDisabled: true });
        if (done) await load();
      } }, 'Record on the timeline');
      if (!r.related.length) {
        mount(relatedBox, h('p', { class: 'muted' }, 'No related incidents (same service, close in time, similar words or shared alert fingerprints).'), note);
        return;
      }
      mount(relatedBox, table(null, r.related.map((x) => h('tr', { 'data-id': x.incident_id },
          h('td', {}, sevBadge(x.severity)),
          h('td', { class: 'title-cell' }, h('a', { href: `#/incidents/${encodeURIComponent(x.incident_id)}` }, x.title),
            h('div', {}, x.reasons.map((why) => h('span', { class: 'tag', title: `${why.kind}: ${why.value} × weight ${why.weight}` }, `${why.kind.replace(/_/g, ' ')}: ${why.detail}`)))),
          h('td', { class: 'num', title: 'weighted score' }, `${Math.round(x.score * 100)}%`))), { class: 'grid compact', id: 'related-table' }, { wrap: false }),
      note);
    } catch (e) {
      if (disposed) return;
      if (e.status === 503) {
        mount(relatedBox, h('p', { class: 'muted' }, 'The incident index is being built…'));
        relatedRetry = setTimeout(loadRelated, 1500);
        return;
      }
      mount(relatedBox, errorBox(e, 'Could not find related incidents'));
    }
  }

  function artifactTable(items) {
    if (!items.length) return h('p', { class: 'muted' }, 'No artifacts.');
    // Names like triage_<run id>.json are long: sha256 and time go under the name.
    return table(['Name', 'Size', ''], items.map((a) => h('tr', { 'data-name': a.name },
      h('td', {}, h('div', { class: 'mono' }, a.name),
        h('div', { class: 'muted small' }, h('span', { class: 'mono', title: a.sha256 }, `sha256 ${a.sha256.slice(0, 10)}`), ' · ', timeEl(a.created_at))),
      h('td', { class: 'num' }, bytes(a.size_bytes)),
      h('td', {},
        h('button', { type: 'button', class: 'view-artifact', onclick: () => openArtifact(a.name) }, 'View'), ' ',
        h('button', { type: 'button', class: 'download-artifact', onclick: () => download(a.name) }, 'Download')))),
    { class: 'grid compact', id: 'artifacts' }, { wrap: false });
  }

  async function fetchArtifact(name) {
    return api(`${path}/artifacts/${encodeURIComponent(name)}`, { text: true });
  }

  let viewToken = 0;
  async function openArtifact(name) {
    viewerState.name = name;
    const my = ++viewToken;
    mount(viewer, h('div', { class: 'viewer' }, 'Loading…'));
    try {
      const text = await fetchArtifact(name);
      if (my !== viewToken || disposed) return;
      let content;
      if (name.endsWith('.md')) content = renderMarkdown(text);
      else if (name.endsWith('.json')) {
        let pretty = text;
        try { pretty = JSON.stringify(JSON.parse(text), null, 2); } catch { /* shown as is */ }
        content = h('pre', { class: 'json' }, pretty);
      } else content = h('pre', {}, text);
      mount(viewer, h('div', { class: 'row' }, h('strong', { class: 'mono' }, name), h('span', { class: 'spacer' }),
        h('button', { type: 'button', onclick: () => { viewerState.name = null; mount(viewer); } }, 'Close')),
      h('div', { class: 'viewer', id: 'artifact-content' }, content));
    } catch (e) {
      if (my !== viewToken) return;
      mount(viewer, errorBox(e, `Could not open ${name}`));
    }
  }

  async function download(name) {
    try {
      const text = await fetchArtifact(name);
      const url = URL.createObjectURL(new Blob([text], { type: 'application/octet-stream' }));
      const a = h('a', { href: url, download: name });
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 2000);
    } catch (e) {
      toast(e.describe ? e.describe() : String(e), 'error');
    }
  }

  function uploadForm() {
    const file = h('input', { type: 'file', id: 'artifact-file', accept: '.json,.md,.txt', 'aria-label': 'Artifact file' });
    const box = h('div');
    // One artifact per press (a second would be stored as name-2); the file input is cleared
    // once it is attached and keeps the file when it is refused.
    return h('form', { class: 'stack', id: 'upload-form', onsubmit: (e) => {
      e.preventDefault();
      sending(e.currentTarget, async () => {
        const f = file.files[0];
        if (!f) throw new Error('choose a .json, .md or .txt file first');
        if (f.size > 2 * 1024 * 1024) throw new Error(`${f.name} is ${bytes(f.size)}; artifacts are at most 2 MB`);
        const content = await f.text();
        // Up to 2 MB going up: more time than a plain request.
        const a = await api(`${path}/artifacts`, { method: 'POST', body: { name: f.name, content }, timeoutMs: 120000 });
        toast(`Attached ${a.name}`, 'ok');
        file.value = '';
        await load();
      }, { box, what: 'Not uploaded' });
    } }, h('h3', {}, 'Attach a file (json, md, txt; ≤ 2 MB)'), h('div', { class: 'row' }, file, h('button', { type: 'submit', id: 'upload-submit' }, 'Upload')), box);
  }

  load();
  // Another client changed this incident: reload, unless the operator is typing here (then
  // say so instead of wiping their draft).
  // Events this page caused itself are already shown (it reloads after each action); only
  // news triggers a reload, so forms keep their messages.
  const isNews = (ev) => {
    if (!detail) return true;
    const d = ev.data || {};
    if (d.incident) return Date.parse(d.incident.updated_at) > Date.parse(detail.incident.updated_at);
    if (d.event) {
      const known = [...detail.events, ...extraEvents].find((e) => e.id === d.event.id);
      return !known || JSON.stringify(known.meta) !== JSON.stringify(d.event.meta);
    }
    if (d.artifact) return !detail.artifacts.some((a) => a.id === d.artifact.id);
    return true;
  };
  // Judged when the debounce fires, not on arrival: by then this page's own reload is
  // usually done; if one is still running, judge again after it.
  const pending = [];
  let timer = null;
  function recheck() {
    if (busy) { timer = setTimeout(recheck, 150); return; }
    // Only the latest envelope per thing counts (an older one may describe a state since
    // replaced, e.g. a follow-up before it was closed).
    const latest = new Map();
    for (const ev of pending.splice(0)) {
      const d = ev.data || {};
      const key = d.event ? `e:${d.event.id}` : d.artifact ? `a:${d.artifact.id}` : 'incident';
      latest.set(key, ev);
    }
    const news = [...latest.values()].filter(isNews);
    if (!news.length) return;
    console.debug('live-reload', news.map((e) => e.type).join(','));
    const a = document.activeElement;
    const drafting = a && view.contains(a) && ['INPUT', 'TEXTAREA'].includes(a.tagName) && a.value;
    if (!drafting) { load(); return; }
    mount(head.querySelector('.live-note') || head.appendChild(h('div', { class: 'live-note' })),
      h('div', { class: 'notice' }, 'This incident changed elsewhere. ', h('button', { type: 'button', onclick: load }, 'Reload')));
  }
  const off = liveReload((ev) => incidentIdOf(ev) === id && pending.push(ev) > 0, recheck, 300);
  return () => {
    disposed = true;
    off();
    clearTimeout(timer);
    clearTimeout(relatedRetry);
    for (const r of opsRuns.values()) if (r.follower) r.follower.stop();
  };
}
