/**
 * Golden tests: fixture config + proxy identity -> the exact snapshot JSON. A change in snapshot
 * output shows up as a diff here; rewrite the expected files with TOLLGATE_UPDATE_GOLDEN=1
 * (npm run golden:update) after checking the diff is intended.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, identity, loadFixtures, snapshotOf } from '../helpers/pipeline.js';

const CASES = [
  { name: 'egress-gateway.gateway', files: ['egress-gateway.yaml'], id: identity('gateway', 'egress', { istio: 'egressgateway', app: 'partner-egress' }) },
  { name: 'egress-gateway.sidecar', files: ['egress-gateway.yaml'], id: identity('sidecar', 'shop', { app: 'web' }) },
  { name: 'egress-router.router', files: ['egress-router.yaml'], id: identity('router', 'billing', { app: 'billing-egress' }) },
  { name: 'serviceentries.sidecar', files: ['serviceentries.yaml'], id: identity('sidecar', 'payments', { app: 'teller' }) },
  { name: 'ingress-gateway.gateway', files: ['ingress-gateway.yaml'], id: identity('gateway', 'istio-system', { istio: 'ingressgateway' }) },
  { name: 'envoy-bootstrap.gateway', files: ['envoy-bootstrap.yaml'], id: identity('gateway', 'default') },
  { name: 'traffic-policy.gateway', files: ['traffic-policy.yaml'], id: identity('gateway', 'egress', { istio: 'egressgateway' }) },
  { name: 'egress-ip.gateway', files: ['egress-gateway.yaml', 'egress-ip.yaml'], id: identity('gateway', 'egress', { istio: 'egressgateway' }) },
];

const update = process.env['TOLLGATE_UPDATE_GOLDEN'] === '1';
const dir = join(ROOT, 'test', 'golden', 'expected');

for (const c of CASES) {
  test(`golden snapshot: ${c.name}`, () => {
    const compiled = loadFixtures(...c.files);
    assert.deepEqual(compiled.diagnostics.filter((d) => d.severity === 'error'), [], 'fixture has config errors');
    const actual = JSON.stringify(snapshotOf(compiled, c.id), null, 2) + '\n';
    const file = join(dir, `${c.name}.json`);
    if (update || !existsSync(file)) {
      if (!update && process.env['CI'] === 'true') assert.fail(`golden file ${file} is missing (run npm run golden:update)`);
      mkdirSync(dir, { recursive: true });
      writeFileSync(file, actual);
      return;
    }
    assert.equal(actual, readFileSync(file, 'utf8'), `snapshot differs from ${file}; if intended, run npm run golden:update`);
  });
}

test('snapshots are deterministic: compiling twice gives the same version', () => {
  const a = snapshotOf(loadFixtures('egress-gateway.yaml'), identity('gateway', 'egress', { istio: 'egressgateway' }));
  const b = snapshotOf(loadFixtures('egress-gateway.yaml'), identity('gateway', 'egress', { istio: 'egressgateway' }));
  assert.equal(a.version, b.version);
  const other = snapshotOf(loadFixtures('egress-gateway.yaml'), identity('gateway', 'egress', { istio: 'ingressgateway' }));
  assert.notEqual(a.version, other.version, 'a different proxy identity must give a different snapshot');
});
