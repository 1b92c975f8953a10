// The console's markdown outline against the cases the runbook splitter is tested with
// (tests/fixtures/markdown/headings.json; the Rust side: src/search/markdown.rs). Runs in
// node (`node --test`), before the browser test: the renderer is run on a minimal DOM so the
// ids it gives are checked too, not only the pure `outline()`.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const cases = JSON.parse(readFileSync(join(root, 'tests', 'fixtures', 'markdown', 'headings.json'), 'utf8'));

// ---- just enough DOM for lib/dom.js's h() and the renderer ---------------------------------
class FakeNode {
  constructor() { this.childNodes = []; this.parentNode = null; }
  appendChild(c) {
    if (c instanceof FakeFragment) { for (const x of [...c.childNodes]) this.appendChild(x); return c; }
    c.parentNode = this;
    this.childNodes.push(c);
    return c;
  }
  replaceChildren(...cs) { this.childNodes = []; for (const c of cs) this.appendChild(typeof c === 'string' ? new FakeText(c) : c); }
  get textContent() { return this.childNodes.map((c) => c.textContent).join(''); }
  set textContent(v) { this.childNodes = [new FakeText(String(v))]; }
}
class FakeText extends FakeNode {
  constructor(t) { super(); this.data = t; }
  get textContent() { return this.data; }
}
class FakeFragment extends FakeNode {}
class FakeElement extends FakeNode {
  constructor(tag) { super(); this.tagName = tag.toUpperCase(); this.attrs = new Map(); this.dataset = {}; this.className = ''; }
  setAttribute(k, v) { this.attrs.set(k, String(v)); }
  getAttribute(k) { return this.attrs.has(k) ? this.attrs.get(k) : null; }
  addEventListener() {}
  get id() { return this.getAttribute('id') || ''; }
  /** Elements below this one, in document order. */
  *walk() { for (const c of this.childNodes) if (c instanceof FakeElement) { yield c; yield* c.walk(); } }
}
globalThis.Node = FakeNode;
globalThis.document = {
  createElement: (t) => new FakeElement(t),
  createTextNode: (t) => new FakeText(t),
  createDocumentFragment: () => new FakeFragment(),
};
globalThis.window = { location: { href: 'http://console.test/', origin: 'http://console.test' } };

const { outline, renderMarkdown, headingId } = await import('../../ui/assets/lib/markdown.js');

const HEADING = /^H[1-6]$/;

for (const c of cases) {
  test(`outline: ${c.name}`, () => {
    const got = outline(c.markdown).map((s) => ({ heading: s.text, level: s.level, anchor: s.anchor }));
    assert.deepEqual(got, c.sections);
  });

  test(`rendered ids: ${c.name}`, () => {
    const doc = renderMarkdown(c.markdown);
    const withId = [...doc.walk()].filter((e) => e.id);
    // Exactly the outline's headings carry ids, in order, at the level the splitter gives.
    assert.deepEqual(withId.map((e) => e.id), c.sections.map((s) => headingId(s.anchor)));
    assert.deepEqual(withId.map((e) => e.tagName), c.sections.map((s) => `H${s.level}`));
  });
}

test('a heading inside a quote is rendered there, without an anchor', () => {
  const doc = renderMarkdown('> ## Quoted\n\n## Quoted');
  const quote = [...doc.walk()].find((e) => e.tagName === 'BLOCKQUOTE');
  const inner = [...quote.walk()].filter((e) => HEADING.test(e.tagName));
  assert.deepEqual(inner.map((e) => [e.tagName, e.id, e.textContent]), [['H2', '', 'Quoted']]);
  assert.deepEqual([...doc.walk()].filter((e) => e.id).map((e) => e.id), ['md-quoted']);
});

test('fenced code keeps its language and its # lines', () => {
  const doc = renderMarkdown('   ~~~~ yaml\n# key: value\n~~~~\n');
  const code = [...doc.walk()].find((e) => e.tagName === 'CODE');
  assert.equal(code.className, 'lang-yaml');
  assert.equal(code.textContent, '# key: value');
});

test('a heading longer than the inline limit keeps its anchor and its text', () => {
  const text = `a${' '.repeat(5000)}b`;
  const doc = renderMarkdown(`# ${text}`);
  const [hd] = [...doc.walk()].filter((e) => HEADING.test(e.tagName));
  assert.equal(hd.id, headingId('a-b'));
  assert.equal(hd.textContent, text);
});
