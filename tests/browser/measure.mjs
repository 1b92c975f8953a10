// Console figures on a large store, in headless Chromium: each view's time to content (opened
// cold by URL, and reached from another view) and each list filter's latency from the input to
// the new rows on screen, next to the same request's time from Node over HTTP in the same run
// (the floor the console cannot beat). Not a test: it prints a table.
//
// Run: `cargo build --release`, make a store (for instance 100k incidents and 305k events:
// `BENCH_IMPORT_OUT=/tmp/gen BENCH_IMPORT_INCIDENTS=100000 cargo bench --bench import`, then
// `DATA_DIR=/tmp/store target/release/sofiia import /tmp/gen/100000`), then
// `MEASURE_DATA_DIR=/tmp/store npm run measure` in tests/browser. `MEASURE_ROUNDS` (default 5)
// repeats each figure; the median is printed with the spread. The store is opened in place.

import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..', '..');
const bin = process.env.SOFIIA_BIN || join(root, 'target', 'release', 'sofiia');
const dataDir = process.env.MEASURE_DATA_DIR;
const rounds = Number(process.env.MEASURE_ROUNDS || 5);
const KEY = 'measure-operator-key-' + Math.random().toString(16).slice(2);
if (!dataDir) {
  console.error('set MEASURE_DATA_DIR to a sofiia data dir (see the header of measure.mjs)');
  process.exit(2);
}

const port = await new Promise((res) => {
  const s = createServer();
  s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => res(p)); });
});
const base = `http://127.0.0.1:${port}`;
const server = spawn(bin, ['serve'], {
  env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', DATA_DIR: dataDir, SOFIIA_CONSOLE_API_KEY: KEY, RUST_LOG: 'warn' },
  stdio: ['ignore', 'inherit', 'inherit'],
});
// The server goes when this script does, however it ends.
process.on('exit', () => server.kill('SIGTERM'));
process.on('uncaughtException', (e) => { console.error(e); process.exit(1); });
for (let i = 0; ; i++) {
  try { if ((await fetch(`${base}/healthz`)).ok) break; } catch { /* starting */ }
  if (i > 600) throw new Error('sofiia did not start');
  await new Promise((r) => setTimeout(r, 50));
}

async function api(path) {
  const t0 = performance.now();
  const r = await fetch(base + path, { headers: { Authorization: `Bearer ${KEY}` } });
  const body = await r.json();
  if (!r.ok) throw new Error(`${path}: ${r.status} ${JSON.stringify(body)}`);
  return { ms: performance.now() - t0, body };
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (xs) => `${median(xs).toFixed(0).padStart(5)} ms (${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)})`;

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
await context.addInitScript((key) => { localStorage.setItem('sofiia.apiKey', key); }, KEY);
const page = await context.newPage();
page.setDefaultTimeout(60000);

const total = (await api('/api/incidents?limit=1')).body.total;
const someId = (await api('/api/incidents?limit=1&status=open')).body.items[0].id;
console.log(`store: ${dataDir}, ${total} incidents; ${rounds} rounds; median (min–max)\n`);

// What "content" is for each view: its data on screen (each selector matches), and for lists
// nothing loading. (Predicates are functions: the console's CSP forbids evaluating strings.)
const ready = (spec) => spec.all.every((sel) => document.querySelector(sel)) && (!spec.idle || !document.querySelector('#view [aria-busy]'));
const views = [
  ['overview', '#/overview', { all: ['#ov-tiles .tile', '#ov-overdue table, #ov-overdue p', '#ov-latest table, #ov-latest p'] }, ['/api/incidents/stats', '/api/followups?overdue=true&limit=20', '/api/followups?limit=1', '/api/events/recent?limit=15']],
  ['incidents (active)', '#/incidents', { all: ['#incident-table tbody tr'], idle: true }, ['/api/incidents/services', '/api/incidents?status=open,acknowledged,mitigated&limit=50']],
  ['incident detail', `#/incidents/${someId}`, { all: ['#incident-title', '#timeline li'] }, [`/api/incidents/${someId}`]],
  ['follow-ups (overdue)', '#/followups?overdue=1', { all: ['#followup-table tbody tr, #view .empty'], idle: true }, ['/api/followups?overdue=true&limit=50']],
  ['events', '#/events', { all: ['#ev-rows tr'] }, ['/api/events/recent?limit=100']],
  ['runbooks', '#/runbooks', { all: ['#rb-list tbody tr'] }, ['/api/runbooks']],
];

console.log('view                    cold (URL opened)          from another view          API alone (same requests)');
for (const [name, hash, spec, calls] of views) {
  const cold = []; const warm = []; const floor = [];
  for (let i = 0; i < rounds; i++) {
    // A real load (a same-document hash change would keep the page).
    await page.goto('about:blank');
    let t0 = performance.now();
    await page.goto(`${base}/${hash}`);
    await page.waitForFunction(ready, spec, { polling: 'raf' });
    cold.push(performance.now() - t0);
    await page.evaluate(() => { window.location.hash = '#/settings'; });
    await page.waitForSelector('#view h1');
    t0 = performance.now();
    await page.evaluate((h) => { window.location.hash = h; }, hash);
    await page.waitForFunction(ready, spec, { polling: 'raf' });
    warm.push(performance.now() - t0);
    const t1 = performance.now();
    await Promise.all(calls.map((c) => api(c)));
    floor.push(performance.now() - t1);
  }
  console.log(`${name.padEnd(22)}  ${fmt(cold).padEnd(25)}  ${fmt(warm).padEnd(25)}  ${fmt(floor)}`);
}

// Filters: from the input event to the new rows on screen, timed in the page (the input is
// set and its event fired there, so no driver round trip is counted; the 120 ms a text field
// waits for more keys is), each from the same starting list.
const filters = [
  ['status: any', '#/incidents', { sel: '#f-status', set: 'any', ev: 'change' }, '/api/incidents?limit=50'],
  ['severity: P0', '#/incidents', { sel: 'input[aria-label="Severity P0"]', check: true, ev: 'change' }, '/api/incidents?status=open,acknowledged,mitigated&severity=P0&limit=50'],
  ['service: typed "bill"', '#/incidents', { sel: '#f-service', set: 'bill', ev: 'input' }, '/api/incidents?status=open,acknowledged,mitigated&service=billing&limit=50'],
  ['env: prod', '#/incidents', { sel: '#f-env', set: 'prod', ev: 'change' }, '/api/incidents?status=open,acknowledged,mitigated&env=prod&limit=50'],
  ['sort: recently updated', '#/incidents', { sel: '#f-sort', set: 'updated', ev: 'change' }, '/api/incidents?status=open,acknowledged,mitigated&sort=updated&limit=50'],
  ['next page', '#/incidents', { sel: '#next-page', click: true }, null],
  ['text: a common word', '#/incidents?status=any', { sel: '#f-q', set: 'rolled', ev: 'input' }, '/api/incidents?q=rolled&limit=50'],
  ['text: a word in no incident', '#/incidents?status=any', { sel: '#f-q', set: 'zanzibar', ev: 'input' }, null],
  ['follow-ups: owner typed', '#/followups', { sel: '#fl-owner', set: 'nobody', ev: 'input', list: '#followup-table tbody tr, #view .empty' }, '/api/followups?owner=nobody&limit=50'],
];
const timed = (f) => new Promise((done) => {
  const el = document.querySelector(f.sel);
  const list = f.list || '#incident-table tbody tr, #view .empty';
  const sig = () => `${document.querySelector('#incident-total, #fl-total')?.textContent}|${document.querySelector(list)?.textContent}`;
  const before = sig();
  const t0 = performance.now();
  if (f.click) el.click();
  else {
    if (f.check) el.checked = true; else el.value = f.set;
    el.dispatchEvent(new Event(f.ev, { bubbles: true }));
  }
  const poll = () => {
    if (sig() !== before && !document.querySelector('#view [aria-busy]')) done(performance.now() - t0);
    else requestAnimationFrame(poll);
  };
  requestAnimationFrame(poll);
});
console.log('\nfilter (store of 100k)       input → rows on screen     API alone');
for (const [name, hash, f, call] of filters) {
  const ui = []; const floor = [];
  for (let i = 0; i < rounds; i++) {
    await page.goto('about:blank');
    await page.goto(`${base}/${hash}`);
    await page.waitForFunction(ready, { all: [f.list || '#incident-table tbody tr, #view .empty'], idle: true }, { polling: 'raf' });
    ui.push(await page.evaluate(timed, f));
    if (call) floor.push((await api(call)).ms);
  }
  console.log(`${name.padEnd(28)} ${fmt(ui).padEnd(25)}  ${call ? fmt(floor) : '(several requests)'}`);
}

await browser.close();
server.kill('SIGTERM');
