// Graph runs (the ops room): the graph list, starting a run, and following one live.
//
// `followRun` keeps one run's record and its complete event list current: `ops.run.event`
// frames are added in order; a gap in the sequence numbers, or a WebSocket reconnect, is
// filled from `GET /v1/runs/{id}/events?after=<contiguous high-water mark>`, so nothing is
// missed. While the live stream is down, an active run is polled instead (new events only,
// the record when they say its status may have changed), backing off to 30 s.

import { api } from './api.js';
import * as live from './live.js';

export const RUN_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];
export const ACTIVE_RUN = ['queued', 'running'];

/** What the server accepts as a run id (`gr_` and 1-40 alphanumerics). */
export const RUN_ID_RE = /^gr_[A-Za-z0-9]{1,40}$/;
export const isRunId = (id) => typeof id === 'string' && RUN_ID_RE.test(id);

/** An error for a string that cannot be a run id (nothing is requested for it). */
export function notRunIdError(id) {
  const e = new Error(`${JSON.stringify(String(id))} is not a run id (run ids look like gr_1a2b3c)`);
  e.code = 'not_a_run_id';
  e.describe = () => `${e.message}.`;
  return e;
}

let graphsCache = null;

/** `GET /v1/graphs` (cached for the page's life; `fresh` refetches). */
export async function listGraphs(fresh = false) {
  if (!graphsCache || fresh) {
    graphsCache = api('/v1/graphs').then((r) => r.graphs || []);
    graphsCache.catch(() => { graphsCache = null; });
  }
  return graphsCache;
}

/** Start a run of `graph` with `input`; resolves to `{run_id, status}`. */
export function startRun(graph, input, extra = {}) {
  return api(`/v1/graphs/${encodeURIComponent(graph)}/runs`, {
    method: 'POST',
    body: { ...extra, input },
    // One key per click: a retried request never starts a second run.
    headers: { 'Idempotency-Key': `console-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}` },
  });
}

export function cancelRun(id) {
  return api(`/v1/runs/${encodeURIComponent(id)}/cancel`, { method: 'POST', body: {} });
}

/** Each request of a follower gives up after this long (the backend may be blackholed). */
const REQUEST_TIMEOUT_MS = 15000;
const POLL_MIN_MS = 3000;
const RETRY_MIN_MS = 1000;
const BACKOFF_MAX_MS = 30000;
/** `GET /v1/runs/{id}` carries at most this many events; the rest come from the replay. */
const RECORD_EVENTS = 1000;
const PAGE = 500;

// Events after which the run's record (status, result, error, current node) has changed.
const REFRESH_ON = new Set(['run_started', 'run_resumed', 'run_succeeded', 'run_failed', 'run_cancelled', 'cancel_requested']);
const NODE_MOVES = new Set(['node_start', 'node_end', 'node_error']);

/** Worth trying again by itself: unreachable, timed out, rate limited, server errors. */
function retryable(e) {
  if (!e) return false;
  if (typeof e.status !== 'number') return false;
  return e.status === 0 || e.status === 408 || e.status === 429 || e.status >= 500;
}

const jitter = (ms) => Math.round(ms * (0.8 + Math.random() * 0.4));

/**
 * Follow run `id`. `onChange({run, events, error, retrying})` is called after changes, at
 * most once per animation frame (`run` is null until the first load; `error` is the last
 * request's error, if it failed; `retrying` says a failed first load will be retried).
 * `events` is the follower's own sorted array, updated in place: read it, do not keep a
 * copy of its length as truth across calls. Returns `{stop, refresh}`.
 */
export function followRun(id, onChange) {
  if (!isRunId(id)) {
    const error = notRunIdError(id);
    let stopped = false;
    queueMicrotask(() => { if (!stopped) onChange({ run: null, events: [], error, retrying: false }); });
    return { refresh: async () => {}, stop() { stopped = true; } };
  }
  const path = `/v1/runs/${encodeURIComponent(id)}`;
  let run = null;
  let error = null;
  const bySeq = new Map();
  const events = [];
  // Every seq in 1..hwm is present (the contiguous high-water mark).
  let hwm = 0;
  let stopped = false;
  let liveOpen = false;
  let everClosed = false;
  const ctl = new AbortController();
  const req = (p, opts = {}) => api(p, { ...opts, signal: ctl.signal, timeoutMs: REQUEST_TIMEOUT_MS });

  /** Add events not seen yet, keeping `events` sorted; returns the ones added. */
  function add(list) {
    const added = [];
    if (!Array.isArray(list) || !list.length) return added;
    // The record's first 1000 events (ascending), all known already: nothing to look at.
    const tail = list[list.length - 1];
    const head = list[0];
    if (head && tail && Number.isInteger(tail.seq) && tail.seq <= hwm && head.seq <= tail.seq) return added;
    for (const ev of list) {
      if (!ev || typeof ev !== 'object' || !Number.isInteger(ev.seq) || ev.seq < 1 || bySeq.has(ev.seq)) continue;
      bySeq.set(ev.seq, ev);
      if (!events.length || events[events.length - 1].seq < ev.seq) {
        events.push(ev);
      } else {
        let lo = 0;
        let hi = events.length;
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if (events[mid].seq < ev.seq) lo = mid + 1;
          else hi = mid;
        }
        events.splice(lo, 0, ev);
      }
      added.push(ev);
    }
    while (bySeq.has(hwm + 1)) hwm++;
    return added;
  }

  // ---- drawing: coalesced to one call per animation frame (a timer when frames stall) ----
  let pending = false;
  let raf = 0;
  let rafTimer = null;
  function flush() {
    if (raf) cancelAnimationFrame(raf);
    clearTimeout(rafTimer);
    raf = 0;
    rafTimer = null;
    pending = false;
    if (stopped) return;
    try {
      onChange({ run, events, error, retrying: !run && retryable(error) });
    } catch (e) {
      // A view that cannot draw this state must not break following the run.
      console.error('run view update failed', e);
    }
  }
  function emit() {
    if (stopped || pending) return;
    pending = true;
    raf = typeof requestAnimationFrame === 'function' ? requestAnimationFrame(flush) : 0;
    // Hidden tabs get no frames: draw anyway, a little later.
    rafTimer = setTimeout(flush, 250);
  }

  // ---- loading ----
  let loading = null;
  let again = false;
  let retryDelay = RETRY_MIN_MS;
  function refresh() {
    if (stopped) return Promise.resolve();
    // One load at a time; a request during a load runs once more after it.
    if (loading) { again = true; return loading; }
    loading = (async () => {
      try {
        do {
          again = false;
          try {
            const r = await req(path);
            if (stopped) return;
            const { events: list, ...rest } = r || {};
            run = rest;
            error = null;
            retryDelay = RETRY_MIN_MS;
            add(list);
            // The record carries the first 1000 events; the rest come from the replay.
            if (Array.isArray(list) && list.length >= RECORD_EVENTS) await catchUp(false);
          } catch (e) {
            if (stopped) return;
            error = e;
          }
          emit();
        } while (again && !stopped);
      } finally {
        loading = null;
        schedule();
      }
    })();
    return loading;
  }

  let catching = null;
  let catchAgain = false;
  /** Fetch the events after the high-water mark; resolves to the ones added. */
  function catchUp(notify = true) {
    if (stopped) return Promise.resolve([]);
    if (catching) { catchAgain = true; return catching; }
    catching = (async () => {
      const got = [];
      try {
        do {
          catchAgain = false;
          for (let n = 0; n < 50 && !stopped; n++) {
            const page = await req(`${path}/events`, { query: { after: hwm, limit: PAGE } });
            if (stopped) return got;
            const items = page && Array.isArray(page.items) ? page.items : [];
            const added = add(items);
            got.push(...added);
            if (items.length < PAGE || !added.length) break;
          }
        } while (catchAgain && !stopped);
        // Reached the server: an earlier failure is over.
        if (run) error = null;
      } catch (e) {
        if (!stopped) error = e;
      } finally {
        catching = null;
      }
      if (notify) emit();
      return got;
    })();
    return catching;
  }

  // ---- one timer: retry a failed first load, or poll while the live stream is down ----
  let timer = null;
  let timerKind = null;
  let polling = false;
  let pollDelay = POLL_MIN_MS;
  function schedule() {
    if (stopped) return;
    let kind = null;
    if (!run) kind = !loading && retryable(error) ? 'retry' : null;
    else if (!liveOpen && ACTIVE_RUN.includes(run.status) && !polling) kind = 'poll';
    if (kind === timerKind && (timer || !kind)) return;
    clearTimeout(timer);
    timer = null;
    timerKind = kind;
    if (kind === 'retry') {
      timer = setTimeout(() => {
        timer = null;
        timerKind = null;
        retryDelay = Math.min(retryDelay * 2, BACKOFF_MAX_MS);
        refresh();
      }, jitter(retryDelay));
    } else if (kind === 'poll') {
      timer = setTimeout(poll, jitter(pollDelay));
    }
  }

  async function poll() {
    timer = null;
    timerKind = null;
    if (stopped || liveOpen || !run) { schedule(); return; }
    polling = true;
    let progressed = false;
    try {
      const failedBefore = error;
      const added = await catchUp();
      if (stopped) return;
      progressed = added.length > 0;
      // The record only when the new events say it changed (or an earlier load failed).
      if (added.some((ev) => REFRESH_ON.has(ev.type) || NODE_MOVES.has(ev.type)) || (failedBefore && !error)) await refresh();
    } finally {
      polling = false;
    }
    // Quiet or failing: wait longer each time (up to 30 s); moving: back to 3 s.
    pollDelay = progressed ? POLL_MIN_MS : Math.min(pollDelay * 2, BACKOFF_MAX_MS);
    schedule();
  }

  const offEvent = live.onEvent((env) => {
    const d = env.data || {};
    if (d.run_id !== id) return;
    if (env.type === 'ops.run.event' && d.event) {
      const ev = d.event;
      const added = add([ev]);
      // Something before this one is missing: replay from the high-water mark.
      if (Number.isInteger(ev.seq) && ev.seq > hwm) catchUp();
      if (added.length) emit();
      if (REFRESH_ON.has(ev.type)) refresh();
    } else if (env.type === 'ops.run') {
      // Any change of the run (also one that moves neither status nor node, e.g. a cancel
      // requested by another client): show the cancel at once, then reload the record.
      if (run && d.cancel_requested === true && !run.cancel_requested) {
        run = { ...run, cancel_requested: true };
        emit();
      }
      refresh();
    }
  });
  const offState = live.onState((s) => {
    const open = s.status === 'open';
    if (open && !liveOpen && everClosed) {
      // Back after a disconnect: fetch what was published meanwhile (also when the first
      // load never succeeded).
      liveOpen = open;
      pollDelay = POLL_MIN_MS;
      if (run) catchUp();
      refresh();
    }
    if (!open) everClosed = true;
    liveOpen = open;
    schedule();
  });

  refresh();
  return {
    refresh,
    stop() {
      stopped = true;
      ctl.abort();
      offEvent();
      offState();
      clearTimeout(timer);
      clearTimeout(rafTimer);
      if (raf) cancelAnimationFrame(raf);
    },
  };
}

function applyNodeEvent(out, ev) {
  if (!ev.node) return;
  if (!out.has(ev.node)) out.set(ev.node, { state: 'pending' });
  const s = out.get(ev.node);
  if (ev.type === 'node_start') {
    s.state = 'running';
    s.started = ev.ts;
    delete s.error;
  } else if (ev.type === 'node_end') {
    s.state = 'done';
    s.elapsed_ms = ev.details && ev.details.elapsed_ms;
  } else if (ev.type === 'node_error') {
    s.state = 'failed';
    s.error = (ev.details && (ev.details.message || ev.details.error || ev.details.code)) || 'failed';
  }
}

/**
 * Node states kept up to date incrementally: `states(nodes, run, events)` looks only at the
 * events added at the end since the last call (it starts over when earlier ones were filled
 * in). Gives what `nodeStates` gives.
 */
export function nodeStateTracker() {
  const acc = new Map();
  let seen = 0;
  let lastSeq = 0;
  return {
    states(nodes, run, events) {
      if (!(seen > 0 && events.length >= seen && events[seen - 1].seq === lastSeq)) {
        acc.clear();
        seen = 0;
      }
      for (let i = seen; i < events.length; i++) applyNodeEvent(acc, events[i]);
      seen = events.length;
      lastSeq = seen ? events[seen - 1].seq : 0;
      const out = new Map(nodes.map((n) => [n.name, { ...(acc.get(n.name) || { state: 'pending' }) }]));
      for (const [name, s] of acc) if (!out.has(name)) out.set(name, { ...s });
      if (run && !ACTIVE_RUN.includes(run.status)) {
        for (const s of out.values()) {
          // A node still "running" when the run ended was interrupted (failed or cancelled).
          if (s.state === 'running') s.state = run.status === 'cancelled' ? 'cancelled' : 'failed';
          // A node never reached in a finished run was skipped by a branch (or never got its turn).
          else if (s.state === 'pending') s.state = run.status === 'succeeded' ? 'skipped' : 'pending';
        }
      }
      return out;
    },
  };
}

/**
 * Each node's state from a run's events: `{state: pending|running|done|failed|skipped,
 * elapsed_ms, error}` by node name.
 */
export function nodeStates(nodes, run, events) {
  return nodeStateTracker().states(nodes, run, events);
}

/** The node a run is at now (for a one-line progress text). */
export function currentNode(run, events) {
  if (!run) return null;
  if (run.current_node) return run.current_node;
  for (let i = events.length - 1; i >= 0; i--) {
    const ev = events[i];
    if (ev.type === 'node_start') return ev.node;
    if (ev.type === 'node_end') return (ev.details && ev.details.next) || run.next_node || null;
  }
  return run.next_node || null;
}
