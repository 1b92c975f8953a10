// Pieces every Ops view shows: links to runs and graphs, a run's status badge, a graph's
// node chain.

import { h } from '../../lib/dom.js';
import { ms } from '../../lib/format.js';

export const runHref = (id) => `#/ops/runs/${encodeURIComponent(id)}`;
export const graphHref = (name) => `#/ops/graphs/${encodeURIComponent(name)}`;

/** A run's status (`queued` … `cancelled`) as a badge. */
export function runStatusBadge(status) {
  return h('span', { class: `badge st rs-${status}`, 'data-status': status }, status);
}

/** The node chain; with `states` (from nodeStates) each node shows how far it got. */
export function chain(nodes, states) {
  return h('ol', { class: 'chain' }, nodes.map((n) => {
    const s = states ? states.get(n.name) || { state: 'pending' } : null;
    const label = s ? s.state : '';
    return h('li', {
      class: s ? `n-${s.state}` : '',
      'data-node': n.name,
      'data-state': s ? s.state : undefined,
      title: `${n.name}${n.safe_to_repeat ? '' : ' (not repeated after an interruption)'}${s ? `: ${label}` : ''}${s && s.error ? ` · ${s.error}` : ''}`,
    }, h('span', { class: 'mono' }, n.name),
    s && s.state === 'done' && typeof s.elapsed_ms === 'number' ? h('span', { class: 'n-ms' }, ms(s.elapsed_ms)) : null,
    s && s.state !== 'done' && s.state !== 'pending' ? h('span', { class: 'n-ms' }, label) : null);
  }));
}
