// The live event stream: one WebSocket to `/ws/events`, reconnected with exponential backoff
// and jitter (1 s doubling to 30 s). Views subscribe to `{type, ts, data}` envelopes; the
// header subscribes to the connection state; `liveReload` is how a view keeps itself current.

import { eventsUrl } from './api.js';
import { debounce } from './dom.js';

const listeners = new Set();
const stateListeners = new Set();
let socket = null;
let attempt = 0;
let timer = null;
let state = { status: 'connecting', retryInMs: 0 };
// The server says in its hello how often it sends a heartbeat; a socket that hears nothing
// for SILENT_BEATS of them is treated as dead (a paused or wedged server keeps TCP open).
const SILENT_BEATS = 2.5;
// A handshake that has not completed after this long (a paused server accepts TCP and says
// nothing) is given up and retried, so the header shows the stream as down.
const CONNECT_TIMEOUT_MS = 5000;
let connectTimer = null;
let heartbeatMs = 0;
let lastHeard = 0;
let watchdog = null;
const history = [];
export const HISTORY_MAX = 500;

function setState(s) {
  state = s;
  for (const fn of stateListeners) fn(state);
}

/** Everything received since the page loaded (newest last, at most HISTORY_MAX). */
export function received() {
  return history;
}

/** Call `fn(envelope)` for every event; returns an unsubscribe function. */
export function onEvent(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/**
 * Re-run `reload` (debounced by `ms`) whenever a live event passes `match`; while events keep
 * coming, at least every `maxWait` ms (default 4 × `ms`), so a steady stream cannot starve
 * it. Returns the unsubscribe function for the view's cleanup.
 */
export function liveReload(match, reload, ms = 250, maxWait = ms * 4) {
  const run = debounce(reload, ms, maxWait);
  const off = onEvent((ev) => {
    if (match(ev)) run(ev);
  });
  return () => {
    off();
    run.cancel();
  };
}

/** Call `fn(state)` now and whenever the connection state changes. */
export function onState(fn) {
  stateListeners.add(fn);
  fn(state);
  return () => stateListeners.delete(fn);
}

/** (Re)connect now, e.g. after the key or backend URL changed. */
export function connect() {
  clearTimeout(timer);
  if (socket) {
    socket.onclose = null;
    socket.close();
    socket = null;
  }
  setState({ status: 'connecting', retryInMs: 0 });
  heartbeatMs = 0;
  let ws;
  try {
    ws = new WebSocket(eventsUrl());
  } catch {
    scheduleRetry();
    return;
  }
  socket = ws;
  clearTimeout(connectTimer);
  connectTimer = setTimeout(() => {
    if (socket !== ws || ws.readyState !== WebSocket.CONNECTING) return;
    socket = null;
    ws.onclose = null;
    ws.onopen = null;
    ws.onmessage = null;
    try { ws.close(); } catch { /* not open yet */ }
    scheduleRetry(true);
  }, CONNECT_TIMEOUT_MS);
  ws.onopen = () => {
    clearTimeout(connectTimer);
    lastHeard = Date.now();
    setState({ status: 'open', retryInMs: 0 });
  };
  ws.onmessage = (m) => {
    let env;
    try {
      env = JSON.parse(m.data);
    } catch {
      return;
    }
    if (!env || typeof env.type !== 'string') return;
    lastHeard = Date.now();
    if (env.type === 'hello') heartbeatMs = Number(env.data && env.data.heartbeat_ms) || 0;
    // Heartbeats only say the server is there; they are not events.
    if (env.type === 'heartbeat') return;
    // The backoff starts over only once the server has really spoken (its hello), so a proxy
    // that accepts and drops connections does not cause a reconnect storm.
    attempt = 0;
    history.push(env);
    if (history.length > HISTORY_MAX) history.shift();
    for (const fn of listeners) {
      try {
        fn(env);
      } catch (e) {
        console.error('event listener failed', e);
      }
    }
  };
  ws.onclose = () => {
    if (socket === ws) {
      socket = null;
      scheduleRetry();
    }
  };
}

function scheduleRetry(silent = false) {
  attempt += 1;
  const base = Math.min(30000, 1000 * 2 ** Math.min(attempt - 1, 5));
  const delay = Math.round(base / 2 + Math.random() * (base / 2));
  setState({ status: 'closed', retryInMs: delay, attempt, silent });
  timer = setTimeout(connect, delay);
}

/** Close a socket whose server has gone quiet past its heartbeat deadline, and retry. */
function checkSilence() {
  if (!socket || state.status !== 'open' || !heartbeatMs) return;
  if (Date.now() - lastHeard <= heartbeatMs * SILENT_BEATS) return;
  const dead = socket;
  socket = null;
  dead.onclose = null;
  dead.onmessage = null;
  try { dead.close(); } catch { /* already closing */ }
  scheduleRetry(true);
}

if (typeof window !== 'undefined' && !watchdog) watchdog = setInterval(checkSilence, 1000);
