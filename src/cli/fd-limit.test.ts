import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connectionBudget, readFdLimits, RESERVED_FDS } from './fd-limit.js';

test('budget from the open-file limit: two descriptors per connection, some reserved', () => {
  assert.equal(connectionBudget(1024), (1024 - RESERVED_FDS) / 2);
  assert.equal(connectionBudget(100), 1);
  assert.equal(connectionBudget(Infinity), Number.MAX_SAFE_INTEGER);
});

test('reads this process\'s limits from /proc', () => {
  const l = readFdLimits();
  assert.ok(l && l.soft > 0 && l.hard >= l.soft);
});
