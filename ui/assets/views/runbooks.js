// Runbooks: search as you type (ranked sections with highlighted snippets, service and tag
// filters), and a runbook rendered with the matching section scrolled into view.

import { api } from '../lib/api.js';
import { debounce, TYPING_MS, errorBox, h, loading, mount } from '../lib/dom.js';
import { headingId, renderMarkdown } from '../lib/markdown.js';
import { linkRow, table } from '../lib/table.js';

const enc = (path) => path.split('/').map(encodeURIComponent).join('/');

export function render(view, ctx) {
  if (ctx.parts.length > 1) return renderRunbook(view, ctx, ctx.parts.slice(1).join('/'));
  const state = {
    q: ctx.query.get('q') || '',
    service: ctx.query.get('service') || '',
    tag: ctx.query.get('tag') || '',
  };
  let seq = 0;
  let retry = null;
  const input = h('input', {
    type: 'search', id: 'rb-q', size: 48, value: state.q, 'data-search': '', autocomplete: 'off',
    placeholder: 'What is going on? e.g. restore from backup, disk full, rotate key  ( / )',
    'aria-label': 'Search runbooks',
    oninput: debounce((e) => { state.q = e.target.value; changed(); }, TYPING_MS),
  });
  const service = h('select', { id: 'rb-service', 'aria-label': 'Service', onchange: (e) => { state.service = e.target.value; changed(); } },
    h('option', { value: '' }, 'any service'));
  const tag = h('select', { id: 'rb-tag', 'aria-label': 'Tag', onchange: (e) => { state.tag = e.target.value; changed(); } },
    h('option', { value: '' }, 'any tag'));
  const info = h('div', { class: 'muted', id: 'rb-info' });
  const results = h('div', { id: 'rb-results' });
  mount(view, h('h1', {}, 'Runbooks'),
    h('div', { class: 'filters' }, input, service, tag, info),
    results);

  function hashFor() {
    const p = new URLSearchParams();
    if (state.q.trim()) p.set('q', state.q);
    if (state.service) p.set('service', state.service);
    if (state.tag) p.set('tag', state.tag);
    const s = p.toString();
    return `#/runbooks${s ? `?${s}` : ''}`;
  }

  function changed() {
    history.replaceState(null, '', hashFor());
    run();
  }

  async function loadList() {
    try {
      const list = await api('/api/runbooks');
      const services = new Set();
      const tags = new Set();
      for (const r of list.items) {
        r.services.forEach((s) => services.add(s));
        r.tags.forEach((t) => tags.add(t));
      }
      for (const s of [...services].sort()) service.appendChild(h('option', { value: s }, s));
      for (const t of [...tags].sort()) tag.appendChild(h('option', { value: t }, t));
      service.value = state.service;
      tag.value = state.tag;
      return list;
    } catch (e) {
      mount(results, errorBox(e, 'Could not list runbooks'));
      return null;
    }
  }

  function showList(list) {
    info.textContent = `${list.items.length} runbooks`;
    mount(results, table(['Runbook', 'Services', 'Tags', { label: 'Sections', num: true }], list.items
      .filter((r) => (!state.service || r.services.includes(state.service)) && (!state.tag || r.tags.includes(state.tag)))
      .map((r) => {
        const href = `#/runbooks/${enc(r.path)}`;
        return linkRow(href, ctx.navigate, {},
          h('td', {}, h('a', { href }, r.title), h('div', { class: 'muted mono' }, r.path)),
          h('td', {}, r.services.map((s) => h('span', { class: 'tag' }, s))),
          h('td', {}, r.tags.map((t) => h('span', { class: 'tag' }, t))),
          h('td', { class: 'num' }, r.sections));
      }), { id: 'rb-list' }));
  }

  let listCache = null;
  async function run() {
    clearTimeout(retry);
    const my = ++seq;
    if (!state.q.trim() && !state.service && !state.tag) {
      if (listCache) showList(listCache);
      return;
    }
    if (!state.q.trim()) {
      if (listCache) showList(listCache);
      return;
    }
    try {
      const r = await api('/api/runbooks/search', { query: { q: state.q, service: state.service, tag: state.tag, limit: 20 } });
      if (my !== seq) return;
      info.textContent = `${r.total} sections · ${r.took_ms.toFixed(1)} ms`;
      showHits(r.items);
    } catch (e) {
      if (my !== seq) return;
      if (e.status === 503) {
        mount(results, h('div', { class: 'notice' }, 'The runbook index is being built; searching again in a moment…'));
        retry = setTimeout(run, 1000);
        return;
      }
      mount(results, errorBox(e, 'Search failed', run));
    }
  }

  function showHits(items) {
    if (!items.length) {
      mount(results, h('div', { class: 'empty' }, 'No runbook section matches. Try fewer or other words.'));
      return;
    }
    mount(results, h('ol', { class: 'hits', id: 'rb-hits' }, items.map((hit) => {
      const p = new URLSearchParams();
      if (hit.anchor) p.set('s', hit.anchor);
      if (state.q.trim()) p.set('q', state.q);
      const href = `#/runbooks/${enc(hit.path)}?${p}`;
      return h('li', { class: 'hit', 'data-path': hit.path, 'data-anchor': hit.anchor },
        h('a', { href, class: 'hit-title' }, hit.heading || hit.title),
        h('div', { class: 'muted' }, hit.heading_path, ' · ', h('span', { class: 'mono' }, hit.path),
          hit.tags.length ? [' · ', hit.tags.map((t) => h('span', { class: 'tag' }, t))] : null),
        h('div', { class: 'snippet' }, hit.snippet.map((part) => (part.hl ? h('mark', {}, part.text) : part.text))));
    })));
  }

  loadList().then((list) => {
    listCache = list;
    run();
  });
  return () => clearTimeout(retry);
}

function renderRunbook(view, ctx, path) {
  const anchor = ctx.query.get('s') || '';
  const q = ctx.query.get('q') || '';
  const back = `#/runbooks${q ? `?q=${encodeURIComponent(q)}` : ''}`;
  loading(view);
  (async () => {
    try {
      const rb = await api(`/api/runbooks/${enc(path)}`);
      document.title = `${rb.title} · sofiia`;
      const doc = renderMarkdown(rb.markdown);
      const toc = h('nav', { class: 'toc', 'aria-label': 'Sections' }, h('h3', {}, 'Sections'),
        h('ul', {}, rb.sections.filter((s) => s.level <= 3).map((s) => h('li', { class: `lvl-${s.level}` },
          h('a', {
            href: `#/runbooks/${enc(path)}?s=${encodeURIComponent(s.anchor)}${q ? `&q=${encodeURIComponent(q)}` : ''}`,
            onclick: (e) => { e.preventDefault(); focusSection(s.anchor, true); },
          }, s.heading)))));
      mount(view,
        h('p', { class: 'muted detail-crumbs' }, h('a', { href: back }, '← Runbooks'), ' / ', h('span', { class: 'mono' }, rb.path)),
        h('div', { class: 'row' }, h('h1', {}, rb.title),
          rb.services.map((s) => h('span', { class: 'tag' }, s)), rb.tags.map((t) => h('span', { class: 'tag' }, t))),
        h('div', { class: 'runbook-cols' }, h('article', { class: 'panel', id: 'runbook-body' }, doc), toc));
      if (anchor) focusSection(anchor, false);
    } catch (e) {
      mount(view, errorBox(e, `Could not open ${path}`), h('p', {}, h('a', { href: back }, '← Runbooks')));
    }
  })();

  function focusSection(a, updateUrl) {
    const el = document.getElementById(headingId(a));
    if (!el) return;
    document.querySelectorAll('.md .target').forEach((x) => x.classList.remove('target'));
    el.classList.add('target');
    el.scrollIntoView({ block: 'start' });
    if (updateUrl) {
      history.replaceState(null, '', `#/runbooks/${enc(path)}?s=${encodeURIComponent(a)}${q ? `&q=${encodeURIComponent(q)}` : ''}`);
    }
  }
}
