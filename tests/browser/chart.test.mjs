// The risk chart's scaling and path (ui/assets/lib/chart.js), in node (`node --test`): points
// land where the axes say, a fixed range clamps, bad points are dropped, one point is centred.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { linePath, scaleSeries, ticks } from '../../ui/assets/lib/chart.js';

const DAY = 86400000;
const box = { width: 200, height: 120, pad: { top: 10, right: 10, bottom: 10, left: 10 } };

test('points map onto the box: time left to right, value bottom to top', () => {
  const sc = scaleSeries([{ name: 'api', points: [{ t: 0, v: 0 }, { t: DAY, v: 50 }, { t: 2 * DAY, v: 100 }] }], { ...box, yMin: 0, yMax: 100 });
  assert.deepEqual(sc.series[0].points.map((p) => [p.x, p.y]), [[10, 110], [100, 60], [190, 10]]);
  assert.equal(linePath(sc.series[0].points), 'M10 110 L100 60 L190 10');
  assert.equal(sc.t0, 0);
  assert.equal(sc.t1, 2 * DAY);
});

test('several series share one time axis', () => {
  const sc = scaleSeries([
    { name: 'a', points: [{ t: 0, v: 10 }, { t: 10 * DAY, v: 20 }] },
    { name: 'b', points: [{ t: 5 * DAY, v: 30 }] },
  ], { ...box, yMin: 0, yMax: 100 });
  assert.equal(sc.series[1].points[0].x, 100, 'the middle of the shared range');
  assert.equal(sc.series[0].points[1].x, 190);
});

test('points are sorted by time; unreadable ones are dropped', () => {
  const sc = scaleSeries([{ name: 'a', points: [{ t: 2 * DAY, v: 40 }, { t: NaN, v: 1 }, { t: 0, v: 20 }, { t: DAY, v: Infinity }, null] }], { ...box, yMin: 0, yMax: 100 });
  assert.deepEqual(sc.series[0].points.map((p) => p.t), [0, 2 * DAY]);
  assert.match(linePath(sc.series[0].points), /^M10 \S+ L190 \S+$/);
});

test('a fixed range clamps values outside it to its edges', () => {
  const sc = scaleSeries([{ name: 'a', points: [{ t: 0, v: -20 }, { t: DAY, v: 140 }] }], { ...box, yMin: 0, yMax: 100 });
  assert.deepEqual(sc.series[0].points.map((p) => p.y), [110, 10]);
});

test('without a range the data sets it; a flat line gets a span of 1 around its value', () => {
  const free = scaleSeries([{ name: 'a', points: [{ t: 0, v: 20 }, { t: DAY, v: 60 }] }], box);
  assert.equal(free.y0, 20);
  assert.equal(free.y1, 60);
  const flat = scaleSeries([{ name: 'a', points: [{ t: 0, v: 42 }, { t: DAY, v: 42 }] }], box);
  assert.equal(flat.y0, 41.5);
  assert.equal(flat.y1, 42.5);
  assert.deepEqual(flat.series[0].points.map((p) => p.y), [60, 60], 'drawn across the middle');
});

test('a single point is centred; no points give an empty path', () => {
  const one = scaleSeries([{ name: 'a', points: [{ t: 5, v: 50 }] }], { ...box, yMin: 0, yMax: 100 });
  assert.deepEqual([one.series[0].points[0].x, one.series[0].points[0].y], [100, 60]);
  const none = scaleSeries([{ name: 'a', points: [] }], box);
  assert.equal(linePath(none.series[0].points), '');
  assert.equal(linePath(undefined), '');
  assert.deepEqual(scaleSeries(undefined, box).series, []);
});

test('axis ticks are evenly spaced and include both ends', () => {
  assert.deepEqual(ticks(0, 100, 5), [0, 25, 50, 75, 100]);
  assert.deepEqual(ticks(3, 3, 5), [3]);
});
