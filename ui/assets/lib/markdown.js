// A small Markdown renderer that builds DOM nodes directly: every piece of source text ends up
// in a text node, so no input (HTML tags, `<script>`, event attributes) can become markup.
// Raw HTML in the source is shown as text. Links keep only safe schemes (see safeHref).
//
// Blocks: ATX headings (the document's own with ids for in-page links: see `outline`),
// paragraphs, fenced code, block quotes, ordered and unordered lists (nested by indentation,
// task boxes shown), GFM tables, rules.
// Inline: code spans, **strong**, *emphasis*, ~~strike~~, [links](url), <autolinks>, hard breaks.

import { h, safeHref } from './dom.js';

const RULE = /^ {0,3}([-*_])(?: *\1){2,} *$/;
const QUOTE = /^ {0,3}> ?(.*)$/;
const ITEM = /^( *)([-*+]|\d{1,9}[.)]) +(.*)$/;
const TABLE_SEP = /^\|?(?: *:?-+:? *\|)*(?: *:?-+:? *)\|?$/;
/** Lines longer than this are shown as plain text (no block or inline parsing). */
const MAX_LINE = 4000;
/** Deepest nesting of quotes and lists rendered as such. */
const MAX_DEPTH = 12;

// ---- the outline rule, shared with src/search/markdown.rs ---------------------------------
// Headings and fences follow CommonMark; the runbook splitter applies the same rule line by
// line, and both are tested against tests/fixtures/markdown/headings.json. Written as loops,
// not regexes, so that long lines cost linear time.

const isST = (c) => c === ' ' || c === '\t';

/** Leading spaces of `line`, or -1 past three (an indented code line; a tab counts as four). */
function indent(line) {
  let n = 0;
  while (line[n] === ' ') n++;
  return n <= 3 && line[n] !== '\t' ? n : -1;
}

/** Without leading and trailing spaces and tabs (CommonMark's whitespace, not Unicode's). */
function trimST(s) {
  let a = 0;
  let b = s.length;
  while (a < b && isST(s[a])) a++;
  while (b > a && isST(s[b - 1])) b--;
  return s.slice(a, b);
}

/**
 * An ATX heading: 0–3 spaces, 1–6 `#`, then a space, a tab or the end of the line; a closing
 * `#` run is dropped only after a space (`## C#` is "C#", `## Foo ##` is "Foo", `##` is an
 * empty heading). Gives `{level, text}` or null.
 */
export function atxHeading(line) {
  const i = indent(line);
  if (i < 0) return null;
  let n = 0;
  while (n < 7 && line[i + n] === '#') n++;
  if (n < 1 || n > 6) return null;
  if (i + n < line.length && !isST(line[i + n])) return null;
  let text = trimST(line.slice(i + n));
  let end = text.length;
  while (end > 0 && text[end - 1] === '#') end--;
  if (end < text.length) {
    if (end === 0) text = '';
    else if (isST(text[end - 1])) text = trimST(text.slice(0, end));
  }
  return { level: n, text };
}

/**
 * A code fence opener: 0–3 spaces, 3+ backticks or tildes (a backtick fence's info string has
 * no backtick). Gives `{ch, n, info}` or null.
 */
export function fenceOpen(line) {
  const i = indent(line);
  if (i < 0) return null;
  const ch = line[i];
  if (ch !== '`' && ch !== '~') return null;
  let n = 0;
  while (line[i + n] === ch) n++;
  if (n < 3) return null;
  const info = line.slice(i + n);
  if (ch === '`' && info.includes('`')) return null;
  return { ch, n, info: trimST(info) };
}

/** Whether `line` closes `fence`: 0–3 spaces, at least as many of its character, then blanks only. */
export function fenceCloses(line, fence) {
  const i = indent(line);
  if (i < 0) return false;
  let n = 0;
  while (line[i + n] === fence.ch) n++;
  return n >= fence.n && trimST(line.slice(i + n)) === '';
}

/** Source text as lines (CR LF and lone CR as LF). */
function toLines(src) {
  return String(src ?? '').replace(/\r\n?/g, '\n').split('\n');
}

/** The outline of `lines`: each heading outside fences and quotes, with its line index. */
function outlineOf(lines) {
  const out = [];
  const seen = new Map();
  let fence = null;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (fence) {
      if (fenceCloses(line, fence)) fence = null;
      continue;
    }
    fence = fenceOpen(line);
    if (fence) continue;
    const hd = atxHeading(line);
    if (hd) out.push({ level: hd.level, text: hd.text, anchor: slug(hd.text, seen), line: i });
  }
  return out;
}

/**
 * The document's sections as the runbook search splits them: `[{level, text, anchor}]` in
 * order. The rendered document has an element with id `headingId(anchor)` for each of them,
 * and no other heading ids (a heading inside a quote or a list item is rendered without one).
 */
export function outline(src) {
  return outlineOf(toLines(src)).map(({ level, text, anchor }) => ({ level, text, anchor }));
}

function isTableSep(line) {
  const t = line.trim();
  return t.length <= MAX_LINE && t.includes('-') && TABLE_SEP.test(t);
}

/** Render `src` into a new `<div class="md">`. */
export function renderMarkdown(src) {
  const root = h('div', { class: 'md' });
  const lines = toLines(src);
  try {
    // The top level's headings, by line: every block below stops at one of them, so each
    // heading of the outline is rendered as such, with its anchor.
    const heads = new Map(outlineOf(lines).map((x) => [x.line, x]));
    renderBlocks(lines, root, 0, heads);
  } catch (e) {
    // Never let odd input take the page down: show it as text instead.
    console.error('markdown render failed', e);
    root.replaceChildren(h('pre', {}, lines.join('\n')));
  }
  return root;
}

/** The element id of a heading with anchor `slug` (prefixed so it cannot clash with the app's ids). */
export function headingId(anchor) {
  return `md-${anchor}`;
}

/**
 * The anchor a heading's text gets: lowercase letters, digits, white space and dashes kept,
 * white space runs turned into dashes, repeats numbered `-1`, `-2`… Unicode classes as Rust's
 * `char::is_alphanumeric` and `is_whitespace` (src/search/markdown.rs `slug`).
 */
export function slug(text, seen = new Map()) {
  const kept = text.toLowerCase().replace(/[^\p{Alphabetic}\p{N}\p{White_Space}-]/gu, '');
  const base = kept.split(/\p{White_Space}+/u).filter(Boolean).join('-') || 'section';
  const n = seen.get(base) || 0;
  seen.set(base, n + 1);
  return n ? `${base}-${n}` : base;
}

function isBlank(l) {
  return l.trim() === '';
}

function isTableStart(line, next) {
  return next !== undefined && line.includes('|') && isTableSep(next) &&
    (line.trim().startsWith('|') || next.includes('|'));
}

function startsBlock(line, next) {
  if (line.length > MAX_LINE) return false;
  return fenceOpen(line) !== null || atxHeading(line) !== null || RULE.test(line) || QUOTE.test(line) ||
    ITEM.test(line) || isTableStart(line, next);
}

/** A heading element; with `anchor` (a heading of the outline) it gets its id. */
function headingEl(level, text, anchor) {
  const el = h(`h${level}`, anchor !== undefined ? { id: headingId(anchor) } : {});
  if (text.length > MAX_LINE) el.textContent = text;
  else inline(text, el);
  return el;
}

/**
 * Render `lines` as blocks into `parent`. `heads` (the top level only) maps the line index
 * of each outline heading to it: no block runs across one of those lines.
 */
function renderBlocks(lines, parent, depth, heads = null) {
  const isHead = (k) => heads !== null && heads.has(k);
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (isHead(i)) {
      const x = heads.get(i);
      parent.appendChild(headingEl(x.level, x.text, x.anchor));
      i++;
      continue;
    }
    if (isBlank(line)) { i++; continue; }
    if (line.length > MAX_LINE || depth > MAX_DEPTH) {
      // Too long or too deep to parse safely: the rest of this block as text.
      const block = [];
      while (i < lines.length && !isBlank(lines[i]) && !isHead(i)) block.push(lines[i++]);
      parent.appendChild(h('p', {}, block.join('\n')));
      continue;
    }

    const fence = fenceOpen(line);
    if (fence) {
      const lang = fence.info.match(/^[\w+-]*/)[0];
      const body = [];
      i++;
      while (i < lines.length && !fenceCloses(lines[i], fence) && !isHead(i)) body.push(lines[i++]);
      if (i < lines.length && !isHead(i)) i++; // the closing fence
      const code = h('code', lang ? { class: `lang-${lang}` } : {}, body.join('\n'));
      parent.appendChild(h('pre', {}, code));
      continue;
    }
    const hd = atxHeading(line);
    if (hd) {
      // Inside a quote or a list item: not a section of the document, so no anchor.
      parent.appendChild(headingEl(hd.level, hd.text));
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
      while (i < lines.length && !isBlank(lines[i]) && !isHead(i)) {
        const q = lines[i].match(QUOTE);
        body.push(q ? q[1] : lines[i]);
        i++;
      }
      const bq = h('blockquote');
      renderBlocks(body, bq, depth + 1);
      parent.appendChild(bq);
      continue;
    }
    if (ITEM.test(line)) {
      const block = [];
      while (i < lines.length && !isHead(i)) {
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
      parent.appendChild(renderList(block, depth + 1));
      continue;
    }
    if (isTableStart(line, lines[i + 1])) {
      const head = cells(line);
      const aligns = cells(lines[i + 1]).map((c) =>
        c.startsWith(':') && c.endsWith(':') ? 'center' : c.endsWith(':') ? 'right' : c.startsWith(':') ? 'left' : null);
      i += 2;
      const rows = [];
      while (i < lines.length && !isBlank(lines[i]) && !isHead(i) && lines[i].includes('|')) rows.push(cells(lines[i++]));
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
    while (i < lines.length && !isBlank(lines[i]) && !isHead(i) && !startsBlock(lines[i], lines[i + 1])) para.push(lines[i++]);
    const p = h('p');
    para.forEach((l, k) => {
      const hard = l.endsWith('  ') || l.endsWith('\\');
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
function renderList(lines, depth) {
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
    const restStart = rest.findIndex((l) => ITEM.test(l) || fenceOpen(l) !== null);
    const lead = restStart === -1 ? rest : rest.slice(0, restStart);
    const span = h('span');
    inline([text, ...lead.filter((l) => !isBlank(l)).map((l) => l.trim())].join(' '), span);
    li.appendChild(span);
    if (restStart !== -1) renderBlocks(rest.slice(restStart), li, depth);
    return li;
  });
  items.forEach((li) => list.appendChild(li));
  return list;
}

/** Inline spans of `text` appended to `el` (no links inside links). */
function inline(text, el, inLink = false) {
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
    if (!inLink && c === '[' && (m = rest.match(/^\[([^\]]*)\]\(\s*([^\s)]+)(?:\s+"([^"]*)")?\s*\)/))) {
      flush();
      const href = m[2];
      if (safeHref(href)) {
        const a = h('a', { href, title: m[3] || undefined, rel: 'noopener noreferrer' });
        if (/^https?:/i.test(href)) a.setAttribute('target', '_blank');
        if (href.startsWith('#') && !href.startsWith('#/')) {
          // In-document link: scroll to the heading instead of changing the route.
          const target = href.slice(1);
          a.addEventListener('click', (e) => {
            e.preventDefault();
            const el = document.getElementById(headingId(target));
            if (el) el.scrollIntoView({ block: 'start' });
          });
        }
        inline(m[1], a, true);
        el.appendChild(a);
      } else {
        inline(m[1], el);
      }
      i += m[0].length;
      continue;
    }
    if (!inLink && c === '<' && (m = rest.match(/^<(https?:\/\/[^\s<>]+)>/))) {
      flush();
      el.appendChild(h('a', { href: m[1], rel: 'noopener noreferrer', target: '_blank' }, m[1]));
      i += m[0].length;
      continue;
    }
    if ((m = rest.match(/^(\*\*|__)(?=\S)([\s\S]*?\S)\1/))) {
      flush();
      const s = h('strong');
      inline(m[2], s, inLink);
      el.appendChild(s);
      i += m[0].length;
      continue;
    }
    if ((m = rest.match(/^~~(?=\S)([\s\S]*?\S)~~/))) {
      flush();
      const s = h('del');
      inline(m[1], s, inLink);
      el.appendChild(s);
      i += m[0].length;
      continue;
    }
    const prevWord = i > 0 && /[\p{L}\p{N}]/u.test(text[i - 1]);
    if ((c === '*' || (c === '_' && !prevWord)) && (m = rest.match(c === '*' ? /^\*(?=\S)([^*]*?\S)\*/ : /^_(?=\S)([^_]*?\S)_(?![\p{L}\p{N}])/u))) {
      flush();
      const s = h('em');
      inline(m[1], s, inLink);
      el.appendChild(s);
      i += m[0].length;
      continue;
    }
    buf += c;
    i++;
  }
  flush();
}
