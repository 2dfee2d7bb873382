import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryLeaseStore } from './leases.js';

describe('MemoryLeaseStore', () => {
  it('one holder at a time; renew keeps it; expiry or release frees it; transitions count hand-overs', async () => {
    let now = 1000;
    const s = new MemoryLeaseStore(() => now);
    assert.equal((await s.acquire('a', 'r1', 2000)).granted, true);
    now += 1500;
    const refused = await s.acquire('a', 'r2', 2000);
    assert.equal(refused.granted, false);
    assert.equal(refused.lease.holder, 'r1');
    assert.equal((await s.acquire('a', 'r1', 2000)).granted, true); // renewed at 2500
    now += 1999;
    assert.equal((await s.acquire('a', 'r2', 2000)).granted, false, 'still live 1999 ms after the renewal');
    now += 1;
    const taken = await s.acquire('a', 'r2', 2000);
    assert.equal(taken.granted, true);
    assert.equal(taken.lease.previousHolder, 'r1');
    assert.equal(taken.lease.transitions, 1);
    await s.release('a', 'r1'); // not the holder: no effect
    assert.equal((await s.acquire('a', 'r1', 2000)).granted, false);
    await s.release('a', 'r2');
    const back = await s.acquire('a', 'r1', 2000);
    assert.equal(back.granted, true, 'a released lease is free at once');
    assert.equal(back.lease.transitions, 2);
    assert.equal(back.lease.previousHolder, 'r2');
  });
});
