// End-to-end test of the sofiia console in a real headless Chromium.
//
// Starts the release binary (SOFIIA_BIN, default target/release/sofiia) on a temporary data
// dir with an operator key and port 0, then drives the console like an operator would. Saves
// screenshots to tests/browser/screenshots/ (or SCREENSHOT_DIR). Exits non-zero on the first
// failed step. Run: `cargo build --release && (cd tests/browser && npm ci && npm test)`.

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, existsSync, rmSync, cpSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..', '..');
const bin = process.env.SOFIIA_BIN || join(root, 'target', 'release', 'sofiia');
const shots = process.env.SCREENSHOT_DIR || join(here, 'screenshots');
const chromePath = process.env.CHROMIUM || '/usr/bin/chromium';
const KEY = 'e2e-operator-key-' + Math.random().toString(16).slice(2);

if (!existsSync(bin)) {
  console.error(`no sofiia binary at ${bin}: run \`cargo build --release\` first (or set SOFIIA_BIN)`);
  process.exit(2);
}
mkdirSync(shots, { recursive: true });

// ---- the server -------------------------------------------------------------------------
const dataDir = mkdtempSync(join(tmpdir(), 'sofiia-e2e-'));
let server = null;
let serverExited = false;

// Observability sources that never answer: a loopback port that accepts connections and stays
// silent. Only env `dev` uses them (staging and prod have no sources, so triage reports them
// as not configured). A triage run in `dev` therefore stays running inside its first source
// call until the tool's timeout, which gives the cancel step a run that is certainly active.
const blackHole = createServer((sock) => { sock.on('error', () => {}); sock.unref(); });
await new Promise((r) => blackHole.listen(0, '127.0.0.1', r));
blackHole.unref();
const holeUrl = `http://127.0.0.1:${blackHole.address().port}`;
const configDir = join(dataDir, 'config');
cpSync(join(root, 'config'), configDir, { recursive: true });
writeFileSync(join(configDir, 'observability_sources.yml'), [
  '# e2e: env dev points at a port that never answers (see e2e.mjs)',
  'envs:',
  '  dev:',
  `    prometheus: {url: "${holeUrl}"}`,
  `    logs: {loki: "${holeUrl}"}`,
  `    traces: {url: "${holeUrl}", api: jaeger}`,
  '',
].join('\n'));

/** A free loopback port (so the server can be restarted on the same address). */
function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => res(port)); });
    s.on('error', rej);
  });
}

function startServer(port) {
  serverExited = false;
  server = spawn(bin, ['serve'], {
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      DATA_DIR: dataDir,
      CONFIG_DIR: configDir,
      SOFIIA_CONSOLE_API_KEY: KEY,
      ENV: 'staging',
      BUILD_ID: 'e2e',
      RUST_LOG: 'warn',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  server.on('exit', (code) => { serverExited = true; if (code) console.error(`sofiia exited with ${code}`); });
}

async function stopServer() {
  if (!server || serverExited) return;
  const done = new Promise((r) => server.on('exit', r));
  server.kill('SIGTERM');
  await done;
}

async function waitHealthy(url) {
  for (let i = 0; i < 200; i++) {
    if (serverExited) throw new Error('sofiia exited before it was ready');
    try {
      const r = await fetch(`${url}/healthz`);
      if (r.ok) return url;
    } catch { /* not ready yet */ }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('sofiia did not become healthy within 10 s');
}

/** A second client: plain HTTP with the operator key. */
async function http(base, path, opts = {}) {
  const res = await fetch(base + path, {
    method: opts.method || 'GET',
    headers: { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json' },
    body: opts.body ? JSON.stringify(opts.body) : undefined,
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${opts.method || 'GET'} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

// ---- a history of closed incidents -------------------------------------------------------
// More closed incidents than one text-filtered page reads (the server's scan budget is
// 20,000), imported before the server starts. The oldest has the only "zanzibar" in its
// title, so finding it takes the list's search past the budget. Closed, so the active views
// (the list's default, the overview) do not see them.
const HISTORY = 20500;
function importHistory() {
  const dir = join(dataDir, 'history');
  mkdirSync(dir, { recursive: true });
  const lines = [];
  const t0 = Date.UTC(2024, 0, 1);
  for (let k = 0; k < HISTORY; k++) {
    const t = new Date(t0 + k * 60000);
    const iso = t.toISOString();
    const stamp = iso.slice(0, 10).replaceAll('-', '') + '_' + iso.slice(11, 16).replace(':', '');
    lines.push(JSON.stringify({
      id: `inc_${stamp}_${k.toString(16).padStart(12, '0')}`, service: 'archive', env: 'prod', severity: 'P3',
      status: 'closed', title: k === 0 ? 'Zanzibar relay outage' : `Archived incident ${k}`, summary: '',
      started_at: iso, created_at: iso, updated_at: iso, closed_at: iso, created_by: 'import',
    }));
  }
  writeFileSync(join(dir, 'incidents.jsonl'), lines.join('\n') + '\n');
  const r = spawnSync(bin, ['import', dir], { env: { ...process.env, DATA_DIR: dataDir, RUST_LOG: 'warn' }, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`sofiia import failed: ${r.stderr}`);
}
importHistory();

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Hold the page's `method` requests to `url` (a route pattern) until `release()`, counting
 * them (`sent`): presses made while the first is held must not send a second. `stop()` lets
 * requests through again.
 */
async function hold(page, url, method = 'POST') {
  let open;
  const gate = new Promise((r) => { open = r; });
  const passing = [];
  const held = {
    sent: 0,
    release: () => open(),
    /** Until the first request is held. */
    async first() { for (let i = 0; !held.sent && i < 500; i++) await sleep(10); assert.ok(held.sent, `no ${method} ${url}`); },
    async stop() {
      open();
      await Promise.all(passing);
      await page.unroute(url);
    },
  };
  await page.route(url, (route) => {
    if (route.request().method() !== method) return route.continue();
    held.sent++;
    // (A failed step may unroute first: a request let through twice is not an error here.)
    const p = gate.then(() => route.continue()).catch(() => {});
    passing.push(p);
    return p;
  });
  return held;
}

/** Press a button twice in one go; what it showed right after the first press (disabled, `aria-busy` on its form or itself). */
const pressTwice = (button) => button.evaluate((b) => {
  b.click();
  const state = { disabled: b.disabled, busy: (b.form || b).getAttribute('aria-busy') };
  b.click();
  return state;
});

// ---- steps ------------------------------------------------------------------------------
let failures = 0;
let currentPage = null;
let passed = 0;
async function step(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    passed++;
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failures++;
    if (currentPage) await currentPage.screenshot({ path: join(shots, 'FAILED.png'), fullPage: true }).catch(() => {});
    console.log(`FAIL ${name}\n     ${String(e && e.stack || e).split('\n').slice(0, 6).join('\n     ')}`);
    throw e;
  }
}

const pageErrors = [];
let browser;
try {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  startServer(port);
  await waitHealthy(base);
  browser = await chromium.launch({
    executablePath: chromePath,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: 'light', acceptDownloads: true });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
  const page = await context.newPage();
  page.setDefaultTimeout(10000);
  currentPage = page;
  page.on('pageerror', (e) => pageErrors.push(e.message));
  // Failed requests are logged by the browser itself (a 401 before the key is set, refused
  // connections while the server restarts); the console reports those in the page. Anything
  // else logged as an error is a bug.
  page.on('console', (m) => { if (m.text().startsWith('live-reload')) console.log(m.text());
    if (m.type() === 'error' && !/Failed to load resource|WebSocket connection to/.test(m.text())) pageErrors.push(m.text());
  });
  const shot = (name) => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });

  await step('static files: versioned, cached, compressed', async () => {
    const index = await fetch(`${base}/`);
    assert.equal(index.headers.get('cache-control'), 'no-cache');
    assert.match(index.headers.get('content-security-policy') || '', /script-src 'self'/);
    const html = await index.text();
    const m = html.match(/\/assets\/([0-9a-f]+)\/main\.js/);
    assert.ok(m, 'index.html points at a versioned main.js');
    const js = await fetch(`${base}/assets/${m[1]}/main.js`, { headers: { 'Accept-Encoding': 'br' } });
    assert.equal(js.status, 200);
    assert.match(js.headers.get('cache-control'), /immutable/);
    assert.match(js.headers.get('content-type'), /javascript/);
    const stale = await fetch(`${base}/assets/000000000000/main.js`);
    assert.equal(stale.headers.get('cache-control'), 'no-cache');
  });

  await step('without a key the console says how to fix it', async () => {
    await page.goto(`${base}/#/incidents`);
    await page.locator('#conn', { hasText: 'BFF: ✓' }).waitFor();
    const err = page.locator('.error-box');
    await err.waitFor();
    assert.match(await err.textContent(), /Set the operator API key in Settings/);
    assert.equal(await page.locator('#env-badge').textContent(), 'staging');
    assert.equal(await page.locator('#build').textContent(), 'v0.1.0 · e2e');
    // Tabs of rooms that do not exist yet are hidden (Jobs and Reports are found by asking
    // their endpoint when /api/health does not list them).
    await page.locator('#nav a[href="#/reports"]').waitFor();
    const tabs = await page.locator('#nav a').allTextContents();
    assert.deepEqual(tabs.map((t) => t.replace(/g \w$/, '').trim()), ['Overview', 'Incidents', 'Ops', 'Runbooks', 'Alerts', 'Jobs', 'Reports', 'Events', 'Settings']);
    await shot('01-no-key');
  });

  await step('settings: a wrong key is reported, the right one accepted', async () => {
    await page.goto(`${base}/#/settings`);
    await page.fill('#set-key', 'wrong-key');
    await page.click('#set-save');
    await page.locator('#set-result .error-box').waitFor();
    assert.match(await page.locator('#set-result').textContent(), /Not signed in/);
    await page.fill('#set-key', KEY);
    await page.click('#set-save');
    await page.locator('#set-result .notice').waitFor();
    assert.match(await page.locator('#set-result').textContent(), /key is accepted/);
    await page.locator('#live', { hasText: 'live: ✓' }).waitFor();
    await shot('02-settings');
  });

  let incId;
  const nasty = '<script>window.__xss = 1</script><img src=x onerror="window.__xss=2"> Router 5xx spike';
  await step('create an incident through the form (API validation shown first)', async () => {
    await page.goto(`${base}/#/incidents`);
    await page.click('#new-incident');
    await page.locator('#create-form').waitFor();
    await page.fill('input[name=service]', 'router');
    await page.selectOption('select[name=severity]', 'P1');
    await page.click('#create-submit');
    // Empty title: the API's 422 is shown next to the field.
    const title = page.locator('input[name=title]');
    await page.locator('input[name=title][aria-invalid=true]').waitFor();
    const msg = await title.locator('xpath=..').locator('.field-error').textContent();
    assert.ok(msg.length > 3, `field message shown, got "${msg}"`);
    assert.match(await page.locator('#create-form .error-box').textContent(), /Invalid input/);
    await shot('03-create-validation');
    await title.fill(nasty);
    await page.fill('textarea[name=summary]', '## Impact\n\n- checkout fails for **EU** users\n- <script>window.__xss=3</script>');
    await page.fill('input[name=owner]', 'alice');
    await page.click('#create-submit');
    await page.waitForURL(/#\/incidents\/inc_/);
    incId = decodeURIComponent(page.url().split('#/incidents/')[1]);
    await page.locator('#incident-title').waitFor();
  });

  await step('the create form sends once however often it is pressed, and keeps what was typed when refused', async () => {
    const count = async () => (await http(base, '/api/incidents?limit=1')).total;
    const before = await count();
    await page.goto(`${base}/#/incidents/new`);
    await page.locator('#create-form').waitFor();
    await page.fill('input[name=service]', 'payments');
    await page.selectOption('select[name=severity]', 'P3');
    await page.fill('input[name=title]', 'x'.repeat(301));
    await page.fill('textarea[name=summary]', 'Card payments time out at the gateway.');
    await page.fill('input[name=owner]', 'carol');
    // Refused (a title over 300 characters): the title is marked, everything typed stays.
    await page.click('#create-submit');
    await page.locator('input[name=title][aria-invalid=true]').waitFor();
    assert.ok((await page.locator('input[name=title] ~ .field-error').textContent()).length > 3);
    assert.equal((await page.inputValue('input[name=title]')).length, 301, 'the title is kept');
    assert.equal(await page.inputValue('input[name=service]'), 'payments');
    assert.equal(await page.inputValue('select[name=severity]'), 'P3');
    assert.equal(await page.inputValue('textarea[name=summary]'), 'Card payments time out at the gateway.');
    assert.equal(await page.inputValue('input[name=owner]'), 'carol');
    assert.equal(await page.locator('#create-submit').isEnabled(), true, 'enabled again after the error');
    assert.equal(await page.locator('#create-form').getAttribute('aria-busy'), null);
    // Pressed twice, then Enter twice in the title, while the first is held: one incident.
    await page.fill('input[name=title]', 'Card payments time out');
    const held = await hold(page, `${base}/api/incidents`);
    try {
      assert.deepEqual(await pressTwice(page.locator('#create-submit')), { disabled: true, busy: 'true' });
      await held.first();
      await page.focus('input[name=title]');
      await page.keyboard.press('Enter');
      await page.keyboard.press('Enter');
      await sleep(100);
      assert.equal(await page.locator('#create-submit').isDisabled(), true, 'disabled while sending');
      held.release();
      await page.waitForURL(/#\/incidents\/inc_/);
      await page.locator('#incident-title', { hasText: 'Card payments time out' }).waitFor();
    } finally {
      await held.stop();
    }
    assert.equal(held.sent, 1, 'one POST');
    assert.equal(await count(), before + 1, 'one incident');
    // Closed, so the later steps' counts of active incidents are as they were.
    const made = decodeURIComponent(page.url().split('#/incidents/')[1]);
    await http(base, `/api/incidents/${made}`, { method: 'PATCH', body: { status: 'closed' } });
    await page.goto(`${base}/#/incidents/${encodeURIComponent(incId)}`);
    await page.locator('#incident-title').waitFor();
  });

  await step('a <script> in the title and summary is shown as text', async () => {
    assert.equal(await page.locator('#incident-title').textContent(), nasty);
    assert.equal(await page.evaluate(() => window.__xss), undefined);
    assert.equal(await page.locator('#view script').count(), 0);
    assert.equal(await page.locator('#view img').count(), 0);
    const summary = page.locator('.md').first();
    assert.match(await summary.textContent(), /<script>window.__xss=3<\/script>/);
    assert.equal(await summary.locator('strong').textContent(), 'EU');
  });

  await step('markdown renderer: hostile and pathological input stays safe and fast', async () => {
    const out = await page.evaluate(async () => {
      const src = document.querySelector('script[type=module]').src.replace(/main\.js$/, '');
      const { renderMarkdown } = await import(`${src}lib/markdown.js`);
      const links = (md) => [...renderMarkdown(md).querySelectorAll('a')].map((a) => a.getAttribute('href'));
      const t0 = performance.now();
      const deep = renderMarkdown('>'.repeat(5000) + ' x');
      const longHeading = renderMarkdown('# a' + ' '.repeat(50000) + 'b');
      const longTable = renderMarkdown('a|b\n' + ' '.repeat(50000) + 'x');
      const ms = performance.now() - t0;
      return {
        ctrl: links('[x](\u0001javascript:alert(1)) [y](data:text/html,hi) [z](//evil.example/x) [w](/\\evil.example)'),
        ok: links('[a](https://example.com) [b](#restore) [c](mailto:ops@example.com) [d](/api/health)'),
        ids: [...renderMarkdown('# Help\n## Toasts').querySelectorAll('[id]')].map((e) => e.id),
        deepOk: deep.textContent.includes('x'),
        headingOk: longHeading.textContent.includes('b'),
        tableOk: longTable.textContent.includes('x'),
        pipeNotTable: renderMarkdown('cat a | grep b\n---').querySelectorAll('table').length,
        fence: renderMarkdown('```\ncode\n```js\nstill code\n```').querySelectorAll('pre').length,
        nested: renderMarkdown('[<https://a.example>](https://b.example)').querySelectorAll('a a').length,
        ms,
      };
    });
    assert.deepEqual(out.ctrl, [], 'no unsafe link survives');
    assert.deepEqual(out.ok, ['https://example.com', '#restore', 'mailto:ops@example.com', '/api/health']);
    assert.deepEqual(out.ids, ['md-help', 'md-toasts'], 'heading ids cannot clash with the console\'s');
    assert.ok(out.deepOk && out.headingOk && out.tableOk);
    assert.equal(out.pipeNotTable, 0);
    assert.equal(out.fence, 1);
    assert.equal(out.nested, 0);
    assert.ok(out.ms < 3000, `pathological markdown took ${out.ms} ms`);
  });

  await step('console helpers: no inline handler from data; malformed run results are shown, not thrown', async () => {
    const out = await page.evaluate(async () => {
      const src = document.querySelector('script[type=module]').src.replace(/main\.js$/, '');
      const { h } = await import(`${src}lib/dom.js`);
      const { triageBrief } = await import(`${src}views/ops/renderers/triage.js`);
      const { postmortemBrief } = await import(`${src}views/ops/renderers/postmortem.js`);
      const el = h('div', { onclick: 'window.__pwned = 1', ONMOUSEOVER: 'window.__pwned = 1', title: 'ok' });
      el.click();
      el.dispatchEvent(new MouseEvent('mouseover'));
      let clicked = 0;
      h('button', { onclick: () => { clicked++; } }).click();
      const causes = triageBrief({ summary: 'S', suspected_root_causes: [null, { rank: 1, cause: 'disk full' }] });
      const none = triageBrief(null);
      const pm = postmortemBrief({ artifacts: [null, { name: 'postmortem.md' }], followups: 'x', markdown: 5 });
      return {
        attrs: el.getAttributeNames(), pwned: window.__pwned === 1, clicked,
        causes: causes.querySelectorAll('.causes tbody tr').length,
        none: [none.tagName, none.textContent.trim()],
        pm: [pm.className, pm.querySelector('p').textContent],
      };
    });
    assert.deepEqual(out.attrs, ['title'], 'string on* attributes are dropped');
    assert.equal(out.pwned, false);
    assert.equal(out.clicked, 1, 'function handlers still work');
    assert.equal(out.causes, 1, 'a null cause is skipped');
    assert.deepEqual(out.none, ['PRE', 'null'], 'an unreadable result falls back to JSON');
    assert.deepEqual(out.pm, ['stack pm-brief', 'Attached postmortem.md; 0 follow-ups added to the timeline.']);
  });

  await step('change the status and severity', async () => {
    await page.fill('#change-note', 'on it');
    await page.click('button[data-status=acknowledged]');
    await page.locator('.detail-head .badge.st', { hasText: 'acknowledged' }).waitFor();
    await page.locator('#timeline li[data-type=status_change]', { hasText: 'on it' }).waitFor();
    await page.selectOption('#severity-select', 'P0');
    await page.click('#severity-apply');
    await page.locator('.detail-head .badge.sev-P0').waitFor();
    await page.locator('#timeline li[data-type=severity_change]').waitFor();
    const detail = await http(base, `/api/incidents/${incId}`);
    assert.equal(detail.incident.status, 'acknowledged');
    assert.equal(detail.incident.severity, 'P0');
    assert.ok(detail.incident.acknowledged_at);
  });

  await step('add a note', async () => {
    await page.fill('#note-message', 'Rolled back router to v1.4.2');
    await page.selectOption('#note-type', 'mitigation');
    await page.click('#note-submit');
    await page.locator('#timeline li[data-type=mitigation]', { hasText: 'Rolled back router to v1.4.2' }).waitFor();
  });

  await step('add a follow-up (overdue marked) and close it', async () => {
    await page.fill('#fu-title', 'Add a canary stage for router');
    await page.fill('#fu-owner', 'bob');
    await page.fill('#fu-due', '2020-01-31');
    // Pressed twice: the button is disabled while the first is sent, so one follow-up.
    await page.locator('#fu-submit').evaluate((b) => { b.click(); b.click(); });
    const row = page.locator('#followups tbody tr', { hasText: 'Add a canary stage for router' });
    await row.waitFor();
    await page.locator('.toast', { hasText: 'Follow-up added: Add a canary stage for router' }).waitFor();
    assert.equal(await page.inputValue('#fu-title'), '', 'the form is cleared after success');
    assert.equal(await page.inputValue('#fu-owner'), '');
    const sent = await http(base, `/api/incidents/${incId}/events?limit=500`);
    assert.equal(sent.items.filter((e) => e.type === 'followup' && e.meta.title === 'Add a canary stage for router').length, 1, 'added once');
    // An error keeps what was typed: a title that is too long is refused by the API.
    await page.fill('#fu-title', 'x'.repeat(301));
    await page.click('#fu-submit');
    await page.locator('#followup-form .field-error:not(:empty), #followup-form .error-box').first().waitFor();
    assert.equal((await page.inputValue('#fu-title')).length, 301, 'input kept on error');
    await page.fill('#fu-title', '');
    assert.match(await row.textContent(), /overdue/);
    assert.match(await row.textContent(), /bob/);
    await shot('04-incident-detail');
    await row.locator('button.close-followup').click();
    // (Not `hasText: 'done'`: that also matches the open row's "Done" button, case-insensitively.)
    await page.locator('#followups tbody tr del', { hasText: 'Add a canary stage for router' }).waitFor();
    const sum = await http(base, '/api/followups/summary');
    assert.equal(sum.open_followups.length, 0);
  });

  await step('upload a markdown artifact and view it rendered safely', async () => {
    const md = '# Timeline\n\n1. alert fired\n2. rollback\n\n<img src=x onerror="window.__xss=4">\n\n[bad](javascript:alert(1)) and [good](https://example.com)\n\n```\ncode <b>x</b>\n```\n';
    await page.setInputFiles('#artifact-file', { name: 'postmortem.md', mimeType: 'text/markdown', buffer: Buffer.from(md) });
    await page.click('#upload-submit');
    const row = page.locator('#artifacts tr[data-name="postmortem.md"]');
    await row.waitFor();
    await row.locator('.view-artifact').click();
    const viewer = page.locator('#artifact-content');
    await viewer.locator('h1', { hasText: 'Timeline' }).waitFor();
    assert.equal(await viewer.locator('ol li').count(), 2);
    assert.equal(await viewer.locator('img').count(), 0);
    assert.equal(await viewer.locator('a[href^="javascript"]').count(), 0);
    assert.equal(await viewer.locator('a[href="https://example.com"]').count(), 1);
    assert.match(await viewer.locator('pre code').textContent(), /code <b>x<\/b>/);
    assert.equal(await page.evaluate(() => window.__xss), undefined);
    await shot('05-artifact-markdown');
  });

  await step('upload a JSON artifact, view it pretty, download it', async () => {
    await page.setInputFiles('#artifact-file', { name: 'triage.json', mimeType: 'application/json', buffer: Buffer.from('{"cause":"bad deploy","checks":[1,2]}') });
    await page.click('#upload-submit');
    const row = page.locator('#artifacts tr[data-name="triage.json"]');
    await row.waitFor();
    await row.locator('.view-artifact').click();
    await page.locator('#artifact-content pre.json').waitFor();
    assert.equal(await page.locator('#artifact-content pre.json').textContent(), JSON.stringify({ cause: 'bad deploy', checks: [1, 2] }, null, 2));
    const [download] = await Promise.all([page.waitForEvent('download'), row.locator('.download-artifact').click()]);
    assert.equal(download.suggestedFilename(), 'triage.json');
    const path = await download.path();
    assert.equal(readFileSync(path, 'utf8'), '{"cause":"bad deploy","checks":[1,2]}');
  });

  await step('a wrong artifact type is refused with a readable message', async () => {
    await page.setInputFiles('#artifact-file', { name: 'run.sh', mimeType: 'text/plain', buffer: Buffer.from('echo hi') });
    await page.click('#upload-submit');
    const err = page.locator('#upload-form .error-box');
    await err.waitFor();
    assert.match(await err.textContent(), /Not uploaded/);
  });

  await step('an artifact is attached once however often Upload is pressed; a refused file stays chosen', async () => {
    // The step before was refused: its file is still chosen.
    assert.equal(await page.locator('#artifact-file').evaluate((i) => i.files.length && i.files[0].name), 'run.sh', 'input kept on error');
    assert.equal(await page.locator('#upload-submit').isEnabled(), true);
    const names = async () => (await http(base, `/api/incidents/${incId}`)).artifacts.map((a) => a.name);
    const before = await names();
    await page.setInputFiles('#artifact-file', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('bridge notes\n') });
    const held = await hold(page, `${base}/api/incidents/${incId}/artifacts`);
    try {
      assert.deepEqual(await pressTwice(page.locator('#upload-submit')), { disabled: true, busy: 'true' });
      await held.first();
      await sleep(100);
      assert.equal(await page.locator('#upload-submit').isDisabled(), true, 'disabled while sending');
      held.release();
      await page.locator('.toast', { hasText: 'Attached notes.txt' }).waitFor();
      await page.locator('#artifacts tr[data-name="notes.txt"]').waitFor();
    } finally {
      await held.stop();
    }
    assert.equal(held.sent, 1, 'one POST');
    const after = await names();
    assert.equal(after.length, before.length + 1, 'one artifact');
    assert.ok(!after.includes('notes-2.txt'));
    assert.equal(await page.locator('#artifact-file').evaluate((i) => i.files.length), 0, 'the file input is cleared');
    await page.locator('#upload-submit:enabled').waitFor();
  });

  await step('the open incident updates live when another client changes it', async () => {
    await page.evaluate(() => { window.__noReload = true; });
    await http(base, `/api/incidents/${incId}/events`, { method: 'POST', body: { type: 'deploy', message: 'router v1.4.3 deployed by CI' } });
    await page.locator('#timeline li[data-type=deploy]', { hasText: 'router v1.4.3 deployed by CI' }).waitFor();
    assert.equal(await page.evaluate(() => window.__noReload), true);
  });

  await step('related incidents are shown and can be recorded on the timeline', async () => {
    const other = await http(base, '/api/incidents', { method: 'POST', body: { service: 'router', severity: 'P2',
      title: 'Router 5xx spike again', summary: 'checkout fails for EU users after the router deploy' } });
    await page.reload();
    const row = page.locator(`#related-table tr[data-id="${other.id}"]`);
    await row.waitFor({ timeout: 15000 });
    assert.match(await row.textContent(), /same service/);
    await page.click('#related-note');
    await page.locator('#timeline li[data-type=correlation]').waitFor();
    assert.match(await page.locator('#timeline li[data-type=correlation]').textContent(), new RegExp(other.id));
  });

  await step('an incident created by a second client appears in the list without a reload', async () => {
    await page.goto(`${base}/#/incidents`);
    await page.locator('#incident-table').waitFor();
    await page.evaluate(() => { window.__noReload = true; });
    const created = await http(base, '/api/incidents', { method: 'POST', body: { service: 'billing', severity: 'P2', title: 'Invoices delayed (second client)' } });
    await page.locator(`#incident-table tr[data-id="${created.id}"]`).waitFor();
    assert.equal(await page.evaluate(() => window.__noReload), true);
    await shot('06-incident-list');
  });

  await step('list filters: severity and text go to the server and into the URL', async () => {
    await page.check('input[aria-label="Severity P0"]');
    await page.waitForFunction(() => window.location.hash.includes('severity=P0'));
    await page.locator('#incident-table tbody tr').first().waitFor();
    assert.equal(await page.locator('#incident-table tbody tr').count(), 1);
    await page.uncheck('input[aria-label="Severity P0"]');
    await page.keyboard.press('/');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'f-q');
    await page.keyboard.type('invoices');
    await page.waitForFunction(() => window.location.hash.includes('q=invoices'));
    await page.waitForFunction(() => document.querySelectorAll('#incident-table tbody tr').length === 1);
    assert.match(await page.locator('#incident-table tbody').textContent(), /Invoices delayed/);
  });

  await step('events tab shows the live stream with a type filter', async () => {
    await page.keyboard.press('Escape');
    await page.keyboard.press('g');
    await page.keyboard.press('e');
    await page.waitForURL(/#\/events/);
    await http(base, '/api/incidents', { method: 'POST', body: { service: 'search', severity: 'P3', title: 'Slow queries (events tab)' } });
    await page.locator('#ev-rows tr[data-type="incident.created"]', { hasText: 'Slow queries (events tab)' }).waitFor();
    await page.selectOption('#ev-type', 'incident.updated');
    await page.waitForFunction(() => [...document.querySelectorAll('#ev-rows tr[data-type]')].every((r) => r.dataset.type === 'incident.updated'));
    await page.selectOption('#ev-type', '');
    await shot('07-events');
  });

  await step('overview: active incidents by severity, overdue follow-ups, latest events', async () => {
    await page.goto(`${base}/#/overview`);
    await page.locator('#ov-tiles .tile').first().waitFor();
    assert.equal((await page.locator('#ov-tiles a[data-sev=P0] .n').textContent()).trim(), '1');
    // The form's incident, the related one, the second client's and the events tab's.
    assert.equal((await page.locator('#ov-tiles .tile .n').first().textContent()).trim(), '4');
    await page.locator('#ov-latest', { hasText: 'Slow queries (events tab)' }).waitFor();
    await shot('08-overview');
  });

  /** Wait until no list of the view is loading. */
  const idle = () => page.waitForFunction(() => document.querySelector('#incident-table, .table-wrap .empty') && !document.querySelector('#view [aria-busy]'));

  await step('list: active by default with its total, sorted, the page in the URL (reload keeps it)', async () => {
    for (let i = 0; i < 55; i++) {
      await http(base, '/api/incidents', { method: 'POST', body: { service: i % 2 ? 'Payments-EU' : 'payments-us', severity: `P${i % 4}`, title: `Card declines ${i}` } });
    }
    const active = await http(base, '/api/incidents?status=open,acknowledged,mitigated&limit=1');
    await page.goto(`${base}/#/incidents`);
    await page.locator('#incident-table').waitFor();
    assert.equal(await page.inputValue('#f-status'), 'open,acknowledged,mitigated', 'opens on the active incidents');
    await page.locator('#incident-total', { hasText: `${active.total} incidents` }).waitFor();
    assert.ok(active.total >= 59 && active.total < 100, `active total ${active.total}`);
    await page.selectOption('#f-sort', 'severity');
    await page.waitForFunction(() => window.location.hash.includes('sort=severity'));
    await idle();
    const sevs = await page.locator('#incident-table tbody tr td:first-child').allTextContents();
    assert.deepEqual([...sevs].sort(), sevs, 'P0 first');
    await page.click('#next-page');
    await page.waitForFunction(() => /cursor=severity\./.test(window.location.hash) && /page=2/.test(window.location.hash));
    await page.locator('#page-no', { hasText: 'page 2' }).waitFor();
    await idle();
    const firstOn2 = await page.locator('#incident-table tbody tr').first().getAttribute('data-id');
    await page.reload();
    await page.locator('#page-no', { hasText: 'page 2' }).waitFor();
    await idle();
    await page.locator(`#incident-table tbody tr[data-id="${firstOn2}"]`).first().waitFor();
    assert.equal(await page.locator('#incident-table tbody tr').first().getAttribute('data-id'), firstOn2, 'same page after reload');
    await page.click('#prev-page');
    await page.locator('#page-no', { hasText: 'page 1' }).waitFor();
    await page.waitForFunction(() => !window.location.hash.includes('cursor='));
    await page.selectOption('#f-status', 'any');
    const every = await http(base, '/api/incidents?limit=1');
    assert.ok(every.total > active.total + HISTORY - 1, `${every.total} in all`);
    await page.locator('#incident-total', { hasText: `${every.total.toLocaleString('en-US')} incidents` }).waitFor();
    await shot('09-list-sorted');
    // A page link the server did not make (edited by hand, or of another order) opens the
    // first page and says so, instead of an error whose Retry cannot succeed.
    await page.goto(`${base}/#/incidents?sort=updated&cursor=severity.0.1.inc_20200101_0000_abc&page=7`);
    await page.locator('#bad-page-link').waitFor();
    await page.locator('#page-no', { hasText: 'page 1' }).waitFor();
    await page.locator('#incident-table tbody tr').first().waitFor();
    await page.waitForFunction(() => !window.location.hash.includes('cursor='));
  });

  await step('list: the service field offers known services by prefix, any case', async () => {
    await page.goto(`${base}/#/incidents`);
    await page.locator('#incident-table').waitFor();
    assert.ok(await page.locator('#f-service-list option[value="Payments-EU"]').count() === 1, 'known services offered');
    await page.fill('#f-service', 'PAY');
    await page.locator('#f-service-hint a[data-service="Payments-EU"]').waitFor();
    await page.locator('#f-service-hint a[data-service="payments-us"]').waitFor();
    await page.waitForFunction(() => {
      const rows = [...document.querySelectorAll('#incident-table tbody tr')];
      return rows.length > 0 && rows.every((r) => /payments-(eu|us)/i.test(r.children[4].textContent));
    });
    await page.click('#f-service-hint a[data-service="Payments-EU"]');
    await page.waitForFunction(() => window.location.hash.includes('service=Payments-EU'));
    await page.locator('#incident-total', { hasText: '27 incidents' }).waitFor();
    await page.fill('#f-service', 'payments-eu');
    await page.locator('#incident-total', { hasText: '27 incidents' }).waitFor();
    await page.fill('#f-service', 'nosuch');
    await page.locator('#f-service-hint .warn', { hasText: 'No service starts with' }).waitFor();
    await page.locator('#view .empty', { hasText: 'No incidents match' }).waitFor();
  });

  await step('list: a rare word is found past the scan budget; an id pasted opens its incident', async () => {
    await page.goto(`${base}/#/incidents?status=any`);
    await page.locator('#incident-table').waitFor();
    await page.fill('#f-q', 'zanzibar');
    await page.locator('#incident-table tbody tr', { hasText: 'Zanzibar relay outage' }).waitFor({ timeout: 20000 });
    assert.equal(await page.locator('#incident-table tbody tr').count(), 1);
    assert.equal(await page.locator('#text-partial').count(), 0, 'the search went to the end');
    assert.equal(await page.locator('#next-page').isDisabled(), true);
    await page.locator('#incident-total', { hasText: /Text search over 20,5\d\d incidents/ }).waitFor();
    await page.fill('#f-q', incId);
    await page.waitForURL(new RegExp(`#/incidents/${incId}$`));
    await page.locator('#incident-title').waitFor();
    await page.goto(`${base}/#/incidents?status=any`);
    await page.fill('#f-q', 'inc_20200101_0000_0000000000ff');
    await page.locator('#id-missing', { hasText: 'No incident has the id' }).waitFor();
  });

  await step('follow-ups: the overview leads to every overdue one, latest due first, closable in place', async () => {
    await http(base, `/api/incidents/${incId}/events`, { method: 'POST', body: { type: 'followup', meta: { title: 'Old miss', due: '2021-01-01' } } });
    await http(base, `/api/incidents/${incId}/events`, { method: 'POST', body: { type: 'followup', meta: { title: 'Recent miss', due: '2025-06-01', owner: 'dana' } } });
    await page.goto(`${base}/#/overview`);
    const firstTitle = page.locator('#ov-overdue tbody tr').first();
    await firstTitle.waitFor();
    assert.match(await firstTitle.textContent(), /Recent miss/, 'the most recently missed leads');
    await page.click('#ov-all-overdue');
    await page.waitForURL(/#\/followups\?overdue=1/);
    await page.locator('#fl-total', { hasText: '2 open follow-ups past due' }).waitFor();
    const titles = await page.locator('#followup-table tbody tr td:first-child').allTextContents();
    assert.deepEqual(titles, ['Recent miss', 'Old miss']);
    await page.fill('#fl-owner', 'DANA');
    await page.locator('#fl-total', { hasText: '1 open follow-up past due' }).waitFor();
    await page.locator('#followup-table tr', { hasText: 'Recent miss' }).locator('button[data-close]').click();
    await page.locator('#fl-total', { hasText: '0 open follow-ups past due' }).waitFor();
    await page.fill('#fl-owner', '');
    await page.locator('#fl-total', { hasText: '1 open follow-up past due' }).waitFor();
    await shot('10-followups');
    await page.keyboard.press('Escape');
  });

  await step('runbooks: search as you type, snippets highlighted, open at the section', async () => {
    await page.keyboard.press('g');
    await page.keyboard.press('r');
    await page.waitForURL(/#\/runbooks/);
    await page.locator('#rb-list tbody tr').first().waitFor();
    assert.ok(await page.locator('#rb-list tbody tr').count() >= 8, 'the starter runbooks are listed');
    await page.keyboard.press('/');
    await page.keyboard.type('restor from bakcup', { delay: 20 });
    const first = page.locator('#rb-hits li.hit').first();
    await first.waitFor();
    await page.waitForFunction(() => window.location.hash.includes('q=restor'));
    assert.equal(await first.getAttribute('data-path'), 'backup-restore.md');
    assert.ok(await page.locator('#rb-hits mark').count() > 0, 'matched words are highlighted');
    await shot('10-runbook-search');
    const anchor = await first.getAttribute('data-anchor');
    await first.locator('a.hit-title').click();
    await page.waitForURL(/#\/runbooks\/backup-restore\.md/);
    const target = page.locator(`#md-${anchor}`);
    await target.waitFor();
    assert.match(await target.getAttribute('class'), /target/);
    const box = await target.boundingBox();
    assert.ok(box && box.y >= 0 && box.y < 400, `the section is scrolled into view (y=${box && box.y})`);
    await shot('11-runbook-open');
  });


  // ---- Ops: graphs, runs, run history, and the incident page's Triage / Draft postmortem ----
  let triageRun;
  await step('ops: g p opens the tab; both graphs are listed with their node chains', async () => {
    await page.keyboard.press('Escape');
    await page.keyboard.press('g');
    await page.keyboard.press('p');
    await page.waitForURL(/#\/ops$/);
    for (const g of ['incident_triage', 'postmortem_draft']) {
      const row = page.locator(`#graph-table tr[data-graph="${g}"]`);
      await row.waitFor();
      assert.ok(await row.locator('ol.chain li').count() >= 3, `${g} shows its nodes`);
    }
    assert.ok(await page.locator('#graph-table tr[data-graph=incident_triage] li[data-node=build_triage_report]').count() === 1);
    // The requeue list is shown only when the server has the endpoint.
    const rq = await fetch(`${base}/v1/requeue`, { headers: { Authorization: `Bearer ${KEY}` } });
    if (rq.status === 200) await page.locator('#requeue-section').waitFor();
    else assert.equal(await page.locator('#requeue-section').isHidden(), true);
    await shot('12-ops');
  });

  await step('ops: the triage form comes from the input schema; a missing required field is shown beside it', async () => {
    await page.click('#graph-table a[href="#/ops/graphs/incident_triage"]');
    await page.locator('#run-form[data-graph=incident_triage]').waitFor();
    // One control per schema type: text, enum, nested object, boolean, bounded integer.
    assert.equal(await page.locator('#f-input-env').evaluate((el) => el.tagName), 'SELECT');
    assert.equal(await page.locator('#f-input-env option:checked').textContent(), 'prod');
    await page.locator('fieldset[data-field="input.time_range"] #f-input-time_range-from').waitFor();
    assert.equal(await page.locator('#f-input-include_traces').getAttribute('type'), 'checkbox');
    assert.equal(await page.locator('#f-input-max_log_lines').getAttribute('max'), '200');
    assert.match(await page.locator('[data-field="input.service"]').textContent(), /\*/);
    await page.fill('#f-input-service', 'router');
    await page.click('#run-submit');
    await page.locator('#f-input-symptom[aria-invalid=true]').waitFor();
    const msg = await page.locator('[data-field="input.symptom"] .field-error').textContent();
    assert.ok(msg.length > 2, `the API's message is beside the field, got "${msg}"`);
    assert.match(await page.locator('#run-form-error').textContent(), /Invalid input/);
    assert.match(page.url(), /#\/ops\/graphs\/incident_triage$/);
    await page.evaluate(() => window.scrollTo(0, 0));
    await shot('13-ops-form-422');
  });

  await step('ops: a valid triage run is followed live until it succeeds; sources and runbooks shown', async () => {
    await page.fill('#f-input-symptom', 'disk full on the data volume');
    await page.selectOption('#f-input-env', { label: 'staging' });
    await page.click('#run-submit');
    await page.waitForURL(/#\/ops\/runs\/gr_/);
    triageRun = decodeURIComponent(page.url().split('#/ops/runs/')[1]);
    await page.locator('.detail-head .badge[data-status=succeeded]').waitFor({ timeout: 30000 });
    await page.locator('#run-chain li[data-node=build_triage_report][data-state=done]').waitFor();
    assert.ok(await page.locator('#run-events tr[data-type=node_end]').count() >= 5, 'node events listed');
    await page.locator('#run-events tr[data-type=run_succeeded]').waitFor();
    assert.equal(await page.locator('#run-cancel').count(), 0, 'no cancel on a finished run');
    const metrics = page.locator('#triage-sources tr[data-source=metrics]');
    assert.match(await metrics.textContent(), /not configured/);
    assert.ok((await page.locator('.triage-summary').first().textContent()).length > 10, 'a summary');
    const snippet = page.locator('#triage-runbooks li.hit').first();
    await shot('14-ops-run-triage');
    // The symptom names a starter runbook (disk-full.md): triage must quote it.
    await snippet.waitFor();
    // The snippet opens the runbook in the Runbooks view.
    const path = await snippet.getAttribute('data-path');
    await snippet.locator('a.hit-title').click();
    await page.waitForURL(/#\/runbooks\//);
    await page.locator('#runbook-body').waitFor();
    assert.match(await page.locator('.detail-crumbs').textContent(), new RegExp(path.replace(/[.]/g, '\\.')));
    await page.goBack();
    await page.locator('.detail-head .badge[data-status=succeeded]').waitFor();
  });

  await step('ops: the run form starts one run however often it is pressed, and keeps its values when refused', async () => {
    const count = async () => (await http(base, '/v1/runs?graph=incident_triage&limit=500')).items.length;
    const before = await count();
    await page.goto(`${base}/#/ops/graphs/incident_triage`);
    await page.locator('#run-form[data-graph=incident_triage]').waitFor();
    await page.fill('#f-input-service', 'router');
    await page.fill('#f-input-symptom', 'pressed twice');
    await page.selectOption('#f-input-env', { label: 'staging' });
    await page.fill('#f-input-max_log_lines', '500');
    // Refused (above the schema's maximum): that field is marked, every value stays.
    await page.click('#run-submit');
    await page.locator('#f-input-max_log_lines[aria-invalid=true]').waitFor();
    assert.ok((await page.locator('[data-field="input.max_log_lines"] .field-error').textContent()).length > 2);
    assert.match(await page.locator('#run-form-error').textContent(), /Not started/);
    assert.equal(await page.inputValue('#f-input-max_log_lines'), '500');
    assert.equal(await page.inputValue('#f-input-service'), 'router');
    assert.equal(await page.inputValue('#f-input-symptom'), 'pressed twice');
    assert.equal(await page.locator('#f-input-env option:checked').textContent(), 'staging');
    assert.equal(await page.locator('#run-submit').isEnabled(), true, 'enabled again after the error');
    assert.equal(await count(), before);
    // Pressed twice, then Enter twice, while the first is held: one run.
    await page.fill('#f-input-max_log_lines', '50');
    const held = await hold(page, `${base}/v1/graphs/incident_triage/runs`);
    try {
      assert.deepEqual(await pressTwice(page.locator('#run-submit')), { disabled: true, busy: 'true' });
      await held.first();
      await page.focus('#f-input-symptom');
      await page.keyboard.press('Enter');
      await page.keyboard.press('Enter');
      await sleep(100);
      assert.equal(await page.locator('#run-submit').isDisabled(), true, 'disabled while sending');
      held.release();
      await page.waitForURL(/#\/ops\/runs\/gr_/);
    } finally {
      await held.stop();
    }
    assert.equal(held.sent, 1, 'one POST');
    assert.equal(await count(), before + 1, 'one run');
    const run = await http(base, `/v1/runs/${decodeURIComponent(page.url().split('#/ops/runs/')[1])}`);
    assert.equal(run.input.max_log_lines, 50);
    await page.locator('.detail-head .badge[data-status=succeeded]').waitFor({ timeout: 30000 });
  });

  await step('ops: run history filters by graph and status in the URL and updates live', async () => {
    await page.goto(`${base}/#/ops/runs`);
    await page.locator(`#run-table tr[data-id="${triageRun}"]`).waitFor();
    await page.evaluate(() => { window.__noReload = true; });
    const pm = await http(base, '/v1/graphs/postmortem_draft/runs', { method: 'POST', body: { input: { incident_id: incId } } });
    await page.locator(`#run-table tr[data-id="${pm.run_id}"]`).waitFor();
    await page.selectOption('#runs-graph', 'incident_triage');
    await page.waitForFunction(() => window.location.hash.includes('graph=incident_triage'));
    await page.waitForFunction(() => !document.querySelector('#run-table tr[data-graph=postmortem_draft]') && document.querySelector('#run-table tr[data-graph=incident_triage]'));
    await page.selectOption('#runs-status', 'succeeded');
    await page.waitForFunction(() => window.location.hash.includes('status=succeeded'));
    await page.waitForFunction(() => [...document.querySelectorAll('#run-table tbody tr')].every((r) => r.dataset.status === 'succeeded'));
    assert.equal(await page.evaluate(() => window.__noReload), true);
    // The filtered URL is shareable.
    await page.reload();
    await page.locator(`#run-table tr[data-id="${triageRun}"]`).waitFor();
    assert.equal(await page.locator('#runs-graph').inputValue(), 'incident_triage');
    assert.equal(await page.locator('#runs-status').inputValue(), 'succeeded');
    await shot('15-ops-history');
    await page.click('#runs-clear');
    await page.waitForFunction(() => window.location.hash === '#/ops/runs');
  });

  await step('ops: cancel a running run from its page', async () => {
    // env dev's sources never answer (see the top of this file): the run is still active
    // when the button is clicked, whatever the machine's speed.
    const r = await http(base, '/v1/graphs/incident_triage/runs', { method: 'POST', body: { input: { service: 'router', symptom: 'hangs (cancel test)', env: 'dev' } } });
    await page.goto(`${base}/#/ops/runs/${r.run_id}`);
    const cancel = page.locator('#run-cancel');
    await cancel.waitFor();
    await cancel.click();
    await page.locator('.detail-head .badge[data-status=cancelled]').waitFor({ timeout: 15000 });
    await page.locator('#run-events tr[data-type=run_cancelled]').waitFor();
    assert.equal(await page.locator('#run-cancel').count(), 0);
    const after = await http(base, `/v1/runs/${r.run_id}`);
    assert.equal(after.status, 'cancelled');
    assert.equal(after.cancel_requested, true);
    await shot('16-ops-run-cancelled');
  });

  await step('ops: a cancel made by another client shows in the open run view without a reload', async () => {
    const r = await http(base, '/v1/graphs/incident_triage/runs', { method: 'POST', body: { input: { service: 'router', symptom: 'cancelled elsewhere', env: 'dev' } } });
    await page.goto(`${base}/#/ops/runs/${r.run_id}`);
    await page.locator('#run-events tr[data-type=tool_call]').waitFor();
    assert.equal(await page.locator('#run-cancel').isEnabled(), true);
    await page.evaluate(() => { window.__noReload = true; });
    await http(base, `/v1/runs/${r.run_id}/cancel`, { method: 'POST', body: {} });
    // "Cancelling…" with the button disabled until the node gives up, then cancelled.
    await page.waitForFunction(() => {
      const b = document.querySelector('#run-cancel');
      return (b && b.disabled && b.textContent.includes('Cancelling')) || document.querySelector('.detail-head .badge[data-status=cancelled]');
    });
    await page.locator('#run-events tr[data-type=cancel_requested]').waitFor();
    await page.locator('.detail-head .badge[data-status=cancelled]').waitFor({ timeout: 15000 });
    assert.equal(await page.locator('#run-cancel').count(), 0);
    assert.equal(await page.evaluate(() => window.__noReload), true, 'shown without a reload');
  });

  await step('ops: a URL that is not a run id says so and asks nothing; a failed first load recovers by itself', async () => {
    const asked = [];
    const onRequest = (req) => { const u = new URL(req.url()); if (u.pathname.startsWith('/v1')) asked.push(u.pathname); };
    page.on('request', onRequest);
    for (const bad of ['..', '%2e%2e', 'gr_x%2F..%2F..', 'inc_123']) {
      await page.goto(`${base}/#/ops/runs/${bad}`);
      await page.locator('#run-not-id').waitFor();
      assert.match(await page.locator('#run-not-id').textContent(), /is not a run id/);
    }
    await page.waitForTimeout(300);
    page.off('request', onRequest);
    assert.deepEqual(asked, [], 'no API request for an id that is not one');

    // The backend answers the first load with 503 (restarting): the view retries by itself.
    let failed = 0;
    const runUrl = (u) => new URL(u).pathname === `/v1/runs/${triageRun}`;
    await page.route(runUrl, (route) => {
      if (failed++ === 0) return route.fulfill({ status: 503, json: { error: { code: 'unavailable', message: 'restarting' } } });
      return route.continue();
    });
    await page.goto(`${base}/#/ops/runs/${triageRun}`);
    await page.locator('#run-retrying').waitFor();
    await page.locator('.detail-head .badge[data-status=succeeded]').waitFor({ timeout: 8000 });
    await page.unroute(runUrl);
    assert.ok(failed >= 2, 'loaded again after the failure');
  });

  await step('ops: work waiting for a decision is listed with Allow / Drop; hidden where the server has no list', async () => {
    // A real entry needs a tool call that fails after its last retry, which this setup cannot
    // cause on demand: the list is answered by the test (the server's own tests cover the
    // replay and the drop), the console's requests are checked as sent.
    const entry = { id: 'rq_e2e0001', kind: 'retries_exhausted', run_id: triageRun, graph: 'incident_triage', node: 'top_errors_logs',
      reason: "node 'top_errors_logs': loki timed out after 3 attempts", status: 'pending', created_at: new Date().toISOString() };
    const decisions = [];
    await page.route(`${base}/v1/requeue`, (route) => route.fulfill({ json: { items: [entry] } }));
    await page.route(`${base}/v1/requeue/*/resolve`, (route) => {
      decisions.push({ url: route.request().url(), body: route.request().postDataJSON() });
      route.fulfill({ json: { ...entry, status: 'replayed' } });
    });
    await page.goto(`${base}/#/ops`);
    const row = page.locator('#requeue-table tr[data-id=rq_e2e0001]');
    await row.waitFor();
    assert.match(await row.textContent(), /loki timed out/);
    assert.equal(await row.locator(`a[href="#/ops/runs/${triageRun}"]`).count(), 1);
    await row.locator('.requeue-allow').click();
    await page.waitForFunction(() => document.querySelector('.toast'));
    await row.locator('.requeue-drop').click();
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(decisions.map((d) => [d.url.replace(base, ''), d.body.allow]),
      [['/v1/requeue/rq_e2e0001/resolve', true], ['/v1/requeue/rq_e2e0001/resolve', false]]);
    await page.unroute(`${base}/v1/requeue`);
    let asked = 0;
    await page.route(`${base}/v1/requeue`, (route) => { asked++; route.fulfill({ status: 404, json: { error: { code: 'not_found', message: 'no such page' } } }); });
    await page.reload();
    await page.locator('#graph-table').waitFor();
    await page.waitForTimeout(300);
    assert.equal(await page.locator('#requeue-section').isHidden(), true);
    // Runs changing do not make it ask again.
    const before = asked;
    const quick = await http(base, '/v1/graphs/incident_triage/runs', { method: 'POST', body: { input: { service: 'router', symptom: 'requeue 404 check', env: 'staging' } } });
    await page.locator(`#run-table tr[data-id="${quick.run_id}"]`).waitFor();
    await page.waitForTimeout(600);
    assert.ok(before >= 1);
    assert.equal(asked, before, 'no GET /v1/requeue per ops.run on a server without it');
    await page.unroute(`${base}/v1/requeue`);
    await page.unroute(`${base}/v1/requeue/*/resolve`);
  });

  await step('ops: Allow / Drop send one decision however often pressed; a refused one is shown and the row kept', async () => {
    // Answered by the test, like the step before.
    const entry = { id: 'rq_e2e0002', kind: 'retries_exhausted', run_id: triageRun, graph: 'incident_triage', node: 'slo_context',
      reason: "node 'slo_context': slo source timed out after 3 attempts", status: 'pending', created_at: new Date().toISOString() };
    let pending = true;
    let refuse = true;
    let open;
    const gate = new Promise((r) => { open = r; });
    const decisions = [];
    await page.route(`${base}/v1/requeue`, (route) => route.fulfill({ json: { items: pending ? [entry] : [] } }));
    await page.route(`${base}/v1/requeue/*/resolve`, (route) => {
      decisions.push(route.request().postDataJSON().allow);
      if (refuse) return route.fulfill({ status: 409, json: { error: { code: 'conflict', message: 'rq_e2e0002 is being replayed' } } });
      return gate.then(() => {
        pending = false;
        return route.fulfill({ json: { ...entry, status: 'replayed' } });
      }).catch(() => {});
    });
    try {
      // (The page is at #/ops already, with a view that was told the list does not exist.)
      await page.goto(`${base}/#/ops`);
      await page.reload();
      const row = page.locator('#requeue-table tr[data-id=rq_e2e0002]');
      await row.waitFor();
      // Refused: the error is shown, the row stays and its buttons work again.
      await row.locator('.requeue-drop').click();
      await page.locator('.toast.error', { hasText: 'rq_e2e0002 is being replayed' }).waitFor();
      await row.locator('.requeue-allow:enabled').waitFor();
      await row.locator('.requeue-drop:enabled').waitFor();
      assert.deepEqual(decisions, [false]);
      // Allow pressed twice and Drop once while the first is held: one decision.
      refuse = false;
      const state = await row.evaluate((tr) => {
        const allow = tr.querySelector('.requeue-allow');
        const drop = tr.querySelector('.requeue-drop');
        allow.click();
        const s = [allow.disabled, drop.disabled, allow.getAttribute('aria-busy')];
        allow.click();
        drop.click();
        return s;
      });
      assert.deepEqual(state, [true, true, 'true'], 'both buttons disabled while sending');
      for (let i = 0; decisions.length < 2 && i < 500; i++) await sleep(10);
      await sleep(100);
      assert.equal(await row.locator('.requeue-drop').isDisabled(), true);
      open();
      await page.locator('.toast', { hasText: 'Allowed rq_e2e0002' }).waitFor();
      await row.waitFor({ state: 'detached' });
      await page.locator('#requeue', { hasText: 'Nothing is waiting for a decision' }).waitFor();
      assert.deepEqual(decisions, [false, true], 'one decision per press that counted');
    } finally {
      open();
      await page.unroute(`${base}/v1/requeue`);
      await page.unroute(`${base}/v1/requeue/*/resolve`);
    }
  });

  let opsInc;
  await step('incident: Triage and Draft postmortem run inline; artifacts and follow-ups appear', async () => {
    const started = new Date(Date.now() - 40 * 60 * 1000).toISOString();
    opsInc = await http(base, '/api/incidents', { method: 'POST', body: { service: 'router', env: 'staging', severity: 'P1',
      title: 'Disk full on the router data volume', started_at: started, summary: 'Writes fail with ENOSPC.' } });
    await page.goto(`${base}/#/incidents/${encodeURIComponent(opsInc.id)}`);
    await page.locator('#incident-title').waitFor();
    await page.click('#inc-triage');
    const tri = page.locator('.ops-run[data-graph=incident_triage]');
    await tri.locator('a.ops-open').waitFor();
    await page.locator('.ops-run[data-graph=incident_triage][data-status=succeeded]').waitFor({ timeout: 30000 });
    assert.ok((await tri.locator('.triage-summary').textContent()).length > 10);
    const runId = await tri.getAttribute('data-run-id');
    assert.equal(await tri.locator('a.ops-open').getAttribute('href'), `#/ops/runs/${runId}`);
    // The input the button built: this incident's service, env, title, and its impact window.
    const run = await http(base, `/v1/runs/${runId}`);
    assert.equal(run.input.service, 'router');
    assert.equal(run.input.env, 'staging');
    assert.equal(run.input.symptom, opsInc.title);
    assert.equal(run.input.incident_id, opsInc.id);
    assert.ok(Math.abs(Date.parse(run.input.time_range.from) - (Date.parse(started) - 15 * 60 * 1000)) < 2000, `from = started - 15 min, got ${run.input.time_range.from}`);
    assert.ok(Math.abs(Date.parse(run.input.time_range.to) - Date.now()) < 60000);
    // Linked to the incident: a triage artifact and a triage event, live.
    await page.locator(`#artifacts tr[data-name="triage_${runId}.json"]`).waitFor();
    await page.locator('#timeline li[data-type=triage]').waitFor();
    assert.equal(await page.locator('#timeline li[data-type=triage] a.run-link').getAttribute('href'), `#/ops/runs/${runId}`);

    await page.click('#inc-postmortem');
    await page.locator('.ops-run[data-graph=postmortem_draft][data-status=succeeded]').waitFor({ timeout: 30000 });
    const pm = page.locator('.ops-run[data-graph=postmortem_draft]');
    await pm.locator('.md').waitFor();
    assert.ok((await pm.locator('.md').textContent()).length > 20, 'the draft is rendered');
    await page.locator('#artifacts tr[data-name="postmortem.md"]').waitFor();
    await page.locator('#timeline li[data-type=followup]').first().waitFor();
    assert.ok(await page.locator('#followups tbody tr').count() >= 1, 'follow-ups listed');
    await shot('17-incident-triage-postmortem');
    // The full run view renders the postmortem: markdown, artifacts, follow-ups.
    await pm.locator('a.ops-open').click();
    await page.locator('#pm-markdown .md').waitFor();
    await page.locator('#pm-artifacts tr[data-name="postmortem.md"]').waitFor();
    await shot('18-ops-run-postmortem');
  });

  // ---- Jobs and Reports ----------------------------------------------------------------
  /** The UTC time the console shows on hover (lib/format.js `utc`). */
  const utcText = (ts) => new Date(ts).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC').replace(/Z$/, ' UTC');
  const DIGEST = 'weekly_incident_digest';
  const digestRow = () => page.locator(`#job-table tr[data-task=${DIGEST}]`);
  /** The digest Run now writes (`reports/incidents/weekly/<week>`), for the phone's pages. */
  let digestPath = null;

  await step('jobs: g j opens the tab; every task with its schedule in words and the next fire, UTC on hover', async () => {
    await page.goto(`${base}/#/overview`);
    await page.locator('#ov-tiles .tile').first().waitFor();
    await page.keyboard.press('g');
    await page.keyboard.press('j');
    await page.waitForURL((u) => u.hash === '#/jobs');
    await page.locator('#job-table tr[data-task]').first().waitFor();
    const api = await http(base, '/api/jobs');
    assert.equal(api.tasks.length, 9, 'the registry has 9 tasks');
    const ids = await page.locator('#job-table tr[data-task]').evaluateAll((rows) => rows.map((r) => r.dataset.task));
    assert.deepEqual(ids, api.tasks.map((t) => t.id), 'every task, in registry order');
    for (const t of api.tasks) {
      const row = page.locator(`#job-table tr[data-task=${t.id}]`);
      assert.equal((await row.locator('td.sched .words').textContent()).trim(), t.schedule.words, `${t.id}: schedule in words`);
      assert.match(await row.locator('td.sched code').textContent(), new RegExp(`^${t.schedule.cron.replace(/[*/]/g, '\\$&')}$`));
      const next = row.locator('time.next-fire');
      assert.equal(await next.getAttribute('datetime'), t.next_fires[0]);
      assert.equal(await next.getAttribute('title'), utcText(t.next_fires[0]), `${t.id}: the UTC time on hover`);
      // Shown in the browser's zone: the local rendering of the same instant.
      const local = await page.evaluate((ts) => new Date(ts).toLocaleString(undefined, { weekday: 'short', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' }), t.next_fires[0]);
      assert.equal((await next.textContent()).trim(), local);
    }
    assert.match(await digestRow().locator('td.sched').textContent(), /At 08:00, on Monday\.0 8 \* \* 1 UTC/);
    assert.match(await page.locator('#help').textContent(), /g\s*j\s*Jobs/);
    await shot('22-jobs');
  });

  await step('jobs: Dry run of the weekly incident digest shows what it would write, and writes nothing', async () => {
    const before = await http(base, '/api/reports');
    assert.equal(before.reports.filter((r) => r.kind === 'incidents_weekly').length, 0, 'no digest yet');
    await digestRow().locator('button.dry-run').click();
    const out = page.locator(`#out-${DIGEST} .job-result[data-status=succeeded]`);
    await out.waitFor();
    const md = out.locator('ul.would-write li[data-path$=".md"]');
    assert.match(await md.locator('div').first().textContent(), /^would write reports\/incidents\/weekly\/\d{4}-W\d{2}\.md · [\d,]+ bytes/);
    assert.match(await md.locator('pre.preview').textContent(), /^# Incident digest \d{4}-W\d{2}\n/);
    assert.equal(await out.locator('ul.would-write li').count(), 2, 'the markdown and the JSON');
    assert.ok(await out.locator('.badge', { hasText: 'dry run' }).count(), 'marked as a dry run');
    const after = await http(base, '/api/reports');
    assert.deepEqual(after, before, 'a dry run writes no report');
    await shot('23-jobs-dry-run');
  });

  await step('jobs: Run now writes the digest; its row shows the summary and status', async () => {
    await digestRow().locator('button.run-now').click();
    await page.locator(`#out-${DIGEST} .job-result[data-status=succeeded]:not(:has(.badge.src))`).waitFor();
    await page.locator(`#job-table tr[data-task=${DIGEST}][data-status=succeeded] td.last .summary`).waitFor();
    const task = (await http(base, '/api/jobs')).tasks.find((t) => t.id === DIGEST);
    assert.equal(task.last_run.dry_run, false);
    assert.equal(task.last_run.trigger, 'manual');
    assert.match(task.last_run.summary, /^reports\/incidents\/weekly\/\d{4}-W\d{2}\.md: \d+ incidents/);
    assert.equal((await digestRow().locator('td.last .summary').textContent()).trim(), task.last_run.summary);
    assert.equal((await digestRow().locator('.badge[data-status]').textContent()).trim(), 'succeeded');
    assert.match(await digestRow().locator('td.last').textContent(), /manual/);
    const written = (await http(base, '/api/reports')).reports.filter((r) => r.kind === 'incidents_weekly');
    assert.equal(written.length, 1, 'Run now wrote one digest');
  });

  await step('jobs: the task page has five next fires and the run history with both runs; a bad input is refused beside its field', async () => {
    await digestRow().locator('a.task-id').click();
    await page.waitForURL((u) => u.hash === `#/jobs/${DIGEST}`);
    await page.locator('#job-runs tbody tr[data-run]').first().waitFor();
    assert.equal(await page.locator('#job-next-fires li').count(), 5);
    const runs = await page.locator('#job-runs tbody tr[data-run]').evaluateAll((rows) => rows.map((r) => ({ dry: r.dataset.dry, status: r.dataset.status })));
    assert.deepEqual(runs, [{ dry: 'false', status: 'succeeded' }, { dry: 'true', status: 'succeeded' }], 'the run, then the dry run before it');
    assert.match(await page.locator('#job-runs tbody tr[data-dry=true]').textContent(), /dry run/);
    await page.locator('#job-runs tbody tr[data-dry=true] details summary').click();
    await page.locator('#job-runs tbody tr[data-dry=true] pre.preview').first().waitFor();
    assert.equal(await page.locator('#job-form input').count(), 0, 'this job takes no inputs');

    // backup takes keep_last (a whole number): "abc" is refused by the server, shown as such.
    await page.goto(`${base}/#/jobs/backup`);
    await page.locator('#in-keep_last').fill('abc');
    await page.click('#job-run');
    const box = page.locator('#job-form-error .error-box');
    await box.waitFor();
    assert.match(await box.textContent(), /inputs\.keep_last: must be a whole number from 1 to 1000/);
    assert.equal((await page.locator('#in-keep_last-error').textContent()).trim(), 'must be a whole number from 1 to 1000');
    assert.equal(await page.getAttribute('#in-keep_last', 'aria-invalid'), 'true');
    assert.equal(await page.inputValue('#in-keep_last'), 'abc', 'what was typed is kept');
    assert.equal((await http(base, '/api/jobs/backup/runs')).runs.length, 0, 'nothing was started');
    assert.equal(await page.locator('#job-output .job-result').count(), 0);
    await shot('24-job-backup-refused');
    await page.goto(`${base}/#/jobs/${DIGEST}`);
    await page.locator('#job-runs tbody tr[data-run]').first().waitFor();
    await shot('25-job-detail');
  });

  await step('jobs: fires missed while asleep are marked on the task and its run', async () => {
    // A catch-up needs a machine asleep past a fire: the server's answer gets one added.
    const missed = { count: 864, capped: false, first: '2026-11-28T00:05:00Z', last: '2026-12-01T00:00:00Z', reason: 'missed while asleep', handled: 'ran once' };
    const patch = async (route) => {
      const res = await route.fetch();
      const data = await res.json();
      const t = data.tasks.find((x) => x.id === 'alert_triage');
      t.last_missed = missed;
      t.last_run = { id: 'jr_caughtup', job: t.job, trigger: 'catch_up', status: 'succeeded', dry_run: false, summary: 'no alerts to triage', missed, created_at: data.now, started_at: data.now, finished_at: data.now, duration_ms: 3 };
      t.status = 'succeeded';
      return route.fulfill({ response: res, json: data });
    };
    await page.route('**/api/jobs', patch);
    try {
      await page.goto(`${base}/#/jobs`);
      const mark = page.locator('#job-table tr[data-task=alert_triage] td.last .catch-up');
      await mark.waitFor();
      assert.equal((await mark.textContent()).trim(), '↻ caught up 864 missed fires (missed while asleep): ran once');
      assert.equal(await mark.getAttribute('title'), 'from 2026-11-28 00:05:00 UTC to 2026-12-01 00:00:00 UTC');
      assert.match(await page.locator('#job-table tr[data-task=alert_triage] td.last').textContent(), /catch up/);
      await page.goto(`${base}/#/jobs/alert_triage`);
      await page.locator('#job-schedule .catch-up', { hasText: 'caught up 864 missed fires (missed while asleep)' }).first().waitFor();
    } finally {
      await page.unroute('**/api/jobs', patch);
    }
  });

  await step('reports: g t opens the tab; the digest Run now wrote is listed, filtered by kind, and rendered', async () => {
    await page.goto(`${base}/#/overview`);
    await page.locator('#ov-tiles .tile').first().waitFor();
    await page.keyboard.press('g');
    await page.keyboard.press('t');
    await page.waitForURL((u) => u.hash === '#/reports');
    const row = page.locator('#report-table tr[data-kind=incidents_weekly]');
    await row.waitFor();
    const written = (await http(base, '/api/reports')).reports.find((r) => r.kind === 'incidents_weekly');
    assert.equal(await row.getAttribute('data-path'), written.path);
    digestPath = written.path;
    // Risk and backlog: drawn when the build has them, else an honest note (never an empty list).
    for (const [path, box, ready] of [['/api/risk?limit=20', '#risk-box', '#risk-chart, #risk-table, .empty'], ['/api/backlog', '#backlog-box', '#backlog-table, .empty']]) {
      const r = await fetch(base + path, { headers: { Authorization: `Bearer ${KEY}` } });
      if (r.status === 404) await page.locator(`${box} .not-available`, { hasText: 'not available in this build' }).waitFor();
      else await page.locator(`${box} :is(${ready})`).first().waitFor();
    }
    await shot('26-reports');
    await page.selectOption('#rep-kind', 'risk');
    await page.locator('#rep-list .empty', { hasText: 'No daily risk digest' }).waitFor();
    assert.match(page.url(), /#\/reports\?kind=risk$/);
    await page.selectOption('#rep-kind', 'incidents_weekly');
    await row.waitFor();
    await row.locator('a').click();
    await page.waitForURL((u) => u.hash === `#/${written.path}`);
    const h1 = page.locator('#report-body h1');
    await h1.waitFor();
    assert.equal(await h1.textContent(), `Incident digest ${written.period}`);
    assert.ok(await page.locator('#report-body table').count() > 0, 'its tables rendered');
    await shot('27-report');
  });

  await step('reports: the risk chart and the backlog are drawn from their API shapes; a refused status change is shown', async () => {
    // The risk and backlog rooms come in another build: their answers are stubbed here (in
    // the shapes their API gives) so the chart and the table are checked against them.
    const now = Date.now();
    const days = (n, f) => Array.from({ length: n }, (_, i) => ({ ts: new Date(now - (n - 1 - i) * 86400000).toISOString(), score: f(i) }));
    const history = { checkout: days(30, (i) => 40 + i), payments: days(10, (i) => 80 - i * 2) };
    const patches = [];
    const json = (route, status, body) => route.fulfill({ status, contentType: 'application/json', body: JSON.stringify(body) });
    const stub = async (route) => {
      const u = new URL(route.request().url());
      if (u.pathname === '/api/risk') return json(route, 200, { services: [{ service: 'checkout', score: 69, band: 'high' }, { service: 'payments', score: 62, band: 'medium' }, { service: 'search', score: 12, band: 'low' }] });
      const m = u.pathname.match(/^\/api\/risk\/([^/]+)\/history$/);
      if (m) {
        assert.equal(u.searchParams.get('days'), '30');
        return m[1] === 'search' ? json(route, 500, { error: { code: 'internal', message: 'risk history unreadable' } }) : json(route, 200, { service: m[1], points: history[m[1]] });
      }
      if (u.pathname === '/api/backlog') return json(route, 200, { items: [
        { id: 'bl_1', key: 'checkout:retries', title: 'Make checkout retries idempotent', service: 'checkout', status: 'open', owner: 'ana', priority: 'P1' },
        { id: 'bl_2', key: 'payments:timeouts', title: 'Bound payment provider timeouts', service: 'payments', status: 'done', owner: '', priority: 'P2' },
      ] });
      const b = u.pathname.match(/^\/api\/backlog\/([^/]+)$/);
      if (b && route.request().method() === 'PATCH') {
        const body = route.request().postDataJSON();
        patches.push([b[1], body]);
        return b[1] === 'bl_2' ? json(route, 409, { error: { code: 'conflict', message: 'bl_2 is done; reopen it with a reason' } }) : json(route, 200, { item: { id: b[1], status: body.status } });
      }
      return route.continue();
    };
    const mine = (u) => /^\/api\/(risk|backlog)(\/|$)/.test(u.pathname);
    await page.route(mine, stub);
    try {
      await page.goto(`${base}/#/reports`);
      const chart = page.locator('#risk-chart');
      await chart.waitFor();
      const d = await chart.locator('path[data-series=checkout]').getAttribute('d');
      assert.equal((d.match(/[ML]/g) || []).length, 30, 'one vertex per point');
      assert.equal((await chart.locator('path[data-series=payments]').getAttribute('d')).split('L').length, 10);
      assert.equal(await chart.locator('circle').count(), 40);
      // The riskiest now (69 at the right edge) is drawn above the first point (40 at the left).
      const xy = [...d.matchAll(/[ML]([\d.]+) ([\d.]+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
      assert.ok(xy[0][0] < xy[29][0] && xy[0][1] > xy[29][1], 'time left to right, score bottom to top');
      assert.deepEqual(await page.locator('#risk-legend .legend-item').evaluateAll((l) => l.map((x) => x.dataset.series)), ['checkout', 'payments']);
      await page.locator('#risk-box .error-box', { hasText: 'Risk history of search: Server error (500): risk history unreadable' }).waitFor();
      assert.equal(await page.locator('#risk-table tbody tr').count(), 3);

      const rows = page.locator('#backlog-table tbody tr');
      await rows.first().waitFor();
      assert.equal(await rows.count(), 2);
      await page.selectOption('#backlog-table select[data-item=bl_1]', 'in_progress');
      await page.locator('#backlog-table tr[data-item=bl_1][data-status=in_progress]').waitFor();
      await page.selectOption('#backlog-table select[data-item=bl_2]', 'open');
      await page.locator('#backlog-table tr[data-item=bl_2] .field-error', { hasText: 'Conflict: bl_2 is done; reopen it with a reason.' }).waitFor();
      assert.equal(await page.inputValue('#backlog-table select[data-item=bl_2]'), 'done', 'a refused change keeps the status the server has');
      assert.deepEqual(patches, [['bl_1', { status: 'in_progress' }], ['bl_2', { status: 'open' }]]);
      await shot('28-reports-risk-backlog');
    } finally {
      await page.unroute(mine, stub);
    }
  });

  await step('dark theme and a 1280 px layout without horizontal scroll', async () => {
    await page.click('#theme-toggle');
    assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'dark');
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `page scrolls sideways by ${overflow}px`);
    // The Ops views in the dark theme, also without sideways scrolling.
    for (const [route, ready, name] of [
      ['#/ops', '#graph-table', '19-ops-dark'],
      [`#/ops/runs/${triageRun}`, '#triage-sources', '20-ops-run-triage-dark'],
      [`#/incidents/${encodeURIComponent(opsInc.id)}`, '#artifacts', '21-incident-ops-dark'],
    ]) {
      await page.goto(`${base}/${route}`);
      await page.locator(ready).waitFor();
      const sideways = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      assert.ok(sideways <= 0, `${route} scrolls sideways by ${sideways}px`);
      await shot(name);
    }
    await page.goto(`${base}/#/incidents/${encodeURIComponent(incId)}`);
    await page.locator('#incident-title').waitFor();
    await shot('09-incident-dark');
  });

  // ---- Alerts: Alertmanager v4 notifications, grouped; resolve; silences; a refused matcher ----
  const amAlert = (name, fp, status, startsAt, endsAt = '0001-01-01T00:00:00Z') => ({
    status, fingerprint: fp, startsAt, endsAt, generatorURL: 'http://prometheus:9090/graph?g0.expr=up',
    labels: { alertname: name, service: 'e2e-alerts', severity: 'critical', env: 'prod' },
    annotations: { summary: `${name} on e2e-alerts`, description: 'p95 > 2s' },
  });
  const amBody = (status, alerts, name) => ({
    receiver: 'sofiia', status, alerts, groupLabels: { alertname: name }, commonLabels: { alertname: name, service: 'e2e-alerts' },
    commonAnnotations: {}, externalURL: 'http://alertmanager:9093', version: '4', groupKey: `{}:{alertname="${name}"}`, truncatedAlerts: 0,
  });
  const alertStart = new Date(Date.now() - 120e3).toISOString();

  await step('alerts: g a opens the tab; the firing alert is listed with its labels and a link to its incident', async () => {
    const res = await http(base, '/api/alerts/alertmanager', { method: 'POST', body: amBody('firing', [amAlert('E2eLatency', 'e2e0a1b2c3d4e5f6', 'firing', alertStart)], 'E2eLatency') });
    const incId = (res.triage && res.triage.incidents_opened && res.triage.incidents_opened[0]) || (await http(base, '/api/alerts/e2e0a1b2c3d4e5f6')).incident_id;
    assert.ok(incId, `the alert opened an incident: ${JSON.stringify(res)}`);
    await page.goto(`${base}/#/overview`);
    await page.locator('#ov-tiles .tile').first().waitFor();
    await page.keyboard.press('g');
    await page.keyboard.press('a');
    await page.waitForURL((u) => u.hash === '#/alerts');
    const row = page.locator('#al-list tr[data-fingerprint=e2e0a1b2c3d4e5f6]');
    await row.waitFor();
    assert.equal(await row.locator('[data-status]').getAttribute('data-status'), 'firing');
    const chipsText = await row.locator('.chip').allTextContents();
    for (const c of ['alertname=E2eLatency', 'service=e2e-alerts', 'severity=critical']) assert.ok(chipsText.includes(c), `chip ${c} in ${chipsText}`);
    assert.equal(await row.locator('a.incident-link').getAttribute('href'), `#/incidents/${encodeURIComponent(incId)}`);
    const t = row.locator('time').first();
    assert.match(await t.getAttribute('title'), /UTC/);
    await page.locator('#al-stats table').waitFor();
    await shot('29-alerts');
    await page.selectOption('#al-status', 'firing');
    assert.match(page.url(), /#\/alerts\?status=firing$/);
    await row.waitFor();
    // The detail page.
    await row.locator('td a').first().click();
    await page.waitForURL((u) => u.hash === '#/alerts/e2e0a1b2c3d4e5f6');
    await page.locator('#al-detail dl').waitFor();
    assert.equal(await page.locator('#al-detail a.incident-link').getAttribute('href'), `#/incidents/${encodeURIComponent(incId)}`);
  });

  await step('alerts: a resolved notification moves the alert to resolved (live)', async () => {
    await page.goto(`${base}/#/alerts`);
    const row = page.locator('#al-list tr[data-fingerprint=e2e0a1b2c3d4e5f6]');
    await row.locator('[data-status=firing]').waitFor();
    await http(base, '/api/alerts/alertmanager', { method: 'POST', body: amBody('resolved', [amAlert('E2eLatency', 'e2e0a1b2c3d4e5f6', 'resolved', alertStart, new Date().toISOString())], 'E2eLatency') });
    await row.locator('[data-status=resolved]').waitFor({ timeout: 10000 });
    await page.selectOption('#al-status', 'resolved');
    await row.waitFor();
    await page.selectOption('#al-status', 'firing');
    await page.locator('#al-list tr[data-fingerprint=e2e0a1b2c3d4e5f6]').waitFor({ state: 'detached' });
  });

  await step('alerts: a silence created in the form suppresses a new matching alert; a bad matcher shows the 422', async () => {
    await page.goto(`${base}/#/alerts`);
    await page.locator('#sil-form').waitFor();
    await page.fill('#sil-matchers', 'alertname="E2eSilenced"');
    await page.fill('#sil-reason', 'e2e maintenance');
    await page.click('#sil-form button[type=submit]');
    await page.locator('#sil-msg', { hasText: 'created' }).waitFor();
    await page.locator('#sil-list td', { hasText: 'e2e maintenance' }).waitFor();
    await http(base, '/api/alerts/alertmanager', { method: 'POST', body: amBody('firing', [amAlert('E2eSilenced', 'e2e1a1b2c3d4e5f6', 'firing', alertStart)], 'E2eSilenced') });
    const row = page.locator('#al-list tr[data-fingerprint=e2e1a1b2c3d4e5f6]');
    await row.locator('[data-status=suppressed]').waitFor({ timeout: 10000 });
    await page.selectOption('#al-status', 'suppressed');
    await row.waitFor();
    await shot('30-alerts-silenced');
    // A bad matcher: the server's own 422 message beside the form.
    const bad = 'alertname~~"x"';
    const r = await fetch(`${base}/api/alerts/silences`, { method: 'POST', headers: { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ matchers: [bad], until: new Date(Date.now() + 3600e3).toISOString(), reason: 'x' }) });
    assert.equal(r.status, 422);
    const serverMsg = (await r.json()).error?.message;
    assert.ok(serverMsg, 'the server says why');
    await page.fill('#sil-matchers', bad);
    await page.click('#sil-form button[type=submit]');
    await page.locator('#sil-msg.error', { hasText: 'Invalid input' }).waitFor();
    assert.ok((await page.locator('#sil-msg').textContent()).includes(serverMsg), `shows ${serverMsg}`);
    await shot('31-alerts-bad-matcher');
  });

  // ---- A phone (390×844): someone paged must be able to read and act on an incident ----
  const PHONE = { width: 390, height: 844 };
  /** How far the page scrolls sideways (0 when it fits). */
  const sideways = (p) => p.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  /** The element is inside the phone's width (not cut off at the right). */
  async function withinPhone(locator, what) {
    const b = await locator.boundingBox();
    assert.ok(b, `${what} is shown`);
    assert.ok(b.x >= 0 && b.x + b.width <= PHONE.width, `${what} fits in ${PHONE.width} px (x=${b.x}, width=${b.width})`);
    return b;
  }

  await step('at 390×844 the pages fit the width; the sections are behind a menu button', async () => {
    const before = page.viewportSize();
    await page.setViewportSize(PHONE);
    try {
      await page.goto(`${base}/#/incidents`);
      await page.locator('#incident-table tbody tr').first().waitFor();
      const listWidth = await page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(listWidth <= PHONE.width, `the list is ${listWidth} px wide`);
      // Rows are cards: each cell says which column it is.
      const cells = await page.locator('#incident-table tbody tr').first().locator('td').evaluateAll((tds) => tds.map((td) => td.dataset.label));
      assert.deepEqual(cells, ['Sev', 'Id', 'Title', 'Status', 'Service', 'Env', 'Started', 'Updated', 'Owner']);
      await withinPhone(page.locator('#incident-table tbody tr').first(), 'a list row');
      for (const sel of ['#nav-toggle', '#conn', '#live', '#build', '#theme-toggle', '#help-btn', '#new-incident', '#f-q']) await withinPhone(page.locator(sel), sel);

      // The menu: hidden until its button is pressed, which shows the tabs.
      const toggle = page.locator('#nav-toggle');
      assert.equal(await page.locator('#nav').isHidden(), true, 'the nav is hidden on a phone');
      assert.equal(await toggle.getAttribute('aria-controls'), 'nav');
      assert.equal(await toggle.getAttribute('aria-expanded'), 'false');
      await toggle.click();
      await page.locator('#nav a[href="#/events"]').waitFor();
      assert.equal(await toggle.getAttribute('aria-expanded'), 'true');
      assert.equal(await page.evaluate(() => document.activeElement.getAttribute('href')), '#/incidents', 'focus on the current tab');
      await withinPhone(page.locator('#nav'), 'the open menu');
      await page.screenshot({ path: join(shots, 'narrow-menu.png') });
      // Escape closes it and gives focus back to the button.
      await page.keyboard.press('Escape');
      await page.locator('#nav').waitFor({ state: 'hidden' });
      assert.equal(await page.evaluate(() => document.activeElement.id), 'nav-toggle');
      assert.equal(await toggle.getAttribute('aria-expanded'), 'false');
      // A tap beside the open menu only closes it (the row under it is not opened).
      await toggle.click();
      await page.locator('#nav a').first().waitFor();
      await page.mouse.click(PHONE.width - 40, 500);
      await page.locator('#nav').waitFor({ state: 'hidden' });
      assert.equal(new URL(page.url()).hash, '#/incidents');
      // Choosing a tab navigates and closes the menu.
      await toggle.click();
      await page.locator('#nav a[href="#/events"]').click();
      await page.waitForURL(/#\/events$/);
      await page.locator('#nav').waitFor({ state: 'hidden' });
      assert.equal(await toggle.getAttribute('aria-expanded'), 'false');
      assert.equal(await page.evaluate(() => document.activeElement.id), 'view', 'focus goes to the page opened');
      await page.locator('#ev-rows').waitFor();

      await page.goto(`${base}/#/incidents`);
      await page.locator('#incident-table tbody tr').first().waitFor();
      await page.evaluate(() => document.getElementById('toasts').replaceChildren());
      await shot('narrow-list');

      // The incident pages (the one with triage, a postmortem, follow-ups and artifacts) and
      // the other views: nothing wider than the phone.
      for (const [route, ready, name] of [
        [`#/incidents/${encodeURIComponent(opsInc.id)}`, '#artifacts'],
        [`#/incidents/${encodeURIComponent(incId)}`, '#timeline'],
        ['#/overview', '#ov-tiles .tile'],
        ['#/events', '#ev-rows'],
        ['#/runbooks', '#rb-list tbody tr'],
        ['#/ops', '#graph-table'],
        ['#/ops/runs', '#run-table'],
        [`#/ops/runs/${triageRun}`, '#triage-sources'],
        ['#/incidents/new', '#create-form'],
        ['#/settings', '#set-key'],
        ['#/jobs', '#job-table tr[data-task]', 'narrow-jobs'],
        ['#/jobs/weekly_incident_digest', '#job-runs tbody tr'],
        ['#/jobs/backup', '#job-form'],
        ['#/reports', '#report-table tr', 'narrow-reports'],
        [`#/${digestPath}`, '#report-body h1'],
        ['#/alerts', '#al-list tr[data-fingerprint]', 'narrow-alerts'],
      ]) {
        await page.goto(`${base}/${route}`);
        await page.locator(ready).first().waitFor();
        assert.equal(await sideways(page), 0, `${route} scrolls sideways at ${PHONE.width} px`);
        if (name) {
          await page.evaluate(() => document.getElementById('toasts').replaceChildren());
          await shot(name);
        }
      }
    } finally {
      await page.setViewportSize(before);
    }
    assert.equal(await page.locator('#nav').isVisible(), true, 'the sidebar is back on a wide screen');
    assert.equal(await page.locator('#nav-toggle').isHidden(), true);
  });

  await step('at 390×844 by touch: open an incident from the list, change its status and severity, add a note', async () => {
    const inc = await http(base, '/api/incidents', { method: 'POST', body: { service: 'checkout', env: 'prod', severity: 'P1', owner: 'carol',
      title: 'Checkout 5xx for mobile users (paged on a phone)', summary: 'Payments time out after **30 s**.' } });
    // A phone of its own: touch, mobile viewport, the operator key already set.
    const phoneContext = await browser.newContext({ viewport: PHONE, isMobile: true, hasTouch: true, colorScheme: 'light',
      storageState: { cookies: [], origins: [{ origin: base, localStorage: [{ name: 'sofiia.apiKey', value: KEY }] }] } });
    const phone = await phoneContext.newPage();
    phone.setDefaultTimeout(10000);
    phone.on('pageerror', (e) => pageErrors.push(e.message));
    phone.on('console', (m) => { if (m.type() === 'error' && !/Failed to load resource|WebSocket connection to/.test(m.text())) pageErrors.push(m.text()); });
    currentPage = phone;
    try {
      await phone.goto(`${base}/#/incidents`);
      const row = phone.locator(`#incident-table tr[data-id="${inc.id}"]`);
      await row.waitFor();
      await row.locator('td.title-cell').tap();
      await phone.waitForURL((u) => u.hash === `#/incidents/${encodeURIComponent(inc.id)}`);
      await phone.locator('#incident-title').waitFor();
      await phone.locator('#timeline').waitFor();
      assert.equal(await sideways(phone), 0, 'no sideways scroll on the incident page');
      // Everything an operator reads or presses is inside the width; buttons are finger-sized.
      for (const sel of ['#incident-title', '.detail-head .badge.st', 'button[data-status=acknowledged]', 'button[data-status=closed]',
        '#severity-select', '#severity-apply', '#change-note', '#inc-triage', '#inc-postmortem', '#timeline', '#note-message',
        '#note-type', '#note-submit', '#fu-title', '#fu-due', '#fu-priority', '#fu-submit', '#artifact-file', '#upload-submit']) {
        await withinPhone(phone.locator(sel), sel);
      }
      for (const sel of ['#nav-toggle', 'button[data-status=acknowledged]', '#severity-apply', '#inc-triage', '#inc-postmortem', '#note-submit', '#fu-submit']) {
        const b = await phone.locator(sel).boundingBox();
        assert.ok(b.height >= 40, `${sel} is ${b.height} px tall`);
      }

      // Status, with a note for the change, then severity.
      await phone.locator('#change-note').fill('looking from my phone');
      await phone.locator('button[data-status=acknowledged]').tap();
      await phone.locator('.detail-head .badge.st', { hasText: 'acknowledged' }).waitFor();
      await phone.locator('#timeline li[data-type=status_change]', { hasText: 'looking from my phone' }).waitFor();
      await phone.selectOption('#severity-select', 'P0');
      await phone.locator('#severity-apply').tap();
      await phone.locator('.detail-head .badge.sev-P0').waitFor();

      // A note, seen on the timeline.
      await phone.locator('#note-message').fill('Payments provider failing over; rolled back checkout to v2.3.1');
      await phone.locator('#note-submit').tap();
      const note = phone.locator('#timeline li[data-type=note]', { hasText: 'rolled back checkout to v2.3.1' });
      await note.waitFor();
      await withinPhone(note, 'the note on the timeline');
      assert.equal(await phone.inputValue('#note-message'), '', 'the note form is cleared');
      const detail = await http(base, `/api/incidents/${inc.id}`);
      assert.equal(detail.incident.status, 'acknowledged');
      assert.equal(detail.incident.severity, 'P0');
      assert.ok(detail.events.some((e) => e.type === 'note' && /v2\.3\.1/.test(e.message)));
      assert.equal(await sideways(phone), 0, 'still no sideways scroll');
      await phone.evaluate(() => { document.getElementById('toasts').replaceChildren(); window.scrollTo(0, 0); });
      await phone.screenshot({ path: join(shots, 'narrow-incident.png'), fullPage: true });
    } finally {
      currentPage = page;
      await phoneContext.close();
    }
  });

  await step('a stalled server: the view says so with Retry within its timeout, the header turns red', async () => {
    await page.goto(`${base}/#/overview`);
    await page.locator('#conn.ok').waitFor();
    await page.locator('#live', { hasText: 'live: ✓' }).waitFor();
    // Paused, the server keeps its port open and answers nothing, like a wedged process.
    server.kill('SIGSTOP');
    try {
      const t0 = Date.now();
      await page.evaluate((id) => { window.location.hash = `#/incidents/${id}`; }, incId);
      await page.locator('.error-box', { hasText: 'No answer from sofiia' }).waitFor({ timeout: 15000 });
      const errorMs = Date.now() - t0;
      await page.locator('#conn.bad').waitFor({ timeout: 12000 });
      await page.locator('#live.bad').waitFor({ timeout: 25000 });
      const redMs = Date.now() - t0;
      await shot('10-stalled-server');
      console.log(`     stalled server: view error after ${errorMs} ms, header red after ${redMs} ms`);
    } finally {
      server.kill('SIGCONT');
    }
    await page.locator('.error-box button.retry').click();
    await page.locator('#incident-title').waitFor();
    await page.locator('#conn.ok').waitFor({ timeout: 12000 });
    await page.locator('#live', { hasText: 'live: ✓' }).waitFor({ timeout: 40000 });
  });

  await step('after a server restart the header shows it and the live stream reconnects', async () => {
    // A second tab follows a run held by env dev's silent sources (see the top of this file).
    // The restart resumes it before the tab's WebSocket is back, so the tab can only show
    // the resumption by replaying /v1/runs/{id}/events after it reconnects.
    const held = await http(base, '/v1/graphs/incident_triage/runs', { method: 'POST', body: { input: { service: 'router', symptom: 'held across a restart', env: 'dev' } } });
    const runPage = await context.newPage();
    runPage.on('pageerror', (e) => pageErrors.push(e.message));
    await runPage.goto(`${base}/#/ops/runs/${held.run_id}`);
    await runPage.locator('#run-events tr[data-type=tool_call]').waitFor();
    await runPage.evaluate(() => { window.__noReload = true; });
    await stopServer();
    await page.locator('#live', { hasText: 'retry in' }).waitFor();
    startServer(port);
    await waitHealthy(base);
    await page.locator('#live', { hasText: 'live: ✓' }).waitFor({ timeout: 40000 });
    await runPage.locator('#live', { hasText: 'live: ✓' }).waitFor({ timeout: 40000 });
    await runPage.locator('#run-events tr[data-type=run_resumed]').waitFor();
    await runPage.locator('.detail-head .badge[data-status=running]').waitFor();
    assert.equal(await runPage.evaluate(() => window.__noReload), true, 'caught up without a reload');
    const seqs = await runPage.locator('#run-events tr').evaluateAll((rows) => rows.map((r) => Number(r.dataset.seq)));
    assert.deepEqual(seqs, seqs.map((_, i) => i + 1), 'every event once, in order');
    await runPage.click('#run-cancel');
    await runPage.locator('.detail-head .badge[data-status=cancelled]').waitFor({ timeout: 15000 });
    await runPage.close();
    // Nothing acknowledged was lost across the restart.
    const detail = await http(base, `/api/incidents/${incId}`);
    assert.equal(detail.incident.severity, 'P0');
    await http(base, `/api/incidents/${incId}/events`, { method: 'POST', body: { type: 'note', message: 'after restart' } });
    await page.locator('#timeline li[data-type=note]', { hasText: 'after restart' }).waitFor();
  });

  assert.deepEqual(pageErrors, [], 'no script errors on any page');
  console.log(`\n${passed} steps passed; screenshots in ${shots}`);
} catch (e) {
  if (!failures) console.error(e);
  process.exitCode = 1;
} finally {
  if (browser) await browser.close();
  await stopServer();
  blackHole.close();
  rmSync(dataDir, { recursive: true, force: true });
  if (pageErrors.length) console.error('page errors:', pageErrors);
}
