// Small pieces every view shows the same way: times, ids, severities, statuses, event types.

import { h, toast } from './dom.js';

/** "3 min ago" / "in 2 h" for an RFC 3339 time. */
export function relative(ts, now = Date.now()) {
  const t = Date.parse(ts);
  if (Number.isNaN(t)) return String(ts ?? '');
  const s = Math.round((t - now) / 1000);
  const a = Math.abs(s);
  const [n, unit] =
    a < 45 ? [a, 's'] :
    a < 3600 ? [Math.round(a / 60), 'min'] :
    a < 86400 ? [Math.round(a / 3600), 'h'] :
    a < 86400 * 60 ? [Math.round(a / 86400), 'd'] :
    [Math.round(a / (86400 * 30)), 'mo'];
  if (a < 10) return 'just now';
  return s < 0 ? `${n} ${unit} ago` : `in ${n} ${unit}`;
}

/** The absolute UTC time, as shown on hover. */
export function utc(ts) {
  const t = new Date(ts);
  if (Number.isNaN(t.getTime())) return String(ts ?? '');
  return t.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC').replace(/Z$/, ' UTC');
}

/** A relative time with the absolute UTC time on hover. */
export function timeEl(ts) {
  if (!ts) return h('span', { class: 'muted' }, '—');
  return h('time', { datetime: ts, title: utc(ts), class: 'rel' }, relative(ts));
}

/** An id in monospace with a one-click copy button. */
export function idEl(id, href) {
  const text = href ? h('a', { href, class: 'mono' }, id) : h('span', { class: 'mono' }, id);
  return h('span', { class: 'id' }, text,
    h('button', {
      class: 'copy', type: 'button', title: 'Copy id', 'aria-label': `Copy ${id}`,
      onclick: async (e) => {
        e.stopPropagation();
        try {
          await navigator.clipboard.writeText(id);
          toast(`Copied ${id}`, 'ok');
        } catch {
          toast('The browser refused clipboard access', 'error');
        }
      },
    }, copyIcon()));
}

function copyIcon() {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 16 16');
  svg.setAttribute('aria-hidden', 'true');
  for (const [x, y] of [[5, 5], [2, 2]]) {
    const r = document.createElementNS(ns, 'rect');
    for (const [k, v] of Object.entries({ x, y, width: 9, height: 9, rx: 1.5, fill: 'none', stroke: 'currentColor', 'stroke-width': 1.5 })) r.setAttribute(k, String(v));
    svg.appendChild(r);
  }
  return svg;
}

export const SEVERITIES = ['P0', 'P1', 'P2', 'P3'];
export const STATUSES = ['open', 'acknowledged', 'mitigated', 'resolved', 'closed'];
export const ACTIVE = ['open', 'acknowledged', 'mitigated'];

export function sevBadge(sev) {
  return h('span', { class: `badge sev-${sev}`, title: `Severity ${sev}` }, sev);
}

export function statusBadge(status) {
  return h('span', { class: `badge st st-${status}` }, status);
}

export function eventType(type) {
  const cls = /^[a-z_]+$/.test(type) ? `ev ev-${type}` : 'ev';
  return h('span', { class: cls }, type);
}

/** Human size. */
export function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(2)} MiB`;
}

/** A length of time in milliseconds, for reading (`850 ms`, `2.41 s`, `73.0 s`). */
export function ms(n) {
  if (typeof n !== 'number') return '';
  return n < 1000 ? `${Math.round(n)} ms` : `${(n / 1000).toFixed(n < 10000 ? 2 : 1)} s`;
}

/** How long from `from` to `to` (or now), as `ms()` gives it; `—` when either is unreadable. */
export function duration(from, to) {
  const a = Date.parse(from);
  const b = to ? Date.parse(to) : Date.now();
  if (Number.isNaN(a) || Number.isNaN(b)) return '—';
  return ms(Math.max(0, b - a));
}

/** `s` cut to at most `n` characters (with an ellipsis). */
export function shorten(s, n) {
  const t = String(s);
  return t.length > n ? `${t.slice(0, n - 1)}…` : t;
}

/** Keep every `time.rel` on the page current. */
export function refreshRelativeTimes(root = document) {
  for (const t of root.querySelectorAll('time.rel')) {
    t.textContent = relative(t.getAttribute('datetime'));
  }
}
