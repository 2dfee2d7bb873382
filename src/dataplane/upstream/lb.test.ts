/** One conformance suite every load-balancing policy must pass, plus per-policy properties. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pickByHash } from './hash-lb.js';
import { pickEndpoint, type LbCandidate, type LbPolicy, type LbState } from './lb.js';

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

/** Every balancer, behind one signature: the i-th pick of a run (consistent hash: the i-th key). */
type Balancer = <T extends LbCandidate>(c: readonly T[], st: LbState, rnd: () => number, i: number) => T | undefined;
const balancers: [string, Balancer][] = [
  ...(['ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM', 'PASSTHROUGH'] as LbPolicy[]).map((p): [string, Balancer] => [p, (c, st, rnd) => pickEndpoint(p, 'c', c, st, rnd)]),
  ['CONSISTENT_HASH', (c, _st, _rnd, i) => pickByHash(c, `user-${i}`)],
];

for (const [policy, pick] of balancers) {
  describe(`lb conformance: ${policy}`, () => {
    it('returns undefined for no endpoints and the only endpoint for one', () => {
      assert.equal(pick([], state(), Math.random, 0), undefined);
      assert.equal(pick([eps[0]!], state(), Math.random, 0)?.key, 'a:1');
    });
    it('only ever returns a candidate, and reaches every equal-weight endpoint', () => {
      const st = state();
      const rnd = seeded(7);
      const seen = new Set<string>();
      for (let i = 0; i < 300; i++) {
        const e = pick(eps, st, rnd, i);
        assert.ok(e && eps.includes(e));
        seen.add(e.key);
      }
      assert.equal(seen.size, 3);
    });
    it('never picks a zero-weight endpoint when others have weight', () => {
      const w = [{ key: 'a:1', weight: 0 }, { key: 'b:1', weight: 5 }];
      const rnd = seeded(3);
      for (let i = 0; i < 100; i++) {
        const e = policy === 'LEAST_REQUEST' ? pickEndpoint('RANDOM', 'c', w, state(), rnd) : pick(w, state(), rnd, i);
        assert.equal(e?.key, 'b:1');
      }
    });
    it('spreads 30,000 picks over 3 equal endpoints within ±5% of a third each', () => {
      const st = state();
      const rnd = seeded(19);
      const n: Record<string, number> = {};
      for (let i = 0; i < 30_000; i++) {
        const k = pick(eps, st, rnd, i)!.key;
        n[k] = (n[k] ?? 0) + 1;
      }
      for (const e of eps) assert.ok(Math.abs((n[e.key] ?? 0) - 10_000) <= 1500, `${e.key}: ${n[e.key]} (${JSON.stringify(n)})`);
    });
    it('honours 3:1 weights within ±3 points (75% expected)', () => {
      const w = [{ key: 'a:1', weight: 3 }, { key: 'b:1', weight: 1 }];
      const st = state();
      const rnd = seeded(23);
      let a = 0;
      for (let i = 0; i < 20_000; i++) if (pick(w, st, rnd, i)!.key === 'a:1') a++;
      if (policy === 'LEAST_REQUEST') return; // weights are not a LEAST_REQUEST input (Envoy weighs active requests)
      assert.ok(Math.abs(a / 20_000 - 0.75) <= 0.03, String(a / 20_000));
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

describe('consistent hash (rendezvous)', () => {
  it('maps one key to one endpoint, whatever the candidate order', () => {
    for (let i = 0; i < 200; i++) {
      const k = `session-${i}`;
      assert.equal(pickByHash(eps, k)?.key, pickByHash([...eps].reverse(), k)?.key);
    }
  });
  it('removing an endpoint moves only the keys it owned; adding one takes ~1/(n+1) of the keys', () => {
    const four = [...eps, { key: 'd:1', weight: 1 }];
    let moved = 0;
    let gained = 0;
    for (let i = 0; i < 10_000; i++) {
      const k = `k${i}`;
      const before = pickByHash(eps, k)!.key;
      const after = pickByHash(four, k)!.key;
      if (after === 'd:1') gained++;
      else if (after !== before) moved++;
    }
    assert.equal(moved, 0, 'keys moved between endpoints that stayed');
    assert.ok(Math.abs(gained - 2500) <= 300, String(gained));
  });
});
