// Pieces shared by views: loading and error states, and live refresh wiring.

import { h, mount, debounce } from '../lib/dom.js';
import * as live from '../lib/live.js';

/** An error block for an API failure (readable text, never swallowed). */
export function errorBox(e, what) {
  const text = e && e.describe ? e.describe() : String((e && e.message) || e);
  return h('div', { class: 'error-box', role: 'alert' }, h('strong', {}, what ? `${what}: ` : 'Error: '), text);
}

export function loading(el, text = 'Loading…') {
  mount(el, h('div', { class: 'empty' }, text));
}

/**
 * Re-run `reload` (debounced by `ms`) whenever a live event passes `match`; while events keep
 * coming, at least every `maxWait` ms (default 4 × `ms`), so a steady stream cannot starve
 * it. Returns the unsubscribe function for the view's cleanup.
 */
export function liveReload(match, reload, ms = 250, maxWait = ms * 4) {
  const run = debounce(reload, ms, maxWait);
  const off = live.onEvent((ev) => {
    if (match(ev)) run(ev);
  });
  return () => {
    off();
    run.cancel();
  };
}

/** The incident id an event envelope concerns, if any. */
export function incidentIdOf(ev) {
  const d = ev && ev.data;
  if (!d) return null;
  if (d.incident && d.incident.id) return d.incident.id;
  if (d.event && d.event.incident_id) return d.event.incident_id;
  if (d.artifact && d.artifact.incident_id) return d.artifact.incident_id;
  return null;
}
