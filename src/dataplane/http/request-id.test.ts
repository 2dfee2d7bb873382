import assert from 'node:assert/strict';
import { test } from 'node:test';
import { requestId } from './request-id.js';

test('requestId: version 4 UUIDs in the canonical form, unique across entropy refills', () => {
  const seen = new Set<string>();
  const ones = new Array<number>(128).fill(0);
  const n = 5000; // about 20 refills
  for (let i = 0; i < n; i++) {
    const id = requestId();
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    seen.add(id);
    const hex = id.replace(/-/g, '');
    for (let bit = 0; bit < 128; bit++) if ((parseInt(hex[bit >> 2]!, 16) >> (3 - (bit & 3))) & 1) ones[bit]!++;
  }
  assert.equal(seen.size, n);
  // Every bit outside the version and variant fields is random: set in about half the ids.
  const fixed = new Set([48, 49, 50, 51, 64, 65]);
  for (let bit = 0; bit < 128; bit++) {
    if (fixed.has(bit)) continue;
    assert.ok(ones[bit]! > n * 0.4 && ones[bit]! < n * 0.6, `bit ${bit} set in ${ones[bit]} of ${n}`);
  }
});
