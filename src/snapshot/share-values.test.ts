import { test } from 'node:test';
import assert from 'node:assert/strict';
import { shareStrings } from './share-strings.js';

test('shareStrings keeps every value and shape of parsed JSON, in place', () => {
  const text = JSON.stringify({ a: 'x', b: ['x', 'y', { c: 'x', d: [1, null, true, 'y'] }], e: null, f: 2, g: { h: { i: 'deep' } } });
  const parsed = JSON.parse(text) as Record<string, unknown>;
  const out = shareStrings(parsed);
  assert.equal(out, parsed);
  assert.deepEqual(out, JSON.parse(text));
  assert.equal(shareStrings('plain'), 'plain');
  assert.equal(shareStrings(null), null);
});
