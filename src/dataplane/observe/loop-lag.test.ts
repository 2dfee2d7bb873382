import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Sweeper, TICK_MS } from '../sweeper.js';
import { LoopLag, loopLag } from './loop-lag.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function blockFor(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // a handler that keeps the loop busy
  }
}

test('LoopLag: p99 of how late timers ran, reset at each read', () => {
  const lag = new LoopLag();
  assert.equal(lag.takeP99Ms(), 0, 'no samples: 0');
  const now = performance.now();
  for (let i = 0; i < 99; i++) lag.late(now); // on time (a few µs late)
  lag.late(now - 500);
  lag.late(now - 500);
  const p99 = lag.takeP99Ms();
  assert.ok(p99 >= 400 && p99 < 2000, `p99 ${p99} ms reflects the two 500 ms late samples`);
  assert.equal(lag.takeP99Ms(), 0, 'the read starts a new interval');
});

test('the sweeper reports its ticks to the loop-lag metric: a blocked loop shows as lag', async () => {
  const sweeper = new Sweeper();
  const item = { sweeps: 0, sweep(): void { this.sweeps++; } };
  sweeper.add(item);
  try {
    loopLag.takeP99Ms();
    blockFor(TICK_MS + 150); // the next tick runs at least 150 ms late
    await sleep(TICK_MS * 3);
    assert.ok(item.sweeps >= 1, 'ticked');
    const p99 = loopLag.takeP99Ms();
    assert.ok(p99 >= 100, `lag p99 ${p99} ms after blocking the loop for ${TICK_MS + 150} ms`);
  } finally {
    sweeper.delete(item);
  }
  assert.equal(sweeper.size, 0);
});
