// Work waiting for a person's decision (the graph runner's requeue list): Allow or Drop each
// item. A section of the Ops home, shown only when the server has the list.

import { api } from '../../lib/api.js';
import { errorBox, h, mount, toast } from '../../lib/dom.js';
import { idEl, timeEl } from '../../lib/format.js';
import { isSending, sendAttrs, sending } from '../../lib/form.js';
import { liveReload } from '../../lib/live.js';
import { table } from '../../lib/table.js';
import { runHref } from './parts.js';

/** What makes two decisions on an item the same (see `sending`). */
const decisionKey = (it) => `requeue:${it.id}`;

/** The section: `{el, cleanup}`. It reloads itself on run and requeue events. */
export function requeueSection() {
  const body = h('div', { id: 'requeue' });
  const el = h('section', { id: 'requeue-section', hidden: true }, h('h2', {}, 'Waiting for a decision'), body);
  let seq = 0;
  // A server without the requeue room (404/405): not asked again while this view lives.
  let unsupported = false;
  async function load() {
    if (unsupported) return;
    const my = ++seq;
    try {
      const r = await api('/v1/requeue');
      if (my !== seq) return;
      el.hidden = false;
      const items = r.items || [];
      if (!items.length) {
        mount(body, h('p', { class: 'muted' }, 'Nothing is waiting for a decision.'));
        return;
      }
      mount(body, table(['Item', 'Kind', 'Run', 'Node', 'Reason', 'Status', 'Since', ''], items.map((it) => h('tr', { 'data-id': it.id },
        h('td', {}, idEl(it.id)),
        h('td', {}, it.kind),
        h('td', {}, it.run_id ? idEl(it.run_id, runHref(it.run_id)) : '—', it.graph ? h('div', { class: 'muted mono' }, it.graph) : null),
        h('td', { class: 'mono' }, it.node || '—'),
        h('td', { class: 'title-cell' }, it.reason || ''),
        h('td', {}, h('span', { class: 'badge st' }, it.status)),
        h('td', {}, timeEl(it.created_at)),
        h('td', {}, it.status === 'pending'
          ? [h('button', { type: 'button', class: 'primary requeue-allow', ...sendAttrs(decisionKey(it)), onclick: (e) => resolve(it, true, e.currentTarget) }, 'Allow'), ' ',
            h('button', { type: 'button', class: 'danger requeue-drop', ...sendAttrs(decisionKey(it)), onclick: (e) => resolve(it, false, e.currentTarget) }, 'Drop')]
          : null))), { class: 'grid compact', id: 'requeue-table' }));
    } catch (e) {
      if (my !== seq) return;
      // Servers without the requeue room answer 404: the section stays hidden.
      if (e.status === 404 || e.status === 405) { el.hidden = true; unsupported = true; return; }
      el.hidden = false;
      mount(body, errorBox(e, 'Could not list waiting work'));
    }
  }
  async function resolve(it, allow, button) {
    // Both of the row's buttons wait for the answer: one decision, one POST (also when a
    // reload draws the row again meanwhile). Then the list is asked again, so the row goes,
    // or shows its new status; until then the buttons stay disabled.
    if (isSending(decisionKey(it))) return;
    const row = button && button.closest('tr');
    const buttons = row ? [...row.querySelectorAll('.requeue-allow, .requeue-drop')] : [button];
    await sending(buttons, async () => {
      await api(`/v1/requeue/${encodeURIComponent(it.id)}/resolve`, { method: 'POST', body: { allow } });
      toast(allow ? `Allowed ${it.id}` : `Dropped ${it.id}`, 'ok');
    }, { key: decisionKey(it), keepDisabled: true });
    load();
  }
  load();
  const cleanup = liveReload((ev) => !unsupported && (ev.type === 'ops.run' || ev.type.startsWith('ops.requeue')), load, 400);
  return { el, cleanup };
}
