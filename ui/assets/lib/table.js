// Dense tables, the way every list of the console shows data: a header, rows, a calm empty
// state, rows that open their own page, and lists paged on the server by cursor (so they stay
// fast at 100k items), refreshed live without losing the operator's place. On a narrow screen
// each row is a card (app.css), its cells labelled with their column's header (`data-label`).

import { errorBox, h, mount } from './dom.js';

/**
 * A table in its frame. `columns`: header cells, each a string or `{label, num}` (`num`:
 * right-aligned, for numbers), or null for a table without a header. `rows`: `<tr>`s.
 * `attrs`: the table's attributes (`id`; `class` defaults to `grid`). `wrap: false` leaves
 * out the frame (a table inside a panel). Body cells get their column's label (`labelCells`).
 */
export function table(columns, rows, attrs = {}, { wrap = true } = {}) {
  const head = columns
    ? h('thead', {}, h('tr', {}, columns.map((c) => (typeof c === 'string' || c == null
      ? h('th', {}, c ?? '')
      : h('th', { class: c.num ? 'num' : undefined }, c.label ?? '')))))
    : null;
  const el = labelCells(h('table', { class: 'grid', ...attrs }, head, h('tbody', {}, rows)));
  return wrap ? h('div', { class: 'table-wrap' }, el) : el;
}

/**
 * Give each body cell of `tableEl` the text of its column's header as `data-label`, which a
 * narrow screen shows beside the value when it stacks the row into a card. Cells that have
 * one already, span columns, or whose header is empty are left alone; a table without a
 * header is unchanged. Tables built by hand call it again after adding rows (`rows`: only
 * those, e.g. a fragment's children about to be appended; default: every body row).
 * Returns `tableEl`.
 */
export function labelCells(tableEl, rows = tableEl.querySelectorAll(':scope > tbody > tr')) {
  const labels = [...tableEl.querySelectorAll(':scope > thead > tr:first-child > th')].map((th) => th.textContent.trim());
  if (!labels.some(Boolean)) return tableEl;
  // Roles as well, so a screen reader keeps the table when a narrow screen draws its rows as
  // cards (`display: block` drops the implicit ones in some browsers).
  tableEl.setAttribute('role', 'table');
  for (const th of tableEl.querySelectorAll(':scope > thead > tr > th')) th.setAttribute('role', 'columnheader');
  for (const tr of tableEl.querySelectorAll(':scope > thead > tr')) tr.setAttribute('role', 'row');
  for (const tr of rows) {
    tr.setAttribute('role', 'row');
    let col = 0;
    for (const cell of tr.children) {
      const span = cell.colSpan || 1;
      if (!cell.hasAttribute('role')) cell.setAttribute('role', 'cell');
      if (span === 1 && labels[col] && !cell.hasAttribute('data-label')) cell.dataset.label = labels[col];
      col += span;
    }
  }
  return tableEl;
}

/** What a table shows when there is nothing to list: one line, in the table's frame. */
export function emptyTable(text) {
  return h('div', { class: 'table-wrap' }, h('div', { class: 'empty' }, text));
}

/**
 * A row that opens `href` when clicked anywhere but on a link or a button inside it (those do
 * their own thing). `attrs` are the row's (its `data-*`); `cells` its `<td>`s.
 */
export function linkRow(href, navigate, attrs, ...cells) {
  return h('tr', {
    ...attrs,
    class: attrs && attrs.class ? `clickable ${attrs.class}` : 'clickable',
    'data-href': href,
    onclick: (e) => { if (!e.target.closest('a,button')) navigate(href); },
  }, cells);
}

/**
 * A list's URL: `route` with `params` (those with an empty value left out) and, past the first
 * page, the page's `cursor` and number from `at`.
 */
export function listHash(route, params, at = {}) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) p.set(k, v);
  if (at.cursor) {
    p.set('cursor', at.cursor);
    if (at.page) p.set('page', at.page);
  }
  const s = p.toString();
  return `${route}${s ? `?${s}` : ''}`;
}

/**
 * The page of a `cursorList` kept in the URL: the cursor and page number in the hash (from
 * `hashFor({cursor, page})`), the cursors before it in the history entry under `key` (so
 * "Previous" still works after a reload). Spread into `cursorList`'s options; `then(at)` is
 * also told of every move.
 */
export function pageInUrl(key, query, hashFor, then = () => {}) {
  const saved = history.state && history.state[key];
  const cursor = query.get('cursor');
  const route = (hash) => hash.split('?')[0];
  const mine = saved && saved.cursor === cursor;
  return {
    start: cursor
      ? { cursor, cursors: mine ? saved.cursors : null, offset: mine ? saved.offset : 0, page: query.get('page') }
      : null,
    onPage: (at) => {
      const hash = hashFor(at);
      // A move that lands after the view was left (a late filter or reply) keeps off the URL.
      if (route(window.location.hash) !== route(hash)) return;
      then(at);
      history.replaceState({ [key]: { cursor: at.cursor, cursors: at.cursors, offset: at.offset } }, '', hash);
    },
  };
}

/**
 * A list paged on the server by cursor. `opts`:
 * - `fetchPage(cursor)` → `{items, next_cursor}` (cursor null for the first page);
 * - `render(items, {first, page})` → what to show for a page (a `table()`, or an
 *   `emptyTable()` when `items` is empty);
 * - `what`: the items' name in messages (`runs` → "Could not load runs", "Runs changed…");
 * - `pager`: `{prev, next}`, the ids of the Previous/Next buttons (no pager without it);
 * - `note(page)`: an optional notice for a page (e.g. "partial"), or null;
 * - `start`: `{cursor, cursors, offset, page}` to open at a page other than the first (a
 *   reload); without `cursors` (a pasted link) "Previous" goes to the first page and `page` is
 *   the number shown (`offset`: how far that page number was ahead of the cursors kept);
 * - `onPage({cursor, cursors, offset, page})`: told where the list is after each move (to
 *   keep it in the URL).
 *
 * `fetchPage` gets a second argument `{current, progress}`: `current()` is false once a newer
 * load has started (a long fetch stops), `progress(node)` shows a notice while it works.
 *
 * Returns `{el, load, reset, changed}`: `load()` reloads the page shown, `reset()` goes to the
 * first page, `changed()` (for live updates) reloads the first page, or on a later page says
 * that the list changed, with a link back to the first (the operator keeps their place).
 */
export function cursorList(opts) {
  // Cursors of the pages before the current one (for "Previous"), and the current one's.
  let cursors = (opts.start && opts.start.cursors) || [];
  let cursor = (opts.start && opts.start.cursor) || null;
  // A page opened from a link without the cursors before it: its number, and "Previous"
  // leads to the first page.
  let offset = (opts.start && Number.isSafeInteger(opts.start.offset) && opts.start.offset) || 0;
  if (cursor && !cursors.length) {
    cursors = [null];
    const page = Math.trunc(Number(opts.start && opts.start.page));
    offset = Number.isSafeInteger(page) && page > 2 && page < 1e6 ? page - 2 : 0;
  }
  let next = null;
  let seq = 0;
  const notice = h('div');
  const body = h('div', { class: opts.class });
  const pager = opts.pager ? h('div', { class: 'pager' }) : null;
  const el = h('div', {}, notice, body, pager);
  const capital = opts.what.charAt(0).toUpperCase() + opts.what.slice(1);

  async function load() {
    const my = ++seq;
    body.setAttribute('aria-busy', 'true');
    showPager(true);
    try {
      const page = await opts.fetchPage(cursor, {
        current: () => my === seq,
        progress: (node) => { if (my === seq) mount(notice, node); },
      });
      if (my !== seq) return;
      next = (page && page.next_cursor) || null;
      mount(notice, opts.note ? opts.note(page) : null);
      mount(body, opts.render((page && page.items) || [], { first: !cursors.length, page }));
    } catch (e) {
      if (my !== seq) return;
      next = null;
      if (e.code === 'invalid_cursor' && cursor !== null) {
        // A page link this server did not make (edited, or from another order): the first
        // page, saying so, rather than a Retry that cannot succeed.
        await reset();
        if (my + 1 === seq) mount(notice, h('div', { class: 'notice', id: 'bad-page-link' }, 'That page link is not valid here; this is the first page.'), notice.firstChild);
        return;
      }
      mount(notice, errorBox(e, `Could not load ${opts.what}`, load));
      mount(body);
    } finally {
      if (my === seq) {
        body.removeAttribute('aria-busy');
        showPager();
      }
    }
  }

  function moved() {
    if (cursor === null) offset = 0;
    if (opts.onPage) opts.onPage({ cursor, cursors: [...cursors], offset, page: cursor === null ? 1 : cursors.length + 1 + offset });
    return load();
  }

  function showPager(busy = false) {
    if (!pager) return;
    mount(pager,
      h('button', { type: 'button', id: opts.pager.prev, disabled: busy || !cursors.length, onclick: () => { cursor = cursors.pop() ?? null; moved(); } }, '← Previous'),
      h('span', { class: 'muted', id: opts.pager.label }, `page ${cursor === null ? 1 : cursors.length + 1 + offset}`),
      h('button', { type: 'button', id: opts.pager.next, disabled: busy || !next, onclick: () => { cursors.push(cursor); cursor = next; moved(); } }, 'Next →'));
  }

  function reset() {
    cursors = [];
    cursor = null;
    return moved();
  }

  function changed() {
    if (!cursors.length) return load();
    mount(notice, h('div', { class: 'notice' }, `${capital} changed since this page loaded. `,
      h('a', { href: opts.backHref ? opts.backHref() : '#', onclick: (e) => { e.preventDefault(); reset(); } }, 'Back to the first page')));
    return null;
  }

  return { el, load, reset, changed };
}
