/** `trace` shows the DestinationRule policy of the chosen cluster. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseTraceUrl, trace } from '../../src/trace/trace.js';
import { identity, loadFixtures, snapshotOf } from '../helpers/pipeline.js';

const c = loadFixtures('traffic-policy.yaml');
const gw = identity('gateway', 'egress', { istio: 'egressgateway' });

test('trace lists lb, tls, limits and outlier policy for the canary subset', () => {
  const r = trace(c.model, snapshotOf(c, gw), parseTraceUrl('http://partner.example/', 'GET', { 'user-agent': 'x IPHONE y' }));
  assert.ok(r.ok);
  const p = r.steps.find((s) => s.step === 'policy');
  assert.equal(p?.value, 'lb LEAST_REQUEST');
  assert.match(p?.detail ?? '', /tls MUTUAL sni partner\.example credentialName egress\/partner-client/);
  assert.match(p?.detail ?? '', /max 10 in flight, max 5 pending \(then 503 UO\)/);
  assert.match(p?.detail ?? '', /outlier eject after 2 x gateway error/);
});

test('trace shows consistent hash and port-level overrides', () => {
  const snap = snapshotOf(c, gw);
  const main = trace(c.model, snap, parseTraceUrl('http://partner.example/'));
  assert.ok(main.steps.some((s) => s.step === 'policy' && s.value === 'lb consistentHash(header x-user; else ROUND_ROBIN)'));
  const alt = trace(c.model, snap, parseTraceUrl('http://partner.example/alt/x'));
  const p = alt.steps.find((s) => s.step === 'policy');
  assert.equal(p?.value, 'lb RANDOM');
  assert.match(p?.detail ?? '', /tls none/);
});
