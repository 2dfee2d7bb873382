/** One conformance suite every load-balancing policy must pass, plus per-policy properties. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pickEndpoint, type LbPolicy, type LbState } from './lb.js';

function state(active: Record<string, number> = {}): LbState {
  const cursors = new Map<string, number>();
  return {
    cursor: (c) => cursors.get(c) ?? 0,
    advance: (c) => cursors.set(c, (cursors.get(c) ?? 0) + 1),
    active: (_c, k) => active[k] ?? 0,
  };
}

function seeded(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (x * 1664525 + 1013904223) >>> 0;
    return x / 2 ** 32;
  };
}

const eps = [
  { key: 'a:1', weight: 1 },
  { key: 'b:1', weight: 1 },
  { key: 'c:1', weight: 1 },
];

for (const policy of ['ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM', 'PASSTHROUGH'] as LbPolicy[]) {
  describe(`lb conformance: ${policy}`, () => {
    it('returns undefined for no endpoints and the only endpoint for one', () => {
      assert.equal(pickEndpoint(policy, 'c', [], state()), undefined);
      assert.equal(pickEndpoint(policy, 'c', [eps[0]!], state())?.key, 'a:1');
    });
    it('only ever returns a candidate, and reaches every equal-weight endpoint', () => {
      const st = state();
      const rnd = seeded(7);
      const seen = new Set<string>();
      for (let i = 0; i < 300; i++) {
        const e = pickEndpoint(policy, 'c', eps, st, rnd);
        assert.ok(e && eps.includes(e));
        seen.add(e.key);
      }
      assert.equal(seen.size, 3);
    });
    it('never picks a zero-weight endpoint when others have weight', () => {
      const w = [{ key: 'a:1', weight: 0 }, { key: 'b:1', weight: 5 }];
      const rnd = seeded(3);
      for (let i = 0; i < 100; i++) {
        const e = pickEndpoint(policy === 'LEAST_REQUEST' ? 'RANDOM' : policy, 'c', w, state(), rnd);
        assert.equal(e?.key, 'b:1');
      }
    });
  });
}

describe('lb policies', () => {
  it('ROUND_ROBIN cycles in order per cluster', () => {
    const st = state();
    const keys = Array.from({ length: 6 }, () => pickEndpoint('ROUND_ROBIN', 'c', eps, st)!.key);
    assert.deepEqual(keys, ['a:1', 'b:1', 'c:1', 'a:1', 'b:1', 'c:1']);
  });
  it('weights are respected (weighted random when weights differ)', () => {
    const w = [{ key: 'a:1', weight: 90 }, { key: 'b:1', weight: 10 }];
    const rnd = seeded(11);
    let a = 0;
    for (let i = 0; i < 2000; i++) if (pickEndpoint('ROUND_ROBIN', 'c', w, state(), rnd)!.key === 'a:1') a++;
    assert.ok(a > 1700 && a < 1900, String(a));
  });
  it('LEAST_REQUEST prefers the less loaded of two choices', () => {
    const st = state({ 'a:1': 10, 'b:1': 0 });
    const two = [eps[0]!, eps[1]!];
    const rnd = seeded(5);
    let b = 0;
    for (let i = 0; i < 200; i++) if (pickEndpoint('LEAST_REQUEST', 'c', two, st, rnd)!.key === 'b:1') b++;
    assert.equal(b, 200);
  });
});
