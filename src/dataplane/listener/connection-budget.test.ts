import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConnectionBudget } from './connection-budget.js';

test('one budget across listeners: refuses past max, frees on release', () => {
  const b = new ConnectionBudget(2);
  assert.equal(b.tryTake(), true);
  assert.equal(b.tryTake(), true);
  assert.equal(b.tryTake(), false);
  b.release();
  assert.equal(b.tryTake(), true);
  assert.equal(b.active, 2);
});
