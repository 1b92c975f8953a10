// Graph runs (the ops room): the graph list, starting a run, and following one live.
//
// `followRun` keeps one run's record and its complete event list current: `ops.run.event`
// frames are appended in order; a gap in the sequence numbers, or a WebSocket reconnect, is
// filled from `GET /v1/runs/{id}/events?after=<last seq>`, so nothing is missed. While the
// live stream is down, an active run is polled instead.

import { api } from './api.js';
import * as live from './live.js';

export const RUN_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];
export const ACTIVE_RUN = ['queued', 'running'];

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

/**
 * Follow run `id`. `onChange({run, events, error})` is called after every change (`run` is
 * null until the first load; `error` is the last load's ApiError, if it failed). Returns
 * `{stop, refresh}`.
 */
export function followRun(id, onChange) {
  const path = `/v1/runs/${encodeURIComponent(id)}`;
  let run = null;
  let error = null;
  const events = new Map();
  let stopped = false;
  let liveOpen = false;
  let everClosed = false;

  const lastSeq = () => {
    let n = 0;
    while (events.has(n + 1)) n++;
    return n;
  };
  const emit = () => {
    if (stopped) return;
    onChange({ run, events: [...events.values()].sort((a, b) => a.seq - b.seq), error });
  };
  const add = (list) => {
    let changed = false;
    for (const ev of list || []) {
      if (ev && typeof ev.seq === 'number' && !events.has(ev.seq)) {
        events.set(ev.seq, ev);
        changed = true;
      }
    }
    return changed;
  };

  let loading = null;
  let again = false;
  async function refresh() {
    // One load at a time; a request during a load runs once more after it.
    if (loading) { again = true; return loading; }
    loading = (async () => {
      try {
        const r = await api(path);
        if (stopped) return;
        const { events: list, ...rest } = r;
        run = rest;
        error = null;
        add(list);
        // The record carries the first 1000 events; the rest come from the replay.
        if (Array.isArray(list) && list.length >= 1000) await catchUp(false);
      } catch (e) {
        error = e;
      }
      emit();
    })();
    try {
      await loading;
    } finally {
      loading = null;
    }
    if (again && !stopped) {
      again = false;
      await refresh();
    }
  }

  let catching = null;
  async function catchUp(notify = true) {
    if (catching) return catching;
    catching = (async () => {
      try {
        for (let n = 0; n < 50 && !stopped; n++) {
          const page = await api(`${path}/events`, { query: { after: lastSeq(), limit: 500 } });
          const changed = add(page.items);
          if (page.items.length < 500 || !changed) break;
        }
      } catch (e) {
        error = e;
      }
    })();
    try {
      await catching;
    } finally {
      catching = null;
    }
    if (notify) emit();
  }

  // Events after which the run's record (status, result, error) has changed.
  const REFRESH_ON = new Set(['run_started', 'run_resumed', 'run_succeeded', 'run_failed', 'run_cancelled', 'cancel_requested']);
  const offEvent = live.onEvent((env) => {
    const d = env.data || {};
    if (d.run_id !== id) return;
    if (env.type === 'ops.run.event' && d.event) {
      const ev = d.event;
      if (ev.seq > lastSeq() + 1) {
        catchUp();
      } else if (add([ev])) {
        emit();
      }
      if (REFRESH_ON.has(ev.type)) refresh();
    } else if (env.type === 'ops.run') {
      if (run && (run.status !== d.status || run.next_node !== d.next_node)) refresh();
      else if (!run) refresh();
    }
  });
  const offState = live.onState((s) => {
    const open = s.status === 'open';
    if (open && !liveOpen && everClosed && run) {
      // Back after a disconnect: fetch what was published meanwhile.
      catchUp();
      refresh();
    }
    if (!open) everClosed = true;
    liveOpen = open;
  });
  const poll = setInterval(() => {
    if (!liveOpen && run && ACTIVE_RUN.includes(run.status)) {
      refresh();
      catchUp();
    }
  }, 3000);

  refresh();
  return {
    refresh,
    stop() {
      stopped = true;
      offEvent();
      offState();
      clearInterval(poll);
    },
  };
}

/**
 * Each node's state from a run's events: `{state: pending|running|done|failed|skipped,
 * elapsed_ms, error}` by node name.
 */
export function nodeStates(nodes, run, events) {
  const out = new Map(nodes.map((n) => [n.name, { state: 'pending' }]));
  const get = (name) => {
    if (!out.has(name)) out.set(name, { state: 'pending' });
    return out.get(name);
  };
  for (const ev of events) {
    if (!ev.node) continue;
    const s = get(ev.node);
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
  if (run && !ACTIVE_RUN.includes(run.status)) {
    for (const s of out.values()) {
      // A node still "running" when the run ended was interrupted (failed or cancelled).
      if (s.state === 'running') s.state = run.status === 'cancelled' ? 'cancelled' : 'failed';
      // A node never reached in a finished run was skipped by a branch (or never got its turn).
      else if (s.state === 'pending') s.state = run.status === 'succeeded' ? 'skipped' : 'pending';
    }
  }
  return out;
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
