import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { KeyPool } from './upstream-pool.js';

describe('KeyPool concurrency window', () => {
  it('remembers the peak of the current and the previous window, and forgets it after two quiet windows', () => {
    const kp = new KeyPool('k', 0);
    kp.busy = 40;
    kp.peak = 40;
    kp.busy = 3;
    kp.roll(999, 1000);
    assert.deepEqual([kp.peak, kp.prevPeak], [40, 0], 'same window: nothing rolls');
    kp.roll(1000, 1000);
    assert.deepEqual([kp.peak, kp.prevPeak], [3, 40], 'next window: the burst is still remembered');
    kp.roll(2000, 1000);
    assert.deepEqual([kp.peak, kp.prevPeak], [3, 3], 'one window later the burst is forgotten');
    kp.peak = 10;
    kp.roll(4500, 1000);
    assert.deepEqual([kp.peak, kp.prevPeak], [3, 3], 'two or more windows without traffic count as the current load');
  });
});
