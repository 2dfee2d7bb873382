import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isoTime } from './access-log.js';

test('isoTime equals Date#toISOString across milliseconds, seconds, days and years', () => {
  const starts = [0, 999, 1_000, 1_764_633_599_998, Date.UTC(2026, 11, 31, 23, 59, 59, 990), Date.UTC(2024, 1, 29, 12, 0, 0, 0)];
  for (const start of starts) {
    for (let ms = start; ms < start + 25; ms++) assert.equal(isoTime(ms), new Date(ms).toISOString(), `ms ${ms}`);
  }
  // Going back in time (a clock step) must not reuse the later second's prefix.
  assert.equal(isoTime(5_000), new Date(5_000).toISOString());
  assert.equal(isoTime(5_000), '1970-01-01T00:00:05.000Z');
});
