// The Jobs tab's catch-up marks (ui/assets/views/jobs.js `missedText`), in node: what an
// operator reads about fires missed while sofiia was stopped or its machine asleep.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { missedText } from '../../ui/assets/views/jobs.js';

const m = (over) => ({ count: 864, capped: false, first: '2026-11-28T00:00:00Z', last: '2026-12-04T23:50:00Z', reason: 'missed while asleep', handled: 'ran once', ...over });

test('a catch-up says how many fires were missed, why, and what was done', () => {
  assert.equal(missedText(m()), 'caught up 864 missed fires (missed while asleep): ran once');
  assert.equal(missedText(m({ count: 1, handled: 'ran 1 of 1', reason: 'missed while stopped' })), 'caught up 1 missed fire (missed while stopped): ran 1 of 1');
  assert.equal(missedText(m({ count: 100000, capped: true })), 'caught up 100,000+ missed fires (missed while asleep): ran once');
});

test('a skip policy says the fires were skipped', () => {
  assert.equal(missedText(m({ count: 3, handled: 'skipped by policy' })), 'skipped 3 missed fires (missed while asleep)');
});

test('nothing missed, nothing said', () => {
  assert.equal(missedText(null), null);
  assert.equal(missedText(m({ count: 0 })), null);
  assert.equal(missedText('x'), null);
});
