// A line chart drawn as inline SVG by our own code (no library): one line per series over a
// shared time axis, a 0–100 (or data-driven) value axis, a legend, and a text alternative for
// screen readers. The scaling (`scaleSeries`) and the path (`linePath`) are pure functions,
// tested in node (tests/browser/chart.test.mjs); `lineChart` only turns them into elements.

const NS = 'http://www.w3.org/2000/svg';

/** Colours for series, in order; readable on both themes. */
export const PALETTE = ['#1f6feb', '#cf222e', '#1a7f37', '#bf8700', '#8250df', '#3192aa', '#fb8500', '#57606a'];

/**
 * Where each point of each series goes in a `width`×`height` box with `pad`
 * ({top,right,bottom,left}) kept free for the axes. `series`: `[{name, points:[{t, v}]}]`
 * (`t` a time in ms, `v` a number; points that are not finite are dropped, the rest sorted by
 * time). The value range is `[yMin, yMax]` when given, else the data's (widened to a span of
 * at least 1); the time range is the data's (a single time is centred). Returns
 * `{series:[{name, points:[{t, v, x, y}]}], t0, t1, y0, y1, x(t), y(v)}`.
 */
export function scaleSeries(series, { width = 600, height = 220, pad = {}, yMin, yMax } = {}) {
  const p = { top: 10, right: 10, bottom: 24, left: 34, ...pad };
  const clean = (series || []).map((s) => ({
    name: String(s && s.name != null ? s.name : ''),
    points: ((s && s.points) || [])
      .filter((q) => q && Number.isFinite(q.t) && Number.isFinite(q.v))
      .map((q) => ({ t: q.t, v: q.v }))
      .sort((a, b) => a.t - b.t),
  }));
  const all = clean.flatMap((s) => s.points);
  let t0 = Math.min(...all.map((q) => q.t));
  let t1 = Math.max(...all.map((q) => q.t));
  if (!all.length) { t0 = 0; t1 = 1; }
  let y0 = Number.isFinite(yMin) ? yMin : Math.min(...all.map((q) => q.v));
  let y1 = Number.isFinite(yMax) ? yMax : Math.max(...all.map((q) => q.v));
  if (!Number.isFinite(y0)) y0 = 0;
  if (!Number.isFinite(y1)) y1 = y0 + 1;
  if (y1 - y0 < 1) { const mid = (y0 + y1) / 2; y0 = mid - 0.5; y1 = mid + 0.5; }
  const innerW = Math.max(1, width - p.left - p.right);
  const innerH = Math.max(1, height - p.top - p.bottom);
  const x = (t) => (t1 === t0 ? p.left + innerW / 2 : p.left + ((t - t0) / (t1 - t0)) * innerW);
  // Values outside a fixed range are drawn at its edge, not outside the box.
  const y = (v) => p.top + (1 - (Math.min(y1, Math.max(y0, v)) - y0) / (y1 - y0)) * innerH;
  const round = (n) => Math.round(n * 100) / 100;
  return {
    series: clean.map((s) => ({ name: s.name, points: s.points.map((q) => ({ ...q, x: round(x(q.t)), y: round(y(q.v)) })) })),
    t0, t1, y0, y1, x, y, pad: p, width, height,
  };
}

/** The SVG path of scaled points (`M x y L x y …`); empty for none. */
export function linePath(points) {
  return (points || []).map((q, i) => `${i ? 'L' : 'M'}${q.x} ${q.y}`).join(' ');
}

/** `n` evenly spaced values from `a` to `b` (both included), for axis ticks. */
export function ticks(a, b, n) {
  if (n < 2 || a === b) return [a];
  return Array.from({ length: n }, (_, i) => a + ((b - a) * i) / (n - 1));
}

function el(tag, attrs = {}, text) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = String(text);
  return e;
}

const day = (t) => new Date(t).toLocaleDateString(undefined, { month: 'short', day: 'numeric' });

/**
 * An `<svg>` line chart of `series` (as `scaleSeries` takes them). `opts`: `title` (its
 * accessible name), `yMin`/`yMax`, `width`/`height` (the viewBox: the chart scales to its
 * container's width), `id`. Each series is a `<path data-series=name>`, each point a
 * `<circle>` with a `<title>` (time and value) for hovering.
 */
export function lineChart(series, opts = {}) {
  const width = opts.width || 640;
  const height = opts.height || 240;
  const sc = scaleSeries(series, { width, height, yMin: opts.yMin, yMax: opts.yMax });
  const svg = el('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': opts.title || 'chart', class: 'chart', id: opts.id, preserveAspectRatio: 'xMidYMid meet' });
  svg.appendChild(el('title', {}, opts.title || 'chart'));
  const { pad } = sc;
  const axis = el('g', { class: 'axis' });
  for (const v of ticks(sc.y0, sc.y1, 5)) {
    const yy = sc.y(v);
    axis.appendChild(el('line', { x1: pad.left, x2: width - pad.right, y1: yy, y2: yy, class: 'grid-line' }));
    axis.appendChild(el('text', { x: pad.left - 4, y: yy + 4, 'text-anchor': 'end' }, Math.round(v)));
  }
  const times = sc.t1 === sc.t0 ? [sc.t0] : ticks(sc.t0, sc.t1, 4);
  for (const t of times) axis.appendChild(el('text', { x: sc.x(t), y: height - 6, 'text-anchor': 'middle' }, day(t)));
  svg.appendChild(axis);
  sc.series.forEach((s, i) => {
    const colour = PALETTE[i % PALETTE.length];
    const g = el('g', { class: 'series', 'data-series': s.name });
    g.appendChild(el('path', { d: linePath(s.points), fill: 'none', stroke: colour, 'stroke-width': 2, 'data-series': s.name }));
    for (const q of s.points) {
      const c = el('circle', { cx: q.x, cy: q.y, r: 2.5, fill: colour });
      c.appendChild(el('title', {}, `${s.name}: ${Math.round(q.v * 10) / 10} at ${new Date(q.t).toISOString().replace('T', ' ').slice(0, 16)} UTC`));
      g.appendChild(c);
    }
    svg.appendChild(g);
  });
  return svg;
}
