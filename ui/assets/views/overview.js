// Overview: active incidents by severity and service, overdue follow-ups, latest timeline
// events. Refreshes itself when live events arrive.

import { api } from '../lib/api.js';
import { errorBox, h, mount } from '../lib/dom.js';
import { idEl, sevBadge, statusBadge, timeEl, eventType, SEVERITIES } from '../lib/format.js';
import { liveReload } from '../lib/live.js';
import { linkRow, table } from '../lib/table.js';

const go = (href) => { window.location.hash = href; };

export function render(view) {
  const tiles = h('div', { class: 'tiles', id: 'ov-tiles' });
  const services = h('div', { id: 'ov-services' });
  const overdue = h('div', { id: 'ov-overdue' });
  const latest = h('div', { id: 'ov-latest' });
  const err = h('div');
  mount(view,
    h('h1', {}, 'Overview'),
    err,
    h('section', { class: 'panel', 'aria-labelledby': 'ov-active' },
      h('h2', { id: 'ov-active', style: undefined }, 'Active incidents'),
      tiles,
      services),
    h('div', { class: 'panels', style: undefined },
      h('section', { class: 'panel' }, h('h2', {}, 'Overdue follow-ups'), overdue),
      h('section', { class: 'panel' }, h('h2', {}, 'Latest events'), latest)));

  async function load() {
    const [stats, late, open, feed] = await Promise.allSettled([
      api('/api/incidents/stats'),
      // The most recently missed first: what slipped this week leads, not what slipped in 2023.
      api('/api/followups', { query: { overdue: 'true', limit: 20 } }),
      api('/api/followups', { query: { limit: 1 } }),
      api('/api/events/recent', { query: { limit: 15 } }),
    ]);
    const failed = [stats, late, open, feed].find((r) => r.status === 'rejected');
    mount(err, failed ? errorBox(failed.reason, 'Could not load the overview', load) : null);
    if (stats.status === 'fulfilled') showStats(stats.value);
    if (late.status === 'fulfilled' && open.status === 'fulfilled') showOverdue(late.value, open.value.total);
    if (feed.status === 'fulfilled') showLatest(feed.value.items);
  }

  function showStats(s) {
    mount(tiles,
      h('a', { class: 'tile', href: '#/incidents?status=open,acknowledged,mitigated' },
        h('div', { class: 'n' }, s.active_total), h('div', { class: 'l' }, 'active')),
      SEVERITIES.map((sev) => {
        const n = s.active_by_severity[sev] || 0;
        return h('a', {
          class: `tile ${n ? `sev-${sev}` : 'zero'}`,
          href: `#/incidents?status=open,acknowledged,mitigated&severity=${sev}`,
          'data-sev': sev,
        }, h('div', { class: 'n' }, n), h('div', { class: 'l' }, `${sev} active`));
      }));
    if (!s.active_by_service.length) {
      mount(services, h('p', { class: 'muted' }, 'No active incidents.'));
      return;
    }
    mount(services, table(['Service', ...SEVERITIES.map((x) => ({ label: x, num: true })), { label: 'Total', num: true }],
      s.active_by_service.map((row) => linkRow(`#/incidents?status=open,acknowledged,mitigated&service=${encodeURIComponent(row.service)}`, go, {},
        h('td', {}, row.service),
        SEVERITIES.map((x) => h('td', { class: 'num' }, row[x] ? sevCount(x, row[x]) : h('span', { class: 'muted' }, '·'))),
        h('td', { class: 'num' }, row.total))), { class: 'grid compact keep-table' }));
  }

  function sevCount(sev, n) {
    return h('span', { class: `badge sev-${sev}` }, n);
  }

  function showOverdue(page, openTotal) {
    const rows = page.items;
    if (!rows.length) {
      mount(overdue, h('p', { class: 'muted' }, `No overdue follow-ups (${openTotal} open). `,
        openTotal ? h('a', { href: '#/followups' }, 'See them') : null));
      return;
    }
    mount(overdue, table(['Follow-up', 'Owner', 'Due', 'Incident'], rows.map((f) => h('tr', {},
        h('td', { class: 'title-cell' }, f.title),
        h('td', {}, f.owner || h('span', { class: 'muted' }, '—')),
        h('td', { class: 'overdue' }, timeEl(f.due)),
        h('td', {}, idEl(f.incident_id, `#/incidents/${encodeURIComponent(f.incident_id)}`)))), { class: 'grid compact' }, { wrap: false }),
    h('p', { class: 'muted' },
      page.total > rows.length ? `and ${page.total - rows.length} more: ` : `${page.total} overdue of ${openTotal} open: `,
      h('a', { href: '#/followups?overdue=1', id: 'ov-all-overdue' }, 'all overdue follow-ups')));
  }

  function showLatest(items) {
    if (!items.length) {
      mount(latest, h('p', { class: 'muted' }, 'No events yet. ', h('a', { href: '#/incidents/new' }, 'Record an incident'), '.'));
      return;
    }
    mount(latest, table(null, items.map(({ event, incident }) => linkRow(`#/incidents/${encodeURIComponent(event.incident_id)}`, go, {},
      h('td', {}, timeEl(event.ts)),
      h('td', {}, eventType(event.type)),
      h('td', {}, incident ? sevBadge(incident.severity) : null),
      h('td', { class: 'title-cell' },
        incident ? h('div', {}, incident.title, ' ', statusBadge(incident.status)) : null,
        h('div', { class: 'muted' }, event.message)))), { class: 'grid compact' }, { wrap: false }));
  }

  load();
  return liveReload((ev) => ev.type.startsWith('incident.'), load, 400);
}
