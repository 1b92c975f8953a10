// Jobs: every task of the scheduler's registry (config/task_registry.yml) with its schedule in
// words, the next fire in local time (UTC on hover), the last run and its catch-up marks, and
// Run now / Dry run per task; a task's page (`#/jobs/<id>`) has the next five fires, a form
// built from its input specs for a manual run, what a dry run would write, and the run
// history paged by `before`. Rows refresh on `ops.job` live events; a started run is also
// polled until it finishes, so the result shows without the stream.
//
// URLs: `#/jobs`, `#/jobs/<task id>`.

import { api } from '../lib/api.js';
import { errorBox, h, loading, mount } from '../lib/dom.js';
import { fieldMarks, sendAttrs, sending } from '../lib/form.js';
import { idEl, ms, shorten, timeEl, utc } from '../lib/format.js';
import { liveReload } from '../lib/live.js';
import { emptyTable, linkRow, table } from '../lib/table.js';

/** Statuses a run is still going in: it is polled until it leaves them. */
const ACTIVE = ['running', 'queued'];
const POLL_MS = 400;
const HISTORY_PAGE = 20;

const enc = encodeURIComponent;

/** A time in the browser's local zone, the UTC time on hover. */
export function localTime(ts, cls = 'local') {
  if (!ts) return h('span', { class: 'muted' }, '—');
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return h('span', {}, String(ts));
  const text = d.toLocaleString(undefined, { weekday: 'short', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
  return h('time', { datetime: ts, title: utc(ts), class: cls }, text);
}

/** A job status (a task's or a run's) as a badge. */
export function jobBadge(status) {
  const s = String(status || 'unknown');
  return h('span', { class: `badge st js-${/^[a-z_]+$/.test(s) ? s : 'unknown'}`, 'data-status': s }, s.replace(/_/g, ' '));
}

/** What happened to fires missed while sofiia was stopped or asleep, in words (or null). */
export function missedText(m) {
  if (!m || typeof m !== 'object' || !Number(m.count)) return null;
  const n = `${Number(m.count).toLocaleString('en-US')}${m.capped ? '+' : ''}`;
  const fires = `missed fire${Number(m.count) === 1 ? '' : 's'}`;
  const why = m.reason ? ` (${m.reason})` : '';
  const handled = String(m.handled || '');
  if (/^skipped/.test(handled)) return `skipped ${n} ${fires}${why}`;
  return `caught up ${n} ${fires}${why}${handled ? `: ${handled}` : ''}`;
}

function missedEl(m) {
  const text = missedText(m);
  if (!text) return null;
  const span = m.first && m.last ? `from ${utc(m.first)} to ${utc(m.last)}` : undefined;
  return h('div', { class: 'catch-up', title: span }, '↻ ', text);
}

/** A run's one-line account: status, trigger, summary or error. */
function runLine(run) {
  if (!run) return h('span', { class: 'muted' }, 'never run');
  return h('div', { class: 'run-line' },
    h('div', {}, run.dry_run ? h('span', { class: 'badge src' }, 'dry run') : null, ' ',
      h('span', { class: 'muted' }, run.trigger ? run.trigger.replace('_', ' ') : ''), ' ',
      timeEl(run.finished_at || run.started_at || run.created_at),
      run.duration_ms != null ? h('span', { class: 'muted' }, ` · ${ms(run.duration_ms)}`) : null),
    run.error ? h('div', { class: 'err-cell' }, shorten(run.error, 240)) : null,
    run.summary ? h('div', { class: 'summary' }, shorten(run.summary, 240)) : null,
    missedEl(run.missed));
}

/** What a dry run would have written: each file, its size and hash, its preview. */
function wouldWrite(run) {
  const files = Array.isArray(run.would_write) ? run.would_write : [];
  if (!files.length) return h('p', { class: 'muted' }, 'This dry run would write no files.');
  return h('ul', { class: 'would-write' }, files.map((f) => h('li', { 'data-path': f.path },
    h('div', {}, 'would write ', h('span', { class: 'mono path' }, f.path),
      h('span', { class: 'muted' }, ` · ${Number(f.bytes).toLocaleString('en-US')} bytes`),
      f.sha256 ? h('span', { class: 'muted mono', title: `sha256 ${f.sha256}` }, ` · sha256 ${String(f.sha256).slice(0, 12)}…`) : null),
    h('pre', { class: 'preview' }, String(f.preview ?? '')))));
}

/** A finished (or still running) run in full, as shown after Run now / Dry run. */
function runResult(run) {
  const done = !ACTIVE.includes(run.status);
  return h('div', { class: 'job-result', 'data-run': run.id, 'data-status': run.status },
    h('div', { class: 'row' }, jobBadge(run.status), idEl(run.id), run.dry_run ? h('span', { class: 'badge src' }, 'dry run') : null,
      done ? null : h('span', { class: 'muted' }, 'waiting for it to finish…'),
      run.duration_ms != null ? h('span', { class: 'muted' }, ms(run.duration_ms)) : null),
    run.error ? h('div', { class: 'err-cell', role: 'alert' }, run.error) : null,
    run.summary ? h('div', { class: 'summary' }, run.summary) : null,
    missedEl(run.missed),
    run.dry_run && done ? wouldWrite(run) : null,
    !run.dry_run && Array.isArray(run.artifacts) && run.artifacts.length
      ? h('div', { class: 'muted small' }, 'wrote ', run.artifacts.map((p, i) => [i ? ', ' : '', h('span', { class: 'mono' }, p)]))
      : null);
}

/** Why Run now / Dry run did not give a result: refused, or started and then lost. */
function runError(e, dry) {
  const text = e.describe ? e.describe() : String(e.message || e);
  const head = e.following ? `Started ${e.following}, but could not follow it: ` : dry ? 'Dry run refused: ' : 'Run refused: ';
  return h('div', { class: 'error-box job-error', role: 'alert' }, h('strong', {}, head), text);
}

/**
 * Start a run of `taskId` and follow it: `show(run)` after the start and after every poll
 * until it is no longer running or queued. Resolves to the last run; rejects with the API's
 * error (a 403, 409 or 422 comes back from the start itself). `alive()` false stops polling.
 */
async function startAndFollow(taskId, body, show, alive) {
  const started = await api(`/api/jobs/${enc(taskId)}/run`, { method: 'POST', body });
  let run = started.run || { id: started.job_run_id, status: started.status, dry_run: body.dry_run };
  show(run);
  while (ACTIVE.includes(run.status) && alive()) {
    await new Promise((r) => setTimeout(r, POLL_MS));
    if (!alive()) break;
    try {
      run = await api(`/api/job-runs/${enc(started.job_run_id || run.id)}`);
    } catch (e) {
      // Started, but no longer followed: said as such (not as a refusal).
      e.following = run.id;
      throw e;
    }
    show(run);
  }
  return run;
}

export function render(view, ctx) {
  if (ctx.parts[1]) return renderTask(view, ctx, ctx.parts[1]);
  return renderList(view, ctx);
}

// ---- the list -----------------------------------------------------------------------------

function renderList(view, ctx) {
  let alive = true;
  const meta = h('div', { class: 'list-meta muted', id: 'jobs-meta' });
  const body = h('div', { id: 'jobs-body', 'aria-live': 'polite' });
  /** Per task, the output row under it (kept across reloads: a result stays on screen). */
  const outs = new Map();
  mount(view, h('div', { class: 'row' }, h('h1', {}, 'Jobs')), meta, body);
  loading(body);

  const outFor = (id) => {
    if (!outs.has(id)) outs.set(id, h('div', { class: 'job-out', id: `out-${id}`, 'aria-live': 'polite' }));
    return outs.get(id);
  };

  let seq = 0;
  async function load() {
    const my = ++seq;
    try {
      const data = await api('/api/jobs');
      // A newer load (a live event during this one) draws the table.
      if (!alive || my !== seq) return;
      const tasks = Array.isArray(data.tasks) ? data.tasks : [];
      mount(meta, `${tasks.length} task${tasks.length === 1 ? '' : 's'}`, data.registry ? [' · ', h('span', { class: 'mono' }, data.registry)] : null,
        ' · times in your local zone, UTC on hover');
      if (!tasks.length) { mount(body, emptyTable('The task registry has no tasks.')); return; }
      mount(body, table(['Task', 'Schedule', 'Next fire', 'Last run', 'Status', ''], tasks.flatMap(row), { id: 'job-table' }));
    } catch (e) {
      if (!alive || my !== seq) return;
      mount(body, errorBox(e, 'Could not load jobs', load));
    }
  }

  function row(t) {
    const href = `#/jobs/${enc(t.id)}`;
    const out = outFor(t.id);
    const press = (dry) => (ev) => {
      const buttons = [...ev.currentTarget.parentElement.querySelectorAll('button')];
      sending(buttons, () => startAndFollow(t.id, { dry_run: dry, inputs: {} }, (run) => mount(out, runResult(run)), () => alive)
        .then((run) => { if (alive) load(); return run; }), {
        key: `job:${t.id}`,
        show: (e) => { if (e) mount(out, runError(e, dry)); },
      });
    };
    const next = Array.isArray(t.next_fires) ? t.next_fires[0] : null;
    const tr = linkRow(href, ctx.navigate, { 'data-task': t.id, 'data-status': t.status },
      h('td', { class: 'title-cell' }, h('a', { href, class: 'mono task-id' }, t.id),
        t.enabled === false ? [' ', h('span', { class: 'badge src-off src' }, 'disabled')] : null,
        t.description ? h('div', { class: 'muted small' }, t.description) : null),
      h('td', { class: 'sched' }, t.schedule
        ? [h('div', { class: 'words' }, t.schedule.words || ''), h('div', { class: 'muted small' }, h('code', {}, t.schedule.cron), ' ', t.schedule.tz || 'UTC')]
        : h('span', { class: 'muted' }, 'manual only')),
      h('td', { class: 'next' }, next ? [localTime(next, 'next-fire'), h('div', { class: 'muted small' }, timeEl(next))] : h('span', { class: 'muted' }, t.enabled === false ? 'disabled' : '—')),
      h('td', { class: 'last' }, runLine(t.last_run), t.last_run && t.last_run.missed ? null : missedEl(t.last_missed),
        t.skipped_overlap ? h('div', { class: 'muted small' }, `${t.skipped_overlap} fire${t.skipped_overlap === 1 ? '' : 's'} skipped (already running)`) : null),
      h('td', {}, jobBadge(t.status), t.waiting ? h('div', { class: 'muted small' }, `${t.waiting} waiting`) : null),
      h('td', { class: 'job-actions' },
        h('button', { type: 'button', class: 'small run-now', ...sendAttrs(`job:${t.id}`), 'aria-label': `Run ${t.id} now`, onclick: press(false) }, 'Run now'),
        h('button', { type: 'button', class: 'small dry-run', ...sendAttrs(`job:${t.id}`), 'aria-label': `Dry run ${t.id}`, onclick: press(true) }, 'Dry run')));
    const outRow = h('tr', { class: 'out-row', 'data-out': t.id }, h('td', { colspan: 6 }, out));
    return [tr, outRow];
  }

  load();
  const off = liveReload((ev) => ev.type === 'ops.job', () => { if (alive) load(); }, 300);
  return () => { alive = false; off(); };
}

// ---- one task -----------------------------------------------------------------------------

function renderTask(view, ctx, id) {
  let alive = true;
  const head = h('div');
  const facts = h('div');
  const formBox = h('div');
  const output = h('div', { id: 'job-output', 'aria-live': 'polite' });
  const history = h('div', { id: 'job-history' });
  const pager = h('div', { class: 'pager' });
  // `before` cursors of the pages shown before this one ("Newer" goes back through them).
  const cursors = [];
  let before = null;
  let next = null;
  let formBuilt = false;
  mount(view,
    h('p', { class: 'muted detail-crumbs' }, h('a', { href: '#/jobs' }, '← Jobs'), ' / ', h('span', { class: 'mono' }, id)),
    head, facts,
    h('section', { class: 'panel job-run-panel', 'aria-labelledby': 'job-run-h' }, h('h2', { id: 'job-run-h' }, 'Run by hand'), formBox, output),
    h('h2', { id: 'job-history-h' }, 'Run history'), history, pager);
  loading(facts);

  async function loadTask() {
    try {
      const data = await api('/api/jobs');
      if (!alive) return;
      const t = (data.tasks || []).find((x) => x.id === id);
      if (!t) {
        mount(head, h('h1', {}, 'No such task'));
        mount(facts, h('div', { class: 'error-box', role: 'alert' }, h('strong', {}, 'Not found: '), `no task '${id}' in the task registry. `, h('a', { href: '#/jobs' }, 'All jobs')));
        mount(formBox);
        return;
      }
      document.title = `${t.id} · Jobs · sofiia`;
      showTask(t);
    } catch (e) {
      if (!alive) return;
      mount(facts, errorBox(e, 'Could not load the task', loadTask));
    }
  }

  function showTask(t) {
    mount(head, h('div', { class: 'detail-head' }, h('h1', { id: 'job-title' }, t.id), jobBadge(t.status),
      t.enabled === false ? h('span', { class: 'badge src src-off' }, 'disabled') : null),
    t.description ? h('p', {}, t.description) : null);
    const fires = Array.isArray(t.next_fires) ? t.next_fires : [];
    const dl = (id, ...pairs) => h('dl', { class: 'kv', id }, pairs.filter(Boolean).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
    mount(facts, h('div', { class: 'panels' },
      h('section', { class: 'panel' }, h('h2', {}, 'Schedule'), dl('job-schedule',
        ['When', t.schedule ? t.schedule.words : h('span', { class: 'muted' }, 'manual only (no schedule)')],
        t.schedule ? ['Cron', [h('code', {}, t.schedule.cron), ' ', t.schedule.tz || 'UTC']] : null,
        ['Next fires', fires.length
          ? h('ol', { class: 'plain-list', id: 'job-next-fires' }, fires.map((f) => h('li', {}, localTime(f, 'next-fire'), ' ', h('span', { class: 'muted small nowrap' }, utc(f)))))
          : h('span', { class: 'muted' }, '—')],
        ['Last fire', t.last_fire ? timeEl(t.last_fire) : h('span', { class: 'muted' }, '—')],
        ['Missed', missedEl(t.last_missed) || h('span', { class: 'muted' }, 'none')])),
      h('section', { class: 'panel' }, h('h2', {}, 'Policy'), dl('job-policy',
        ['Job', h('span', { class: 'mono' }, t.job)],
        ['Catch-up', `${t.catch_up}${t.catch_up === 'all' ? ` (at most ${t.catch_up_max})` : ''}`],
        ['Overlap', `${t.overlap}${t.skipped_overlap ? ` · ${t.skipped_overlap} skipped` : ''}`],
        ['Timeout', t.timeout_s != null ? `${t.timeout_s} s` : '—'],
        ['May start it', Array.isArray(t.permissions) && t.permissions.length ? t.permissions.map((p) => h('span', { class: 'tag' }, p)) : 'the operator only'],
        ['Running', Array.isArray(t.running) && t.running.length ? t.running.map((r) => h('span', { class: 'mono' }, r, ' ')) : 'no'],
        ['Defaults', t.inputs && Object.keys(t.inputs).length ? h('code', {}, JSON.stringify(t.inputs)) : h('span', { class: 'muted' }, 'none')]))));
    if (!formBuilt) { buildForm(t); formBuilt = true; }
  }

  function buildForm(t) {
    const specs = Array.isArray(t.input_specs) ? t.input_specs : [];
    const inputs = new Map();
    const fields = specs.map((s) => {
      const name = String(s.name);
      const fid = `in-${name}`;
      const def = t.inputs ? t.inputs[name] : undefined;
      let input;
      const err = h('div', { class: 'field-error', id: `${fid}-error` });
      if (s.kind === 'bool') {
        input = h('input', { type: 'checkbox', id: fid, name, checked: def === true });
        inputs.set(name, { input, err });
        return h('div', { class: 'check-field' }, h('label', { class: 'check' }, input, h('span', { class: 'mono' }, name)),
          s.about ? h('span', { class: 'hint' }, s.about) : null, err);
      }
      input = h('input', {
        type: 'text', id: fid, name, autocomplete: 'off', inputmode: s.kind === 'int' ? 'numeric' : undefined,
        placeholder: def !== undefined ? `default ${def}` : '', 'aria-describedby': `${fid}-about`,
      });
      inputs.set(name, { input, err });
      return h('label', { class: 'field' }, h('span', { class: 'field-name' }, h('span', { class: 'mono' }, name), s.kind ? h('span', { class: 'muted' }, ` (${s.kind})`) : null),
        input, s.about ? h('span', { class: 'hint', id: `${fid}-about` }, s.about) : null, err);
    });
    // The API names a bad input `inputs.<name>`.
    const marks = fieldMarks(new Map([...inputs].map(([k, v]) => [`inputs.${k}`, v])));
    const error = h('div', { id: 'job-form-error', role: 'alert' });
    const read = () => {
      const out = {};
      for (const s of specs) {
        const { input } = inputs.get(String(s.name));
        if (s.kind === 'bool') { if (input.checked !== (t.inputs && t.inputs[s.name] === true)) out[s.name] = input.checked; continue; }
        const v = input.value.trim();
        if (!v) continue;
        // Whole numbers go as numbers; anything else as typed, for the server to judge.
        out[s.name] = s.kind === 'int' && /^-?\d+$/.test(v) ? Number(v) : v;
      }
      return out;
    };
    const form = h('form', { id: 'job-form', novalidate: true, onsubmit: (e) => e.preventDefault() },
      specs.length ? h('div', { class: 'form-grid' }, fields) : h('p', { class: 'muted' }, 'This job takes no inputs.'),
      h('div', { class: 'actions' },
        h('button', { type: 'button', id: 'job-run', class: 'primary', onclick: () => go(false) }, 'Run now'),
        h('button', { type: 'button', id: 'job-dry', onclick: () => go(true) }, 'Dry run'),
        h('span', { class: 'hint' }, 'A dry run computes everything and shows what it would write, writing nothing.')),
      error);
    function go(dry) {
      const buttons = [...form.querySelectorAll('button')];
      sending(buttons, () => startAndFollow(id, { dry_run: dry, inputs: read() }, (run) => mount(output, runResult(run)), () => alive)
        .then((run) => { if (alive) { loadTask(); reloadHistory(); } return run; }), {
        key: `job:${id}`,
        show: (e) => {
          marks(e);
          mount(error, e ? runError(e, dry) : null);
          if (e && !e.following) mount(output);
        },
      });
    }
    mount(formBox, form);
  }

  function reloadHistory() {
    // A new run is on the first page: go back there.
    cursors.length = 0;
    before = null;
    return loadHistory();
  }

  async function loadHistory() {
    history.setAttribute('aria-busy', 'true');
    showPager(true);
    try {
      const page = await api(`/api/jobs/${enc(id)}/runs`, { query: { limit: HISTORY_PAGE, before } });
      if (!alive) return;
      next = page.next_before || null;
      const runs = Array.isArray(page.runs) ? page.runs : [];
      if (!runs.length) {
        mount(history, emptyTable(before ? 'No older runs.' : 'This task has not run yet.'));
      } else {
        mount(history, table(['Run', 'Trigger', 'Status', 'Started', 'Took', 'Summary'], runs.map((r) => h('tr', { 'data-run': r.id, 'data-status': r.status, 'data-dry': String(!!r.dry_run) },
          h('td', {}, idEl(r.id)),
          h('td', {}, r.trigger ? r.trigger.replace('_', ' ') : '', r.dry_run ? [' ', h('span', { class: 'badge src' }, 'dry run')] : null,
            r.requested_by ? h('div', { class: 'muted small' }, r.requested_by) : null),
          h('td', {}, jobBadge(r.status)),
          h('td', {}, timeEl(r.started_at || r.created_at), r.scheduled_for ? h('div', { class: 'muted small' }, 'for ', localTime(r.scheduled_for)) : null),
          h('td', { class: 'num' }, r.duration_ms != null ? ms(r.duration_ms) : '—'),
          h('td', { class: 'title-cell' },
            r.error ? h('div', { class: 'err-cell' }, r.error) : null,
            r.summary ? h('div', { class: 'summary' }, r.summary) : null,
            missedEl(r.missed),
            r.dry_run && Array.isArray(r.would_write) && r.would_write.length
              ? h('details', {}, h('summary', {}, `would write ${r.would_write.length} file${r.would_write.length === 1 ? '' : 's'}`), wouldWrite(r))
              : null))), { id: 'job-runs' }));
      }
    } catch (e) {
      if (!alive) return;
      next = null;
      mount(history, errorBox(e, 'Could not load the run history', loadHistory));
    } finally {
      history.removeAttribute('aria-busy');
      showPager();
    }
  }

  function showPager(busy = false) {
    mount(pager,
      h('button', { type: 'button', id: 'runs-newer', disabled: busy || !cursors.length, onclick: () => { before = cursors.pop() ?? null; loadHistory(); } }, '← Newer'),
      h('span', { class: 'muted', id: 'runs-page' }, `page ${cursors.length + 1}`),
      h('button', { type: 'button', id: 'runs-older', disabled: busy || !next, onclick: () => { cursors.push(before); before = next; loadHistory(); } }, 'Older →'));
  }

  loadTask();
  loadHistory();
  const off = liveReload((ev) => ev.type === 'ops.job', () => {
    if (!alive) return;
    loadTask();
    if (!cursors.length) loadHistory();
  }, 300);
  return () => { alive = false; off(); };
}
