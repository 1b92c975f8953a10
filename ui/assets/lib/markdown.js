// A small Markdown renderer that builds DOM nodes directly: every piece of source text ends up
// in a text node, so no input (HTML tags, `<script>`, event attributes) can become markup.
// Raw HTML in the source is shown as text. Links keep only safe schemes (see safeHref).
//
// Blocks: ATX headings (with ids for in-page links), paragraphs, fenced code, block quotes,
// ordered and unordered lists (nested by indentation, task boxes shown), GFM tables, rules.
// Inline: code spans, **strong**, *emphasis*, ~~strike~~, [links](url), <autolinks>, hard breaks.

import { h, safeHref } from './dom.js';

const FENCE = /^\s{0,3}(`{3,}|~{3,})\s*([\w+-]*)/;
const HEADING = /^\s{0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$/;
const RULE = /^\s{0,3}([-*_])(?:\s*\1){2,}\s*$/;
const QUOTE = /^\s{0,3}>\s?(.*)$/;
const ITEM = /^(\s*)([-*+]|\d{1,9}[.)])\s+(.*)$/;
const TABLE_SEP = /^\s*\|?\s*:?-{1,}:?\s*(\|\s*:?-{1,}:?\s*)*\|?\s*$/;

/** Render `src` into a new `<div class="md">`. */
export function renderMarkdown(src) {
  const root = h('div', { class: 'md' });
  const slugs = new Map();
  renderBlocks(String(src ?? '').replace(/\r\n?/g, '\n').split('\n'), root, slugs);
  return root;
}

/** The id a heading's text gets (lowercase words joined by dashes), unique per document. */
export function slug(text, seen = new Map()) {
  const base = text.toLowerCase().replace(/[^\p{L}\p{N}\s-]/gu, '').trim().replace(/\s+/g, '-') || 'section';
  const n = seen.get(base) || 0;
  seen.set(base, n + 1);
  return n ? `${base}-${n}` : base;
}

function isBlank(l) {
  return l.trim() === '';
}

function startsBlock(line, next) {
  return FENCE.test(line) || HEADING.test(line) || RULE.test(line) || QUOTE.test(line) ||
    ITEM.test(line) || (line.includes('|') && next !== undefined && TABLE_SEP.test(next));
}

function renderBlocks(lines, parent, slugs) {
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (isBlank(line)) { i++; continue; }

    let m = line.match(FENCE);
    if (m) {
      const fence = m[1];
      const lang = m[2];
      const body = [];
      i++;
      while (i < lines.length && !lines[i].trim().startsWith(fence)) body.push(lines[i++]);
      i++; // the closing fence (or the end)
      const code = h('code', lang ? { class: `lang-${lang}` } : {}, body.join('\n'));
      parent.appendChild(h('pre', {}, code));
      continue;
    }
    m = line.match(HEADING);
    if (m) {
      const text = m[2];
      const el = h(`h${m[1].length}`, { id: slug(text, slugs) });
      inline(text, el);
      parent.appendChild(el);
      i++;
      continue;
    }
    if (RULE.test(line)) {
      parent.appendChild(h('hr'));
      i++;
      continue;
    }
    if (QUOTE.test(line)) {
      const body = [];
      while (i < lines.length && !isBlank(lines[i])) {
        const q = lines[i].match(QUOTE);
        body.push(q ? q[1] : lines[i]);
        i++;
      }
      const bq = h('blockquote');
      renderBlocks(body, bq, slugs);
      parent.appendChild(bq);
      continue;
    }
    if (ITEM.test(line)) {
      const block = [];
      while (i < lines.length) {
        const l = lines[i];
        if (isBlank(l)) {
          // A blank line ends the list unless the list goes on after it.
          const next = lines[i + 1];
          if (next !== undefined && (ITEM.test(next) || /^\s{2,}\S/.test(next))) { block.push(''); i++; continue; }
          break;
        }
        if (!ITEM.test(l) && !/^\s/.test(l) && block.length && startsBlock(l, lines[i + 1])) break;
        block.push(l);
        i++;
      }
      parent.appendChild(renderList(block, slugs));
      continue;
    }
    if (line.includes('|') && i + 1 < lines.length && TABLE_SEP.test(lines[i + 1])) {
      const head = cells(line);
      const aligns = cells(lines[i + 1]).map((c) =>
        c.startsWith(':') && c.endsWith(':') ? 'center' : c.endsWith(':') ? 'right' : c.startsWith(':') ? 'left' : null);
      i += 2;
      const rows = [];
      while (i < lines.length && !isBlank(lines[i]) && lines[i].includes('|')) rows.push(cells(lines[i++]));
      const th = head.map((c, k) => { const el = h('th', aligns[k] ? { align: aligns[k] } : {}); inline(c, el); return el; });
      const trs = rows.map((r) => h('tr', {}, head.map((_, k) => {
        const el = h('td', aligns[k] ? { align: aligns[k] } : {});
        inline(r[k] ?? '', el);
        return el;
      })));
      parent.appendChild(h('table', {}, h('thead', {}, h('tr', {}, th)), h('tbody', {}, trs)));
      continue;
    }
    // Paragraph: until a blank line or the start of another block.
    const para = [line];
    i++;
    while (i < lines.length && !isBlank(lines[i]) && !startsBlock(lines[i], lines[i + 1])) para.push(lines[i++]);
    const p = h('p');
    para.forEach((l, k) => {
      const hard = / {2,}$/.test(l) || l.endsWith('\\');
      inline(l.replace(/\\$/, '').trimEnd(), p);
      if (k < para.length - 1) p.appendChild(hard ? h('br') : document.createTextNode(' '));
    });
    parent.appendChild(p);
  }
}

function cells(row) {
  let r = row.trim();
  if (r.startsWith('|')) r = r.slice(1);
  if (r.endsWith('|') && !r.endsWith('\\|')) r = r.slice(0, -1);
  const out = [];
  let cur = '';
  for (let k = 0; k < r.length; k++) {
    if (r[k] === '\\' && r[k + 1] === '|') { cur += '|'; k++; continue; }
    if (r[k] === '|') { out.push(cur.trim()); cur = ''; continue; }
    cur += r[k];
  }
  out.push(cur.trim());
  return out;
}

/** A list block: items at the first item's indentation; deeper lines belong to the item. */
function renderList(lines, slugs) {
  const first = lines[0].match(ITEM);
  const indent = first[1].length;
  const ordered = /\d/.test(first[2]);
  const list = h(ordered ? 'ol' : 'ul');
  if (ordered) {
    const start = parseInt(first[2], 10);
    if (start !== 1) list.setAttribute('start', String(start));
  }
  let items = [];
  for (const l of lines) {
    const m = l.match(ITEM);
    if (m && m[1].length <= indent) items.push([m[3]]);
    else if (items.length) items[items.length - 1].push(l.slice(Math.min(indent + 2, l.length - l.trimStart().length)));
  }
  items = items.map((body) => {
    const li = h('li');
    let text = body[0];
    const task = text.match(/^\[([ xX])\]\s+(.*)$/);
    if (task) {
      li.appendChild(h('input', { type: 'checkbox', disabled: true, checked: task[1] !== ' ' }));
      li.appendChild(document.createTextNode(' '));
      text = task[2];
    }
    const rest = body.slice(1);
    const restStart = rest.findIndex((l) => ITEM.test(l) || FENCE.test(l));
    const lead = restStart === -1 ? rest : rest.slice(0, restStart);
    const span = h('span');
    inline([text, ...lead.filter((l) => !isBlank(l)).map((l) => l.trim())].join(' '), span);
    li.appendChild(span);
    if (restStart !== -1) renderBlocks(rest.slice(restStart), li, slugs);
    return li;
  });
  items.forEach((li) => list.appendChild(li));
  return list;
}

/** Inline spans of `text` appended to `el`. */
function inline(text, el) {
  let i = 0;
  let buf = '';
  const flush = () => {
    if (buf) el.appendChild(document.createTextNode(buf));
    buf = '';
  };
  while (i < text.length) {
    const c = text[i];
    const rest = text.slice(i);
    if (c === '\\' && i + 1 < text.length && /[\\`*_{}[\]()#+\-.!|~<>]/.test(text[i + 1])) {
      buf += text[i + 1];
      i += 2;
      continue;
    }
    if (c === '`') {
      const ticks = rest.match(/^`+/)[0];
      const end = text.indexOf(ticks, i + ticks.length);
      if (end !== -1) {
        flush();
        el.appendChild(h('code', {}, text.slice(i + ticks.length, end).replace(/^ (.*) $/, '$1')));
        i = end + ticks.length;
        continue;
      }
    }
    let m;
    if (c === '[' && (m = rest.match(/^\[([^\]]*)\]\(\s*([^\s)]+)(?:\s+"([^"]*)")?\s*\)/))) {
      flush();
      const href = m[2];
      if (safeHref(href)) {
        const a = h('a', { href, title: m[3] || undefined, rel: 'noopener noreferrer' });
        if (/^https?:/i.test(href)) a.setAttribute('target', '_blank');
        inline(m[1], a);
        el.appendChild(a);
      } else {
        inline(m[1], el);
      }
      i += m[0].length;
      continue;
    }
    if (c === '<' && (m = rest.match(/^<(https?:\/\/[^\s<>]+)>/))) {
      flush();
      el.appendChild(h('a', { href: m[1], rel: 'noopener noreferrer', target: '_blank' }, m[1]));
      i += m[0].length;
      continue;
    }
    if ((m = rest.match(/^(\*\*|__)(?=\S)([\s\S]*?\S)\1/))) {
      flush();
      const s = h('strong');
      inline(m[2], s);
      el.appendChild(s);
      i += m[0].length;
      continue;
    }
    if ((m = rest.match(/^~~(?=\S)([\s\S]*?\S)~~/))) {
      flush();
      const s = h('del');
      inline(m[1], s);
      el.appendChild(s);
      i += m[0].length;
      continue;
    }
    const prevWord = i > 0 && /[\p{L}\p{N}]/u.test(text[i - 1]);
    if ((c === '*' || (c === '_' && !prevWord)) && (m = rest.match(c === '*' ? /^\*(?=\S)([^*]*?\S)\*/ : /^_(?=\S)([^_]*?\S)_(?![\p{L}\p{N}])/u))) {
      flush();
      const s = h('em');
      inline(m[1], s);
      el.appendChild(s);
      i += m[0].length;
      continue;
    }
    buf += c;
    i++;
  }
  flush();
}
